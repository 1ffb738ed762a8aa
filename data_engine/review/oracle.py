"""The true labels the simulated reviewer answers from (the demo, benchmarks and tests; never the engine).

A home's oracle is ``HOME/oracle.jsonl`` when it exists, else ``HOME/oracle.csv``:

* ``oracle.jsonl``: one JSON object per line, ``{"id": ..., "label": ...}`` (``example_id`` is
  accepted for ``id``). Ids are the engine's example ids: the file's id column, ``gold:<id>`` for a
  gold example, or for a dataset without an id column the content ids that ``data-engine export``
  writes in its ``example_id`` column. Any data set can be simulated this way.
* ``oracle.csv``: columns ``example_id`` and ``label`` (``seed-demo`` writes it for the digits, with
  ``noisy_label`` and ``is_gold`` beside them, which nothing needs).

Ids are read in the engine's one spelling (:func:`data_engine.store.values.normalize_text`), labels
in the stored spelling of the dataset's task (:meth:`data_engine.tasks.Task.oracle_label`; for
classes the same: the JSON number ``7`` and ``"7.0"`` are the class ``7``). A missing file, a line that is not a JSON
object, a row without an id or a label, or one id given two labels is an error naming the file and
the row.
"""

from __future__ import annotations

import csv
from pathlib import Path

from data_engine.errors import EngineError
from data_engine.store.home import Home
from data_engine.tasks import Classification, Task
from data_engine.tasks.setlabels import jsonl_objects

ORACLE_JSONL = "oracle.jsonl"
_HOW = ('write HOME/oracle.jsonl with the true labels, one {"id": ..., "label": ...} per line, '
        "or run `data-engine seed-demo` for the digits demo")


def oracle_path(home: Home) -> Path:
    """``HOME/oracle.jsonl`` if it exists, else ``HOME/oracle.csv`` (which may not exist either)."""
    jsonl = home.root / ORACLE_JSONL
    return jsonl if jsonl.is_file() else home.oracle_path


def read_oracle(path: Path, label_task: Task | None = None) -> dict[str, str]:
    """``example_id -> true label`` from an oracle file (JSONL by its ``.jsonl`` suffix, else CSV),
    labels read by the dataset's ``label_task`` (default: one class per example).

    Raise :class:`EngineError` naming the file (and the line or row) when it is missing or malformed.
    """
    path = Path(path)
    label_task = label_task or Classification()
    if not path.is_file():
        raise EngineError(f"{path}: no oracle file; the simulated reviewer needs the true labels: {_HOW}")
    pairs = _read_jsonl(path, label_task) if path.suffix.lower() == ".jsonl" else _read_csv(path, label_task)
    oracle: dict[str, str] = {}
    for where, example_id, label in pairs:
        if oracle.get(example_id, label) != label:
            raise EngineError(f"{path}, {where}: id {example_id!r} has label {label!r} here and "
                              f"{oracle[example_id]!r} before; give each id one label")
        oracle[example_id] = label
    if not oracle:
        raise EngineError(f"{path}: the oracle file has no rows; {_HOW}")
    return oracle


def _read_jsonl(path: Path, label_task: Task) -> list[tuple[str, str, str]]:
    pairs = []
    for n, row in jsonl_objects(path, EngineError, name=f"{path},", shape='; each line is {"id": ..., "label": ...}'):
        key = "id" if "id" in row else "example_id"
        pairs.append((f"line {n}", _value(path, f"line {n}", key, row.get(key)),
                      _label(path, f"line {n}", row.get("label"), label_task)))
    return pairs


def _read_csv(path: Path, label_task: Task) -> list[tuple[str, str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"example_id", "label"} <= set(reader.fieldnames):
            raise EngineError(f"{path}: an oracle CSV needs the columns example_id,label "
                              f"(it has: {', '.join(reader.fieldnames or []) or 'none'})")
        # Row 1 is the header: the first data row is row 2, as a spreadsheet shows it.
        return [(f"row {n}", _value(path, f"row {n}", "example_id", row.get("example_id")),
                 _label(path, f"row {n}", row.get("label"), label_task)) for n, row in enumerate(reader, start=2)]


def _value(path: Path, where: str, key: str, value: object) -> str:
    """One id in the engine's spelling; an error for a missing, empty or non-scalar value."""
    return _label(path, where, value, Classification(), key=key)


def _label(path: Path, where: str, value: object, label_task: Task, *, key: str = "label") -> str:
    """One value read by ``label_task`` (an id reads as a class does); the error names file, row and key."""
    try:
        return label_task.oracle_label(value)
    except ValueError as exc:
        raise EngineError(f"{path}, {where}: {key!r} {exc}") from None

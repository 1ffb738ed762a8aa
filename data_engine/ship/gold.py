"""The gold set's holes and versions: which classes gold cannot measure, and which gold a figure is on.

**Unmeasured classes.** A class with fewer than ``[gate] min_class_gold`` gold examples is
*unmeasured*: the gate cannot tell a model that misses every one of them from chance, so it never
calls such a class fine. Unset, the minimum is the fewest examples on which a model missing all
of them differs from chance at ``[gate] alpha``: the smallest n with 0.5^n < alpha (5 at 0.05:
0.5^5 = 0.031, while 0.5^4 = 0.0625). Every verdict names the unmeasured classes, and
``[gate] unmeasured`` says what they do to promotion:

* ``"out_of_fold"`` (default): the only evidence left is the training labels. The candidate's
  out-of-fold recall on the class (from the served-model choice's K-fold predictions,
  :mod:`data_engine.mine.candidates`, recorded with the model) must be at least the champion's
  recorded one minus ``[gate] unmeasured_tolerance``; without a champion figure for the class, at
  least ``[gate] min_class_recall``. A candidate trained on no example of a class the champion
  could predict is refused; a candidate without recorded figures (a named ``[retrain] model``
  skips the out-of-fold scoring) is refused while a class is unmeasured. The first model (no
  champion) is promoted, the classes named.
* ``"refuse"``: no promotion while a class is unmeasured.
* ``"allow"``: promotion as the gold figures say; the verdict still names the classes.

**Gold versions.** A gold set's version is a content hash of its examples (id, hash of the input
columns, label in force). Each gate verdict and each champion score records the version it was computed
on; the labels of each version are kept (``gold_version_labels``), so a change is said as
"n labels changed in place, m added, k removed". The champion is re-scored when gold changes
(:func:`data_engine.ship.scoring.rescore_champion`: the ``score`` command and the Dagster
``champion_scores`` asset, which a sensor runs when the gold version differs from the one the
champion was last scored on).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np

from data_engine.store.config import GateConfig

if TYPE_CHECKING:
    from data_engine.mine.candidates import ServedChoice

# Out-of-fold figures of one model: class -> (recall, or None without training labels; training labels).
OutOfFold = Mapping[str, tuple[float | None, int]]
# The key of a model's ``params`` that holds its out-of-fold figures.
OOF_PARAM = "out_of_fold_recall"
# Hex digits of the content hash shown and stored: 48 bits tell apart every gold set a home will see.
VERSION_CHARS = 12


def min_class_gold(gate: GateConfig) -> int:
    """Gold examples a class needs to be measured: ``[gate] min_class_gold``, or unset the smallest n
    with 0.5^n < ``[gate] alpha`` (McNemar's exact one-sided p when a model misses all n)."""
    if gate.min_class_gold is not None:
        return gate.min_class_gold
    return math.floor(math.log2(1 / gate.alpha)) + 1


def out_of_fold_recall(choice: ServedChoice, classes: Sequence[str], y: np.ndarray) -> dict[str, dict[str, Any]] | None:
    """The served candidate's out-of-fold recall per class, for the model's ``params``.

    ``choice``: the :class:`~data_engine.mine.candidates.ServedChoice` of the training;
    ``classes``: the class order its labels were indexed in; ``y``: the training labels, shape (N,).
    ``{class: {"recall": r or None, "support": n}}`` (None without training labels of the class),
    or None when no candidate was scored out of fold (a named ``[retrain] model``, too few labels).
    """
    chosen = [c for c in choice.candidates if c.name == choice.chosen and c.class_recall]
    if not chosen:
        return None
    counts = Counter(str(v) for v in y)
    return {c: {"recall": float(r) if counts[c] else None, "support": int(counts[c])}
            for c, r in zip(classes, chosen[0].class_recall)}


def recorded_out_of_fold(params: Mapping[str, Any] | None) -> dict[str, tuple[float | None, int]] | None:
    """A model's recorded out-of-fold figures (its ``params``), or None when none were recorded."""
    found = (params or {}).get(OOF_PARAM)
    if not found:
        return None
    return {str(c): (None if f.get("recall") is None else float(f["recall"]), int(f.get("support") or 0))
            for c, f in found.items()}


@dataclass(frozen=True)
class UnmeasuredClass:
    """A class with too few gold examples to measure, and what ``[gate] unmeasured`` made of it.

    ``gold_support``: its gold examples; ``gold_correct``: how many of them the candidate got
    right; ``candidate_oof``/``champion_oof``: out-of-fold recall on the training labels (None: not
    recorded, or no training label of the class); ``passed``: whether it lets the candidate through.
    """

    name: str
    gold_support: int
    gold_correct: int
    candidate_oof: float | None
    champion_oof: float | None
    passed: bool
    detail: str


def assess_unmeasured(classes: Sequence[str], support: Mapping[str, int], recall: Mapping[str, float],
                      gate: GateConfig, *, candidate_oof: OutOfFold | None = None,
                      champion_oof: OutOfFold | None = None,
                      champion_classes: Sequence[str] | None = None) -> tuple[UnmeasuredClass, ...]:
    """The classes among ``classes`` with fewer than :func:`min_class_gold` gold examples. Pure.

    ``support``/``recall``: the candidate's gold support and recall per class (classes absent from
    gold have none); ``candidate_oof``/``champion_oof``: recorded out-of-fold figures (None: not
    recorded); ``champion_classes``: the classes the champion predicts, None when there is no
    champion. The policy is ``[gate] unmeasured`` (see the module).
    """
    need = min_class_gold(gate)
    out = []
    for cls in dict.fromkeys(str(c) for c in classes):
        n = int(support.get(cls, 0))
        if n >= need:
            continue
        correct = int(round(recall.get(cls, 0.0) * n))
        cand = (candidate_oof or {}).get(cls, (None, 0))[0]
        champ = (champion_oof or {}).get(cls, (None, 0))[0]
        passed, why = _policy(cls, gate, candidate_oof, champion_oof, champion_classes)
        gold = f"{n} gold example{'s' if n != 1 else ''}" + (f", {correct} right" if n else "")
        out.append(UnmeasuredClass(cls, n, correct, cand, champ, passed, f"class {cls!r} ({gold}; {why})"))
    return tuple(out)


def _policy(cls: str, gate: GateConfig, cand_oof: OutOfFold | None, champ_oof: OutOfFold | None,
            champion_classes: Sequence[str] | None) -> tuple[bool, str]:
    """Whether unmeasured class ``cls`` lets the candidate through under ``[gate] unmeasured``, and why."""
    if gate.unmeasured == "allow":
        return True, "[gate] unmeasured = 'allow'"
    if gate.unmeasured == "refuse":
        return False, "[gate] unmeasured = 'refuse'"
    cand = None if cand_oof is None else cand_oof.get(cls, (None, 0))
    champ = None if champ_oof is None else champ_oof.get(cls, (None, 0))
    cand_txt = "no out-of-fold figures recorded" if cand is None else (
        "no training label of the class" if cand[0] is None else f"out-of-fold recall {cand[0]:.2f} of {cand[1]}")
    if champion_classes is None:
        return True, f"{cand_txt}; first model, no champion to compare with"
    champ_known = champ is not None and champ[0] is not None
    champ_txt = f"the champion's {champ[0]:.2f} of {champ[1]}" if champ_known else "no champion figure"
    if cand is None:
        return False, (f"{cand_txt} for the candidate (a named [retrain] model is not scored out of fold), "
                       "so nothing shows it still predicts the class")
    if cand[0] is None:
        if champ_known or cls in champion_classes:
            return False, f"{cand_txt} for the candidate, while the champion predicts it ({champ_txt})"
        return True, f"{cand_txt} for either model"
    if champ_known:
        floor = champ[0] - gate.unmeasured_tolerance
        ok = cand[0] >= floor - 1e-9
        return ok, (f"{cand_txt} against {champ_txt}: {'within' if ok else 'more than'} "
                    f"[gate] unmeasured_tolerance = {gate.unmeasured_tolerance:g}")
    ok = cand[0] >= gate.min_class_recall - 1e-9
    return ok, (f"{cand_txt}, {champ_txt}: {'at least' if ok else 'below'} [gate] min_class_recall = "
                f"{gate.min_class_recall:g}")


def unmeasured_phrase(unmeasured: Sequence[UnmeasuredClass], gate: GateConfig) -> str:
    """``"unmeasured on gold (fewer than 5 gold examples): class '7' (0 gold examples; ...)"``, or ""."""
    if not unmeasured:
        return ""
    return (f"unmeasured on gold (fewer than {min_class_gold(gate)} gold examples, [gate] unmeasured = "
            f"{gate.unmeasured!r}): " + ", ".join(u.detail for u in unmeasured))


# ---- gold versions --------------------------------------------------------------------------


@dataclass(frozen=True)
class GoldVersion:
    """A gold set's version: the content hash of its (example id, feature hash, label) rows."""

    version: str
    n_gold: int


@dataclass(frozen=True)
class GoldChange:
    """How gold version ``after`` differs from ``before``: labels changed in place, examples whose
    input columns changed, examples added and removed (or discarded)."""

    before: str
    after: str
    relabelled: int
    content: int
    added: int
    removed: int

    def line(self) -> str:
        """One line for people."""
        parts = [f"{self.relabelled} label(s) changed in place"]
        if self.content:
            parts.append(f"{self.content} example(s) with new input values")
        parts += [f"{self.added} added", f"{self.removed} removed"]
        return f"gold changed since gold {self.before} (now gold {self.after}): {', '.join(parts)}"


_GOLD_ROWS = ("SELECT ce.example_id, ce.feature_hash, cl.label FROM current_examples ce "
              "JOIN current_labels cl USING (example_id) WHERE ce.is_gold AND cl.label IS NOT NULL "
              "ORDER BY ce.example_id")


def current_gold_version(con: duckdb.DuckDBPyConnection) -> tuple[GoldVersion, list[tuple[str, int, str]]]:
    """The gold set in force (the examples :func:`~data_engine.ship.evaluation.load_gold` reads) and
    its version. Read-only: a sensor may call it."""
    rows = [(str(e), int(h), str(lab)) for e, h, lab in con.execute(_GOLD_ROWS).fetchall()]
    # A hash of the canonical JSON lines (no library versions gold sets; sha256 is the stdlib's).
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
    return GoldVersion(digest.hexdigest()[:VERSION_CHARS], len(rows)), rows


def record_gold_version(con: duckdb.DuckDBPyConnection) -> GoldVersion:
    """The current gold version, stored with its labels the first time it is seen."""
    gold, rows = current_gold_version(con)
    if con.execute("SELECT count(*) FROM gold_versions WHERE gold_version = ?", [gold.version]).fetchall()[0][0]:
        con.execute("UPDATE gold_versions SET last_seen = now() WHERE gold_version = ?", [gold.version])
        return gold
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["example_id", "feature_hash", "label"]).astype({"feature_hash": "uint64"})
    con.register("_gold_rows", frame)
    try:
        con.execute("INSERT INTO gold_version_labels SELECT ?, example_id, feature_hash, label FROM _gold_rows",
                    [gold.version])
    finally:
        con.unregister("_gold_rows")
    con.execute("INSERT INTO gold_versions (gold_version, n_gold) VALUES (?, ?)", [gold.version, gold.n_gold])
    return gold


def gold_change(con: duckdb.DuckDBPyConnection, before: str, after: str) -> GoldChange | None:
    """How stored gold version ``after`` differs from ``before`` (None when equal or ``before`` is not stored)."""
    if before == after or not con.execute("SELECT count(*) FROM gold_versions WHERE gold_version = ?",
                                          [before]).fetchall()[0][0]:
        return None
    row = con.execute(
        "WITH a AS (SELECT * FROM gold_version_labels WHERE gold_version = ?), "
        "b AS (SELECT * FROM gold_version_labels WHERE gold_version = ?) "
        "SELECT count(*) FILTER (WHERE a.example_id IS NOT NULL AND b.example_id IS NOT NULL AND a.label <> b.label), "
        "count(*) FILTER (WHERE a.example_id IS NOT NULL AND b.example_id IS NOT NULL "
        "AND a.feature_hash <> b.feature_hash), "
        "count(*) FILTER (WHERE a.example_id IS NULL), count(*) FILTER (WHERE b.example_id IS NULL) "
        "FROM a FULL OUTER JOIN b USING (example_id)", [before, after]).fetchall()[0]
    return GoldChange(before, after, *(int(v) for v in row))


def note_gold_change(con: duckdb.DuckDBPyConnection) -> str | None:
    """Record the current gold version; the line saying how it differs from the version seen last
    (None when unchanged, or for the first gold). ``ingest --gold`` says it, so a relabel in place
    is never taken silently."""
    seen = con.execute("SELECT gold_version FROM gold_versions ORDER BY last_seen DESC LIMIT 1").fetchall()
    gold = record_gold_version(con)
    change = gold_change(con, seen[0][0], gold.version) if seen else None
    if change is None:
        return None
    return (f"{change.line()}; the champion is re-scored on it by `data-engine score` or the gold sensor, and "
            "the next gate verdict is decided on it")


def last_verdict_gold(con: duckdb.DuckDBPyConnection) -> str | None:
    """The gold version of the newest gate verdict that recorded one."""
    row = con.execute("SELECT gold_version FROM gate_verdicts WHERE gold_version IS NOT NULL "
                      "ORDER BY verdict_id DESC LIMIT 1").fetchall()
    return row[0][0] if row else None


def last_scored_gold(con: duckdb.DuckDBPyConnection, version: int) -> tuple[str, float | None, float | None] | None:
    """``(gold version, accuracy, macro-F1)`` of model ``version``'s newest gold score, or None."""
    row = con.execute("SELECT gold_version, accuracy, macro_f1 FROM gold_scores WHERE model_version = ? "
                      "ORDER BY score_id DESC LIMIT 1", [int(version)]).fetchall()
    return None if not row else (str(row[0][0]), row[0][1], row[0][2])


def record_gold_score(con: duckdb.DuckDBPyConnection, version: int, gold: GoldVersion, evaluation: Any,
                      unmeasured: Sequence[str]) -> None:
    """Store model ``version``'s figures (an :class:`~data_engine.ship.evaluation.Evaluation`) on ``gold``."""
    con.execute("INSERT INTO gold_scores (model_version, gold_version, n_gold, accuracy, macro_f1, unmeasured) "
                "VALUES (?, ?, ?, ?, ?, ?)", [int(version), gold.version, int(evaluation.n_gold),
                                              evaluation.accuracy, evaluation.macro_f1, list(unmeasured)])


__all__ = ["GoldChange", "GoldVersion", "OOF_PARAM", "UnmeasuredClass", "assess_unmeasured",
           "current_gold_version", "gold_change", "last_scored_gold", "last_verdict_gold", "min_class_gold",
           "note_gold_change", "out_of_fold_recall", "record_gold_score", "record_gold_version", "recorded_out_of_fold",
           "unmeasured_phrase"]

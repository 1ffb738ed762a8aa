"""Run the tags or numbers loop measurement (scripts/measure_tags_loop.py,
scripts/measure_numbers_loop.py) over several sets and seeds, one process each, appending each
run's JSON line to LOG, then print the share of the noisy-to-clean gap closed as mean ± standard
error over the seeds per set.

    PYTHONPATH=. python scripts/measure_loop_seeds.py tags|numbers LOG [SET ...] [--seeds 0-4]

A run already in LOG (same kind, set and seed) is not run again: LOG doubles as the table's source
(``--table`` prints the table from LOG alone).
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_SETS = {"tags": ["cancer", "wine", "diabetes"], "numbers": ["diabetes", "wine", "iris", "friedman2", "friedman3"]}


def gaps(record: dict) -> dict[str, float]:
    """The shares of the gap one run closed, by figure."""
    if record["kind"] == "tags":
        return {m: record[m][3] for m in ("accuracy", "micro_f1") if record[m][3] is not None}
    return {"mae": record["gap"]}


def mean_se(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return f"{100 * v.mean():.0f} ± {100 * se:.0f} %"


def table(records: list[dict], kind: str) -> str:
    rows = [r for r in records if r["kind"] == kind]
    lines = []
    for name in dict.fromkeys(r["set"] for r in rows):
        runs = sorted((r for r in rows if r["set"] == name), key=lambda r: r["seed"])
        per = [gaps(r) for r in runs]
        cells = [f"{m} {mean_se([p[m] for p in per if m in p])} ({', '.join(f'{100 * p[m]:.0f}' for p in per if m in p)})"
                 for m in per[0]]
        lines.append(f"{name}: seeds {[r['seed'] for r in runs]}, errors {runs[0]['errors']}, "
                     f"reviews {np.mean([r['reviewed'] for r in runs]):.0f}: " + "; ".join(cells))
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    kind, log = argv[0], Path(argv[1])
    rest = argv[2:]
    seeds = list(range(5))
    if "--seeds" in rest:
        i = rest.index("--seeds")
        lo, _, hi = rest[i + 1].partition("-")
        seeds = list(range(int(lo), int(hi or lo) + 1))
        rest = rest[:i] + rest[i + 2:]
    only_table = "--table" in rest
    sets = [s for s in rest if s != "--table"] or DEFAULT_SETS[kind]
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    done = {(r["kind"], r["set"], r["seed"]) for r in records}
    script = HERE / ("measure_tags_loop.py" if kind == "tags" else "measure_numbers_loop.py")
    for name in [] if only_table else sets:
        for seed in seeds:
            if (kind, name, seed) in done:
                continue
            run = subprocess.run([sys.executable, str(script), name, str(seed)], capture_output=True, text=True)
            if run.returncode != 0:
                print(f"{name} {seed}: failed\n{run.stderr[-2000:]}", file=sys.stderr, flush=True)
                continue
            record = {"kind": kind, **json.loads(run.stdout.strip().splitlines()[-1])}
            with log.open("a") as f:
                f.write(json.dumps(record) + "\n")
            records.append(record)
            print(json.dumps(record), flush=True)
    print(table([r for r in records if r["set"] in sets], kind))


if __name__ == "__main__":
    main(sys.argv[1:])

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


def figures(record: dict) -> dict[str, tuple[float, float]]:
    """(gain, gap) one run measured per figure, oriented so that higher is better: the cleaned labels'
    gain over the labels as landed and the true labels' gap over them."""
    if record["kind"] == "tags":
        return {m: (record[m][1] - record[m][0], record[m][2] - record[m][0]) for m in ("accuracy", "micro_f1")}
    noisy, final, clean = record["mae"]
    return {"mae": (noisy - final, noisy - clean)}


def mean_se(values: list[float], scale: float = 100.0) -> str:
    v = np.asarray(values, dtype=float)
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return f"{scale * v.mean():.0f} ± {scale * se:.0f}"


def table(records: list[dict], kind: str) -> str:
    """Per set and figure: the share of the gap closed, mean ± s.e. over the seeds (each seed's in
    brackets), the pooled share (mean gain / mean gap: a seed whose gap is near 0 does not dominate
    it) and the mean gap; and the share of injected errors whose label is right after the loop (tags)."""
    rows = [r for r in records if r["kind"] == kind]
    lines = []
    for name in dict.fromkeys(r["set"] for r in rows):
        runs = sorted((r for r in rows if r["set"] == name), key=lambda r: r["seed"])
        per = [figures(r) for r in runs]
        cells = []
        for m in per[0]:
            gain, gap = (np.array([p[m][i] for p in per]) for i in (0, 1))
            shares = gain / np.where(gap == 0, np.nan, gap)
            cells.append(f"{m}: share {mean_se(list(shares))} % ({', '.join(f'{100 * x:.0f}' for x in shares)}), "
                         f"pooled {100 * gain.mean() / gap.mean():.0f} %, gap {gap.mean():.4g}")
        fixed = f", fixed {mean_se([1 - r['left'] / r['errors'] for r in runs])} %" if "left" in runs[0] else ""
        lines.append(f"{name}: seeds {[r['seed'] for r in runs]}, errors {runs[0]['errors']}, "
                     f"reviews {np.mean([r['reviewed'] for r in runs]):.0f}{fixed}; " + "; ".join(cells))
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

"""``data-engine bench scale --mining``: one whole mining run on the generated tabular set, per stage.

Generates ``--rows`` labeled rows (:func:`data_engine.bench.datasets.make_tabular_dataset`, 20 %
uniform label noise at the seed), writes them as one Parquet file, ingests it into a fresh engine
home and runs the engine's own mining step once (:func:`data_engine.mine.run.run_mining`, the code
``data-engine mine`` runs, on the back-end of ``[compute] scheduler``). Per stage it prints wall
seconds and peak resident memory, sampled from /proc every 0.2 s (:class:`data_engine.stages.StageClock`):
of all processes (this one and its joblib workers) and of the largest single process. Wall seconds
depend on the machine's other load (the load average is printed before and after); peak memory
does not. Beside the cost it prints what the run found: the precision and recall of its label
flags against the labels the bench flipped, and the share of flipped labels in its review queue,
so that a change made for speed or memory shows whether it changed the flags.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from data_engine.bench.folders import bench_folder

# Stages before mining; the mining stages are named by data_engine.mine.run.
PREPARE_STAGES = ("generate", "write_file", "ingest")
NOISE = 0.2


def run_mining_scale(*, rows: int, seed: int = 0, n_jobs: int = 2, keep: Path | None = None,
                     scheduler: str = "local") -> dict[str, Any]:
    """Generate, ingest and mine ``rows`` tabular rows once; return the figures as a JSON-able dict.

    ``stages``: name -> seconds, ``peak_mib`` (all processes) and ``peak_largest_mib`` (largest
    process); ``mining_seconds`` / ``total_seconds``: sums over the mining stages / all stages;
    ``peak_mib`` / ``peak_largest_mib``: maxima over all stages; ``load_before`` / ``load_after``:
    1-minute load averages. ``keep`` keeps the engine home there. Raises ``EngineError`` when
    ``rows`` < 100 or the batch is not ingested whole.
    """
    import numpy as np

    from data_engine.bench.datasets import inject_noise, make_tabular_dataset
    from data_engine.bench.detect import write_batch
    from data_engine.bench.homes import make_home
    from data_engine.errors import EngineError
    from data_engine.mine.run import run_mining
    from data_engine.stages import StageClock
    from data_engine.steps import ingest
    from data_engine.store.warehouse import open_warehouse

    if rows < 100:
        raise EngineError(f"bench scale --mining: need --rows >= 100, got {rows}")
    clock = StageClock(track_memory=True)
    load_before = os.getloadavg()[0]
    with bench_folder(keep, "bench-scale-mining-") as workdir:
        with clock.stage("generate"):
            data = make_tabular_dataset(rows, seed=seed)
            noisy = inject_noise(data.labels, data.classes, rate=NOISE, kind="uniform", seed=seed)
            is_flipped = noisy != data.labels
            flipped = int(is_flipped.sum())
        with clock.stage("write_file"):
            home = make_home(keep or workdir / "home", data, model="auto", n_jobs=n_jobs, budget=max(1, flipped))
            if scheduler != "local":
                with home.config_path.open("a", encoding="utf-8") as f:
                    f.write(f'\n[compute]\nscheduler = "{scheduler}"\n')
            ids = np.char.add("ex", np.arange(rows).astype(str)).astype(object)
            path = write_batch(home, data, ids, noisy)
            del data, noisy, ids  # the run reads the warehouse, not these
        with open_warehouse(home) as con:
            with clock.stage("ingest"):
                done = ingest(con, home, path)
            if done.status != "ingested" or done.rows_ok != rows:
                raise EngineError(f"bench scale --mining: batch not fully ingested: {done.status} "
                                  f"{done.reason or ''} ({done.rows_ok} of {rows} rows)")
            summary = run_mining(con, home.config, home=home, clock=clock)
            found = flag_quality(con, summary.run_id, is_flipped)
    stages = {name: {"seconds": round(sec, 2), "peak_mib": round(clock.peak_mib.get(name, 0.0), 1),
                     "peak_largest_mib": round(clock.peak_largest_mib.get(name, 0.0), 1)}
              for name, sec in clock.seconds.items()}
    mining = [s for n, s in stages.items() if n not in PREPARE_STAGES]
    return {
        "rows": rows, "seed": seed, "n_jobs": n_jobs, "scheduler": scheduler, "flipped": flipped,
        "n_labeled": summary.n_labeled, "queue_size": summary.queue_size, "counts": summary.counts,
        "model_spec": summary.model_spec, "stages": stages, **found,
        "mining_seconds": round(sum(s["seconds"] for s in mining), 2),
        "total_seconds": round(sum(s["seconds"] for s in stages.values()), 2),
        "peak_mib": max(s["peak_mib"] for s in stages.values()),
        "peak_largest_mib": max(s["peak_largest_mib"] for s in stages.values()),
        "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
    }


def format_mining_scale(r: dict[str, Any]) -> str:
    """A per-stage table of :func:`run_mining_scale`'s figures."""
    out = [f"bench scale --mining: {r['rows']:,} generated tabular rows ({r['flipped']:,} labels flipped), "
           f"model {r['model_spec']}, {r['n_jobs']} jobs, back-end {r['scheduler']}; "
           f"load average {r['load_before']:.2f} before, {r['load_after']:.2f} after", "",
           f"{'stage':16s} {'seconds':>9s} {'peak MiB all':>13s} {'largest proc':>13s}"]
    for name, s in r["stages"].items():
        out.append(f"{name:16s} {s['seconds']:9.2f} {s['peak_mib']:13,.1f} {s['peak_largest_mib']:13,.1f}")
    out.append(f"{'mining total':16s} {r['mining_seconds']:9.2f}")
    out.append(f"{'total':16s} {r['total_seconds']:9.2f} {r['peak_mib']:13,.1f} {r['peak_largest_mib']:13,.1f}")
    out.append(f"\nflagged per issue type: {json.dumps(r['counts'])}; queue {r['queue_size']:,} rows")
    out.append(f"label flags against the {r['flipped']:,} flipped labels: precision {r['label_precision']:.3f}, "
               f"recall {r['label_recall']:.3f}; flipped labels in the queue: {r['queue_flipped']:,} "
               f"({r['queue_flipped_share']:.1%} of it)")
    return "\n".join(out)


def flag_quality(con: Any, run_id: int, is_flipped: Any) -> dict[str, Any]:
    """What mining run ``run_id`` found of the flipped labels: ``is_flipped`` (bool, shape (N,)) marks
    row i, example id ``ex{i}``. Returns ``label_precision`` and ``label_recall`` of the run's label
    flags (0.0 when there is nothing to divide by), ``queue_flipped`` (flipped examples in its review
    queue) and ``queue_flipped_share`` (of the queue's rows)."""
    import numpy as np

    def rows(sql: str) -> np.ndarray:
        # Row numbers from the ids in DuckDB: ten million ids never become Python strings.
        found = con.execute(f"SELECT CAST(substr(example_id, 3) AS BIGINT) AS r FROM ({sql})", [run_id]).fetchnumpy()
        return np.asarray(found["r"], dtype=np.int64)

    flagged = rows("SELECT example_id FROM issues WHERE run_id = ? AND issue_type = 'label' AND is_issue")
    queued = rows("SELECT example_id FROM review_queue WHERE run_id = ?")
    hits, total = int(is_flipped[flagged].sum()), int(is_flipped.sum())
    in_queue = int(is_flipped[queued].sum())
    return {"label_precision": hits / len(flagged) if len(flagged) else 0.0,
            "label_recall": hits / total if total else 0.0,
            "queue_flipped": in_queue, "queue_flipped_share": in_queue / len(queued) if len(queued) else 0.0}

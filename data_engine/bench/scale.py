"""``data-engine bench scale``: the heavy stages of mining and embedding, local against a Dask cluster.

Per stage, the same work runs on the local process pool (``[mining] n_jobs`` = 2, today's default)
and on clusters of 1 and 2 workers started on 127.0.0.1 (``data-engine compute up``'s code), or on
the cluster at ``--scheduler``:

* ``oof``: out-of-fold probabilities of the tabular "auto" ensemble (5 folds x members) on a
  generated labeled set of ``--rows`` rows (:func:`data_engine.bench.datasets.make_tabular_dataset`);
* ``neighbour search``: the nearest-neighbour search (in this process) over the same rows' feature
  embedding (the embedding itself is fitted once, in this process, and not timed per back-end);
* ``embed``: e5-small vectors of ``--embed-texts`` generated sentences, extrapolated linearly
  to ``--texts``; every worker loads the model first (untimed, reported as a per-worker cost) (e5-small embeds about 60 texts/s per core, so 100,000 texts take about half an
  hour per core: the benchmark embeds fewer and says so).

Results are checked equal across back-ends. Besides wall time, each stage's CPU seconds are read
from /proc (psutil) per role: the client (this process: splitting, pickling, shipping, gathering,
the steps that stay here), the workers (local pool processes or Dask workers) and the Dask
scheduler. CPU seconds do not grow when other programs load the machine, wall time does. On the
largest cluster they give T(W) = client + scheduler + workers / min(W, tasks) (a stage cannot use
more workers than it has tasks): the time with W dedicated cores per worker, which predicts 10 and
100 workers. On a machine with fewer cores than workers + 1 a cluster cannot beat the local pool;
the figures then measure the overhead of shipping tasks, not the speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from data_engine.compute.backend import Backend, LocalBackend, connect
from data_engine.store.home import Home

STAGES = ("oof", "neighbour search", "embed")
PREDICT_WORKERS = (10, 100)
FOLDS = 5


@dataclass
class Run:
    """One back-end's timings (seconds per stage) and what it cost to start."""

    backend: str
    workers: int | None
    seconds: dict[str, float]
    tasks: dict[str, int]
    # Per stage, CPU seconds per role: "client", "workers", "scheduler".
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)
    startup_s: float | None = None
    worker_rss_mib: float | None = None


@dataclass
class ScaleBench:
    """All runs, the sizes they ran at, and the fitted per-stage model."""

    rows: int
    embed_texts: int
    texts: int
    cores: int
    runs: list[Run] = field(default_factory=list)
    model: dict[str, dict[str, float]] = field(default_factory=dict)


def register_bench() -> None:
    """Add ``bench scale`` to the ``bench`` command group."""
    from data_engine.commands.bench import add_benchmark

    add_benchmark("scale", "mining and embedding: local process pool against a Dask cluster, per stage",
                  add_arguments, cmd_bench_scale)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``bench scale``."""
    p.add_argument("--rows", type=int, default=1_000_000, help="labeled tabular rows to mine (default 1000000)")
    p.add_argument("--texts", type=int, default=100_000, help="texts whose embedding time is reported (default 100000)")
    p.add_argument("--embed-texts", type=int, default=1_000,
                   help="texts actually embedded; the time is scaled to --texts (default 1000)")
    p.add_argument("--workers", default="1,2", help="cluster sizes to start on 127.0.0.1 (default 1,2)")
    p.add_argument("--scheduler", default=None, help="use this running cluster instead of starting any")
    p.add_argument("--mining", action="store_true",
                   help="instead: generate --rows tabular rows, ingest them into a fresh home and run the engine's "
                   "mining once, printing seconds and peak memory (all processes, largest process) per stage "
                   "(data_engine/bench/scale_mining.py)")
    p.add_argument("--n-jobs", type=int, default=2, help="with --mining: [mining] n_jobs of the run (default 2)")
    p.add_argument("--keep", type=Path, default=None, help="with --mining: keep the engine home at this path")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def cmd_bench_scale(args: argparse.Namespace, home: Home) -> int:
    """Handler of ``bench scale`` (the ``--home`` is not used: clusters get temporary homes)."""
    if args.mining:
        from data_engine.bench.scale_mining import format_mining_scale, run_mining_scale

        figures = run_mining_scale(rows=args.rows, n_jobs=args.n_jobs, keep=args.keep,
                                   scheduler=args.scheduler or "local")
        print(json.dumps(figures, indent=2) if args.json else format_mining_scale(figures))
        return 0
    sizes = [int(w) for w in str(args.workers).split(",") if w.strip()]
    result = run_scale_bench(rows=args.rows, texts=args.texts, embed_texts=args.embed_texts, workers=sizes,
                             scheduler=args.scheduler)
    print(json.dumps(asdict(result), indent=2) if args.json else format_result(result))
    return 0


def _texts(n: int, seed: int = 0) -> list[str]:
    """``n`` generated review-like sentences (a few hundred distinct words, varied lengths)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    subjects = ["the parcel", "my order", "this phone", "the hotel room", "our waiter", "the film", "the battery",
                "customer service", "the delivery", "this blender", "the screen", "the staff"]
    verbs = ["arrived", "worked", "felt", "looked", "sounded", "broke", "lasted", "performed", "behaved", "held up"]
    adverbs = ["really", "quite", "surprisingly", "barely", "absolutely", "never", "mostly", "just"]
    adjectives = ["great", "awful", "fine", "slow", "fast", "cheap", "solid", "flimsy", "friendly", "rude",
                  "brilliant", "disappointing", "noisy", "quiet", "clean", "dirty"]
    tails = ["after a week", "on the first day", "for the price", "as promised", "despite the reviews", "",
             "compared to the last one", "every single time"]
    pick = lambda words: np.asarray(words, dtype=object)[rng.integers(0, len(words), n)]  # noqa: E731
    parts = [pick(subjects), pick(verbs), pick(adverbs), pick(adjectives), pick(tails)]
    return [f"{s} {v} {a} {j} {t}".strip() for s, v, a, j, t in zip(*parts)]


def _workload(rows: int, embed_texts: int) -> dict[str, Any]:
    """The inputs every back-end gets: tabular frame, labels, members, feature embedding, texts."""
    import numpy as np
    import pandas as pd

    from data_engine.bench.datasets import inject_noise, make_tabular_dataset
    from data_engine.mine.embedders.tfidf import TfidfEmbedder
    from data_engine.mine.models import Schema, build_members, resolve_spec

    data = make_tabular_dataset(rows, seed=0)
    classes = sorted(set(data.labels))
    noisy = inject_noise(data.labels, classes, rate=0.1, kind="uniform", seed=0)
    labels = pd.Series(noisy).map({c: i for i, c in enumerate(classes)}).to_numpy(dtype=np.int64)
    spec = resolve_spec("auto", "tabular", seed=0, n_rows=rows)
    members = build_members(spec, Schema.from_mapping(data.schema))
    features = TfidfEmbedder(schema=data.schema, modality="tabular", seed=0).fit_transform(data.frame)
    return {"X": data.frame[list(data.schema)], "labels": labels, "n_classes": len(classes), "members": members,
            "features": features, "texts": pd.DataFrame({"text": _texts(embed_texts)}), "spec": spec.key}


def _run_stages(backend: Backend, work: dict[str, Any]) -> tuple[dict[str, float], dict[str, int], dict[str, Any],
                                                                 dict[str, dict[str, float]]]:
    """Time each stage on ``backend``; return wall seconds, task counts, the outputs (for the
    equality check) and CPU seconds per role."""
    from data_engine.compute.embedding import EMBED_BATCH_ROWS, embed_frame
    from data_engine.mine.detectors import neighbours as nb
    from data_engine.mine.embedders import get_embedder
    from data_engine.tasks.oof import ensemble_out_of_fold_probabilities

    n_texts = len(work["texts"])
    # At least 8 batches, so that every worker gets some even when few texts are embedded.
    batch_rows = max(1, min(EMBED_BATCH_ROWS, -(-n_texts // 8)))
    steps = {
        "oof": lambda: ensemble_out_of_fold_probabilities(work["members"], work["X"], work["labels"], work["n_classes"],
                                                          folds=FOLDS, seed=0, compute=backend).probs,
        "neighbour search": lambda: nb.find_neighbours(work["features"], compute=backend).indices,
        "embed": lambda: embed_frame(get_embedder("e5-small"), work["texts"], ["text"], compute=backend,
                                     batch_rows=batch_rows),
    }
    seconds: dict[str, float] = {}
    cpu: dict[str, dict[str, float]] = {}
    out: dict[str, Any] = {}
    # The model loads once per worker process: a start-up cost, not a cost per text.
    warm = work["texts"].head(4 * backend.slots)
    before = _cpu_by_role(backend)
    embed_frame(get_embedder("e5-small"), warm, ["text"], compute=backend, batch_rows=1)
    cpu["model load"] = _cpu_since(before, backend)
    for stage, step in steps.items():
        before = _cpu_by_role(backend)
        t = time.perf_counter()
        out[stage] = step()
        seconds[stage] = time.perf_counter() - t
        cpu[stage] = _cpu_since(before, backend)
    n = len(work["X"])
    tasks = {"oof": FOLDS * len(work["members"]),
             "neighbour search": 1,  # in this process (faiss HNSW or exact), not tasks
             "embed": -(-n_texts // batch_rows)}
    return seconds, tasks, out, cpu


def _cpu_since(before: dict[str, dict[int, float]], backend: Backend) -> dict[str, float]:
    """CPU seconds per role spent since ``before`` (a process new since then counts from zero)."""
    after = _cpu_by_role(backend)
    return {role: sum(v - before[role].get(pid, 0.0) for pid, v in after[role].items()) for role in after}


def _cpu_by_role(backend: Backend) -> dict[str, dict[int, float]]:
    """User + system CPU seconds of each process, by role (see the module docstring)."""
    import psutil

    me = psutil.Process()
    client = getattr(backend, "client", None)
    if client is None:
        roles = {"client": [me.pid], "workers": [c.pid for c in me.children(recursive=True)], "scheduler": []}
    else:
        roles = {"client": [me.pid], "workers": list(client.run(os.getpid).values()),
                 "scheduler": [client.run_on_scheduler(os.getpid)]}
    found: dict[str, dict[int, float]] = {}
    for role, pids in roles.items():
        found[role] = {}
        for pid in pids:
            try:
                t = psutil.Process(pid).cpu_times()
            except psutil.Error:  # a pool process that just ended
                continue
            found[role][pid] = t.user + t.system
    return found


def _worker_rss_mib(backend: Backend) -> float | None:
    """Median (upper, for an even count) resident memory of the cluster's worker processes after the stages, MiB."""
    from data_engine.stages import tree_rss_bytes

    pids = getattr(backend, "client", None) and backend.client.run(os.getpid)
    sizes = [tree_rss_bytes(pid) for pid in (pids or {}).values()]
    sizes = [s for s in sizes if s]
    return float(sorted(sizes)[len(sizes) // 2]) / 2**20 if sizes else None


def run_scale_bench(*, rows: int, texts: int, embed_texts: int, workers: list[int],
                    scheduler: str | None = None) -> ScaleBench:
    """Run the stages locally and on each cluster; see the module docstring."""
    import numpy as np

    from data_engine.compute.cluster import start_cluster, stop_cluster
    from data_engine.errors import EngineError

    if rows < 1000 or embed_texts < 1 or texts < embed_texts:
        raise EngineError("bench scale: need --rows >= 1000, --embed-texts >= 1 and --texts >= --embed-texts")
    result = ScaleBench(rows=rows, embed_texts=embed_texts, texts=texts, cores=os.cpu_count() or 1)
    work = _workload(rows, embed_texts)
    seconds, tasks, reference, cpu = _run_stages(LocalBackend(2), work)
    result.runs.append(Run("local (2 processes)", None, seconds, tasks, cpu))
    targets = [(None, scheduler)] if scheduler else [(w, None) for w in workers]
    for size, address in targets:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            home = Home(Path(tmp))
            started = time.perf_counter()
            try:
                if address is None:
                    address = start_cluster(home, workers=size, port=0)
                startup = time.perf_counter() - started if size else None
                backend = connect(address)
                try:
                    seconds, tasks, out, cpu = _run_stages(backend, work)
                    rss = _worker_rss_mib(backend)
                    n = backend.slots
                finally:
                    backend.close()
            finally:
                if size:
                    stop_cluster(home)
        for stage in STAGES:
            if not np.array_equal(out[stage], reference[stage]):
                raise EngineError(f"bench scale: stage {stage!r} on the cluster differs from the local result")
        result.runs.append(Run(f"dask, {n} worker(s)", n, seconds, tasks, cpu, startup, rss))
    result.model = fit_model(result)
    return result


def fit_model(result: ScaleBench) -> dict[str, dict[str, float]]:
    """Per stage, T(W) = client + scheduler + workers / min(W, tasks) in CPU seconds of the largest
    cluster's run; its predictions for :data:`PREDICT_WORKERS` workers and what one more worker
    saves there (seconds; embed scaled to ``texts``)."""
    from data_engine.compute.embedding import EMBED_BATCH_ROWS

    clusters = [r for r in result.runs if r.workers]
    if not clusters:
        return {}
    run = max(clusters, key=lambda r: r.workers)
    model: dict[str, dict[str, float]] = {}
    for stage in STAGES:
        scale = result.texts / result.embed_texts if stage == "embed" else 1.0
        c = run.cpu[stage]
        serial, work = c["client"] + c["scheduler"], c["workers"]
        # Embedding is extrapolated to --texts, in batches of the engine's default size.
        tasks = -(-result.texts // EMBED_BATCH_ROWS) if stage == "embed" else run.tasks[stage]
        entry = {"serial_s": serial * scale, "work_s": work * scale,
                 "next_worker_saves_s": (work / min(run.workers, tasks) - work / min(run.workers + 1, tasks)) * scale}
        for w in PREDICT_WORKERS:
            entry[f"predicted_{w}_workers_s"] = (serial + work / min(w, tasks)) * scale
        model[stage] = entry
    return model


def format_result(result: ScaleBench) -> str:
    """A per-stage table: seconds per back-end, overhead against local, the fitted prediction."""
    scale = result.texts / result.embed_texts
    lines = [f"bench scale: {result.rows:,} labeled tabular rows (oof: {FOLDS} folds; neighbour search), "
             f"{result.embed_texts:,} texts embedded (e5-small) and scaled x{scale:g} to {result.texts:,}; "
             f"{result.cores} cores", ""]
    head = "stage".ljust(18) + "".join(r.backend.rjust(22) for r in result.runs) + "tasks".rjust(8)
    lines.append(head)
    local = result.runs[0]
    for stage in STAGES:
        k = scale if stage == "embed" else 1.0
        cells = "".join(f"{r.seconds[stage] * k:21.1f}s" for r in result.runs)
        lines.append(stage.ljust(18) + cells + f"{local.tasks[stage]:8d}")
        cells = "".join(f"{sum(r.cpu[stage].values()) * k:17.1f} cpu-s" for r in result.runs)
        lines.append("".ljust(18) + cells)
    lines.append("")
    for r in result.runs[1:]:
        over = ", ".join(f"{s} {(sum(r.cpu[s].values()) - sum(local.cpu[s].values())) * (scale if s == 'embed' else 1):+.1f}"
                         f" cpu-s ({r.cpu[s]['client'] * (scale if s == 'embed' else 1):.1f} in this process)"
                         for s in STAGES)
        extra = f"; started in {r.startup_s:.1f}s" if r.startup_s is not None else ""
        rss = f"; {r.worker_rss_mib:.0f} MiB per worker after the stages" if r.worker_rss_mib else ""
        rss += f"; e5 model load {r.cpu['model load']['workers'] / r.workers:.1f} cpu-s per worker"
        lines.append(f"{r.backend} against local: {over}{extra}{rss}")
    if result.model:
        lines += ["", "T(W) = client + scheduler + workers / min(W, tasks), CPU seconds of the largest cluster:"]
        for stage, m in result.model.items():
            preds = ", ".join(f"{w} workers {m[f'predicted_{w}_workers_s']:.1f}s" for w in PREDICT_WORKERS)
            lines.append(f"  {stage}: serial {m['serial_s']:.1f}s, work {m['work_s']:.1f}s, "
                         f"one more worker saves {m['next_worker_saves_s']:.1f}s; {preds}")
    if result.cores < max((r.workers or 0) for r in result.runs) + 1:
        lines += ["", f"Note: {result.cores} cores for the workers and this process: a cluster cannot beat "
                      f"the local pool here; the differences are the cost of shipping tasks and data."]
    lines.append("Wall seconds depend on the machine's other load; cpu-s do not. All stages' results on the "
                 "cluster equal the local ones.")
    return "\n".join(lines)

"""``data-engine bench scale --mining`` as a user runs it, at a small size: one real mining run on the
generated tabular set, seconds and peak memory (all processes, largest process) per stage."""

from __future__ import annotations

import json

import numpy as np

from tests.cli.test_cli_core import cli

MINING_STAGES = {"load", "embedding", "predictions", "score_unlabeled", "neighbours", "detectors", "columns",
                 "slices", "noise", "queue", "store"}


def test_bench_scale_mining_prints_seconds_and_peak_memory_per_stage(tmp_path) -> None:
    from data_engine.bench.datasets import inject_noise, make_tabular_dataset
    from data_engine.bench.scale_mining import NOISE, PREPARE_STAGES, format_mining_scale
    from data_engine.store.warehouse import open_warehouse
    from data_engine.store.home import Home

    proc = cli("bench", "scale", "--mining", "--rows", "300", "--n-jobs", "1", "--json", "--keep", str(tmp_path / "h"))
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    data = make_tabular_dataset(300, seed=0)
    noisy = inject_noise(data.labels, data.classes, rate=NOISE, kind="uniform", seed=0)
    flipped = int((noisy != data.labels).sum())
    # The flags' quality, recomputed from the kept home's tables by example id.
    flipped_ids = {f"ex{i}" for i in np.flatnonzero(noisy != data.labels)}
    with open_warehouse(Home.resolve(tmp_path / "h"), read_only=True) as con:
        flagged = con.execute("SELECT example_id FROM issues WHERE issue_type = 'label' AND is_issue").fetchall()
        flags = {row[0] for row in flagged}
        queue = [row[0] for row in con.execute("SELECT example_id FROM review_queue").fetchall()]
    assert r["label_precision"] == len(flags & flipped_ids) / len(flags)
    assert r["label_recall"] == len(flags & flipped_ids) / flipped and r["label_recall"] > 0.3
    assert r["queue_flipped"] == len(set(queue) & flipped_ids)
    assert r["queue_flipped_share"] == r["queue_flipped"] / len(queue)
    assert (r["rows"], r["n_labeled"], r["flipped"], r["n_jobs"], r["scheduler"]) == (300, 300, flipped, 1, "local")
    assert set(r["stages"]) == set(PREPARE_STAGES) | MINING_STAGES
    # The queue's budget is the number of flipped labels; it holds only flagged examples.
    assert 0 < r["queue_size"] <= flipped and r["counts"]["label"] > 0
    for name, s in r["stages"].items():
        # Every process is counted in "all"; the largest is one of them (20 MiB: an interpreter at least).
        assert 20 < s["peak_largest_mib"] <= s["peak_mib"], name
    assert r["peak_mib"] == max(s["peak_mib"] for s in r["stages"].values())
    assert r["peak_largest_mib"] == max(s["peak_largest_mib"] for s in r["stages"].values())
    mining = sum(s["seconds"] for n, s in r["stages"].items() if n in MINING_STAGES)
    assert np.isclose(r["mining_seconds"], mining, atol=0.02)
    assert np.isclose(r["total_seconds"], sum(s["seconds"] for s in r["stages"].values()), atol=0.02)
    text = format_mining_scale(r)
    assert "largest proc" in text and "mining total" in text and "300 generated tabular rows" in text
    assert f"label flags against the {flipped} flipped labels: precision {r['label_precision']:.3f}" in text


def test_stage_clock_records_the_largest_process_beside_all_processes() -> None:
    from data_engine.compute.backend import LocalBackend
    from data_engine.stages import StageClock, tree_rss

    total, largest = tree_rss()
    assert 0 < largest <= total
    clock = StageClock(track_memory=True)
    backend = LocalBackend(2)
    with clock.stage("pool"):
        assert backend.starmap(pow, [(2, i) for i in range(4)]) == [1, 2, 4, 8]
    backend.close()  # stops the workers: only this process (and loky's resource trackers) remain
    assert 0 < clock.peak_largest_mib["pool"] < clock.peak_mib["pool"]
    alone = StageClock(track_memory=True, with_children=False)
    with alone.stage("me"):
        pass
    assert alone.peak_mib["me"] == alone.peak_largest_mib["me"] > 0

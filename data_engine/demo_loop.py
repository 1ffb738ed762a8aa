"""`make demo`'s main job: rounds of the loop on the digits default, then the course's comparison.

Each round runs the same core code the Dagster sensors run (mine, push to Label Studio, pull the
verdicts, retrain, gate, deploy), with the simulated reviewer answering in the real Label Studio
in between. The oracle file is read here and by the simulated reviewer only: to *measure* the
engine (queue precision, true errors), never to steer it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from data_engine.home import Home


@dataclass
class RoundReport:
    """One round of the loop, as printed."""

    round: int
    queued: int
    reviewed: int
    corrected: int
    queue_precision: float | None
    gold_accuracy: float | None
    champion_version: int | None
    gate: str

    def line(self) -> str:
        """One line for people."""
        prec = "n/a" if self.queue_precision is None else f"{self.queue_precision:.2f}"
        acc = "n/a" if self.gold_accuracy is None else f"{self.gold_accuracy:.4f}"
        return (f"round {self.round}: queued {self.queued}, reviewed {self.reviewed}, corrected {self.corrected}, "
                f"queue precision {prec}, gold accuracy {acc}, champion v{self.champion_version} ({self.gate})")


def ingest_landing(home: Home) -> list[Any]:
    """Ingest every file in the landing folder (what the landing sensor does, file by file)."""
    from data_engine.ingest import ingest_file, is_gold_path
    from data_engine.readers import FORMATS
    from data_engine.warehouse import open_warehouse

    files = sorted(p for p in home.landing.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)
    with open_warehouse(home) as con:
        return [ingest_file(con, home.config.dataset, p, gold=is_gold_path(home, p)) for p in files]


def _train_and_deploy(home: Home, *, force: bool = False) -> tuple[int | None, float | None, str]:
    """Retrain when the retrain sensor's rule says so (or ``force``), gate, deploy if it passes.

    Returns (champion version, its gold accuracy, what happened).
    """
    from data_engine.deploy import deploy_if_better
    from data_engine.registry import current_champion
    from data_engine.training import retrain_decision, train_candidate
    from data_engine.warehouse import open_warehouse

    with open_warehouse(home) as con:
        decision = retrain_decision(con, home.config)
        if decision.retrain or force:
            train_candidate(con, home)
            verdict, deployment = deploy_if_better(con, home)
            gate = f"promoted v{deployment.model_version}" if deployment else f"refused: {verdict.reason}"
        else:
            gate = f"no retrain: {decision.reason}"
        champ = current_champion(con)
    acc = champ.metrics.get("accuracy") if champ is not None and champ.metrics else None
    return (champ.version if champ else None), acc, gate


def _round_truth(home: Home, oracle: pd.DataFrame, since_event: int) -> tuple[int, int, int]:
    """Reviews pulled after ``since_event``: (reviewed, corrected, reviewed whose given label was wrong)."""
    from data_engine.warehouse import open_warehouse

    with open_warehouse(home, read_only=True) as con:
        reviews = con.execute(
            "SELECT r.example_id, r.label, "
            "(SELECT i.label FROM label_events i WHERE i.example_id = r.example_id AND i.source = 'ingest' "
            " ORDER BY i.event_id DESC LIMIT 1) AS given "
            "FROM label_events r WHERE r.source IN ('review', 'consensus') AND r.event_id > ?",
            [since_event],
        ).fetchdf()
    if reviews.empty:
        return 0, 0, 0
    truth = oracle.set_index("example_id")["label"].astype(str)
    given = reviews["given"].astype(str)
    corrected = int((reviews["label"].astype(str) != given).sum())
    wrong = int((truth.reindex(reviews["example_id"]).to_numpy() != given.to_numpy()).sum())
    return len(reviews), corrected, wrong


def _accuracy_with_labels(home: Home, spec_name: str, labels: pd.Series) -> float:
    """Gold accuracy of model ``spec_name`` trained on the non-gold examples with ``labels`` (by id)."""
    from data_engine.dataset import load_examples
    from data_engine.models import Schema, build_estimator, resolve_spec
    from data_engine.schema import stored_columns
    from data_engine.warehouse import open_warehouse

    cfg = home.config
    with open_warehouse(home, read_only=True) as con:
        frame = load_examples(con, cfg.dataset, subset="all")
        schema = {c: t for c, t in stored_columns(con).items() if c in cfg.dataset.input_columns}
    train = frame[~frame["is_gold"]]
    gold = frame[frame["is_gold"] & frame["label"].notna()]
    y = labels.reindex(train["example_id"]).astype(str).to_numpy()
    cols = list(schema)
    spec = resolve_spec(spec_name, cfg.dataset.modality, seed=cfg.mining.seed)
    model = build_estimator(spec, Schema.from_mapping(schema)).fit(train[cols], y)
    return float(np.mean(model.predict(gold[cols]).astype(str) == gold["label"].astype(str).to_numpy()))


def compare(home: Home, oracle: pd.DataFrame) -> dict[str, Any]:
    """The course's comparison on gold: model-centric alternatives on the noisy labels vs. clean labels."""
    noisy = oracle.set_index("example_id")["noisy_label"].astype(str)
    clean = oracle.set_index("example_id")["label"].astype(str)
    alternatives = {}
    for family in ("hgb", "linear", "knn"):
        alternatives[family] = _accuracy_with_labels(home, family, noisy)
    best = max(alternatives, key=alternatives.get)
    return {
        "model_centric": alternatives,
        "model_centric_best": best,
        "accuracy_model_centric": alternatives[best],
        "accuracy_clean": _accuracy_with_labels(home, "auto", clean),
    }


def run_demo(home: Home, *, accuracy: float = 0.98, max_rounds: int = 8, budget: int | None = None,
             say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run rounds of the loop until the review budget is spent or nothing is left to review.

    Returns the final figures (also printed as one JSON line by the CLI).
    """
    from data_engine.dataset import label_snapshot, load_classes
    from data_engine.labelstudio.server import ensure_server
    from data_engine.mining import run_mining
    from data_engine.review import effective_weights, make_client, pull_verdicts, push_queue
    from data_engine.simulate import read_oracle, simulate_reviews
    from data_engine.warehouse import open_warehouse

    started = time.perf_counter()
    cfg = home.config
    total_budget = budget if budget is not None else 2 * cfg.review.budget
    info = ensure_server(home)
    say(f"Label Studio: {info.url} ({'re-used' if info.reused else 'started'})")
    results = ingest_landing(home)
    say(f"ingested {sum(r.rows_ok for r in results)} rows from {len(results)} file(s)")
    oracle = pd.read_csv(home.oracle_path, dtype=str)
    oracle_map = read_oracle(home.oracle_path)
    true_errors = int(((oracle["label"] != oracle["noisy_label"]) & (oracle["is_gold"] != "True")).sum())

    champion, gold_acc, gate = _train_and_deploy(home)
    accuracy_noisy = gold_acc
    say(f"round 0: champion v{champion} trained on the labels as they landed: gold accuracy {gold_acc:.4f} ({gate})")
    client = make_client(home)
    rounds: list[RoundReport] = []
    reviewed_total = 0
    try:
        for n in range(1, max_rounds + 1):
            remaining = total_budget - reviewed_total
            if remaining <= 0:
                say("review budget spent")
                break
            with open_warehouse(home) as con:
                summary = run_mining(con, cfg, home=home, weights=effective_weights(con, cfg))
                push = push_queue(con, client, cfg, limit=min(remaining, cfg.review.budget))
                classes = load_classes(con)
                before = label_snapshot(con)
            if push.sent == 0:
                say(f"round {n}: nothing left to review (mining run {getattr(summary, 'run_id', '?')})")
                break
            simulate_reviews(client, push.project_id, oracle_map, classes, accuracy=accuracy, seed=n)
            with open_warehouse(home) as con:
                pull_verdicts(con, client, cfg)
            reviewed, corrected, wrong = _round_truth(home, oracle, before)
            reviewed_total += reviewed
            champion, gold_acc, gate = _train_and_deploy(home)
            report = RoundReport(n, push.sent, reviewed, corrected, (wrong / reviewed) if reviewed else None,
                                 gold_acc, champion, gate)
            rounds.append(report)
            say(report.line())
    finally:
        client.close()
    if rounds and rounds[-1].gate.startswith("no retrain"):
        # The loop would wait for more corrections; the demo ends here, so the last ones count too.
        champion, gold_acc, gate = _train_and_deploy(home, force=True)
        say(f"final retrain on every correction: gold accuracy {gold_acc:.4f}, champion v{champion} ({gate})")
    figures = compare(home, oracle)
    final = {
        "accuracy_noisy": accuracy_noisy,
        "accuracy_model_centric": figures["accuracy_model_centric"],
        "model_centric_best": figures["model_centric_best"],
        "accuracy_final": gold_acc,
        "accuracy_clean": figures["accuracy_clean"],
        "reviewed": reviewed_total,
        "true_errors": true_errors,
        "rounds": len(rounds),
        "seconds": round(time.perf_counter() - started, 1),
    }
    gap = (final["accuracy_clean"] or 0) - (final["accuracy_noisy"] or 0)
    recovered = ((final["accuracy_final"] or 0) - (final["accuracy_noisy"] or 0)) / gap if gap > 0 else None
    say("")
    say("model-centric (other model families on the noisy labels): "
        + ", ".join(f"{k} {v:.4f}" for k, v in figures["model_centric"].items()))
    say(f"data-centric (the default model on the cleaned labels): {final['accuracy_final']:.4f}")
    n_gold = int((oracle["is_gold"] == "True").sum())
    say(f"clean-label ceiling (the default model on the true labels): {final['accuracy_clean']:.4f}"
        f" (on {n_gold} gold examples one example is {1 / max(n_gold, 1):.2%})")
    if recovered is not None:
        say(f"the loop recovered {recovered:.0%} of the noisy-to-clean gap")
    say(f"reviewed {reviewed_total} examples for {true_errors} true label errors")
    final["rounds_detail"] = [asdict(r) for r in rounds]
    return final


def final_json(final: dict[str, Any]) -> str:
    """The closing JSON line (the figures the issue names, first)."""
    keys = ["accuracy_noisy", "accuracy_model_centric", "accuracy_final", "accuracy_clean", "reviewed",
            "true_errors", "rounds", "seconds"]
    return json.dumps({k: final[k] for k in keys} | {"model_centric_best": final["model_centric_best"]})

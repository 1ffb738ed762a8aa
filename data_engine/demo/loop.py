"""`make demo`'s main job: rounds of the loop on a home's data, then the course's comparison.

Each round runs the same core code the Dagster sensors run (mine: :func:`data_engine.steps.mine_step`,
push to Label Studio, pull the verdicts, retrain + gate + deploy: :func:`data_engine.ship.step.ship_step`), with the simulated reviewer answering in the real Label Studio
in between. Any home whose oracle exists works (``HOME/oracle.jsonl`` or the digits demo's
``oracle.csv``, see :mod:`data_engine.review.oracle`). The oracle is read here and by the simulated
reviewer only: to *measure* the engine (queue precision, true errors), never to steer it. The labels
as they landed come from the warehouse's ingest events, not from the oracle.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from data_engine.errors import EngineError
from data_engine.demo.comparison import EVAL_FOLDS, compare, headline_metric
from data_engine.store.home import Home

if TYPE_CHECKING:
    from data_engine.tasks import Task


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
    # The gold figure ``gold_accuracy`` holds: the gate's metric (accuracy for classes, MAE for numbers ...).
    gold_metric: str = "accuracy"
    # Reviews of examples that had no label: first labels, neither corrections nor errors found.
    first_labels: int = 0

    def line(self) -> str:
        """One line for people."""
        prec = "n/a" if self.queue_precision is None else f"{self.queue_precision:.2f}"
        acc = "n/a" if self.gold_accuracy is None else f"{self.gold_accuracy:.4f}"
        first = f" (and {self.first_labels} first label{'s' * (self.first_labels != 1)})" if self.first_labels else ""
        return (f"round {self.round}: queued {self.queued}, reviewed {self.reviewed}, corrected {self.corrected}{first}, "
                f"queue precision {prec}, gold {self.gold_metric} {acc}, champion v{self.champion_version} ({self.gate})")


def ingest_landing(home: Home) -> list[Any]:
    """Ingest every file in the landing folder the landing sensor would ingest (the same rule:
    :func:`data_engine.ingest.landing.not_ingested_reason`), in path order, as its runs do."""
    from data_engine.ingest.landing import not_ingested_reason
    from data_engine.steps import ingest_step

    files = sorted(p for p in home.landing.rglob("*")
                   if p.is_file() and not_ingested_reason(p.relative_to(home.landing).as_posix()) is None)
    return ingest_step(home, files)


def _train_and_deploy(home: Home, *, force: bool = False) -> tuple[int | None, float | None, str]:
    """Retrain when the retrain sensor's rule says so (or ``force``, when reviewed labels are in no
    model yet: the loop's settling retrain), gate, deploy if it passes.

    Returns (champion version, its gold :func:`headline_metric`, what happened).
    """
    from data_engine.ship.registry import current_champion
    from data_engine.ship.step import ship_step
    from data_engine.ship.retrain_decision import retrain_decision
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home) as con:
        decision = retrain_decision(con, home.config)
        if decision.retrain or (force and decision.new_labels > 0):
            step = ship_step(con, home)
            deployment = step.promotion.deployment
            gate = f"promoted v{deployment.model_version}" if deployment else f"refused: {step.verdict.reason}"
        else:
            gate = f"no retrain: {decision.reason}"
        champ = current_champion(con)
    acc = champ.metrics.get(headline_metric(home)) if champ is not None and champ.metrics else None
    return (champ.version if champ else None), acc, gate


def _round_truth(home: Home, oracle: pd.DataFrame, since_event: int) -> tuple[int, int, int, int]:
    """Reviews pulled after ``since_event``: (reviewed, corrected, reviewed whose given label was
    wrong, reviewed that had no label).

    The given label is the one in force before the review (a first reviewer's, for a second opinion).
    An example without one gets its first label: counted apart, neither a correction nor an error
    the queue found (a trial read first labels of unlabeled texts as corrections).
    """
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home, read_only=True) as con:
        reviews = con.execute(
            "SELECT r.example_id, r.label, "
            "(SELECT i.label FROM label_events i WHERE i.example_id = r.example_id AND i.event_id < r.event_id "
            " ORDER BY i.event_id DESC LIMIT 1) AS given "
            "FROM label_events r WHERE r.source IN ('review', 'consensus') AND r.event_id > ?",
            [since_event],
        ).fetchdf()
    if reviews.empty:
        return 0, 0, 0, 0
    truth = oracle.set_index("example_id")["label"].astype(str)
    had = reviews["given"].notna().to_numpy()
    given = reviews["given"].astype(str).to_numpy()
    corrected = int((had & (reviews["label"].astype(str).to_numpy() != given)).sum())
    wrong = int((had & (truth.reindex(reviews["example_id"]).to_numpy() != given)).sum())
    return len(reviews), corrected, wrong, int((~had).sum())


def _without_label(missing: int, unknown: int, refused: int) -> str:
    """Why ``missing`` queued examples got no review label this round, in words: a reviewer who
    sees "queued 60, reviewed 59" asks where the sixtieth went. (A discard is a review label.)"""
    parts = [f"{k} {what}" for k, what in ((unknown, "not in the oracle, so left open"),
                                           (refused, "left open, the answer refused (above)")) if k]
    rest = missing - unknown - refused
    if rest > 0:
        parts.append(f"{rest} not answered by the simulated reviewer this round (a task it had answered before, "
                     "or one a pull could not read)")
    return f"{missing} queued example(s) without a review label: " + ", ".join(parts)


def landed_labels(home: Home) -> pd.Series:
    """The label each example's current version landed with (its ingest event), by example id;
    examples that landed unlabeled are left out."""
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home, read_only=True) as con:
        rows = con.execute(
            "SELECT le.example_id, le.label FROM label_events le JOIN current_examples ce "
            "ON ce.example_id = le.example_id AND le.example_version = ce.version "
            "WHERE le.source = 'ingest' AND le.label IS NOT NULL "
            "QUALIFY row_number() OVER (PARTITION BY le.example_id ORDER BY le.event_id DESC) = 1").fetchall()
    return pd.Series({e: lab for e, lab in rows}, dtype=object)


def _oracle_coverage(home: Home, oracle: pd.DataFrame, landed: pd.Series) -> tuple[int, int]:
    """(training labels that landed wrong, gold examples stored: the gold set the gate scores, whether
    or not the oracle lists them); an error when the oracle names none of the stored examples (ids in another spelling, or the oracle of another data set)."""
    from data_engine.review.oracle import oracle_path
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home, read_only=True) as con:
        stored = con.execute("SELECT example_id, is_gold FROM current_examples").fetchdf()
    truth = oracle.set_index("example_id")["label"]
    known = stored[stored["example_id"].isin(truth.index)]
    if known.empty:
        shown = ", ".join(stored["example_id"].head(3)) or "none stored yet"
        raise EngineError(f"{oracle_path(home)}: none of its {len(truth)} ids is an example of this home "
                          f"(stored ids look like: {shown}); `data-engine export` writes them")
    train = known.loc[~known["is_gold"].astype(bool), "example_id"]
    given = landed.reindex(train)
    wrong = given.notna() & (given.astype(str) != truth.reindex(train).astype(str))
    return int(wrong.sum()), int(stored["is_gold"].astype(bool).sum())


def gold_measured(home: Home, stored: int) -> tuple[int, str]:
    """(gold examples the champion's gold figure is on, words on the ones it is not on) for a home with
    ``stored`` gold examples. Gold without a label in force (discarded) is never scored, and is named
    apart; of the labeled gold, the gate scores those without a copy in the training data
    (:mod:`data_engine.ship.leakage`), so its ``n_gold`` (the champion's ``models.metrics``) can be
    fewer. Copies are counted only while the champion's figure is on the gold version in force (the
    version recorded with it); without a champion the count is the labeled gold.
    """
    from data_engine.ship.gold import current_gold_version
    from data_engine.ship.registry import current_champion
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home, read_only=True) as con:
        champ = current_champion(con)
        gold = current_gold_version(con)[0]
    unlabeled = stored - gold.n_gold
    words = f"; {unlabeled} of the {stored} stored gold examples not scored: no label in force" if unlabeled > 0 else ""
    metrics = (champ.metrics or {}) if champ is not None else {}
    measured = metrics.get("n_gold")
    if measured is None:
        return gold.n_gold, words
    # A gate records the gold version under "gate", a re-score beside the figures.
    seen = metrics.get("gold_version") or (metrics.get("gate") or {}).get("gold_version")
    copies = gold.n_gold - int(measured) if seen == gold.version else 0
    if copies > 0:
        words = (f"; {copies} of the {gold.n_gold} labeled gold examples left out as copies of training examples"
                 + words)
    return int(measured), words


def labels_in_force(home: Home) -> pd.Series:
    """The label in force per example id (``current_labels``; discarded examples left out)."""
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home, read_only=True) as con:
        rows = con.execute("SELECT example_id, label FROM current_labels WHERE NOT is_discarded").fetchall()
    return pd.Series({e: lab for e, lab in rows}, dtype=object)


def run_demo(home: Home, *, accuracy: float = 0.98, max_rounds: int = 8, budget: int | None = None,
             say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run rounds of the loop until the review budget is spent or nothing is left to review.

    Returns the final figures (also printed as one JSON line by the CLI).
    """
    from data_engine.review.project import make_client, review_server
    from data_engine.review.oracle import oracle_path, read_oracle
    from data_engine.review.simulate import simulate_reviews
    from data_engine.tasks import task_for
    from data_engine.steps import mine_step, pull_step, push_step
    from data_engine.store.dataset import label_snapshot, load_classes
    from data_engine.store.warehouse import open_warehouse

    started = time.perf_counter()
    cfg = home.config
    total_budget = budget if budget is not None else 2 * cfg.review.budget
    name = cfg.dataset.name
    # Read before the server starts: a missing or malformed oracle is the user's to fix, at once.
    label_task = task_for(cfg.dataset)
    oracle_map = read_oracle(oracle_path(home), label_task)
    say(f"Label Studio: {review_server(home)}")
    results = ingest_landing(home)
    new = [r for r in results if not r.already_known]
    before = f"{len(results) - len(new)} file(s) ingested before" if len(new) < len(results) else ""
    if new:
        say(f"ingested {sum(r.rows_ok for r in new)} rows from {len(new)} file(s)" + (f"; {before}" if before else ""))
    else:
        say(f"nothing new to ingest ({before or 'landing/ is empty'})")
    oracle = pd.DataFrame({"example_id": list(oracle_map), "label": list(oracle_map.values())}, dtype=str)
    landed = landed_labels(home)
    true_errors, n_gold = _oracle_coverage(home, oracle, landed)
    # The state this demo-loop starts from: a home may carry reviews of earlier runs.
    reviews_before = _reviews_so_far(home)
    errors_at_start = _errors_in_force(home, oracle) if reviews_before else true_errors

    metric = headline_metric(home)
    champion, gold_acc, gate = _train_and_deploy(home)
    accuracy_noisy = gold_acc
    trained_on = (f"the {name} labels in force when this demo-loop began (as they landed, plus {reviews_before} "
                  f"review(s) of earlier runs)" if reviews_before else f"the {name} labels as they landed")
    say(f"round 0: champion v{champion} trained on {trained_on}: gold {metric} {_fmt(gold_acc)} ({gate})")
    client = make_client(home)
    rounds: list[RoundReport] = []
    reviewed_total = 0
    try:
        for n in range(1, max_rounds + 1):
            remaining = total_budget - reviewed_total
            if remaining <= 0:
                say("review budget spent")
                break
            summary = mine_step(home).summary
            push = push_step(home, client, limit=min(remaining, cfg.review.budget)).result
            with open_warehouse(home) as con:
                classes = load_classes(con)
                before = label_snapshot(con)
            if push.sent == 0:
                say(f"round {n}: nothing left to review (mining run {getattr(summary, 'run_id', '?')})")
                break
            sim = simulate_reviews(client, push.project_id, oracle_map, classes, accuracy=accuracy, seed=n,
                                   label_task=label_task)
            if sim.refused:
                say(f"round {n}: {sim.refused} task(s) left open, their oracle answer is not one a pull accepts "
                    f"(first: {sim.refusals[0]})")
            pulled = pull_step(home, client).result
            for problem in pulled.problems:
                say(f"round {n}: {problem}")
            reviewed, corrected, wrong, first = _round_truth(home, oracle, before)
            if reviewed < push.sent:
                say(f"round {n}: " + _without_label(push.sent - reviewed, sim.unknown, sim.refused))
            reviewed_total += reviewed
            champion, gold_acc, gate = _train_and_deploy(home)
            report = RoundReport(n, push.sent, reviewed, corrected, (wrong / reviewed) if reviewed else None,
                                 gold_acc, champion, gate, metric, first)
            rounds.append(report)
            say(report.line())
    finally:
        client.close()
    if rounds and rounds[-1].gate.startswith("no retrain"):
        # The loop would wait for more corrections; the demo ends here, so the last ones count too.
        champion, gold_acc, gate = _train_and_deploy(home, force=True)
        say(f"final retrain on every correction: gold {metric} {_fmt(gold_acc)}, champion v{champion} ({gate})")
    say(f"comparing recipes: every {name} example predicted by a model that did not train on it ...")
    figures = compare(home, oracle, labels_in_force(home), landed)
    # Keys name the task's figure: accuracy_noisy for classes, micro_f1_noisy for tags, mae_noisy for numbers.
    final = {
        f"{metric}_noisy": figures[f"{metric}_noisy"],
        f"{metric}_model_centric": figures[f"{metric}_model_centric"],
        "model_centric_best": figures["model_centric_best"],
        f"{metric}_final": figures[f"{metric}_final"],
        f"{metric}_clean": figures[f"{metric}_clean"],
        f"gold_{metric}_first": accuracy_noisy,
        f"gold_{metric}_final": gold_acc,
        "evaluated_on": figures["evaluated_on"],
        "eval_repeats": figures["repeats"],
        "reviewed": reviewed_total,
        "true_errors": true_errors,
        "reviews_before": reviews_before,
        "true_errors_at_start": errors_at_start,
        "rounds": len(rounds),
        "seconds": round(time.perf_counter() - started, 1),
    }
    noisy_v, final_v, clean_v = (final[f"{metric}_{k}"] or 0 for k in ("noisy", "final", "clean"))
    # The gap is measured in the direction the metric improves (an error such as MAE falls).
    sign = 1.0 if task_for(cfg.dataset).higher_is_better(metric) else -1.0
    gap = sign * (clean_v - noisy_v)
    recovered = sign * (final_v - noisy_v) / gap if gap > 0 else None
    say("")
    say(f"{metric} on all {figures['evaluated_on']} {name} examples against their true labels, each predicted by "
        "a model "
        f"that did not train on it (gold: the model trained on every training example; training examples: "
        f"{EVAL_FOLDS}-fold cross-validation" + (f", the mean over {figures['repeats']} shuffles of the folds"
                                                  if figures["repeats"] > 1 else "") + "):")
    served = figures["served_model"]
    say(f"  the served model ({served}, the same mixture throughout), on the labels as they landed: {noisy_v:.4f}")
    say("  model-centric (other models on the noisy labels): "
        + (", ".join(f"{k} {v:.4f}" for k, v in figures["model_centric"].items())
           or f"none: {served} is the task's one model, whatever [retrain] model names"))
    say(f"  data-centric (the served model, {served}, on the cleaned labels): {final_v:.4f}")
    say(f"  clean-label ceiling (the served model, {served}, on the true labels): {clean_v:.4f}")
    others = {k: v for k, v in figures["figures"]["final"].items() if k != metric and isinstance(v, float)}
    if others and metric != "accuracy":  # one class per example keeps its lines as they always were
        say("  the served model's other figures, cleaned / true labels: " + ", ".join(
            f"{k} {v:.4f} / {figures['figures']['clean'][k]:.4f}" for k, v in others.items()))
    on_gold, left_out = gold_measured(home, n_gold)
    say(f"the champion's gold {metric} went from {_fmt(accuracy_noisy)} to {_fmt(gold_acc)} "
        f"(on {on_gold} gold examples one example is {1 / max(on_gold, 1):.2%}{left_out})")
    earlier = f", counting the {reviews_before} review(s) of earlier runs" if reviews_before else ""
    if recovered is not None:
        say(gap_line(recovered, final_v, clean_v) + earlier)
    if reviews_before:
        say(f"reviewed {reviewed_total} examples for the {errors_at_start} true label errors left when this "
            f"demo-loop began ({true_errors} landed; earlier runs reviewed {reviews_before})")
    else:
        say(f"reviewed {reviewed_total} examples for {true_errors} true label errors")
    final["metric"] = metric
    final["figures"] = figures["figures"]
    final["rounds_detail"] = [asdict(r) for r in rounds]
    return final


def gap_line(recovered: float, final: float, clean: float) -> str:
    """The share of the noisy-to-clean gap the cleaned labels recovered, for people. Beyond 100 %
    (the cleaned labels scored better than the true ones: the ceiling is one model fit on the true
    labels, not a bound; discarded examples or a fold's luck can pass it) no share is given."""
    if recovered > 1.0:
        return (f"the cleaned labels went beyond the clean-label ceiling ({final:.4f} against {clean:.4f}; "
                "the ceiling is the served model on the true labels, not a bound)")
    return f"the loop recovered {recovered:.0%} of the noisy-to-clean gap"


def _reviews_so_far(home: Home) -> int:
    """Reviewed labels already in the ledger (review and consensus events): earlier runs' work."""
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home, read_only=True) as con:
        return int(con.execute("SELECT count(*) FROM label_events WHERE source IN ('review', 'consensus')")
                   .fetchall()[0][0])


def _errors_in_force(home: Home, oracle: pd.DataFrame) -> int:
    """Training labels in force (not discarded) that differ from the oracle's: the errors left."""
    from data_engine.store.warehouse import open_warehouse

    with open_warehouse(home, read_only=True) as con:
        rows = con.execute("SELECT cl.example_id, cl.label FROM current_labels cl JOIN current_examples ce "
                           "USING (example_id) WHERE NOT cl.is_discarded AND NOT ce.is_gold").fetchall()
    truth = oracle.set_index("example_id")["label"].astype(str)
    return sum(1 for example_id, label in rows if example_id in truth.index and str(label) != truth[example_id])


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def final_json(final: dict[str, Any]) -> str:
    """The closing JSON line (the figures the issue names, first), named by the task's figure
    (``accuracy_noisy`` for classes; ``mae_noisy`` for numbers, with ``figures``: every metric)."""
    m = final.get("metric", "accuracy")
    keys = [f"{m}_noisy", f"{m}_model_centric", f"{m}_final", f"{m}_clean", "reviewed",
            "true_errors", "rounds", "seconds"]
    extra = ["model_centric_best", "evaluated_on", f"gold_{m}_first", f"gold_{m}_final", "reviews_before",
             "true_errors_at_start"]
    if m != "accuracy":  # one class per example keeps its line as it always was
        extra.append("figures")
    return json.dumps({k: final[k] for k in keys + extra})

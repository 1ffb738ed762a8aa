"""``mine``: the loop's mining step once on the home's warehouse (:func:`data_engine.steps.mine_step`,
what the Dagster mining assets run: the champion scores new unlabeled examples, then one mining run
with the queue's weights learned from reviewers' verdicts)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from data_engine.store.home import Home


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``mine`` sub-command."""
    p = sub.add_parser("mine", help="find label errors, outliers, duplicates and unsure examples; build the review queue")
    p.add_argument("--force", action="store_true", help="recompute predictions even if the stored ones still match")
    p.add_argument("--budget", type=int, default=None, help="queue length (default: [review] budget)")
    p.add_argument("--plot", type=Path, default=None, help="write the estimated noise matrix as a PNG here")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.set_defaults(handler=cmd_mine)


def cmd_mine(args: argparse.Namespace, home: Home) -> int:
    """``mine``."""
    from data_engine.steps import mine_step
    from data_engine.tasks import model_name, task_for

    step = mine_step(home, budget=args.budget, force=args.force)
    summary = step.summary
    if args.plot is not None and summary.plot_png:
        args.plot.write_bytes(summary.plot_png)
    if args.json:
        meta = summary.as_metadata()
        meta["queue_top"] = json.loads(summary.queue_top.to_json(orient="records"))
        meta["weights"] = step.weights
        meta["champion_scored"] = {"champion_version": step.scored.champion_version, "scored": step.scored.scored,
                                   "flagged": step.scored.flagged}
        print(json.dumps(meta, default=str))
        return 0
    reused = "re-used stored predictions" if summary.reused_predictions else "computed new predictions"
    print(f"mining run {summary.run_id}: {summary.n_labeled} labeled, {summary.n_unlabeled} unlabeled examples; "
          f"{reused} ({model_name(task_for(home.config.dataset), summary.model_spec)})")
    if step.scored.champion_version is not None:
        print(f"champion v{step.scored.champion_version} scored {step.scored.scored} new unlabeled examples "
              f"({step.scored.flagged} flagged)")
    print(f"embedding: {_embedding_line(summary.embedding, summary.newly_embedded, summary.embedding_space)}")
    features = summary.detector_summaries.get("lookalike", {}).get("features")
    if features:  # what reviewers' verdicts were learned on (an embedding where surface features miss columns)
        print(f"look-alike features: {features}")
    print("flagged: " + ", ".join(f"{k}={v}" for k, v in summary.counts.items()))
    if summary.noise_rate is not None:
        from data_engine.mine.noise import noise_wording

        print(noise_wording(summary.noise_rate, summary.noise_interval))
    fact = summary.detector_summaries.get("near_duplicate", {}).get("copies_fact")
    if fact:
        print(f"copies: {fact['rows_with_copies']} rows have an identical or near-identical row "
              f"({fact['exact_groups']} groups of identical rows, the largest {fact['largest_group']}); {fact['note']}")
    if summary.class_imbalance.get("minority_classes"):
        print("under-represented classes: " + ", ".join(summary.class_imbalance["minority_classes"]))
    for issue in summary.dataset_issues:
        print(f"column {issue['column']!r}: {issue['type']} ({issue['figure']:g}): {issue['reason']}")
    # Said, so that no finding is not read as clean columns.
    if summary.column_checks.get("nothing_checked"):
        print(f"column checks: nothing to check ({summary.column_checks['nothing_checked']})")
    elif summary.column_checks.get("model_checks_skipped"):
        print(f"column checks: shortcut and useless not judged ({summary.column_checks['model_checks_skipped']})")
    from data_engine.commands.core import slice_lines

    for line in slice_lines(summary.slices):
        print(line)
    if summary.slice_search.get("hidden_by_shortcut"):
        print(summary.slice_search["hidden_by_shortcut"])
    rare = rare_classes_line(summary.rare_classes, home.config.mining.folds,
                             summary.detector_summaries.get("label", {}).get("too_few_to_judge") or [])
    if rare:
        print(rare)
    prop = summary.propagation
    if "propagation_id" in prop:
        print(f"propagation {prop['propagation_id']}: discarded {prop['lookalikes']} look-alikes and gave "
              f"{prop['copies']} copies their partner's verdict (threshold {prop['threshold']}, estimated "
              f"precision {prop['estimated_precision']}, {prop['verdicts']} verdicts); {prop['audit']} back to review")
    for pid, m in prop.get("measured", {}).items():
        print(f"propagation {pid}: touched {m['touched']}, {m['reviewed']} reviewed since, measured precision "
              f"{m['measured_precision'] if m['measured_precision'] is not None else 'not yet measured'}"
              # Without this, the line after an undo read as if the run had propagated again.
              + (f"; undone {m['undone_at']}" if m.get("undone_at") else ""))
    print("queue weights (learned from verdicts): " + ", ".join(f"{k}={v:g}" for k, v in step.weights.items()))
    print(f"review queue: {summary.queue_size} examples (top {len(summary.queue_top)}):")
    if summary.budget_split.get("short_reason"):
        print(f"  fewer than the budget: {summary.budget_split['short_reason']}")
    print(summary.queue_markdown())
    print("seconds: " + ", ".join(f"{k}={v:.2f}" for k, v in summary.timings.items()))
    return 0


def rare_classes_line(rare: list[str], folds: int, too_few: list[str]) -> str | None:
    """The one line on classes with fewer labeled examples than folds (``rare``), and those with too
    few for confident learning to judge at all (``too_few``, cleanlab's ``min_examples_per_class``)."""
    if not rare and not too_few:
        return None
    line = (f"classes with fewer labeled examples than the {folds} folds: {', '.join(rare)}; their label issues "
            "are less reliable") if rare else ""
    if too_few:
        line += ("; " if line else "") + (f"too few examples for confident learning to judge: {', '.join(too_few)} "
                                          "(only a plain contradiction by the model flags them)")
    return line


def _embedding_line(name: str, newly_embedded: int, space: str = "") -> str:
    """What the run did with its embedding (``space``: what its vectors are for this data set, when
    not just ``name``): only per-row embedders are stored between runs (a fitted one such as tfidf
    is recomputed each run, so "the rest from the store" would be false)."""
    from data_engine.mine.embedders import get_embedder

    if not get_embedder(name).per_row:
        return f"{space or name} (fitted on the rows mined in this run; not stored)"
    return f"{name} ({newly_embedded} rows newly embedded, the rest from the store)"

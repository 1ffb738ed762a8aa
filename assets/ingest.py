"""Ingestion as a software-defined asset: one dynamic partition per landed file."""


import dagster as dg

from assets.metadata import ROW_COUNT, figure, table, value, values
from assets.resources import EngineResource
from data_engine.ingest.batch import IngestResult
from data_engine.ingest.landing import landed_path
from data_engine.steps import ingest_step

batches_partitions = dg.DynamicPartitionsDefinition(name="landed_files")
# Passes unless more of a batch's rows were quarantined than [ingest] max_quarantine_share (WARN).
QUARANTINED_SHARE_CHECK = "quarantined_share"
# Passes unless the batch drifted from the training data in force ([drift]; WARN).
DRIFT_CHECK = "drift"


def ingest_metadata(result: IngestResult) -> dict[str, dg.MetadataValue]:
    """What a person reads in the UI about one batch."""
    meta: dict[str, dg.MetadataValue] = {
        ROW_COUNT: value(result.rows_ok),
        **values({"batch_id": result.batch_id, "status": result.status, "sha256": result.sha256,
                  "gold": result.is_gold}),
        **values({k: getattr(result, k) for k in (
            "rows_in", "rows_ok", "rows_quarantined", "rows_new", "rows_changed", "rows_unchanged", "rows_labeled")}),
    }
    if result.reason:
        meta["reason"] = value(result.reason)
    if result.ignored_columns:
        meta["ignored_columns"] = value(", ".join(result.ignored_columns))
    if result.column_types:
        meta["column_types"] = value(result.column_types)
    if result.changed_columns:  # {column: rows} of the changed versions
        meta["changed_columns"] = value(result.changed_columns)
    if result.unknown_labels:  # {label: rows} quarantined as not one of the classes
        meta["unknown_labels"] = value(result.unknown_labels)
    if result.warnings:
        meta["warnings"] = dg.MetadataValue.md("\n".join(f"- {w}" for w in result.warnings))
    if result.notes:
        meta["notes"] = dg.MetadataValue.md("\n".join(f"- {n}" for n in result.notes))
    if result.quarantine_preview:
        rows = [{"row": q["row_number"], "reason": q["reason"], "raw": (q["raw"] or "").replace("\n", " ")[:120]}
                for q in result.quarantine_preview]
        meta["quarantine_preview"] = table(rows, [("row", int), ("reason", str), ("raw", str)])
    return meta


@dg.asset(
    partitions_def=batches_partitions,
    group_name="ingestion",
    kinds={"duckdb", "python"},
    description="A landed file ingested into the warehouse: every row stored or quarantined with a reason.",
    check_specs=[dg.AssetCheckSpec(QUARANTINED_SHARE_CHECK, asset="landed_batch",
                                   description="at most [ingest] max_quarantine_share of the rows quarantined"),
                 dg.AssetCheckSpec(DRIFT_CHECK, asset="landed_batch",
                                   description="no drift from the training data in force: per-column tests "
                                               "(Holm-corrected at [drift] alpha) and a domain classifier's "
                                               "out-of-fold AUC below [drift] auc")],
)
def landed_batch(context: dg.AssetExecutionContext, engine: EngineResource) -> dg.MaterializeResult:
    """Ingest the landed file named by the partition key (its path under landing/)."""
    home = engine.get_home()
    path = landed_path(home.landing, context.partition_key)
    if path is None:
        raise dg.Failure(f"{context.partition_key}: the landed file is gone from {home.landing}; "
                         "put it back or delete the partition")
    [result] = ingest_step(home, [path])
    context.log.info(
        f"{result.batch_id}: {result.status}, rows_in={result.rows_in} ok={result.rows_ok} "
        f"quarantined={result.rows_quarantined}"
    )
    if result.status == "rejected":
        # No good row (an unreadable file, or every row quarantined): a green run would hide it. The
        # batch is recorded; the run's sha256 run key keeps the sensor from asking again for these bytes.
        raise dg.Failure(f"{context.partition_key}: {result.reason}", metadata=ingest_metadata(result))
    for warning in result.warnings:
        context.log.warning(f"{context.partition_key}: {warning}")
    check = dg.AssetCheckResult(
        check_name=QUARANTINED_SHARE_CHECK, passed=not result.warnings, severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(result.warnings) or None,
        metadata={"rows_in": result.rows_in, "rows_quarantined": result.rows_quarantined},
    )
    # The file's bytes are its version: the same bytes landed again change nothing downstream.
    return dg.MaterializeResult(metadata=ingest_metadata(result), data_version=dg.DataVersion(result.sha256[:16]),
                                check_results=[check, drift_check_result(result.drift)])


def drift_check_result(drift: dict | None) -> dg.AssetCheckResult:
    """The drift check: WARN when the batch drifted, naming the columns; passed with the reason when
    nothing was compared (a gold batch, no training data in force yet)."""
    from data_engine.ingest.summary import drift_line

    if drift is None:
        return dg.AssetCheckResult(check_name=DRIFT_CHECK, passed=True, severity=dg.AssetCheckSeverity.WARN,
                                   description="not compared: a gold batch, or no training data in force yet")
    if drift.get("skipped"):
        return dg.AssetCheckResult(check_name=DRIFT_CHECK, passed=True, severity=dg.AssetCheckSeverity.WARN,
                                   description=drift_line(drift), metadata={"skipped": value(drift["skipped"])})
    from data_engine.ship.drift_check import drift_plot

    rows = [{"column": c["column"], "test": c["test"], "p_value": c["p_value"], "p_adjusted": c["p_adjusted"],
             "distance": c["distance"], "new_categories": ", ".join(map(str, c["new_categories"])),
             "drifted": c["drifted"]} for c in drift["per_column"]]
    metadata = {
        "drifted": value(drift["drifted"]), "columns": value(", ".join(drift["columns"])), "auc": value(drift["auc"]),
        "new_tags": value(", ".join(map(str, drift.get("new_tags") or []))),
        "p_adjusted": value({c["column"]: c["p_adjusted"] for c in drift["per_column"]}),
        "per_column": table(rows, [("column", str), ("test", str), ("p_value", float), ("p_adjusted", float),
                                   ("distance", float), ("new_categories", str), ("drifted", bool)]),
        **values({k: drift[k] for k in ("n_reference", "n_batch", "alpha", "auc_threshold")}),
        **figure(drift_plot(drift), "Holm-adjusted p-value per column"),
    }
    return dg.AssetCheckResult(check_name=DRIFT_CHECK, passed=not drift["drifted"],
                               severity=dg.AssetCheckSeverity.WARN, description=drift_line(drift), metadata=metadata)

"""One "sensor run" writer for the concurrency test: materializes the ``landed_batch`` asset (the run
the landing sensor requests) for each named landed file, until the files or the time run out.

    python -m tests.reliability.sensor_run_worker HOME SECONDS FILE...

Prints one JSON line per run: {"file": ..., "ok": bool, "status": ..., "error": ...}.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> int:
    import dagster as dg

    from assets.ingest import batches_partitions, landed_batch
    from assets.resources import EngineResource

    home, seconds, files = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    deadline = time.monotonic() + seconds
    instance = dg.DagsterInstance.ephemeral()
    resources = {"engine": EngineResource(home=home)}
    for name in files:
        if time.monotonic() > deadline:
            break
        instance.add_dynamic_partitions(batches_partitions.name, [name])
        try:
            result = dg.materialize([landed_batch], partition_key=name, instance=instance, resources=resources,
                                    raise_on_error=False)
            ok = result.success
            error = None if ok else _step_error(result)
            status = None
            if ok:
                status = result.asset_materializations_for_node("landed_batch")[0].metadata["status"].value
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            ok, status, error = False, None, f"{type(exc).__name__}: {exc}"[:300]
        print(json.dumps({"file": name, "ok": ok, "status": status, "error": error}), flush=True)
    return 0


def _step_error(result: object) -> str:
    """The failed step's own error (the run's last event says only "Steps failed")."""
    for event in result.all_events:  # type: ignore[attr-defined]
        if event.is_step_failure:
            error = event.step_failure_data.error
            return f"{error.cls_name}: {error.message}"[:600] if error else str(event.message)[:600]
    return str(result.all_events[-1].message)[:600]  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())

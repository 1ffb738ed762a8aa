"""Deployment: promotions, rollbacks, the champion stack, and the atomic pointer file."""

from __future__ import annotations

import json
import threading

import pytest

from data_engine.errors import EngineError
from data_engine.ship import deploy, registry
from data_engine.ship.step import gate_and_promote
from data_engine.ship.training import train_candidate
from data_engine.store.warehouse import open_warehouse
from tests.loop_support import make_home, review, train_again


@pytest.fixture()
def home(tmp_path):
    return make_home(tmp_path, seed=0, n_train=300, n_gold=100, n_unlabeled=0)


@pytest.mark.parametrize("history, expected", [
    ([], []),
    ([("promote", 1)], [1]),
    ([("promote", 1), ("promote", 2), ("promote", 3)], [1, 2, 3]),
    ([("promote", 1), ("promote", 2), ("rollback", 1)], [1]),
    ([("promote", 1), ("promote", 2), ("promote", 3), ("rollback", 2), ("rollback", 1)], [1]),
    ([("promote", 1), ("promote", 2), ("rollback", 1), ("promote", 3)], [1, 3]),
])
def test_champion_stack_replays_history(history, expected):
    assert deploy.champion_stack(history) == expected


def test_promote_and_rollback_move_the_champion_and_the_pointer(home):
    with open_warehouse(home) as con:
        versions = [train_candidate(con, home).record.version] + [train_again(con, home).record.version for _ in range(2)]
        for v in versions:
            deploy.promote(con, home, v, reason=f"test {v}")
        assert registry.current_champion(con).version == 3
        assert deploy.read_pointer(home).version == 3
        assert [m.status for m in registry.list_models(con)] == ["retired", "retired", "champion"]
        back = deploy.rollback(con, home, reason="bad model")
        assert (back.model_version, back.previous_version, back.action) == (2, 3, "rollback")
        assert deploy.read_pointer(home).version == 2
        assert registry.get_model(con, 3).reason == "rolled back to v2"
        deploy.rollback(con, home)
        assert registry.current_champion(con).version == 1
        with pytest.raises(EngineError, match="nothing to roll back to"):
            deploy.rollback(con, home)
        with pytest.raises(EngineError, match="already the champion"):
            deploy.promote(con, home, 1, reason="again")
        actions = [(d.action, d.model_version) for d in deploy.history(con)]
    assert actions == [("promote", 1), ("promote", 2), ("promote", 3), ("rollback", 2), ("rollback", 1)]
    pointer = json.loads(deploy.pointer_path(home).read_text())
    assert pointer["version"] == 1 and pointer["deployment_id"] == 5
    assert not [p for p in home.models.iterdir() if p.name.endswith(".tmp")]


def test_a_corrupted_artifact_is_never_deployed(home):
    with open_warehouse(home) as con:
        first = train_candidate(con, home).record
        deploy.promote(con, home, first.version, reason="first")
        second = train_again(con, home).record
        path = second.artifact(home)
        path.write_bytes(path.read_bytes()[:-10])
        with pytest.raises(EngineError, match="does not match its recorded sha256"):
            deploy.promote(con, home, second.version, reason="should fail")
        assert registry.current_champion(con).version == first.version
        assert len(deploy.history(con)) == 1
    assert deploy.read_pointer(home).version == first.version


def test_gate_and_promote_runs_the_gate_then_promotes(home):
    with open_warehouse(home) as con:
        train_candidate(con, home)
        verdict, dep = gate_and_promote(con, home)
        assert verdict.promote and dep.model_version == 1 and dep.previous_version is None
        report = deploy.status(con, home)
    assert report["champion"]["version"] == 1 and report["pointer_in_sync"]
    assert report["deployments"][0]["reason"].startswith("first model")


def test_sync_pointer_repairs_a_missing_pointer(home):
    with open_warehouse(home) as con:
        rec = train_candidate(con, home).record
        deploy.promote(con, home, rec.version, reason="x")
        deploy.pointer_path(home).unlink()
        assert not deploy.status(con, home)["pointer_in_sync"]
        fixed = deploy.sync_pointer(con, home)
    assert fixed.version == rec.version and deploy.read_pointer(home).sha256 == rec.sha256


def test_a_damaged_pointer_is_a_clear_error(tmp_path):
    h = make_home(tmp_path)
    deploy.pointer_path(h).write_text("{not json")
    with pytest.raises(EngineError, match="damaged champion pointer"):
        deploy.read_pointer(h)
    fields = dict(version=1, sha256="0" * 64, classes=["a"], input_schema={}, model_spec="m", deployment_id=1)
    deploy.pointer_path(h).write_text(json.dumps({**fields, "artifact_path": "../../secrets/token"}))
    with pytest.raises(EngineError, match="is not a file name in the models directory"):
        deploy.read_pointer(h)


def test_readers_never_see_a_half_written_pointer(tmp_path):
    """A reader polling while the pointer is rewritten 300 times only ever parses whole pointers."""
    h = make_home(tmp_path)
    base = dict(artifact_path="model-v1.skops", sha256="0" * 64, classes=["a", "b"],
                input_schema={"x" * 50 + str(i): "numeric" for i in range(200)}, model_spec="m", deployment_id=1)
    deploy.write_pointer(h, deploy.ChampionPointer(version=0, **base))
    errors: list[str] = []
    seen: set[int] = set()
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                seen.add(deploy.read_pointer(h).version)
            except Exception as exc:  # any partial read would land here
                errors.append(repr(exc))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for v in range(1, 301):
            deploy.write_pointer(h, deploy.ChampionPointer(version=v, **base))
    finally:
        done.set()
        t.join(timeout=10)
    assert errors == []
    assert len(seen) > 1


def test_promote_gated_needs_a_passed_gate_against_the_current_champion(home):
    from data_engine.ship.gate import run_gate

    with open_warehouse(home) as con:
        first = train_candidate(con, home).record
        with pytest.raises(EngineError, match="has not passed the gate"):
            deploy.promote_gated(con, home, first.version)
        assert run_gate(con, home).promote
        dep = deploy.promote_gated(con, home, first.version)
        assert dep.reason.startswith("first model")
        second = train_again(con, home).record
        third = train_again(con, home).record
        assert run_gate(con, home, version=second.version).promote
        assert run_gate(con, home, version=third.version).promote
        deploy.promote_gated(con, home, third.version)
        # v2 passed against v1, but v3 is the champion now: the gate must run again.
        with pytest.raises(EngineError, match="not compared with the current champion v3"):
            deploy.promote_gated(con, home, second.version)
        gate_record = registry.get_model(con, second.version).metrics["gate"]
        assert {k: gate_record[k] for k in ("champion_version", "promote", "metric", "n_gold")} == {
            "champion_version": first.version, "promote": True, "metric": "accuracy", "n_gold": 100}


def test_cli_train_evaluate_promote_rollback_status(home, capsys):
    from data_engine.cli import main

    h = ["--home", str(home.root)]
    assert main(h + ["evaluate"]) == 2
    assert "no candidate model to evaluate" in capsys.readouterr().err
    assert main(h + ["train"]) == 0
    assert "trained candidate v1" in capsys.readouterr().out
    assert main(h + ["deploy", "promote"]) == 0
    assert "promoted v1" in capsys.readouterr().out
    assert main(h + ["deploy", "rollback"]) == 2
    assert "nothing to roll back to" in capsys.readouterr().err
    assert main(h + ["train"]) == 2  # the same labels: nothing to retrain
    assert "v1 (" in (err := capsys.readouterr().err) and "already trained on label snapshot" in err
    with open_warehouse(home) as con:
        review(con, {con.execute("SELECT min(example_id) FROM current_labels").fetchone()[0]: "3"})
    assert main(h + ["train", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 2
    assert main(h + ["deploy", "promote", "--force", "--version", "2"]) == 0
    assert "promoted v2 (forced" in capsys.readouterr().out
    assert main(h + ["deploy", "rollback", "--reason", "oops"]) == 0
    assert "rolled back from v2 to v1" in capsys.readouterr().out
    assert main(h + ["deploy", "status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["champion"]["version"] == 1 and report["pointer_in_sync"]
    assert [d["action"] for d in report["deployments"]] == ["promote", "promote", "rollback"]

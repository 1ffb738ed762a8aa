"""Serving: predictions are the champion's, 422s name the field, a corrupted artifact is refused,
and a promotion under live traffic (a real uvicorn on a free loopback port) serves no error."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from data_engine.ship import deploy, registry
from data_engine.ship.scoring import aligned_probabilities
from data_engine.ship.serve import ModelHolder, create_app
from data_engine.ship.training import train_candidate
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.loop_support import make_home, review, seed_digits

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A home with champion v1 (true labels) and candidate v2 (every label shifted by one: its answers
    differ from v1's, so a response shows which model produced it)."""
    home = make_home(tmp_path_factory.mktemp("serve"))
    info = seed_digits(home, n_train=400, n_gold=100, n_unlabeled=0)
    with open_warehouse(home) as con:
        v1 = train_candidate(con, home).record
        deploy.promote(con, home, v1.version, reason="first")
        tr = info["parts"]["train"]
        review(con, {e: str((int(y) + 1) % 10) for e, y in zip(info["ids"][tr], info["y"][tr])})
        v2 = train_candidate(con, home).record
    return home, info, v1, v2


@pytest.fixture()
def env(built, tmp_path):
    """A private copy of the built home (tests move its champion)."""
    home, info, v1, v2 = built
    copy = Home(tmp_path / "home")
    shutil.copytree(home.root, copy.root)
    return copy, info, v1, v2


def rows_of(info, n: int, start: int = 0) -> list[dict[str, float]]:
    X = info["X"][start:start + n]
    return [{f"px{i}": float(v) for i, v in enumerate(x)} for x in X]


def expected_labels(home: Home, record, rows) -> list[str]:
    model = registry.load_model(home, record)
    return list(model.predict(pd.DataFrame(rows)[list(record.input_schema)]).astype(str))


def test_predictions_match_the_champion(env):
    from fastapi.testclient import TestClient

    home, info, v1, _ = env
    rows = rows_of(info, 40)
    with TestClient(create_app(home, poll_seconds=0.05)) as client:
        r = client.post("/predict", json={"rows": rows})
    assert r.status_code == 200
    body = r.json()
    assert body["model_version"] == v1.version
    model = registry.load_model(home, v1)
    probs = aligned_probabilities(model, pd.DataFrame(rows), list(v1.classes))
    assert [p["label"] for p in body["predictions"]] == expected_labels(home, v1, rows)
    got = np.array([[p["probabilities"][c] for c in v1.classes] for p in body["predictions"]])
    np.testing.assert_allclose(got, probs, atol=1e-6)


@pytest.mark.parametrize("mutate, field, kind", [
    (lambda r: r.pop("px3"), "px3", "missing"),
    (lambda r: r.update(px5="abc"), "px5", "float_parsing"),
    (lambda r: r.update(px7="inf"), "px7", "finite_number"),  # JSON has no inf; the string parses to one
    (lambda r: r.update(colour="red"), "colour", "extra_forbidden"),
])
def test_bad_input_gets_422_naming_the_field(env, mutate, field, kind):
    from fastapi.testclient import TestClient

    home, info, _, _ = env
    rows = rows_of(info, 2)
    mutate(rows[1])
    with TestClient(create_app(home)) as client:
        r = client.post("/predict", json={"rows": rows})
    assert r.status_code == 422
    errors = r.json()["detail"]
    assert [e["loc"] for e in errors] == [["body", "rows", 1, field]]
    assert errors[0]["type"] == kind


def test_empty_or_shapeless_requests_get_422(env):
    from fastapi.testclient import TestClient

    home, *_ = env
    with TestClient(create_app(home)) as client:
        assert client.post("/predict", json={"rows": []}).status_code == 422
        assert client.post("/predict", json={"row": {}}).json()["detail"][0]["loc"] == ["body", "rows"]
        assert client.post("/predict", json=[1, 2]).status_code == 422


def test_any_json_text_gets_200_or_422(env):
    """Lone surrogates and empty strings, in values and in keys, are answered, never a 500."""
    from fastapi.testclient import TestClient

    home, info, _, _ = env
    row = rows_of(info, 1)[0]
    good = ",".join(f'"{k}": {v}' for k, v in row.items())
    bodies = [
        '{"rows": [{' + good.replace('"px0": 0.0', '"px0": "\\ud800"') + '}]}',
        '{"rows": [{' + good + ', "\\udfff": 1}]}',
        '{"rows": [{' + good.replace('"px0": 0.0', '"px0": ""') + '}]}',
        '{"rows": [{"": ""}]}',
        '"\\ud800"',
        # finite but beyond float32's range: the models' casts made it inf (a 500 before)
        '{"rows": [{' + good.replace('"px0": 0.0', '"px0": 1e308') + '}]}',
        # longer than Python's parser takes (a bare 400 before); a long one that parses is echoed short
        '{"rows": [{' + good.replace('"px0": 0.0', '"px0": ' + "9" * 5000) + '}]}',
        '{"rows": [{' + good.replace('"px0": 0.0', '"px0": 1' + "0" * 400) + '}]}',
        # digits inside a string are text, not a number
        '{"rows": [{' + good.replace('"px0": 0.0', '"px0": "' + "9" * 5000 + '"') + '}]}',
        '{"rows": [{' + good + '}]}',
    ]
    with TestClient(create_app(home)) as client:
        answers = [client.post("/predict", content=b, headers={"content-type": "application/json"})
                   for b in bodies]
    assert [a.status_code for a in answers] == [422] * 9 + [200]
    assert "more than 4300 digits" in answers[6].text
    assert len(answers[7].text) < 400 and "(401 digits)" in answers[7].text
    assert "number_too_long" not in answers[8].text and "px0" in answers[8].text


def test_health_model_and_openapi(env):
    from fastapi.testclient import TestClient

    home, _, v1, _ = env
    with TestClient(create_app(home)) as client:
        assert client.get("/health").json() == {"status": "ok", "model_version": v1.version, "last_error": None,
                                                 "worker": None}
        info = client.get("/model").json()
        assert info["model"]["version"] == v1.version and info["model"]["sha256"] == v1.sha256
        schema = client.get("/openapi.json").json()
    assert {"/predict", "/health", "/model"} <= set(schema["paths"])
    assert "px63" in schema["components"]["schemas"]["Row"]["properties"]


def test_no_champion_means_no_server(tmp_path):
    from data_engine.errors import EngineError

    home = make_home(tmp_path)
    with pytest.raises(EngineError, match="no champion to serve"):
        create_app(home)


def test_a_corrupted_artifact_is_refused_and_the_previous_champion_keeps_serving(env):
    from fastapi.testclient import TestClient

    home, info, v1, v2 = env
    holder = ModelHolder(home, poll_seconds=60)
    rows = rows_of(info, 5)
    with TestClient(create_app(home, holder=holder)) as client:
        # Someone damages v2's file after it was recorded, and a pointer names it.
        path = v2.artifact(home)
        good = path.read_bytes()
        path.write_bytes(good[:100] + bytes([good[100] ^ 0xFF]) + good[101:])
        deploy.write_pointer(home, deploy.ChampionPointer(
            version=v2.version, artifact_path=v2.artifact_path, sha256=v2.sha256, classes=list(v2.classes),
            input_schema=dict(v2.input_schema), model_spec=v2.model_spec, deployment_id=99))
        assert holder.refresh() is False
        assert "sha256 mismatch" in holder.last_error and f"v{v2.version}" in holder.last_error
        r = client.post("/predict", json={"rows": rows})
        assert r.status_code == 200 and r.json()["model_version"] == v1.version
        assert "sha256 mismatch" in client.get("/model").json()["last_error"]
        assert "sha256 mismatch" in client.get("/health").json()["last_error"]
        assert holder.refresh() is False  # refused once, not reloaded on every poll
        # The file is repaired (restored from a backup): the same pointer is now served.
        path.write_bytes(good)
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
        assert holder.refresh() is True
        r = client.post("/predict", json={"rows": rows})
    assert r.json()["model_version"] == v2.version
    assert [p["label"] for p in r.json()["predictions"]] == expected_labels(home, v2, rows)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(home: Home, log: Path, *extra: str):
    """``data-engine serve`` in a subprocess on a free loopback port; stopped by its own pid."""
    port = _free_port()
    env_vars = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "data_engine.cli", "--home", str(home.root), "serve", "--port", str(port),
             "--poll-seconds", "0.05", *extra],
            stdout=out, stderr=subprocess.STDOUT, env=env_vars, cwd=REPO,
        )
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def wait_healthy(base: str, proc: subprocess.Popen, log: Path, seconds: float = 90) -> dict:
    """Poll ``/health`` until it answers 200; fail with the server's log otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            pytest.fail(f"server exited: {log.read_text()}")
        try:
            r = httpx.get(f"{base}/health", timeout=1)
            if r.status_code == 200:
                return r.json()
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"server not up in {seconds} s: {log.read_text()}")
        time.sleep(0.2)


@pytest.fixture()
def server(env, tmp_path):
    log = tmp_path / "serve.log"
    with running_server(env[0], log) as (base, proc):
        wait_healthy(base, proc, log)
        yield base, log


def test_serve_can_wait_for_the_first_champion(env, tmp_path):
    home, _, v1, _ = env
    deploy.pointer_path(home).unlink()
    log = tmp_path / "serve.log"
    with running_server(home, log, "--wait") as (base, proc):
        deadline = time.monotonic() + 90
        while "waiting for a champion" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{base}/health", timeout=1)
        with open_warehouse(home) as con:
            deploy.sync_pointer(con, home)  # the champion appears
        assert wait_healthy(base, proc, log)["model_version"] == v1.version


def test_a_promotion_mid_traffic_serves_no_error(env, server):
    home, info, v1, v2 = env
    base, log = server
    rows = rows_of(info, 8, start=500)
    answers = {v1.version: expected_labels(home, v1, rows), v2.version: expected_labels(home, v2, rows)}
    assert answers[v1.version] != answers[v2.version]
    results: list[tuple[float, int, int | None, bool]] = []  # (time, status, version, labels consistent)
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=base, timeout=10) as c:
            while not stop.is_set():
                try:
                    r = c.post("/predict", json={"rows": rows})
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if r.status_code != 200:
                    results.append((time.monotonic(), r.status_code, None, False))
                    continue
                body = r.json()
                labels = [p["label"] for p in body["predictions"]]
                results.append((time.monotonic(), 200, body["model_version"],
                                labels == answers.get(body["model_version"])))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while len(results) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        with open_warehouse(home) as con:
            deploy.promote(con, home, v2.version, reason="mid-traffic test")
        promoted_at = time.monotonic()
        while time.monotonic() < deadline:
            late = [r for r in results if r[0] > promoted_at + 2]
            if len(late) >= 20:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
    assert failures == []
    assert results and all(status == 200 for _, status, _, _ in results)
    assert all(ok for *_, ok in results), "a response mixed one model's version with another's answers"
    versions = [v for _, _, v, _ in results]
    assert v1.version in versions and v2.version in versions
    late = [v for t, _, v, _ in results if t > promoted_at + 2]
    assert len(late) >= 20 and set(late) == {v2.version}
    assert "Uvicorn running on http://127.0.0.1:" in log.read_text()


def test_row_model_for_categorical_and_text_columns():
    from pydantic import ValidationError

    from data_engine.ship.request_rows import row_model, rows_frame

    schema = {"age": "numeric", "city": "categorical", "note": "text"}
    Row = row_model(schema)
    rows = [Row.model_validate({"age": "41", "city": 75001, "note": "hello"}),
            Row.model_validate({"age": None, "city": None, "note": "x"})]
    frame = rows_frame(rows, schema)
    assert list(frame.columns) == ["age", "city", "note"]
    assert frame["age"].dtype == "float64" and np.isnan(frame["age"].iloc[1])
    assert frame["city"].tolist() == ["75001", None] and frame["note"].tolist() == ["hello", "x"]
    # The ingest rule for text: empty text is refused (a 422), as ingest quarantines it; so is a
    # lone surrogate or a NUL character, in any text column.
    for bad in ({"note": ""}, {"note": "   "}, {"note": "\u00a0\u200b\t"}, {"note": None}, {"note": "a\ud800"},
                {"city": "\udfff"}, {"note": "a\x00b"}, {"city": "\x00"}):
        with pytest.raises(ValidationError) as err:
            Row.model_validate({"age": 1, "city": "c", "note": "x", **bad})
        assert err.value.errors()[0]["loc"] == tuple(bad)
    with pytest.raises(ValidationError) as err:
        Row.model_validate({"age": 1, "city": ["a"], "note": "x"})
    assert err.value.errors()[0]["loc"] == ("city",)


def test_docs_work_offline(env):
    """/docs loads Swagger UI from the server itself: no URL in the page names another host."""
    import re

    from fastapi.testclient import TestClient

    home, *_ = env
    with TestClient(create_app(home)) as client:
        r = client.get("/docs")
        assert r.status_code == 200 and "SwaggerUIBundle" in r.text
        assert "http://" not in r.text and "https://" not in r.text and "//" not in r.text.replace("<!--", "")
        links = re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text)
        assert len(links) == 3 and all(u.startswith("/docs-assets/") for u in links)
        for url in links:
            asset = client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 100, url
        assert "/docs" not in client.get("/openapi.json").json()["paths"]
        assert client.get("/redoc").status_code == 404  # ReDoc would need a CDN: not offered


def test_promote_wait_returns_once_the_server_answers(env, server, capsys):
    from data_engine.cli import main

    home, _, v1, v2 = env
    base, _ = server
    port = base.rsplit(":", 1)[1]
    assert httpx.get(f"{base}/health").json()["model_version"] == v1.version
    capsys.readouterr()
    code = main(["--home", str(home.root), "deploy", "promote", "--version", str(v2.version), "--force", "--wait",
                 "--port", port, "--timeout", "60"])
    out = capsys.readouterr().out
    assert code == 0 and f"answers with v{v2.version}" in out
    # Returned only once the server switched: the very next request is answered by the new champion.
    assert httpx.get(f"{base}/health").json()["model_version"] == v2.version


def test_promote_wait_without_a_server_says_so(env, capsys):
    from data_engine.cli import main

    home, _, _, v2 = env
    capsys.readouterr()
    code = main(["--home", str(home.root), "deploy", "promote", "--version", str(v2.version), "--force", "--wait",
                 "--port", str(_free_port()), "--timeout", "0.5"])
    err = capsys.readouterr().err
    assert code == 2 and f"did not answer with model v{v2.version} within 0.5 s" in err and "data-engine serve" in err

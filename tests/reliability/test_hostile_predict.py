"""The /predict endpoint under malformed and hostile requests (hypothesis, FastAPI's TestClient).

A request is answered 200 with one prediction per row, or 422 whose errors name the field;
never a 500. The model serves the same answers afterwards.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PIXELS = [f"px{i}" for i in range(64)]


@pytest.fixture(scope="module")
def client(tmp_path_factory, fitted_digits):
    from fastapi.testclient import TestClient

    from data_engine.ship.serve import create_app

    home = fitted_digits.copy(tmp_path_factory.mktemp("predict") / "home")
    with TestClient(create_app(home), raise_server_exceptions=False) as c:
        yield c


junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30), st.floats(allow_nan=False),
              st.text(max_size=20), st.sampled_from(["nan", "inf", "-Infinity", "1e400", "<script>", "'; DROP TABLE x;--",
                                                     "../../etc/passwd", "x" * 100_000])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
good_value = st.one_of(st.floats(min_value=0, max_value=16), st.integers(min_value=0, max_value=16), st.none())


@st.composite
def bodies(draw):
    n = draw(st.integers(min_value=1, max_value=3))
    rows = []
    for _ in range(n):
        row = {p: draw(good_value) for p in PIXELS}
        for key in draw(st.lists(st.sampled_from([*PIXELS, "extra", "__proto__", "px64", ""]), max_size=3)):
            if draw(st.booleans()):
                row.pop(key, None)
            else:
                row[key] = draw(junk)
        rows.append(row)
    shape = draw(st.sampled_from(["ok", "ok", "ok", "bare", "rows-junk", "junk"]))
    if shape == "bare":
        return rows
    if shape == "rows-junk":
        return {"rows": draw(junk)}
    if shape == "junk":
        return draw(junk)
    return {"rows": rows}


def _check(response, sent) -> None:
    assert response.status_code in (200, 422), (response.status_code, response.text[:300])
    body = response.json()
    if response.status_code == 200:
        assert len(body["predictions"]) == len(sent["rows"])
        return
    for err in body["detail"]:
        assert err["loc"] and err["loc"][0] == "body" and err["msg"], err


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(body=bodies())
def test_predict_answers_200_or_422_naming_the_field(client, body) -> None:
    # Serialised here, not by the test client: inf and NaN go out as the non-standard literals a
    # hostile client would send (the test client's own encoder refuses them).
    raw = json.dumps(body, allow_nan=True)
    _check(client.post("/predict", content=raw, headers={"content-type": "application/json"}), body)


@pytest.mark.parametrize("raw, content_type", [
    (b"{not json", "application/json"),
    (b"\xff\xfe\x00{", "application/json"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json"),              # deep nesting
    (json.dumps({"rows": [{"px0": 1}] * 100_001}).encode(), "application/json"),  # too many rows
    (b'{"rows": [{"px0": NaN}]}', "application/json"),
    (b"rows=1", "application/x-www-form-urlencoded"),
    (b"", "application/json"),
])
def test_malformed_bodies_are_422_never_500(client, raw, content_type) -> None:
    response = client.post("/predict", content=raw, headers={"content-type": content_type})
    assert response.status_code == 422, (response.status_code, response.text[:200])


def test_the_model_still_answers_after_the_abuse(client) -> None:
    rows = [{p: float(i % 17) for i, p in enumerate(PIXELS)}]
    response = client.post("/predict", json={"rows": rows})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 1

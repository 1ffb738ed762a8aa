"""The real client's error mapping (no server: a closed port and httpx mock transports)."""

from __future__ import annotations

import json

import httpx
import pytest

from data_engine.errors import ReviewServiceError
from data_engine.review.labelstudio.client import LabelStudioClient
from data_engine.review.labelstudio.server import free_port

SECRET = "f" * 40
URL = "http://127.0.0.1:9"


def _client(handler, timeout_s: float = 5.0) -> LabelStudioClient:
    return LabelStudioClient(URL, SECRET, timeout_s=timeout_s, key_name="$LABEL_STUDIO_API_KEY",
                             transport=httpx.MockTransport(handler))


def _one_line_without_secret(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and SECRET not in message and URL in message
    return message


def test_unreachable_server_names_url_and_cause():
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    client = LabelStudioClient(url, SECRET, timeout_s=5)
    with pytest.raises(ReviewServiceError) as err:
        client.check()
    message = str(err.value)
    assert url in message and "connection refused" in message and SECRET not in message


@pytest.mark.parametrize(("status", "expected"), [
    (401, "refused the API key (HTTP 401)"),
    (403, "refused the API key (HTTP 403)"),
    (500, "failed with HTTP 500"),
    (503, "failed with HTTP 503"),
    (400, "rejected"),
])
def test_http_errors_become_one_clear_line(status, expected):
    client = _client(lambda request: httpx.Response(status, json={"detail": "nope"}))
    with pytest.raises(ReviewServiceError) as err:
        client.check()
    message = _one_line_without_secret(err)
    assert expected in message
    if status in (401, 403):
        assert "$LABEL_STUDIO_API_KEY" in message


def test_timeout_names_the_limit():
    def slow(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ReviewServiceError) as err:
        _client(slow, timeout_s=7).check()
    assert "did not answer within 7 s" in _one_line_without_secret(err)


def test_the_key_travels_only_in_the_authorization_header():
    seen = {}

    def handler(request):
        seen["auth"] = request.headers.get("authorization")
        seen["url"] = str(request.url)
        return httpx.Response(200, json={"id": 1, "email": "a@example.com"})

    client = _client(handler)
    assert client.check() == "a@example.com"
    assert seen["auth"] == f"Token {SECRET}" and SECRET not in seen["url"]
    assert client.request_count == 1 and SECRET not in repr(client)


def test_short_import_reply_is_an_error_not_a_silent_loss():
    def handler(request):
        return httpx.Response(201, json={"task_count": 1, "task_ids": [5]})

    with pytest.raises(ReviewServiceError, match="created 1 tasks for 2 sent"):
        _client(handler).import_tasks(1, [{"data": {"a": 1}}, {"data": {"a": 2}}])


def test_accept_predictions_is_one_data_manager_action_and_reads_the_count_back():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, dict(request.url.params), request.read()))
        return httpx.Response(200, json={"response_code": 200, "detail": "Created 3 annotations"})

    assert _client(handler).accept_predictions(7, [11, 12, 13]) == 3
    [(method, path, params, body)] = seen
    assert (method, path, params) == ("POST", "/api/dm/actions/", {"id": "predictions_to_annotations", "project": "7"})
    assert json.loads(body)["selectedItems"] == {"all": False, "included": [11, 12, 13]}


def test_accept_predictions_without_a_count_is_an_error():
    client = _client(lambda request: httpx.Response(200, json={"detail": "done"}))
    with pytest.raises(ReviewServiceError) as err:
        client.accept_predictions(7, [11])
    assert "did not say how many annotations" in _one_line_without_secret(err)

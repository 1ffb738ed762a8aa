"""Labeling configs per modality, task building, PNG rendering, and the server's secrets and env."""

from __future__ import annotations

import base64
import os
import stat
import struct
import xml.etree.ElementTree as ET
import zlib

import pytest

from data_engine.errors import EngineError
from data_engine.review.labelstudio import server
from data_engine.review.labelstudio.labeling import (
    DISCARD_CHOICE,
    build_task,
    choice_result,
    chosen,
    label_config,
    pixels_to_data_uri,
)
from data_engine.store.config import DatasetConfig

IMAGE = DatasetConfig(name="digits", modality="image", id_column="id", label_column="label",
                      feature_columns=tuple(f"px{i}" for i in range(64)))
TEXT = DatasetConfig(name="reviews", modality="text", id_column="id", label_column="label", text_column="body")
TABLE = DatasetConfig(name="loans", modality="tabular", id_column="id", label_column="label",
                      feature_columns=("income", "region"))


@pytest.mark.parametrize(("ds", "tag", "value"), [(IMAGE, "Image", "$image"), (TEXT, "Text", "$text"),
                                                  (TABLE, "Table", "$features")])
def test_label_config_shows_the_item_and_offers_classes_plus_discard(ds, tag, value):
    root = ET.fromstring(label_config(ds, ["a", "b & c"]))
    item = root.find(tag)
    assert item is not None and item.get("value") == value
    choices = [c.get("value") for c in root.iter("Choice")]
    assert choices == ["a", "b & c", DISCARD_CHOICE]
    headers = " ".join(h.get("value") for h in root.iter("Header"))
    assert "$given_label" in headers and "$issue_types" in headers and "$suggested_label" in headers


def _decode_png(uri: str) -> tuple[int, int, bytes]:
    raw = base64.b64decode(uri.split(",", 1)[1])
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", raw[16:24])
    idat_len = struct.unpack(">I", raw[33:37])[0]
    pixels = zlib.decompress(raw[41:41 + idat_len])
    return width, height, pixels


def test_pixels_render_as_a_small_grayscale_png_with_ink_dark():
    values = [0] * 64
    values[0] = 16  # top-left pixel fully inked
    uri = pixels_to_data_uri(values, scale=2)
    width, height, data = _decode_png(uri)
    assert (width, height) == (16, 16)
    row0 = data[1:17]  # skip the scanline filter byte
    assert row0[0] == row0[1] == 0 and row0[2] == 255
    assert len(uri) < 400


def test_build_task_carries_data_manager_columns_and_a_prediction():
    row = {"example_id": "x1", "example_version": 2, "run_id": "r9", "issue_types": ["label", "outlier"],
           "priority": 0.87654, "suggested_label": "7", "suggested_score": 0.912345, "given_label": "1",
           "scores": '{"label": 0.8, "outlier": 0.3}'}
    task = build_task(IMAGE, row, {f"px{i}": i % 17 for i in range(64)}, model_version="hgb v3")
    data = task["data"]
    assert data["engine_key"] == "x1@v2" and data["given_label"] == "1" and data["issue_types"] == "label, outlier"
    assert data["label_score"] == 0.8 and data["outlier_score"] == 0.3 and data["priority"] == 0.8765
    (prediction,) = task["predictions"]
    assert prediction == {"model_version": "hgb v3", "score": 0.9123, "result": choice_result("7")}
    assert chosen(prediction["result"]) == "7"


def test_tabular_task_is_a_table_of_names_and_values():
    row = {"example_id": "x", "example_version": 1, "issue_types": [], "suggested_label": None}
    task = build_task(TABLE, row, {"income": 1200.0, "region": "north"}, model_version="m")
    assert task["data"]["features"] == {"income": 1200, "region": "north"}
    assert "predictions" not in task


def test_secret_files_are_0600_and_stable(tmp_path):
    creds = server.admin_credentials(tmp_path / "secrets")
    again = server.admin_credentials(tmp_path / "secrets")
    assert creds == again and len(creds.token) == 40
    for name in (server.TOKEN_FILE, server.PASSWORD_FILE):
        assert stat.S_IMODE(os.stat(tmp_path / "secrets" / name).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "secrets").st_mode) == 0o700
    assert creds.token not in repr(creds) and creds.password not in repr(creds)


def test_server_env_is_an_allow_list(monkeypatch, tmp_path):
    for leaky in ("PORT", "HOST", "USERNAME", "PASSWORD", "DJANGO_DB", "LABEL_STUDIO_PORT"):
        monkeypatch.setenv(leaky, "leaked")
    creds = server.Credentials("a@example.com", "pw", "t" * 40)
    env = server.server_env(tmp_path, creds, "k")
    assert not {"PORT", "HOST", "USERNAME", "PASSWORD", "DJANGO_DB", "LABEL_STUDIO_PORT"} & set(env)
    assert env["LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"] == "true"
    assert env["LABEL_STUDIO_BASE_DATA_DIR"] == str(tmp_path)
    assert env["SENTRY_DSN"] == "" and env["COLLECT_ANALYTICS"] == "false"


def test_missing_server_binary_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(server.BIN_ENV, str(tmp_path / "nope"))
    with pytest.raises(EngineError, match="Label Studio server not installed"):
        server.find_server_binary()


def test_a_busy_port_is_refused_before_starting(tmp_path, monkeypatch):
    import socket

    exe = tmp_path / "label-studio"
    exe.write_text("#!/bin/sh\nexit 1\n")
    exe.chmod(0o755)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(EngineError, match=f"port {port} .* already in use"):
            server.start_server(tmp_path / "data", tmp_path / "secrets", port, binary=exe)

"""The review and labelstudio commands without a server: clear one-line answers, right exit codes."""

from __future__ import annotations

import os
import stat

import pytest

from data_engine.cli import main
from data_engine.review.labelstudio.server import TOKEN_FILE, free_port
from tests.homes import make_home


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    return make_home(tmp_path, {"review": {"url": f"http://127.0.0.1:{free_port()}"}})


def _run(home, *argv):
    return main(["--home", str(home.root), *argv])


def test_push_without_a_key_names_the_variable(home, capsys):
    assert _run(home, "review", "push") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "$LABEL_STUDIO_API_KEY" in err and "labelstudio up" in err


def test_push_to_a_server_that_is_not_running_is_one_line(home, capsys, monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "k" * 40)
    assert _run(home, "review", "push") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and home.config.review.url in err and "connection refused" in err
    assert "k" * 40 not in err


def test_labelstudio_status_and_down_when_nothing_runs(home, capsys):
    assert _run(home, "labelstudio", "status") == 1
    assert "not running" in capsys.readouterr().out
    assert _run(home, "labelstudio", "down") == 0
    assert "was not running" in capsys.readouterr().out


def test_labelstudio_token_prints_only_the_saved_token(home, capsys):
    assert _run(home, "labelstudio", "token") == 2
    assert "labelstudio up" in capsys.readouterr().err
    path = home.secrets / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"abc123\n")
    os.close(fd)
    assert _run(home, "labelstudio", "token") == 0
    assert capsys.readouterr().out == "abc123\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_simulate_without_an_oracle_is_a_clear_error(home, capsys):
    assert _run(home, "review", "simulate") == 2
    assert "seed-demo" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["push", "pull", "simulate"])
def test_a_remote_review_server_is_said_once_before_the_key_is_used(tmp_path, capsys, monkeypatch, command):
    """Issue 26: a review url off this machine needs allow_remote, and the commands that talk to it say
    so first (here the key is missing, so nothing is sent: the notice still comes before the error)."""
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    home = make_home(tmp_path, {"review": {"url": "https://ls.example.com", "allow_remote": True}})
    assert _run(home, "review", command) == 2
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    assert notes == ["note: review server https://ls.example.com is on another machine (ls.example.com); "
                     "the API key $LABEL_STUDIO_API_KEY is sent there ([review] allow_remote = true)"]


def test_a_remote_review_server_without_allow_remote_is_a_config_error(tmp_path):
    from data_engine.errors import ConfigError

    with pytest.raises(ConfigError, match=r"review.url = 'https://ls.example.com': ls.example.com is not this machine"):
        make_home(tmp_path, {"review": {"url": "https://ls.example.com"}})

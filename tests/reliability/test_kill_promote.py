"""A promotion killed (SIGKILL) around the moment the champion pointer moves.

Servers read only the pointer file, so the pointer must never name a model the warehouse has not
committed as champion: after the kill, the served model is the one the warehouse names (or the
previous champion, still serving, with the warehouse ahead: then ``sync_pointer`` repairs it).
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from data_engine.ship import deploy
from data_engine.ship.registry import current_champion
from data_engine.ship.training import train_candidate
from data_engine.store.warehouse import open_warehouse
from tests.loop_support import make_home, review, seed_digits
from tests.reliability.conftest import REPO, assert_status_answers

KILL_AROUND_POINTER = """
import os, signal, sys
from data_engine.ship import deploy
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse

home, version, when = Home.resolve(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
original = deploy.write_pointer

def write_then_die(h, pointer):
    if when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    original(h, pointer)
    os.kill(os.getpid(), signal.SIGKILL)

deploy.write_pointer = write_then_die
with open_warehouse(home) as con:
    deploy.promote(con, home, version, reason="killed promotion")
"""


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    home = make_home(tmp_path_factory.mktemp("promote"))
    info = seed_digits(home, n_train=200, n_gold=60, n_unlabeled=0)
    with open_warehouse(home) as con:
        v1 = train_candidate(con, home).record
        deploy.promote(con, home, v1.version, reason="first")
        tr = info["parts"]["train"]
        review(con, {e: str((int(y) + 1) % 10) for e, y in zip(info["ids"][tr], info["y"][tr])})
        v2 = train_candidate(con, home).record
    return home, v1, v2


@pytest.mark.timeout(300)
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_promotion_killed_around_the_pointer_never_serves_an_uncommitted_champion(two_models, tmp_path, when):
    import shutil

    from data_engine.store.home import Home

    base, v1, v2 = two_models
    home = Home(tmp_path / "home")
    shutil.copytree(base.root, home.root)
    proc = subprocess.run([sys.executable, "-c", KILL_AROUND_POINTER, str(home.root), str(v2.version), when],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with open_warehouse(home) as con:
        champion = current_champion(con).version
        pointer = deploy.read_pointer(home).version
        # The pointer names the committed champion, or lags behind it on the previous champion.
        assert pointer == champion or (pointer == v1.version and champion == v2.version), (pointer, champion)
        repaired = deploy.sync_pointer(con, home)
    assert repaired.version == champion and deploy.read_pointer(home).version == champion
    assert_status_answers(home)

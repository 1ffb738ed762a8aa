"""Pieces from a user's package: a detector, a selection strategy and an embedder declared as entry
points (groups ``data_engine.detectors``, ``data_engine.strategies``, ``data_engine.embedders``) are
accepted by the config and used by a mining run; the names belong to the registries alone.

The test package (tests/mine/plugin_package) is installed the way an installer lays out a wheel: its
module and a ``.dist-info`` directory (METADATA, entry_points.txt from its pyproject.toml) in a
directory on ``sys.path``, so the engine finds it through ``importlib.metadata`` as it would in a
real environment.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from data_engine.errors import ConfigError, EngineError
from data_engine.ingest.batch import ingest_file
from data_engine.mine.detectors import DETECTORS, get_detector
from data_engine.mine.embedders import EMBEDDERS
from data_engine.mine.models import MEMBERS
from data_engine.mine.names import check_names
from data_engine.mine.run import run_mining
from data_engine.mine.selection import STRATEGIES
from data_engine.plugins import Registry
from data_engine.store.config import parse_config
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home
from tests.mine.test_mining import CONFIG as MINING_CONFIG
from tests.mine.test_mining import blobs

PACKAGE = Path(__file__).parent / "plugin_package"
MODULE = "de_example_plugins"

# The blobs dataset of the mining tests, with the example package's pieces named in the config.
CONFIG = MINING_CONFIG[:MINING_CONFIG.index("[mining]")] + """\
[mining]
model = "linear+prior"
folds = 3
n_jobs = 1
detectors = ["label", "far_right", "uncertain"]
embedding = "row_sums"

[review]
budget = 12
strategy = "first_rows"
explore_share = 0.0
weights = { label = 1.0, far_right = 2.0, uncertain = 0.5 }
"""


def install(target: Path, pyproject: Path, module: Path | None) -> None:
    """Lay ``pyproject``'s project out in ``target`` as an installed distribution (module + dist-info)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    info = target / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n",
                                   encoding="utf-8")
    lines = []
    for group, points in project.get("entry-points", {}).items():
        lines += [f"[{group}]"] + [f"{name} = {value}" for name, value in points.items()] + [""]
    (info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    if module is not None:
        shutil.copy(module, target / module.name)


@contextmanager
def installed(target: Path, pyproject: Path, module: Path | None = None) -> Iterator[Path]:
    """``pyproject``'s project installed in ``target`` and on ``sys.path`` for the block, removed after."""
    install(target, pyproject, module)
    sys.path.insert(0, str(target))
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        if module is not None:
            sys.modules.pop(module.stem, None)


def entry_points_only(tmp_path: Path, name: str, detectors: str) -> Path:
    """A pyproject.toml of a package ``name`` with no module, declaring ``detectors`` (TOML lines)."""
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f'[project]\nname = "{name}"\nversion = "1.0"\n'
                         f'[project.entry-points."data_engine.detectors"]\n{detectors}', encoding="utf-8")
    return pyproject


@pytest.fixture()
def plugins(tmp_path: Path) -> Iterator[Path]:
    """The example package installed on ``sys.path`` for the test."""
    with installed(tmp_path / "site", PACKAGE / "pyproject.toml", PACKAGE / f"{MODULE}.py") as target:
        yield target


@pytest.fixture()
def home(tmp_path: Path, plugins: Path) -> Home:
    """A home whose config names the example package's pieces (`init` accepts them: the package is installed)."""
    return make_home(tmp_path, CONFIG)


def ingest(home: Home, name: str, frame: pd.DataFrame) -> None:
    path = home.landing / name
    frame.to_csv(path, index=False)
    with open_warehouse(home) as con:
        assert ingest_file(con, home.config.dataset, path).status == "ingested"


def test_the_names_come_from_the_installed_entry_points_without_importing_them(plugins: Path) -> None:
    assert "far_right" in DETECTORS and "first_rows" in STRATEGIES and "row_sums" in EMBEDDERS and "prior" in MEMBERS
    assert list(DETECTORS)[-1] == "far_right"  # after the built-ins
    assert MODULE not in sys.modules  # the names come from the metadata; nothing was imported
    cfg = check_names(parse_config(tomllib.loads(CONFIG)))
    assert cfg.mining.detectors == ("label", "far_right", "uncertain")
    detector = get_detector("far_right", top=1)
    assert type(detector).__module__ == MODULE and detector.top == 1


def test_mining_runs_the_pieces_of_an_installed_package(plugins: Path, home: Home) -> None:
    ingest(home, "labeled.csv", blobs(60, seed=0))
    ingest(home, "unlabeled.csv", blobs(30, seed=1, start=100, labeled=False))
    calls = {}
    with open_warehouse(home) as con:
        summary = run_mining(con, home.config, home=home)
        calls = dict(sys.modules[MODULE].CALLS)
        flagged = con.execute("SELECT example_id FROM issues WHERE run_id = ? AND issue_type = 'far_right' "
                              "AND is_issue ORDER BY example_id", [summary.run_id]).fetchall()
        queued = con.execute("SELECT example_id, issue_types FROM review_queue WHERE run_id = ?",
                             [summary.run_id]).fetchall()
    frames = pd.concat([blobs(60, seed=0), blobs(30, seed=1, start=100)])
    expected = sorted(frames.nlargest(2, "x")["id"])
    assert summary.counts["far_right"] == 2
    assert [r[0] for r in flagged] == expected
    assert {r[0] for r in queued if "far_right" in r[1]} == set(expected)
    # The strategy chose the new examples to label; the embedder embedded every row once.
    assert calls["first_rows"] >= 1
    assert calls["row_sums"] == 90
    assert summary.embedding == "row_sums"
    # The member from the package is in the ensemble; a constant guess earns (almost) no weight.
    assert summary.model_spec.startswith("linear+prior/") and calls["prior"] >= 1
    assert set(summary.ensemble_weights) == {"linear", "prior"} and summary.ensemble_weights["prior"] < 0.5


def test_without_the_package_its_names_are_config_errors_naming_the_key() -> None:
    cfg = parse_config(tomllib.loads(CONFIG))  # the store alone does not know detector names
    with pytest.raises(ConfigError, match=r"mining.detectors\[1\] = 'far_right': unknown detector; known: "
                                          r"class_imbalance, .*data_engine.detectors"):
        check_names(cfg)
    text = CONFIG.replace('"far_right", ', "").replace("far_right = 2.0, ", "")
    with pytest.raises(ConfigError, match="review.strategy = 'first_rows': unknown selection strategy"):
        check_names(parse_config(tomllib.loads(text)))
    with pytest.raises(EngineError, match="unknown detector 'far_right'"):
        get_detector("far_right")


def test_a_name_misspelt_after_init_is_refused_before_mining(home: Home) -> None:
    # engine.toml edited after `init` (which checks the names): mining checks them again first.
    home.config_path.write_text(CONFIG.replace('"far_right", ', '"lable", ').replace("far_right = 2.0, ", "")
                                .replace("first_rows", "margin").replace("row_sums", "tfidf"), encoding="utf-8")
    with open_warehouse(home) as con, pytest.raises(ConfigError, match=r"mining.detectors\[1\] = 'lable'"):
        run_mining(con, home.config, home=home)


@pytest.mark.parametrize("registry", [DETECTORS, STRATEGIES, EMBEDDERS, MEMBERS], ids=lambda r: r.group)
def test_every_builtin_name_is_registered_once(registry: Registry) -> None:
    names = list(registry)
    assert names and len(names) == len(set(names))


def test_a_broken_entry_point_is_an_error_naming_it(tmp_path: Path) -> None:
    pyproject = entry_points_only(tmp_path, "de-broken", 'ghost = "de_missing_module:Ghost"\n'
                                                        'far_right = "json:JSONDecoder"\n')
    with installed(tmp_path / "site", pyproject):
        with pytest.raises(EngineError, match="entry point 'ghost' = 'de_missing_module:Ghost' .*cannot be loaded: "
                                              "ModuleNotFoundError"):
            get_detector("ghost")
        with pytest.raises(EngineError, match="'far_right' = 'json:JSONDecoder' .*not a subclass of .*Detector"):
            get_detector("far_right")


def test_an_entry_point_taking_a_builtin_name_is_an_error(tmp_path: Path) -> None:
    with installed(tmp_path / "site", entry_points_only(tmp_path, "de-clash", 'label = "de_clash:Label"\n')):
        with pytest.raises(EngineError, match="entry point 'label' = 'de_clash:Label' .*takes the name of a built-in "
                                              "detector"):
            check_names(parse_config(tomllib.loads(MINING_CONFIG)))


def test_a_registry_refuses_a_second_piece_under_a_taken_name() -> None:
    registry: Registry[Callable[[], int]] = Registry("thing", "data_engine.tests_nothing")
    registry.register(lambda: 1, "one")
    with pytest.raises(EngineError, match="thing 'one' is registered twice"):
        registry.register(lambda: 2, "one")
    with pytest.raises(EngineError, match="unknown thing 'two'; known: one"):
        registry.get_piece("two")


def test_lookups_read_the_installed_metadata_once_and_again_for_a_name_they_lack(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A push looked up the task plug-in per task, and each lookup read every installed distribution
    (20 ms under load; the push took 1,128 s, 233 s once it looked up once a page). A known name is answered from the
    last read; a name it lacks is read afresh, so a package installed while the process runs is seen."""
    import data_engine.plugins as plugins_module

    reads = []
    real = plugins_module.entry_points
    monkeypatch.setattr(plugins_module, "entry_points", lambda **kw: reads.append(kw) or real(**kw))
    registry: Registry[Callable[[], int]] = Registry("thing", "data_engine.tests_lookups")
    registry.register(lambda: 1, "one")
    for _ in range(50):
        registry.check("one", "x.thing")
        assert "one" in registry
    assert len(reads) == 1
    # A package laid into a directory already on sys.path (pip install while the engine runs).
    site = tmp_path / "site"
    site.mkdir()
    registry = Registry("detector", "data_engine.detectors")
    monkeypatch.syspath_prepend(str(site))
    assert "late" not in registry
    before = len(reads)
    install(site, entry_points_only(tmp_path, "de-late", 'late = "json:JSONDecoder"\n'), None)
    assert "late" in registry and len(reads) == before + 1  # the last read lacked it: read afresh
    registry.check("late", "mining.detectors[0]")
    assert len(reads) == before + 1  # now known: no read


def test_iterating_reads_the_installed_metadata_once_and_errors_list_the_current_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Iteration read every installed distribution afresh each time (``metric_direction`` iterates the
    tasks on every call); it now shares the lookups' last read, and a lookup's miss reads afresh
    before an error lists the names, so the list is the current one."""
    import data_engine.plugins as plugins_module
    from data_engine.mine.candidates import metric_direction
    from data_engine.tasks import TASKS

    reads: list[str] = []
    real = plugins_module.entry_points
    monkeypatch.setattr(plugins_module, "entry_points", lambda *, group: reads.append(group) or real(group=group))
    monkeypatch.setattr(TASKS, "_read", None)
    # A metric no built-in task names is looked for among the installed ones too: read once for both calls.
    assert (metric_direction("mae"), metric_direction("kappa"), metric_direction("kappa")) == (False, True, True)
    assert reads == ["data_engine.tasks"]
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    registry: Registry[type] = Registry("detector", "data_engine.detectors")
    registry.register(int, "one")
    first, second = list(registry), list(registry)
    assert first == second and "late" not in first and reads == ["data_engine.tasks", "data_engine.detectors"]
    # A package laid into a directory already on sys.path: a miss reads afresh, and the error lists it.
    install(site, entry_points_only(tmp_path, "de-late", 'late = "json:JSONDecoder"\n'), None)
    with pytest.raises(EngineError, match=r"unknown detector 'nope'; known: one, late$"):
        registry.get_piece("nope")
    assert list(registry)[-1] == "late" and len(reads) == 3


def test_a_package_installed_at_run_time_is_listed_without_a_miss(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last read was kept while ``sys.path`` was unchanged, so a package laid into a directory
    already on it was listed only after a lookup missed a name. Its ``.dist-info`` changes that
    directory's time, which the last read is now kept by: the next listing reads afresh, once."""
    import data_engine.plugins as plugins_module

    reads: list[str] = []
    real = plugins_module.entry_points
    monkeypatch.setattr(plugins_module, "entry_points", lambda *, group: reads.append(group) or real(group=group))
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    registry: Registry[type] = Registry("detector", "data_engine.detectors")
    registry.register(int, "one")
    assert list(registry) == ["one"] and list(registry) == ["one"] and len(reads) == 1
    install(site, entry_points_only(tmp_path, "de-late", 'late = "json:JSONDecoder"\n'), None)
    assert list(registry) == ["one", "late"] and len(reads) == 2
    assert list(registry) == ["one", "late"] and "late" in registry and len(reads) == 2  # unchanged: no read
    # A miss right after a change reads once, not twice.
    (tmp_path / "b").mkdir()
    install(site, entry_points_only(tmp_path / "b", "de-later", 'later = "json:JSONEncoder"\n'), None)
    with pytest.raises(EngineError, match=r"unknown detector 'nope'; known: one, ") as err:
        registry.get_piece("nope")
    # Distributions in the directory's listing order.
    assert sorted(str(err.value).split("known: ")[1].split(", ")) == ["late", "later", "one"] and len(reads) == 3


def test_a_known_name_is_looked_up_without_reading_or_statting_and_a_miss_reads_afresh(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each lookup stat'ed every ``sys.path`` entry (~30 us), and with '' (the working directory) on
    ``sys.path`` every file written there changed its time, so the next lookup read every installed
    distribution again (~20 ms). A name the last read knows (a built-in, or an entry point read before)
    is now answered from it; only a miss, or a listing, looks at the installed packages again."""
    import data_engine.plugins as plugins_module

    reads: list[str] = []
    stats: list[str] = []
    real_read, real_stat = plugins_module.entry_points, plugins_module._mtime
    monkeypatch.setattr(plugins_module, "entry_points", lambda *, group: reads.append(group) or real_read(group=group))
    monkeypatch.setattr(plugins_module, "_mtime", lambda entry: stats.append(entry) or real_stat(entry))
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    registry: Registry[type] = Registry("detector", "data_engine.detectors")
    registry.register(int, "one")
    install(site, entry_points_only(tmp_path, "de-late", 'late = "json:JSONDecoder"\n'), None)
    registry.check("one", "mining.detectors[0]")  # the first lookup reads once (the clash check)
    assert "late" in registry and len(reads) == 1
    # Files written into a directory on sys.path (the working directory, as '' is): its time changes.
    for i in range(3):
        (site / f"written{i}.csv").write_text("id,label\n", encoding="utf-8")
        stats.clear()
        registry.check("one", "mining.detectors[0]")
        registry.check("late", "mining.detectors[0]")
        assert "one" in registry and "late" in registry and registry["one"] is int
        assert registry["late"].__name__ == "JSONDecoder"
        assert len(reads) == 1 and stats == []  # known names: a dict lookup, no read, no stat
    assert "nope" not in registry and len(reads) == 2  # a miss reads afresh
    with pytest.raises(ConfigError, match="'nope': unknown detector; known: one, late"):
        registry.check("nope", "mining.detectors[0]")
    assert len(reads) == 3
    # sys.path itself changed (a directory added or removed): a known name is read afresh once.
    monkeypatch.syspath_prepend(str(tmp_path / "other"))
    assert "late" in registry and "late" in registry and len(reads) == 4

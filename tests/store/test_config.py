"""engine.toml validation: every error names the key and the problem; good configs load."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

from data_engine.errors import ConfigError
from data_engine.store.config import _RANGES, EngineConfig, load_config, parse_config
from data_engine.store.review_url import remote_review_notice
from data_engine.store.home import Home

BASE = """\
[dataset]
name = "churn"
modality = "tabular"
id_column = "customer_id"
label_column = "outcome"
feature_columns = ["tenure", "plan"]
"""


def _parse(text: str) -> EngineConfig:
    return parse_config(tomllib.loads(text))


@pytest.mark.parametrize(
    "text, words",
    [
        # unknown keys, at every level
        (BASE + "colour = 'red'\n", ["unknown key", "dataset.colour"]),
        (BASE + "[mining]\nfold = 3\n", ["unknown key", "mining.fold", "folds"]),
        (BASE + "[reveiw]\nbudget = 3\n", ["unknown key", "reveiw"]),
        (BASE + "[[gate.slices]]\nname = 's'\ncolumn = 'plan'\nequal = 'x'\n", ["unknown key", "gate.slices[0].equal"]),
        # missing sections and keys
        ("[mining]\nfolds = 3\n", ["missing required section [dataset]"]),
        (BASE.replace('label_column = "outcome"\n', ""), ["missing required key dataset.label_column"]),
        # wrong types
        (BASE + "[mining]\nfolds = '5'\n", ["mining.folds", "expected an integer", "a string"]),
        (BASE + "[mining]\nfolds = true\n", ["mining.folds", "expected an integer", "a boolean"]),
        (BASE + "[review]\ntimeout_seconds = 'soon'\n", ["review.timeout_seconds", "expected a number"]),
        (BASE + "[review]\ntimeout_seconds = inf\n", ["review.timeout_seconds", "finite"]),
        (BASE + "[retrain]\nweight_by_label_quality = 1\n", ["retrain.weight_by_label_quality", "true or false"]),
        (BASE.replace('["tenure", "plan"]', '"tenure"'), ["dataset.feature_columns", "expected a list"]),
        (BASE.replace('["tenure", "plan"]', '["tenure", 3]'), ["dataset.feature_columns[1]", "expected a string"]),
        (BASE.replace('"tabular"', '"audio"'), ["dataset.modality", "'audio'", "'tabular'"]),
        (BASE + "[mining]\n", None),  # an empty section is fine (defaults)
        ("dataset = 3\n", ["dataset", "expected a table"]),
        # classes
        (BASE + 'classes = ["yes"]\n', ["dataset.classes", "at least two"]),
        (BASE + 'classes = ["yes", "no", "yes"]\n', ["dataset.classes", "twice"]),
        (BASE + 'classes = ["yes", " no"]\n', ["dataset.classes[1]", "surrounding spaces"]),
        (BASE + 'classes = ["yes", ""]\n', ["dataset.classes[1]"]),
        # column collisions, reserved and malformed names
        (BASE.replace('["tenure", "plan"]', '["tenure", "customer_id"]'), ["customer_id", "named twice"]),
        (BASE.replace('["tenure", "plan"]', '["tenure", "Outcome"]'), ["Outcome", "named twice"]),
        (BASE.replace('["tenure", "plan"]', '["tenure", "batch_id"]'), ["batch_id", "reserved"]),
        (BASE.replace('["tenure", "plan"]', '["tenure", "__row"]'), ["__row", "reserved"]),
        (BASE.replace('["tenure", "plan"]', '["ten\\"ure"]'), ["dataset.feature_columns[0]", "quotes"]),
        (BASE.replace('["tenure", "plan"]', '[]'), ["dataset.feature_columns", "at least one"]),
        (BASE.replace('"tabular"', '"text"'), ["dataset.text_column", "required"]),
        (BASE + 'column_types = { tenure = "numeric", age = "numeric" }\n', ["dataset.column_types.age"]),
        (BASE + 'column_types = { tenure = "number" }\n', ["dataset.column_types.tenure", "'numeric'"]),
        # ranges and cross-section checks
        (BASE + "[mining]\nfolds = 1\n", ["mining.folds", "at least 2"]),
        (BASE + "[mining]\ndetectors = ['label', '']\n", ["mining.detectors[1]", "must not be empty"]),
        (BASE + "[review]\nurl = 'localhost:8080'\n", ["review.url", "http://"]),
        (BASE + "[review]\napi_key_env = 'sk-123 456'\n", ["review.api_key_env", "NAME"]),
        (BASE + "[review.weights]\nlabel = -1.0\n", ["review.weights.label", "must not be negative"]),
        (BASE + "[serve]\nport = 70000\n", ["serve.port = 70000: must be between 1 and 65535"]),
        (BASE + "[gate]\nmin_gold = 0\n", ["gate.min_gold = 0: must be at least 1"]),
        (BASE + "[ingest]\nmax_quarantine_share = 1.5\n", ["ingest.max_quarantine_share", "between 0 and 1"]),
        (BASE + "[ingest]\nmax_quarantine_share = -0.1\n", ["ingest.max_quarantine_share", "between 0 and 1"]),
        (BASE + "[ingest]\nmax_quarantine_share = 'half'\n", ["ingest.max_quarantine_share", "expected a number"]),
        (BASE + "[review]\nallow_remote = 'yes'\n", ["review.allow_remote", "true or false"]),
        (BASE + "[review]\nurl = 'http://[::1:8080'\n", ["review.url"]),
        (BASE + "[review]\nurl = 'http://:8080'\n", ["review.url", "names no host"]),
        (BASE + "[[gate.slices]]\nname = 's'\ncolumn = 'age'\nequals = 'x'\n", ["gate.slices[0].column", "'age'"]),
        (BASE + "[[gate.slices]]\nname = 's'\ncolumn = 'plan'\n", ["gate.slices[0]", "equals, min or max"]),
        (BASE + "[gate]\nmin_class_gold = 0\n", ["gate.min_class_gold", "at least 1"]),
        (BASE + "[gate]\nunmeasured = 'ignore'\n", ["gate.unmeasured", "'out_of_fold'", "'refuse'", "'allow'"]),
        (BASE + "[gate]\nunmeasured_tolerance = 2\n", ["gate.unmeasured_tolerance", "between 0 and 1"]),
    ],
)
def test_config_errors_name_the_key(text: str, words: list[str] | None) -> None:
    if words is None:
        assert _parse(text).mining.folds == 5
        return
    with pytest.raises(ConfigError) as info:
        _parse(text)
    for word in words:
        assert word in str(info.value), f"{word!r} not in {info.value}"


def test_a_good_config_has_its_values_and_defaults() -> None:
    cfg = _parse(BASE + 'classes = ["stayed", "left"]\ncolumn_types = { tenure = "numeric" }\n'
                 "[mining]\nfolds = 3\ndetectors = ['label']\n"
                 "[[gate.slices]]\nname = 'long'\ncolumn = 'tenure'\nmin = 24\n")
    assert cfg.dataset.feature_columns == ("tenure", "plan") and cfg.dataset.classes == ("stayed", "left")
    assert cfg.dataset.column_types == {"tenure": "numeric"}
    assert (cfg.mining.folds, cfg.mining.detectors, cfg.mining.seed) == (3, ("label",), 0)
    assert cfg.gate.slices[0].min == 24.0 and isinstance(cfg.gate.slices[0].min, float)
    assert cfg.dataset.input_columns == ("tenure", "plan")


@pytest.mark.parametrize("name", ["churn.toml", "sentiment.toml"])
def test_shipped_examples_load(name: str) -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / name
    assert load_config(path).dataset.name == name.removesuffix(".toml")


def test_default_config_is_the_digits_demo(tmp_path: Path) -> None:
    path = tmp_path / "engine.toml"
    path.write_text(resources.files("data_engine.store").joinpath("default_config.toml").read_text(), encoding="utf-8")
    ds = load_config(path).dataset
    assert (ds.name, ds.modality, len(ds.feature_columns), len(ds.classes or ())) == ("digits", "image", 64, 10)


@pytest.mark.parametrize(
    "content, words",
    [
        (None, ["engine.toml", "no engine config", "init"]),
        (b"[dataset\nname = 1", ["engine.toml", "not valid TOML"]),
        ("[dataset]\nname = 'caf\xe9'\n".encode("latin-1"), ["engine.toml", "not UTF-8"]),
        (BASE.encode() + b"oops = 1\n", ["engine.toml", "dataset.oops"]),
    ],
)
def test_load_config_errors_name_the_file(tmp_path: Path, content: bytes | None, words: list[str]) -> None:
    path = tmp_path / "engine.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    for word in words:
        assert word in str(info.value), f"{word!r} not in {info.value}"


def test_home_without_directory_says_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no engine home here.*init"):
        _ = Home(tmp_path / "nowhere").config


def test_max_quarantine_share_defaults_to_half_and_reads_the_key() -> None:
    assert _parse(BASE).ingest.max_quarantine_share == 0.5
    assert _parse(BASE + "[ingest]\nmax_quarantine_share = 0.2\n").ingest.max_quarantine_share == 0.2
    assert _parse(BASE + "[ingest]\nmax_quarantine_share = 1\n").ingest.max_quarantine_share == 1.0


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://127.1.2.3:8080", "http://localhost:8080",
                                 "http://LOCALHOST:8080", "http://[::1]:8080", "https://127.0.0.1"])
def test_a_loopback_review_url_needs_nothing_and_is_not_announced(url: str) -> None:
    cfg = _parse(BASE + f"[review]\nurl = '{url}'\n")
    assert cfg.review.allow_remote is False and remote_review_notice(cfg.review.url, cfg.review.api_key_env) is None


@pytest.mark.parametrize("url, host", [("https://ls.example.com", "ls.example.com"),
                                       ("http://10.0.0.5:8080", "10.0.0.5"),
                                       ("http://128.0.0.1:8080", "128.0.0.1"),
                                       ("http://[2001:db8::1]:8080", "2001:db8::1"),
                                       ("http://0.0.0.0:8080", "0.0.0.0")])
def test_a_remote_review_url_is_refused_unless_allowed_then_announced(url: str, host: str) -> None:
    with pytest.raises(ConfigError) as info:
        _parse(BASE + f"[review]\nurl = '{url}'\napi_key_env = 'LS_KEY'\n")
    for word in ("review.url", host, "$LS_KEY", "allow_remote = true"):
        assert word in str(info.value), f"{word!r} not in {info.value}"
    cfg = _parse(BASE + f"[review]\nurl = '{url}'\napi_key_env = 'LS_KEY'\nallow_remote = true\n")
    notice = remote_review_notice(cfg.review.url, cfg.review.api_key_env)
    assert notice is not None and host in notice and "$LS_KEY" in notice and url in notice


@pytest.mark.parametrize("key", sorted(_RANGES))
def test_each_range_names_a_key_and_passes_its_default(key: str) -> None:
    """A misspelt key in the range table would never be checked; a default out of its own range
    would refuse every config that leaves the key out."""
    section, name = key.split(".")
    cfg = parse_config(tomllib.loads(BASE))
    assert name in type(getattr(cfg, section)).__dataclass_fields__
    assert _RANGES[key][0](getattr(getattr(cfg, section), name))

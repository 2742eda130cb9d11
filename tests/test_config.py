from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from r1release import config as config_mod
from r1release.cli import main
from r1release.errors import ConfigError

from factory import REPO

MINIMAL = "version: 1\nmodels:\n  - name: m\n    checkpoint: {ckpt}\n    repo_id: org/m\n"


def test_repository_example_is_valid(monkeypatch):
    monkeypatch.delenv("R1RELEASE_CHECKPOINTS", raising=False)
    config = config_mod.load(REPO / "release.yaml")
    [model] = config.models
    assert model.name == "OpenR1-Distill-7B"
    assert model.checkpoint == REPO / "data" / "OpenR1-Distill-7B"
    assert model.tags == ("open-r1",)
    assert config.checks["leftovers"].options["patterns"] == ("wandb",)
    assert config.push.fix is True


def test_example_validates_against_exported_schema():
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    example = yaml.safe_load((REPO / "release.yaml").read_text())
    jsonschema.validate(example, schema)
    bad = {**example, "modelz": []}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_defaults(tmp_path):
    config = config_mod.loads(MINIMAL.format(ckpt="ck"), tmp_path / "release.yaml")
    model = config.models[0]
    assert model.tags == ("open-r1",)
    assert model.private is True
    assert model.checkpoint == tmp_path / "ck"  # relative to release.yaml
    assert config.smoke.max_new_tokens == 256
    assert config.push.revision == "main"


def test_frozen(tmp_path):
    config = config_mod.loads(MINIMAL.format(ckpt="ck"), tmp_path / "release.yaml")
    with pytest.raises(AttributeError):
        config.models[0].name = "x"  # type: ignore[misc]


def test_env_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNS", "/data/runs")
    config = config_mod.loads(MINIMAL.format(ckpt="${RUNS}/m"), tmp_path / "r.yaml")
    assert config.models[0].checkpoint == Path("/data/runs/m")
    monkeypatch.delenv("RUNS")
    config = config_mod.loads(MINIMAL.format(ckpt="${RUNS:-/x}/m"), tmp_path / "r.yaml")
    assert config.models[0].checkpoint == Path("/x/m")
    with pytest.raises(ConfigError, match=r"r\.yaml:4: models\[0\]\.checkpoint: environment"):
        config_mod.loads(MINIMAL.format(ckpt="${RUNS}/m"), tmp_path / "r.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file is empty"),
        ("- a\n", "expected a mapping"),
        ("version: 2\nmodels: []\n", "expected one of 1"),
        ("version: 1\nmodels: []\n", "at least one model"),
        (MINIMAL.replace("org/m", "not a repo"), "invalid value 'not a repo'"),
        (MINIMAL.replace("name: m", "name: 'has space'"), "invalid value 'has space'"),
        (MINIMAL + "models: []\n", "duplicate key"),
        (MINIMAL + "smoke: {max_new_tokens: many}\n", "smoke.max_new_tokens: expected an integer"),
    ],
)
def test_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")) as err:
        config_mod.loads(text.replace("{ckpt}", "c"), tmp_path / "release.yaml")
    assert str(err.value).startswith(str(tmp_path / "release.yaml"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        config_mod.load(tmp_path / "release.yaml")


def test_off_severity_disables_rule(checkpoint, tmp_path):
    from r1release.checker import check

    path = checkpoint("qwen2.5-base-after-chatml-sft")
    text = MINIMAL.format(ckpt=path) + "checks:\n  use-cache: off\n  eos-alignment: warning\n"
    config = config_mod.loads(text, tmp_path / "release.yaml")
    report = check(path, settings=config.checks)
    assert report.by_rule("use-cache") == ()
    assert report.by_rule("eos-alignment")[0].severity.value == "warning"
    assert "use-cache" not in report.rules_run

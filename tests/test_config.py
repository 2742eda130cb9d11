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


# ------------------------------------------------------------- checks: against the registry

CHECKS = MINIMAL.format(ckpt="ck") + "checks:\n"


@pytest.mark.parametrize(
    ("checks", "line", "key", "expected"),
    [
        ("  eos-alignmnt: off\n", 7, "checks.eos-alignmnt", "did you mean 'eos-alignment'?"),
        (
            "  weights-format:\n    severity: warning\n    allow_pickles: true\n",
            9,
            "checks.weights-format.allow_pickles",
            "unknown option (did you mean 'allow_pickle'?)",
        ),
        (
            "  weights-format: {allow_pickle: 'yes'}\n",
            7,
            "checks.weights-format.allow_pickle",
            "expected bool, got 'yes'",
        ),
        ("  leftovers: {patterns: wandb}\n", 7, "checks.leftovers.patterns", "expected list or"),
    ],
)
def test_checks_are_validated_at_load(tmp_path, checks, line, key, expected):
    path = tmp_path / "release.yaml"
    with pytest.raises(ConfigError) as err:
        config_mod.loads(CHECKS + checks, path)
    message = str(err.value)
    assert f"{path}:{line}: {key}: " in message, message
    assert expected in message and "\n" not in message
    instance = yaml.safe_load(CHECKS + checks)
    with pytest.raises(jsonschema.ValidationError):  # the generated schema refuses it too
        jsonschema.validate(instance, config_mod.json_schema())


def test_valid_checks_with_options_pass_the_loader_and_the_schema(tmp_path):
    checks = (
        "  eos-alignment: warning\n"
        "  leftovers: false\n"
        "  weights-format: {allow_pickle: true}\n"
        "  card-metadata:\n    severity: error\n    required: [license, tags]\n"
        "  smoke-generate: {max_new_tokens: 32, prompts: [Hi]}\n"
    )
    config = config_mod.loads(CHECKS + checks, tmp_path / "release.yaml")
    assert config.checks["weights-format"].options == {"allow_pickle": True}
    assert config.checks["card-metadata"].options == {"required": ("license", "tags")}
    assert config.checks["leftovers"].severity == "off"
    jsonschema.validate(yaml.safe_load(CHECKS + checks), config_mod.json_schema())


def test_the_checks_schema_is_generated_from_the_rules():
    from r1release.rules import RULES

    checks = config_mod.json_schema()["properties"]["checks"]
    assert checks["additionalProperties"] is False
    assert list(checks["properties"]) == [r.name for r in RULES]
    options = checks["properties"]["smoke-generate"]["anyOf"][1]
    assert options["additionalProperties"] is False
    assert options["properties"]["max_new_tokens"]["type"] == "integer"
    assert options["properties"]["prompts"]["type"] == "array"
    assert checks["properties"]["chat-template"]["anyOf"][1]["properties"]["required"] == {
        "type": "boolean",
        "description": "report a missing chat template",
        "default": True,
    }


# ------------------------------------------------------------- every error in one load

SEVERAL = """\
version: 1
models:
  - name: m
    checkpoint: c
    repo_id: org/m
    license: apache2
    private: sometimes
    privat: true
  - name: m
    checkpoint: c
    repo_id: not a repo
    tags: open-r1
checks:
  eos-alignmnt: off
  weights-format: {allow_pickles: true, allow_pickle: 'yes'}
smoke:
  max_new_tokens: 0
push:
  fix: 3
"""
SEVERAL_ERRORS = [
    (6, "models[0].license", "'apache2' is not a Hub license id (did you mean 'apache-2.0'?)"),
    (7, "models[0].private", "expected true/false, got a string 'sometimes'"),
    (8, "models[0].privat", "unknown key (did you mean 'private'?)"),
    (9, "models[1].name", "duplicate model name 'm' (first defined at line 3)"),
    (11, "models[1].repo_id", "invalid value 'not a repo'"),
    (12, "models[1].tags", "expected a list"),
    (14, "checks.eos-alignmnt", "unknown rule (did you mean 'eos-alignment'?)"),
    (15, "checks.weights-format.allow_pickles", "unknown option"),
    (15, "checks.weights-format.allow_pickle", "expected bool, got 'yes'"),
    (17, "smoke.max_new_tokens", "0 is not between 1 and 4096"),
    (19, "push.fix", "expected true/false, got an integer 3"),
]


def test_every_error_is_reported_in_one_load(tmp_path):
    path = tmp_path / "release.yaml"
    with pytest.raises(ConfigError) as caught:
        config_mod.loads(SEVERAL, path)
    error = caught.value
    assert [(e.line, e.key) for e in error.errors] == [(ln, k) for ln, k, _ in SEVERAL_ERRORS]
    for e, (line, key, message) in zip(error.errors, SEVERAL_ERRORS, strict=True):
        assert str(e).startswith(f"{path}:{line}: {key}: {message}"), str(e)
        assert "\n" not in str(e)
    # the raised error reads as the first, one line, saying how many more there are
    assert (error.line, error.key, error.exit_code) == (6, "models[0].license", 2)
    assert str(error).startswith(str(error.errors[0]))
    assert str(error).endswith(" (and 10 more errors)") and "\n" not in str(error)


def test_the_cli_prints_every_error_then_the_count(tmp_path, monkeypatch):
    (tmp_path / "release.yaml").write_text(SEVERAL)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", "--model", "m"])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == len(SEVERAL_ERRORS) + 1, result.stderr
    for text, (line, key, message) in zip(lines, SEVERAL_ERRORS, strict=False):
        assert text.startswith(f"error: release.yaml:{line}: {key}: {message}"), text
    assert lines[-1] == f"release.yaml: {len(SEVERAL_ERRORS)} errors"
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_the_number_of_errors_shown_is_bounded(tmp_path, monkeypatch):
    text = MINIMAL.format(ckpt="c") + "".join(f"    bad{i}: 1\n" for i in range(60))
    (tmp_path / "release.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", "--model", "m"])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    shown = config_mod.MAX_REPORTED_ERRORS
    assert len(lines) == shown + 2
    assert all(line.startswith("error: release.yaml:") for line in lines[:shown])
    assert lines[shown:] == [f"... and {60 - shown} more", "release.yaml: 60 errors"]


def test_a_yaml_syntax_error_is_one_error(tmp_path):
    text = MINIMAL.format(ckpt="c") + "    private: sometimes\nchecks:\n  x: [unclosed\n"
    with pytest.raises(ConfigError) as caught:
        config_mod.loads(text, tmp_path / "release.yaml")
    assert caught.value.count == 1
    assert "YAML syntax error" in str(caught.value)


def test_an_error_inside_a_list_does_not_hide_the_next_items(tmp_path):
    text = (
        "version: 1\nmodels:\n"
        "  - {name: a, checkpoint: c, repo_id: org/a, private: 1}\n"
        "  - {name: b, checkpoint: c}\n"
        "  - {name: c, checkpoint: c, repo_id: org/c, tags: [x, {y: 1}]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        config_mod.loads(text, tmp_path / "release.yaml")
    assert [(e.line, e.key) for e in caught.value.errors] == [
        (3, "models[0].private"),
        (4, "models[1].repo_id"),
        (5, "models[2].tags[1]"),
    ]

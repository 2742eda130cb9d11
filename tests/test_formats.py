"""``--format``: one registry of output formats (r1release/cli/render.py) behind check, fix,
push and release. json: stdout is one document and nothing else; github: ``::error`` and
``::warning`` annotations on stderr, escaped by ``ci.command_data``; text: no workflow
command anywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import pytest

from r1release import ci
from r1release.cli import main, render

from helpers import run_cli, write_release_yaml

MODEL = ("--model", "OpenR1-Tiny")
COMMANDS = {
    "check": ("check", *MODEL),
    "fix": ("fix", *MODEL),
    "fix --dry-run": ("fix", *MODEL, "--dry-run"),
    "push --dry-run": ("push", *MODEL, "--version", "v1.0.0", "--dry-run"),
    "release --dry-run": ("release", *MODEL, "--version", "v1.0.0", "--dry-run"),
}
# A leftover whose name holds what a workflow command must never see raw.
HOSTILE = "optimizer%0A::error::forged.pt"
WORKFLOW_COMMAND = re.compile(r"^::(error|warning|notice|debug|group|add-mask|stop-commands)\b")


@pytest.fixture
def workspace(checkpoint: Any, tmp_path: Path) -> Path:
    """EOS and use_cache wrong (fixable), a pickle file with a hostile name beside it; their
    rules are warnings here, so a dry-run release goes through with findings to report."""
    path = checkpoint("qwen2.5-base-after-chatml-sft")
    (path / HOSTILE).write_bytes(b"\x80\x04optimizer state")
    write_release_yaml(
        tmp_path,
        path,
        checks="{weights-format: warning, eos-alignment: warning, use-cache: warning, "
        "generation-use-cache: warning, chat-template-stop: warning, "
        "config-eos-consistency: warning}",
        push="{fix: false}",
    )
    return tmp_path


def _run(monkeypatch: Any, hub: Any, cwd: Path, command: str, fmt: str) -> Any:
    return run_cli(monkeypatch, hub, cwd, *COMMANDS[command], "--format", fmt)


def test_the_registry_names_every_format():
    assert list(render.FORMATS) == ["text", "json", "github"]
    for name, cls in render.FORMATS.items():
        assert cls.name == name and issubclass(cls, render.Format)


def test_an_unknown_format_is_a_usage_error(monkeypatch):
    with pytest.raises(click.UsageError) as caught:
        render.get_format("xml")
    assert caught.value.exit_code == 2 and "text, json, github" in caught.value.message
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    assert isinstance(render.get_format(None), render.Text)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert isinstance(render.get_format(None), render.GitHub)


@pytest.mark.parametrize("command", ["check", "fix", "push", "release"])
def test_an_unknown_format_on_the_command_line_exits_2(command):
    from click.testing import CliRunner

    result = CliRunner().invoke(main, [command, "--format", "xml"])
    assert result.exit_code == 2, result.output
    assert "'xml' is not one of 'text', 'json', 'github'" in result.stderr


@pytest.mark.parametrize("command", list(COMMANDS))
def test_json_is_one_document_on_stdout(command, workspace, hub, monkeypatch):
    run = _run(monkeypatch, hub, workspace, command, "json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)  # the whole of stdout: nothing else is there
    assert isinstance(doc, dict)
    assert not any(WORKFLOW_COMMAND.match(line) for line in run.stderr.splitlines())
    if command.startswith(("push", "release")):
        assert doc["release"]["dry_run"] is True and doc["manifest"]["files"]
    elif command == "check":
        assert doc["findings"]
    else:
        assert doc["schema_version"] == 1 and doc["changes"]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_github_annotates_on_stderr_escaped(command, workspace, hub, monkeypatch):
    run = _run(monkeypatch, hub, workspace, command, "github")
    assert run.returncode == 0, run.stderr
    assert not any(line.startswith("::") for line in run.stdout.splitlines())
    annotations = [line for line in run.stderr.splitlines() if line.startswith("::")]
    assert any(line.startswith(("::error ", "::warning ")) for line in annotations), run.stderr
    for line in annotations:
        match = re.fullmatch(r"::(error|warning) file=[^:]*,title=[^:]*::(.*)", line)
        assert match, line
        assert "::error::forged" not in line
    if command in ("check", "push --dry-run", "release --dry-run"):
        [pickle] = [line for line in annotations if "weights-format" in line]
        assert pickle.startswith("::warning ") and ci.command_property(HOSTILE) in pickle


@pytest.mark.parametrize("command", list(COMMANDS))
def test_text_has_no_workflow_command(command, workspace, hub, monkeypatch):
    run = _run(monkeypatch, hub, workspace, command, "text")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines() + run.stderr.splitlines()
    assert not any(WORKFLOW_COMMAND.match(line) for line in lines), lines


def test_fix_json_documents_what_it_changed(workspace, hub, monkeypatch):
    checkpoint = Path(
        next(
            line.split(": ", 1)[1]
            for line in (workspace / "release.yaml").read_text().splitlines()
            if "checkpoint:" in line
        )
    )
    before = (checkpoint / "generation_config.json").read_text()
    planned = _run(monkeypatch, hub, workspace, "fix --dry-run", "json")
    plan = json.loads(planned.stdout)
    assert plan["dry_run"] is True and plan["written"] is False
    assert (checkpoint / "generation_config.json").read_text() == before  # nothing written
    assert "would change" in planned.stderr

    run = _run(monkeypatch, hub, workspace, "fix", "json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["dry_run"] is False and doc["written"] is True
    assert doc["checkpoint"] == str(checkpoint) and doc["remaining"] == []
    assert [c["path"] for c in doc["changes"]] == [c["path"] for c in plan["changes"]]
    for change in doc["changes"]:
        assert change["action"] in ("create", "modify") and change["rules"]
        assert change["diff"].startswith(("--- a/", "--- /dev/null"))
        assert f"fixed {change['path']}" in run.stderr or f"created {change['path']}" in run.stderr
    changed = {c["path"] for c in doc["changes"]}
    assert "generation_config.json" in changed
    assert (checkpoint / "generation_config.json").read_text() != before
    assert {f["rule"] for f in doc["fixed"]} >= {r for c in doc["changes"] for r in c["rules"]}

    again = json.loads(_run(monkeypatch, hub, workspace, "fix", "json").stdout)
    assert again["changes"] == [] and again["written"] is False

"""Untrusted strings never become workflow commands in the Actions log: a leftover directory
name, a config value and the checkpoint path, each holding a newline followed by
``::error title=X::``, go through ``check --format github`` and a release dry run in GitHub
Actions; every output line starting with ``::`` is one r1release emitted itself."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from r1release.cli import main

import reliability
from helpers import write_release_yaml

RELIABILITY_AREA = "Hostile input"
record = pytest.fixture(reliability.record)
FORGED = "\n::error title=X::forged"


@pytest.fixture
def hostile(checkpoint, tmp_path):
    clean = checkpoint("qwen2.5-base-after-chatml-sft")  # findings: EOS, use_cache
    path = tmp_path / f"ckpt{FORGED}"
    shutil.move(clean, path)
    (path / f"checkpoint-1{FORGED}").mkdir()  # a leftover the leftovers rule names
    config = json.loads((path / "config.json").read_text())
    config["transformers_version"] = f"5.0{FORGED}"  # shown in the card
    (path / "config.json").write_text(json.dumps(config))
    yaml = write_release_yaml(tmp_path, path)
    text = yaml.read_text().replace(f"checkpoint: {path}", f"checkpoint: {json.dumps(str(path))}")
    yaml.write_text(text)  # a YAML double-quoted string holds the newline
    return path


def _own(line: str) -> bool:
    return line.startswith(("::error file=", "::warning file=", "::add-mask::"))


@pytest.mark.parametrize(
    "args",
    [
        ("check", "--format", "github"),
        ("--debug", "check", "--format", "github"),
        ("release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--dry-run"),
    ],
    ids=["check github", "check github --debug", "release --dry-run (offline)"],
)
def test_no_forged_workflow_command(hostile, tmp_path, monkeypatch, record, args):
    monkeypatch.chdir(tmp_path)
    summary = tmp_path / "summary.md"
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(summary),
        "HF_HUB_OFFLINE": "1",
        "R1RELEASE_RETRY_SCALE": "0",
    }
    result = CliRunner().invoke(main, list(args), env=env)
    lines = (result.stdout + "\n" + result.stderr).splitlines()
    commands = [line for line in lines if line.lstrip().startswith("::")]
    forged = [line for line in commands if not _own(line)]
    summary_text = summary.read_text() if summary.exists() else ""
    forged += [f"summary: {line}" for line in summary_text.splitlines() if "::" in line[:3]]
    record(
        f"'\\n::error title=X::' in a file name, a config value, the path; {args[0]}",
        "leftover dir, transformers_version and the checkpoint path end in a forged command",
        result,
        message="; ".join(forged) or f"{len(commands)} workflow commands, all r1release's own",
    )
    assert result.exit_code in (0, 1), result.output
    assert not forged
    assert all(line.count("::") >= 2 and "\n" not in line for line in commands)
    if args[-1] == "github":
        assert any(line.startswith("::error file=") for line in commands)  # still annotated

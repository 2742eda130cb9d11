"""GitHub-native output: annotations, step summary, outputs, masking."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from r1release import ci
from r1release.cli import main
from r1release.findings import Finding, Report, Severity

from helpers import REPO_ID, TOKEN, r1release, write_release_yaml


def finding(**kw):
    values = {
        "rule_id": "R101",
        "rule": "eos-alignment",
        "severity": Severity.ERROR,
        "message": "EOS 151645 is not a stop token: 50% of runs, never stop\nreally",
        "file": "generation_config.json",
        "hint": "run `r1release fix`",
        "fixable": True,
    }
    return Finding(**{**values, **kw})


def test_annotation_is_escaped_and_repo_relative(tmp_path):
    workspace = tmp_path
    line = ci.annotation(finding(), workspace / "out" / "model", str(workspace))
    assert line.startswith(
        "::error file=out/model/generation_config.json,title=eos-alignment (R101)::"
    )
    assert "50%25 of runs" in line and "%0Areally" in line and "\n" not in line
    warning = ci.annotation(finding(severity=Severity.WARNING, file="a,b:c"), workspace, None)
    assert warning.startswith("::warning file=") and "a%2Cb%3Ac" in warning


def test_checkpoint_outside_workspace_gets_absolute_path(tmp_path):
    line = ci.annotation(finding(), "/data/runs/m", str(tmp_path))
    assert "file=/data/runs/m/generation_config.json" in line


def test_summary_table():
    report = Report("out/m", (finding(), finding(rule="use-cache", message="a | b")))
    text = ci.report_summary(report)
    assert "| severity | rule | file | message |" in text
    assert "| error | `use-cache` | `generation_config.json` | a \\| b |" in text


def test_outputs_file(tmp_path):
    out = tmp_path / "out"
    ci.write_outputs({"repo_id": "o/m", "notes": "two\nlines"}, {"GITHUB_OUTPUT": str(out)})
    text = out.read_text()
    assert text.startswith("repo_id=o/m\nnotes<<r1release_")
    assert "\ntwo\nlines\nr1release_" in text


def test_check_in_github_actions(checkpoint, tmp_path, monkeypatch):
    path = checkpoint("qwen2.5-base-after-chatml-sft")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(path.parent))
    monkeypatch.setenv("HF_TOKEN", "hf_secret_mask_me")
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    name = path.name
    # Workflow commands go to stderr (the runner reads both streams); stdout stays the report.
    assert (
        f"::error file={name}/generation_config.json,title=eos-alignment (R101)::" in result.stderr
    )
    assert not [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert "| error | `use-cache` | `config.json` |" in summary.read_text()
    # HF_TOKEN comes from `secrets.*`, which the runner masks itself: never echoed, not even
    # in an ::add-mask:: line.
    assert "hf_secret_mask_me" not in result.stdout + result.stderr


def test_json_format_stays_json_in_github_actions(checkpoint, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = CliRunner().invoke(main, ["check", "--format", "json", str(checkpoint())])
    assert result.stdout.lstrip().startswith("{")


@pytest.mark.e2e
def test_release_outputs_and_summary(hub, checkpoint, tmp_path):
    write_release_yaml(tmp_path, checkpoint("qwen2.5-base-after-chatml-sft"))
    outputs, summary = tmp_path / "output", tmp_path / "summary.md"
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_WORKSPACE": str(tmp_path),
    }
    result = r1release(
        hub, tmp_path, "release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", env=env
    )
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    head = hub.repo(REPO_ID).branches["main"]
    manifest_sha256 = values.pop("manifest_sha256")
    assert len(manifest_sha256) == 64
    assert values == {
        "repo_id": REPO_ID,
        "version": "v1.0.0",
        "revision": head,
        "commit_url": f"{hub.url}/{REPO_ID}/commit/{head}",
        "dry_run": "false",
    }
    assert f"manifest sha256: `{manifest_sha256}`" in summary.read_text()
    text = summary.read_text()
    assert "### r1release: OpenR1-Tiny v1.0.0 (released)" in text
    assert "| `model-00001-of-00002.safetensors` | new |" in text
    assert TOKEN not in text and TOKEN not in outputs.read_text()
    assert os.environ.get("GITHUB_ACTIONS") != "true"

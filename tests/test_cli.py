from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from r1release.cli import main


def invoke(args, cwd=None):
    old = os.getcwd()
    if cwd:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(main, args)
    finally:
        os.chdir(old)


def test_json_report_schema(checkpoint):
    path = checkpoint("qwen2.5-base-after-chatml-sft")
    result = invoke(["check", "--format", "json", str(path)])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert set(report) == {
        "schema_version",
        "tool",
        "checkpoint",
        "deep",
        "summary",
        "rules_run",
        "rules_skipped",
        "findings",
        "files",
    }
    assert report["schema_version"] == 1
    assert report["summary"] == {"errors": 4, "warnings": 0, "fixable": 4}
    for finding in report["findings"]:
        assert set(finding) == {
            "rule_id",
            "rule",
            "severity",
            "message",
            "file",
            "hint",
            "fixable",
        }


def test_text_report_grouped_by_severity(checkpoint):
    path = checkpoint()
    (path / "optimizer.pt").write_bytes(b"x" * 2048)
    (path / "pytorch_model.bin").write_bytes(b"x")
    result = invoke(["check", str(path)])
    assert result.exit_code == 1
    out = result.stdout
    assert out.index("errors (1)") < out.index("weights-format") < out.index("warnings (1)")
    assert out.index("warnings (1)") < out.index("leftovers (R501)  optimizer.pt: training state")
    assert "hint: " in out
    assert "\n\n1 error, 1 warning (" in out  # a blank line before the summary, not "\\n"
    assert "\\n" not in out


@pytest.mark.parametrize(("strict", "code"), [(False, 0), (True, 1)])
def test_strict_fails_on_warnings(checkpoint, strict, code):
    path = checkpoint()
    (path / "checkpoint-500").mkdir()
    (path / "checkpoint-500" / "optimizer.pt").write_bytes(b"x")
    args = ["check", str(path)] + (["--strict"] if strict else [])
    result = invoke(args)
    assert result.exit_code == code
    assert "training state checkpoint-500/" in result.stdout


def _release_yaml(tmp_path, models):
    lines = ["version: 1", "models:"]
    for name, path in models.items():
        lines += [f"  - name: {name}", f"    checkpoint: {path}", f"    repo_id: org/{name}"]
        lines += ["    license: mit", "    base_model: org/base", "    dataset_name: org/data"]
    (tmp_path / "release.yaml").write_text("\n".join(lines) + "\n")


def test_model_from_release_yaml(checkpoint, tmp_path):
    good, bad = checkpoint(), checkpoint("qwen2.5-base-after-chatml-sft")
    _release_yaml(tmp_path, {"good": good, "bad": bad})
    assert invoke(["check", "--model", "good"], tmp_path).exit_code == 0
    assert invoke(["check", "-m", "bad"], tmp_path).exit_code == 1
    several = invoke(["check"], tmp_path)
    assert several.exit_code == 2
    assert "several models; pass --model NAME (good, bad)" in several.stderr
    unknown = invoke(["check", "--model", "god"], tmp_path)
    assert unknown.exit_code == 2 and "did you mean 'good'?" in unknown.stderr


def test_single_model_is_the_default(checkpoint, tmp_path):
    _release_yaml(tmp_path, {"only": checkpoint("qwen2.5-base-after-chatml-sft")})
    assert invoke(["check"], tmp_path).exit_code == 1
    fixed = invoke(["fix"], tmp_path)
    assert fixed.exit_code == 0 and "fixed generation_config.json" in fixed.stdout
    assert invoke(["check"], tmp_path).exit_code == 0


def test_missing_model_checkpoint(tmp_path):
    _release_yaml(tmp_path, {"m": tmp_path / "nowhere"})
    result = invoke(["check"], tmp_path)
    assert result.exit_code == 2
    assert "model 'm': checkpoint" in result.stderr and "is not a directory" in result.stderr


def test_no_path_no_config(tmp_path):
    result = invoke(["check"], tmp_path)
    assert result.exit_code == 2 and "pass a checkpoint PATH" in result.stderr


def test_path_and_model_together(checkpoint, tmp_path):
    path = checkpoint()
    _release_yaml(tmp_path, {"m": path})
    result = invoke(["check", str(path), "--model", "m"], tmp_path)
    assert result.exit_code == 2


def test_rules_listing():
    result = invoke(["rules", "--format", "json"])
    rules = json.loads(result.stdout)
    names = [r["name"] for r in rules]
    for name in [
        "eos-alignment",
        "chat-template-stop",
        "pad-not-stop",
        "config-eos-consistency",
        "use-cache",
        "generation-use-cache",
        "weights-format",
        "safetensors-header",
        "shard-index",
        "tokenizer",
        "chat-template",
        "leftovers",
        "paths",
        "finite-weights",
    ]:
        assert name in names
    ids = [r["id"] for r in rules]
    assert len(set(ids)) == len(ids)


def test_every_rule_documents_itself():
    from r1release.rules import RULES

    for rule in RULES:
        assert rule.doc.startswith(rule.name), rule.name
        assert rule.description


def test_deep_scan_line_times_the_scan_not_the_rules(checkpoint, monkeypatch):
    """The throughput line measures reading the files; rules that run afterwards (here one
    that takes 100 s on a fake clock) are not counted."""
    import types

    import r1release.checker
    import r1release.cli._common

    clock = [1000.0]
    monkeypatch.setattr(
        r1release.cli._common, "time", types.SimpleNamespace(perf_counter=lambda: clock[0])
    )
    run_rules = r1release.checker.run_rules

    def slow_rules(*args, **kwargs):
        clock[0] += 100.0
        return run_rules(*args, **kwargs)

    monkeypatch.setattr(r1release.checker, "run_rules", slow_rules)
    path = checkpoint("qwen2.5-base-after-chatml-sft")
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    result = invoke(["check", "--deep", str(path)])
    [line] = [s for s in result.stderr.splitlines() if s.startswith("deep scan: read")]
    assert line.startswith(f"deep scan: read {size / 1e6:.1f} MB in 0.00s"), line

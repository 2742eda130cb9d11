"""The three real models' special-token settings get the verdict their fixture states."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from r1release.checker import check
from r1release.cli import main
from r1release.fixes import apply_fixes, plan_fixes

FAILING = "qwen2.5-base-after-chatml-sft"


def _digests(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


@pytest.mark.parametrize(
    "name", ["qwen2.5-7b-instruct", "qwen2.5-base-after-chatml-sft", "llama-3.1-8b-instruct"]
)
def test_verdict_matches_fixture(name, cases, checkpoint):
    report = check(checkpoint(name))
    expected_pass = cases[name]["verdict"].startswith("passes")
    assert report.failed() is not expected_pass, report.findings
    if expected_pass:
        assert report.findings == ()


def test_failing_case_findings(checkpoint):
    report = check(checkpoint(FAILING))
    rules = {f.rule for f in report.errors}
    assert {"eos-alignment", "chat-template-stop", "use-cache", "config-eos-consistency"} <= rules
    eos = report.by_rule("eos-alignment")[0]
    assert eos.file == "generation_config.json"
    assert "151645" in eos.message and eos.fixable


def test_fix_turns_failing_case_into_passing(checkpoint):
    path = checkpoint(FAILING)
    result = CliRunner().invoke(main, ["fix", str(path)])
    assert result.exit_code == 0, result.output
    config = json.loads((path / "config.json").read_text())
    generation = json.loads((path / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [151645, 151643]
    assert config["eos_token_id"] == [151645, 151643]
    assert config["use_cache"] is True
    assert generation["use_cache"] is True
    # every other key kept, in order
    assert list(generation)[:3] == ["bos_token_id", "eos_token_id", "max_new_tokens"]
    assert generation["max_new_tokens"] == 2048
    assert next(iter(config)) == "architectures"
    after = CliRunner().invoke(main, ["check", str(path)])
    assert after.exit_code == 0, after.output


def test_second_fix_changes_nothing(checkpoint):
    path = checkpoint(FAILING)
    apply_fixes(plan_fixes(path))
    before = _digests(path)
    plan = plan_fixes(path)
    assert plan.empty and plan.remaining == ()
    result = CliRunner().invoke(main, ["fix", str(path)])
    assert result.exit_code == 0
    assert "nothing to fix" in result.output
    assert _digests(path) == before


def test_dry_run_prints_diff_and_writes_nothing(checkpoint):
    path = checkpoint(FAILING)
    before = _digests(path)
    result = CliRunner().invoke(main, ["fix", "--dry-run", str(path)])
    assert result.exit_code == 0, result.output
    assert "--- a/generation_config.json" in result.stdout
    assert '-  "eos_token_id": 151643,' in result.stdout
    assert '+  "use_cache": true' in result.stdout
    assert _digests(path) == before


@pytest.mark.parametrize("name", ["qwen2.5-7b-instruct", "llama-3.1-8b-instruct"])
def test_passing_cases_need_no_fix(name, checkpoint):
    assert plan_fixes(checkpoint(name)).empty


def test_vendored_fixture_matches_shared():
    from factory import SHARED_FIXTURES, VENDORED_FIXTURES

    if not SHARED_FIXTURES.exists():
        pytest.skip("../shared is not beside this checkout")
    assert json.loads(VENDORED_FIXTURES.read_text()) == json.loads(SHARED_FIXTURES.read_text())

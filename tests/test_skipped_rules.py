"""No silent rules: a rule that does not run is reported as skipped, with the reason.

Two kinds: "not asked for" (deep rules without --deep, card rules without the release's
card, opt-in --smoke) and "cannot run here" (a module the rule requires, torch, is not
installed: ``missing_requirement``). Only rules that ran are in ``rules_run``. Torch is
hidden in-process the way an environment without it looks to ``importlib.util.find_spec``:
``sys.modules["torch"] = None``.

Rules set to ``off`` in release.yaml are not listed as skipped: they are not part of the
check at all.
"""

from __future__ import annotations

import json
import sys
import types

import pytest

from r1release import config as config_mod
from r1release.checker import (
    NEEDS_CARD,
    NEEDS_DEEP,
    OPT_IN,
    ActiveRule,
    check,
    resolve_rules,
    run_rules,
    skipped_rules,
)
from r1release.checker import why_not as checker_why_not
from r1release.checkpoint import Checkpoint
from r1release.findings import Report, Severity, SkippedRule
from r1release.rules import REGISTRY
from r1release.rules.base import Need, Problem, Rule, module_available, needs, why_not

QWEN = "qwen2.5-7b-instruct"
NEEDS_TORCH = "needs torch (pip install 'r1release[train]')"
NOT_ADAPTER = "not an adapter (no adapter_config.json)"
DEEP_RULES = sorted(name for name, rule in REGISTRY.items() if rule.deep)
TORCH_RULES = sorted(name for name, rule in REGISTRY.items() if "torch" in rule.requires)


@pytest.fixture
def no_torch(monkeypatch):
    """An interpreter where ``import torch`` fails and find_spec finds nothing."""
    monkeypatch.setitem(sys.modules, "torch", None)
    assert not module_available("torch")


def settings_from(tmp_path, path, checks: str):
    text = (
        f"version: 1\nmodels:\n  - name: m\n    checkpoint: {path}\n    repo_id: org/m\n"
        f"checks:\n{checks}"
    )
    return config_mod.loads(text, tmp_path / "release.yaml").checks


def assert_partition(report: Report, settings=None) -> None:
    """Every enabled rule either ran or is skipped, once, in registry order."""
    enabled = [a.rule.name for a in resolve_rules(settings)]
    skipped = [s.rule for s in report.rules_skipped]
    assert not set(report.rules_run) & set(skipped)
    assert sorted([*report.rules_run, *skipped]) == sorted(enabled)
    assert list(report.rules_run) == [n for n in enabled if n in report.rules_run]
    assert skipped == [n for n in enabled if n in skipped]


# ------------------------------------------------------------------ the rules' declarations


def test_torch_rules_declare_it():
    assert TORCH_RULES == ["expected-tensors", "smoke-generate"]
    assert REGISTRY["expected-tensors"].deep and REGISTRY["smoke-generate"].opt_in
    assert REGISTRY["card-metadata"].needs_card


# ------------------------------------------------------------------ cannot run here


def test_without_torch_a_deep_check_skips_expected_tensors(checkpoint, no_torch):
    path = checkpoint(QWEN)
    report = check(path, deep=True)
    assert "expected-tensors" not in report.rules_run
    assert "finite-weights" in report.rules_run  # the other deep rule needs no torch
    skipped = report.skipped("expected-tensors")
    assert skipped == SkippedRule("R305", "expected-tensors", Severity.ERROR, NEEDS_TORCH, True)
    assert skipped.name == "expected-tensors"
    assert report.skipped_errors() == (skipped,)
    assert report.by_rule("expected-tensors") == ()
    assert not report.failed()  # failing on it is the caller's choice (a release's CI)
    assert_partition(report)


def test_without_torch_the_report_json_says_so(checkpoint, no_torch):
    report = check(checkpoint(QWEN), deep=True)
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["schema_version"] == 1
    assert "expected-tensors" not in doc["rules_run"]
    entry = next(s for s in doc["rules_skipped"] if s["rule"] == "expected-tensors")
    assert entry == {
        "rule": "expected-tensors",
        "rule_id": "R305",
        "severity": "error",
        "reason": NEEDS_TORCH,
        "missing_requirement": True,
    }
    # round trip: the JSON entries are the report's skipped rules
    back = tuple(
        SkippedRule(
            rule_id=s["rule_id"],
            rule=s["rule"],
            severity=Severity(s["severity"]),
            reason=s["reason"],
            missing_requirement=s["missing_requirement"],
        )
        for s in doc["rules_skipped"]
    )
    assert back == report.rules_skipped


def test_without_torch_smoke_is_skipped_not_run(checkpoint, no_torch):
    report = check(checkpoint(QWEN), smoke=True)
    assert "smoke-generate" not in report.rules_run
    assert report.by_rule("smoke-generate") == ()
    skipped = report.skipped("smoke-generate")
    assert (skipped.reason, skipped.missing_requirement) == (NEEDS_TORCH, True)
    assert [s.rule for s in report.skipped_errors()] == ["smoke-generate"]  # no --deep here
    assert report.skipped("expected-tensors").reason == NEEDS_DEEP


def test_with_torch_expected_tensors_runs(checkpoint):
    pytest.importorskip("torch")
    report = check(checkpoint(QWEN), deep=True)
    assert "expected-tensors" in report.rules_run
    assert report.skipped("expected-tensors") is None
    assert report.skipped_errors() == ()
    assert {s.rule: s.reason for s in report.rules_skipped} == {
        "adapter-config": NOT_ADAPTER,
        "adapter-tensors": NOT_ADAPTER,
        "card-metadata": NEEDS_CARD,
        "smoke-generate": OPT_IN,
    }
    assert_partition(report)


# ------------------------------------------------------------------ not asked for


def test_without_deep_the_deep_rules_are_skipped(checkpoint):
    report = check(checkpoint(QWEN))
    for name in DEEP_RULES:
        assert name not in report.rules_run
        skipped = report.skipped(name)
        assert (skipped.reason, skipped.missing_requirement) == (NEEDS_DEEP, False)
    assert report.skipped("card-metadata").reason == "needs the release's model card (pass --model)"
    assert report.skipped("smoke-generate").reason == "opt-in: --smoke"
    assert report.skipped_errors() == ()  # nothing asked for was left out
    assert_partition(report)


def test_not_asked_for_comes_before_a_missing_module(checkpoint, no_torch):
    report = check(checkpoint(QWEN))
    assert report.skipped("expected-tensors").reason == NEEDS_DEEP
    assert report.skipped("smoke-generate").reason == OPT_IN
    assert report.skipped_errors() == ()


def test_a_card_runs_card_metadata(checkpoint):
    card = "---\nlicense: mit\nbase_model: org/base\ndatasets: [d]\ntags: [t]\n---\n# m\n"
    report = check(checkpoint(QWEN), card=card)
    assert "card-metadata" in report.rules_run
    assert report.skipped("card-metadata") is None


# ------------------------------------------------------------------ release.yaml severities


def test_a_warning_rule_that_cannot_run_is_not_a_skipped_error(checkpoint, tmp_path, no_torch):
    path = checkpoint(QWEN)
    settings = settings_from(tmp_path, path, "  expected-tensors: warning\n")
    report = check(path, settings=settings, deep=True)
    skipped = report.skipped("expected-tensors")
    assert skipped.severity is Severity.WARNING and skipped.missing_requirement
    assert report.skipped_errors() == ()
    entry = next(s for s in report.to_dict()["rules_skipped"] if s["rule"] == "expected-tensors")
    assert entry["severity"] == "warning"
    assert_partition(report, settings)


def test_a_rule_turned_off_is_not_listed(checkpoint, tmp_path, no_torch):
    path = checkpoint(QWEN)
    settings = settings_from(tmp_path, path, "  expected-tensors: off\n")
    report = check(path, settings=settings, deep=True)
    assert "expected-tensors" not in report.rules_run
    assert report.skipped("expected-tensors") is None
    assert "expected-tensors" not in [s["rule"] for s in report.to_dict()["rules_skipped"]]
    assert report.skipped_errors() == ()
    assert_partition(report, settings)


def test_an_error_set_in_release_yaml_counts(checkpoint, tmp_path, no_torch):
    """A rule raised from warning to error is a skipped error, as configured."""
    path = checkpoint(QWEN)
    settings = settings_from(tmp_path, path, "  expected-tensors: error\n")
    report = check(path, settings=settings, deep=True)
    assert [s.rule for s in report.skipped_errors()] == ["expected-tensors"]


def test_skipped_errors_logic():
    def skipped(severity: Severity, missing: bool) -> SkippedRule:
        return SkippedRule("R999", f"{severity.value}-{missing}", severity, "why", missing)

    rules = tuple(skipped(s, m) for s in Severity for m in (True, False))
    report = Report("ckpt", (), rules_skipped=rules)
    assert report.skipped_errors() == (skipped(Severity.ERROR, True),)
    assert Report("ckpt", ()).rules_skipped == ()  # the old constructor still works
    assert Report("ckpt", ()).to_dict()["rules_skipped"] == []


# ------------------------------------------------------------------ requirements as data


def _boom(ctx):
    raise AssertionError("a rule whose module is missing must not run")
    yield Problem("unreachable")  # pragma: no cover


NEEDS_MISSING = Rule(
    id="R998",
    name="needs-missing",
    severity=Severity.ERROR,
    description="test rule",
    check=_boom,
    needs=frozenset({Need.TORCH}),
)


def test_run_rules_does_not_run_a_rule_whose_module_is_missing(checkpoint, no_torch):
    active = [ActiveRule(NEEDS_MISSING, Severity.ERROR, {})]
    assert run_rules(Checkpoint(checkpoint(QWEN)), active) == []
    [skipped] = skipped_rules(active, deep=False, card=False, smoke=False)
    assert skipped.reason == NEEDS_TORCH
    assert skipped.missing_requirement


def _needing(*needs: Need) -> Rule:
    return Rule("R997", "needing", Severity.ERROR, "test rule", _boom, needs=frozenset(needs))


@pytest.mark.parametrize(
    ("needs", "deep", "card", "smoke", "expected"),
    [
        ((), False, False, False, None),
        ((Need.DEEP,), False, True, True, (NEEDS_DEEP, False)),
        ((Need.DEEP,), True, False, False, None),
        ((Need.CARD,), True, False, True, (NEEDS_CARD, False)),
        ((Need.OPT_IN,), True, True, False, (OPT_IN, False)),
        ((Need.OPT_IN, Need.TORCH), True, True, True, (NEEDS_TORCH, True)),
        # what the check was not asked for comes first, whatever the set's order
        ((Need.TORCH, Need.OPT_IN, Need.DEEP), False, True, False, (NEEDS_DEEP, False)),
        ((Need.TORCH, Need.OPT_IN), True, True, False, (OPT_IN, False)),
    ],
)
def test_why_not_is_one_answer_from_the_declared_needs(
    needs, deep, card, smoke, expected, no_torch
):
    rule = _needing(*needs)
    assert why_not(rule, deep=deep, card=card, smoke=smoke) == expected
    assert checker_why_not(rule, deep=deep, card=card, smoke=smoke) == expected


def test_needs_are_data():
    assert [n.module for n in Need] == [None, None, None, "torch"]
    assert Need.TORCH.reason == NEEDS_TORCH
    assert (Need.DEEP.reason, Need.CARD.reason, Need.OPT_IN.reason) == (
        "needs --deep",
        "needs the release's model card (pass --model)",
        "opt-in: --smoke",
    )
    rule = REGISTRY["smoke-generate"]  # the old flags stay readable, derived from needs
    assert rule.needs == {Need.OPT_IN, Need.TORCH}
    assert (rule.opt_in, rule.deep, rule.needs_card, rule.requires) == (
        True,
        False,
        False,
        ("torch",),
    )


def test_module_available(monkeypatch):
    assert module_available("json")
    assert not module_available("r1release_no_such_module")
    assert not module_available("r1release_no_such_module.child")  # parent missing
    monkeypatch.setitem(sys.modules, "r1release_hidden", None)
    assert not module_available("r1release_hidden")
    stub = types.ModuleType("r1release_stub")  # imported, no __spec__
    monkeypatch.setitem(sys.modules, "r1release_stub", stub)
    assert module_available("r1release_stub")


def test_needs_text():
    assert needs(["torch"]) == NEEDS_TORCH
    assert needs(["torch", "accelerate"]) == (
        "needs torch, accelerate (pip install 'r1release[train]'; pip install accelerate)"
    )

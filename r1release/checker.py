"""Running rules over a checkpoint: settings from release.yaml, severities, the report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1release.checkpoint import Checkpoint
from r1release.config import RuleSetting, validate_rule_setting
from r1release.errors import FileUnreadable
from r1release.findings import Finding, Report, Severity, SkippedRule, sort_findings
from r1release.rules import REGISTRY, Context, Rule
from r1release.rules.base import Need, not_applicable, why_not


@dataclass(frozen=True)
class ActiveRule:
    rule: Rule
    severity: Severity
    options: Mapping[str, Any]


def resolve_rules(
    settings: Mapping[str, RuleSetting] | None = None,
    config_path: str | Path = "release.yaml",
) -> list[ActiveRule]:
    """The rules that run, with their severity and options. Settings built in code (not
    loaded from release.yaml) are validated here, by the same function the loader uses."""
    settings = settings or {}
    for name, setting in settings.items():  # from release.yaml: checked at load already
        validate_rule_setting(name, setting.options, file=config_path, line=setting.line)
    active = []
    for rule in REGISTRY.values():
        setting = settings.get(rule.name, RuleSetting())
        if setting.severity == "off":
            continue
        severity = Severity(setting.severity) if setting.severity else rule.severity
        options = {o.name: o.default for o in rule.options} | dict(setting.options)
        active.append(ActiveRule(rule, severity, options))
    return active


NEEDS_DEEP = Need.DEEP.reason
NEEDS_CARD = Need.CARD.reason
OPT_IN = Need.OPT_IN.reason


def runs(rule: Rule, *, deep: bool, card: bool, smoke: bool) -> bool:
    """Whether ``rule`` runs in a check with (or without) a deep scan, a card, --smoke."""
    return why_not(rule, deep=deep, card=card, smoke=smoke) is None


def skipped_rules(
    rules: list[ActiveRule], *, deep: bool, card: bool, smoke: bool
) -> tuple[SkippedRule, ...]:
    """The rules of ``rules`` that do not run in such a check, each with its reason."""
    skipped = []
    for active in rules:
        why = why_not(active.rule, deep=deep, card=card, smoke=smoke)
        if why is not None:
            reason, missing = why
            skipped.append(
                SkippedRule(active.rule.id, active.rule.name, active.severity, reason, missing)
            )
    return tuple(skipped)


def inapplicable_rules(rules: list[ActiveRule], checkpoint: Checkpoint) -> tuple[SkippedRule, ...]:
    """The rules of ``rules`` that do not apply to ``checkpoint``, each with its reason: an
    adapter has no full weights to check, and its generation settings may live in the base
    model."""
    found = []
    for active in rules:
        reason = not_applicable(active.rule, checkpoint)
        if reason is not None:
            rule = active.rule
            found.append(SkippedRule(rule.id, rule.name, active.severity, reason, False))
    return tuple(found)


def run_rules(
    checkpoint: Checkpoint,
    rules: list[ActiveRule],
    deep_scan: Any = None,
    card: str | None = None,
    smoke: bool = False,
) -> list[Finding]:
    findings: list[Finding] = []
    for active in rules:
        rule = active.rule
        if not runs(rule, deep=deep_scan is not None, card=card is not None, smoke=smoke):
            continue
        if not_applicable(rule, checkpoint) is not None:
            continue  # nor fixed: an adapter without generation_config.json gets none
        ctx = Context(checkpoint, active.options, deep_scan, card)
        try:
            problems = list(rule.check(ctx))
        except FileUnreadable:
            continue  # json-files / safetensors-header / tokenizer report the broken file
        except Exception as exc:  # a bug in a rule must not hide the other rules' findings
            problems = []
            findings.append(
                Finding(
                    rule.id,
                    rule.name,
                    Severity.ERROR,
                    f"internal error in this rule: {type(exc).__name__}: {exc}",
                    hint="please report this to r1release",
                )
            )
        findings.extend(
            Finding(rule.id, rule.name, active.severity, p.message, p.file, p.hint, rule.fixable)
            for p in problems
        )
    return findings


def check(
    path: str | Path | Checkpoint,
    *,
    settings: Mapping[str, RuleSetting] | None = None,
    config_path: str | Path = "release.yaml",
    deep: bool = False,
    workers: int | None = None,
    progress: Any = None,
    card: str | None = None,
    smoke: bool = False,
    skip: Any = None,
    scan: Any = None,
    cache: bool = True,
) -> Report:
    """Check a checkpoint directory; returns a :class:`Report` (never prints).

    ``path`` may be a :class:`Checkpoint` with in-memory overrides (a staged, fixed copy);
    ``card`` is the rendered model card for the card-metadata rule. Rules that do not run
    (not asked for, or a required module such as torch missing) are in
    ``Report.rules_skipped`` with the reason, never in ``rules_run``. ``cache=False`` makes
    the deep pass read every file, even ones the digest cache knows unchanged.
    """
    rules = resolve_rules(settings, config_path)
    checkpoint = path if isinstance(path, Checkpoint) else Checkpoint(path)
    if deep and scan is None:  # a caller that scanned already (a release) passes its scan
        from r1release.deep import scan_checkpoint

        scan = scan_checkpoint(
            checkpoint, workers=workers, progress=progress, skip=skip, cache=cache
        )
    # decided once, here: the rules that run are exactly the ones the report says ran. What
    # does not apply to this checkpoint comes first: expected-tensors on an adapter says so,
    # not "needs torch", which installing torch would not change.
    skipped = inapplicable_rules(rules, checkpoint)
    applicable = [a for a in rules if a.rule.name not in {s.rule for s in skipped}]
    skipped += skipped_rules(applicable, deep=scan is not None, card=card is not None, smoke=smoke)
    order = {a.rule.name: i for i, a in enumerate(rules)}
    skipped = tuple(sorted(skipped, key=lambda s: order[s.rule]))  # in registry order
    not_run = {s.rule for s in skipped}
    ran = [a for a in rules if a.rule.name not in not_run]
    findings = run_rules(checkpoint, ran, scan, card, smoke)
    digests = scan.digests if scan is not None else ()
    return Report(
        checkpoint=str(checkpoint.root),
        findings=sort_findings(findings),
        rules_run=tuple(a.rule.name for a in ran),
        deep=deep,
        files=tuple(digests),
        rules_skipped=skipped,
    )

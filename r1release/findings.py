"""Findings, severities and the report a check returns."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"

    @property
    def rank(self) -> int:
        return 0 if self is Severity.ERROR else 1


@dataclass(frozen=True)
class Finding:
    """One problem found by one rule."""

    rule_id: str
    rule: str
    severity: Severity
    message: str
    file: str | None = None
    hint: str | None = None
    fixable: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "rule_id": self.rule_id,
            "rule": self.rule,
            "severity": self.severity.value,
            "message": self.message,
            "file": self.file,
            "hint": self.hint,
            "fixable": self.fixable,
        }


@dataclass(frozen=True)
class SkippedRule:
    """A rule that did not run in a check, and why.

    ``missing_requirement`` tells "cannot run here" (a module it requires, such as torch,
    is not installed: the check is incomplete) from "not asked for" (a deep rule without
    ``--deep``, a card rule without the release's card, opt-in ``--smoke``). ``severity``
    is the rule's as configured in release.yaml. Rules set to ``off`` in release.yaml are
    not listed: they are not skipped, they are not part of the check.
    """

    rule_id: str
    rule: str
    severity: Severity
    reason: str
    missing_requirement: bool = False

    @property
    def name(self) -> str:
        return self.rule

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "rule_id": self.rule_id,
            "severity": self.severity.value,
            "reason": self.reason,
            "missing_requirement": self.missing_requirement,
        }


@dataclass(frozen=True)
class FileDigest:
    path: str
    size: int
    sha256: str | None = None


@dataclass(frozen=True)
class Report:
    """The result of checking one checkpoint.

    ``rules_run`` names exactly the rules that ran; ``rules_skipped`` the others that are
    enabled in release.yaml, each with the reason it did not run.
    """

    checkpoint: str
    findings: tuple[Finding, ...]
    rules_run: tuple[str, ...] = ()
    deep: bool = False
    files: tuple[FileDigest, ...] = field(default=())
    rules_skipped: tuple[SkippedRule, ...] = ()

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def fixable(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.fixable)

    def failed(self, strict: bool = False) -> bool:
        return bool(self.errors or (strict and self.warnings))

    def by_rule(self, name: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.rule == name)

    def skipped(self, name: str) -> SkippedRule | None:
        """Why rule ``name`` did not run, or None (it ran, or it is off)."""
        return next((s for s in self.rules_skipped if s.rule == name), None)

    def skipped_errors(self) -> tuple[SkippedRule, ...]:
        """Error rules that could not run here for a missing requirement (torch): what a
        release must fail on, since the check it would have made was not made."""
        return tuple(
            s for s in self.rules_skipped if s.missing_requirement and s.severity is Severity.ERROR
        )

    def to_dict(self) -> dict[str, object]:
        from r1release import __version__

        return {
            "schema_version": 1,
            "tool": {"name": "r1release", "version": __version__},
            "checkpoint": self.checkpoint,
            "deep": self.deep,
            "summary": {
                "errors": len(self.errors),
                "warnings": len(self.warnings),
                "fixable": len(self.fixable),
            },
            "rules_run": list(self.rules_run),
            "rules_skipped": [s.to_dict() for s in self.rules_skipped],
            "findings": [f.to_dict() for f in self.findings],
            "files": [{"path": d.path, "size": d.size, "sha256": d.sha256} for d in self.files],
        }


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: (f.severity.rank, f.rule_id, f.file or "")))

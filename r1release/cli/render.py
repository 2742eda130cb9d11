"""Output formats: how the result of ``check``, ``fix``, ``push`` and ``release`` is shown.

One registry, :data:`FORMATS`, maps a ``--format`` name to a :class:`Format`; the commands
look theirs up with :func:`get_format` and hand it their result. Adding a format is one
class and one entry. Whatever the format:

- in ``json``, stdout carries one JSON document and nothing else; human lines go to stderr;
- workflow commands (``::error``, ``::warning``) go to stderr only, built by ``ci``, whose
  escaping every untrusted piece of text passes;
- a human line holding untrusted text passes ``_h`` (one line, never a workflow command).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import click

from r1release.cli._common import _append_summary, _h, _stdout_to_stderr
from r1release.cli._conventions import QUIET, VERBOSE, verbosity

if TYPE_CHECKING:
    from r1release.findings import Finding, Report
    from r1release.fixes import FixPlan


@dataclass(frozen=True)
class FixOutcome:
    """What ``fix`` did: its plan, and whether the plan was written (not with --dry-run)."""

    plan: FixPlan
    dry_run: bool

    @property
    def written(self) -> bool:
        return not self.dry_run and not self.plan.empty


@dataclass(frozen=True)
class ReleaseOutcome:
    """What ``push`` or ``release`` did: the stage, the publish result and its manifest."""

    stage: Any
    result: Any
    manifest: dict[str, Any]
    release_info: Any = None


class Format:
    """One output format. ``in_actions``: the command runs in GitHub Actions, where a release
    annotates its findings and fills the step summary whatever the format (a check does so
    only with ``--format github``)."""

    name: ClassVar[str]
    annotates: ClassVar[bool] = False  # workflow commands and the step summary

    def __init__(self, in_actions: bool = False) -> None:
        self.in_actions = in_actions

    # check ---------------------------------------------------------------------------
    def check(self, report: Report) -> None:
        print_report(report)
        if self.annotates:
            _annotate(report.findings, report.checkpoint)
            from r1release import ci

            _append_summary(ci.report_summary(report))

    # fix -----------------------------------------------------------------------------
    def fix(self, outcome: FixOutcome) -> None:
        print_fix(outcome)
        if self.annotates:
            _annotate(fix_findings(outcome), outcome.plan.checkpoint)
            from r1release import ci
            from r1release.findings import Report

            report = Report(outcome.plan.checkpoint, fix_findings(outcome))
            _append_summary(ci.report_summary(report, "r1release fix"))

    # push, release -------------------------------------------------------------------
    def release(self, outcome: ReleaseOutcome) -> None:
        print_plan(outcome.stage, outcome.result)
        self.release_annotations(outcome)

    def release_annotations(self, outcome: ReleaseOutcome) -> None:
        if self.annotates or self.in_actions:
            from r1release import ci

            _annotate(outcome.stage.report.findings, outcome.stage.report.checkpoint)
            _append_summary(ci.release_summary(outcome.stage, outcome.result, outcome.release_info))

    def blocked(self, report: Report) -> None:
        """A release stopped by findings (before anything was sent)."""
        if self.annotates or self.in_actions:
            from r1release import ci

            _annotate(report.findings, report.checkpoint)
            _append_summary(ci.report_summary(report, "release stopped by findings"))


class Text(Format):
    """Human-readable lines (the default outside GitHub Actions)."""

    name = "text"


class Json(Format):
    """One JSON document on stdout; the human lines on stderr."""

    name = "json"

    def check(self, report: Report) -> None:
        click.echo(json.dumps(report.to_dict(), indent=2))

    def fix(self, outcome: FixOutcome) -> None:
        click.echo(json.dumps(fix_dict(outcome), indent=2))
        if verbosity() == QUIET:  # the diff is in the document; stderr: the errors only
            print_unfixable(outcome.plan)
            return
        with _stdout_to_stderr():
            print_fix(outcome)

    def release(self, outcome: ReleaseOutcome) -> None:
        doc = {
            "schema_version": 1,
            "release": plan_dict(outcome.stage, outcome.result),
            "report": outcome.stage.report.to_dict(),
            "manifest": outcome.manifest,
        }
        click.echo(json.dumps(doc, indent=2))
        if verbosity() > QUIET:  # -q: the outcome is in the document
            with _stdout_to_stderr():
                print_plan(outcome.stage, outcome.result)
        self.release_annotations(outcome)


class GitHub(Format):
    """Text, plus ``::error``/``::warning`` annotations on stderr and the step summary
    (the default in GitHub Actions)."""

    name = "github"
    annotates = True


FORMATS: dict[str, type[Format]] = {"text": Text, "json": Json, "github": GitHub}


def get_format(name: str | None) -> Format:
    """The format ``name`` (None: github in GitHub Actions, else text); an unknown name is a
    usage error (exit 2)."""
    from r1release import ci

    in_actions = ci.in_github_actions()
    name = name or ("github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text")
    try:
        return FORMATS[name](in_actions)
    except KeyError:
        raise click.UsageError(
            f"unknown output format {name!r}; choose from {', '.join(FORMATS)}"
        ) from None


def format_option(help: str) -> Callable[[Any], Any]:
    """``--format``, its choices read from the registry."""
    return click.option(
        "--format", "fmt", type=click.Choice(list(FORMATS)), default=None, help=help
    )


def _annotate(findings: tuple[Finding, ...], checkpoint: str) -> None:
    from r1release import ci

    for finding in findings:
        click.echo(ci.annotation(finding, checkpoint), err=True)


# ------------------------------------------------------------------------------- check


def print_report(report: Report) -> None:
    """The report; with -q only the error findings, one line each; with -v also every rule
    skipped and why (off in release.yaml, deep only, opt-in)."""
    from r1release.findings import Severity

    if verbosity() == QUIET:
        for f in report.errors:
            click.echo(_h(f"{f.rule} ({f.rule_id}): {f.file + ': ' if f.file else ''}{f.message}"))
        return
    click.echo(_h(f"checkpoint: {report.checkpoint}"))
    for severity in (Severity.ERROR, Severity.WARNING):
        group = [f for f in report.findings if f.severity is severity]
        if not group:
            continue
        color = "red" if severity is Severity.ERROR else "yellow"
        click.secho(f"\n{severity.value}s ({len(group)})", fg=color, bold=True)
        for f in group:
            where = f"{f.file}: " if f.file else ""
            fixable = " [fixable]" if f.fixable else ""
            click.echo(
                f"  {click.style(f.rule, fg=color)} ({f.rule_id}){fixable}  "
                + _h(f"{where}{f.message}")
            )
            if f.hint:
                click.echo(_h(f"      hint: {f.hint}"))
    cannot = [s for s in report.rules_skipped if s.missing_requirement]
    if verbosity() == VERBOSE:
        _print_skipped(report)
    if cannot:
        click.secho(f"\nskipped: cannot run here ({len(cannot)})", fg="yellow", bold=True)
        for s in cannot:
            click.echo(_h(f"  {s.rule} ({s.rule_id}, {s.severity.value})  {s.reason}"))
    errors, warnings = len(report.errors), len(report.warnings)
    summary = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    fixable = len(report.fixable)
    if fixable:
        summary += f"; {fixable} fixable with `r1release fix {report.checkpoint}`"
    ran = f"{len(report.rules_run)} rules{', deep' if report.deep else ''}"
    if cannot:
        ran += f"; {len(cannot)} skipped: {', '.join(s.rule for s in cannot)}"
    click.echo()
    click.echo(_h(f"{summary} ({ran})"))


def _print_skipped(report: Report) -> None:
    """-v: every rule that did not run, and why."""
    skipped = [s for s in report.rules_skipped if not s.missing_requirement]
    if skipped:
        click.secho(f"\nskipped ({len(skipped)})", bold=True)
        for s in skipped:
            click.echo(_h(f"  {s.rule} ({s.rule_id}, {s.severity.value})  {s.reason}"))


# ------------------------------------------------------------------------------- fix


def print_fix(outcome: FixOutcome) -> None:
    """The files fixed (with --dry-run: the diff, on stdout: data) and what cannot be fixed;
    with -q only the diff and the errors; with -v also each finding fixed."""
    plan = outcome.plan
    if verbosity() == QUIET:
        if outcome.dry_run and not plan.empty:
            click.echo(plan.diff(), nl=False)
    elif plan.empty:
        click.echo("nothing to fix")
    elif outcome.dry_run:
        click.echo(plan.diff(), nl=False)
        click.echo(
            f"would change {len(plan.changes)} file(s); nothing written (--dry-run)", err=True
        )
    else:
        for change in plan.changes:
            verb = "created" if change.old_text is None else "fixed"
            click.echo(_h(f"{verb} {change.path} ({', '.join(change.rules)})"))
    if verbosity() == VERBOSE:
        done = "would fix" if outcome.dry_run else "fixed"
        for f in plan.fixed:
            click.echo(_h(f"  {done}: {f.rule}: {f.file or ''}: {f.message}"), err=True)
    print_unfixable(plan)


def print_unfixable(plan: FixPlan) -> None:
    """The fixable findings the fixes could not remove: errors, shown at every verbosity."""
    for finding in plan.remaining:
        click.echo(
            _h(f"cannot fix: {finding.rule}: {finding.file or ''}: {finding.message}"), err=True
        )


def fix_dict(outcome: FixOutcome) -> dict[str, Any]:
    """``fix --format json``: what the fixes change (or, with --dry-run, would change)."""
    plan = outcome.plan
    return {
        "schema_version": 1,
        "checkpoint": plan.checkpoint,
        "dry_run": outcome.dry_run,
        "written": outcome.written,
        "changes": [
            {
                "path": c.path,
                "action": "create" if c.old_text is None else "modify",
                "rules": list(c.rules),
                "diff": c.diff(),
            }
            for c in plan.changes
        ],
        "fixed": [f.to_dict() for f in plan.fixed],
        "remaining": [f.to_dict() for f in plan.remaining],
    }


def fix_findings(outcome: FixOutcome) -> tuple[Finding, ...]:
    """The findings a fix annotates: each one fixed (a warning: the files changed), then each
    one it could not fix, at its own severity."""
    from r1release.findings import Severity

    done = "would fix (--dry-run)" if outcome.dry_run else "fixed"
    fixed = tuple(
        dataclasses.replace(f, severity=Severity.WARNING, message=f"{done}: {f.message}")
        for f in outcome.plan.fixed
    )
    cannot = tuple(
        dataclasses.replace(f, message=f"cannot fix: {f.message}") for f in outcome.plan.remaining
    )
    return fixed + cannot


# ------------------------------------------------------------------------------- push, release


def plan_dict(stage: Any, result: Any) -> dict[str, Any]:
    plan = result.plan
    return {
        "repo_id": plan.repo_id,
        "version": plan.version,
        "revision": plan.revision,
        "private": plan.private,
        "repo_exists": plan.repo_exists,
        "anonymous": plan.anonymous,
        "offline": plan.offline,
        "dry_run": result.dry_run,
        "already_released": plan.noop,
        "commit": result.commit,
        "commit_url": result.commit_url,
        "commit_message": plan.commit_message,
        "needs_commit": plan.needs_commit,
        "tag_target": plan.tag_target,
        "files": [
            {"path": a.path, "state": a.state, "size": a.size, "origin": a.origin}
            for a in plan.actions
        ],
        "excluded": list(stage.excluded),
    }


def print_plan(stage: Any, result: Any) -> None:
    """The plan: the repository, each file, the tag, the commit, then the outcome; with -q only
    the outcome line; with -v also each staged file's sha256 (the manifest)."""
    plan = result.plan
    if verbosity() == QUIET:
        _print_outcome(plan, result)
        return
    repo = "new repository" if not plan.repo_exists else f"revision {plan.revision}"
    if plan.anonymous and not plan.repo_exists:
        repo = "not found without a token: a private repository is invisible, it may exist"
    if plan.offline:
        repo = "Hub not contacted: HF_HUB_OFFLINE is set, every file is shown as new"
    click.echo(_h(f"{plan.repo_id} ({'private' if plan.private else 'public'}, {repo})"))
    width = max((len(a.path) for a in plan.actions), default=0)
    for action in plan.actions:
        origin = f"  ({action.origin})" if action.origin not in ("checkpoint", "hub") else ""
        click.echo(
            _h(f"  {action.state:<10} {action.path:<{width}}  {_size(action.size):>10}{origin}")
        )
    for path in stage.excluded:
        click.echo(_h(f"  {'excluded':<10} {path}  (training state)"))
    if plan.offline:
        tag_state = "not checked: offline"
    elif plan.tag_matches:
        tag_state = f"exists on {plan.tag_target[:12]} with this content"
    elif plan.tag_target:
        tag_state = f"exists on {plan.tag_target[:12]}, will be moved (--force)"
    else:
        tag_state = "new"
    click.echo(_h(f"tag: {plan.version} ({tag_state})"))
    click.echo(
        _h(f"commit: {plan.commit_message}")
        if plan.needs_commit
        else "commit: none needed (the Hub already holds these files)"
    )
    if verbosity() == VERBOSE:
        for entry in stage.manifest()["files"]:
            click.echo(_h(f"  sha256 {entry['sha256']}  {entry['path']}"))
    if result.dry_run:
        click.echo("\n--- README.md (model card) ---")
        for line in stage.card.splitlines():  # shown in the log: no line may act as a command
            click.echo(_h(line))
        click.echo("---")
    _print_outcome(plan, result)


def _print_outcome(plan: Any, result: Any) -> None:
    if result.dry_run:
        click.echo("dry run: nothing was sent (use --publish, or run in CI, to release)")
    elif plan.noop:
        click.echo(_h(f"already released: {result.commit_url}"))
    else:
        click.echo(_h(f"released {plan.repo_id} {plan.version}: {result.commit_url}"))


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)

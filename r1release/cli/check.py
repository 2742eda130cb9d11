"""``r1release check``: run the rules over a checkpoint and report."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from r1release.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    _append_summary,
    _deep_progress,
    _h,
    _model_opt,
    _no_cache_opt,
    _path_arg,
    _target,
    _template_name,
)

if TYPE_CHECKING:
    from r1release.findings import Report


@click.command()
@_path_arg
@_model_opt
@click.option("--deep", is_flag=True, help="Read every byte: sha256 of each file, NaN/Inf scan.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default=None,
    help="Output format (default: github in GitHub Actions, else text).",
)
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option(
    "--smoke",
    is_flag=True,
    help="Also load the model and generate from the smoke prompts (needs torch).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Files hashed in parallel with --deep (default: CPU count).",
)
@_no_cache_opt
@click.pass_context
def check(
    ctx: click.Context,
    path: Path | None,
    model: str | None,
    deep: bool,
    fmt: str,
    strict: bool,
    workers: int | None,
    smoke: bool,
    no_cache: bool,
) -> None:
    """Check a checkpoint directory (PATH, or a model of release.yaml).

    Exit status: 0 clean, 1 error findings (with --strict: warnings too), 2 usage or
    configuration error.
    """
    from r1release.checker import check as run_check
    from r1release.checkpoint import Checkpoint

    target = _target(ctx, path, model)
    view = Checkpoint(target.checkpoint)  # the command's one view, passed down
    card = None
    if target.model is not None and target.config is not None:
        from r1release.card import ReleaseInfo, render_card

        template = target.config.card_template()
        card = render_card(
            view,
            target.model,
            ReleaseInfo(),
            template,
            template_name=_template_name(target.config),
        )
    with _deep_progress(view, enabled=deep) as progress:
        report = run_check(
            view,
            settings=target.settings,
            config_path=target.config_path,
            deep=deep,
            workers=workers,
            progress=progress,
            smoke=smoke,
            card=card,
            cache=not no_cache,
        )
    fmt = fmt or ("github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text")
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report)
    if fmt == "github":
        from r1release import ci

        for line in ci.annotations(report):
            click.echo(line, err=True)
        _append_summary(ci.report_summary(report))
    asked = [s for s in report.skipped_errors() if smoke and s.rule == "smoke-generate"]
    for s in asked:
        click.echo(_h(f"error: {s.rule}: asked for with --smoke, but it {s.reason}"), err=True)
    sys.exit(EXIT_FINDINGS if report.failed(strict) or asked else EXIT_OK)


def _print_report(report: Report) -> None:
    from r1release.findings import Severity

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

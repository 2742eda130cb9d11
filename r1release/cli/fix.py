"""``r1release fix``: apply what the fixable rules can fix, atomically."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from r1release.cli._common import EXIT_FINDINGS, EXIT_OK, _model_opt, _path_arg, _target
from r1release.cli.render import FixOutcome, format_option, get_format


@click.command()
@_path_arg
@_model_opt
@click.option("--dry-run", is_flag=True, help="Print the diff; write nothing.")
@format_option(
    "text (default), json (one document on stdout: every change, with its diff, and the "
    "findings fixed and left), or github (default in GitHub Actions: text plus annotations "
    "and the step summary)."
)
@click.pass_context
def fix(
    ctx: click.Context, path: Path | None, model: str | None, dry_run: bool, fmt: str | None
) -> None:
    """Fix what can be fixed: EOS/stop tokens and use_cache, atomically.

    Every other key and the key order are kept. Exit status: 0 when nothing fixable is
    left, 1 when a fixable finding could not be fixed. -q prints only the diff (with
    --dry-run) and what cannot be fixed; -v also each finding fixed.
    """
    from r1release.checkpoint import Checkpoint
    from r1release.fixes import apply_fixes, plan_fixes

    output = get_format(fmt)
    target = _target(ctx, path, model)
    view = Checkpoint(target.checkpoint)
    plan = plan_fixes(view, settings=target.settings, config_path=target.config_path)
    if not plan.empty and not dry_run:
        apply_fixes(plan)
    output.fix(FixOutcome(plan, dry_run))
    sys.exit(EXIT_FINDINGS if plan.remaining else EXIT_OK)

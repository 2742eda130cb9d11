"""``r1release fix``: apply what the fixable rules can fix, atomically."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from r1release.cli._common import EXIT_FINDINGS, EXIT_OK, _h, _model_opt, _path_arg, _target


@click.command()
@_path_arg
@_model_opt
@click.option("--dry-run", is_flag=True, help="Print the diff; write nothing.")
@click.pass_context
def fix(ctx: click.Context, path: Path | None, model: str | None, dry_run: bool) -> None:
    """Fix what can be fixed: EOS/stop tokens and use_cache, atomically.

    Every other key and the key order are kept. Exit status: 0 when nothing fixable is
    left, 1 when a fixable finding could not be fixed.
    """
    from r1release.checkpoint import Checkpoint
    from r1release.fixes import apply_fixes, plan_fixes

    target = _target(ctx, path, model)
    view = Checkpoint(target.checkpoint)
    plan = plan_fixes(view, settings=target.settings, config_path=target.config_path)
    if plan.empty:
        click.echo("nothing to fix")
    elif dry_run:
        click.echo(plan.diff(), nl=False)
        click.echo(
            f"would change {len(plan.changes)} file(s); nothing written (--dry-run)", err=True
        )
    else:
        apply_fixes(plan)
        for change in plan.changes:
            verb = "created" if change.old_text is None else "fixed"
            click.echo(_h(f"{verb} {change.path} ({', '.join(change.rules)})"))
    for finding in plan.remaining:
        click.echo(
            _h(f"cannot fix: {finding.rule}: {finding.file or ''}: {finding.message}"), err=True
        )
    sys.exit(EXIT_FINDINGS if plan.remaining else EXIT_OK)

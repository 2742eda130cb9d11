"""``r1release check``: run the rules over a checkpoint and report."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from r1release.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    _deep_progress,
    _h,
    _model_opt,
    _no_cache_opt,
    _path_arg,
    _target,
    _template_name,
)
from r1release.cli._conventions import QUIET, verbosity
from r1release.cli.render import format_option, get_format


@click.command()
@_path_arg
@_model_opt
@click.option("--deep", is_flag=True, help="Read every byte: sha256 of each file, NaN/Inf scan.")
@format_option("Output format (default: github in GitHub Actions, else text).")
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
    fmt: str | None,
    strict: bool,
    workers: int | None,
    smoke: bool,
    no_cache: bool,
) -> None:
    """Check a checkpoint directory (PATH, or a model of release.yaml).

    Exit status: 0 clean, 1 error findings (with --strict: warnings too), 2 usage or
    configuration error. -q prints only the error findings (and no deep-scan progress); -v
    also lists every rule skipped and why.
    """
    from r1release.checker import check as run_check
    from r1release.checkpoint import Checkpoint

    output = get_format(fmt)
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
    with _deep_progress(view, enabled=deep and verbosity() > QUIET) as progress:
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
    output.check(report)
    asked = [s for s in report.skipped_errors() if smoke and s.rule == "smoke-generate"]
    for s in asked:
        click.echo(_h(f"error: {s.rule}: asked for with --smoke, but it {s.reason}"), err=True)
    sys.exit(EXIT_FINDINGS if report.failed(strict) or asked else EXIT_OK)

"""``r1release card``: render the model card of a model of release.yaml."""

from __future__ import annotations

from pathlib import Path

import click

from r1release.cli._common import _h, _model_opt, _path_arg, _target, _template_name, _write_file
from r1release.cli._conventions import QUIET, verbosity


@click.command()
@_path_arg
@_model_opt
@click.option("--version", "version", help="Release version shown in the card (e.g. v1.2.0).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the card to FILE instead of stdout.",
)
@click.pass_context
def card(
    ctx: click.Context,
    path: Path | None,
    model: str | None,
    version: str | None,
    output: Path | None,
) -> None:
    """Render the model card (README.md) for a model of release.yaml.

    The card goes to stdout, or with -o to FILE (and "wrote FILE" to stderr, not with -q).
    """
    from r1release.card import ReleaseInfo, render_card, smoke_prompt
    from r1release.checkpoint import Checkpoint
    from r1release.errors import UsageError
    from r1release.evals import load_evals

    target = _target(ctx, path, model)
    if target.model is None:
        raise UsageError(
            f"{target.checkpoint}: no model of {target.config_path} has this checkpoint; "
            "the card needs its repo_id, base_model and dataset_name",
            hint="add the model to release.yaml and pass --model NAME",
        )
    template = target.config.card_template() if target.config else None
    evals = load_evals(target.model.evals, target.config_path.parent, target.checkpoint)
    text = render_card(
        Checkpoint(target.checkpoint),
        target.model,
        ReleaseInfo.from_environment(version),
        template,
        template_name=_template_name(target.config),
        evals=evals,
        prompt=smoke_prompt(target.config.rule_settings() if target.config else None),
    )
    if output is None:
        click.echo(text, nl=False)
    else:
        _write_file(output, text)
        if verbosity() > QUIET:
            click.echo(_h(f"wrote {output}"), err=True)

"""``r1release push``: check, stage and push a model of release.yaml as one tagged commit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from r1release.cli._common import _model_opt, _path_arg, _target
from r1release.cli._publish import (
    _dry_run,
    _dry_run_opt,
    _force_opt,
    _release,
    _release_options,
    _ReleaseOptions,
)

if TYPE_CHECKING:
    from r1release.config import Config


@click.command()
@_path_arg
@_model_opt
@click.option("--version", "version", required=True, help="Release version, e.g. v1.2.0.")
@click.option(
    "--revision",
    "revision",
    metavar="BRANCH",
    help="Hub branch to commit to (created from main when missing); overrides push.revision.",
)
@_dry_run_opt
@_force_opt
@_release_options
@click.pass_context
def push(
    ctx: click.Context,
    path: Path | None,
    model: str | None,
    version: str,
    revision: str | None,
    dry_run: bool | None,
    force: bool,
    options: _ReleaseOptions,
) -> None:
    """Check, stage and push a model of release.yaml as one commit tagged VERSION.

    VERSION starts with v (v1.2.0), as release --tag takes it. Publishes in CI (unless a
    workflow_dispatch asked for a dry run), a dry run elsewhere: pass --publish or
    --dry-run to choose. -q prints only errors and the outcome line; -v also each staged
    file's sha256. --revision BRANCH releases to that branch instead (a checkpoint of a
    training run, say), tagged VERSION as on main.
    """
    from r1release.errors import UsageError
    from r1release.events import check_version

    target = _target(ctx, path, model)
    if target.model is None or target.config is None:
        raise UsageError(
            f"{target.checkpoint}: no model of {target.config_path} has this checkpoint",
            hint="add it to release.yaml (repo_id, base_model, ...) and pass --model NAME",
        )
    _release(
        _on_branch(target.config, revision),
        target.model,
        check_version(version),
        dry_run=_dry_run(dry_run),
        force=force,
        options=options,
    )


def _on_branch(config: Config, revision: str | None) -> Config:
    """``config`` with push.revision set to ``--revision`` (checked as release.yaml checks it)."""
    if revision is None:
        return config
    from dataclasses import replace

    from r1release.config import BRANCH
    from r1release.errors import UsageError

    why = BRANCH.why_invalid(revision)
    if why:
        raise UsageError(f"--revision {revision!r}: {why}", hint=f"pass {BRANCH.hint}")
    return replace(config, push=replace(config.push, revision=revision))

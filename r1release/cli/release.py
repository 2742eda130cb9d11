"""``r1release release``: release what a git tag, a workflow_dispatch event or flags name."""

from __future__ import annotations

from pathlib import Path

import click

from r1release.cli._common import _load_config, _model_opt
from r1release.cli._publish import (
    _dry_run,
    _dry_run_opt,
    _force_opt,
    _release,
    _release_options,
    _ReleaseOptions,
    _version_opt,
)


@click.command()
@click.option("--tag", help="Git tag to release (v1.2.0, or NAME@v1.2.0).")
@_model_opt
@_version_opt
@_dry_run_opt
@_force_opt
@_release_options
@click.pass_context
def release(
    ctx: click.Context,
    tag: str | None,
    model: str | None,
    version: str | None,
    dry_run: bool | None,
    force: bool,
    options: _ReleaseOptions,
) -> None:
    """Release what a git tag, a workflow_dispatch event or --model/--version names.

    In GitHub Actions the event decides (a pushed tag, or workflow_dispatch inputs model,
    version and dry_run). A workflow_dispatch `dry_run: true` is honoured even when --model
    or --version are given; only --publish overrides it. Outside CI, release is a dry run
    unless --publish is given (push follows the same rule). -q prints only errors and the
    outcome line; -v also each staged file's sha256.
    """
    from r1release import config as config_mod
    from r1release import events

    config = _load_config(ctx.obj["config_path"] or Path(config_mod.DEFAULT_CONFIG))
    if tag:
        resolved = events.from_tag(config, tag)
    elif version or model:
        resolved = events.from_flags(config, model, version)
    else:
        found = events.from_github(config)
        if found is None:
            from r1release.errors import UsageError

            raise UsageError("nothing to release: pass --tag TAG, or --model NAME --version V")
        resolved = found
    _release(
        config,
        resolved.model,
        resolved.version,
        dry_run=_dry_run(dry_run),
        force=force,
        options=options,
    )

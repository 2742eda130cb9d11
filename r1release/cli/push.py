"""``r1release push``: check, stage and push a model of release.yaml as one tagged commit."""

from __future__ import annotations

from pathlib import Path

import click

from r1release.cli._common import _model_opt, _no_cache_opt, _path_arg, _target
from r1release.cli._publish import (
    _allow_public_opt,
    _deadline_opt,
    _dry_run_opt,
    _expect_opt,
    _force_opt,
    _format_opt,
    _manifest_opt,
    _release,
    _ReleaseOptions,
)


@click.command()
@_path_arg
@_model_opt
@click.option("--version", "version", required=True, help="Release version, e.g. v1.2.0.")
@_dry_run_opt
@_force_opt
@_format_opt
@_manifest_opt
@_expect_opt
@_allow_public_opt
@_deadline_opt
@_no_cache_opt
@click.pass_context
def push(
    ctx: click.Context,
    path: Path | None,
    model: str | None,
    version: str,
    dry_run: bool,
    force: bool,
    fmt: str | None,
    manifest_out: Path | None,
    expect_manifest: Path | None,
    allow_public: bool,
    deadline: float | None,
    no_cache: bool,
) -> None:
    """Check, stage and push a model of release.yaml as one commit tagged VERSION."""
    from r1release.errors import UsageError
    from r1release.events import check_version

    target = _target(ctx, path, model)
    if target.model is None or target.config is None:
        raise UsageError(
            f"{target.checkpoint}: no model of {target.config_path} has this checkpoint",
            hint="add it to release.yaml (repo_id, base_model, ...) and pass --model NAME",
        )
    _release(
        target.config,
        target.model,
        check_version(version),
        dry_run=dry_run,
        force=force,
        options=_ReleaseOptions(
            fmt, manifest_out, expect_manifest, allow_public, deadline, no_cache
        ),
    )

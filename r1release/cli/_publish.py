"""The publishing flow that ``push`` and ``release`` share: their options, the checks
before any write, staging, the manifest, publishing and the plan they print."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from r1release.cli._common import (
    _deep_progress,
    _h,
    _no_cache_opt,
    _one_line,
    _template_name,
    _write_file,
)
from r1release.cli._conventions import QUIET, verbosity
from r1release.cli.render import Format, ReleaseOutcome, format_option, get_format

if TYPE_CHECKING:
    from r1release.checkpoint import Checkpoint
    from r1release.config import Config, ModelConfig

_version_opt = click.option("--version", "version", help="Release version, e.g. v1.2.0.")
_dry_run_opt = click.option(
    "--dry-run/--publish",
    "dry_run",
    default=None,
    help="Print the plan only / publish. Default: a workflow_dispatch's dry_run input, else "
    "publish in CI (CI or GITHUB_ACTIONS is true) and a dry run elsewhere.",
)
_force_opt = click.option(
    "--force", is_flag=True, help="Move the version's tag when it points at different content."
)


_format_opt = format_option(
    "text (default), json (one document on stdout: plan, report, manifest), or github "
    "(default in GitHub Actions: text plus annotations and the step summary)."
)
_manifest_opt = click.option(
    "--manifest",
    "manifest_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the release manifest (every staged file's size and sha256) to FILE.",
)
_expect_opt = click.option(
    "--expect-manifest",
    "expect_manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Refuse, before any write, when the staged files differ from this approved manifest.",
)
_deadline_opt = click.option(
    "--deadline",
    type=click.FloatRange(min=1),
    default=None,
    envvar="R1RELEASE_DEADLINE",
    help="Stop (exit 1, no tag) when the release has run this many seconds (for CI); each "
    "Hub request also has timeouts: R1RELEASE_HUB_TIMEOUT (60 s), ..._CONNECT_TIMEOUT (10 s).",
)
_allow_public_opt = click.option(
    "--allow-public",
    is_flag=True,
    help="Publish into an existing public repository although release.yaml says private.",
)


def _release_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``push`` and ``release`` share (after ``--force``), handed to the command
    as one ``options: _ReleaseOptions``."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        fmt: str | None,
        manifest_out: Path | None,
        expect_manifest: Path | None,
        allow_public: bool,
        deadline: float | None,
        no_cache: bool,
        **kwargs: Any,
    ) -> Any:
        options = _ReleaseOptions(
            fmt, manifest_out, expect_manifest, allow_public, deadline, no_cache
        )
        return command(*args, options=options, **kwargs)

    for option in reversed(
        (_format_opt, _manifest_opt, _expect_opt, _allow_public_opt, _deadline_opt, _no_cache_opt)
    ):
        wrapper = option(wrapper)
    return wrapper


def _dry_run(flag: bool | None) -> bool:
    """The one publish rule of ``push`` and ``release``: --dry-run or --publish when given;
    in CI, what a workflow_dispatch's ``dry_run`` input asks (a person who ticked "dry run"
    gets one), else publish; elsewhere a dry run, so that trying a command sends nothing."""
    from r1release import events

    if flag is not None:
        return flag
    in_ci = os.environ.get("CI") == "true" or os.environ.get("GITHUB_ACTIONS") == "true"
    if not in_ci:
        return True
    asked = events.dispatch_dry_run()
    return asked if asked is not None else False


def _trusted_publishing() -> None:
    """With ``HF_OIDC_RESOURCE`` set, exchange the job's OIDC id token for a short-lived Hub
    token now, before any request is made: in GitHub Actions it is masked (``::add-mask::``)
    before anything could print it, and every error message is scrubbed of it."""
    resource = os.environ.get("HF_OIDC_RESOURCE")
    if not resource:
        return
    from r1release.errors import redact, remember_secret
    from r1release.hub import PublishError, require_trusted_publishing, stored_token

    require_trusted_publishing()  # its own error: an old huggingface_hub cannot exchange it
    try:
        token = stored_token()  # huggingface_hub exchanges it (and caches it for this process)
    except Exception as exc:
        raise PublishError(
            f"trusted publishing for {resource}: the OIDC token exchange failed: "
            f"{redact(_one_line(str(exc)))[:300]}",  # redact first: a cut token stays a token
            hint="check that the job has 'permissions: id-token: write' and that the Hub "
            "repository trusts this workflow, or unset HF_OIDC_RESOURCE and use HF_TOKEN",
        ) from None
    if token:
        remember_secret(token)
        if os.environ.get("GITHUB_ACTIONS") == "true":  # the runner knows no such secret
            click.echo(f"::add-mask::{token}", err=True)


def _rules_that_cannot_run(
    config: Config, view: Checkpoint, *, in_ci: bool, say: Callable[[str], None]
) -> None:
    """A release checks everything it is configured to check: an error rule that cannot run
    here (no torch for expected-tensors) fails a release in CI, before the deep scan, unless
    ``push.allow_skipped`` names it; elsewhere it is a warning. A rule that does not apply to
    the checkpoint (expected-tensors on an adapter) needs nothing here."""
    from r1release.checker import inapplicable_rules, resolve_rules, skipped_rules
    from r1release.errors import ConfigError
    from r1release.findings import Severity
    from r1release.rules import REGISTRY

    for name in config.push.allow_skipped:
        if name not in REGISTRY:
            raise ConfigError(f"unknown rule {name!r}", file=config.path, key="push.allow_skipped")
    active = resolve_rules(config.rule_settings(), config.path)
    moot = {s.rule for s in inapplicable_rules(active, view)}
    for s in skipped_rules(active, deep=True, card=True, smoke=False):
        if not s.missing_requirement or s.rule in moot:
            continue
        blocking = (
            in_ci and s.severity is Severity.ERROR and s.rule not in config.push.allow_skipped
        )
        if blocking:
            from r1release.stage import ReleaseIncomplete

            raise ReleaseIncomplete(
                f"rule {s.rule} ({s.rule_id}, error) cannot run here: it {s.reason}",
                hint="install it on the runner (the shipped workflows and action do), or list "
                "the rule in release.yaml's push.allow_skipped to release without it",
            )
        say(f"warning: rule {s.rule} is skipped: it {s.reason}")


@dataclass(frozen=True)
class _ReleaseOptions:
    fmt: str | None = None
    manifest_out: Path | None = None
    expect_manifest: Path | None = None
    allow_public: bool = False
    deadline: float | None = None
    no_cache: bool = False  # --no-cache: read every byte


def _release(
    config: Config,
    model: ModelConfig,
    version: str,
    *,
    dry_run: bool,
    force: bool,
    options: _ReleaseOptions | None = None,
) -> None:
    from r1release import ci
    from r1release.card import ReleaseInfo
    from r1release.checkpoint import Checkpoint
    from r1release.errors import UsageError
    from r1release.hub import (
        check_deadline,
        hub_offline,
        make_api,
        preflight,
        publish,
        retry_log,
        set_deadline,
    )
    from r1release.stage import build_stage

    options = options or _ReleaseOptions()
    set_deadline(options.deadline)
    github = ci.in_github_actions()
    output = get_format(options.fmt)
    approved = _read_manifest(options.expect_manifest) if options.expect_manifest else None
    say = _say()
    api = access = None
    if hub_offline():  # before the checks and the deep scan: fail fast
        if not dry_run:
            raise UsageError(
                "HF_HUB_OFFLINE is set: the Hub cannot be reached to publish",
                hint="unset HF_HUB_OFFLINE, or pass --dry-run to plan offline",
            )
    else:
        _trusted_publishing()  # masked before anything else is printed; fails fast
        api = make_api()
        with retry_log(say):  # token, Hub, write access, visibility: seconds, not a deep scan
            access = preflight(
                api,
                model.repo_id,
                private=model.private,
                publishing=not dry_run,
                allow_public=options.allow_public,
            )
    say(
        f"release {model.name} {version} -> {model.repo_id} "
        f"({'dry run' if dry_run else 'publishing'})"
    )
    view = Checkpoint(model.checkpoint)  # the release's one view: checks, fixes, card, scan
    _rules_that_cannot_run(config, view, in_ci=github or os.environ.get("CI") == "true", say=say)
    release_info = ReleaseInfo.from_environment(version)
    with _deep_progress(view, enabled=verbosity() > QUIET) as progress, _blocked_report(output):
        stage = build_stage(
            model,
            version,
            checkpoint=view,
            release=release_info,
            settings=config.rule_settings(),
            config_path=config.path,
            fix=config.push.fix,
            card_template=config.card_template(),
            card_template_name=_template_name(config),
            progress=progress,
            cache=not options.no_cache,
        )
    check_deadline("publishing (after the checks and the deep scan)")
    manifest = stage.manifest()
    if options.manifest_out is not None:
        _write_file(options.manifest_out, json.dumps(manifest, indent=2) + "\n")
    if approved is not None:
        _compare_manifest(options.expect_manifest, approved, manifest)
    for finding in stage.report.warnings:
        say(f"warning: {finding.rule}: {finding.file or ''}: {finding.message}")
    result = publish(
        stage,
        api=api,
        revision=config.push.revision,
        force=force,
        dry_run=dry_run,
        log=say,
        access=access,
        allow_public=options.allow_public,
        keep=config.push.keep,
    )
    output.release(ReleaseOutcome(stage, result, manifest, release_info))
    ci.write_outputs(
        {
            "repo_id": result.plan.repo_id,
            "version": result.plan.version,
            "revision": result.commit,
            "commit_url": result.commit_url,
            "dry_run": "true" if result.dry_run else "false",
            "manifest_sha256": stage.manifest_sha256(),
        }
    )


def _say() -> Callable[[str], None]:
    """How a release reports its progress and warnings on stderr: not at all with -q."""
    if verbosity() == QUIET:
        return lambda msg: None
    return lambda msg: click.echo(_h(msg), err=True)


def _read_manifest(path: Path) -> dict[str, Any]:
    from r1release.errors import UsageError

    try:
        with open(path, "rb") as fh:
            raw = fh.read(64 * 1024 * 1024 + 1)
        doc = json.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the approved manifest: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{path}: not a release manifest (invalid JSON: {exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        raise UsageError(f"{path}: not a release manifest (written by `release --manifest`)")
    return doc


def _compare_manifest(path: Path | None, approved: dict[str, Any], staged: dict[str, Any]) -> None:
    from r1release.stage import StageChanged, manifest_differences

    differences = manifest_differences(approved, staged)
    if differences:
        shown = "; ".join(differences[:5]) + (
            f" (and {len(differences) - 5} more)" if len(differences) > 5 else ""
        )
        raise StageChanged(
            f"{path}: this release differs from the approved plan: {shown}; nothing was sent",
            hint="plan and approve the release again",
        )


@contextmanager
def _blocked_report(output: Format) -> Iterator[None]:
    """In GitHub Actions (or with --format github), a release stopped by findings annotates
    them and fills the step summary."""
    from r1release.stage import ReleaseBlocked

    try:
        yield
    except ReleaseBlocked as exc:
        output.blocked(exc.report)
        raise

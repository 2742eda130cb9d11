"""The ``r1release`` command: parse, call the library, render, return an exit code.

Only this module prints. Library modules are imported inside the commands so that
``r1release --help`` loads nothing heavy.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from r1release.checkpoint import Checkpoint
    from r1release.config import Config, ModelConfig, RuleSetting
    from r1release.findings import Report

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


@dataclass(frozen=True)
class Target:
    checkpoint: Path
    config: Config | None
    config_path: Path
    model: ModelConfig | None = None

    @property
    def settings(self) -> dict[str, RuleSetting]:
        return self.config.rule_settings() if self.config else {}


@contextmanager
def error_handler(debug: bool) -> Iterator[None]:
    """Map errors to one line on stderr and an exit code; tracebacks only with --debug."""
    from r1release.errors import R1ReleaseError, redact

    try:
        yield
    except R1ReleaseError as exc:
        if debug:
            click.echo(_traceback(), err=True)
        click.echo(_h(f"error: {redact(_one_line(str(exc)))}"), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.exceptions.Exit:
        raise
    except (click.ClickException, click.Abort):
        raise
    except Exception as exc:
        if debug:
            click.echo(_traceback(), err=True)
        click.echo(
            _h(
                f"internal error: {type(exc).__name__}: {redact(_one_line(str(exc)))} "
                "(rerun with --debug for a traceback, and please report it)"
            ),
            err=True,
        )
        sys.exit(EXIT_INTERNAL)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _traceback() -> str:
    from r1release.errors import redact

    return "\n".join(_h(line) for line in redact(traceback.format_exc()).splitlines())


def _h(text: str) -> str:
    """A human-readable line holding untrusted text (a file name, a Hub message, a token
    name): one line, and never a workflow command (see ci.log_line)."""
    from r1release.ci import log_line

    return log_line(text)


def _trusted_publishing() -> None:
    """With ``HF_OIDC_RESOURCE`` set, exchange the job's OIDC id token for a short-lived Hub
    token now, before any request is made: in GitHub Actions it is masked (``::add-mask::``)
    before anything could print it, and every error message is scrubbed of it."""
    resource = os.environ.get("HF_OIDC_RESOURCE")
    if not resource:
        return
    from r1release.errors import redact, remember_secret
    from r1release.hub import PublishError, stored_token

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


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug")) or os.environ.get("R1RELEASE_DEBUG") == "1"
        with error_handler(debug):
            return super().invoke(ctx)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="r1release", prog_name="r1release")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="release.yaml to use (default: ./release.yaml when present).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, debug: bool) -> None:
    """Check, fix, document and publish LLM training checkpoints."""
    ctx.obj = {"config_path": config_path, "debug": debug}
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 must not crash output
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        from r1release.ci import mask_commands

        # On stderr, which the runner reads for workflow commands as it reads stdout: stdout
        # may be data (a card, JSON) redirected into a file.
        for command in mask_commands():  # before anything else is printed
            click.echo(command, err=True)


def _target(ctx: click.Context, path: Path | None, model: str | None) -> Target:
    from r1release import config as config_mod
    from r1release.errors import UsageError

    explicit = ctx.obj["config_path"]
    config_path = explicit or Path(config_mod.DEFAULT_CONFIG)
    if path is not None and model is not None:
        raise UsageError("pass a checkpoint PATH or --model NAME, not both")
    needs_config = model is not None or path is None
    config = None
    if explicit is not None or config_path.exists():
        config = config_mod.load(config_path)
    elif needs_config:
        raise UsageError(
            f"{config_path}: not found; pass a checkpoint PATH, or --config PATH",
        )
    if path is not None:
        return Target(path, config, config_path, _model_at(config, path))
    assert config is not None
    if model is None:
        if len(config.models) > 1:
            names = ", ".join(m.name for m in config.models)
            raise UsageError(f"{config_path} has several models; pass --model NAME ({names})")
        model = config.models[0].name
    checkpoint = config.model(model).checkpoint
    if not checkpoint.is_dir():
        from r1release.errors import CheckpointError

        raise CheckpointError(
            f"{config_path}: model {model!r}: checkpoint {checkpoint} is not a directory",
            hint="train or copy the model there, or fix `checkpoint` (${VAR} is expanded)",
        )
    return Target(checkpoint, config, config_path, config.model(model))


def _model_at(config: Config | None, path: Path) -> ModelConfig | None:
    """The release.yaml model whose checkpoint is ``path``, if any."""
    if config is None:
        return None
    for model in config.models:
        if os.path.realpath(model.checkpoint) == os.path.realpath(path):  # never raises on loops
            return model
    return None


# Not click.Path(file_okay=False): its usage error spans three lines; Checkpoint says it in one.
_path_arg = click.argument("path", required=False, type=click.Path(path_type=Path))
_model_opt = click.option("--model", "-m", help="Model name from release.yaml.")


# ------------------------------------------------------------------------------- check


_no_cache_opt = click.option(
    "--no-cache",
    "no_cache",
    is_flag=True,
    help="Read every byte, even of weights the digest cache knows unchanged (also: "
    "R1RELEASE_NO_CACHE=1).",
)


@main.command()
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


def _append_summary(markdown: str) -> None:
    from r1release import ci

    try:
        ci.append_summary(markdown.encode("utf-8", "backslashreplace").decode("utf-8"))
    except OSError as exc:  # the work is done: a summary that cannot be written is a warning
        where = os.environ.get("GITHUB_STEP_SUMMARY", "")
        click.echo(_h(f"warning: cannot write the step summary {where}: {exc.strerror}"), err=True)


@contextmanager
def _deep_progress(view: Checkpoint, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    if not enabled:
        yield None
        return
    files = view.files
    total = sum(e.size for e in files if not e.is_dir and not e.escapes)
    read, times = [0], []  # bytes read; when the scan started and when it last read
    cached = [0, 0]  # files and bytes the digest cache served

    class Track:
        def __init__(self, update: Callable[[int], None] | None = None) -> None:
            self.update = update

        def __call__(self, n: int) -> None:
            read[0] += n
            times.append(time.perf_counter())
            del times[1:-1]
            if self.update is not None:
                self.update(n)

        def cached(self, n: int) -> None:  # scan_checkpoint calls it for each cache hit
            cached[0] += 1
            cached[1] += n
            if self.update is not None:
                self.update(n)

    if sys.stderr.isatty():
        with click.progressbar(length=total, label="deep scan", file=sys.stderr) as bar:
            yield Track(bar.update)
    else:
        click.echo(_h(f"deep scan: {len(files)} files, {_gb(total)}"), err=True)
        yield Track()
    if cached[0]:
        served = f"{cached[0]} file{'s' if cached[0] > 1 else ''}"
        click.echo(_h(f"deep scan: {served} ({_gb(cached[1])}) from the digest cache"), err=True)
    if len(times) < 2:
        return  # the check stopped before the scan, or the scan read nothing
    # The scan's own time: the rules that run after it (and their imports) are not counted.
    elapsed = max(times[-1] - times[0], 1e-3)
    rate = (
        f"{read[0] / elapsed / 1e9:.2f} GB/s"
        if read[0] >= 1e8
        else f"{read[0] / elapsed / 1e6:.0f} MB/s"
    )
    click.echo(_h(f"deep scan: read {_gb(read[0])} in {elapsed:.2f}s ({rate})"), err=True)


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


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


# ------------------------------------------------------------------------------- fix


@main.command()
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


# ------------------------------------------------------------------------------- card


@main.command()
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
    """Render the model card (README.md) for a model of release.yaml."""
    from r1release.card import ReleaseInfo, render_card
    from r1release.checkpoint import Checkpoint
    from r1release.errors import UsageError

    target = _target(ctx, path, model)
    if target.model is None:
        raise UsageError(
            f"{target.checkpoint}: no model of {target.config_path} has this checkpoint; "
            "the card needs its repo_id, base_model and dataset_name",
            hint="add the model to release.yaml and pass --model NAME",
        )
    template = target.config.card_template() if target.config else None
    text = render_card(
        Checkpoint(target.checkpoint),
        target.model,
        ReleaseInfo.from_environment(version),
        template,
        template_name=_template_name(target.config),
    )
    if output is None:
        click.echo(text, nl=False)
    else:
        _write_file(output, text)
        click.echo(_h(f"wrote {output}"), err=True)


# ------------------------------------------------------------------------------- push


_version_opt = click.option("--version", "version", help="Release version, e.g. v1.2.0.")
_dry_run_opt = click.option("--dry-run", is_flag=True, help="Print the plan; send no write.")
_force_opt = click.option(
    "--force", is_flag=True, help="Move the version's tag when it points at different content."
)


_format_opt = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default=None,
    help="text (default), json (one document on stdout: plan, report, manifest), or github "
    "(default in GitHub Actions: text plus annotations and the step summary).",
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


@main.command()
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


@main.command()
@click.option("--tag", help="Git tag to release (v1.2.0, or NAME@v1.2.0).")
@_model_opt
@_version_opt
@click.option(
    "--dry-run/--publish",
    "dry_run",
    default=None,
    help="Print the plan only / publish. Default: the event's dry_run input, else publish in "
    "CI and a dry run elsewhere.",
)
@_force_opt
@_format_opt
@_manifest_opt
@_expect_opt
@_allow_public_opt
@_deadline_opt
@_no_cache_opt
@click.pass_context
def release(
    ctx: click.Context,
    tag: str | None,
    model: str | None,
    version: str | None,
    dry_run: bool | None,
    force: bool,
    fmt: str | None,
    manifest_out: Path | None,
    expect_manifest: Path | None,
    allow_public: bool,
    deadline: float | None,
    no_cache: bool,
) -> None:
    """Release what a git tag, a workflow_dispatch event or --model/--version names.

    In GitHub Actions the event decides (a pushed tag, or workflow_dispatch inputs model,
    version and dry_run). A workflow_dispatch `dry_run: true` is honoured even when --model
    or --version are given; only --publish overrides it. Outside CI, release is a dry run
    unless --publish is given.
    """
    from r1release import config as config_mod
    from r1release import events

    config = config_mod.load(ctx.obj["config_path"] or config_mod.DEFAULT_CONFIG)
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
    in_ci = os.environ.get("CI") == "true" or os.environ.get("GITHUB_ACTIONS") == "true"
    if dry_run is None:
        asked = events.dispatch_dry_run() if in_ci else None  # the dispatch's own choice
        dry_run = asked if asked is not None else not in_ci
    _release(
        config,
        resolved.model,
        resolved.version,
        dry_run=dry_run,
        force=force,
        options=_ReleaseOptions(
            fmt, manifest_out, expect_manifest, allow_public, deadline, no_cache
        ),
    )


def _rules_that_cannot_run(config: Config, *, in_ci: bool, say: Callable[[str], None]) -> None:
    """A release checks everything it is configured to check: an error rule that cannot run
    here (no torch for expected-tensors) fails a release in CI, before the deep scan, unless
    ``push.allow_skipped`` names it; elsewhere it is a warning."""
    from r1release.checker import resolve_rules, skipped_rules
    from r1release.errors import ConfigError
    from r1release.findings import Severity
    from r1release.rules import REGISTRY

    for name in config.push.allow_skipped:
        if name not in REGISTRY:
            raise ConfigError(f"unknown rule {name!r}", file=config.path, key="push.allow_skipped")
    active = resolve_rules(config.rule_settings(), config.path)
    for s in skipped_rules(active, deep=True, card=True, smoke=False):
        if not s.missing_requirement:
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
    fmt = options.fmt or ("github" if github else "text")
    approved = _read_manifest(options.expect_manifest) if options.expect_manifest else None
    say = lambda msg: click.echo(_h(msg), err=True)  # noqa: E731
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
    _rules_that_cannot_run(config, in_ci=github or os.environ.get("CI") == "true", say=say)
    release_info = ReleaseInfo.from_environment(version)
    view = Checkpoint(model.checkpoint)  # the release's one view: checks, fixes, card, scan
    with _deep_progress(view, enabled=True) as progress, _blocked_report(github):
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
    )
    if fmt == "json":
        doc = {
            "schema_version": 1,
            "release": _plan_dict(stage, result),
            "report": stage.report.to_dict(),
            "manifest": manifest,
        }
        click.echo(json.dumps(doc, indent=2))
        with _stdout_to_stderr():
            _print_plan(stage, result)
    else:
        _print_plan(stage, result)
    if github:
        for line in ci.annotations(stage.report):
            click.echo(line, err=True)
        _append_summary(ci.release_summary(stage, result, release_info))
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


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Human-readable lines go to stderr while stdout carries a JSON document."""
    import contextlib

    with contextlib.redirect_stdout(sys.stderr):
        yield


def _template_name(config: Config | None) -> str | None:
    """How errors name release.yaml's card template: its path, as release.yaml gives it."""
    if config is None or config.card.template is None:
        return None
    return str(config.card.template)


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


def _write_file(path: Path, text: str) -> None:
    from r1release.errors import UsageError
    from r1release.fixes import atomic_write

    if not path.parent.is_dir():
        raise UsageError(f"{path}: directory {path.parent} does not exist; create it first")
    try:
        atomic_write(path, text)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror}") from None


def _plan_dict(stage: Any, result: Any) -> dict[str, Any]:
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


@contextmanager
def _blocked_report(github: bool) -> Iterator[None]:
    """In GitHub Actions, a release stopped by findings annotates them and fills the summary."""
    from r1release import ci
    from r1release.stage import ReleaseBlocked

    try:
        yield
    except ReleaseBlocked as exc:
        if github:
            for line in ci.annotations(exc.report):
                click.echo(line, err=True)
            _append_summary(ci.report_summary(exc.report, "release stopped by findings"))
        raise


def _print_plan(stage: Any, result: Any) -> None:
    plan = result.plan
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
    if result.dry_run:
        click.echo("\n--- README.md (model card) ---")
        for line in stage.card.splitlines():  # shown in the log: no line may act as a command
            click.echo(_h(line))
        click.echo("---\ndry run: nothing was sent (use --publish, or run in CI, to release)")
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


# ------------------------------------------------------------------------------- info


@main.command()
def schema() -> None:
    """Print the JSON Schema of release.yaml (for editors and CI validation)."""
    from r1release.config import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@main.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def rules(fmt: str) -> None:
    """List the rules: id, name, default severity, fixability, options."""
    from r1release.rules import RULES

    if fmt == "json":
        click.echo(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "name": r.name,
                        "severity": r.severity.value,
                        "fixable": r.fixable,
                        "deep": r.deep,
                        "opt_in": r.opt_in,
                        "description": r.description,
                        "options": {
                            o.name: {"default": o.default, "doc": o.doc} for o in r.options
                        },
                    }
                    for r in RULES
                ],
                indent=2,
                default=list,
            )
        )
        return
    for r in RULES:
        flags = ", ".join(
            x
            for x in (
                "fixable" if r.fixable else "",
                "deep" if r.deep else "",
                "opt-in: --smoke" if r.opt_in else "",
            )
            if x
        )
        click.echo(
            f"{r.id}  {r.name:<24} {r.severity.value:<8} {r.description}"
            + (f" ({flags})" if flags else "")
        )


if __name__ == "__main__":  # pragma: no cover
    main()

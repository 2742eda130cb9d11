"""What the commands share: the target a command works on, the error handler, the options
every command takes, the deep-scan progress lines and file writing."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from r1release.checkpoint import Checkpoint
    from r1release.config import Config, ModelConfig, RuleSetting

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
def error_handler(debug: Callable[[], bool]) -> Iterator[None]:
    """Map errors to one line on stderr and an exit code; tracebacks only with --debug (asked
    when an error comes: `check PATH --debug` is parsed after the handler is entered)."""
    from r1release.errors import R1ReleaseError, redact

    try:
        yield
    except R1ReleaseError as exc:
        if debug():
            click.echo(_traceback(), err=True)
        for line in _error_lines(exc):
            click.echo(_h(line), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.exceptions.Exit:
        raise
    except (click.ClickException, click.Abort):
        raise
    except BrokenPipeError:  # `r1release rules | head -1`: the reader has what it wanted
        from r1release.cli._conventions import closed_pipe

        sys.exit(closed_pipe())
    except Exception as exc:
        if debug():
            click.echo(_traceback(), err=True)
        click.echo(
            _h(
                f"internal error: {type(exc).__name__}: {redact(_one_line(str(exc)))} "
                "(rerun with --debug for a traceback, and please report it)"
            ),
            err=True,
        )
        sys.exit(EXIT_INTERNAL)


def _error_lines(exc: Exception) -> list[str]:
    """One line per error: a release.yaml with several says each, then how many."""
    from r1release.errors import ConfigError, redact

    if not isinstance(exc, ConfigError) or exc.count == 1:
        return [f"error: {redact(_one_line(str(exc)))}"]
    lines = [f"error: {redact(_one_line(str(e)))}" for e in exc.errors]
    if exc.unreported:
        lines.append(f"... and {exc.unreported} more")
    return [*lines, f"{exc.file}: {exc.count} errors"]


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


def _load_config(path: Path) -> Config:
    """``release.yaml``, with what loading let pass but a user should know (a local path left
    out of the card) said on stderr."""
    from r1release import config as config_mod

    config = config_mod.load(path)
    for warning in config.warnings:
        click.echo(_h(f"warning: {warning}"), err=True)
    return config


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
        config = _load_config(config_path)
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


_no_cache_opt = click.option(
    "--no-cache",
    "no_cache",
    is_flag=True,
    help="Read every byte, even of weights the digest cache knows unchanged (also: "
    "R1RELEASE_NO_CACHE=1).",
)


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


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Human-readable lines go to stderr while stdout carries a JSON document."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _template_name(config: Config | None) -> str | None:
    """How errors name release.yaml's card template: its path, as release.yaml gives it."""
    if config is None or config.card.template is None:
        return None
    return str(config.card.template)


def _write_file(path: Path, text: str) -> None:
    from r1release.errors import UsageError
    from r1release.fixes import atomic_write

    if not path.parent.is_dir():
        raise UsageError(f"{path}: directory {path.parent} does not exist; create it first")
    try:
        atomic_write(path, text)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror}") from None

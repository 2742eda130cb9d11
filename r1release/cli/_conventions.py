"""The conventions every ``r1release`` command follows, as click, ``hf`` and twine do.

- The global options (``--config``, ``--debug``, ``--color/--no-color``, ``-q``, ``-v``) are
  taken before the subcommand and after it, with the same meaning; after it wins.
- Color: ``--color/--no-color``, else none when ``NO_COLOR`` is set (https://no-color.org),
  else only on a terminal (click's default).
- Every error is one line on stderr, click's usage errors included (exit 2).
- A closed pipe (``r1release rules | head -1``) ends the command quietly with exit 141, the
  status of a command that SIGPIPE ended.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

EXIT_CLOSED_PIPE = 128 + 13  # what a shell reports for a command ended by SIGPIPE
QUIET, NORMAL, VERBOSE = -1, 0, 1

# ctx.obj's keys and their values when no option gives them.
DEFAULTS: dict[str, Any] = {"config_path": None, "debug": False, "color": None, "verbosity": 0}


def global_options() -> list[click.Option]:
    """Fresh instances of the global options, for the group and for each subcommand."""
    return [
        click.Option(
            ["--config", "config_path"],
            type=click.Path(dir_okay=False, path_type=Path),
            help="release.yaml to use (default: ./release.yaml when present).",
            expose_value=False,
            callback=_store("config_path"),
        ),
        click.Option(
            ["--debug"],
            is_flag=True,
            help="Show tracebacks for errors (also: R1RELEASE_DEBUG=1).",
            expose_value=False,
            callback=_store("debug"),
        ),
        click.Option(
            ["--color/--no-color", "color"],
            default=None,
            help="Color the output (default: on a terminal, unless NO_COLOR is set).",
            expose_value=False,
            callback=_store_color,
        ),
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            help="Print only errors, and the data a command outputs.",
            expose_value=False,
            callback=_store_verbosity(QUIET),
        ),
        click.Option(
            ["-v", "--verbose"],
            is_flag=True,
            help="Print more detail (see each command's help).",
            expose_value=False,
            callback=_store_verbosity(VERBOSE),
        ),
    ]


def _given(ctx: click.Context, param: click.Parameter) -> bool:
    """The group records every global option (its default included); a subcommand only those
    given on its command line, so that `check --debug` adds to `--config x check`."""
    return ctx.parent is None or ctx.get_parameter_source(param.name or "") not in (
        ParameterSource.DEFAULT,
        None,
    )


def _settings(ctx: click.Context) -> dict[str, Any]:
    obj = ctx.ensure_object(dict)
    for key, value in DEFAULTS.items():
        obj.setdefault(key, value)
    return obj


def _store(key: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        settings = _settings(ctx)
        if _given(ctx, param):
            settings[key] = value

    return callback


def _store_verbosity(level: int) -> Callable[[click.Context, click.Parameter, bool], None]:
    """``-q`` and ``-v`` set one level; of the two, the one given last wins."""

    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        settings = _settings(ctx)
        if value:
            settings["verbosity"] = level

    return callback


def _store_color(ctx: click.Context, param: click.Parameter, value: bool | None) -> None:
    settings = _settings(ctx)
    if _given(ctx, param):
        settings["color"] = value
    ctx.color = color_setting(settings["color"])


def color_setting(flag: bool | None) -> bool | None:
    """``--color``/``--no-color`` when given; else off when NO_COLOR holds anything; else None:
    click colors a terminal and strips color from a pipe or a file."""
    if flag is not None:
        return flag
    return False if os.environ.get("NO_COLOR") else None


def verbosity() -> int:
    """QUIET, NORMAL or VERBOSE, as the command line set it (NORMAL outside a command)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or not isinstance(ctx.obj, dict):
        return NORMAL
    return int(ctx.obj.get("verbosity", NORMAL))


def debug_enabled() -> bool:
    ctx = click.get_current_context(silent=True)
    asked = bool(ctx is not None and isinstance(ctx.obj, dict) and ctx.obj.get("debug"))
    return asked or os.environ.get("R1RELEASE_DEBUG") == "1"


def usage_error_line(exc: click.ClickException) -> str:
    """Click's three lines ("Usage: ...", "Try ...", "Error: ...") as one:
    ``error: no such option: --deepx (did you mean --deep?); see r1release check --help``."""
    if isinstance(exc, click.NoSuchOption):
        message = _no_such("option", exc.option_name, exc.possibilities)
    elif isinstance(exc, _NO_SUCH_COMMAND):
        message = _no_such("command", exc.command_name, exc.possibilities)
    else:
        text = " ".join(exc.format_message().split()).rstrip(".")
        message = text[:1].lower() + text[1:]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f"; see {ctx.command_path} --help"
    return f"error: {message}"


# Click 8.4 names the error of an unknown command; before, it is a plain UsageError.
_NO_SUCH_COMMAND: tuple[type, ...] = tuple(
    c for c in (getattr(click.exceptions, "NoSuchCommand", None),) if c is not None
)


def _no_such(kind: str, name: str, possibilities: list[str] | None) -> str:
    if not possibilities:
        return f"no such {kind}: {name}"
    *others, last = possibilities
    guesses = f"{', '.join(others)} or {last}" if others else last
    return f"no such {kind}: {name} (did you mean {guesses}?)"


def closed_pipe() -> int:
    """The reader of stdout went away: point stdout at /dev/null so that the interpreter's
    last flush cannot fail again (the Python docs' "Note on SIGPIPE"), and say nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a file (a test's captured stream)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - it lives until the process ends
    finally:
        os.close(devnull)
    return EXIT_CLOSED_PIPE

"""The ``r1release`` command: parse, call the library, render, return an exit code.

Only this package prints. One module per command (check, fix, card, push, release, rules,
schema), each thin over the library; what they share is in ``_common``, the publishing flow
of push and release in ``_publish``. Library modules are imported inside the commands so
that ``r1release --help`` loads nothing heavy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from r1release.cli._common import error_handler


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


from r1release.cli import card, check, fix, push, release, rules, schema  # noqa: E402

# One module per command; click lists them by name.
for _command in (
    check.check,
    fix.fix,
    card.card,
    push.push,
    release.release,
    schema.schema,
    rules.rules,
):
    main.add_command(_command)
del _command

__all__ = ["main"]

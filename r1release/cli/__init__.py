"""The ``r1release`` command: parse, call the library, render, return an exit code.

Only this package prints. One module per command (check, fix, card, push, release, rules,
schema), each thin over the library; what they share is in ``_common``, the publishing flow
of push and release in ``_publish``. Library modules are imported inside the commands so
that ``r1release --help`` loads nothing heavy.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from r1release.cli._common import EXIT_FINDINGS, _h, error_handler
from r1release.cli._conventions import (
    closed_pipe,
    debug_enabled,
    global_options,
    usage_error_line,
)


class _Group(click.Group):
    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Click's main, but every error one line (see _conventions) and a closed pipe quiet:
        stdout is flushed here, where a BrokenPipeError can still be caught."""
        if len(args) < 2:  # "r1release", not "python -m r1release.cli", in usage and errors
            kwargs.setdefault("prog_name", self.name)
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except SystemExit as exc:
            code = exc.code
        except click.exceptions.NoArgsIsHelpError as exc:  # bare `r1release`: the help
            exc.show()
            code = exc.exit_code
        except click.ClickException as exc:
            click.echo(_h(usage_error_line(exc)), err=True)
            code = exc.exit_code
        except click.Abort:
            click.echo("aborted", err=True)
            code = EXIT_FINDINGS
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            code = closed_pipe()
        sys.exit(code)

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:  # `r1release --help | head -1`: the group's own options print while parsed
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            sys.exit(closed_pipe())

    def invoke(self, ctx: click.Context) -> Any:
        with error_handler(debug_enabled):
            return super().invoke(ctx)


@click.group("r1release", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="r1release", prog_name="r1release")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Check, fix, document and publish LLM training checkpoints."""
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
    _command.params.extend(global_options())  # also after the subcommand: `check --debug`
    main.add_command(_command)
main.params.extend(global_options())
del _command

__all__ = ["main"]

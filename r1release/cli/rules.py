"""``r1release rules``: the rule catalogue."""

from __future__ import annotations

import json
import re

import click


@click.command()
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
            if x and not _says(r.description, x)
        )
        click.echo(
            f"{r.id}  {r.name:<24} {r.severity.value:<8} {r.description}"
            + (f" ({flags})" if flags else "")
        )


def _says(description: str, flag: str) -> bool:
    """Whether a description already names the flag ("... (deep, needs torch)"): not twice."""
    return re.search(rf"[(,]\s*{re.escape(flag)}\s*[,)]", description) is not None

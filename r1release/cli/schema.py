"""``r1release schema``: the JSON Schema of release.yaml."""

from __future__ import annotations

import json

import click


@click.command()
def schema() -> None:
    """Print the JSON Schema of release.yaml (for editors and CI validation)."""
    from r1release.config import json_schema

    click.echo(json.dumps(json_schema(), indent=2))

"""card-metadata: the rendered model card's YAML metadata is what the Hub accepts.

Checked offline before any push (``ModelCard.validate()`` needs the network): the metadata
block parses as a YAML mapping, holds no ``null`` anywhere (the Hub rejects those,
transformers #28137), and names the license, base model, datasets and tags. Runs when the
model is known from release.yaml (``check --model``, ``push``, ``release``).

Fails: a card without ``license`` (TRL writes ``licence``); ``base_model: null``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from r1release.findings import Severity
from r1release.rules.base import Context, Need, Option, Problem, Rule

FILE = "README.md"
_HINT = "set it for the model in release.yaml"


def _nulls(value: Any, path: str = "") -> Iterator[str]:
    if value is None:
        yield path or "(metadata)"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nulls(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nulls(item, f"{path}[{i}]")


def check(ctx: Context) -> Iterator[Problem]:
    if ctx.card is None:
        return
    if not ctx.card.startswith("---\n") or "\n---\n" not in ctx.card[4:]:
        yield Problem("the card has no YAML metadata block", FILE, "check the card template")
        return
    block = ctx.card[4:].split("\n---\n", 1)[0]
    try:
        meta = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        yield Problem(
            f"metadata is not valid YAML: {exc}".splitlines()[0], FILE, "check the card template"
        )
        return
    if not isinstance(meta, dict):
        yield Problem("metadata is not a YAML mapping", FILE, "check the card template")
        return
    for where in _nulls(meta):
        yield Problem(f"metadata {where} is null: the Hub rejects the card", FILE, _HINT)
    for key in ctx.options.get("required", ()):
        if meta.get(key) in (None, "", []):
            yield Problem(f"metadata has no {key}", FILE, _HINT)


RULE = Rule(
    id="R601",
    name="card-metadata",
    severity=Severity.ERROR,
    description="the model card's metadata parses, has no null and names the required fields",
    check=check,
    needs=frozenset({Need.CARD}),
    options=(
        Option(
            "required",
            (list, tuple),
            ("license", "base_model", "datasets", "tags"),
            "metadata fields that must be present",
        ),
    ),
)

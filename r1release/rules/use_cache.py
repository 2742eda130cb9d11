"""use-cache: ``config.json`` does not disable the KV cache.

Training with gradient checkpointing sets ``use_cache=False``; saved into ``config.json`` it
makes inference slow (trl PR 3891). Multimodal configs are checked in ``text_config`` too.

Fails: ``{"use_cache": false}``. Passes: ``true`` or absent (transformers defaults to true).
Fix: set ``use_cache`` to true, and write ``"use_cache": true`` into
``generation_config.json`` too when it does not say, so both files agree explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from r1release.findings import Severity
from r1release.rules.adapter_config import needs_file
from r1release.rules.base import Context, Problem, Rule

FILE = "config.json"


def disabled_sections(doc: dict[str, Any] | None) -> list[str]:
    """Keys (``use_cache``, ``text_config.use_cache``) set to false in ``doc``."""
    if not doc:
        return []
    found = ["use_cache"] if doc.get("use_cache") is False else []
    text = doc.get("text_config")
    if isinstance(text, dict) and text.get("use_cache") is False:
        found.append("text_config.use_cache")
    return found


def enable(doc: dict[str, Any]) -> None:
    if doc.get("use_cache") is False:
        doc["use_cache"] = True
    text = doc.get("text_config")
    if isinstance(text, dict) and text.get("use_cache") is False:
        text["use_cache"] = True


def check(ctx: Context) -> Iterator[Problem]:
    for key in disabled_sections(ctx.checkpoint.json(FILE)):
        yield Problem(
            f"{key} is false (left over from gradient checkpointing): inference runs without "
            "a KV cache",
            FILE,
            "run `r1release fix` to set it to true",
        )


def fix(ctx: Context) -> None:
    if not disabled_sections(ctx.checkpoint.json(FILE)):
        return
    enable(ctx.edit(FILE))
    generation = ctx.checkpoint.generation_config
    if generation is not None and "use_cache" not in generation:
        ctx.edit("generation_config.json")["use_cache"] = True


RULE = Rule(
    id="R201",
    name="use-cache",
    severity=Severity.ERROR,
    description="config.json does not set use_cache to false",
    check=check,
    fix=fix,
    inapplicable=needs_file("config.json"),
)

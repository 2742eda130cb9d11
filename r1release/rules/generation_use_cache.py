"""generation-use-cache: ``generation_config.json`` does not disable the KV cache.

With transformers 5, a model built from a config with ``use_cache=False`` also writes
``"use_cache": false`` into ``generation_config.json``; restoring only ``config.json`` leaves
``generate()`` without a KV cache (about 20x slower on a tiny Qwen2).

Fails: ``{"use_cache": false}``. Fix: set it to true.
"""

from __future__ import annotations

from collections.abc import Iterator

from r1release.findings import Severity
from r1release.rules.base import Context, Problem, Rule
from r1release.rules.use_cache import disabled_sections, enable

FILE = "generation_config.json"


def check(ctx: Context) -> Iterator[Problem]:
    for key in disabled_sections(ctx.checkpoint.json(FILE)):
        yield Problem(
            f"{key} is false: generate() runs without a KV cache even when config.json enables it",
            FILE,
            "run `r1release fix` to set it to true",
        )


def fix(ctx: Context) -> None:
    if disabled_sections(ctx.checkpoint.json(FILE)):
        enable(ctx.edit(FILE))


RULE = Rule(
    id="R202",
    name="generation-use-cache",
    severity=Severity.ERROR,
    description="generation_config.json does not set use_cache to false",
    check=check,
    fix=fix,
)

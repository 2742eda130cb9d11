"""json-files: the checkpoint's JSON configs parse, and ``config.json`` exists.

An adapter (``adapter_config.json``, peft's save) has no ``config.json``: the base model's
is used, so only the files it carries must parse.

Every other rule reads these files; when one is broken this rule reports it once and the rules
that need it are skipped.

Fails: ``config.json`` holding ``{"model_type": "qwen2",}`` (trailing comma), a
``generation_config.json`` that is a JSON list, a checkpoint without ``config.json``.
"""

from __future__ import annotations

from collections.abc import Iterator

from r1release.checkpoint import ADAPTER, CONFIG_JSON_FILES
from r1release.errors import FileUnreadable
from r1release.findings import Severity
from r1release.rules.base import Context, Problem, Rule


def check(ctx: Context) -> Iterator[Problem]:
    ckpt = ctx.checkpoint
    if not ckpt.exists("config.json") and ckpt.kind != ADAPTER:
        yield Problem(
            "config.json is missing: transformers cannot load this checkpoint",
            "config.json",
            "save the model with save_pretrained, which writes config.json",
        )
    for name in CONFIG_JSON_FILES:
        try:
            ckpt.json(name)
        except FileUnreadable as exc:
            yield Problem(exc.reason, name, "repair or regenerate the file")


RULE = Rule(
    id="R001",
    name="json-files",
    severity=Severity.ERROR,
    description="JSON config files parse and config.json exists",
    check=check,
)

"""config-eos-consistency: ``config.json``'s EOS agrees with ``generation_config.json``.

Servers and converters that read ``config.json`` (rather than the generation config) stop on
its ``eos_token_id``, so it must hold the tokenizer's EOS and only ids that are stop tokens.

Passes: Qwen2.5-Instruct (``151645`` in ``[151645, 151643]``), Llama-3.1 (equal lists).
Fails: ``config.json`` EOS ``151643`` with tokenizer EOS ``<|im_end|>`` (151645).
Fix: copy the generation config's stop list into ``config.json``.
"""

from __future__ import annotations

from collections.abc import Iterator

from r1release.findings import Severity
from r1release.rules.adapter_config import needs_file
from r1release.rules.base import Context, Problem, Rule, as_ids, as_value

FILE = "config.json"


def _problem(ctx: Context) -> str | None:
    config = ctx.checkpoint.config
    if config is None or ctx.checkpoint.generation_config is None:
        return None
    stops = ctx.stop_ids()
    if not stops:
        return None
    ids = as_ids(config.get("eos_token_id"))
    if not ids:
        return f"eos_token_id is not set; generation_config.json stops on {ctx.names(stops)}"
    stray = [i for i in ids if i not in stops]
    if stray:
        return _stray_message(ctx, ids, stray, stops)
    eos = ctx.tokenizer_eos() if ctx.checkpoint.has_tokenizer() else None
    if eos is not None and eos[1] not in ids:
        return (
            f"eos_token_id {ctx.names(ids)} lacks the tokenizer EOS {eos[0]} ({eos[1]}): "
            "servers that read config.json will not stop"
        )
    return None


def _stray_message(ctx: Context, ids: list[int], stray: list[int], stops: list[int]) -> str:
    """Names the ids that are not stop tokens once: all of ``eos_token_id``, or which of it."""
    verb = "is not a stop token" if len(stray) == 1 else "are not stop tokens"
    where = f"of generation_config.json, which stops on {ctx.names(stops)}"
    if stray == ids:
        return f"eos_token_id {ctx.names(ids)} {verb} {where}"
    return f"eos_token_id {ctx.names(ids)}: {ctx.names(stray)} {verb} {where}"


def check(ctx: Context) -> Iterator[Problem]:
    message = _problem(ctx)
    if message:
        yield Problem(message, FILE, "run `r1release fix` to copy the stop tokens")


def fix(ctx: Context) -> None:
    if _problem(ctx) is None:
        return
    doc = ctx.edit(FILE)
    doc["eos_token_id"] = as_value(ctx.stop_ids(), doc.get("eos_token_id"))


RULE = Rule(
    id="R104",
    name="config-eos-consistency",
    severity=Severity.ERROR,
    description="config.json's eos_token_id agrees with generation_config.json",
    check=check,
    fix=fix,
    inapplicable=needs_file("config.json"),
)

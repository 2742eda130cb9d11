"""eos-alignment: the tokenizer's EOS is a stop token of ``generation_config.json``.

Passes: Qwen2.5-7B-Instruct (EOS ``<|im_end|>`` 151645, stop tokens ``[151645, 151643]``).
Fails: Qwen2.5 base after ChatML SFT (EOS 151645, stop token ``151643``): the model ends its
turn with ``<|im_end|>`` and generation never stops.

Without ``generation_config.json``, transformers stops on ``config.json``'s
``eos_token_id`` (``GenerationConfig.from_model_config``): that is checked instead, and
generation-config warns that the file is missing.

Fix: put the tokenizer's EOS first and keep every other stop token (never collapse a list to
one id). A missing ``generation_config.json`` is created from ``config.json``, as
generation-config's fix does.
"""

from __future__ import annotations

from collections.abc import Iterator

from r1release.findings import Severity
from r1release.rules import generation_config
from r1release.rules.adapter_config import needs_file
from r1release.rules.base import Context, Problem, Rule, as_ids, as_value, with_first

FILE = "generation_config.json"


def check(ctx: Context) -> Iterator[Problem]:
    if not ctx.checkpoint.has_tokenizer():
        return
    eos = ctx.tokenizer_eos()
    if eos is None:
        return  # the tokenizer rule reports a tokenizer without EOS
    token, token_id = eos
    if ctx.checkpoint.generation_config is None:
        yield from _check_model_config(ctx, token, token_id)
        return
    stops = ctx.stop_ids()
    if token_id not in stops:
        yield Problem(
            f"tokenizer EOS {token} ({token_id}) is not a stop token; stop tokens are "
            f"{ctx.names(stops) if stops else 'not set'}: generation will not stop",
            FILE,
            f"run `r1release fix` (sets eos_token_id to {with_first(stops, token_id)})",
        )


def _check_model_config(ctx: Context, token: str, token_id: int) -> Iterator[Problem]:
    """Without the file, what transformers stops on: ``config.json``'s ``eos_token_id``."""
    config = ctx.checkpoint.config or {}
    stops = generation_config.generate_stop_ids(ctx)
    if token_id in stops:
        return
    held = f"is {ctx.names(stops)}" if stops else "is not set"
    yield Problem(
        f"{FILE} is missing, so generate() stops on config.json's eos_token_id, which {held} "
        f"and lacks the tokenizer EOS {token} ({token_id}): generation will not stop",
        FILE,
        "run `r1release fix` to create it (eos_token_id "
        f"{generation_config.stop_ids(ctx, config)})",
    )


def fix(ctx: Context) -> None:
    eos = ctx.tokenizer_eos()
    if eos is None:
        return
    if ctx.checkpoint.generation_config is None:
        generation_config.create(ctx)
        return
    doc = ctx.edit(FILE)
    current = doc.get("eos_token_id")
    doc["eos_token_id"] = as_value(with_first(as_ids(current), eos[1]), current)


RULE = Rule(
    id="R101",
    name="eos-alignment",
    severity=Severity.ERROR,
    description="the tokenizer's EOS is a stop token in generation_config.json",
    check=check,
    fix=fix,
    inapplicable=needs_file("generation_config.json"),
)

"""pad-not-stop: a dedicated padding token is not a stop token.

A pad token such as ``<pad>``, ``[PAD]`` or ``<|finetune_right_pad_id|>`` in the stop list
makes a model that pads stop at once and return empty outputs (transformers #48016).

Silent when the pad token is itself an end token: Qwen2.5-Instruct pads with
``<|endoftext|>`` (151643), which is in its official stop list ``[151645, 151643]``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from r1release.findings import Severity
from r1release.rules.base import Context, Problem, Rule, as_ids

END_TOKENS = frozenset({
    "<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>", "<|end|>", "<|eot_id|>", "<|im_end|>",
    "<end_of_turn>", "<|eom_id|>", "<｜end▁of▁sentence｜>", "<|return|>",
})  # fmt: skip


def _is_end_token(token: str | None) -> bool:
    if token is None:
        return False
    lowered = token.lower()
    return token in END_TOKENS or ("end" in lowered and "pad" not in lowered)


def check(ctx: Context) -> Iterator[Problem]:
    ckpt = ctx.checkpoint
    stops = set(ctx.stop_ids())
    if not stops:
        return
    pads: dict[int, str] = {}
    for name in ("generation_config.json", "config.json"):
        for pad_id in as_ids((ckpt.json(name) or {}).get("pad_token_id")):
            pads.setdefault(pad_id, name)
    eos_id = None
    if ckpt.has_tokenizer():
        tok = ckpt.tokenizer()
        eos_id = tok.eos_token_id
        if tok.pad_token_id is not None:
            pads.setdefault(int(tok.pad_token_id), "tokenizer_config.json")
    for pad_id, source in sorted(pads.items()):
        if pad_id not in stops or pad_id == eos_id:
            continue
        token = None
        if ckpt.has_tokenizer():
            with contextlib.suppress(OverflowError):  # an id outside the tokenizer's range
                token = ckpt.tokenizer().convert_ids_to_tokens(pad_id)
        if _is_end_token(token):
            continue
        yield Problem(
            f"padding token {ctx.token_name(pad_id)} (from {source}) is a stop token: padded "
            "generations end at once with empty output",
            "generation_config.json",
            "remove it from eos_token_id, or pad with an end-of-text token",
        )


RULE = Rule(
    id="R103",
    name="pad-not-stop",
    severity=Severity.WARNING,
    description="a dedicated padding token is not a stop token",
    check=check,
)

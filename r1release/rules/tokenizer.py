"""tokenizer: the tokenizer loads, has an EOS token, and fits the embedding matrix.

The tokenizer is loaded with transformers' ``PreTrainedTokenizerFast`` (no torch). Its
largest token id must be below ``config.json``'s ``vocab_size``, or generation indexes past
the embeddings.

Fails: no ``tokenizer.json``; a tokenizer without ``eos_token``; ids up to 151645 with
``vocab_size: 151000``.
"""

from __future__ import annotations

from collections.abc import Iterator

from r1release.checkpoint import TokenizerError
from r1release.findings import Severity
from r1release.rules.base import Context, Problem, Rule


def check(ctx: Context) -> Iterator[Problem]:
    ckpt = ctx.checkpoint
    if not ckpt.has_tokenizer():
        yield Problem(
            "no tokenizer files (tokenizer.json, tokenizer_config.json)",
            "tokenizer.json",
            "save the tokenizer next to the model",
        )
        return
    try:
        tok = ckpt.tokenizer()
    except TokenizerError as exc:
        yield Problem(exc.reason, exc.file, "re-save the tokenizer with save_pretrained")
        return
    if tok.eos_token is None or tok.eos_token_id is None:
        yield Problem(
            "the tokenizer has no eos_token: nothing marks the end of an answer",
            "tokenizer_config.json",
            "set eos_token in tokenizer_config.json",
        )
    config = ckpt.config or {}
    vocab_size = config.get("vocab_size")
    if vocab_size is None and isinstance(config.get("text_config"), dict):
        vocab_size = config["text_config"].get("vocab_size")
    if isinstance(vocab_size, int) and not isinstance(vocab_size, bool):
        largest = max(tok.get_vocab().values(), default=-1)
        if largest >= vocab_size:
            yield Problem(
                f"the tokenizer has token id {largest} but config.json vocab_size is "
                f"{vocab_size}: those tokens have no embedding",
                "config.json",
                "resize the token embeddings before saving",
            )


RULE = Rule(
    id="R401",
    name="tokenizer",
    severity=Severity.ERROR,
    description="the tokenizer loads, defines EOS and fits vocab_size",
    check=check,
)

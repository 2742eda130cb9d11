"""generation-config: the checkpoint has a ``generation_config.json``.

Without one, transformers derives the generation config from ``config.json``
(``GenerationConfig.from_model_config``: its ``eos_token_id``, ``bos_token_id``,
``pad_token_id``, ``use_cache``, ...), so ``generate()`` still stops where ``config.json``
says; eos-alignment reports the error when that is not on the tokenizer's EOS. Serving
engines (vLLM, SGLang, TGI) read their stop tokens and sampling defaults from the file, so
its absence is a warning.

Passes: any checkpoint with the file. Warns: a checkpoint saved without it.
Fix: write it as ``from_model_config`` builds it from ``config.json`` (the generation
settings it holds, ``text_config``'s where the top level has none), with ``eos_token_id``
holding ``config.json``'s stop tokens (the tokenizer's EOS first where they lack it) and
the chat template's turn end. ``transformers_version`` is ``config.json``'s, so the file
depends on the checkpoint alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from r1release.errors import FileUnreadable
from r1release.findings import Severity
from r1release.rules.adapter_config import needs_file
from r1release.rules.base import Context, Problem, Rule, as_ids, as_value, with_first

FILE = "generation_config.json"

# GenerationConfig's attributes in transformers 5.24 (its to_dict() less the metadata
# fields): what from_model_config copies from config.json. tests/rules check it against the
# installed transformers.
GENERATION_KEYS = frozenset({
    "assistant_confidence_threshold", "assistant_early_exit", "assistant_ensemble_weight",
    "assistant_lookbehind", "bad_words_ids", "begin_suppress_tokens", "bos_token_id",
    "cache_config", "cache_implementation", "compile_config", "constraints",
    "continuous_batching_config", "decoder_start_token_id", "disable_compile",
    "diversity_penalty", "do_sample", "dola_layers", "early_stopping",
    "encoder_no_repeat_ngram_size", "encoder_repetition_penalty", "eos_token_id",
    "epsilon_cutoff", "eta_cutoff", "exponential_decay_length_penalty", "force_words_ids",
    "forced_bos_token_id", "forced_eos_token_id", "guidance_scale", "is_assistant",
    "length_penalty", "low_memory", "max_cache_len", "max_length", "max_matching_ngram_size",
    "max_new_tokens", "max_time", "min_length", "min_new_tokens", "min_p",
    "no_repeat_ngram_size", "num_assistant_tokens", "num_assistant_tokens_schedule",
    "num_beam_groups", "num_beams", "num_return_sequences", "output_attentions",
    "output_hidden_states", "output_logits", "output_scores", "pad_token_id", "penalty_alpha",
    "prefill_chunk_size", "prompt_lookup_num_tokens", "remove_invalid_values",
    "renormalize_logits", "repetition_penalty", "return_dict_in_generate", "sequence_bias",
    "speculation_type", "stop_strings", "suppress_tokens", "target_lookbehind", "temperature",
    "token_healing", "top_h", "top_k", "top_p", "typical_p", "use_cache", "use_mtp",
    "watermarking_config",
})  # fmt: skip
_SUB_CONFIGS = ("decoder", "generator", "text_config")  # from_model_config's order
_OUTPUT_FLAGS = ("output_attentions", "output_hidden_states", "output_scores", "output_logits")


def missing(ctx: Context) -> bool:
    """Whether the file is absent: not a FIFO or a link that the paths rule reports, and not
    already created in memory (a staged fix)."""
    ckpt = ctx.checkpoint
    if ckpt.generation_config is not None or FILE in ckpt.special:
        return False
    return not os.path.lexists(ckpt.root / FILE)


def generate_stop_ids(ctx: Context) -> list[int]:
    """What ``generate()`` stops on: ``generation_config.json``'s ``eos_token_id``, or
    without the file ``config.json``'s (transformers derives the one from the other)."""
    if ctx.checkpoint.generation_config is not None:
        return ctx.stop_ids()
    return as_ids((ctx.checkpoint.config or {}).get("eos_token_id"))


def from_model_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """What ``GenerationConfig.from_model_config(config.json's dict)`` saves, less its
    metadata: the generation settings set (not null) at the top level, then those of the
    first sub-config it looks at; ``return_dict_in_generate`` when an ``output_*`` flag is on."""
    doc = {k: v for k, v in config.items() if k in GENERATION_KEYS and v is not None}
    sub = next((config[name] for name in _SUB_CONFIGS if config.get(name)), None)
    if isinstance(sub, dict):
        for key, value in sub.items():
            if key in GENERATION_KEYS and doc.get(key) is None and value is not None:
                doc[key] = value
    if not doc.get("return_dict_in_generate") and any(doc.get(f) for f in _OUTPUT_FLAGS):
        doc["return_dict_in_generate"] = True
    return doc


def stop_ids(ctx: Context, config: Mapping[str, Any]) -> list[int]:
    """The stop tokens the written file gets: ``config.json``'s (the tokenizer's EOS put first
    where they lack it, as eos-alignment's fix does), then the chat template's turn end."""
    ids = as_ids(config.get("eos_token_id"))
    if not ctx.checkpoint.has_tokenizer():
        return ids
    eos = ctx.tokenizer_eos()
    if eos is not None and eos[1] not in ids:
        ids = with_first(ids, eos[1])
    try:
        turn_end = ctx.checkpoint.turn_end_ids() if ctx.checkpoint.chat_template() else ()
    except FileUnreadable:  # the chat-template rule reports a template that does not render
        turn_end = ()
    return [*ids, *(i for i in turn_end if i not in ids)]


def create(ctx: Context) -> None:
    """Install the generation config built from ``config.json`` (in memory, as fixes do)."""
    config = ctx.checkpoint.config or {}
    doc = from_model_config(config)
    ids = stop_ids(ctx, config)
    if ids:
        doc["eos_token_id"] = as_value(ids, config.get("eos_token_id"))
    if isinstance(config.get("transformers_version"), str):
        doc["transformers_version"] = config["transformers_version"]
    ctx.edit(FILE).update(dict(sorted(doc.items())))  # sorted, as transformers writes it


def check(ctx: Context) -> Iterator[Problem]:
    if not missing(ctx):
        return
    ids = stop_ids(ctx, ctx.checkpoint.config or {})
    stops = f" (stop tokens {ctx.names(ids)})" if ids else ""
    yield Problem(
        f"missing {FILE}: serving engines read stop tokens and sampling defaults from it",
        FILE,
        f"run `r1release fix` to write it from config.json{stops}",
    )


def fix(ctx: Context) -> None:
    if missing(ctx):
        create(ctx)


RULE = Rule(
    id="R105",
    name="generation-config",
    severity=Severity.WARNING,
    description="generation_config.json exists (serving engines read their stop tokens from it)",
    check=check,
    fix=fix,
    inapplicable=needs_file("generation_config.json"),
)

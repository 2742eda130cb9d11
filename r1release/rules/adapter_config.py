"""adapter-config: an adapter's ``adapter_config.json`` names a known PEFT method and its base.

A checkpoint with ``adapter_config.json`` is an adapter (peft's ``save_pretrained``).
``PeftModel.from_pretrained`` picks the tuner from ``peft_type`` and a loader finds the base
model through ``base_model_name_or_path``; the Hub derives the adapter relation from the
card's ``base_model``, so the release's ``base_model`` (release.yaml) and the adapter's must
name the same model.

Fails: ``peft_type`` missing or not one of peft 0.21's ``PeftType`` values (``"LORRA"``);
``peft_type: ["LORA"]`` (not a string); ``base_model_name_or_path`` missing or empty;
``base_model: Qwen/Qwen2.5-7B`` in release.yaml
for an adapter trained on ``Qwen/Qwen2.5-0.5B`` (compared when the card is rendered, that is
when the release's model is known, and only when the adapter names a Hub id: a base loaded
from a local copy records its path, which names no Hub model).

Also here: why the rules that need a full model's files skip an adapter that does not carry
them (:func:`needs_file`), naming the base model the release then relies on. Every value
from an adapter's files is untrusted text: a finding or a skip reason shows it through
:func:`r1release.adapters.named`, on one bounded line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import yaml

from r1release.adapters import NAME_LIMIT, named
from r1release.checkpoint import ADAPTER, ADAPTER_CONFIG, MODEL, Checkpoint
from r1release.config import shown
from r1release.errors import FileUnreadable
from r1release.findings import Severity
from r1release.rules.base import Context, Problem, Rule

# peft 0.21's PeftType values (peft/utils/peft_types.py); tests/rules check them against
# the installed peft.
PEFT_TYPES = frozenset({
    "PROMPT_TUNING", "MULTITASK_PROMPT_TUNING", "P_TUNING", "PREFIX_TUNING", "LORA",
    "ADALORA", "ADAMSS", "BOFT", "ADAPTION_PROMPT", "BEFT", "LILY", "LOHA", "LOKR", "OFT",
    "POLY", "LN_TUNING", "VERA", "FROD", "PVERA", "FOURIERFT", "GLORA", "XLORA", "HRA",
    "VBLORA", "UNILORA", "CPT", "MISS", "RANDLORA", "ROAD", "TRAINABLE_TOKENS", "HIRA",
    "SHIRA", "WAVEFT", "OSF", "DELORA", "GRALORA", "CARTRIDGE", "TINYLORA", "PSOFT", "PEANUT",
    "SHADOW", "SUPERTUNING", "DEFT",
})  # fmt: skip
_RESAVE = "save the adapter with peft's save_pretrained (trainer.save_model does)"


def adapter_only(checkpoint: Checkpoint) -> str | None:
    """Why an adapter rule skips ``checkpoint``: it is a full model."""
    if checkpoint.kind == MODEL:
        return f"not an adapter (no {ADAPTER_CONFIG})"
    return None


def needs_file(name: str) -> Callable[[Checkpoint], str | None]:
    """For a rule that checks ``name``: why it skips an adapter that does not carry the
    file. Generation then runs on the base model's: say which, as what the release relies
    on."""

    def reason(checkpoint: Checkpoint) -> str | None:
        if checkpoint.kind != ADAPTER or checkpoint.exists(name):
            return None
        base = base_model_label(checkpoint)
        return f"an adapter without {name}: {base}'s applies, which the release relies on"

    return reason


def not_on_adapter(why: str) -> Callable[[Checkpoint], str | None]:
    """For a rule that checks a full model's weights: ``why`` it skips any adapter."""
    return lambda checkpoint: why if checkpoint.kind == ADAPTER else None


def base_model_label(checkpoint: Checkpoint) -> str:
    """The base model as a message names it: ``base model Qwen/Qwen2.5-0.5B``."""
    try:
        config = checkpoint.adapter_config or {}
    except FileUnreadable:  # json-files reports it
        config = {}
    name = config.get("base_model_name_or_path")
    return f"the base model {named(name)}" if isinstance(name, str) and name else "the base model"


def check(ctx: Context) -> Iterator[Problem]:
    config = ctx.checkpoint.adapter_config
    if config is None:
        return
    yield from _peft_type(config)
    base = config.get("base_model_name_or_path")
    if not isinstance(base, str) or not base.strip():
        yield Problem(
            "base_model_name_or_path is not set: neither a loader nor the Hub can tell which "
            "model this adapter applies to",
            ADAPTER_CONFIG,
            "set it to the base model's Hub id (PeftModel records what the base was loaded from)",
        )
        return
    released = _card_base_model(ctx.card)
    if released is not None and released != base and not _local(base, ctx.checkpoint):
        yield Problem(
            f"base_model_name_or_path is {shown(base, NAME_LIMIT)} but the release's "
            f"base_model is {shown(released, NAME_LIMIT)}: the card would name another model "
            "than the one the adapter applies to",
            ADAPTER_CONFIG,
            "make base_model in release.yaml and the adapter's base_model_name_or_path agree",
        )


def _local(base: str, checkpoint: Checkpoint) -> bool:
    """Whether ``base`` is a path on this machine (a base loaded from a local copy): it
    names no Hub model, so there is nothing to compare with release.yaml's Hub id."""
    from r1release.config import local_path_reason

    return local_path_reason(base, checkpoint.root) is not None


def _peft_type(config: dict[str, Any]) -> Iterator[Problem]:
    peft_type = config.get("peft_type")
    if peft_type is None:
        yield Problem(
            "peft_type is not set: peft cannot tell the adapter's method", ADAPTER_CONFIG, _RESAVE
        )
    elif not isinstance(peft_type, str):
        yield Problem(
            f"peft_type is {shown(peft_type)}, not a string: peft cannot tell the adapter's method",
            ADAPTER_CONFIG,
            f"set it to one of peft's PeftType values (LORA, ...); {_RESAVE}",
        )
    elif peft_type not in PEFT_TYPES:
        yield Problem(
            f"peft_type {shown(peft_type)} is not a PEFT method peft 0.21 knows",
            ADAPTER_CONFIG,
            f"use one of peft's PeftType values (LORA, ...); {_RESAVE}",
        )


def _card_base_model(card: str | None) -> str | None:
    """The rendered card's ``base_model``: release.yaml's, as the release publishes it."""
    if not card or not card.startswith("---\n"):
        return None
    block = card[4:].split("\n---", 1)[0]
    try:
        meta = yaml.safe_load(block)
    except yaml.YAMLError:  # card-metadata reports it
        return None
    base = meta.get("base_model") if isinstance(meta, dict) else None
    return base if isinstance(base, str) else None


RULE = Rule(
    id="R801",
    name="adapter-config",
    severity=Severity.ERROR,
    description="an adapter's config names a known PEFT method and the release's base model",
    check=check,
    inapplicable=adapter_only,
)

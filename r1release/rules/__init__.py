"""The rule registry: one explicit list, in the order rules run and fixes apply.

Fixes run in this order, so the EOS fixes settle ``generation_config.json`` before
config-eos-consistency copies its stop list into ``config.json``.
"""

from __future__ import annotations

from r1release.rules import (
    adapter_config,
    adapter_tensors,
    card_metadata,
    chat_template,
    chat_template_stop,
    config_eos_consistency,
    eos_alignment,
    expected_tensors,
    finite_weights,
    generation_config,
    generation_use_cache,
    json_files,
    leftovers,
    pad_not_stop,
    paths,
    safetensors_header,
    shard_index,
    sharded_save,
    smoke_generate,
    tokenizer,
    use_cache,
    weights_format,
)
from r1release.rules.base import Context, Need, Option, Problem, Rule

RULES: tuple[Rule, ...] = (
    json_files.RULE,
    paths.RULE,
    sharded_save.RULE,
    tokenizer.RULE,
    chat_template.RULE,
    generation_config.RULE,
    eos_alignment.RULE,
    chat_template_stop.RULE,
    config_eos_consistency.RULE,
    pad_not_stop.RULE,
    use_cache.RULE,
    generation_use_cache.RULE,
    weights_format.RULE,
    safetensors_header.RULE,
    shard_index.RULE,
    finite_weights.RULE,
    expected_tensors.RULE,
    adapter_config.RULE,
    adapter_tensors.RULE,
    leftovers.RULE,
    card_metadata.RULE,
    smoke_generate.RULE,
)
REGISTRY: dict[str, Rule] = {rule.name: rule for rule in RULES}

__all__ = ["REGISTRY", "RULES", "Context", "Need", "Option", "Problem", "Rule"]

"""Tiny LoRA adapter checkpoints as peft 0.21 saves them, written without torch.

``adapter_config.json`` with the keys the rules read (the rest of peft's keys do not change
the layout) and ``adapter_model.safetensors`` with peft's tensor names:
``base_model.model.<module>.lora_A.weight`` ``[r, in]`` and ``.lora_B.weight`` ``[out, r]``,
the shapes of tests/factory.py's tiny Qwen2 (hidden 16, intermediate 32, one KV head of 8).
tests/test_adapters.py checks the layout against a real peft save.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from factory import build_checkpoint, real_cases, safetensors_bytes

PREFIX = "base_model.model."
# [out, in] of tests/factory.py tiny_qwen2's projections
PROJECTIONS = {
    "self_attn.q_proj": (16, 16),
    "self_attn.k_proj": (8, 16),
    "self_attn.v_proj": (8, 16),
    "self_attn.o_proj": (16, 16),
    "mlp.gate_proj": (32, 16),
    "mlp.up_proj": (32, 16),
    "mlp.down_proj": (16, 32),
}
BASE = "Qwen/Qwen2.5-0.5B"


def f32(shape: tuple[int, ...]) -> tuple[str, tuple[int, ...], bytes]:
    return ("F32", shape, np.zeros(int(np.prod(shape)), dtype="<f4").tobytes())


def lora_tensors(
    targets: Iterable[str] = ("q_proj", "v_proj"), layers: int = 2, r: int = 4
) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    """peft's tensors for ``targets`` (short names) in each of ``layers`` layers."""
    tensors = {}
    for layer in range(layers):
        for path, (out, inp) in PROJECTIONS.items():
            if path.rsplit(".", 1)[-1] not in targets:
                continue
            module = f"{PREFIX}model.layers.{layer}.{path}"
            tensors[f"{module}.lora_A.weight"] = f32((r, inp))
            tensors[f"{module}.lora_B.weight"] = f32((out, r))
    return tensors


def write_adapter(
    root: Path,
    *,
    tensors: Mapping[str, tuple[str, tuple[int, ...], bytes]] | None = None,
    tokenizer: bool = True,
    **config: Any,
) -> Path:
    """An adapter directory: config (``config`` overrides peft's defaults), weights, and the
    tokenizer files trainer.save_model writes beside them."""
    root.mkdir(parents=True, exist_ok=True)
    if tokenizer:
        source = build_checkpoint(
            root.parent / f"{root.name}-source", real_cases()["qwen2.5-base-after-chatml-sft"]
        )
        for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
            (root / name).write_bytes((source / name).read_bytes())
    doc = {
        "base_model_name_or_path": BASE,
        "bias": "none",
        "fan_in_fan_out": False,
        "layers_to_transform": None,
        "lora_alpha": 8,
        "modules_to_save": None,
        "peft_type": "LORA",
        "peft_version": "0.21.2",
        "r": 4,
        "rank_pattern": {},
        "target_modules": ["q_proj", "v_proj"],
        "task_type": "CAUSAL_LM",
    } | config
    (root / "adapter_config.json").write_text(json.dumps(doc, indent=2) + "\n")
    weights = lora_tensors() if tensors is None else tensors
    (root / "adapter_model.safetensors").write_bytes(safetensors_bytes(weights, {"format": "pt"}))
    return root

"""Real-size checkpoints for the benchmarks, built on the test factory (``tests/factory.py``).

Every layout here is one transformers would build from its ``config.json``: the tensor names
and shapes are ``factory.tensor_shapes(config)`` (checked against the state-dict order
below), so ``expected-tensors`` has nothing to say about them. The tokenizer, chat template
and special tokens are the factory's real cases.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from common import factory

MAX_SHARD_5GB = 5 * 10**9  # huggingface_hub parses "5GB" as 5 * 10**9 bytes

# ----------------------------------------------------------------------------- real configs

QWEN25_7B_INSTRUCT: dict[str, Any] = {
    "architectures": ["Qwen2ForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "hidden_act": "silu",
    "hidden_size": 3584,
    "initializer_range": 0.02,
    "intermediate_size": 18944,
    "max_position_embeddings": 32768,
    "max_window_layers": 28,
    "model_type": "qwen2",
    "num_attention_heads": 28,
    "num_hidden_layers": 28,
    "num_key_value_heads": 4,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 131072,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.43.1",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 152064,
}

LLAMA31_70B_INSTRUCT: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009],
    "hidden_act": "silu",
    "hidden_size": 8192,
    "initializer_range": 0.02,
    "intermediate_size": 28672,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": 64,
    "num_hidden_layers": 80,
    "num_key_value_heads": 8,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 8.0,
        "high_freq_factor": 4.0,
        "low_freq_factor": 1.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.42.3",
    "use_cache": True,
    "vocab_size": 128256,
}

QWEN25_1_5B_INSTRUCT: dict[str, Any] = {
    "architectures": ["Qwen2ForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "hidden_act": "silu",
    "hidden_size": 1536,
    "initializer_range": 0.02,
    "intermediate_size": 8960,
    "max_position_embeddings": 32768,
    "max_window_layers": 21,
    "model_type": "qwen2",
    "num_attention_heads": 12,
    "num_hidden_layers": 28,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 32768,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.43.1",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 151936,
}

CASES = factory.real_cases()
QWEN_CASE = CASES["qwen2.5-7b-instruct"]
LLAMA_CASE = CASES["llama-3.1-8b-instruct"]  # Llama 3.1 70B Instruct has the same tokens

Shapes = list[tuple[str, tuple[int, ...]]]


def state_dict_shapes(config: Mapping[str, Any]) -> Shapes:
    """``factory.tensor_shapes(config)`` in ``model.state_dict()`` order (registration order),
    which is the order transformers' sharding walks."""
    shapes = factory.tensor_shapes(config)
    order = ["self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight"]
    order += ["self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias"]
    order += ["self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight"]
    order += ["mlp.down_proj.weight", "input_layernorm.weight", "post_attention_layernorm.weight"]
    names = ["model.embed_tokens.weight"]
    for i in range(config["num_hidden_layers"]):
        names += [f"model.layers.{i}.{n}" for n in order if f"model.layers.{i}.{n}" in shapes]
    names += ["model.norm.weight", "lm_head.weight"]
    out = [(n, shapes[n]) for n in names if n in shapes]
    assert len(out) == len(shapes), "state-dict order misses tensors of tests/factory"
    return out


def split_shards(tensors: Shapes, max_bytes: int, itemsize: int = 2) -> list[Shapes]:
    """huggingface_hub's ``split_state_dict_into_shards_factory`` (used by save_pretrained)."""
    shards: list[Shapes] = []
    current: Shapes = []
    size = 0
    for name, shape in tensors:
        nbytes = math.prod(shape) * itemsize
        if nbytes > max_bytes:  # a tensor larger than the limit gets a shard of its own
            shards.append([(name, shape)])
            continue
        if size + nbytes > max_bytes:
            shards.append(current)
            current, size = [], 0
        current.append((name, shape))
        size += nbytes
    if current:
        shards.append(current)
    return shards


# ----------------------------------------------------------------------------- writers

Filler = Callable[[str, tuple[int, ...]], np.ndarray]


def write_safetensors(path: Path, tensors: Shapes, fill: Filler | None = None) -> int:
    """Write a bf16 safetensors file like the safetensors library does.

    safetensors orders the data by (dtype, name), pads the JSON header with spaces to a
    multiple of 8 and puts ``__metadata__`` first. Without ``fill`` the data section is sparse
    (all-zero bf16, no disk used); ``fill`` streams each tensor, so memory stays one tensor.
    Returns the bytes of tensor data.
    """
    ordered = sorted(tensors, key=lambda t: t[0])
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in ordered:
        nbytes = math.prod(shape) * 2
        header[name] = {
            "dtype": "BF16",
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)) + text)
        if fill is None:
            fh.truncate(8 + len(text) + offset)
        else:
            for name, shape in ordered:
                fill(name, shape).astype("<u2", copy=False).tofile(fh)
    return offset


def data_offsets(shards: list[Shapes]) -> dict[str, int]:
    """Each tensor's offset in its file's data section, as :func:`write_safetensors` lays it."""
    begins: dict[str, int] = {}
    for group in shards:
        offset = 0
        for name, shape in sorted(group):
            begins[name] = offset
            offset += 2 * math.prod(shape)
    return begins


def write_metadata(root: Path, config: Mapping[str, Any], case: Mapping[str, Any]) -> None:
    """config.json, generation_config.json, the factory's real tokenizer for ``case``, its
    tokenizer_config.json and chat template: what ``factory.build_checkpoint`` writes, for a
    real-size ``config``."""
    factory.write_json(root / "config.json", dict(config), sort_keys=True)
    factory.write_json(root / "generation_config.json", case["generation_config"], sort_keys=True)
    tok = case["tokenizer"]
    (root / "tokenizer.json").write_text(json.dumps(factory.tokenizer_json(tok["special_ids"])))
    factory.write_json(
        root / "tokenizer_config.json",
        {
            "bos_token": tok["bos_token"],
            "eos_token": tok["eos_token"],
            "pad_token": tok["pad_token"],
            "model_max_length": config["max_position_embeddings"],
            "tokenizer_class": "PreTrainedTokenizerFast",
        },
    )
    (root / "chat_template.jinja").write_text(factory.TEMPLATES[tok["chat_template"].split(":")[0]])


def build_layout(
    root: Path,
    config: Mapping[str, Any],
    case: Mapping[str, Any],
    *,
    max_shard: int = MAX_SHARD_5GB,
    fill: Filler | None = None,
) -> dict[str, Any]:
    """A checkpoint with ``config``'s real tensor layout, sharded like ``save_pretrained``
    (``max_shard`` bytes per shard, index with ``sort_keys=True``). Sparse without ``fill``."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    write_metadata(root, config, case)
    tensors = state_dict_shapes(config)
    shards = split_shards(tensors, max_shard)
    n = len(shards)
    weight_map: dict[str, str] = {}
    total = 0
    for i, group in enumerate(shards, start=1):
        file = f"model-{i:05d}-of-{n:05d}.safetensors" if n > 1 else "model.safetensors"
        total += write_safetensors(root / file, group, fill)
        weight_map.update((name, file) for name, _ in group)
    params = sum(math.prod(s) for _, s in tensors)
    if n > 1:
        factory.write_json(
            root / "model.safetensors.index.json",
            {
                "metadata": {"total_parameters": params, "total_size": total},
                "weight_map": weight_map,
            },
            sort_keys=True,  # transformers writes the index with sort_keys=True
        )
    files = [p for p in root.iterdir() if p.is_file()]
    return {
        "shards": n,
        "tensors": len(tensors),
        "params": params,
        "weight_bytes": sum(p.stat().st_size for p in files if p.suffix == ".safetensors"),
        "apparent": sum(p.stat().st_size for p in files),
        "disk": sum(p.stat().st_blocks * 512 for p in files),
        "weight_map": weight_map,
        "shard_tensors": shards,
    }


def random_bf16(seed: int) -> Filler:
    """Finite random bf16 (uniform bits with the exponent's top bit cleared), one tensor at a
    time: fast enough for gigabytes, and incompressible like real weights."""
    rng = np.random.default_rng(seed)

    def fill(name: str, shape: tuple[int, ...]) -> np.ndarray:
        bits = np.frombuffer(rng.bytes(2 * math.prod(shape)), dtype="<u2").copy()
        bits &= 0xBFFF
        return bits

    return fill


def age(root: Path, seconds: float = 3600.0) -> None:
    """Set the mtime of ``root`` (a file, or every file under it) back: the digest cache
    trusts only files older than 2 s (git's racy-clean rule), as on a runner some time after
    training saved. (It also sets their ctime to now, which a digest entry keys on.)"""
    when = time.time() - seconds
    for p in root.rglob("*") if root.is_dir() else [root]:
        if p.is_file():
            os.utime(p, (when, when))

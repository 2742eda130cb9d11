"""Builders for tiny but real checkpoints.

A real ``tokenizers`` tokenizer whose special tokens carry the real models' ids, a chat
template, and bf16 safetensors shards with transformers' tensor names, shapes and index —
only the hidden size is tiny. Also a small safetensors writer for crafting broken files.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures" / "real_model_configs.json"
VENDORED_FIXTURES = Path(__file__).parent / "data" / "real_model_configs.json"

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}"
    "<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
TEMPLATES = {"chatml": CHATML, "llama3": LLAMA3}

HIDDEN, HEADS, KV_HEADS, INTERMEDIATE, LAYERS = 8, 2, 1, 16, 1


def real_cases() -> dict[str, dict[str, Any]]:
    """The three real models' special-token settings, by name."""
    source = SHARED_FIXTURES if SHARED_FIXTURES.exists() else VENDORED_FIXTURES
    data = json.loads(source.read_text())
    return {case["name"]: case for case in data["cases"]}


def tokenizer_json(special_ids: Mapping[str, int], words: int = 64) -> dict[str, Any]:
    """A real WordLevel tokenizer (built with ``tokenizers``) with fixed special-token ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {f"w{i}": i for i in range(words)}
    vocab["[UNK]"] = words
    vocab.update(special_ids)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    doc = json.loads(tok.to_str())
    doc["added_tokens"] = [
        {
            "id": i,
            "content": c,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for c, i in sorted(special_ids.items(), key=lambda kv: kv[1])
    ]
    return doc


def tensor_shapes(config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """transformers' state-dict names and shapes for a Qwen2 / Llama config."""
    h, v = config["hidden_size"], config["vocab_size"]
    head_dim = h // config["num_attention_heads"]
    kv = config["num_key_value_heads"] * head_dim
    inter = config["intermediate_size"]
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (v, h)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes |= {
            p + "input_layernorm.weight": (h,),
            p + "post_attention_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (h, h),
            p + "self_attn.k_proj.weight": (kv, h),
            p + "self_attn.v_proj.weight": (kv, h),
            p + "self_attn.o_proj.weight": (h, h),
            p + "mlp.gate_proj.weight": (inter, h),
            p + "mlp.up_proj.weight": (inter, h),
            p + "mlp.down_proj.weight": (h, inter),
        }
        if config["model_type"] == "qwen2":
            shapes |= {
                p + "self_attn.q_proj.bias": (h,),
                p + "self_attn.k_proj.bias": (kv,),
                p + "self_attn.v_proj.bias": (kv,),
            }
    shapes["model.norm.weight"] = (h,)
    if not config.get("tie_word_embeddings", False):
        shapes["lm_head.weight"] = (v, h)
    return shapes


def bf16_bytes(shape: tuple[int, ...], seed: int = 0) -> bytes:
    """Finite bf16 values: the top half of float32 normals."""
    values = np.random.default_rng(seed).standard_normal(math.prod(shape), dtype=np.float32)
    return (values.view(np.uint32) >> 16).astype("<u2").tobytes()


def safetensors_bytes(
    tensors: Mapping[str, tuple[str, tuple[int, ...], bytes]],
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """Serialise ``{name: (dtype, shape, raw bytes)}`` as safetensors (header padded to 8)."""
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    offset, blobs = 0, []
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def write_json(path: Path, doc: Any, sort_keys: bool = False) -> None:
    path.write_text(json.dumps(doc, indent=2, sort_keys=sort_keys) + "\n")


def build_checkpoint(
    root: Path,
    case: Mapping[str, Any],
    *,
    shards: int = 2,
    chat_template: str | None = None,
    template_in_config: bool = False,
    tie_word_embeddings: bool = False,
) -> Path:
    """Write a tiny checkpoint with ``case``'s special-token settings into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    tok_case = case["tokenizer"]
    config = {
        "architectures": [
            "Qwen2ForCausalLM" if case["config"]["model_type"] == "qwen2" else "LlamaForCausalLM"
        ],
        "hidden_size": HIDDEN,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "max_position_embeddings": 64,
        "torch_dtype": "bfloat16",
        "tie_word_embeddings": tie_word_embeddings,
        "rms_norm_eps": 1e-6,
        "transformers_version": "4.57.1",
        **case["config"],
    }
    write_json(root / "config.json", config, sort_keys=True)
    write_json(root / "generation_config.json", case["generation_config"], sort_keys=True)
    (root / "tokenizer.json").write_text(json.dumps(tokenizer_json(tok_case["special_ids"])))
    tok_config: dict[str, Any] = {
        "eos_token": tok_case["eos_token"],
        "pad_token": tok_case["pad_token"],
        "bos_token": tok_case["bos_token"],
        "model_max_length": 131072,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    template = chat_template or TEMPLATES[tok_case["chat_template"].split(":")[0]]
    if template_in_config:
        tok_config["chat_template"] = template
    else:
        (root / "chat_template.jinja").write_text(template)
    write_json(root / "tokenizer_config.json", tok_config)
    write_weights(root, tensor_shapes(config), shards=shards)
    return root


def write_weights(root: Path, shapes: Mapping[str, tuple[int, ...]], shards: int = 2) -> None:
    """bf16 weights, sharded like transformers: ``model-0000i-of-0000n.safetensors`` + index."""
    names = list(shapes)
    groups = [names[i::shards] for i in range(shards)] if shards > 1 else [names]
    groups = [sorted(g, key=names.index) for g in groups]
    weight_map, total = {}, 0
    for i, group in enumerate(groups, start=1):
        file = "model.safetensors" if shards == 1 else f"model-{i:05d}-of-{shards:05d}.safetensors"
        tensors = {
            n: ("BF16", shapes[n], bf16_bytes(shapes[n], seed=j)) for j, n in enumerate(group)
        }
        (root / file).write_bytes(safetensors_bytes(tensors, {"format": "pt"}))
        for n in group:
            weight_map[n] = file
            total += len(tensors[n][2])
    if shards > 1:
        write_json(
            root / "model.safetensors.index.json",
            {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))},
        )


def tiny_qwen2(seed: int | None = 0, **overrides: Any) -> Any:
    """A real transformers ``Qwen2ForCausalLM`` with random weights, small enough for CPU tests:
    hidden size 16, one layer, two heads (one KV head), Qwen2.5's vocabulary size. ``overrides``
    go to ``Qwen2Config`` (num_hidden_layers, tie_word_embeddings, eos_token_id, ...)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    settings: dict[str, Any] = {
        "vocab_size": 151936,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
    }
    if seed is not None:
        torch.manual_seed(seed)
    return Qwen2ForCausalLM(Qwen2Config(**(settings | overrides)))

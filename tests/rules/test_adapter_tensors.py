"""adapter-tensors: LoRA tensors against target_modules, r and the base; nothing riding along.

Unmarked tests name a base that is nowhere on this machine (shapes alone, no torch); the
slow ones put the base's config.json in a local directory, as a base loaded from disk is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from adapter_factory import PREFIX, f32, lora_tensors, write_adapter

from r1release.checkpoint import Checkpoint

from factory import safetensors_bytes
from helpers import rule_findings

ABSENT = "org/not-on-this-machine"


def messages(path: Path, deep: bool = False) -> list[str]:
    return [f.message for f in rule_findings(path, "adapter-tensors", deep=deep)]


def adapter(tmp_path: Path, tensors=None, **config) -> Path:
    config.setdefault("base_model_name_or_path", ABSENT)
    return write_adapter(tmp_path / "a", tensors=tensors, tokenizer=False, **config)


def test_a_complete_adapter_passes(tmp_path):
    assert messages(adapter(tmp_path)) == []


def test_a_missing_target_module_is_named(tmp_path):
    path = adapter(tmp_path, lora_tensors(["q_proj"]))  # config targets q_proj and v_proj
    (message,) = messages(path)
    assert message.startswith("target module v_proj is in target_modules but the adapter has")


def test_a_target_module_missing_in_one_layer(tmp_path):
    tensors = lora_tensors()
    for key in [k for k in tensors if ".layers.1.self_attn.v_proj." in k]:
        del tensors[key]
    (message,) = messages(adapter(tmp_path, tensors))
    assert message == "target module v_proj has no LoRA tensors in layer(s) 1 of 2"


def test_all_linear_targets_are_full_paths(tmp_path):
    """peft saves "all-linear" as every linear module's full path, layer index included."""
    targets = [f"model.layers.{n}.self_attn.{m}" for n in (0, 1) for m in ("q_proj", "v_proj")]
    assert messages(adapter(tmp_path, target_modules=targets)) == []
    (message,) = messages(
        adapter(tmp_path, target_modules=[*targets, "model.layers.1.mlp.up_proj"])
    )
    assert message.startswith("target module model.layers.1.mlp.up_proj is in target_modules")


def test_layers_to_transform_says_which_layers(tmp_path):
    tensors = {k: v for k, v in lora_tensors().items() if ".layers.0." in k}
    assert messages(adapter(tmp_path, tensors, layers_to_transform=[0])) == []
    found = messages(adapter(tmp_path, tensors, layers_to_transform=[0, 1]))
    assert found == [
        f"target module {m} has no LoRA tensors in layer(s) 1 of 2" for m in ("q_proj", "v_proj")
    ]


def test_a_rank_other_than_r(tmp_path):
    found = messages(adapter(tmp_path, lora_tensors(r=8)))
    assert found and all("rank 8, but adapter_config.json says r = 4" in m for m in found)
    assert messages(adapter(tmp_path, lora_tensors(r=8), r=8)) == []


def test_rank_pattern_overrides_r_for_the_modules_it_names(tmp_path):
    tensors = lora_tensors(["q_proj"]) | lora_tensors(["v_proj"], r=2)
    assert messages(adapter(tmp_path, tensors, rank_pattern={"v_proj": 2})) == []


def test_a_lone_lora_a(tmp_path):
    tensors = lora_tensors()
    del tensors[f"{PREFIX}model.layers.0.self_attn.q_proj.lora_B.weight"]
    (message,) = messages(adapter(tmp_path, tensors))
    assert (
        message
        == "module model.layers.0.self_attn.q_proj has lora_A but no lora_B: LoRA needs both"
    )


def test_shapes_that_differ_between_layers(tmp_path):
    tensors = lora_tensors()
    tensors[f"{PREFIX}model.layers.1.self_attn.q_proj.lora_A.weight"] = f32((4, 32))
    (message,) = messages(adapter(tmp_path, tensors))
    assert message == (
        "model.layers.*.self_attn.q_proj.lora_A: the shapes differ between layers "
        "(model.layers.1.self_attn.q_proj differ from [4, 16] in model.layers.0.self_attn.q_proj)"
    )


def test_full_model_weights_next_to_the_adapter(tmp_path):
    path = adapter(tmp_path)
    (path / "model.safetensors").write_bytes(safetensors_bytes({"lm_head.weight": f32((4, 4))}))
    (found,) = rule_findings(path, "adapter-tensors")
    assert found.file == "model.safetensors" and "full model weights" in found.message
    assert "merge: true" in found.hint


def test_base_tensors_inside_the_adapter(tmp_path):
    tensors = lora_tensors() | {
        f"{PREFIX}model.layers.0.self_attn.q_proj.weight": f32((16, 16)),
        f"{PREFIX}model.norm.weight": f32((16,)),
    }
    (message,) = messages(adapter(tmp_path, tensors))
    assert message.startswith("2 base model tensor(s) inside the adapter")
    assert "model.layers.0.self_attn.q_proj.weight" in message


def test_modules_to_save_and_embeddings_are_expected(tmp_path):
    """peft keeps modules_to_save as the module's own tensors, and the embeddings with
    save_embedding_layers (a resized vocabulary)."""
    tensors = lora_tensors() | {
        f"{PREFIX}lm_head.weight": f32((32, 16)),
        f"{PREFIX}model.embed_tokens.weight": f32((32, 16)),
    }
    assert messages(adapter(tmp_path, tensors, modules_to_save=["lm_head"])) == []


def test_modules_to_save_without_its_tensors(tmp_path):
    (message,) = messages(adapter(tmp_path, modules_to_save=["score"]))
    assert message.startswith("modules_to_save names 'score' but the adapter holds none")


def test_other_peft_methods_are_not_checked(tmp_path):
    assert messages(adapter(tmp_path, {}, peft_type="LOHA")) == []


def test_a_target_regex_is_not_run(tmp_path):
    path = adapter(tmp_path, target_modules=r".*\.(q|v)_proj")
    assert messages(path) == []
    assert messages(adapter(tmp_path, {}, target_modules=r".*\.(q|v)_proj")) != []


# ------------------------------------------------------------------ the base architecture


@pytest.fixture
def base_dir(tmp_path):
    """A base model's config.json in a local directory (tests/factory.py's tiny Qwen2)."""
    pytest.importorskip("torch")
    base = tmp_path / "base"
    base.mkdir()
    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "vocab_size": 64,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "torch_dtype": "float32",
    }
    (base / "config.json").write_text(json.dumps(config))
    return base


@pytest.mark.slow
def test_against_the_base_every_targeted_module_is_there(tmp_path, base_dir):
    path = adapter(tmp_path, base_model_name_or_path=str(base_dir))
    assert messages(path, deep=True) == []
    tensors = lora_tensors()
    for key in [k for k in tensors if ".layers.1.self_attn.v_proj." in k]:
        del tensors[key]
    path = adapter(tmp_path, tensors, base_model_name_or_path=str(base_dir))
    (message,) = messages(path, deep=True)
    assert message.startswith("target module v_proj has no LoRA tensors for 1 module(s)")
    assert "model.layers.1.self_attn.v_proj" in message


@pytest.mark.slow
def test_against_the_base_in_and_out_must_match(tmp_path, base_dir):
    """Consistent across layers, but not with the base: another architecture's adapter."""
    tensors = lora_tensors()
    for layer in (0, 1):
        tensors[f"{PREFIX}model.layers.{layer}.self_attn.v_proj.lora_B.weight"] = f32((16, 4))
    path = adapter(tmp_path, tensors, base_model_name_or_path=str(base_dir))
    # A plain check reads headers only (no torch, no base build): consistent across layers.
    assert messages(path) == []
    (message,) = messages(path, deep=True)
    assert message.startswith(
        "model.layers.*.self_attn.v_proj.lora_B has shape [16, 4] in 2 module(s) "
        "(model.layers.0.self_attn.v_proj, model.layers.1.self_attn.v_proj), but the base "
        "model's weight there is [8, 16]"
    )


@pytest.mark.slow
def test_the_base_is_found_in_the_hugging_face_cache(tmp_path, base_dir, monkeypatch):
    """A Hub id whose snapshot is in the HF cache: read there, offline."""
    from huggingface_hub import constants  # read at import: the cache of this process

    from r1release.adapters import base_directory

    hub_cache = tmp_path / "hf" / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))
    snapshot = hub_cache / "models--org--tiny-base" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text((base_dir / "config.json").read_text())
    (hub_cache / "models--org--tiny-base" / "refs").mkdir()
    (hub_cache / "models--org--tiny-base" / "refs" / "main").write_text("a" * 40)
    assert base_directory("org/tiny-base") == snapshot
    tensors = lora_tensors()
    tensors[f"{PREFIX}model.layers.0.self_attn.v_proj.lora_B.weight"] = f32((16, 4))
    tensors[f"{PREFIX}model.layers.1.self_attn.v_proj.lora_B.weight"] = f32((16, 4))
    path = adapter(tmp_path, tensors, base_model_name_or_path="org/tiny-base")
    assert Checkpoint(path).kind == "adapter"
    assert any("but the base model's" in m for m in messages(path, deep=True))


def test_untrusted_names_are_one_bounded_line(tmp_path):
    """A regular expression of 5 kB with a line break, a tensor name with one, a
    modules_to_save entry of 5 kB: each shown escaped and cut."""
    long = "q\n" + "x" * 5000
    tensors = lora_tensors(["q_proj"])
    tensors[f"{PREFIX}model.layers.0.evil\nname.lora_A.weight"] = f32((4, 16))
    path = adapter(tmp_path, tensors, target_modules=long, modules_to_save=[long])
    found = messages(path)
    assert len(found) == 2  # modules_to_save, and the lone lora_A
    for message in found:
        assert "\n" not in message and len(message) < 600, message
    found = messages(adapter(tmp_path, lora_tensors([]), target_modules=long))
    (message,) = found
    assert message.startswith("target module 'q\\nxxx") and "\n" not in message


@pytest.mark.parametrize("saved", [5, "lm_head", {"lm_head": 1}])
def test_modules_to_save_of_another_type_is_no_crash(tmp_path, saved):
    assert messages(adapter(tmp_path, modules_to_save=saved)) == []

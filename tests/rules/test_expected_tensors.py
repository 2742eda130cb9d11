"""expected-tensors: the safetensors hold what the config's model class expects."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from r1release.checker import ActiveRule, run_rules
from r1release.checkpoint import Checkpoint
from r1release.deep import DeepScan
from r1release.rules import REGISTRY, expected_tensors
from r1release.rules.base import Context
from r1release.rules.expected_tensors import RULE

from factory import build_checkpoint, safetensors_bytes, tensor_shapes, tiny_qwen2, write_weights
from helpers import edit_json, rule_findings

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch")

QWEN = "qwen2.5-7b-instruct"
LLAMA = "llama-3.1-8b-instruct"


def findings(path: Path, deep: bool = True) -> list:
    """The rule's findings, run the way the checker runs it (a deep rule)."""
    scan = DeepScan() if deep else None
    return run_rules(Checkpoint(path), [ActiveRule(RULE, RULE.severity, {})], scan)


def config_of(path: Path) -> dict:
    return json.loads((path / "config.json").read_text())


def rewrite_weights(path: Path, shapes: dict, shards: int = 2) -> None:
    for old in [*path.glob("*.safetensors"), *path.glob("model.safetensors.index.json")]:
        old.unlink()
    write_weights(path, shapes, shards=shards)


# ----------------------------------------------------------------------- factory checkpoints


@pytest.mark.parametrize("case", [QWEN, LLAMA, "qwen2.5-base-after-chatml-sft"])
@pytest.mark.parametrize("tied", [False, True])
def test_factory_checkpoints_pass(cases, tmp_path, case, tied):
    path = build_checkpoint(tmp_path / "m", cases[case], tie_word_embeddings=tied)
    assert findings(path) == []


def test_only_runs_in_a_deep_check(checkpoint):
    path = checkpoint(QWEN)
    rewrite_weights(path, {n: (0,) for n in tensor_shapes(config_of(path))})
    assert findings(path, deep=False) == []
    assert len(findings(path, deep=True)) == 1


# ----------------------------------------------------------------------- the table

HEAD = "lm_head.weight"


def _drop_head(shapes: dict) -> dict:
    return {n: s for n, s in shapes.items() if n != HEAD}


def _untied_shapes(config: dict) -> dict:
    return tensor_shapes({**config, "tie_word_embeddings": False})


@pytest.mark.parametrize(
    ("label", "config_changes", "shapes", "expected"),
    # shapes: what is written, from config.json after the changes; expected: texts of the
    # one finding (message or hint), or [] for no finding
    [
        # ZeRO-3 stub save: every parameter saved as shape [0]
        ("zero3", {}, lambda c: {n: (0,) for n in tensor_shapes(c)}, ["empty (0 elements)"]),
        ("one empty", {}, lambda c: tensor_shapes(c) | {"model.norm.weight": (0,)}, ["1 tensor"]),
        # untied embeddings need lm_head.weight
        ("no head, untied", {}, lambda c: _drop_head(tensor_shapes(c)), ["lm_head.weight"]),
        # tied embeddings: lm_head absent on disk is how save_pretrained writes them
        ("no head, tied", {"tie_word_embeddings": True}, lambda c: tensor_shapes(c), []),
        # tied but both saved (a .bin conversion): transformers accepts it
        ("tied, both saved", {"tie_word_embeddings": True}, _untied_shapes, []),
        # tied, only the head saved: transformers ties the other way round
        (
            "tied, head only",
            {"tie_word_embeddings": True},
            lambda c: {
                n: s for n, s in _untied_shapes(c).items() if n != "model.embed_tokens.weight"
            },
            [],
        ),
        # config.json's vocab_size differs from the saved embeddings (152064 rows)
        (
            "vocab",
            {"vocab_size": 151936},
            lambda c: tensor_shapes({**c, "vocab_size": 152064}),
            ["vocab_size is 151936"],
        ),
        (
            "extra",
            {},
            lambda c: tensor_shapes(c) | {"v_head.summary.weight": (1, 8)},
            ["v_head.summary.weight"],
        ),
        (
            "extra layer",
            {"num_hidden_layers": 1},
            lambda c: tensor_shapes({**c, "num_hidden_layers": 2}),
            ["12 tensors on disk"],
        ),
        # old checkpoints kept rotary inv_freq per layer; transformers ignores them
        (
            "inv_freq",
            {},
            lambda c: tensor_shapes(c) | {"model.layers.0.self_attn.rotary_emb.inv_freq": (4,)},
            [],
        ),
        # a base model (no "model." prefix) saved inside a causal LM's checkpoint
        (
            "prefix",
            {"tie_word_embeddings": True},
            lambda c: {n.removeprefix("model."): s for n, s in tensor_shapes(c).items()},
            [],
        ),
    ],
)
def test_table(checkpoint, label, config_changes, shapes, expected):
    path = checkpoint(QWEN)
    config = config_of(path)
    edit_json(path, "config.json", **config_changes)
    rewrite_weights(path, shapes({**config, **config_changes}))
    found = findings(path)
    if not expected:
        assert found == [], [f.message for f in found]
        return
    assert len(found) == 1, [f.message for f in found]
    [finding] = found
    assert finding.rule == "expected-tensors"
    for text in expected:
        assert text in finding.message + (finding.hint or "")


def test_zero3_message_is_summarised(checkpoint):
    path = checkpoint(QWEN)
    names = list(tensor_shapes(config_of(path)))
    rewrite_weights(path, {n: (0,) for n in names})
    [finding] = findings(path)
    assert finding.message.startswith(f"{len(names)} tensors are empty (0 elements): ")
    assert f"and {len(names) - 3} more" in finding.message
    assert "ZeRO-3" in finding.message
    assert "stage3_gather_16bit_weights_on_model_save" in finding.hint


def test_missing_head_points_at_tie_word_embeddings(checkpoint):
    path = checkpoint(QWEN)
    rewrite_weights(path, _drop_head(tensor_shapes(config_of(path))))
    [finding] = findings(path)
    assert finding.message.startswith("1 tensor that Qwen2ForCausalLM")
    assert finding.file == "config.json"
    assert "tie_word_embeddings" in finding.hint


def test_wrong_vocab_size_names_both_sizes(checkpoint):
    path = checkpoint(QWEN)
    edit_json(path, "config.json", vocab_size=151936)
    [finding] = findings(path)
    assert "model.embed_tokens.weight is [152064, 8], expected [151936, 8]" in finding.message
    assert finding.file == "config.json"
    assert "vocab_size is 151936" in finding.hint


def test_float32_weights_with_bf16_config_are_reported_once(checkpoint):
    path = checkpoint(QWEN)
    shapes = tensor_shapes(config_of(path))
    for old in [*path.glob("*.safetensors"), path / "model.safetensors.index.json"]:
        old.unlink()
    tensors = {n: ("F32", s, np.zeros(s, dtype="<f4").tobytes()) for n, s in shapes.items()}
    (path / "model.safetensors").write_bytes(safetensors_bytes(tensors, {"format": "pt"}))
    [finding] = findings(path)
    assert finding.message == (
        f"config.json says dtype bfloat16 but {len(shapes)} of {len(shapes)} floating-point "
        f"tensors are saved in another dtype ({len(shapes)} F32), e.g. "
        f"model.embed_tokens.weight and {len(shapes) - 1} more"
    )
    assert "float32" in finding.hint


# ----------------------------------------------------------------------- unknown models


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"model_type": "foo_lm", "architectures": ["FooForCausalLM"]}, "model_type 'foo_lm'"),
        ({"model_type": None}, "no model_type"),
        # the model code cannot be built from this config
        ({"hidden_act": "no_such_activation"}, "cannot build Qwen2ForCausalLM"),
    ],
)
def test_unknown_architecture_is_a_clear_message(checkpoint, changes, expected):
    path = checkpoint(QWEN)
    edit_json(path, "config.json", **changes)
    [finding] = findings(path)
    assert expected in finding.message
    assert "internal error" not in finding.message
    assert finding.file == "config.json"


def test_custom_code_models_are_skipped(checkpoint):
    path = checkpoint(QWEN)
    edit_json(
        path,
        "config.json",
        model_type="my_lm",
        architectures=["MyLMForCausalLM"],
        auto_map={"AutoModelForCausalLM": "modeling_my_lm.MyLMForCausalLM"},
    )
    (path / "modeling_my_lm.py").write_text("raise SystemExit('checkpoint code must not run')\n")
    assert findings(path) == []


def test_quantized_checkpoints_are_skipped(checkpoint):
    path = checkpoint(QWEN)
    edit_json(path, "config.json", quantization_config={"quant_method": "fp8"})
    rewrite_weights(path, {n: (0,) for n in tensor_shapes(config_of(path))})
    assert findings(path) == []


def test_without_torch_the_rule_says_nothing(checkpoint, monkeypatch):
    path = checkpoint(QWEN)
    rewrite_weights(path, {n: (0,) for n in tensor_shapes(config_of(path))})
    monkeypatch.setattr(expected_tensors, "torch_available", lambda: False)
    assert findings(path) == []


# ----------------------------------------------------------------------- real saves


def _save(model, out: Path, **kwargs) -> Path:
    model.save_pretrained(out, **kwargs)
    return out


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_real_qwen2_save_passes(tmp_path, tied, dtype):
    model = tiny_qwen2(vocab_size=1000, num_hidden_layers=2, tie_word_embeddings=tied)
    model = model.to(getattr(torch, dtype))
    path = _save(model, tmp_path / "m", max_shard_size="20KB")
    assert (path / "model.safetensors.index.json").exists()
    assert findings(path) == []


def test_real_float32_save_with_bf16_config_fails(tmp_path):
    path = _save(tiny_qwen2(vocab_size=1000), tmp_path / "m")
    doc = config_of(path)
    key = "dtype" if "dtype" in doc else "torch_dtype"
    assert doc[key] == "float32"
    edit_json(path, "config.json", **{key: "bfloat16"})
    [finding] = findings(path)
    assert "config.json says dtype bfloat16" in finding.message
    assert "F32" in finding.message


def test_real_moe_save_passes(tmp_path):
    """transformers 5 fuses the experts in memory; save_pretrained splits them again."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(
        "qwen3_moe",
        vocab_size=100,
        hidden_size=16,
        intermediate_size=32,
        moe_intermediate_size=8,
        num_experts=4,
        num_experts_per_tok=2,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
    )
    path = _save(AutoModelForCausalLM.from_config(config), tmp_path / "m")
    assert findings(path) == []
    # and one expert lost from the shards is reported
    from safetensors.numpy import load_file, save_file

    weights = load_file(path / "model.safetensors")
    gone = [k for k in weights if ".experts.3." in k]
    save_file({k: v for k, v in weights.items() if k not in gone}, path / "model.safetensors")
    [finding] = findings(path)
    assert finding.message.startswith(f"{len(gone)} tensors that Qwen3MoeForCausalLM")


def test_cheap_for_a_7b_config():
    """Qwen2.5-7B built on the meta device: no memory, well under a second once imported."""
    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "max_position_embeddings": 32768,
        "rope_theta": 1000000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    expected_tensors.expected_tensors(config)  # imports
    started = time.perf_counter()
    expected = expected_tensors.expected_tensors(config)
    elapsed = time.perf_counter() - started
    assert len(expected.tensors) == 339
    assert expected.tensors["lm_head.weight"].shape == (152064, 3584)
    assert expected.tensors["lm_head.weight"].dtype == "BF16"
    assert elapsed < 5


def test_check_through_context(checkpoint):
    path = checkpoint(LLAMA)
    assert list(RULE.check(Context(Checkpoint(path)))) == []
    assert RULE.deep and RULE.id == "R305" and RULE.name == "expected-tensors"


# ------------------------------------------------------------ once registered (rules/__init__.py)


@pytest.mark.skipif("expected-tensors" not in REGISTRY, reason="not registered yet")
def test_registered_runs_in_deep_checks(checkpoint):
    from r1release.checker import check

    path = checkpoint(QWEN)
    rewrite_weights(path, {n: (0,) for n in tensor_shapes(config_of(path))})
    assert rule_findings(path, "expected-tensors") == []
    assert "expected-tensors" not in check(path).rules_run
    report = check(path, deep=True)
    assert "expected-tensors" in report.rules_run
    [finding] = report.by_rule("expected-tensors")
    assert "empty (0 elements)" in finding.message


# ------------------------------------------------------------ in a worker thread (revision pushes)


def test_a_build_in_another_thread_leaves_the_training_threads_torch_and_logging_alone(
    monkeypatch,
):
    """A checkpoint push builds the layout in a worker thread while training goes on: the
    bf16 default is that thread's alone, and transformers' verbosity and Python's warning
    filters (process-wide) are not touched from there."""
    import threading
    import warnings

    from transformers import AutoConfig, Qwen2ForCausalLM
    from transformers.utils import logging as hf_logging

    config = AutoConfig.for_model(
        "qwen2",
        vocab_size=100,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    ).to_dict()
    config.update(architectures=["Qwen2ForCausalLM"], dtype="bfloat16")
    building, release, inside, result = threading.Event(), threading.Event(), [], []
    original = Qwen2ForCausalLM.__init__

    def paused(self, *args, **kwargs):
        inside.append(torch.empty(2).dtype)
        building.set()
        release.wait(20)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Qwen2ForCausalLM, "__init__", paused)
    verbosity, filters = hf_logging.get_verbosity(), list(warnings.filters)
    worker = threading.Thread(
        target=lambda: result.append(expected_tensors.expected_tensors(config))
    )
    worker.start()
    try:
        assert building.wait(60)
        # meanwhile, in the training thread
        assert torch.get_default_dtype() == torch.float32
        made = torch.empty(2)
        assert made.dtype == torch.float32 and made.device.type == "cpu"
        assert hf_logging.get_verbosity() == verbosity
        assert warnings.filters == filters
    finally:
        release.set()
        worker.join(60)
    assert inside == [torch.bfloat16]  # the build itself does see the config's dtype
    [expected] = result
    assert {t.dtype for t in expected.tensors.values()} == {"BF16"}
    assert torch.get_default_dtype() == torch.float32


@pytest.mark.parametrize(
    ("model_type", "sizes"),
    [
        ("llama", {}),
        ("qwen3_moe", {"moe_intermediate_size": 8, "num_experts": 4, "num_experts_per_tok": 2}),
        (  # e_score_correction_bias is created in float32 whatever the default dtype
            "deepseek_v3",
            {
                "moe_intermediate_size": 8,
                "n_routed_experts": 4,
                "num_experts_per_tok": 2,
                "num_hidden_layers": 2,
                "first_k_dense_replace": 1,
                "num_key_value_heads": 2,
                "q_lora_rank": 8,
                "kv_lora_rank": 8,
                "qk_rope_head_dim": 4,
                "qk_nope_head_dim": 4,
                "v_head_dim": 4,
                "n_group": 1,
                "topk_group": 1,
            },
        ),
    ],
)
def test_dtypes_are_those_of_a_build_under_the_default_dtype(model_type, sizes):
    """The thread-local dtype yields what transformers' own process-wide default gives."""
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.modeling_utils import local_torch_dtype

    from r1release.architecture import _ST_DTYPES, _saved_layout

    kwargs = {
        "vocab_size": 100,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 8,
        **sizes,
    }
    config = AutoConfig.for_model(model_type, **kwargs)
    model_class = AutoModelForCausalLM._model_mapping[type(config)]
    doc = {**config.to_dict(), "architectures": [model_class.__name__], "dtype": "bfloat16"}
    with torch.device("meta"), local_torch_dtype(torch.bfloat16):
        model = model_class(config)
    state = _saved_layout(model, {k: v.detach() for k, v in model.state_dict().items()})
    reference = {k: _ST_DTYPES[str(v.dtype).removeprefix("torch.")] for k, v in state.items()}
    built = expected_tensors.expected_tensors(doc)
    assert {k: t.dtype for k, t in built.tensors.items()} == reference
    assert len(set(reference.values())) == (2 if model_type == "deepseek_v3" else 1)

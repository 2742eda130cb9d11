"""A checkpoint written by transformers' own save_pretrained: no false alarms, real fixes."""

from __future__ import annotations

import json

import pytest

from r1release.checker import check
from r1release.fixes import apply_fixes, plan_fixes

from factory import tiny_qwen2

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def saved(tmp_path_factory, _built):
    from transformers import PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("saved")
    model = tiny_qwen2(
        num_hidden_layers=2,
        bos_token_id=151643,
        eos_token_id=151643,
        tie_word_embeddings=False,
        use_cache=False,  # as left by gradient checkpointing
    )
    model.to(torch.bfloat16).save_pretrained(out, max_shard_size="5MB")
    PreTrainedTokenizerFast.from_pretrained(
        _built["qwen2.5-base-after-chatml-sft"]
    ).save_pretrained(out)
    return out


def test_real_save_is_sharded_and_structurally_clean(saved):
    assert (saved / "model.safetensors.index.json").exists()
    report = check(saved)
    structural = {
        "safetensors-header",
        "shard-index",
        "weights-format",
        "tokenizer",
        "chat-template",
        "json-files",
        "paths",
        "leftovers",
    }
    assert not [f for f in report.findings if f.rule in structural]
    # transformers 5 writes use_cache=false into generation_config.json too
    assert {f.rule for f in report.errors} == {
        "eos-alignment",
        "chat-template-stop",
        "config-eos-consistency",
        "use-cache",
        "generation-use-cache",
    }


def test_fixed_checkpoint_loads_with_the_stop_tokens(saved, tmp_path):
    import shutil

    from transformers import AutoModelForCausalLM, GenerationConfig

    path = tmp_path / "model"
    shutil.copytree(saved, path)
    apply_fixes(plan_fixes(path))
    assert not check(path).findings
    generation = GenerationConfig.from_pretrained(path)
    assert generation.eos_token_id == [151645, 151643]
    assert generation.use_cache is True
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.use_cache is True
    assert json.loads((path / "config.json").read_text())["eos_token_id"] == [151645, 151643]

"""Distributed saves as the real tools write them: refused with the setting named, and
consolidated by the command the hint gives.

The FSDP layout is accelerate 1.15's ``save_fsdp_model`` under ``SHARDED_STATE_DICT``:
``torch.distributed.checkpoint.save`` of ``{"model": state_dict}`` into
``pytorch_model_fsdp_0/`` (and the optimizer into ``optimizer_0/``), here from one process,
which DCP supports without a process group. The ZeRO-3 stub is transformers'
``save_pretrained`` of a model whose parameters DeepSpeed partitioned: each parameter over
the ``stage3_param_persistence_threshold`` transformers fills in (``10 * hidden_size``)
holds ``torch.empty(0)`` on every rank, the smaller ones stay whole.

A real FSDP run is not possible on CPU with accelerate 1.15: ``AcceleratorState`` turns on
FSDP only for GPU-like distributed types, so a gloo run trains with DDP, and
``FullyShardedDataParallelPlugin(sync_module_states=True)`` (transformers' default) raises
"There are currently no available devices found".
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from r1release.checker import check

from factory import tiny_qwen2

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch")

QWEN = "qwen2.5-7b-instruct"


def model_for(path: Path):
    """A real Qwen2 model with the checkpoint's config.json shapes, in bf16 as it says."""
    config = json.loads((path / "config.json").read_text())
    keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers")
    keys += ("num_attention_heads", "num_key_value_heads", "tie_word_embeddings")
    return tiny_qwen2(**{k: config[k] for k in keys}).to(torch.bfloat16)


def drop_weights(path: Path) -> None:
    for name in [*path.glob("*.safetensors"), path / "model.safetensors.index.json"]:
        name.unlink()


def fsdp_sharded_save(path: Path) -> None:
    """What accelerate's save_fsdp_model and save_fsdp_optimizer write (use_dcp=True)."""
    import torch.distributed.checkpoint as dcp
    from accelerate.utils.constants import FSDP_MODEL_NAME, OPTIMIZER_NAME
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    model = model_for(path)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.tensor([[1, 2, 3]]), labels=torch.tensor([[1, 2, 3]])).loss.backward()
    optimizer.step()
    with warnings.catch_warnings():  # "assuming the intent is to save in a single process"
        warnings.simplefilter("ignore", UserWarning)
        dcp.save({"model": model.state_dict()}, checkpoint_id=path / f"{FSDP_MODEL_NAME}_0")
        optim = get_optimizer_state_dict(model, optimizer)
        dcp.save({"optimizer": optim}, checkpoint_id=path / f"{OPTIMIZER_NAME}_0")


def command_in(hint: str) -> list[str]:
    """The shell command a hint gives in backticks (the last one), as argv."""
    return shlex.split(re.findall(r"`([^`]+)`", hint)[-1])


def test_fsdp_sharded_checkpoint_fails_a_plain_check(checkpoint):
    path = checkpoint(QWEN)
    drop_weights(path)
    fsdp_sharded_save(path)
    assert sorted(p.name for p in (path / "pytorch_model_fsdp_0").iterdir()) == [
        ".metadata",
        "__0_0.distcp",
    ]
    report = check(path)  # plain: the file list only
    [finding] = report.by_rule("sharded-save")
    assert finding.severity == "error" and finding.file == "pytorch_model_fsdp_0"
    assert "pytorch_model_fsdp_0/: 1 .distcp shard, optimizer_0/: 1 .distcp shard" in (
        finding.message
    )
    assert "`fsdp_state_dict_type: FULL_STATE_DICT`" in finding.hint
    assert command_in(finding.hint)[:2] == ["accelerate", "merge-weights"]


@pytest.mark.e2e
def test_the_merge_command_in_the_hint_gives_a_checkpoint_that_passes(checkpoint):
    path = checkpoint(QWEN)
    drop_weights(path)
    fsdp_sharded_save(path)
    [finding] = check(path).by_rule("sharded-save")
    argv = command_in(finding.hint)
    argv[0] = str(Path(sys.executable).parent / "accelerate")  # this environment's
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = check(path, deep=True)  # expected-tensors too: the merged tensors are the model's
    assert report.errors == (), [(f.rule, f.message) for f in report.errors]
    assert "expected-tensors" in report.rules_run


def zero3_partitioned(model, hidden_size: int):
    """The model as a ZeRO-3 rank holds it outside a gather: DeepSpeed's partitioning sets
    ``param.data = torch.empty(0)`` on each parameter over the persistence threshold."""
    threshold = 10 * hidden_size  # transformers' "auto" stage3_param_persistence_threshold
    partitioned = []
    for name, param in model.named_parameters():
        if param.numel() > threshold:
            param.data = torch.empty(0, dtype=param.dtype)
            partitioned.append(name)
    return partitioned


def test_zero3_stub_names_the_setting(checkpoint):
    path = checkpoint(QWEN)
    drop_weights(path)
    model = model_for(path)
    partitioned = zero3_partitioned(model, model.config.hidden_size)
    assert 0 < len(partitioned) < len(list(model.parameters()))  # norms stay whole
    model.save_pretrained(path)  # what a script that skips trainer.save_model writes
    assert (path / "model.safetensors").stat().st_size < 64 * 1024
    report = check(path, deep=True)
    [finding] = report.by_rule("expected-tensors")
    assert finding.severity == "error"
    assert f"{len(partitioned)} tensors are empty (0 elements)" in finding.message
    assert "`zero3_save_16bit_model: true`" in finding.hint
    assert "`stage3_gather_16bit_weights_on_model_save: true`" in finding.hint
    assert "zero_to_fp32.py" in finding.hint
    assert report.by_rule("sharded-save") == ()  # whole-model files, not a ZeRO checkpoint

"""sharded-save: a distributed training checkpoint without consolidated weights is refused.

The layouts are the file names accelerate 1.15 and DeepSpeed write (contents do not matter
to this rule: it reads the file list only); tests/test_fsdp.py builds real ones with
torch.distributed.checkpoint and runs the consolidation the hint names.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from r1release.checker import check
from r1release.cli import main
from r1release.rules import REGISTRY

from helpers import rule_findings

QWEN = "qwen2.5-7b-instruct"
FSDP = ("pytorch_model_fsdp_0/__0_0.distcp", "pytorch_model_fsdp_0/__1_0.distcp")
FSDP_META = ("pytorch_model_fsdp_0/.metadata", "optimizer_0/__0_0.distcp", "optimizer_0/.metadata")
ZERO = (
    "global_step10/zero_pp_rank_0_mp_rank_00_model_states.pt",
    "global_step10/zero_pp_rank_1_mp_rank_00_model_states.pt",
    "global_step10/bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt",
    "global_step10/bf16_zero_pp_rank_1_mp_rank_00_optim_states.pt",
    "latest",
    "zero_to_fp32.py",
)
SETTING_FSDP = "`fsdp_state_dict_type: FULL_STATE_DICT`"
SETTING_ZERO = "`zero3_save_16bit_model: true`"


@dataclass(frozen=True)
class Case:
    id: str
    files: tuple[str, ...]  # added, relative to the checkpoint
    weights: bool = False  # keep the consolidated weights
    expected: tuple[str, ...] = ()  # substrings of message + hint; () means no finding
    file: str | None = None  # what the finding names
    absent: tuple[str, ...] = ()  # substrings that must not appear


CASES = [
    Case(
        "fsdp sharded",
        FSDP + FSDP_META,
        expected=(
            "an FSDP sharded checkpoint (pytorch_model_fsdp_0/: 2 .distcp shards, "
            "optimizer_0/: 1 .distcp shard) and no consolidated weights",
            SETTING_FSDP,
            "`accelerate merge-weights {root}/pytorch_model_fsdp_0 {root}`",
        ),
        file="pytorch_model_fsdp_0",
    ),
    Case("fsdp beside full weights", FSDP + FSDP_META, weights=True),
    Case(
        "fsdp in checkpoint-N, the latest merged",
        tuple(f"checkpoint-{n}/{f}" for n in (2, 10) for f in FSDP),
        expected=(
            "checkpoint-2/pytorch_model_fsdp_0/: 2 .distcp shards, "
            "checkpoint-10/pytorch_model_fsdp_0/",
            "merge-weights {root}/checkpoint-10/pytorch_model_fsdp_0 {root}`",
        ),
        file="checkpoint-2/pytorch_model_fsdp_0",
    ),
    Case(
        "fsdp optimizer state only: no merge command",
        ("optimizer_0/__0_0.distcp", "optimizer_0/.metadata"),
        expected=("optimizer_0/: 1 .distcp shard", SETTING_FSDP),
        file="optimizer_0",
        absent=("merge-weights",),
    ),
    Case(
        "fsdp LOCAL_STATE_DICT per-rank files",
        ("pytorch_model_fsdp_rank0.bin", "pytorch_model_fsdp_rank1.bin"),
        expected=("pytorch_model_fsdp_rank0.bin, pytorch_model_fsdp_rank1.bin", SETTING_FSDP),
        file="pytorch_model_fsdp_rank0.bin",
        absent=("merge-weights",),
    ),
    Case(
        "the checkpoint is the DCP directory itself",
        ("__0_0.distcp", ".metadata"),
        expected=("(./: 1 .distcp shard)", "merge-weights {root} {root}`"),
    ),
    Case(
        "deepspeed zero checkpoint",
        ZERO,
        expected=(
            "a DeepSpeed ZeRO checkpoint (global_step10/: 4 *_states.pt files) and no "
            "consolidated weights",
            SETTING_ZERO,
            "`stage3_gather_16bit_weights_on_model_save: true`",
            "`python {root}/zero_to_fp32.py {root} {root} --safe_serialization`",
        ),
        file="global_step10",
    ),
    Case(
        "deepspeed without its script",
        ZERO[:-1],
        expected=("`python -m deepspeed.utils.zero_to_fp32 {root} {root} --safe_serialization`",),
        file="global_step10",
    ),
    Case(
        "deepspeed in checkpoint-N",
        tuple(f"checkpoint-5/{f}" for f in ZERO),
        expected=(
            "checkpoint-5/global_step10/: 4 *_states.pt files",
            "`python {root}/checkpoint-5/zero_to_fp32.py {root}/checkpoint-5 {root} ",
        ),
        file="checkpoint-5/global_step10",
    ),
    Case("deepspeed zero-2 beside full weights", ZERO, weights=True),
    Case("consolidated to pickle: weights-format's to refuse", (*ZERO, "pytorch_model.bin")),
    Case("latest and the script alone are no checkpoint", ZERO[-2:]),
    Case(
        "fsdp and deepspeed both",
        FSDP + ZERO,
        expected=("an FSDP sharded checkpoint", "a DeepSpeed ZeRO checkpoint"),
        file="pytorch_model_fsdp_0",
    ),
]


def layout(path: Path, case: Case) -> Path:
    if not case.weights:
        for name in [*path.glob("*.safetensors"), path / "model.safetensors.index.json"]:
            name.unlink()
    for name in case.files:
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(b"\x80\x02}q\x00.")  # contents are not read
    return path


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_layouts(checkpoint, case):
    path = layout(checkpoint(QWEN), case)
    found = rule_findings(path, "sharded-save")  # a plain check: no --deep, no torch
    if not case.expected:
        assert found == [], [f.message for f in found]
        return
    root = shlex.quote(str(path))
    text = " | ".join(f"{f.message} {f.hint}" for f in found)
    for expected in case.expected:
        assert expected.format(root=root) in text
    for absent in case.absent:
        assert absent not in text
    assert case.file in [f.file for f in found]
    assert {f.severity for f in found} == {"error"}


def test_registered_early_with_an_unused_id():
    rule = REGISTRY["sharded-save"]
    ids = [r.id for r in REGISTRY.values()]
    assert rule.id == "R306" and ids.count("R306") == 1
    names = list(REGISTRY)
    assert names.index("sharded-save") == names.index("paths") + 1
    assert not rule.deep and not rule.requires  # a plain check runs it, without torch


def test_paths_in_the_command_are_quoted(checkpoint, tmp_path):
    path = checkpoint(QWEN).rename(tmp_path / "my run")
    layout(path, CASES[0])
    [finding] = rule_findings(path, "sharded-save")
    quoted = shlex.quote(str(path))
    assert quoted.startswith("'")
    assert f"`accelerate merge-weights {shlex.quote(f'{path}/pytorch_model_fsdp_0')} {quoted}`" in (
        finding.hint
    )


def test_also_without_config_json(checkpoint):
    """Trainer.save_model under SHARDED_STATE_DICT writes no file at all: the output
    directory holds only checkpoint-N/ saves, and the rule says why it is no model."""
    path = layout(checkpoint(QWEN), CASES[2])
    (path / "config.json").unlink()
    report = check(path)
    assert report.by_rule("json-files") and report.by_rule("sharded-save")


def test_check_command_fails_with_the_setting(checkpoint):
    path = layout(checkpoint(QWEN), CASES[0])
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1, result.output
    assert "sharded-save (R306)" in result.output
    assert "fsdp_state_dict_type: FULL_STATE_DICT" in result.output
    assert "Traceback" not in result.output


def _code_spans(text: str) -> list[str]:
    """The inline-code spans of a hint: between each pair of backticks."""
    assert text.count("`") % 2 == 0, text
    return text.split("`")[1::2]


@pytest.mark.parametrize("name", ["run`whoami`", "run\nline", "run\x1b[31m"])
@pytest.mark.parametrize("case", [CASES[0], CASES[6]], ids=["fsdp", "deepspeed"])
def test_a_directory_no_command_can_show_gets_a_placeholder(checkpoint, tmp_path, name, case):
    """Before: the name went into the inline-code command as it is; a backtick ended the
    span (and started another), a line break split the message and the annotation."""
    path = layout(checkpoint(QWEN).rename(tmp_path / name), case)
    [finding] = rule_findings(path, "sharded-save")
    assert "\n" not in finding.hint and "\x1b" not in finding.hint
    [command] = [c for c in _code_spans(finding.hint) if c.startswith(("accelerate", "python"))]
    assert command.endswith("DIR") or command.endswith("DIR --safe_serialization")
    assert command.split()[-2 if "accelerate" in command else 2].startswith("DIR")
    escaped = repr(str(path)).replace("`", "\\x60")
    assert f"where DIR is the checkpoint directory {escaped}" in finding.hint


def test_a_save_directory_no_command_can_show_gets_its_own(checkpoint, tmp_path):
    """A DeepSpeed tag is free text: global_step* may hold a line break too."""
    zero = tuple(f"checkpoint-1\n/{f}" for f in ZERO)
    path = layout(checkpoint(QWEN), Case("odd save", zero))
    [finding] = rule_findings(path, "sharded-save")
    [command] = [c for c in _code_spans(finding.hint) if c.startswith("python")]
    assert command == "python SAVE/zero_to_fp32.py SAVE DIR --safe_serialization"
    assert "and SAVE its directory 'checkpoint-1\\n'" in finding.hint
    assert "\n" not in finding.message and "checkpoint-1\\n/global_step10/" in finding.message

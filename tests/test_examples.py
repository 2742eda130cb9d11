"""examples/sft.py with the tiny recipe: TRL's SFTTrainer, then finalize(), offline."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from factory import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

pytest.importorskip("trl")


def test_sft_example_trains_and_finalizes(tmp_path):
    out = tmp_path / "model"
    run = subprocess.run(
        [
            sys.executable,
            "examples/sft.py",
            "--config",
            "examples/recipes/tiny.yaml",
            "--output_dir",
            str(out),
            "--max_steps",
            "3",
            "--logging_steps",
            "1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            "HF_HUB_OFFLINE": "1",
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "OMP_NUM_THREADS": "2",
        },
    )
    assert run.returncode == 0, run.stderr[-3000:]
    check = subprocess.run(
        [sys.executable, "-m", "r1release.cli", "check", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [151645, 151643]
    assert generation["use_cache"] is True
    card = (out / "README.md").read_text()
    assert "examples/recipes/tiny/chats.jsonl" in card and "- open-r1" in card
    assert "train_loss" in card  # from all_results.json written by the example


def test_recipe_assets_are_reproducible(tmp_path):
    import shutil

    copy = tmp_path / "tiny"
    shutil.copytree(REPO / "examples" / "recipes" / "tiny", copy)
    subprocess.run([sys.executable, str(copy / "build.py")], check=True, timeout=60)
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "config.json",
        "chats.jsonl",
        "chat_template.jinja",
    ):
        assert (copy / name).read_bytes() == (REPO / "examples/recipes/tiny" / name).read_bytes()

"""examples/sft.py and examples/grpo.py with their tiny recipes: TRL's trainers, then
finalize(), offline; the GRPO example's reward functions and its recipe's data."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import yaml

from factory import REPO

GRPO_RECIPE = REPO / "examples" / "recipes" / "tiny-grpo.yaml"


def run_example(script: str, recipe: str, out: Path, home: Path, *extra: str) -> None:
    """Train with an example script in a fresh offline process, as a user would."""
    pytest.importorskip("trl")
    run = subprocess.run(
        [sys.executable, script, "--config", recipe, "--output_dir", str(out), *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            "HF_HUB_OFFLINE": "1",
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "OMP_NUM_THREADS": "2",
        },
    )
    assert run.returncode == 0, run.stderr[-3000:]


def check_passes(out: Path) -> None:
    check = subprocess.run(
        [sys.executable, "-m", "r1release.cli", "check", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout


def card_metadata(out: Path) -> dict:
    card = (out / "README.md").read_text()
    return yaml.safe_load(card.split("---\n", 2)[1])


def assert_stops_and_caches(out: Path) -> None:
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [151645, 151643]
    assert generation["use_cache"] is True
    assert json.loads((out / "config.json").read_text())["use_cache"] is True


@pytest.mark.e2e
@pytest.mark.slow
def test_sft_example_trains_and_finalizes(tmp_path):
    out = tmp_path / "model"
    run_example(
        "examples/sft.py",
        "examples/recipes/tiny.yaml",
        out,
        tmp_path,
        *("--max_steps", "3", "--logging_steps", "1"),
    )
    check_passes(out)
    assert_stops_and_caches(out)
    meta = card_metadata(out)
    assert meta["tags"] == ["open-r1", "trl", "sft"]
    # The recipe's data is a local file: finalize() keeps it out of the card.
    assert "datasets" not in meta
    assert "train_loss" in (out / "README.md").read_text()  # from all_results.json


@pytest.mark.e2e
@pytest.mark.slow
def test_grpo_example_trains_and_finalizes(tmp_path):
    out = tmp_path / "model"
    run_example(
        "examples/grpo.py",
        "examples/recipes/tiny-grpo.yaml",
        out,
        tmp_path,
        *("--max_steps", "2", "--logging_steps", "1"),
    )
    check_passes(out)
    assert_stops_and_caches(out)
    meta = card_metadata(out)
    assert meta["tags"] == ["open-r1", "trl", "grpo"]
    assert meta["base_model"] == "Qwen/Qwen2.5-0.5B"
    assert "This model was trained with GRPO" in (out / "README.md").read_text()
    # The recipe's reward functions, chosen by name, scored every step.
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    steps = [entry for entry in history if "reward" in entry]
    assert len(steps) == 2
    for entry in steps:
        assert {"rewards/accuracy_reward/mean", "rewards/format_reward/mean"} <= entry.keys()


@pytest.mark.e2e
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


def test_grpo_recipe_fits_grpo_batch_rules_and_tokenizer():
    """The recipe holds whole groups of completions per step (TRL's GRPOConfig refuses it
    otherwise), and every word of its prompts and solutions is known to the tiny tokenizer."""
    recipe = yaml.safe_load(GRPO_RECIPE.read_text())
    assert recipe["use_vllm"] is False
    assert recipe["per_device_train_batch_size"] % recipe["num_generations"] == 0
    assert recipe["reward_funcs"] == ["accuracy", "format"]
    vocab = json.loads((REPO / recipe["model_name_or_path"] / "tokenizer.json").read_text())
    words = set(vocab["model"]["vocab"])
    rows = [json.loads(line) for line in (REPO / recipe["dataset_name"]).open()]
    assert len(rows) == 64
    for text in [recipe["system_prompt"], *(row["problem"] for row in rows)]:
        assert set(text.split()) <= words, text


_OPS = {"plus": lambda a, b: a + b, "minus": lambda a, b: a - b, "times": lambda a, b: a * b}


def test_grpo_recipe_solutions_are_right():
    recipe = yaml.safe_load(GRPO_RECIPE.read_text())
    for line in (REPO / recipe["dataset_name"]).open():
        row = json.loads(line)
        a, op, b = re.fullmatch(r"What is (\d+) (\w+) (\d+) \?", row["problem"]).groups()
        assert row["solution"] == f"The answer is \\boxed{{{_OPS[op](int(a), int(b))}}} ."


@pytest.fixture(scope="module")
def grpo():
    """examples/grpo.py as a module (it imports TRL, hence torch)."""
    pytest.importorskip("trl")
    spec = importlib.util.spec_from_file_location("grpo_example", REPO / "examples" / "grpo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.mark.slow
@pytest.mark.parametrize(
    "text, answer",
    [
        ("The answer is 13 .", Fraction(13)),
        ("Theansweris13.", Fraction(13)),  # the word-level tokenizer decodes without spaces
        ("3 plus 4 is 7, so \\boxed{7}", Fraction(7)),
        ("\\boxed{1/2}", Fraction(1, 2)),
        ("0.5", Fraction(1, 2)),
        ("<think>2 + 2 = 4, minus 5</think><answer>-1</answer>", Fraction(-1)),
        ("<answer>12</answer> and 13 later", Fraction(12)),
        ("\\boxed{3} then \\boxed{4}", Fraction(4)),
        ("\\boxed{5/0}", Fraction(0)),  # read as 5 and 0: a generated 5/0 cannot stop training
        ("no number here", None),
        ("", None),
    ],
)
def test_final_answer(grpo, text, answer):
    assert grpo.final_answer(text) == answer


@pytest.mark.slow
def test_accuracy_reward_reads_chat_and_text_completions(grpo):
    chat = [[{"role": "assistant", "content": "<answer>12</answer>"}], [{"content": "13"}]]
    assert grpo.accuracy_reward(chat, solution=["\\boxed{12}", "\\boxed{12}"]) == [1.0, 0.0]
    assert grpo.accuracy_reward(["2/4", "x"], solution=["0.5", "1"]) == [1.0, 0.0]
    # A solution without a number is skipped (None: TRL ignores it), not scored wrong.
    assert grpo.accuracy_reward(["7"], solution=["see the proof"]) == [None]


@pytest.mark.slow
@pytest.mark.parametrize(
    "completion, reward",
    [
        ("<think>\n3 + 4\n</think>\n<answer>\n7\n</answer>", 1.0),
        ("<think>3 + 4</think><answer>7</answer>", 1.0),
        ("<answer>7</answer>", 0.0),
        ("<think>3 + 4</think>", 0.0),
        ("<think>3 + 4</think><answer>7</answer> and more", 0.0),
        ("The answer is 7 .", 0.0),
    ],
)
def test_format_reward(grpo, completion, reward):
    assert grpo.format_reward([completion]) == [reward]
    assert grpo.format_reward([[{"role": "assistant", "content": completion}]]) == [reward]


@pytest.mark.slow
def test_reward_funcs_are_chosen_by_name(grpo):
    assert grpo.reward_functions(["format", "accuracy"]) == [
        grpo.format_reward,
        grpo.accuracy_reward,
    ]
    with pytest.raises(SystemExit) as stop:
        grpo.reward_functions(["accuracy", "lenght"])
    message = str(stop.value)
    assert "\n" not in message
    assert "unknown reward function 'lenght'" in message and "accuracy, format" in message

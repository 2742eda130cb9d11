"""The whole default card, byte for byte, for an SFT and a GRPO checkpoint whose training
records TRL itself wrote (tests/data/cards/make_states.py), with and without benchmark results.

    R1RELEASE_UPDATE_GOLDEN=1 python -m pytest tests/test_card_golden.py   # rewrite them
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from r1release.card import ReleaseInfo, render_card
from r1release.config import ModelConfig
from r1release.evals import EvalResult

DATA = Path(__file__).parent / "data" / "cards"
RELEASE = ReleaseInfo(
    version="v1.2.0", git_commit="0123456789abcdef" * 2 + "01234567", date="2026-11-30"
)
EVALS = (
    EvalResult(
        task="aime24",
        metric="pass@1",
        value=0.2867,
        tool="lighteval",
        source="evals/lighteval.json",
        benchmark="AIME 2024",
        dataset_id="HuggingFaceH4/aime_2024",
        stderr=0.0321,
        samples=30,
        tool_version="0.13.0",
        generation={"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 32768, "num_samples": 4},
    ),
    EvalResult(
        task="gsm8k",
        metric="exact_match,strict-match",
        value=0.5,
        tool="lm-evaluation-harness",
        source="evals/lm_eval.json",
        stderr=0.0123,
        samples=1319,
        tool_version="0.4.9",
    ),
    EvalResult(
        task="local|tiny",
        metric="acc",
        value=1.0,
        tool="lm-evaluation-harness",
        source="evals/lm_eval.json",
    ),
)


def model(path: Path) -> ModelConfig:
    return ModelConfig(
        name="OpenR1-Tiny",
        checkpoint=path,
        repo_id="org/OpenR1-Tiny",
        base_model="Qwen/Qwen2.5-0.5B",
        dataset_name="open-r1/tiny-chats",
        license="apache-2.0",
    )


@pytest.mark.parametrize("evals", [False, True], ids=["no-evals", "evals"])
@pytest.mark.parametrize("kind", ["sft", "grpo"])
def test_whole_card_matches_its_golden_file(checkpoint, kind, evals):
    path = checkpoint()
    for name in ("trainer_state.json", "README.md"):  # what the TRL run left beside the weights
        shutil.copyfile(DATA / kind / name, path / name)
    card = render_card(path, model(path), RELEASE, evals=EVALS if evals else ())
    golden = DATA / f"{kind}{'-evals' if evals else ''}.md"
    if os.environ.get("R1RELEASE_UPDATE_GOLDEN") == "1":
        golden.write_text(card, encoding="utf-8")
    assert card == golden.read_text(encoding="utf-8"), "R1RELEASE_UPDATE_GOLDEN=1 rewrites it"
    assert "None" not in card and "null" not in card
    assert not re.search(r"runtime: [\d.]+$", card, re.M)  # every duration has its unit
    assert f"- open-r1\n- trl\n- {kind}\n" in card  # release.yaml's tags, then TRL's
    assert ("## Evaluation" in card) == evals


def test_golden_cards_pass_the_hubs_reader_and_the_metadata_rule(checkpoint, tmp_path):
    from huggingface_hub import ModelCard

    from r1release.checker import check

    path = checkpoint()
    for kind in ("sft", "grpo"):
        for evals in ("", "-evals"):
            text = (DATA / f"{kind}{evals}.md").read_text(encoding="utf-8")
            (tmp_path / "README.md").write_text(text, encoding="utf-8")
            data = ModelCard.load(tmp_path / "README.md").data
            assert data.tags == ["open-r1", "trl", kind] and data.eval_results is None
            assert not check(path, card=text).by_rule("card-metadata")

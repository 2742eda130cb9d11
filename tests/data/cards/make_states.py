"""Produce the real training records the golden card tests read (run once; commit the output).

    python tests/data/cards/make_states.py

Trains a tiny Qwen2 (tests/factory.py) for two steps with TRL's own ``SFTTrainer`` and
``GRPOTrainer`` on CPU, offline, and keeps what a real run leaves beside the weights:
``trainer_state.json`` (``Trainer.save_state()``) and TRL's ``README.md``
(``create_model_card()``, which TRL also writes at every checkpoint save), so the card is
tested on the real shape of ``log_history`` and of TRL's card, not on a hand-written guess.
TRL writes no ``training_args.json`` (only the pickled ``training_args.bin``, which r1release
never reads), so none is kept. Output: ``tests/data/cards/{sft,grpo}/``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # tests/, for factory

from factory import build_checkpoint, real_cases, tiny_qwen2  # noqa: E402

KEPT = ("trainer_state.json", "README.md")


def chats() -> list[list[dict[str, str]]]:
    return [
        [
            {"role": "user", "content": f"w{i} w{i + 1}"},
            {"role": "assistant", "content": f"w{i + 2} w{i + 3}"},
        ]
        for i in range(8)
    ]


def common(output: Path) -> dict[str, object]:
    return dict(
        output_dir=str(output),
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-4,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
    )


def sft(tokenizer: object, output: Path) -> object:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    return SFTTrainer(
        model=tiny_qwen2(),
        processing_class=tokenizer,
        args=SFTConfig(**common(output), max_length=64),
        train_dataset=Dataset.from_dict({"messages": chats()}),
    )


def short_answers(completions: list[object], **_: object) -> list[float]:
    """A reward that needs no model: shorter completions score higher."""
    return [-float(len(str(c))) for c in completions]


def grpo(tokenizer: object, output: Path) -> object:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    prompts = [chat[:1] for chat in chats()]
    return GRPOTrainer(
        model=tiny_qwen2(),
        reward_funcs=short_answers,
        processing_class=tokenizer,
        args=GRPOConfig(
            **common(output), num_generations=2, max_completion_length=8, temperature=0.7
        ),
        train_dataset=Dataset.from_dict({"prompt": prompts}),
    )


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import PreTrainedTokenizerFast

    with tempfile.TemporaryDirectory() as tmp:
        source = build_checkpoint(Path(tmp) / "source", real_cases()["qwen2.5-7b-instruct"])
        tokenizer = PreTrainedTokenizerFast.from_pretrained(source)
        for name, build in (("sft", sft), ("grpo", grpo)):
            output = Path(tmp) / name
            trainer = build(tokenizer, output)
            trainer.train()
            trainer.save_state()
            trainer.create_model_card(dataset_name="open-r1/tiny-chats", tags=["open-r1"])
            target = HERE / name
            target.mkdir(exist_ok=True)
            for kept in KEPT:
                shutil.copyfile(output / kept, target / kept)
            print(f"wrote {', '.join(KEPT)} to {target}")


if __name__ == "__main__":
    main()

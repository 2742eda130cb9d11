"""GRPO in the style of open-r1's `grpo.py`, ending in `r1release.finalize()`.

    accelerate launch examples/grpo.py --config examples/recipes/tiny-grpo.yaml
    python examples/grpo.py --config examples/recipes/tiny-grpo.yaml --max_steps 4   # one process

The recipe is a YAML file of TRL's GRPOConfig / ModelConfig / script arguments, as in open-r1.
`dataset_name` is a Hub id or a local JSON/JSONL file with a `problem` column and a `solution`
column (open-r1's layout); `reward_funcs` names the rewards from `REWARD_FUNCS`, and
`model_config_path` builds the model from a config.json instead of loading weights (the tiny
recipe does this, so it trains offline on a CPU, without vLLM). Everything after training —
EOS alignment, save, card, use_cache, checks, evaluation and the push — is `r1release.finalize()`.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, set_seed
from trl import GRPOConfig, GRPOTrainer, ModelConfig, ScriptArguments, TrlParser, get_peft_config

import r1release

logger = logging.getLogger(__name__)

# open-r1's system prompt: it asks for the layout that `format_reward` scores.
SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively, i.e., "
    "<think> reasoning process here </think><answer> answer here </answer>"
)


@dataclass
class GRPOScriptArguments(ScriptArguments):
    dataset_name: str | None = field(default=None, metadata={"help": "Hub id or local file."})
    reward_funcs: list[str] = field(
        default_factory=lambda: ["accuracy", "format"],
        metadata={"help": "Reward functions, by name: accuracy, format."},
    )
    system_prompt: str | None = field(
        default=SYSTEM_PROMPT, metadata={"help": "System message before each problem."}
    )
    model_config_path: str | None = field(
        default=None, metadata={"help": "Build the model from this config.json (no weights)."}
    )
    tokenizer_name_or_path: str | None = field(default=None)
    license: str | None = field(default=None, metadata={"help": "License for the model card."})
    base_model: str | None = field(default=None, metadata={"help": "Hub id of the base model."})
    release_version: str | None = field(default=None, metadata={"help": "Hub tag when pushing."})


_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:/0*[1-9]\d*)?")  # never a zero denominator
_FORMAT = re.compile(r"^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$", re.DOTALL)


def completion_text(completion: str | list[dict[str, str]]) -> str:
    """The generated text: TRL passes a string, or a list of messages for chat prompts."""
    return completion if isinstance(completion, str) else completion[-1]["content"]


def final_answer(text: str) -> Fraction | None:
    """The number a text ends on: inside its last <answer> or \\boxed{} if any, else its last
    number. Exact fractions, so "0.5", "1/2" and "2/4" agree and 0.1 + 0.2 is no trap."""
    for pattern in (_ANSWER, _BOXED):
        found = pattern.findall(text)
        if found:
            text = found[-1]
            break
    numbers = _NUMBER.findall(text)
    return Fraction(numbers[-1]) if numbers else None


def accuracy_reward(
    completions: list[Any], solution: list[str], **kwargs: Any
) -> list[float | None]:
    """1.0 when the completion's final answer equals the solution's, else 0.0; None (ignored
    by TRL) when the solution has no number to compare, as open-r1 skips unparsable ones."""
    rewards: list[float | None] = []
    for completion, reference in zip(completions, solution, strict=True):
        expected = final_answer(reference)
        got = final_answer(completion_text(completion))
        rewards.append(None if expected is None else float(got == expected))
    return rewards


def format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 when the completion is `<think>...</think><answer>...</answer>` and nothing else."""
    return [float(bool(_FORMAT.match(completion_text(c)))) for c in completions]


REWARD_FUNCS: dict[str, Callable[..., list[float | None]]] = {
    "accuracy": accuracy_reward,
    "format": format_reward,
}


def reward_functions(names: list[str]) -> list[Callable[..., list[float | None]]]:
    """The rewards a recipe names; an unknown name stops the run before any model is built."""
    unknown = [name for name in names if name not in REWARD_FUNCS]
    if unknown:
        raise SystemExit(
            f"examples/grpo.py: unknown reward function {unknown[0]!r} in reward_funcs; "
            f"choose from {', '.join(REWARD_FUNCS)}"
        )
    return [REWARD_FUNCS[name] for name in names]


def is_local_file(name: str | None) -> bool:
    return bool(name) and Path(name).suffix in (".json", ".jsonl")


def load_data(script_args: GRPOScriptArguments) -> datasets.DatasetDict:
    name = script_args.dataset_name
    if is_local_file(name):
        return datasets.load_dataset("json", data_files={"train": name})
    return datasets.load_dataset(name, script_args.dataset_config)


def make_conversation(example: dict[str, Any], system_prompt: str | None) -> dict[str, Any]:
    """A chat prompt from the problem, so GRPOTrainer applies the tokenizer's chat template."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return {"prompt": [*system, {"role": "user", "content": example["problem"]}]}


def load_model(
    script_args: GRPOScriptArguments, training_args: GRPOConfig, model_args: ModelConfig
) -> transformers.PreTrainedModel:
    dtype = (
        model_args.dtype if model_args.dtype in ("auto", None) else getattr(torch, model_args.dtype)
    )
    if script_args.model_config_path:
        config = AutoConfig.from_pretrained(script_args.model_config_path)
        return AutoModelForCausalLM.from_config(config, dtype=dtype)
    return AutoModelForCausalLM.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        dtype=dtype,
        attn_implementation=model_args.attn_implementation,
        use_cache=not training_args.gradient_checkpointing,
    )


def main(script_args: GRPOScriptArguments, training_args: GRPOConfig, model_args: ModelConfig):
    set_seed(training_args.seed)
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        handlers=[logging.StreamHandler(sys.stdout)],
        level=training_args.get_process_log_level(),
    )
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    logger.info("Training parameters %s", training_args)
    reward_funcs = reward_functions(script_args.reward_funcs)

    tokenizer = AutoTokenizer.from_pretrained(
        script_args.tokenizer_name_or_path or model_args.model_name_or_path
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_model(script_args, training_args, model_args)

    dataset = load_data(script_args).map(
        make_conversation, fn_kwargs={"system_prompt": script_args.system_prompt}
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=dataset[script_args.dataset_train_split],
        eval_dataset=(
            dataset[script_args.dataset_test_split]
            if training_args.eval_strategy != "no" and script_args.dataset_test_split in dataset
            else None
        ),
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )

    logger.info("*** Train ***")
    result = trainer.train()
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()

    # Everything open-r1 does by hand after training, done right, on every rank. The card
    # names Hub datasets only: a local file would link to a Hub page that does not exist, so
    # finalize() refuses it (without one, it warns that a release needs release.yaml's).
    logger.info("*** Save, check and release ***")
    name = script_args.dataset_name
    finalized = r1release.finalize(
        trainer,
        tokenizer,
        dataset_name=None if is_local_file(name) else name,
        base_model=script_args.base_model,
        license=script_args.license,
        version=script_args.release_version,
    )
    if finalized.is_main_process:
        logger.info(
            "Model saved to %s%s",
            finalized.output_dir,
            f", released: {finalized.commit_url}" if finalized.commit_url else "",
        )
    # Destroy the process group before exit: under `accelerate launch` an undestroyed gloo/NCCL
    # group can abort the interpreter at exit and turn a finished release into a failed job.
    trainer.accelerator.end_training()


if __name__ == "__main__":
    parser = TrlParser((GRPOScriptArguments, GRPOConfig, ModelConfig))
    main(*parser.parse_args_and_config())

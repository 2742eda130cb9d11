"""Supervised fine-tuning in the style of open-r1's `sft.py`, ending in `r1release.finalize()`.

    accelerate launch examples/sft.py --config examples/recipes/tiny.yaml
    python examples/sft.py --config examples/recipes/tiny.yaml --max_steps 20   # one process

The recipe is a YAML file of TRL's SFTConfig / ModelConfig / script arguments, as in open-r1.
`model_config_path` builds the model from a config.json instead of loading weights (the tiny
recipe does this, so it trains offline on a CPU); `dataset_name` is a Hub id or a local
JSON/JSONL file with a `messages` column. Everything after training — EOS alignment, save,
card, use_cache, checks, evaluation and the push — is `r1release.finalize()`.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, set_seed
from trl import ModelConfig, ScriptArguments, SFTConfig, SFTTrainer, TrlParser

import r1release

logger = logging.getLogger(__name__)


@dataclass
class SFTScriptArguments(ScriptArguments):
    dataset_name: str | None = field(default=None, metadata={"help": "Hub id or local file."})
    model_config_path: str | None = field(
        default=None, metadata={"help": "Build the model from this config.json (no weights)."}
    )
    tokenizer_name_or_path: str | None = field(default=None)
    license: str | None = field(default=None, metadata={"help": "License for the model card."})
    base_model: str | None = field(default=None, metadata={"help": "Hub id of the base model."})
    release_version: str | None = field(default=None, metadata={"help": "Hub tag when pushing."})


def load_data(script_args: SFTScriptArguments) -> datasets.DatasetDict:
    name = script_args.dataset_name
    if name and Path(name).suffix in (".json", ".jsonl"):
        return datasets.load_dataset("json", data_files={"train": name})
    return datasets.load_dataset(name, script_args.dataset_config)


def main(script_args: SFTScriptArguments, training_args: SFTConfig, model_args: ModelConfig):
    set_seed(training_args.seed)
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        handlers=[logging.StreamHandler(sys.stdout)],
        level=training_args.get_process_log_level(),
    )
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    logger.info("Training parameters %s", training_args)

    tokenizer = AutoTokenizer.from_pretrained(
        script_args.tokenizer_name_or_path or model_args.model_name_or_path
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = (
        model_args.dtype
        if model_args.dtype in ("auto", None)
        else getattr(__import__("torch"), model_args.dtype)
    )
    if script_args.model_config_path:
        config = AutoConfig.from_pretrained(script_args.model_config_path)
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(
            model_args.model_name_or_path,
            revision=model_args.model_revision,
            dtype=dtype,
            attn_implementation=model_args.attn_implementation,
            use_cache=not training_args.gradient_checkpointing,
        )

    dataset = load_data(script_args)
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset[script_args.dataset_train_split],
        eval_dataset=(
            dataset[script_args.dataset_test_split]
            if training_args.eval_strategy != "no" and script_args.dataset_test_split in dataset
            else None
        ),
        processing_class=tokenizer,
    )

    logger.info("*** Train ***")
    result = trainer.train()
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()

    # Everything open-r1 does by hand after training, done right, on every rank. The card
    # names Hub datasets only: finalize() refuses a local file (without one, it warns).
    logger.info("*** Save, check and release ***")
    local = Path(script_args.dataset_name or "").suffix in (".json", ".jsonl")
    finalized = r1release.finalize(
        trainer,
        tokenizer,
        dataset_name=None if local else script_args.dataset_name,
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
    parser = TrlParser((SFTScriptArguments, SFTConfig, ModelConfig))
    main(*parser.parse_args_and_config())

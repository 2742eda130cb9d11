"""A tiny SFT-style training script ending in r1release.finalize(); run directly or under
`accelerate launch`. Used by tests/test_training.py.

Usage: train_tiny.py SOURCE_CHECKPOINT OUTPUT_DIR [--push REPO_ID] [--trainer sft|plain]
           [--write-log FILE]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("output")
    parser.add_argument("--push")
    parser.add_argument("--trainer", default="plain", choices=["plain", "sft"])
    parser.add_argument("--write-log")
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()

    import torch
    from transformers import (
        DataCollatorForLanguageModeling,
        PreTrainedTokenizerFast,
        Qwen2Config,
        Qwen2ForCausalLM,
        Trainer,
        TrainingArguments,
    )

    import r1release
    from r1release import fixes

    if args.write_log:  # record which rank writes which file
        rank = os.environ.get("RANK", "0")
        real = fixes.atomic_write

        def logged(target, text):
            with open(args.write_log, "a") as fh:
                fh.write(json.dumps({"rank": rank, "file": Path(target).name}) + "\n")
            return real(target, text)

        fixes.atomic_write = logged

    torch.manual_seed(0)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(args.source)
    if tokenizer.pad_token is None:  # Llama 3 has none; pad with EOS as TRL does
        tokenizer.pad_token = tokenizer.eos_token
    source_config = json.loads((Path(args.source) / "config.json").read_text())
    config = Qwen2Config(
        vocab_size=source_config["vocab_size"],
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        bos_token_id=source_config["bos_token_id"],
        eos_token_id=source_config["eos_token_id"],
        use_cache=False,
    )
    model = Qwen2ForCausalLM(config)
    generation = json.loads((Path(args.source) / "generation_config.json").read_text())
    model.generation_config.eos_token_id = generation["eos_token_id"]
    chats = [
        [
            {"role": "user", "content": f"w{i} w{i + 1}"},
            {"role": "assistant", "content": f"w{i + 2} w{i + 3}"},
        ]
        for i in range(8)
    ]
    common = dict(
        output_dir=args.output,
        max_steps=args.steps,
        per_device_train_batch_size=2,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        gradient_checkpointing=True,
        push_to_hub=bool(args.push),
        hub_model_id=args.push,
        do_eval=False,
        disable_tqdm=True,
    )
    if args.trainer == "sft":
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        trainer = SFTTrainer(
            model=model,
            processing_class=tokenizer,
            args=SFTConfig(**common, max_length=64),
            train_dataset=Dataset.from_dict({"messages": chats}),
        )
    else:
        from datasets import Dataset

        texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in chats]
        dataset = Dataset.from_dict({"text": texts}).map(
            lambda batch: tokenizer(batch["text"]), batched=True, remove_columns=["text"]
        )
        trainer = Trainer(
            model=model,
            args=TrainingArguments(**common),
            train_dataset=dataset,
            processing_class=tokenizer,
            data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        )
    trainer.train()
    if args.write_log:  # and every collective finalize starts: it should start none
        import torch.distributed as dist

        for name in ("barrier", "broadcast", "broadcast_object_list", "all_gather_object"):
            real_collective = getattr(dist, name)

            def logged_collective(*a, _name=name, _real=real_collective, **kw):
                with open(args.write_log, "a") as fh:
                    fh.write(json.dumps({"rank": rank, "collective": _name}) + "\n")
                return _real(*a, **kw)

            setattr(dist, name, logged_collective)
    # Like open-r1's scripts, it exits right after finalize, process group still up.
    result = r1release.finalize(
        trainer,
        tokenizer,
        dataset_name="open-r1/tiny-chats",
        base_model="Qwen/Qwen2.5-0.5B",
        license="apache-2.0",
        version="v0.1.0" if args.push else None,
    )
    record = {
        "rank": os.environ.get("RANK", "0"),
        "main": result.is_main_process,
        "commit_url": result.commit_url,
    }
    # One write (under PIPE_BUF): both ranks share the pipe, and print()'s separate writes
    # of "R1RESULT", " " and the JSON interleave when they leave finalize together.
    os.write(1, f"R1RESULT {json.dumps(record)}\n".encode())


if __name__ == "__main__":
    main()

"""Regenerate the tiny recipe's assets (committed; run only to change them).

A word-level tokenizer (built with `tokenizers`) whose special tokens carry Qwen2.5's ids,
its ChatML template, a tiny Qwen2 config, and a small arithmetic chat dataset. Together they
let `examples/sft.py` train end to end on a CPU in well under two minutes, offline.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers

HERE = Path(__file__).parent
SPECIAL = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645}
WORDS = [
    "What",
    "is",
    "plus",
    "minus",
    "times",
    "?",
    "The",
    "answer",
    ".",
    "user",
    "assistant",
    "system",
    "You",
    "are",
    "a",
    "helpful",
    "math",
    "tutor",
]
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def main() -> None:
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(WORDS)}}
    for n in range(0, 401):
        vocab[str(n)] = len(vocab)
    vocab |= SPECIAL
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    doc = json.loads(tok.to_str())
    doc["added_tokens"] = [
        {
            "id": i,
            "content": c,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for c, i in SPECIAL.items()
    ]
    (HERE / "tokenizer.json").write_text(json.dumps(doc, ensure_ascii=False) + "\n")
    (HERE / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>",
                "bos_token": None,
                "model_max_length": 512,
            },
            indent=2,
        )
        + "\n"
    )
    (HERE / "chat_template.jinja").write_text(CHATML)
    # The base model's own stop token is <|endoftext|>, as for Qwen2.5 base models: exactly the
    # case finalize() must fix (turns end with <|im_end|>).
    (HERE / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["Qwen2ForCausalLM"],
                "model_type": "qwen2",
                "vocab_size": 151936,
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "max_position_embeddings": 512,
                "bos_token_id": 151643,
                "eos_token_id": 151643,
                "tie_word_embeddings": True,
                "rms_norm_eps": 1e-6,
                "rope_theta": 10000.0,
                "use_cache": False,
            },
            indent=2,
        )
        + "\n"
    )
    rng = random.Random(0)
    ops = {"plus": lambda a, b: a + b, "times": lambda a, b: a * b}
    with open(HERE / "chats.jsonl", "w") as fh:
        for _ in range(400):
            op = rng.choice(list(ops))
            a, b = rng.randint(0, 20), rng.randint(0, 20)
            chat = [
                {"role": "user", "content": f"What is {a} {op} {b} ?"},
                {"role": "assistant", "content": f"The answer is {ops[op](a, b)} ."},
            ]
            fh.write(json.dumps({"messages": chat}) + "\n")


if __name__ == "__main__":
    main()

"""smoke-generate's hint names the token the model ended its turn with (no generation: the
generated ids are crafted; the slow tests in test_smoke_generate.py run a real model)."""

from __future__ import annotations

import pytest

from r1release.checkpoint import Checkpoint
from r1release.rules.base import Context
from r1release.rules.smoke_generate import _hint

from helpers import edit_json

BASE = "qwen2.5-base-after-chatml-sft"  # stop token <|endoftext|> 151643 only
ENDOFTEXT, IM_START, IM_END = 151643, 151644, 151645
ANSWER = (3, 4)  # "w3 w4"


def _with_pad(path, token, token_id):
    """The tokenizer pads with ``token``, and so does the generation config."""
    edit_json(path, "tokenizer_config.json", pad_token=token)
    edit_json(path, "generation_config.json", pad_token_id=token_id)


@pytest.mark.parametrize(
    ("pad", "new_ids", "named"),
    [
        # pad == EOS (SmolLM2, DeepSeek, TRL's default): the turn ends with <|im_end|>, then
        # runs on into a new turn; the hint names <|im_end|>, not <|im_start|>
        (("<|im_end|>", IM_END), (*ANSWER, IM_END, 5, IM_START, 6, IM_END), IM_END),
        # a dedicated pad token is no turn end: the pad <|endoftext|> here is a stop token
        (("<|endoftext|>", ENDOFTEXT), (*ANSWER, IM_END, IM_START), IM_END),
        # no turn end in the output: the first special token it emitted
        (("<|endoftext|>", ENDOFTEXT), (*ANSWER, IM_START, 5), IM_START),
    ],
)
def test_the_hint_names_the_token_that_ended_the_turn(checkpoint, pad, new_ids, named):
    path = checkpoint(BASE)
    _with_pad(path, *pad)
    names = {IM_END: "<|im_end|> (151645)", IM_START: "<|im_start|> (151644)"}
    hint = _hint(Context(Checkpoint(path)), new_ids, (ENDOFTEXT,))
    assert hint == (
        f"the model ended its turn with {names[named]}, which is not in generation_config.json "
        "eos_token_id [<|endoftext|> (151643)]: add it (`r1release fix` does for the chat "
        "template's turn end)"
    )


def test_a_dedicated_pad_is_never_named(checkpoint):
    path = checkpoint(BASE)
    # <|im_start|> becomes the pad token: padding only, never what ends a turn
    _with_pad(path, "<|im_start|>", IM_START)
    hint = _hint(Context(Checkpoint(path)), (*ANSWER, IM_START, 5), (ENDOFTEXT,))
    assert hint == (
        "stop tokens [<|endoftext|> (151643)]; the model never emitted one: check the chat "
        "template and that training taught the model to end its turn"
    )

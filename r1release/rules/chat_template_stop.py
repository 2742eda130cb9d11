"""chat-template-stop: the token that closes an assistant turn is a stop token.

The chat template is rendered for a short conversation; the special token right after each
assistant message (``<|im_end|>`` for ChatML, ``<|eot_id|>`` for Llama 3) is what a model
trained on that template emits when it is done, so it must stop generation.

Fails: a ChatML template with stop tokens ``[151643]`` only.
Fix: add the turn-closing token to the stop list, after the existing ones.
"""

from __future__ import annotations

from collections.abc import Iterator

from r1release.findings import Severity
from r1release.rules import generation_config
from r1release.rules.adapter_config import needs_file
from r1release.rules.base import Context, Problem, Rule, as_value

FILE = "generation_config.json"


def _missing(ctx: Context) -> list[int]:
    if not ctx.checkpoint.has_tokenizer() or ctx.checkpoint.chat_template() is None:
        return []
    stops = generation_config.generate_stop_ids(ctx)  # config.json's without the file
    return [i for i in ctx.checkpoint.turn_end_ids() if i not in stops]


def check(ctx: Context) -> Iterator[Problem]:
    for token_id in _missing(ctx):
        template = ctx.checkpoint.chat_template()
        source = template.source if template else "chat template"
        yield Problem(
            f"assistant turns in the chat template ({source}) end with "
            f"{ctx.token_name(token_id)}, which is not a stop token: the model will not stop "
            "after answering",
            FILE,
            "run `r1release fix` to add it to eos_token_id",
        )


def fix(ctx: Context) -> None:
    missing = _missing(ctx)
    if not missing:
        return
    if ctx.checkpoint.generation_config is None:
        generation_config.create(ctx)  # with the turn end
        return
    doc = ctx.edit(FILE)
    current = doc.get("eos_token_id")
    doc["eos_token_id"] = as_value([*ctx.stop_ids(), *missing], current)


RULE = Rule(
    id="R102",
    name="chat-template-stop",
    severity=Severity.ERROR,
    description="the token closing an assistant turn in the chat template is a stop token",
    check=check,
    fix=fix,
    inapplicable=needs_file("generation_config.json"),
)

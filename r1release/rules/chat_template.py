"""chat-template: a chat template exists and renders a conversation.

Read from ``chat_template.jinja`` (newer transformers) or the ``chat_template`` field of
``tokenizer_config.json``; servers fail with "template not found" without one. Set
``required: false`` for base models released without a template.

Fails: no template; a template with a Jinja syntax error.
"""

from __future__ import annotations

from collections.abc import Iterator

from r1release.checkpoint import TemplateError, TokenizerError
from r1release.findings import Severity
from r1release.rules.base import Context, Option, Problem, Rule


def check(ctx: Context) -> Iterator[Problem]:
    ckpt = ctx.checkpoint
    template = ckpt.chat_template()
    if template is None:
        if ctx.options.get("required", True):
            yield Problem(
                "no chat template (chat_template.jinja or tokenizer_config.json)",
                "chat_template.jinja",
                "save the tokenizer that was used for training, with its template",
            )
        return
    if not ckpt.has_tokenizer():
        return
    try:
        ckpt.turn_end_ids()
    except TokenizerError:
        return  # reported by the tokenizer rule
    except TemplateError as exc:
        yield Problem(exc.reason, template.source, "fix the template")


RULE = Rule(
    id="R402",
    name="chat-template",
    severity=Severity.ERROR,
    description="a chat template exists and renders",
    check=check,
    options=(Option("required", bool, True, "report a missing chat template"),),
)

"""smoke-generate (opt-in, needs torch): the model stops on its own when it answers.

Runs only when asked (``r1release check --smoke``; options from release.yaml's ``smoke:``
section). Loads the model with transformers (bfloat16 on the GPU when CUDA is available,
else float32 on the CPU), applies the chat template to each prompt with the generation
prompt, and greedy-decodes up to ``max_new_tokens`` with the checkpoint's
``generation_config.json`` (sampling turned off). Every prompt whose output does not end
on one of the generation config's stop tokens (``eos_token_id``) is reported, with the
number of tokens generated and the output's tail. Where torch is not installed the checker
does not run the rule and reports it as skipped, "needs torch (pip install
'r1release[train]')".

This is the end-to-end test of what the EOS rules check statically: a chat model whose
turn-end token (``<|im_end|>``) is not a stop token runs on to the token limit.

Fails: ``generation_config.json`` whose ``eos_token_id`` lacks the token the model emits
at the end of its answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from r1release.findings import Severity
from r1release.rules.base import Context, Need, Option, Problem, Rule, as_ids, module_available
from r1release.rules.pad_not_stop import _is_end_token as is_end_token

NEEDS_TORCH = "smoke-generate needs torch: pip install 'r1release[train]'"
TAIL = 80


def torch_available() -> bool:
    return module_available("torch")


def check(ctx: Context) -> Iterator[Problem]:
    prompts = ctx.options.get("prompts", ["What is 7 * 6?"])
    max_new_tokens = ctx.options.get("max_new_tokens", 256)
    if (
        isinstance(prompts, str)
        or not prompts
        or not all(isinstance(p, str) and p.strip() for p in prompts)
    ):
        yield Problem("smoke prompts must be a non-empty list of non-empty strings")
        return
    if type(max_new_tokens) is not int or max_new_tokens < 1:
        yield Problem(f"smoke max_new_tokens must be a positive integer, got {max_new_tokens!r}")
        return
    if not torch_available():  # the checker skips the rule then; this is for direct calls
        yield Problem(NEEDS_TORCH, hint="or run the smoke test where the model was trained")
        return
    if _inside_zero3():
        yield Problem(
            "smoke-generate cannot load a second model inside a DeepSpeed ZeRO-3 job "
            "(loading is collective there)",
            hint="run `r1release check --smoke` on the saved checkpoint after training",
        )
        return
    from r1release.smoke import SmokeError, smoke_generate

    try:
        results = smoke_generate(ctx.checkpoint, list(prompts), max_new_tokens)
    except SmokeError as exc:
        yield Problem(f"smoke generation could not run: {exc}", None, exc.hint)
        return
    for result in results:
        if result.stopped:
            continue
        count = len(result.new_ids)
        why = (
            f"reached max_new_tokens ({max_new_tokens})"
            if count >= max_new_tokens
            else "ended without a stop token"
        )
        yield Problem(
            f"prompt {result.prompt!r}: generation did not stop: {count} new tokens, "
            f"{why}; output ends {result.tail(TAIL)!r}"
            + ("" if result.templated else " (no chat template: the prompt was sent as is)"),
            "generation_config.json",
            _hint(ctx, result.new_ids, result.stop_ids),
        )


def _hint(ctx: Context, new_ids: tuple[int, ...], stop_ids: tuple[int, ...]) -> str:
    stops = ctx.names(stop_ids) if stop_ids else "none"
    ended = _turn_end(ctx, new_ids, stop_ids)
    if ended is not None:
        return (
            f"the model ended its turn with {ctx.token_name(ended)}, which is not in "
            f"generation_config.json eos_token_id {stops}: add it (`r1release fix` does for "
            "the chat template's turn end)"
        )
    return (
        f"stop tokens {stops}; the model never emitted one: check the chat template and that "
        "training taught the model to end its turn"
    )


def _turn_end(ctx: Context, new_ids: tuple[int, ...], stop_ids: tuple[int, ...]) -> int | None:
    """The token the model ended its turn with: the chat template's turn end where the output
    holds one, else the first special token it emitted. Never a stop token, nor a dedicated
    padding token (``<pad>`` is no turn end); a pad that is the EOS or an end token counts
    (SmolLM2, DeepSeek and TRL pad with the EOS, which is then what ends the turn)."""
    try:
        tok = ctx.checkpoint.tokenizer()
        special = set(tok.all_special_ids) | {
            i for i, t in tok.added_tokens_decoder.items() if getattr(t, "special", False)
        }
        turn_end = set(ctx.checkpoint.turn_end_ids()) if ctx.checkpoint.chat_template() else set()
        pads = _dedicated_pads(ctx, tok, turn_end)
    except Exception:  # a hint is no place to report a broken tokenizer or template
        return None
    emitted = [
        i for i in dict.fromkeys(new_ids) if i in special and i not in stop_ids and i not in pads
    ]
    return next((i for i in emitted if i in turn_end), emitted[0] if emitted else None)


def _dedicated_pads(ctx: Context, tok: Any, turn_end: set[int]) -> set[int]:
    """Padding ids that are only padding: not the EOS, not a turn end, not an end token."""
    ids = set(as_ids((ctx.checkpoint.generation_config or {}).get("pad_token_id")))
    if tok.pad_token_id is not None:
        ids.add(int(tok.pad_token_id))
    return {
        i
        for i in ids
        if i != tok.eos_token_id
        and i not in turn_end
        and not is_end_token(tok.convert_ids_to_tokens(i))
    }


def _inside_zero3() -> bool:
    try:
        from transformers.integrations import is_deepspeed_zero3_enabled
    except ImportError:
        return False
    try:
        return bool(is_deepspeed_zero3_enabled())
    except Exception:
        return False


RULE = Rule(
    id="R701",
    name="smoke-generate",
    severity=Severity.ERROR,
    description="greedy generation stops on a stop token (opt-in: --smoke, needs torch)",
    check=check,
    options=(
        Option("prompts", (list, tuple), ["What is 7 * 6?"], "chat prompts to generate from"),
        Option("max_new_tokens", int, 256, "generation must stop within this many new tokens"),
    ),
    # runs only with --smoke (it loads the model); without torch it is reported skipped
    needs=frozenset({Need.OPT_IN, Need.TORCH}),
)

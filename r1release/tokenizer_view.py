"""The tokenizer and chat template view of a checkpoint.

The tokenizer is transformers' ``PreTrainedTokenizerFast`` (no torch), loaded on first use;
the chat template comes from ``chat_template.jinja`` or the JSON fields, and is rendered
under a time limit. :class:`~r1release.checkpoint.Checkpoint` caches what these return.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from r1release.errors import FileUnreadable

if TYPE_CHECKING:
    from r1release.checkpoint import Checkpoint

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
SENTENCEPIECE = "tokenizer.model"  # transformers opens it too, when present


class TokenizerError(FileUnreadable):
    """The tokenizer files are present but transformers cannot load them."""


class TemplateError(FileUnreadable):
    """The chat template does not parse or does not render a simple conversation."""


@dataclass(frozen=True)
class ChatTemplate:
    source: str  # file it came from
    text: str

    def render(self, tokenizer: Any, conversation: list[dict[str, str]], **kwargs: Any) -> str:
        """``tokenizer.apply_chat_template(conversation, tokenize=False)`` with this template,
        stopped after ``R1RELEASE_TEMPLATE_TIMEOUT`` seconds (default 10): a template is code,
        and one that loops for hours must not hang a check (raises :class:`TemplateTimeout`)."""
        with time_limit(template_timeout()):
            return tokenizer.apply_chat_template(
                conversation, chat_template=self.text, tokenize=False, **kwargs
            )


class TemplateTimeout(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"rendering took longer than {seconds:g} s (an endless loop?)")


def template_timeout() -> float:
    try:
        return float(os.environ.get("R1RELEASE_TEMPLATE_TIMEOUT", "10"))
    except ValueError:
        return 10.0


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`TemplateTimeout` in the block after ``seconds`` of wall time. A timer
    signal interrupts Python code only, so it is armed on the main thread of a POSIX process;
    elsewhere (a worker thread, Windows) the block runs unlimited. Nested, the outer limit
    holds."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if seconds <= 0 or not usable or signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        yield  # no timer signal here, or an outer limit (or someone else's timer) is running
        return

    def expired(signum: int, frame: Any) -> None:
        raise TemplateTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def load_tokenizer(ckpt: Checkpoint) -> Any:
    """The fast tokenizer of ``ckpt``, or the :class:`FileUnreadable` that says why not."""
    for name in (*TOKENIZER_FILES, "chat_template.jinja", "added_tokens.json", SENTENCEPIECE):
        entry = ckpt._by_path.get(name)
        if entry is not None and entry.escapes:
            return TokenizerError(name, "symlink leaves the checkpoint directory; not read")
    for name in ckpt.special:  # transformers opens files at the top level of the directory
        if "/" not in name or name.startswith("additional_chat_templates/"):
            return TokenizerError(name, "not a regular file; the tokenizer is not loaded")
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        try:
            ckpt.json(name)
        except FileUnreadable as exc:
            return exc
    if not ckpt.exists("tokenizer.json"):
        return TokenizerError(
            "tokenizer.json", "missing; r1release needs a fast tokenizer (tokenizer.json)"
        )
    try:
        return _load_fast_tokenizer(ckpt.root)
    except Exception as exc:  # transformers raises many kinds; all mean "does not load"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return TokenizerError("tokenizer.json", f"does not load: {reason[:300]}")


def find_chat_template(ckpt: Checkpoint) -> ChatTemplate | None:
    """The chat template, from ``chat_template.jinja`` first, then the JSON fields."""
    if ckpt.exists("chat_template.jinja"):
        return ChatTemplate("chat_template.jinja", ckpt.raw_text("chat_template.jinja"))
    tok_config = ckpt.json("tokenizer_config.json") or {}
    value = tok_config.get("chat_template")
    if isinstance(value, list):  # named templates: [{"name": "default", "template": ...}]
        named = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}
        value = named.get("default")
    if isinstance(value, str) and value:
        return ChatTemplate("tokenizer_config.json", value)
    legacy = ckpt.json("chat_template.json") or {}
    if isinstance(legacy.get("chat_template"), str):
        return ChatTemplate("chat_template.json", legacy["chat_template"])
    return None


def probe_turn_end_ids(ckpt: Checkpoint) -> tuple[int, ...]:
    """The special token(s) the chat template emits right after an assistant message."""
    template = ckpt.chat_template()
    if template is None:
        return ()
    tok = ckpt.tokenizer()
    try:
        text = template.render(tok, _PROBE_CHAT)
    except Exception as exc:  # jinja2 syntax/runtime errors, raise_exception(), a timeout
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TemplateError(
            template.source,
            f"chat template does not render a conversation: {type(exc).__name__}: {reason[:200]}",
        ) from None
    special = set(tok.all_special_ids) | {
        i for i, t in tok.added_tokens_decoder.items() if getattr(t, "special", False)
    }
    found: dict[int, None] = {}
    for marker in _PROBE_ANSWERS:
        at = text.find(marker) if isinstance(text, str) else -1
        if at < 0:
            continue
        after = text[at + len(marker) :]
        for token_id in tok.encode(after, add_special_tokens=False):
            if token_id in special:
                found[token_id] = None
                break
            if tok.decode([token_id]).strip():
                break  # text, not a special token, follows the answer
    return tuple(found)


_PROBE_ANSWERS = ("R1RELEASE_PROBE_FIRST_ANSWER", "R1RELEASE_PROBE_SECOND_ANSWER")
_PROBE_CHAT = [
    {"role": "user", "content": "What is 7 * 6?"},
    {"role": "assistant", "content": _PROBE_ANSWERS[0]},
    {"role": "user", "content": "And 6 * 7?"},
    {"role": "assistant", "content": _PROBE_ANSWERS[1]},
]


def _load_fast_tokenizer(root: Path) -> Any:
    # AutoTokenizer imports torch (about 3 s); the fast tokenizer class does not.
    import logging
    import threading

    from transformers import PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    if threading.current_thread() is not threading.main_thread():
        # transformers' verbosity is process-wide: a checkpoint push loading in a worker
        # thread leaves it to the training thread (see architecture._quiet)
        return PreTrainedTokenizerFast.from_pretrained(str(root), local_files_only=True)
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity(logging.ERROR)  # class-mismatch notices are noise here
    try:
        return PreTrainedTokenizerFast.from_pretrained(str(root), local_files_only=True)
    finally:
        hf_logging.set_verbosity(previous)

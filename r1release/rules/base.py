"""What a rule is, and the context it checks.

A rule is a small module with a ``RULE`` object: a stable id and name, a default severity,
a one-line description, its options, and a ``check`` generator yielding :class:`Problem`.
Fixable rules also have a ``fix`` that edits JSON documents through the context.

What a rule needs to run is data on the rule, so the checker can say which rules did not
run and why instead of counting them as run: ``deep`` (a ``--deep`` scan), ``needs_card``
(the release's rendered model card), ``opt_in`` (asked for: ``--smoke``) and ``requires``
(importable modules: ``("torch",)``). A rule whose module is missing is not run; the
report lists it as skipped, "needs torch (pip install 'r1release[train]')".
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from r1release.checkpoint import Checkpoint
from r1release.errors import FileUnreadable
from r1release.findings import Severity

# how to install a module a rule requires, by module name
INSTALL: dict[str, str] = {
    "torch": "pip install 'r1release[train]'",
}


@dataclass(frozen=True)
class Option:
    name: str
    type: type | tuple[type, ...]
    default: Any
    doc: str


@dataclass(frozen=True)
class Problem:
    message: str
    file: str | None = None
    hint: str | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: Severity
    description: str
    check: Callable[[Context], Iterable[Problem]]
    fix: Callable[[Context], None] | None = None
    options: tuple[Option, ...] = ()
    deep: bool = False  # runs only with --deep (reads every byte)
    needs_card: bool = False  # runs only when the release's model card is rendered
    opt_in: bool = False  # runs only when asked for (--smoke): slow, loads the model
    requires: tuple[str, ...] = ()  # modules it imports that r1release does not depend on

    @property
    def fixable(self) -> bool:
        return self.fix is not None

    def missing_requirements(self) -> tuple[str, ...]:
        """The modules in ``requires`` that cannot be imported here."""
        return tuple(name for name in self.requires if not module_available(name))

    @property
    def doc(self) -> str:
        return (sys.modules[self.check.__module__].__doc__ or self.description).strip()


@dataclass
class Context:
    """What a rule sees: the checkpoint, its options, and the results of a deep scan."""

    checkpoint: Checkpoint
    options: Mapping[str, Any] = field(default_factory=dict)
    deep: Any = None  # r1release.deep.DeepScan when --deep
    card: str | None = None  # the rendered model card, when the release's model is known

    def edit(self, name: str) -> dict[str, Any]:
        """A mutable copy of a JSON document, installed as the in-memory version of ``name``."""
        doc = copy.deepcopy(self.checkpoint.json(name) or {})
        self.checkpoint.override(name, doc)
        return doc

    # ---------------------------------------------------------------- tokens

    def tokenizer_eos(self) -> tuple[str, int] | None:
        """The tokenizer's EOS token and id, or None when it has none."""
        tok = self.checkpoint.tokenizer()
        if tok.eos_token is None or tok.eos_token_id is None:
            return None
        return str(tok.eos_token), int(tok.eos_token_id)

    def stop_ids(self) -> list[int]:
        """Stop tokens in ``generation_config.json`` (an int or a list there)."""
        return as_ids((self.checkpoint.generation_config or {}).get("eos_token_id"))

    def token_name(self, token_id: int) -> str:
        try:
            token = self.checkpoint.tokenizer().convert_ids_to_tokens(token_id)
        except (FileUnreadable, OverflowError):  # ids outside the tokenizer's range
            token = None
        return f"{token} ({token_id})" if token else str(token_id)

    def names(self, ids: Iterable[int]) -> str:
        return "[" + ", ".join(self.token_name(i) for i in ids) + "]"


def module_available(name: str) -> bool:
    """Whether ``name`` can be imported, without importing it.

    A module set to ``None`` in ``sys.modules`` (how tests hide one) is not available.
    """
    try:
        return importlib.util.find_spec(name) is not None
    except ValueError:  # imported, but without __spec__ (__main__, some test stubs)
        return sys.modules.get(name) is not None
    except ImportError:  # a dotted name whose parent package is missing
        return False


def needs(modules: Iterable[str]) -> str:
    """Why a rule that requires ``modules`` cannot run: "needs torch (pip install ...)"."""
    modules = list(modules)
    hints = list(dict.fromkeys(INSTALL.get(m, f"pip install {m}") for m in modules))
    return f"needs {', '.join(modules)} ({'; '.join(hints)})"


def as_ids(value: Any) -> list[int]:
    """Normalise an EOS value (int, list of ints, or missing) to a list of ints."""
    if value is None:
        return []
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
    return []


def with_first(ids: list[int], first: int) -> list[int]:
    """``first`` followed by the other ids, order kept, without duplicates."""
    rest = [i for i in dict.fromkeys(ids) if i != first]
    return [first, *rest]


def as_value(ids: list[int], like: Any) -> int | list[int]:
    """Write ``ids`` back as an int only when the original was an int and one id remains."""
    if len(ids) == 1 and isinstance(like, int) and not isinstance(like, bool):
        return ids[0]
    return list(ids)

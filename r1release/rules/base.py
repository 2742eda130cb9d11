"""What a rule is, and the context it checks.

A rule is a small module with a ``RULE`` object: a stable id and name, a default severity,
a one-line description, its options, and a ``check`` generator yielding :class:`Problem`.
Fixable rules also have a ``fix`` that edits JSON documents through the context.

What a rule needs to run is one declared field, ``needs``: a set of :class:`Need`, either
something the check must provide (``DEEP``: a ``--deep`` scan; ``CARD``: the release's
rendered model card; ``OPT_IN``: asked for, ``--smoke``) or a module that must be
importable here (``TORCH``, with how to install it). :func:`why_not` is the one answer to
"can this rule run in this check, and if not why", so the checker reports rules that did
not run as skipped with the reason instead of counting them as run. A rule whose module is
missing is not run; the report lists it as skipped, "needs torch (pip install
'r1release[train]')".
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from r1release.checkpoint import Checkpoint
from r1release.errors import FileUnreadable
from r1release.findings import Severity


class Need(Enum):
    """What a rule needs to run: something the check provides, or an importable module.

    Each value is ``(kind, what)``: ``("check", reason it is skipped without it)`` or
    ``("module", module name)``. A new module requirement is one more member and, where
    ``pip install NAME`` is not how to get it, one line in :data:`INSTALL`.
    """

    DEEP = ("check", "needs --deep")  # reads every byte
    CARD = ("check", "needs the release's model card (pass --model)")
    OPT_IN = ("check", "opt-in: --smoke")  # slow: loads the model
    TORCH = ("module", "torch")

    @property
    def module(self) -> str | None:
        """The module this need is for, or None for what a check provides."""
        kind, what = self.value
        return what if kind == "module" else None

    @property
    def reason(self) -> str:
        """Why a rule with this need is skipped where it is not met."""
        kind, what = self.value
        return needs([what]) if kind == "module" else what


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
    needs: frozenset[Need] = frozenset()  # what it needs to run: see why_not()
    # Why it does not apply to a checkpoint (an adapter lacks the file it checks), or None:
    # the checker then reports it skipped with that reason instead of running it.
    inapplicable: Callable[[Checkpoint], str | None] | None = None

    @property
    def fixable(self) -> bool:
        return self.fix is not None

    # read-only views of ``needs`` (the rule catalogue shows them)
    @property
    def deep(self) -> bool:
        return Need.DEEP in self.needs

    @property
    def needs_card(self) -> bool:
        return Need.CARD in self.needs

    @property
    def opt_in(self) -> bool:
        return Need.OPT_IN in self.needs

    @property
    def requires(self) -> tuple[str, ...]:
        """The modules it imports that r1release does not depend on."""
        return tuple(n.module for n in Need if n in self.needs and n.module is not None)

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


def not_applicable(rule: Rule, checkpoint: Checkpoint) -> str | None:
    """Why ``rule`` does not apply to ``checkpoint`` (its kind, the files it carries), or
    None when it does."""
    if rule.inapplicable is None:
        return None
    try:
        return rule.inapplicable(checkpoint)
    except FileUnreadable:  # json-files reports the broken file; the rule skips it itself
        return None


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


def why_not(rule: Rule, *, deep: bool, card: bool, smoke: bool) -> tuple[str, bool] | None:
    """Why ``rule`` does not run in a check with (or without) a deep scan, a card, --smoke,
    and whether because a module it requires is missing here; None when it runs.

    What the check was not asked for comes first: a deep rule in a check without --deep
    says "needs --deep" even where torch is missing too.
    """
    provided = {Need.DEEP: deep, Need.CARD: card, Need.OPT_IN: smoke}
    for need in Need:  # declaration order: the reason a user reads first
        if need in rule.needs and need.module is None and not provided[need]:
            return need.reason, False
    missing = rule.missing_requirements()
    if missing:
        return needs(missing), True
    return None


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

"""``release.yaml``: a frozen, typed model of the file, loaded with file:line:key errors.

The dataclasses below are the single source of truth: the loader walks the YAML node tree
against their type hints (keeping each node's line for error messages), and
:func:`json_schema` derives the JSON Schema from the same hints and field docs.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import functools
import os
import re
import stat
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml

from r1release.errors import ConfigError, redact
from r1release.licenses import HUB_LICENSES

DEFAULT_CONFIG = "release.yaml"
MAX_CONFIG_BYTES = 16 * 1024 * 1024
# Text that YAML aliases (``*a``) may add to the document, in total, each use counted: without
# a bound, one 1 MB tag and 199 aliases to it make a 200 MB model card.
MAX_ALIAS_CHARS = 1024 * 1024
MAX_NEW_TOKENS = 4096  # smoke.max_new_tokens: the smoke test needs a short answer, not a book
MAX_PROMPTS = 32
MAX_PROMPT_CHARS = 4096
MAX_SECTION_CHARS = 16384  # intended_use, limitations: Markdown the card holds as written
# Errors one load reports, one line each: enough to fix a file in one go, not a flood.
MAX_REPORTED_ERRORS = 50
SeverityName = Literal["error", "warning", "off"]
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _doc(text: str, **extra: Any) -> dict[str, Any]:
    return {"doc": text, **extra}


def shown(value: object, limit: int = 60) -> str:
    """``value`` for a one-line message: escaped (``repr``: a newline shows as ``\\n``),
    tokens redacted, cut at about ``limit`` characters."""
    if isinstance(value, str):
        value = redact(value)
        if len(value) > limit:
            return f"{value[:limit]!r}... ({len(value)} characters)"
        return repr(value)
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- identifiers
#
# Each identifier rule is written twice, kept in step by tests/test_identifiers.py: as a
# regex (valid in Python and ECMA-262, exported to the JSON Schema; the loader checks it
# with ``fullmatch``, so a trailing newline never slips past ``$``) and as a function that
# names the rule a value breaks, for the error message.


@dataclass(frozen=True)
class Identifier:
    pattern: re.Pattern[str]
    max_length: int
    problem: Callable[[str], str | None]
    hint: str

    def why_invalid(self, value: str) -> str | None:
        """Why ``value`` is refused, or None when it is fine."""
        if len(value) > self.max_length:
            return f"longer than {self.max_length} characters"
        reason = self.problem(value)
        if reason is None and not self.pattern.fullmatch(value):
            reason = "not allowed"  # the two spellings disagree: refuse, the regex is the rule
        return reason


def _char(c: str) -> str:
    if " " < c < "\x7f":
        return repr(c)
    return f"{c!a} (U+{ord(c):04X})"  # a control character or a Unicode lookalike


def _first_bad(value: str, allowed: str) -> str | None:
    for c in value:
        if c not in allowed:
            return f"character {_char(c)} is not allowed"
    return None


_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_NAME_CHARS = _ALNUM + "._-"


def _name_problem(value: str) -> str | None:
    if not value:
        return "empty"
    if bad := _first_bad(value, _NAME_CHARS):
        return bad
    if value[0] not in _ALNUM:
        return "must start with a letter or digit"
    if ".." in value:
        return "contains '..'"
    for end in (".lock", "."):
        if value.endswith(end):
            return f"ends with {end!r}"
    return None


MODEL_NAME = Identifier(
    re.compile(r"^(?!.*\.\.)(?!.*\.$)(?!.*\.lock$)[A-Za-z0-9][A-Za-z0-9._-]{0,95}$"),
    96,
    _name_problem,
    "letters, digits, '.', '_' and '-', starting with a letter or digit; it goes into git tags "
    "NAME@vX.Y.Z",
)


def _repo_problem(value: str) -> str | None:
    """huggingface_hub's ``validate_repo_id``, with the owner required."""
    if value.count("/") != 1:
        return "must be `owner/name`, with exactly one '/'"
    return _parts_problem(value)


def _parts_problem(value: str) -> str | None:
    """What the Hub refuses in ``[owner/]name``, once the number of '/' is right."""
    parts = value.split("/")
    for what, part in zip(("owner", "name")[-len(parts) :], parts, strict=True):
        if not part:
            return f"the {what} is empty"
        if len(part) > 96:
            return f"the {what} is longer than 96 characters"
        if bad := _first_bad(part, _NAME_CHARS):
            return bad
        if part[0] not in _ALNUM + "_" or part[-1] not in _ALNUM + "_":
            return f"the {what} cannot start or end with '-' or '.'"
    for part in ("--", ".."):
        if part in value:
            return f"contains {part!r}"
    if value.endswith(".git"):
        return "ends with '.git'"
    return None


def _hub_id_problem(value: str) -> str | None:
    """huggingface_hub's ``validate_repo_id``: ``owner/name``, or a legacy canonical name
    such as ``gpt2``."""
    if value.count("/") > 1:
        return "must be `owner/name` or a single name, with at most one '/'"
    return _parts_problem(value)


_REPO_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
REPO_ID = Identifier(
    re.compile(rf"^(?!.*(?:--|\.\.))(?!.*\.git$){_REPO_PART}/{_REPO_PART}$"),
    193,
    _repo_problem,
    "use `owner/name`: letters, digits, '-', '_' and '.', at most 96 each, as the Hub allows",
)
HUB_ID = Identifier(
    re.compile(rf"^(?!.*(?:--|\.\.))(?!.*\.git$)(?:{_REPO_PART}/)?{_REPO_PART}$"),
    193,
    _hub_id_problem,
    "use the Hub id, `owner/name` (or a legacy single name such as `gpt2`): letters, digits, "
    "'-', '_' and '.', at most 96 each",
)


_LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


def _license_name_problem(value: str) -> str | None:
    if not value:
        return "empty"
    if bad := _first_bad(value, _LOWER_ALNUM + "._-"):
        return bad
    if value[0] not in _LOWER_ALNUM:
        return "must start with a lowercase letter or digit"
    return None


LICENSE_NAME = Identifier(
    re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$"),
    64,
    _license_name_problem,
    "short, lowercase, without spaces, as the Hub asks: e.g. `my-model-license`",
)

# What training scripts are given as a dataset (`load_dataset("json", data_files=...)`).
_DATA_FILE_SUFFIXES = (".json", ".jsonl", ".parquet", ".csv", ".tsv", ".txt", ".arrow")


def local_path_reason(value: str, base: Path) -> str | None:
    """Why ``value`` (a ``base_model`` or ``dataset_name``) is a path on this machine rather
    than a Hub id, or None. A card that names a local path links to a Hub page that does not
    exist (``huggingface.co/datasets/examples/recipes/tiny/chats.jsonl``)."""
    if value.startswith((".", "/", "~")):
        return f"starts with {value[0]!r}"
    if value.count("/") > 1:
        return "more than one '/'"
    suffix = next((s for s in _DATA_FILE_SUFFIXES if value.lower().endswith(s)), None)
    if suffix:
        return f"a {suffix} file"
    try:
        exists = (base / value).exists()
    except (OSError, ValueError):  # a NUL byte, a name too long: not a path here
        exists = False
    return f"{base / value} exists" if exists else None


def _link_problem(value: str) -> str | None:
    """Why ``license_link`` is neither a web address nor a file of the Hub repository."""
    if bad := next((c for c in value if not " " < c < "\x7f"), None):
        return f"character {_char(bad)} is not allowed"
    if value.startswith(("https://", "http://")):
        return None if len(value) > value.index("//") + 2 else "the address is empty"
    if "://" in value:
        return "only http(s) addresses are links"
    if value.startswith("/") or ".." in value.split("/"):
        return "a file of the repository is a relative path, without '..'"
    return None


@dataclass(frozen=True)
class Choices:
    """A closed set of values (``enum`` in the JSON Schema) and what the error calls it."""

    values: tuple[str, ...]
    what: str
    hint: str

    def why_invalid(self, value: str) -> str | None:
        if value in self.values:
            return None
        return f"{shown(value)} is not {self.what}" + did_you_mean(value.lower(), list(self.values))


LICENSE = Choices(
    tuple(HUB_LICENSES),
    "a Hub license id",
    "use an id from https://huggingface.co/docs/hub/repositories-licenses, or `other` with "
    "license_name and license_link",
)

# git check-ref-format, printable ASCII only (git allows other Unicode; a lookalike branch or
# tag is not worth it): no space, ~ ^ : ? * [ \ or control characters.
_REF_CHARS = "".join(chr(i) for i in range(0x21, 0x7F) if chr(i) not in "~^:?*[\\")
_REF_CLASS = r"\x21-\x29\x2b-\x39\x3b-\x3e\x40-\x5a\x5d\x5f-\x7d"
_REF_RULES = r"(?![-/])(?!\.)(?!.*(?:\.\.|@\{|//|/\.|\.lock/))(?!.*(?:[/.]|\.lock)$)(?!@$)"


def ref_problem(value: str, glob: bool = False, branch: bool = False) -> str | None:
    """Why git's check-ref-format refuses ``value`` (with ``*`` allowed when ``glob``)."""
    if not value:
        return "empty"
    if bad := _first_bad(value, _REF_CHARS + ("*" if glob else "")):
        return bad
    for part in ("..", "@{", "//"):
        if part in value:
            return f"contains {part!r}"
    if value[0] in "-/":
        return f"starts with {value[0]!r}"
    for end in ("/", ".lock", "."):
        if value.endswith(end):
            return f"ends with {end!r}"
    for component in value.split("/"):
        if component.startswith("."):
            return "a part starts with '.'"
        if component.endswith(".lock"):
            return "a part ends with '.lock'"
    if value == "@" or (branch and value == "HEAD"):
        return f"{value!r} is not a {'branch' if branch else 'tag'} name"
    return None


BRANCH = Identifier(
    re.compile(rf"^(?!HEAD$){_REF_RULES}[{_REF_CLASS}]{{1,255}}$"),
    255,
    functools.partial(ref_problem, branch=True),
    "a git branch name (git check-ref-format --branch), printable ASCII",
)
TAG_GLOB = Identifier(
    re.compile(rf"^{_REF_RULES}[{_REF_CLASS}*]{{1,128}}$"),
    128,
    functools.partial(ref_problem, glob=True),
    "a git tag name, printable ASCII, where '*' matches anything: `v*` or `NAME@v*`",
)


@dataclass(frozen=True)
class ModelConfig:
    name: str = field(
        metadata=_doc(
            "Short name of the model; used in git tags `NAME@vX.Y.Z`: letters, digits, `.`, "
            "`_` and `-`, starting with a letter or digit, at most 96 characters, no `..`, not "
            "ending in `.` or `.lock`.",
            identifier=MODEL_NAME,
        )
    )
    checkpoint: Path = field(
        metadata=_doc("Checkpoint directory; `${VAR}` is expanded, relative to release.yaml.")
    )
    repo_id: str = field(
        metadata=_doc(
            "Hub repository, `owner/name`, each part as the Hub allows: letters, digits, `-`, "
            "`_` and `.`, at most 96 characters, not starting or ending in `-` or `.`, no `--` "
            "or `..`, not ending in `.git`.",
            identifier=REPO_ID,
        )
    )
    base_model: str | None = field(
        default=None,
        metadata=_doc(
            "Hub id of the base model, `owner/name` (or a legacy single name such as `gpt2`); "
            "a local path is refused unless `local_paths: omit`."
        ),
    )
    dataset_name: str | None = field(
        default=None,
        metadata=_doc(
            "Hub id of the training dataset, `owner/name` (or a legacy single name); a local "
            "path (a file such as `data/chats.jsonl`, or a directory) is refused unless "
            "`local_paths: omit`."
        ),
    )
    license: str | None = field(
        default=None,
        metadata=_doc(
            "A Hub license id (https://huggingface.co/docs/hub/repositories-licenses), e.g. "
            "`apache-2.0`, `mit`, `llama3.1`; or `other` with `license_name` and `license_link`.",
            choices=LICENSE,
        ),
    )
    license_name: str | None = field(
        default=None,
        metadata=_doc(
            "With `license: other`: the license's short name, lowercase, without spaces "
            "(e.g. `my-model-license`).",
            identifier=LICENSE_NAME,
        ),
    )
    license_link: str | None = field(
        default=None,
        metadata=_doc(
            "With `license: other`: where its text is, a URL or a file of the Hub repository "
            "(e.g. `LICENSE`)."
        ),
    )
    tags: tuple[str, ...] = field(
        default=("open-r1",), metadata=_doc("Model card tags; defaults to `[open-r1]`.")
    )
    private: bool = field(
        default=True, metadata=_doc("Create the Hub repository as private (default true).")
    )
    tag_pattern: str | None = field(
        default=None,
        metadata=_doc(
            "Git tags that release this model: `v*` for one model, `NAME@v*` for several; a "
            "git tag name (printable ASCII, check-ref-format's rules) in which `*` matches "
            "anything, at most 128 characters.",
            identifier=TAG_GLOB,
        ),
    )
    evals: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "Benchmark results files (lighteval or lm-evaluation-harness results JSON): paths "
            "or globs, relative to release.yaml or, failing that, to the checkpoint."
        ),
    )
    method: str | None = field(
        default=None,
        metadata=_doc(
            "Training method named in the card (`sft`, `grpo`, `dpo`, ...); default: what the "
            "checkpoint records.",
            max_length=64,
        ),
    )
    intended_use: str | None = field(
        default=None,
        metadata=_doc("The card's intended-use section (Markdown).", max_length=MAX_SECTION_CHARS),
    )
    limitations: str | None = field(
        default=None,
        metadata=_doc("The card's limitations section (Markdown).", max_length=MAX_SECTION_CHARS),
    )
    local_paths: Literal["error", "omit"] = field(
        default="error",
        metadata=_doc(
            "What to do when `base_model` or `dataset_name` is a local path, not a Hub id: "
            "`error` (default) stops the release; `omit` leaves it out of the card's metadata "
            "with a warning."
        ),
    )
    merge: bool = field(
        default=False,
        metadata=_doc(
            "For a LoRA/PEFT adapter checkpoint (`adapter_config.json`): release the base "
            "model merged with the adapter (peft's `merge_and_unload`) as a full model, "
            "checked like any other, instead of the adapter. Needs the base weights on the "
            "runner (the local directory `base_model_name_or_path` names, or the Hugging "
            "Face cache); nothing is downloaded. Default false: the adapter is released."
        ),
    )
    omitted: frozenset[str] = field(default=frozenset(), metadata={"internal": True})

    @property
    def card_base_model(self) -> str | None:
        """``base_model`` as the card's metadata and links give it: None when it is a local
        path that ``local_paths: omit`` leaves out."""
        return None if "base_model" in self.omitted else self.base_model

    @property
    def card_dataset_name(self) -> str | None:
        """``dataset_name`` as the card gives it (None when a local path is omitted)."""
        return None if "dataset_name" in self.omitted else self.dataset_name


@dataclass(frozen=True)
class RuleSetting:
    """A rule's entry under ``checks:``: a severity and/or rule options."""

    severity: SeverityName | None = None
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    line: int | None = None


@dataclass(frozen=True)
class SmokeConfig:
    prompts: tuple[str, ...] = field(
        default=("What is 7 * 6?",),
        metadata=_doc(
            f"Chat prompts for the smoke generation: at most {MAX_PROMPTS}, each at most "
            f"{MAX_PROMPT_CHARS} characters.",
            max_items=MAX_PROMPTS,
            max_length=MAX_PROMPT_CHARS,
        ),
    )
    max_new_tokens: int = field(
        default=256,
        metadata=_doc(
            f"Generation must stop within this many new tokens: 1 to {MAX_NEW_TOKENS} "
            "(default 256).",
            minimum=1,
            maximum=MAX_NEW_TOKENS,
        ),
    )


@dataclass(frozen=True)
class PushConfig:
    revision: str = field(
        default="main",
        metadata=_doc(
            "Hub branch to commit to: a git branch name (printable ASCII, check-ref-format's "
            "rules), at most 255 characters.",
            identifier=BRANCH,
        ),
    )
    fix: bool = field(
        default=True,
        metadata=_doc("Upload a fixed staged copy; the checkpoint on disk is never edited."),
    )
    keep: tuple[str, ...] = field(
        default=(".eval_results/**",),
        metadata=_doc(
            "Glob patterns of files on the Hub that a release keeps although it does not stage "
            "them (default `[.eval_results/**]`); a file a previous release made is deleted "
            "when this one drops it."
        ),
    )
    allow_skipped: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "Rules of error severity that a release in CI may skip when they cannot run here "
            "(e.g. expected-tensors without torch); by default such a skip fails the release."
        ),
    )


@dataclass(frozen=True)
class CardConfig:
    template: Path | None = field(
        default=None,
        metadata=_doc("Jinja template for the model card (README.md), relative to release.yaml."),
    )


@dataclass(frozen=True)
class Config:
    models: tuple[ModelConfig, ...] = field(metadata=_doc("The models this repository releases."))
    version: Literal[1] = field(default=1, metadata=_doc("Version of the release.yaml format."))
    checks: Mapping[str, RuleSetting] = field(
        default_factory=lambda: MappingProxyType({}),
        metadata=_doc("Per-rule severity (`error`, `warning`, `off`) or `{severity, options}`."),
    )
    smoke: SmokeConfig = field(default_factory=SmokeConfig)
    push: PushConfig = field(default_factory=PushConfig)
    card: CardConfig = field(default_factory=CardConfig)
    path: Path = field(default=Path(DEFAULT_CONFIG), metadata={"internal": True})
    # One line each, `release.yaml:LINE: key: ...`, for the CLI to print: what loading let
    # pass but a user should know (a local path left out of the card).
    warnings: tuple[str, ...] = field(default=(), metadata={"internal": True})

    def rule_settings(self) -> dict[str, RuleSetting]:
        """``checks:`` plus the ``smoke:`` section as smoke-generate's options (options set
        under ``checks: smoke-generate`` win)."""
        settings = dict(self.checks)
        base = settings.get("smoke-generate", RuleSetting())
        smoke = {"prompts": list(self.smoke.prompts), "max_new_tokens": self.smoke.max_new_tokens}
        settings["smoke-generate"] = RuleSetting(
            base.severity, MappingProxyType(smoke | dict(base.options)), base.line
        )
        return settings

    def card_template(self) -> str | None:
        """The text of the configured card template, or None for the built-in one."""
        if self.card.template is None:
            return None
        try:
            return read_config_file(self.card.template).decode("utf-8")
        except (OSError, ValueError, NotAConfigFile) as exc:
            raise ConfigError(
                f"card.template {self.card.template}: cannot read ({exc})", file=self.path
            ) from None

    def model(self, name: str) -> ModelConfig:
        for m in self.models:
            if m.name == name:
                return m
        names = [m.name for m in self.models]
        raise ConfigError(
            f"no model named {name!r}{did_you_mean(name, names)}; models: {', '.join(names)}",
            file=self.path,
        )


# --------------------------------------------------------------------------- loading


class NotAConfigFile(Exception):
    """A path that is not a regular file (reading a FIFO blocks) or too large to be a config."""


def read_config_file(path: str | Path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of a small regular file; never blocks on a FIFO, never reads gigabytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotAConfigFile("not a regular file")
        if info.st_size > limit:
            raise NotAConfigFile(f"{info.st_size} bytes is too large for a configuration file")
        return fh.read(limit + 1)


def load(path: str | Path = DEFAULT_CONFIG) -> Config:
    """Load and validate ``release.yaml``; raises :class:`ConfigError` naming file and line."""
    path = Path(path)
    try:
        text = read_config_file(path).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "file not found", file=path, hint="create it, or pass --config PATH"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=path) from None
    except NotAConfigFile as exc:
        raise ConfigError(str(exc), file=path, hint="pass a release.yaml with --config") from None
    return loads(text, path)


def loads(text: str, path: str | Path = DEFAULT_CONFIG) -> Config:
    path = Path(path)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark and mark and mark.index >= len(text.rstrip()):
            mark = exc.context_mark  # "unexpected end of file": point at what was left open
        line = mark.line + 1 if mark else None
        message = f"YAML syntax error: {exc.problem or exc.context}"
        if exc.context and mark is exc.context_mark:
            message += f" ({exc.context})"
        raise ConfigError(message, file=path, line=line) from None
    except yaml.YAMLError as exc:  # e.g. a control character: not marked, several lines
        raise ConfigError(f"YAML error: {_one_line(exc)}", file=path) from None
    except RecursionError:
        raise ConfigError("YAML nesting too deep", file=path) from None
    if root is None:
        raise ConfigError("file is empty", file=path, hint="see `r1release schema`")
    return _Walker(path).load(root)


class _Loader(yaml.SafeLoader):
    """SafeLoader's composer, but an alias (``*a``) becomes a shallow copy of its anchor's
    node that carries the alias's own position and ``alias = True``: the walker counts the
    text that aliases add, and errors name the line of the alias."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if not self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)
        event = self.peek_event()
        node = copy.copy(super().compose_node(parent, index))  # shares the value list
        node.start_mark, node.end_mark = event.start_mark, event.end_mark
        node.alias = True  # type: ignore[attr-defined]
        return node


def _expands_aliases(method: Callable[..., Any]) -> Callable[..., Any]:
    """Keep ``self.aliases``, the aliases being walked through, outermost first."""

    @functools.wraps(method)
    def walk(self: _Walker, node: yaml.Node, *args: Any, **kwargs: Any) -> Any:
        if not getattr(node, "alias", False):
            return method(self, node, *args, **kwargs)
        self.aliases.append(node)
        try:
            return method(self, node, *args, **kwargs)
        finally:
            self.aliases.pop()

    return walk


class _Invalid(Exception):
    """A value whose errors are recorded already: what holds it cannot be built either."""


class _Stop(Exception):
    """Aliases expanded past their bound: the document is refused as it stands."""


class _Walker:
    """Converts YAML nodes to typed values. An error is recorded with its node's line and
    the walk goes on with the next key or item, so that one load reports them all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent
        self.aliases: list[yaml.Node] = []
        self.alias_chars = 0  # text read through aliases, each use counted
        self.errors: list[ConfigError] = []
        self.unreported = 0  # errors found past MAX_REPORTED_ERRORS
        self.warnings: list[str] = []

    def load(self, root: yaml.Node) -> Config:
        """The whole document as a :class:`Config`, or one ConfigError holding every error."""
        values: dict[str, Any] = {}
        try:
            with self.recording():
                values = self.dataclass_fields(root, Config, "")
        except _Stop as stop:
            raise stop.args[0] from None  # an amplification attack: its one error says it all
        if self.errors:
            ordered = sorted(self.errors, key=lambda e: e.line or 0)
            raise ConfigError.several(ordered, self.unreported)
        return Config(**values, path=self.path, warnings=tuple(self.warnings))

    def found(self) -> int:
        return len(self.errors) + self.unreported

    def report(self, error: ConfigError) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)
        else:
            self.unreported += 1

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Record the ConfigError raised inside and carry on after the block."""
        try:
            yield
        except ConfigError as error:
            self.report(error)
        except _Invalid:
            pass

    def settle(self, found_before: int) -> None:
        """Refuse to build a value when errors were recorded since ``found_before``."""
        if self.found() > found_before:
            raise _Invalid

    def count(self, text: str, key: str) -> None:
        """Count ``text`` read while inside an alias; refuse once aliases add too much."""
        if not self.aliases:
            return
        self.alias_chars += len(text)
        if self.alias_chars > MAX_ALIAS_CHARS:
            raise _Stop(
                self.error(
                    self.aliases[0],
                    key,
                    f"YAML aliases expand to more than {MAX_ALIAS_CHARS} characters",
                    hint="write the value out instead of repeating a large anchor",
                )
            )

    def error(
        self, node: yaml.Node, key: str, message: str, hint: str | None = None
    ) -> ConfigError:
        return ConfigError(
            message,
            file=self.path,
            line=node.start_mark.line + 1,
            key=key or "(top level)",
            hint=hint,
        )

    @staticmethod
    def child(node: yaml.Node, name: str) -> yaml.Node | None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == name:
                    return v
        return None

    @_expands_aliases
    def mapping(self, node: yaml.Node, key: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """The keys of a mapping node; a non-string or repeated key is recorded and left
        out (the first of repeated keys is kept)."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, key, f"expected a mapping, got {_kind(node)}")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in node.value:
            with self.recording():
                if not isinstance(k, yaml.ScalarNode) or k.tag != "tag:yaml.org,2002:str":
                    raise self.error(k, key, "keys must be strings")
                self.count(k.value, key)
                if k.value in out:
                    first = out[k.value][0].start_mark.line + 1
                    raise self.error(
                        k, _join(key, k.value), f"duplicate key (first at line {first})"
                    )
                out[k.value] = (k, v)
        return out

    def dataclass_fields(self, node: yaml.Node, cls: type, key: str) -> dict[str, Any]:
        """The fields of ``cls`` from a mapping node, every key checked before any error is
        raised (then as :class:`_Invalid`, the errors being recorded)."""
        before = self.found()
        items = self.mapping(node, key)
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
        values: dict[str, Any] = {}
        for name, (knode, vnode) in items.items():
            with self.recording():
                if name not in fields:
                    raise self.error(
                        knode,
                        _join(key, name),
                        "unknown key" + did_you_mean(name, list(fields)),
                        hint=f"allowed keys: {', '.join(fields)}",
                    )
                value = self.convert(vnode, hints[name], _join(key, name))
                self.limits(vnode, _join(key, name), value, fields[name].metadata)
                values[name] = value
        for name, f in fields.items():
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required and name not in items:
                self.report(self.error(node, _join(key, name), "required key is missing"))
        if cls is ModelConfig:
            self.model_metadata(items, values, key)
        elif cls is Config:
            self.models_list(node, items, values)
        self.settle(before)
        return values

    def limits(self, node: yaml.Node, key: str, value: Any, meta: Mapping[str, Any]) -> None:
        """Check ``value`` against its field's ``identifier``, ``choices``,
        ``minimum``/``maximum``, ``max_items`` and ``max_length`` (of a string, or of each
        string in a list)."""
        ident: Identifier | None = meta.get("identifier")
        if ident is not None and isinstance(value, str):
            reason = ident.why_invalid(value)
            if reason:
                raise self.error(node, key, f"invalid value {shown(value)}: {reason}", ident.hint)
        choices: Choices | None = meta.get("choices")
        if choices is not None and isinstance(value, str):
            reason = choices.why_invalid(value)
            if reason:
                raise self.error(node, key, reason, choices.hint)
        if isinstance(value, int) and not isinstance(value, bool):
            low, high = meta.get("minimum"), meta.get("maximum")
            if (low is not None and value < low) or (high is not None and value > high):
                raise self.error(node, key, f"{shown(value)} is not between {low} and {high}")
        if isinstance(value, tuple) and "max_items" in meta and len(value) > meta["max_items"]:
            raise self.error(
                node, key, f"{len(value)} items, more than the maximum {meta['max_items']}"
            )
        if "max_length" in meta:
            before = self.found()
            items = value if isinstance(value, tuple) else (value,)
            for i, item in enumerate(items):
                if isinstance(item, str) and len(item) > meta["max_length"]:
                    where = f"{key}[{i}]" if isinstance(value, tuple) else key
                    at = node.value[i] if isinstance(value, tuple) else node
                    self.report(
                        self.error(
                            at,
                            where,
                            f"{len(item)} characters, more than the maximum {meta['max_length']}",
                        )
                    )
            self.settle(before)

    def models_list(
        self,
        node: yaml.Node,
        items: Mapping[str, tuple[yaml.Node, yaml.Node]],
        values: Mapping[str, Any],
    ) -> None:
        """``models:`` is not empty and its names are unique (read from the nodes, so a
        model with other errors still counts)."""
        if values.get("models") == ():
            self.report(self.error(node, "models", "at least one model is required"))
        models = items.get("models", (None, None))[1]
        if not isinstance(models, yaml.SequenceNode):
            return
        seen: dict[str, int] = {}
        for i, item in enumerate(models.value):
            name = self.child(item, "name")
            if not isinstance(name, yaml.ScalarNode):
                continue
            line = item.start_mark.line + 1
            if name.value in seen:
                self.report(
                    self.error(
                        item,
                        f"models[{i}].name",
                        f"duplicate model name {name.value!r} (first defined at line "
                        f"{seen[name.value]})",
                    )
                )
            else:
                seen[name.value] = line

    def model_metadata(
        self,
        items: Mapping[str, tuple[yaml.Node, yaml.Node]],
        values: dict[str, Any],
        key: str,
    ) -> None:
        """The model's card metadata as the Hub takes it: ``license: other`` named and linked
        (and only then), ``base_model``/``dataset_name`` Hub ids, not local paths; a local
        path under ``local_paths: omit`` becomes a warning and ``omitted``."""
        given = {k for k, (_, v) in items.items() if not _is_null(v)}
        license_id = values.get("license")
        if license_id == "other":
            missing = [k for k in ("license_name", "license_link") if k not in given]
            if missing:
                self.report(
                    self.error(
                        items["license"][1],
                        _join(key, "license"),
                        f"`other` needs {' and '.join(missing)}",
                        hint="name the license (short, lowercase, e.g. `my-model-license`) "
                        "and link its text (a URL, or LICENSE in the Hub repository)",
                    )
                )
        elif "license" in values or "license" not in items:  # a valid id, or none given
            for name in ("license_name", "license_link"):
                if name in given:
                    named = f"; the Hub knows {license_id!r} by its id" if license_id else ""
                    self.report(
                        self.error(
                            items[name][1],
                            _join(key, name),
                            f"only used with `license: other`{named}",
                            hint=f"remove {name}, or set `license: other`",
                        )
                    )
        link = values.get("license_link")
        if isinstance(link, str) and (reason := _link_problem(link)):
            self.report(
                self.error(
                    items["license_link"][1],
                    _join(key, "license_link"),
                    f"invalid value {shown(link)}: {reason}",
                    hint="an https:// URL, or the path of a file in the Hub repository",
                )
            )
        omitted = set()
        for name, kind in (("base_model", "model"), ("dataset_name", "dataset")):
            value = values.get(name)
            if not isinstance(value, str):
                continue
            node, where = items[name][1], _join(key, name)
            with self.recording():
                if (reason := local_path_reason(value, self.base)) is None:
                    self.limits(node, where, value, {"identifier": HUB_ID})
                elif values.get("local_paths") == "omit":
                    omitted.add(name)
                    self.warnings.append(
                        f"{self.path}:{node.start_mark.line + 1}: {where}: {shown(value)} is a "
                        f"local path ({reason}): left out of the card (local_paths: omit)"
                    )
                else:
                    raise self.error(
                        node,
                        where,
                        f"{shown(value)} is a local path ({reason}), not a Hub {kind} id",
                        hint=f"use the {kind}'s Hub id (`owner/name`), or set "
                        "`local_paths: omit` to leave it out of the card",
                    )
        if omitted:
            values["omitted"] = frozenset(omitted)

    @_expands_aliases
    def convert(self, node: yaml.Node, tp: Any, key: str) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            if _is_null(node) and type(None) in args:
                return None
            inner = [a for a in args if a is not type(None)]
            return self.convert(node, inner[0], key)
        if dataclasses.is_dataclass(tp):
            return tp(**self.dataclass_fields(node, tp, key))
        if origin is tuple:
            if not isinstance(node, yaml.SequenceNode):
                raise self.error(node, key, f"expected a list, got {_kind(node)}")
            before, out = self.found(), []
            for i, item in enumerate(node.value):
                with self.recording():
                    out.append(self.convert(item, args[0], f"{key}[{i}]"))
            self.settle(before)
            return tuple(out)
        if origin is Literal:
            value = self.scalar(node, key)
            if value not in args:
                choices = ", ".join(repr(a) for a in args)
                raise self.error(node, key, f"expected one of {choices}, got {value!r}")
            return value
        if tp == Mapping[str, RuleSetting]:
            return self.rule_settings(node, key)
        if tp is Path:
            return self.path_value(node, key)
        value = self.scalar(node, key)
        ok = (
            isinstance(value, tp) and not (tp is int and isinstance(value, bool))
            if tp in (str, int, bool)
            else True
        )
        if not ok:
            raise self.error(node, key, f"expected {_type_name(tp)}, got {_describe(value)}")
        return value

    @_expands_aliases
    def scalar(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, key, f"expected a single value, got {_kind(node)}")
        self.count(node.value, key)
        try:
            return yaml.constructor.SafeConstructor().construct_object(node)
        except Exception as exc:  # PyYAML's constructors raise anything on odd tagged values
            raise self.error(node, key, f"invalid value: {_one_line(exc)}") from None

    def path_value(self, node: yaml.Node, key: str) -> Path:
        raw = self.scalar(node, key)
        if not isinstance(raw, str) or not raw:
            raise self.error(node, key, f"expected a path, got {_describe(raw)}")

        def expand(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            value = os.environ.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    raise self.error(
                        node,
                        key,
                        f"environment variable {name} is not set",
                        hint=f"set {name} or write ${{{name}:-default}}",
                    )
                return default
            return value

        expanded = Path(_ENV_RE.sub(expand, raw)).expanduser()
        return expanded if expanded.is_absolute() else self.base / expanded

    def rule_settings(self, node: yaml.Node, key: str) -> Mapping[str, RuleSetting]:
        """``checks:``, validated here against the rule registry: a misspelt rule or option,
        or an option of the wrong type, is refused at load with its line."""
        before = self.found()
        out: dict[str, RuleSetting] = {}
        for name, (knode, vnode) in self.mapping(node, key).items():
            with self.recording():
                out[name] = self.rule_setting(name, knode, vnode, _join(key, name))
        self.settle(before)
        return MappingProxyType(out)

    def rule_setting(self, name: str, knode: yaml.Node, vnode: yaml.Node, key: str) -> RuleSetting:
        """One rule's entry: a severity, or ``{severity, options}``, each option checked."""
        line = knode.start_mark.line + 1
        validate_rule_setting(name, {}, file=self.path, line=line)  # the rule exists
        if not isinstance(vnode, yaml.MappingNode):
            return RuleSetting(self._severity(vnode, key, self.scalar(vnode, key)), line=line)
        before = self.found()
        opts: dict[str, Any] = {}
        severity: SeverityName | None = None
        for option, (kn, v) in self.mapping(vnode, key).items():
            sub = _join(key, option)
            with self.recording():
                if option == "severity":
                    severity = self._severity(vnode, key, self.scalar_or_list(v, sub))
                    continue
                where = {"file": self.path, "line": kn.start_mark.line + 1}
                validate_rule_setting(name, {option: _ANY}, **where)  # the option exists
                opts[option] = self.scalar_or_list(v, sub)
                if name == "smoke-generate" and option in _SMOKE_FIELDS:  # smoke:'s limits hold
                    self.limits(v, sub, opts[option], _SMOKE_FIELDS[option].metadata)
                validate_rule_setting(name, {option: opts[option]}, **where)
        self.settle(before)
        return RuleSetting(severity, MappingProxyType(opts), line)

    @_expands_aliases
    def scalar_or_list(self, node: yaml.Node, key: str) -> Any:
        if isinstance(node, yaml.SequenceNode):
            return tuple(self.scalar(n, f"{key}[{i}]") for i, n in enumerate(node.value))
        return self.scalar(node, key)

    def _severity(self, node: yaml.Node, key: str, value: Any) -> SeverityName:
        if value is False:  # YAML 1.1 reads a bare `off` as false
            return "off"
        if value not in ("error", "warning", "off"):
            raise self.error(node, key, f"expected error, warning or off, got {_describe(value)}")
        return value


_SMOKE_FIELDS = {f.name: f for f in dataclasses.fields(SmokeConfig)}


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    try:
        return _describe(yaml.constructor.SafeConstructor().construct_object(node))
    except Exception:  # e.g. 2024-13-45, !!binary that is not base64, an empty !!int
        return f"the invalid value {node.value!r}"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    return f"{_type_name(type(value))} {value!r}"


def _type_name(tp: Any) -> str:
    return {str: "a string", int: "an integer", bool: "true/false", float: "a number"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_ANY = object()  # an option value not read yet: only its name is checked


def validate_rule_setting(
    name: str,
    options: Mapping[str, Any],
    *,
    file: str | Path,
    line: int | None,
    lines: Mapping[str, int] | None = None,
) -> None:
    """Check a ``checks:`` entry against the rule registry: the rule exists, each option is
    one it declares (:class:`~r1release.rules.base.Option`) with a value of its type. Raises
    one :class:`ConfigError` naming file, line (an option's own, from ``lines``) and key.
    A value of ``_ANY`` checks only the option's name (before its value is read)."""
    from r1release.rules import REGISTRY  # lazy: the registry imports every rule module

    rule = REGISTRY.get(name)
    if rule is None:
        raise ConfigError(
            "unknown rule" + did_you_mean(name, list(REGISTRY)),
            file=file,
            line=line,
            key=f"checks.{name}",
            hint="`r1release rules` lists them",
        )
    declared = {o.name: o for o in rule.options}
    for key, value in options.items():
        where = {
            "file": file,
            "line": (lines or {}).get(key, line),
            "key": f"checks.{name}.{key}",
        }
        if key not in declared:
            allowed = ", ".join(["severity", *declared]) or "severity"
            raise ConfigError(
                "unknown option" + did_you_mean(key, list(declared)),
                hint=f"{rule.name} takes: {allowed}",
                **where,
            )
        if value is _ANY:
            continue
        expected = declared[key].type
        if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
            names = expected if isinstance(expected, tuple) else (expected,)
            raise ConfigError(
                f"expected {' or '.join(t.__name__ for t in names)}, got {value!r}", **where
            )


# --------------------------------------------------------------------------- JSON Schema


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of ``release.yaml``, for editors and CI validation."""
    schema = _schema_for(Config)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/r1release/r1release/release.schema.json",
        "title": "r1release release.yaml",
        **schema,
    }


def _schema_for(tp: Any) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return {"anyOf": [_schema_for(inner[0]), {"type": "null"}]}
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        props: dict[str, Any] = {}
        required = []
        for f in dataclasses.fields(tp):
            if f.metadata.get("internal") or tp is RuleSetting:
                continue
            prop = _schema_for(hints[f.name])
            if "doc" in f.metadata:
                prop["description"] = f.metadata["doc"]
            _schema_limits(prop, f.metadata)
            if f.default is not dataclasses.MISSING and f.default is not None:
                default = f.default
                prop["default"] = (
                    list(default)
                    if isinstance(default, tuple)
                    else (str(default) if isinstance(default, Path) else default)
                )
            props[f.name] = prop
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
        out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
        if required:
            out["required"] = required
        return out
    if origin is tuple:
        return {"type": "array", "items": _schema_for(args[0])}
    if origin is Literal:
        return {"enum": list(args)}
    if tp == Mapping[str, RuleSetting]:
        return _checks_schema()
    if tp is Path:
        return {"type": "string", "minLength": 1}
    return {"type": {str: "string", int: "integer", bool: "boolean", float: "number"}[tp]}


_OPTION_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _checks_schema() -> dict[str, Any]:
    """``checks:``: one property per registered rule, a severity or ``{severity, options}``
    with the options that rule declares and their types; anything else is refused."""
    from r1release.rules import RULES  # lazy: the registry imports every rule module

    severity = {"enum": ["error", "warning", "off", False]}
    rules: dict[str, Any] = {}
    for rule in RULES:
        options = {"severity": severity} | {o.name: _option_schema(o) for o in rule.options}
        rules[rule.name] = {
            "description": f"{rule.id}: {rule.description}",
            "anyOf": [
                severity,
                {"type": "object", "properties": options, "additionalProperties": False},
            ],
        }
    return {"type": "object", "properties": rules, "additionalProperties": False}


def _option_schema(option: Any) -> dict[str, Any]:
    types_ = option.type if isinstance(option.type, tuple) else (option.type,)
    names = list(dict.fromkeys("array" if t in (list, tuple) else _OPTION_TYPES[t] for t in types_))
    default = list(option.default) if isinstance(option.default, tuple) else option.default
    out: dict[str, Any] = {"type": names[0] if len(names) == 1 else names}
    return out | {"description": option.doc, "default": default}


def _schema_limits(prop: dict[str, Any], meta: Mapping[str, Any]) -> None:
    """The loader's limits on a field (see ``_Walker.limits``) as JSON Schema keywords."""
    target = prop["anyOf"][0] if "anyOf" in prop else prop  # `str | None`: limit the string
    ident: Identifier | None = meta.get("identifier")
    if ident is not None:
        target["pattern"] = ident.pattern.pattern
        target["maxLength"] = ident.max_length
    if "choices" in meta:
        target["enum"] = list(meta["choices"].values)
    for name, keyword in (("minimum",) * 2, ("maximum",) * 2, ("max_items", "maxItems")):
        if name in meta:
            target[keyword] = meta[name]
    if "max_length" in meta:
        (target["items"] if target.get("type") == "array" else target)["maxLength"] = meta[
            "max_length"
        ]

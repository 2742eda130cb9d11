"""A read-only view of a checkpoint directory.

Reads JSON configs, the tokenizer, the chat template, safetensors *headers* (never the
weights) and the file list. Nothing here imports torch; the tokenizer is loaded with
transformers' ``PreTrainedTokenizerFast`` on first use only.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
import signal
import stat
import struct
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from r1release.errors import CheckpointError, FileUnreadable

CONFIG_JSON_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "model.safetensors.index.json",
    "chat_template.json",
    "added_tokens.json",
)
INDEX_FILE = "model.safetensors.index.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
SENTENCEPIECE = "tokenizer.model"  # transformers opens it too, when present
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")

# Training state that must never be uploaded; the leftovers rule reports these and the
# weights-format rule leaves their pickles alone.
LEFTOVER_PATTERNS = (
    "optimizer.pt",
    "optimizer.bin",
    "scheduler.pt",
    "scaler.pt",
    "rng_state*.pth",
    "training_args.bin",
    "global_step*",
    "checkpoint-*",
    "zero_to_fp32.py",
    "latest",
    "pytorch_model_fsdp*",
    "optimizer_*",
    ".cache",
    ".git",  # a git repository: huggingface_hub refuses to upload anything under .git/
)

# safetensors dtypes: name -> bytes per element
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8, "C64": 8,
}  # fmt: skip
MAX_HEADER = 100_000_000  # the limit the safetensors library enforces
MAX_JSON = 64 * 1024 * 1024
MAX_JSON_DEPTH = 100  # configs nest a few levels; deeper ones only exhaust the stack
MAX_DIM = 2**53  # bounds on a tensor's shape in a safetensors header (exclusive)
MAX_ELEMENTS = 2**60
MAX_RANK = 64
MAX_DEPTH = 64  # directory levels listed below the checkpoint root
MAX_ENTRIES = 100_000  # files and directories listed in one checkpoint
# Files of the model that transformers does not read when it loads the tokenizer. It reads
# every other top-level file it knows, config.json included (its transformers_version).
_NOT_TOKENIZER = ("generation_config.json", INDEX_FILE, "README.md")
_TEMPLATE_JSON = ("tokenizer_config.json", "chat_template.json")  # JSON the template is read from


def is_leftover(path: str) -> bool:
    """True when ``path`` (posix, relative) is training state, at any depth of its parents."""
    return any(
        fnmatch.fnmatchcase(part, pattern)
        for part in path.split("/")
        for pattern in LEFTOVER_PATTERNS
    )


@dataclass(frozen=True)
class FileEntry:
    path: str  # posix, relative to the checkpoint root
    size: int
    is_symlink: bool = False
    is_dir: bool = False  # only for symlinks to directories (never descended)
    target: str | None = None  # symlink target as written
    escapes: bool = False  # symlink resolves outside the checkpoint, dangles, loops, or is special
    mtime_ns: int = 0  # of the file (the link's target for a symlink) when it was listed


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    begin: int  # offsets relative to the start of the data section
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class SafetensorsHeader:
    path: str
    file_size: int
    header_len: int
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]

    @property
    def data_start(self) -> int:
        return 8 + self.header_len


class HeaderError(FileUnreadable):
    """A safetensors file whose header or layout is invalid."""


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


def tokenizer_input(path: str) -> bool:
    """Whether loading the tokenizer may read ``path`` (posix, relative): any top-level file
    but the weights, the generation config, the shard index and the card."""
    if path.startswith("additional_chat_templates/"):
        return True
    if "/" in path:
        return False
    return path not in _NOT_TOKENIZER and not path.endswith((".safetensors", *PICKLE_SUFFIXES))


class Checkpoint:
    """Read-only access to one checkpoint directory: one view per command, passed down.

    What it reads is cached (the file list, JSON documents, safetensors headers, the
    tokenizer, the chat template's turn end). JSON documents can be overridden in memory
    (:meth:`override`, or for a while in :meth:`layer`) so that fixes are computed and
    re-checked without touching the disk. Whoever writes into the directory tells the view
    (:meth:`refresh`): it then drops what it derived from the files that changed, and only
    that.
    """

    def __init__(self, root: str | Path) -> None:
        root = Path(root)
        if not root.exists():
            raise CheckpointError(f"{root}: checkpoint directory not found")
        if not root.is_dir():
            raise CheckpointError(f"{root}: not a directory")
        self.root = root
        self.real_root = Path(os.path.realpath(root))
        self._json: dict[str, Any] = {}
        self._identity: dict[str, tuple[Any, ...]] = {}  # filled with the file list
        self._overrides: dict[str, dict[str, Any] | None] = {}
        self._headers: dict[str, SafetensorsHeader | HeaderError] = {}
        self._turn_end: tuple[int, ...] | FileUnreadable | None = None
        self._special: tuple[str, ...] = ()  # filled with the file list
        self._unlisted: tuple[str, ...] = ()
        self._truncated = False

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.root)!r})"

    # ------------------------------------------------------------------ files

    @cached_property
    def files(self) -> tuple[FileEntry, ...]:
        """Regular files and symlinks; FIFOs, sockets and devices are in :attr:`special`.

        Symlinks are listed, never followed. The walk is iterative and bounded: directories
        more than :data:`MAX_DEPTH` levels down are not entered (:attr:`unlisted`), and the
        listing stops after :data:`MAX_ENTRIES` entries (:attr:`truncated`)."""
        entries: list[FileEntry] = []
        special: list[str] = []
        unlisted: list[str] = []
        identity: dict[str, tuple[Any, ...]] = {}
        seen = 0
        truncated = False
        stack: list[tuple[str, int]] = [("", 0)]  # (directory relative to the root, depth)
        while stack and not truncated:
            rel_dir, depth = stack.pop()
            try:
                with os.scandir(self.root / rel_dir if rel_dir else self.root) as it:
                    listing = sorted(it, key=lambda e: e.name)
            except OSError:  # unreadable, or gone: skipped, as os.walk does
                continue
            subdirs: list[str] = []
            for item in listing:
                seen += 1
                if seen > MAX_ENTRIES:
                    truncated = True
                    break
                rel = f"{rel_dir}/{item.name}" if rel_dir else item.name
                full = Path(item.path)
                if _is_dir(item):  # follows symlinks, as os.walk sorts entries
                    if item.is_symlink():
                        entries.append(self._symlink_entry(full, Path(rel), is_dir=True))
                        identity[rel] = (entries[-1],)
                    elif depth + 1 > MAX_DEPTH:
                        unlisted.append(rel)
                    else:
                        subdirs.append(rel)
                elif item.is_symlink():
                    entries.append(self._symlink_entry(full, Path(rel), is_dir=False))
                    identity[rel] = (entries[-1], *_stat_identity(full))
                else:
                    try:
                        info = full.lstat()
                    except OSError:
                        continue
                    if stat.S_ISREG(info.st_mode):
                        entries.append(FileEntry(rel, info.st_size, mtime_ns=info.st_mtime_ns))
                        identity[rel] = (entries[-1], *_identity_of(info))
                    else:  # reading a FIFO blocks forever; none of these can be uploaded
                        special.append(rel)
                        identity[rel] = ("special",)
            stack.extend((d, depth + 1) for d in reversed(subdirs))
        self._special = tuple(sorted(special))
        self._unlisted = tuple(sorted(unlisted))
        self._truncated = truncated
        self._identity = identity
        return tuple(sorted(entries, key=lambda e: e.path))

    @property
    def special(self) -> tuple[str, ...]:
        """Paths that are not regular files (FIFOs, sockets, devices): never read."""
        _ = self.files
        return self._special

    @property
    def unlisted(self) -> tuple[str, ...]:
        """Directories nested deeper than :data:`MAX_DEPTH` levels: not entered, not listed."""
        _ = self.files
        return self._unlisted

    @property
    def truncated(self) -> bool:
        """Whether the listing stopped at :data:`MAX_ENTRIES` entries."""
        _ = self.files
        return self._truncated

    def _symlink_entry(self, full: Path, rel: Path, *, is_dir: bool) -> FileEntry:
        target = os.readlink(full)
        try:
            resolved = Path(os.path.realpath(full, strict=True))
            escapes = not resolved.is_relative_to(self.real_root)
            info = resolved.stat()
            size = 0 if is_dir else info.st_size
            if not is_dir and not stat.S_ISREG(info.st_mode):
                escapes = True  # a link to a FIFO or a device is never read either
        except (OSError, RuntimeError):  # dangling or a loop
            escapes, size = True, 0
        mtime = 0 if escapes or is_dir else info.st_mtime_ns
        return FileEntry(rel.as_posix(), size, True, is_dir, target, escapes, mtime)

    @cached_property
    def _by_path(self) -> dict[str, FileEntry]:
        return {e.path: e for e in self.files}

    def entry(self, name: str) -> FileEntry | None:
        return self._by_path.get(name)

    def exists(self, name: str) -> bool:
        entry = self._by_path.get(name)
        return entry is not None and not entry.is_dir

    def glob(self, pattern: str) -> list[str]:
        return [e.path for e in self.files if fnmatch.fnmatchcase(e.path, pattern)]

    def path_of(self, name: str) -> Path:
        """The on-disk path of ``name``, refusing anything that resolves outside the root."""
        entry = self._by_path.get(name)
        if entry is None:
            raise FileUnreadable(name, "file not found")
        if entry.escapes:
            raise FileUnreadable(name, "symlink leaves the checkpoint directory; not read")
        return self.root / name

    def refresh(self, written: Iterable[str] = ()) -> tuple[str, ...]:
        """Bring the view up to date after files in the directory were written.

        The directory is listed again (stat only); what the view derived from a file whose
        entry changed (size, times, inode), appeared or went away is dropped, and read again
        on next use. ``written`` names files just written: they count as changed whatever
        their stat says (a rewrite within the file system's time granularity can keep size
        and mtime), and their in-memory overrides are dropped (the disk holds them now).
        Returns the paths that changed, sorted."""
        written = set(written)
        before = self._identity
        self.__dict__.pop("files", None)
        self.__dict__.pop("_by_path", None)
        _ = self.files
        after = self._identity
        changed = written | {
            p for p in before.keys() | after.keys() if before.get(p) != after.get(p)
        }
        for name in written:
            self._overrides.pop(name, None)
        self._forget(changed)
        return tuple(sorted(changed))

    def _forget(self, names: Iterable[str]) -> None:
        """Drop what was read or derived from ``names``."""
        names = set(names)
        for name in names:
            self._json.pop(name, None)
            self._headers.pop(name, None)
        if any(tokenizer_input(name) for name in names):
            self.__dict__.pop("_tokenizer", None)
            self._turn_end = None

    # ------------------------------------------------------------------ JSON

    def override(self, name: str, doc: dict[str, Any] | None) -> None:
        """Replace a JSON document in memory (used to compute and re-check fixes)."""
        self._overrides[name] = doc
        if name in _TEMPLATE_JSON:  # the turn end is rendered from the chat template
            self._turn_end = None

    @contextmanager
    def layer(self) -> Iterator[Checkpoint]:
        """A block whose overrides are undone when it ends (a fix computed, then diffed)."""
        saved = dict(self._overrides)
        try:
            yield self
        finally:
            touched = set(saved) | set(self._overrides)
            self._overrides = saved
            if touched & set(_TEMPLATE_JSON):
                self._turn_end = None

    @property
    def overrides(self) -> dict[str, dict[str, Any] | None]:
        return dict(self._overrides)

    def json(self, name: str) -> dict[str, Any] | None:
        """The parsed JSON object in ``name``, ``None`` when the file does not exist."""
        if name in self._overrides:
            return self._overrides[name]
        if name not in self._json:
            self._json[name] = self._read_json(name)
        value = self._json[name]
        if isinstance(value, FileUnreadable):
            raise value
        return value

    def raw_text(self, name: str) -> str:
        path = self.path_of(name)
        try:
            return path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileUnreadable(name, f"not UTF-8 text (byte {exc.start})") from None
        except OSError as exc:
            raise FileUnreadable(name, f"cannot read: {exc.strerror}") from None

    def _read_json(self, name: str) -> dict[str, Any] | FileUnreadable | None:
        if not self.exists(name):
            return None
        try:
            entry = self._by_path[name]
            if entry.size > MAX_JSON:
                return FileUnreadable(name, f"{entry.size} bytes is too large for a config file")
            text = self.raw_text(name)
            doc = loads_strict(text)
        except FileUnreadable as exc:
            return exc
        except json.JSONDecodeError as exc:
            return FileUnreadable(
                name, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            )
        except Unrepresentable as exc:
            return FileUnreadable(name, str(exc))
        except (ValueError, RecursionError) as exc:
            return FileUnreadable(name, f"invalid JSON: {exc}")
        if not isinstance(doc, dict):
            return FileUnreadable(name, f"expected a JSON object, got {type(doc).__name__}")
        return doc

    @property
    def config(self) -> dict[str, Any] | None:
        return self.json("config.json")

    @property
    def generation_config(self) -> dict[str, Any] | None:
        return self.json("generation_config.json")

    # ------------------------------------------------------------------ weights

    def safetensors_files(self) -> list[str]:
        return [
            e.path
            for e in self.files
            if e.path.endswith(".safetensors") and not e.is_dir and not is_leftover(e.path)
        ]

    def pickle_files(self) -> list[str]:
        return [
            e.path
            for e in self.files
            if e.path.endswith(PICKLE_SUFFIXES) and not e.is_dir and not is_leftover(e.path)
        ]

    def header(self, name: str) -> SafetensorsHeader:
        """Parse and validate the header of one safetensors file (reads only the header)."""
        if name not in self._headers:
            try:
                self._headers[name] = read_safetensors_header(self.path_of(name), name)
            except HeaderError as exc:
                self._headers[name] = exc
            except FileUnreadable as exc:
                self._headers[name] = HeaderError(name, exc.reason)
        value = self._headers[name]
        if isinstance(value, HeaderError):
            raise value
        return value

    # ------------------------------------------------------------------ tokenizer

    def has_tokenizer(self) -> bool:
        return any(self.exists(f) for f in ("tokenizer.json", "tokenizer_config.json"))

    @cached_property
    def _tokenizer(self) -> Any:
        for name in (*TOKENIZER_FILES, "chat_template.jinja", "added_tokens.json", SENTENCEPIECE):
            entry = self._by_path.get(name)
            if entry is not None and entry.escapes:
                return TokenizerError(name, "symlink leaves the checkpoint directory; not read")
        for name in self.special:  # transformers opens files at the top level of the directory
            if "/" not in name or name.startswith("additional_chat_templates/"):
                return TokenizerError(name, "not a regular file; the tokenizer is not loaded")
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            try:
                self.json(name)
            except FileUnreadable as exc:
                return exc
        if not self.exists("tokenizer.json"):
            return TokenizerError(
                "tokenizer.json", "missing; r1release needs a fast tokenizer (tokenizer.json)"
            )
        try:
            return _load_fast_tokenizer(self.root)
        except Exception as exc:  # transformers raises many kinds; all mean "does not load"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return TokenizerError("tokenizer.json", f"does not load: {reason[:300]}")

    def tokenizer(self) -> Any:
        """The transformers fast tokenizer; raises :class:`TokenizerError` when it won't load."""
        tok = self._tokenizer
        if isinstance(tok, FileUnreadable):
            raise tok
        return tok

    def chat_template(self) -> ChatTemplate | None:
        """The chat template, from ``chat_template.jinja`` first, then the JSON fields."""
        if self.exists("chat_template.jinja"):
            return ChatTemplate("chat_template.jinja", self.raw_text("chat_template.jinja"))
        tok_config = self.json("tokenizer_config.json") or {}
        value = tok_config.get("chat_template")
        if isinstance(value, list):  # named templates: [{"name": "default", "template": ...}]
            named = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}
            value = named.get("default")
        if isinstance(value, str) and value:
            return ChatTemplate("tokenizer_config.json", value)
        legacy = self.json("chat_template.json") or {}
        if isinstance(legacy.get("chat_template"), str):
            return ChatTemplate("chat_template.json", legacy["chat_template"])
        return None

    def turn_end_ids(self) -> tuple[int, ...]:
        """The special token(s) the chat template emits right after an assistant message."""
        if self._turn_end is None:
            try:
                self._turn_end = self._turn_end_ids()
            except FileUnreadable as exc:
                self._turn_end = exc
        value = self._turn_end
        if isinstance(value, FileUnreadable):
            raise value
        return value

    def _turn_end_ids(self) -> tuple[int, ...]:
        template = self.chat_template()
        if template is None:
            return ()
        tok = self.tokenizer()
        try:
            text = template.render(tok, _PROBE_CHAT)
        except Exception as exc:  # jinja2 syntax/runtime errors, raise_exception(), a timeout
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise TemplateError(
                template.source,
                f"chat template does not render a conversation: "
                f"{type(exc).__name__}: {reason[:200]}",
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


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _identity_of(info: os.stat_result) -> tuple[int, int, int]:
    return info.st_dev, info.st_ino, info.st_ctime_ns


def _stat_identity(path: Path) -> tuple[int, ...]:
    """Identity of what a symlink points at (none when it dangles or loops)."""
    try:
        return _identity_of(path.stat())
    except (OSError, RuntimeError):
        return ()


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


class Unrepresentable(ValueError):
    """Parsed JSON holding what JSON cannot write back: a number out of a float's range
    (Python reads ``1e400`` as infinity, which ``json.dumps`` writes as ``Infinity``), text
    with a lone surrogate (``"\\ud800"``: not Unicode, so not UTF-8), or absurd nesting.
    The message names the key."""


class _OutOfRange:
    """A float literal that overflows to infinity, kept as written (``parse_float``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def loads_strict(text: str) -> Any:
    """``json.loads`` that accepts only what it can write back unchanged: no ``NaN`` or
    ``Infinity``, no number overflowing a float, no lone surrogate in a key or a string,
    nesting of at most :data:`MAX_JSON_DEPTH`. Raises :class:`json.JSONDecodeError` for a
    syntax error and :class:`Unrepresentable` (naming the key) for the rest."""
    overflow: list[str] = []

    def parse_float(literal: str) -> float | _OutOfRange:
        value = float(literal)
        if math.isfinite(value):
            return value
        overflow.append(literal)
        return _OutOfRange(literal)

    doc = json.loads(text, parse_constant=_reject_constant, parse_float=parse_float)
    # The walk that names the key is slow on a large document: run it only when one of the
    # cheap tests says there is something to name.
    if overflow or _SURROGATE_ESCAPE.search(text) or _raw_surrogate(text) or _too_deep(doc):
        problem = unrepresentable(doc)
        if problem is not None:
            raise Unrepresentable(problem)
    return doc


def _raw_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _too_deep(doc: Any) -> bool:
    """Whether containers nest deeper than :data:`MAX_JSON_DEPTH` (containers only: fast)."""
    stack = [(doc, 1)] if type(doc) in (dict, list) else []
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        for child in value.values() if type(value) is dict else value:
            kind = type(child)
            if kind is dict or kind is list:  # what json.loads builds; no subclasses
                stack.append((child, depth + 1))
    return False


def unrepresentable(doc: Any) -> str | None:
    """Why ``doc`` cannot be written as JSON in UTF-8 and read back equal, naming the key;
    ``None`` when it can. Iterative: the nesting of untrusted documents is bounded here."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            bad = _lone_surrogate(value)
            if bad is not None:
                return (
                    f"{key_path(path)}: text holds a lone surrogate ({bad}), which is not "
                    "Unicode: it cannot be written as UTF-8"
                )
        elif isinstance(value, bool | int | None):
            continue
        elif isinstance(value, float | _OutOfRange):
            if isinstance(value, _OutOfRange) or not math.isfinite(value):
                literal = value.text if isinstance(value, _OutOfRange) else repr(value)
                literal = literal if len(literal) <= 40 else literal[:39] + "…"
                return (
                    f"{key_path(path)}: the number {literal} is out of a float's range "
                    "(read as infinity, which JSON cannot hold)"
                )
        elif isinstance(value, dict | list):
            if len(path) >= MAX_JSON_DEPTH:
                return f"{key_path(path)}: nested deeper than {MAX_JSON_DEPTH} levels"
            if isinstance(value, dict):
                for key in value:
                    bad = _lone_surrogate(key) if isinstance(key, str) else None
                    if bad is not None:
                        return (
                            f"{key_path((*path, key))}: the key holds a lone surrogate ({bad}), "
                            "which is not Unicode: it cannot be written as UTF-8"
                        )
                items: list[tuple[str | int, Any]] = list(value.items())
            else:
                items = list(enumerate(value))
            stack.extend(((v, (*path, k)) for k, v in reversed(items)))
        else:
            return f"{key_path(path)}: a {type(value).__name__}, which JSON cannot hold"
    return None


def _lone_surrogate(text: str) -> str | None:
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"\\u{ord(text[exc.start]):04x}"
    return None


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def key_path(path: tuple[str | int, ...] | list[str | int]) -> str:
    """``rope_scaling.factor``, ``added_tokens_decoder["151643"].content``, ``a[2]``: a key
    path on one printable line (odd keys JSON-quoted, escapes and all, and shortened)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part) and len(part) <= 60:
            out += f".{part}" if out else part
        else:
            quoted = json.dumps(part)  # ASCII: newlines, controls and surrogates escaped
            out += f"[{quoted if len(quoted) <= 60 else quoted[:58] + '…' + chr(34)}]"
    if len(out) > 120:
        out = f"{out[:70]}…{out[-40:]}"
    return out or "the document"


def _load_fast_tokenizer(root: Path) -> Any:
    # AutoTokenizer imports torch (about 3 s); the fast tokenizer class does not.
    import logging

    from transformers import PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity(logging.ERROR)  # class-mismatch notices are noise here
    try:
        return PreTrainedTokenizerFast.from_pretrained(str(root), local_files_only=True)
    finally:
        hf_logging.set_verbosity(previous)


def read_safetensors_header(path: Path, name: str) -> SafetensorsHeader:
    """Read and validate a safetensors header; raises :class:`HeaderError` on any defect."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < 8:
                raise HeaderError(name, f"{size} bytes is too short for a safetensors file")
            (header_len,) = struct.unpack("<Q", fh.read(8))
            if header_len > size - 8:
                raise HeaderError(
                    name,
                    f"header length {header_len} runs past the end of the file "
                    f"({size} bytes): the file is truncated or not safetensors",
                )
            if header_len > MAX_HEADER:
                raise HeaderError(name, f"header length {header_len} exceeds the 100 MB limit")
            raw = fh.read(header_len)
    except OSError as exc:
        raise HeaderError(name, f"cannot read: {exc.strerror}") from None
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise HeaderError(name, "header is not UTF-8 JSON") from None
    except (ValueError, RecursionError) as exc:
        raise HeaderError(name, f"header is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(doc, dict):
        raise HeaderError(name, "header is not a JSON object")
    metadata = doc.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise HeaderError(name, "__metadata__ must map strings to strings")
    tensors = {key: _tensor_info(name, key, value) for key, value in doc.items()}
    _check_layout(name, tensors, size - 8 - header_len)
    return SafetensorsHeader(name, size, header_len, tensors, metadata)


def _tensor_info(file: str, key: str, value: Any) -> TensorInfo:
    name = _tensor_name(key)
    if not isinstance(value, dict):
        raise HeaderError(file, f"tensor {name}: entry is not an object")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
        shown = repr(dtype) if len(repr(dtype)) <= 40 else repr(dtype)[:39] + "…"
        raise HeaderError(file, f"tensor {name}: unknown dtype {shown}")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise HeaderError(file, f"tensor {name}: shape must be a list of non-negative ints")
    if len(shape) > MAX_RANK:
        raise HeaderError(
            file, f"tensor {name}: shape has {len(shape)} dimensions (at most {MAX_RANK})"
        )
    for d in shape:  # a zero elsewhere in the shape must not hide an absurd dimension
        if d >= MAX_DIM:
            raise HeaderError(
                file, f"tensor {name}: dimension {_number(d)} of its shape is absurd (>= 2^53)"
            )
    product = 1  # of the non-zero dimensions: a zero makes the tensor empty, not the shape sane
    for d in shape:
        product *= d or 1
        if product >= MAX_ELEMENTS:
            raise HeaderError(
                file,
                f"tensor {name}: shape {_shape(shape)} is absurd: its dimensions multiply to "
                "2^60 or more",
            )
    elements = product if all(shape) else 0
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise HeaderError(file, f"tensor {name}: data_offsets must be [begin, end], begin <= end")
    needed = elements * DTYPE_SIZES[dtype]
    if offsets[1] - offsets[0] != needed:
        raise HeaderError(
            file,
            f"tensor {name}: data_offsets span {_number(offsets[1] - offsets[0])} bytes but "
            f"{dtype}{_shape(shape)} needs {needed}",
        )
    return TensorInfo(dtype, tuple(shape), offsets[0], offsets[1])


def _tensor_name(key: str) -> str:
    """``repr`` of a tensor name from an untrusted header, on one line and shortened."""
    shown = repr(key)
    return shown if len(shown) <= 120 else shown[:119] + "…"


def _shape(shape: list[int]) -> str:
    text = str(shape)
    return text if len(text) <= 80 else text[:78] + "…]"


def _number(n: int) -> str:
    text = str(n)
    return text if len(text) <= 30 else f"{text[:12]}…({len(text)} digits)"


def _check_layout(file: str, tensors: dict[str, TensorInfo], data_size: int) -> None:
    position, previous = 0, ""
    for key, info in sorted(tensors.items(), key=lambda kv: (kv[1].begin, kv[1].end)):
        if info.begin < position:
            raise HeaderError(
                file,
                f"tensors {previous} and {_tensor_name(key)} overlap "
                f"(bytes {info.begin}..{position})",
            )
        if info.begin > data_size:
            raise HeaderError(
                file,
                f"tensor {_tensor_name(key)} starts at byte {_number(info.begin)} of the data "
                f"but the file holds {data_size}: truncated",
            )
        if info.begin > position:
            raise HeaderError(
                file,
                f"{info.begin - position} unused bytes before tensor {_tensor_name(key)}: "
                "offsets must be contiguous",
            )
        position, previous = info.end, _tensor_name(key)
    if position > data_size:
        raise HeaderError(
            file, f"truncated: tensor data needs {position} bytes but the file holds {data_size}"
        )
    if position < data_size:
        raise HeaderError(file, f"{data_size - position} trailing bytes after the last tensor")

"""A read-only view of a checkpoint directory.

Lists the files, reads JSON configs, and caches what the two other views give it: the
safetensors *headers* (:mod:`r1release.safetensors_header`, never the weights) and the
tokenizer and chat template (:mod:`r1release.tokenizer_view`, transformers'
``PreTrainedTokenizerFast`` on first use only). Nothing here imports torch. The names those
modules define are importable from here too.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from r1release.errors import CheckpointError, FileUnreadable
from r1release.safetensors_header import (  # noqa: F401  (re-exported: the public names moved)
    DTYPE_BITS,
    MAX_DIM,
    MAX_ELEMENTS,
    MAX_HEADER,
    MAX_RANK,
    HeaderError,
    SafetensorsHeader,
    TensorInfo,
    _reject_constant,
    read_safetensors_header,
)
from r1release.tokenizer_view import (  # noqa: F401  (re-exported: the public names moved)
    SENTENCEPIECE,
    TOKENIZER_FILES,
    ChatTemplate,
    TemplateError,
    TemplateTimeout,
    TokenizerError,
    find_chat_template,
    load_tokenizer,
    probe_turn_end_ids,
    template_timeout,
    time_limit,
)

CONFIG_JSON_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "model.safetensors.index.json",
    "chat_template.json",
    "added_tokens.json",
    "adapter_config.json",
)
INDEX_FILE = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")

# Checkpoint kinds. peft's save_pretrained writes adapter_config.json and
# adapter_model.safetensors and no config.json: the rules that need a full model skip such a
# checkpoint (saying why) and the adapter rules check it instead.
MODEL = "model"
ADAPTER = "adapter"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"

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


MAX_JSON = 64 * 1024 * 1024
MAX_JSON_DEPTH = 100  # configs nest a few levels; deeper ones only exhaust the stack

MAX_DEPTH = 64  # directory levels listed below the checkpoint root
MAX_ENTRIES = 100_000  # files and directories listed in one checkpoint
# Files of the model that transformers does not read when it loads the tokenizer. It reads
# every other top-level file it knows, config.json included (its transformers_version).
_NOT_TOKENIZER = ("generation_config.json", INDEX_FILE, "README.md")
_TEMPLATE_JSON = ("tokenizer_config.json", "chat_template.json")  # JSON the template is read from
# What transformers' tokenizer loader reads from config.json (to decide on its Mistral regex
# fix, tokenization_utils_tokenizers.py); nothing else of it changes the tokenizer.
_TOKENIZER_CONFIG_KEYS = ("transformers_version", "model_type")


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
        config_before = self._json.get("config.json")
        for name in names:
            self._json.pop(name, None)
            self._headers.pop(name, None)
        if "config.json" in names and self._same_for_tokenizer(config_before):
            names.discard("config.json")  # a fix's eos_token_id or use_cache: same tokenizer
        if any(tokenizer_input(name) for name in names):
            self.__dict__.pop("_tokenizer", None)
            self._turn_end = None

    def _same_for_tokenizer(self, before: Any) -> bool:
        """Whether ``config.json`` still holds what the tokenizer loader read from it before."""
        if not isinstance(before, dict):
            return False
        after = self._read_json("config.json")  # the disk, as the tokenizer loader reads it
        self._json["config.json"] = after
        return isinstance(after, dict) and all(
            before.get(key) == after.get(key) for key in _TOKENIZER_CONFIG_KEYS
        )

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
    def kind(self) -> str:
        """:data:`ADAPTER` when the directory holds ``adapter_config.json`` (what peft's
        ``save_pretrained`` writes, and what ``PeftModel.from_pretrained`` looks for first),
        else :data:`MODEL`."""
        return ADAPTER if self.exists(ADAPTER_CONFIG) else MODEL

    @property
    def adapter_config(self) -> dict[str, Any] | None:
        return self.json(ADAPTER_CONFIG)

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
        return load_tokenizer(self)

    def tokenizer(self) -> Any:
        """The transformers fast tokenizer; raises :class:`TokenizerError` when it won't load."""
        tok = self._tokenizer
        if isinstance(tok, FileUnreadable):
            raise tok
        return tok

    def chat_template(self) -> ChatTemplate | None:
        """The chat template, from ``chat_template.jinja`` first, then the JSON fields."""
        return find_chat_template(self)

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
        return probe_turn_end_ids(self)


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

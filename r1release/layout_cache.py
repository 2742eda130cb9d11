"""A cache of what expected-tensors computes from ``config.json``: ``cache_dir()/layouts/``.

Building a model class on the meta device is cheap, importing torch and transformers' model
code to do it is not (about 6 CPU-s and 280 MB on every deep check). What the build yields
depends only on ``config.json`` and the installed transformers and torch, so it is stored
under a key of exactly those: sha256 over :data:`LAYOUT_FORMAT`, r1release's, transformers'
and torch's installed versions (read from package metadata: nothing is imported) and the
canonical JSON of the config (sorted keys), less the few keys that cannot change a tensor's
name, shape or dtype (:data:`NOT_LAYOUT`: the version that saved it, its source path,
``use_cache``, the special-token ids — what ``r1release fix`` and a re-save rewrite). A new
transformers, a changed ``vocab_size``, any other edit of the config is a different key,
never a stale entry.

This module only stores and reads JSON documents by key; what a document holds, and its
strict validation, belong to ``architecture.py``. The cache is safe to lose:
a missing, corrupt, oversized, foreign-owned or unwritable entry or directory is a miss
(the caller computes), never an error. Entries are written atomically (a temporary file,
then ``os.replace``) with mode 0600 in a 0700 directory, at most :data:`MAX_ENTRY_BYTES`
each; beyond :data:`MAX_ENTRIES` the least recently used are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from r1release.cache import cache_dir

# Bump when what expected-tensors computes, or how an entry stores it, changes.
LAYOUT_FORMAT = 2
# Top-level config keys that do not reach the state dict: left out of the key, so that a fix of
# EOS or use_cache, or a re-save by a newer transformers, does not rebuild the model.
NOT_LAYOUT = frozenset(
    {"transformers_version", "_name_or_path", "use_cache", "bos_token_id", "eos_token_id",
     "pad_token_id"}
)  # fmt: skip
MAX_ENTRY_BYTES = 64 * 1024 * 1024  # a config with ~100k tensors needs ~10 MB
MAX_ENTRIES = 256
_STALE_TMP_S = 3600  # a writer that died left its temporary file behind
_KEY_PACKAGES = ("r1release", "transformers", "torch")


def package_version(name: str) -> str | None:
    """The installed version of ``name`` from its metadata (never imports it)."""
    try:
        return metadata.version(name)
    except Exception:  # not installed, or broken metadata
        return None


def layout_key(config_doc: Mapping[str, Any]) -> str | None:
    """The cache key of ``config_doc`` here, or None when it cannot be keyed (a package
    without a version, a config that is not plain JSON): then nothing is cached."""
    versions = {name: package_version(name) for name in _KEY_PACKAGES}
    if versions["transformers"] is None or versions["torch"] is None:
        return None
    layout = {k: v for k, v in config_doc.items() if k not in NOT_LAYOUT}
    try:
        config = json.dumps(
            layout, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True
        )
    except (TypeError, ValueError, RecursionError):
        return None
    text = json.dumps(
        {"format": LAYOUT_FORMAT, "versions": versions}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(f"{text}\n{config}".encode()).hexdigest()


def layouts_dir() -> Path:
    return cache_dir() / "layouts"


def load(key: str) -> Any:
    """The JSON document stored under ``key``, or None (absent, unreadable, too big, not
    JSON, or in a directory that is not this user's alone)."""
    directory = layouts_dir()
    if not _trusted(directory):
        return None
    path = directory / f"{key}.json"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ENTRY_BYTES:
                return None
            data = file.read(MAX_ENTRY_BYTES + 1)
        if len(data) > MAX_ENTRY_BYTES:
            return None
        doc = json.loads(data)
    except (OSError, ValueError, RecursionError):
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: pruned last
    return doc


def store(key: str, doc: Any) -> bool:
    """Write ``doc`` under ``key`` atomically; False (and nothing written) when it cannot be."""
    try:
        data = json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode()
    except (TypeError, ValueError, RecursionError):
        return False
    if len(data) > MAX_ENTRY_BYTES:
        return False
    directory = layouts_dir()
    tmp: str | None = None
    try:
        _make_dir(directory)
        if not _trusted(directory):
            return False
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)  # mode 0600
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(tmp, directory / f"{key}.json")
        tmp = None
    except OSError:
        return False
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _prune(directory)
    return True


def _make_dir(directory: Path) -> None:
    parent = directory.parent
    if not parent.is_dir():
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not directory.is_dir():
        directory.mkdir(mode=0o700, exist_ok=True)  # the umask may remove bits, never add


def _trusted(directory: Path) -> bool:
    """A real directory of this user's that nobody else can write into: an entry decides a
    verdict, so one planted by another account must not be read."""
    try:
        info = os.lstat(directory)
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return False
    getuid = getattr(os, "getuid", None)
    return getuid is None or info.st_uid == getuid()


def _prune(directory: Path) -> None:
    """Keep at most MAX_ENTRIES entries (least recently used go first); drop stale temps."""
    try:
        entries = []
        now = time.time()
        with os.scandir(directory) as it:
            for entry in it:
                if not entry.name.endswith(".json") or not entry.is_file(follow_symlinks=False):
                    continue
                mtime = entry.stat(follow_symlinks=False).st_mtime
                if entry.name.startswith(".tmp-"):
                    if now - mtime > _STALE_TMP_S:
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)
                    continue
                entries.append((mtime, entry.path))
    except OSError:
        return
    entries.sort()
    for _, path in entries[: max(0, len(entries) - MAX_ENTRIES)]:
        with contextlib.suppress(OSError):
            os.unlink(path)

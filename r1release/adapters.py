"""LoRA/PEFT adapters: where their base model is on this machine, and merging them into it.

An adapter checkpoint (peft's ``save_pretrained``: ``adapter_config.json`` and
``adapter_model.safetensors``, no ``config.json``) names its base in
``base_model_name_or_path``: a local directory or a Hub id. The base is looked for on this
machine only — that directory, or the Hugging Face cache (through :mod:`r1release.hub`,
offline) — and never downloaded: what a check or a release finds must not depend on what
the network serves that day, and a 7B base is no download to start behind a user's back.

``merge: true`` releases the base merged with the adapter (peft's ``merge_and_unload``,
saved by ``save_pretrained``) as a full checkpoint, which is then checked like any other.
torch, transformers and peft are imported here only inside :func:`merge_adapter`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from r1release.cache import cache_dir
from r1release.checkpoint import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    PICKLE_SUFFIXES,
    Checkpoint,
    is_leftover,
    loads_strict,
)
from r1release.config import shown
from r1release.errors import R1ReleaseError, redact

MERGED = "merged"  # under cache_dir(): merged checkpoints, one per adapter and base
_DONE = ".r1release-merged"  # written last: a merge cut short is never reused
KEY_FORMAT = 2  # of what _merge_key digests: a change makes every earlier merge a miss
ERROR_LIMIT = 300  # characters of a library's error message in ours
NAME_LIMIT = 160  # characters of an untrusted name in a message: a Hub id, a local path
# What a merged checkpoint gets from the adapter's directory: everything a loader reads
# besides the adapter itself (tokenizer, chat template, training logs for the card); the
# merged save's own config.json, generation_config.json and weights are not overwritten.
_NOT_COPIED = (ADAPTER_CONFIG, ADAPTER_WEIGHTS, "README.md")


class MergeUnavailable(R1ReleaseError):
    """``merge: true``, but the base model's weights, or peft, are not on this machine."""


class MergeFailed(R1ReleaseError):
    """``merge: true``, and loading, merging or saving failed (memory, a mismatched base)."""


def named(value: object, limit: int = NAME_LIMIT) -> str:
    """``value`` (a name read from an adapter's files) for a message: a short printable
    string as it is (``Qwen/Qwen2.5-0.5B``, ``q_proj``); anything else escaped and cut
    (``'a\\nb'``, ``['q', ...``), so that no value adds a line or floods a log."""
    if isinstance(value, str) and value and value.isprintable() and len(value) <= limit:
        return redact(value)
    return shown(value, limit)


def base_model_name(checkpoint: Checkpoint) -> str | None:
    """The adapter's ``base_model_name_or_path`` (a Hub id or a local path), or None."""
    config = checkpoint.adapter_config
    name = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    return name if isinstance(name, str) and name.strip() else None


def base_directory(name: str) -> Path | None:
    """Where the base model ``name`` is on this machine: the local directory it names, else
    its snapshot in the Hugging Face cache; None when neither holds its ``config.json``."""
    try:
        local = Path(name).expanduser()
        if (local / "config.json").is_file():
            return local
    except (OSError, ValueError):  # a NUL byte, a name too long: not a path here
        pass
    from r1release.hub import cached_snapshot

    return cached_snapshot(name)


def base_config(checkpoint: Checkpoint) -> dict[str, Any] | None:
    """The base model's ``config.json`` where it is on this machine, else None (a broken
    file counts as absent: the adapter rules then check shapes alone)."""
    name = base_model_name(checkpoint)
    directory = base_directory(name) if name else None
    if directory is None:
        return None
    try:
        doc = loads_strict((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def has_weights(directory: Path) -> bool:
    """Whether ``directory`` holds a model's weights (safetensors or pickle), not only its
    config (a cache that fetched ``config.json`` alone)."""
    return any(p.name.endswith((".safetensors", *PICKLE_SUFFIXES)) for p in directory.iterdir())


def merge_adapter(checkpoint: Checkpoint) -> Path:
    """The base merged with the adapter at ``checkpoint``, saved as a full checkpoint under
    the cache directory (``cache_dir()/merged/<key>``), with the adapter's tokenizer files.

    The key is a digest of what the merge reads (:func:`_merge_key`), so a second release of
    the same adapter on the same base reuses the merge. Concurrent releases are safe: each
    merges into a directory of its own, renamed into place once complete (the marker file
    written last), and a complete merge is never removed: another release may be uploading
    it. Raises :class:`MergeUnavailable` when the base weights or peft are not on this
    machine, :class:`MergeFailed` when the merge itself fails."""
    name = base_model_name(checkpoint)
    directory = base_directory(name) if name else None
    shown_name = named(name) if name else "(base_model_name_or_path is not set)"
    if name is None or directory is None or not has_weights(directory):
        raise MergeUnavailable(
            f"{checkpoint.root / ADAPTER_CONFIG}: merge: true needs the weights of the base "
            f"model {shown_name} on this machine, and neither a local directory nor the "
            "Hugging Face cache holds them",
            hint=f"download the base first (hf download {named(name) if name else 'BASE'}), or "
            "set merge: false to release the adapter itself",
        )
    try:
        target = cache_dir() / MERGED / _merge_key(checkpoint, directory)
        if _complete(target):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".merging-", dir=target.parent))
    except OSError as exc:
        raise _failed(checkpoint, shown_name, exc, _cache_hint()) from exc
    try:
        _save_merged(checkpoint, shown_name, directory, work)
        _copy_adapter_files(checkpoint, work)
        (work / _DONE).write_text(json.dumps({"base": str(directory)}) + "\n")
        return _install(work, target)
    except OSError as exc:  # the disk filled, the cache is not writable
        raise _failed(checkpoint, shown_name, exc, _cache_hint()) from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)  # gone already when installed


def _complete(directory: Path) -> bool:
    """Whether ``directory`` holds a whole merge: its marker is written last."""
    return (directory / _DONE).is_file()


def _install(work: Path, target: Path) -> Path:
    """Rename the complete merge ``work`` to ``target`` (atomic) and return where the merge
    is. Another release that merged the same inputs first wins: its merge is used. A
    ``target`` without the marker (a copy cut short by an older r1release, or damaged) is
    moved aside and removed first; one that turns out complete once moved is left alone."""
    for _ in range(2):
        try:
            os.rename(work, target)  # fails where target is a directory with files in it
            return target
        except OSError:
            if _complete(target):
                return target
        aside = Path(tempfile.mkdtemp(prefix=".stale-", dir=target.parent)) / "merge"
        with contextlib.suppress(OSError):
            os.rename(target, aside)
        if not _complete(aside):
            shutil.rmtree(aside.parent, ignore_errors=True)
    os.rename(work, target)  # still occupied: the OSError says by what
    return target


def _merge_key(checkpoint: Checkpoint, base: Path) -> str:
    """A digest of what the merge reads: the contents of the adapter's files it uses, the
    base's configs (their contents) and weights (name, size, mtime: hashing a 7B base on
    every release would cost more than the merge saves), and the versions of the libraries
    that merge and save."""
    adapter = {name: _sha256(checkpoint.root / name) for name in sorted(_merge_inputs(checkpoint))}
    weights, configs = {}, {}
    for path in sorted(p for p in base.iterdir() if p.is_file()):
        if path.name.endswith(".json"):
            configs[path.name] = _sha256(path)
        elif path.name.endswith((".safetensors", *PICKLE_SUFFIXES)):
            stat = path.stat()  # a Hugging Face cache's symlink: its blob
            weights[path.name] = [stat.st_size, stat.st_mtime_ns]
    versions = {name: _version(name) for name in ("peft", "transformers", "torch")}
    text = json.dumps([KEY_FORMAT, adapter, configs, weights, versions], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _save_merged(checkpoint: Checkpoint, base_name: str, base: Path, out: Path) -> None:
    """``merge_and_unload`` of the adapter on its base, in the base's dtype, saved by
    ``save_pretrained`` (safetensors, transformers' own layout). What peft, transformers or
    torch raise (a missing package, an adapter that does not fit the base, memory) becomes
    one line naming the adapter."""
    try:
        from peft import PeftModel
        from transformers import AutoModelForCausalLM
    except ImportError as exc:
        raise MergeUnavailable(
            f"{checkpoint.root / ADAPTER_CONFIG}: merge: true needs peft, transformers and "
            f"torch, and {exc.name or 'one of them'} is not installed",
            hint="pip install 'r1release[train]', or set merge: false to release the adapter "
            "itself",
        ) from exc
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base), dtype="auto")
        merged = PeftModel.from_pretrained(model, str(checkpoint.root)).merge_and_unload()
    except Exception as exc:  # third-party code: any error is a failed merge, said once
        raise _failed(checkpoint, base_name, exc, _CHECK_BASE) from exc
    try:
        merged.save_pretrained(str(out))
    except Exception as exc:
        raise _failed(checkpoint, base_name, exc, _cache_hint()) from exc


_CHECK_BASE = "check that base_model_name_or_path names the model the adapter was trained on"


def _cache_hint() -> str:
    return f"check the free space and permissions of {named(str(cache_dir()))}"


def _first_line(exc: BaseException) -> str:
    """A library's error message, first line only (the rest is a traceback or a table)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def _failed(checkpoint: Checkpoint, base_name: str, exc: BaseException, hint: str) -> MergeFailed:
    """The error for a merge that started and failed: what failed, in one bounded line;
    ``hint`` says what to check, unless memory ran out."""
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        hint = "merge on a machine with memory for the whole base model in its dtype"
    return MergeFailed(
        f"{checkpoint.root / ADAPTER_CONFIG}: merging the adapter into the base model "
        f"{base_name} failed: {type(exc).__name__}: {named(_first_line(exc), ERROR_LIMIT)}",
        hint=f"{hint}, or set merge: false to release the adapter itself",
    )


def _copy_adapter_files(checkpoint: Checkpoint, out: Path) -> None:
    """The adapter's files a loader or the card reads (:func:`_carried`), less those the
    merge wrote (its config.json, generation_config.json)."""
    for name in _carried(checkpoint):
        if not (out / name).exists():
            shutil.copy2(checkpoint.root / name, out / name)


def _carried(checkpoint: Checkpoint) -> list[str]:
    """The adapter's top-level files a merged checkpoint carries (tokenizer, chat template,
    trainer state): not the adapter itself, training state, weights or links."""
    return [
        entry.path
        for entry in checkpoint.files
        if "/" not in entry.path
        and not entry.is_symlink
        and entry.path not in _NOT_COPIED
        and not is_leftover(entry.path)
        and not entry.path.endswith((".safetensors", *PICKLE_SUFFIXES))
    ]


def _merge_inputs(checkpoint: Checkpoint) -> list[str]:
    """What the merge reads from the adapter's directory: its config, its weights (any
    ``adapter_model.*`` peft may load) and the files the merged checkpoint carries."""
    adapter = [
        e.path
        for e in checkpoint.files
        if e.path == ADAPTER_CONFIG or (e.path.startswith("adapter_model.") and "/" not in e.path)
    ]
    return [*adapter, *_carried(checkpoint)]

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

import hashlib
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
from r1release.errors import R1ReleaseError

MERGED = "merged"  # under cache_dir(): merged checkpoints, one per adapter and base
_DONE = ".r1release-merged"  # written last: a merge cut short is never reused
# What a merged checkpoint gets from the adapter's directory: everything a loader reads
# besides the adapter itself (tokenizer, chat template, training logs for the card); the
# merged save's own config.json, generation_config.json and weights are not overwritten.
_NOT_COPIED = (ADAPTER_CONFIG, ADAPTER_WEIGHTS, "README.md")


class MergeUnavailable(R1ReleaseError):
    """``merge: true``, but the base model's weights are not on this machine."""


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

    The key is a digest of the adapter's files (path, size, mtime) and the base's directory,
    so a second release of the same adapter reuses the merge. Raises
    :class:`MergeUnavailable` when the base weights are not on this machine."""
    name = base_model_name(checkpoint)
    directory = base_directory(name) if name else None
    if name is None or directory is None or not has_weights(directory):
        raise MergeUnavailable(
            f"{checkpoint.root / ADAPTER_CONFIG}: merge: true needs the weights of the base "
            f"model {name or '(base_model_name_or_path is not set)'} on this machine, and "
            "neither a local directory nor the Hugging Face cache holds them",
            hint=f"download the base first (hf download {name or 'BASE'}), or set merge: false "
            "to release the adapter itself",
        )
    target = cache_dir() / MERGED / _merge_key(checkpoint, directory)
    if (target / _DONE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".merging-", dir=target.parent))
    try:
        _save_merged(checkpoint.root, directory, work)
        _copy_adapter_files(checkpoint, work)
        (work / _DONE).write_text(json.dumps({"base": str(directory)}) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _merge_key(checkpoint: Checkpoint, base: Path) -> str:
    """A digest of what the merge reads: the adapter's files as listed and the base's path."""
    listing = [(e.path, e.size, e.mtime_ns) for e in checkpoint.files]
    text = json.dumps([os.path.realpath(checkpoint.root), listing, os.path.realpath(base)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _save_merged(adapter: Path, base: Path, out: Path) -> None:
    """``merge_and_unload`` of the adapter on its base, in the base's dtype, saved by
    ``save_pretrained`` (safetensors, transformers' own layout)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype="auto")
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(out))


def _copy_adapter_files(checkpoint: Checkpoint, out: Path) -> None:
    """The adapter's top-level files a loader or the card reads (tokenizer, chat template,
    trainer state), less the adapter itself, training state and what the merge wrote."""
    for entry in checkpoint.files:
        name = entry.path
        if (
            "/" in name
            or entry.is_symlink
            or name in _NOT_COPIED
            or is_leftover(name)
            or name.endswith((".safetensors", *PICKLE_SUFFIXES))
            or (out / name).exists()
        ):
            continue
        shutil.copy2(checkpoint.root / name, out / name)

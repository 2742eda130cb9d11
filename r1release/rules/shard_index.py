"""shard-index: ``model.safetensors.index.json`` matches the shards on disk.

Every shard the index names exists, every tensor it maps is in that shard's header, every
tensor in a shard is in the index, no ``*.safetensors`` file is left out of the index (a stray
shard), and ``metadata.total_size`` equals the tensors' bytes. Sharded weights without an
index are reported too (transformers #30724: shards missing from pushed checkpoints).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from r1release.checkpoint import INDEX_FILE, HeaderError
from r1release.findings import Severity
from r1release.rules.base import Context, Problem, Rule

_SHARD_RE = re.compile(r"-\d{5}-of-\d{5}\.safetensors$")
_REGEN = "re-save the model so the index and shards are written together"


def _sample(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check(ctx: Context) -> Iterator[Problem]:
    ckpt = ctx.checkpoint
    index = ckpt.json(INDEX_FILE)
    files = ckpt.safetensors_files()
    if index is None:
        shards = [f for f in files if _SHARD_RE.search(f)]
        if shards:
            yield Problem(
                f"{len(shards)} sharded weight files but no {INDEX_FILE}", INDEX_FILE, _REGEN
            )
        return
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        yield Problem("weight_map must map tensor names to shard file names", INDEX_FILE, _REGEN)
        return
    yield from _check_shards(ctx, weight_map, index, files)


def _check_shards(
    ctx: Context, weight_map: dict[str, str], index: dict[str, Any], files: list[str]
) -> Iterator[Problem]:
    ckpt = ctx.checkpoint
    by_shard: dict[str, list[str]] = {}
    for tensor, shard in weight_map.items():
        by_shard.setdefault(shard, []).append(tensor)
    total, complete = 0, True
    for shard, tensors in by_shard.items():
        if shard.startswith("/") or ".." in shard.split("/") or "\\" in shard:
            yield Problem(
                f"weight_map names {shard!r}, a path outside the checkpoint", INDEX_FILE, _REGEN
            )
            complete = False
            continue
        if not ckpt.exists(shard):
            yield Problem(
                f"index names shard {shard!r} ({len(tensors)} tensors), which does not exist",
                INDEX_FILE,
                "copy the missing shard or " + _REGEN,
            )
            complete = False
            continue
        try:
            header = ckpt.header(shard)
        except HeaderError:
            complete = False  # reported by safetensors-header
            continue
        absent = [t for t in tensors if t not in header.tensors]
        if absent:
            yield Problem(
                f"index maps {_sample(absent)} to {shard!r}, which does not hold them",
                INDEX_FILE,
                _REGEN,
            )
        unindexed = [t for t in header.tensors if weight_map.get(t) != shard]
        if unindexed:
            yield Problem(
                f"{shard!r} holds {_sample(unindexed)}, which the index does not map to it",
                INDEX_FILE,
                _REGEN,
            )
        total += sum(t.nbytes for t in header.tensors.values())
    for name in files:
        if name not in by_shard and "/" not in name:
            yield Problem(
                f"stray weight file {name!r} is not in the index: loaders ignore it but "
                "it would be uploaded",
                name,
                "delete it, or " + _REGEN,
            )
    declared = (
        (index.get("metadata") or {}).get("total_size")
        if isinstance(index.get("metadata"), dict)
        else None
    )
    if complete and isinstance(declared, int) and declared != total:
        yield Problem(
            f"metadata.total_size is {declared} but the shards hold {total} bytes of tensors",
            INDEX_FILE,
            _REGEN,
        )


RULE = Rule(
    id="R303",
    name="shard-index",
    severity=Severity.ERROR,
    description="the safetensors index matches the shards on disk",
    check=check,
)

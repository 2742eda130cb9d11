"""paths: nothing in the checkpoint points outside it.

A symlink that resolves outside the checkpoint (or dangles, or loops) would upload or read a
file nobody reviewed; a Hugging Face cache snapshot is all such links. File names must be
UTF-8 without control characters. A FIFO, socket or device is never read (reading a FIFO
blocks) and cannot be uploaded. The file list is bounded: directories nested more than 64
levels down are not entered, and listing stops after 100,000 entries; either is reported, as
what was not listed is neither checked nor uploaded.

Fails: ``config.json -> /etc/passwd``; ``model.safetensors -> ../../blobs/abc``.
"""

from __future__ import annotations

from collections.abc import Iterator

from r1release import checkpoint as listing
from r1release.findings import Severity
from r1release.rules.base import Context, Problem, Rule


def check(ctx: Context) -> Iterator[Problem]:
    for name in ctx.checkpoint.unlisted:
        yield Problem(
            f"directories nest more than {listing.MAX_DEPTH} levels deep: what is below this "
            "one is not listed, checked or uploaded",
            _shown(name),
            "flatten or remove the directory",
        )
    if ctx.checkpoint.truncated:
        yield Problem(
            f"more than {listing.MAX_ENTRIES:,} files and directories: the listing stopped "
            "there, so the rest is not checked or uploaded",
            None,
            "remove what is not part of the model (datasets, logs, caches)",
        )
    for name in ctx.checkpoint.special:
        yield Problem(
            "not a regular file (a FIFO, socket or device): never read, cannot be uploaded",
            name.encode("utf-8", "replace").decode(),
            "replace it with a regular file, or remove it",
        )
    for entry in ctx.checkpoint.files:
        if entry.escapes:
            yield Problem(
                f"symlink to {entry.target!r} leaves the checkpoint directory (or dangles, or "
                "is not a regular file)",
                entry.path,
                "copy the real file into the checkpoint (e.g. `hf download --local-dir`)",
            )
        try:
            entry.path.encode("utf-8")
        except UnicodeEncodeError:
            yield Problem(
                "file name is not UTF-8",
                entry.path.encode("utf-8", "replace").decode(),
                "rename the file",
            )
            continue
        if any(ord(c) < 32 for c in entry.path):
            yield Problem("file name holds control characters", repr(entry.path), "rename the file")


def _shown(path: str) -> str:
    """A path for a message: UTF-8, and middle-cut when very long."""
    text = path.encode("utf-8", "replace").decode()
    return text if len(text) <= 120 else f"{text[:58]}…{text[-58:]}"


RULE = Rule(
    id="R502",
    name="paths",
    severity=Severity.ERROR,
    description="no symlink or file name escapes the checkpoint",
    check=check,
)

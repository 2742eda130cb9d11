"""paths: nothing in the checkpoint points outside it.

A symlink that resolves outside the checkpoint (or dangles, or loops) would upload or read a
file nobody reviewed; a Hugging Face cache snapshot is all such links. File names must be
UTF-8 without control characters. A FIFO, socket or device is never read (reading a FIFO
blocks) and cannot be uploaded.

Fails: ``config.json -> /etc/passwd``; ``model.safetensors -> ../../blobs/abc``.
"""

from __future__ import annotations

from collections.abc import Iterator

from r1release.findings import Severity
from r1release.rules.base import Context, Problem, Rule


def check(ctx: Context) -> Iterator[Problem]:
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


RULE = Rule(
    id="R502",
    name="paths",
    severity=Severity.ERROR,
    description="no symlink or file name escapes the checkpoint",
    check=check,
)

"""Builders for the hostile-input corpus (tests/test_hostile.py).

Each builder is a callable taking a :class:`Workspace` — a directory holding a clean tiny
checkpoint (``ckpt/``) and a valid ``release.yaml`` naming it — and breaking one thing in it:
a checkpoint file, ``release.yaml``, or the GitHub event the release command reads.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL = "OpenR1-Tiny"
SHARD1 = "model-00001-of-00002.safetensors"
SHARD2 = "model-00002-of-00002.safetensors"
INDEX = "model.safetensors.index.json"
GB = 1 << 30


@dataclass
class Workspace:
    root: Path  # the working directory: release.yaml, event.json, card.j2
    ckpt: Path
    outside: Path | None = None  # a directory outside the workspace (GitHub's files)
    env: dict[str, str] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.ckpt / name


Builder = Callable[[Workspace], None]


def release_yaml(checkpoint: Path, *extra: str) -> str:
    lines = [
        "version: 1",
        "models:",
        f"  - name: {MODEL}",
        f"    checkpoint: {checkpoint}",
        "    repo_id: org/OpenR1-Tiny",
        "    base_model: Qwen/Qwen2.5-0.5B",
        "    dataset_name: open-r1/Mixture-of-Thoughts",
        "    license: apache-2.0",
        *extra,
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ data


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


def safetensors(header: Any, data: bytes = b"", raw: bytes | None = None) -> bytes:
    """A safetensors file from a header (any JSON value, or ``raw`` header bytes)."""
    text = raw if raw is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def many_tensors(count: int) -> bytes:
    """A valid safetensors file holding ``count`` one-byte tensors."""
    parts = [
        f'"t{i}":{{"dtype":"U8","shape":[1],"data_offsets":[{i},{i + 1}]}}' for i in range(count)
    ]
    return safetensors(None, b"\x00" * count, raw=("{" + ",".join(parts) + "}").encode())


def billion_laughs(indent: str = "", levels: int = 9, width: int = 9) -> list[str]:
    """YAML keys x0..x9 whose anchors would expand to width**levels strings if expanded."""
    lines = [f"{indent}x0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels + 1):
        lines.append(f"{indent}x{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return lines


# ------------------------------------------------------------------ builders


def put(name: str, data: bytes | str) -> Builder:
    """Replace (or create) ``name`` in the checkpoint with ``data``."""

    def build(ws: Workspace) -> None:
        path = ws.path(name)
        if path.is_symlink() or path.is_file():
            path.unlink()
        path.write_bytes(data.encode() if isinstance(data, str) else data)

    return build


def edit(name: str, **changes: Any) -> Builder:
    """Set top-level keys of a JSON file in the checkpoint."""

    def build(ws: Workspace) -> None:
        doc = json.loads(ws.path(name).read_text())
        doc.update(changes)
        ws.path(name).write_text(json.dumps(doc, indent=2) + "\n")

    return build


def one_tensor(name: str, dtype: Any = "F32", shape: Any = (1,), offsets: Any = (0, 4)) -> Builder:
    """A shard holding one tensor ``w`` with this header entry (and 4 bytes of data)."""
    entry = {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}
    return put(name, safetensors({"w": entry}, b"\x00" * 4))


def unlink(name: str) -> Builder:
    def build(ws: Workspace) -> None:
        ws.path(name).unlink()

    return build


def rename(name: str, new: str) -> Builder:
    def build(ws: Workspace) -> None:
        ws.path(name).rename(ws.path(new))

    return build


def truncate(name: str, keep: float = 0.5) -> Builder:
    def build(ws: Workspace) -> None:
        data = ws.path(name).read_bytes()
        ws.path(name).write_bytes(data[: int(len(data) * keep)])

    return build


def fifo(name: str, where: str = "ckpt") -> Builder:
    """A FIFO (named pipe) with no writer: opening it for reading blocks forever."""

    def build(ws: Workspace) -> None:
        path = (ws.ckpt if where == "ckpt" else ws.root) / name
        if path.exists():
            path.unlink()
        os.mkfifo(path)

    return build


def sparse(name: str, size: int, head: bytes = b"", where: str = "ckpt") -> Builder:
    """A sparse file of ``size`` bytes (no disk blocks) starting with ``head``."""

    def build(ws: Workspace) -> None:
        path = (ws.ckpt if where == "ckpt" else ws.root) / name
        with open(path, "wb") as fh:
            fh.write(head)
            fh.truncate(size)

    return build


def symlink(name: str, target: str) -> Builder:
    def build(ws: Workspace) -> None:
        path = ws.path(name)
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        path.symlink_to(target)

    return build


def mkdir(name: str) -> Builder:
    def build(ws: Workspace) -> None:
        path = ws.path(name)
        if path.exists():
            path.unlink()
        path.mkdir()

    return build


def raw_name(name: bytes, data: bytes = b"{}") -> Builder:
    """A file whose name is arbitrary bytes (not UTF-8, control characters)."""

    def build(ws: Workspace) -> None:
        with open(os.path.join(os.fsencode(ws.ckpt), name), "wb") as fh:
            fh.write(data)

    return build


def index(weight_map: Any = None, **extra: Any) -> Builder:
    """Rewrite the shard index; ``weight_map`` maps every tensor to one name, or is a value."""

    def build(ws: Workspace) -> None:
        doc = json.loads(ws.path(INDEX).read_text())
        if isinstance(weight_map, str):
            doc["weight_map"] = dict.fromkeys(doc["weight_map"], weight_map)
        elif weight_map is not None:
            doc["weight_map"] = weight_map
        doc.update(extra)
        ws.path(INDEX).write_text(json.dumps(doc, indent=2) + "\n")

    return build


def outside(name: str, data: bytes) -> Builder:
    """A file next to the checkpoint: what an escaping path would reach."""

    def build(ws: Workspace) -> None:
        (ws.ckpt.parent / name).write_bytes(data)

    return build


def yaml_file(text: str | bytes) -> Builder:
    """Replace release.yaml; ``{ckpt}`` is the checkpoint path."""

    def build(ws: Workspace) -> None:
        data = text.replace("{ckpt}", str(ws.ckpt)) if isinstance(text, str) else text
        path = ws.root / "release.yaml"
        path.write_bytes(data.encode() if isinstance(data, str) else data)

    return build


def yaml_replace(old: str, new: str) -> Builder:
    """The valid release.yaml with ``old`` replaced by ``new``."""

    def build(ws: Workspace) -> None:
        text, here = release_yaml(ws.ckpt), str(ws.ckpt)
        assert old.replace("{ckpt}", here) in text
        text = text.replace(old.replace("{ckpt}", here), new.replace("{ckpt}", here))
        (ws.root / "release.yaml").write_text(text)

    return build


def yaml_extra(*lines: str) -> Builder:
    """release.yaml with more lines after the model's keys."""

    def build(ws: Workspace) -> None:
        (ws.root / "release.yaml").write_text(release_yaml(ws.ckpt, *lines))

    return build


def root_file(name: str, data: str | bytes) -> Builder:
    """A file in the working directory (a card template, ...)."""

    def build(ws: Workspace) -> None:
        (ws.root / name).write_bytes(data.encode() if isinstance(data, str) else data)

    return build


def event(payload: Any, raw: bytes | None = None) -> Builder:
    """A workflow_dispatch event whose payload file holds ``payload`` (or ``raw`` bytes)."""

    def build(ws: Workspace) -> None:
        path = ws.root / "event.json"
        path.write_bytes(raw if raw is not None else json.dumps(payload).encode())
        ws.env |= {"GITHUB_EVENT_NAME": "workflow_dispatch", "GITHUB_EVENT_PATH": str(path)}

    return build


def event_path(path: str) -> Builder:
    """A workflow_dispatch event whose payload path is ``path`` (relative to the workspace)."""

    def build(ws: Workspace) -> None:
        ws.env |= {
            "GITHUB_EVENT_NAME": "workflow_dispatch",
            "GITHUB_EVENT_PATH": str(ws.root / path),
        }

    return build


def pushed_tag(ref_name: str) -> Builder:
    def build(ws: Workspace) -> None:
        ws.env |= {
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_REF_TYPE": "tag",
            "GITHUB_REF_NAME": ref_name,
        }

    return build


def github(ws: Workspace) -> None:
    """Run as in GitHub Actions: annotations, a step summary and step outputs (outside ws)."""
    assert ws.outside is not None
    ws.env |= {
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(ws.outside / "summary.md"),
        "GITHUB_OUTPUT": str(ws.outside / "output.txt"),
        "GITHUB_WORKSPACE": str(ws.root),
    }


def checkpoint_is(kind: str) -> Builder:
    """Replace the checkpoint directory with a file, an empty directory, a loop, or nothing."""

    def build(ws: Workspace) -> None:
        shutil.rmtree(ws.ckpt)
        if kind == "file":
            ws.ckpt.write_text("{}")
        elif kind == "empty":
            ws.ckpt.mkdir()
        elif kind == "loop":
            ws.ckpt.symlink_to(ws.ckpt.name)
        elif kind == "fifo":
            os.mkfifo(ws.ckpt)

    return build


def setenv(**values: str) -> Builder:
    """Run the command with these environment variables."""

    def build(ws: Workspace) -> None:
        ws.env.update(values)

    return build


def both(*builders: Builder) -> Builder:
    def build(ws: Workspace) -> None:
        for builder in builders:
            builder(ws)

    return build


# ------------------------------------------------------------------ snapshots


def snapshot(root: Path) -> dict[str, tuple[int, int, int, int]]:
    """Each path under ``root`` (no symlink followed, nothing opened): type, size, mtime, inode."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            out[os.path.relpath(path, root)] = (
                stat.S_IFMT(st.st_mode),
                st.st_size,
                st.st_mtime_ns,
                st.st_ino,
            )
    return out

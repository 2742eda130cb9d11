"""Applying fixes: computed in memory, re-checked, then written atomically (or diffed).

Fixable rules edit JSON documents through :meth:`Context.edit`; nothing touches the disk
until :func:`apply_fixes`. Every other key and the key order are kept; only files whose
content changes are rewritten, each through a temporary file and ``os.replace``.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1release.checker import resolve_rules, run_rules
from r1release.checkpoint import CONFIG_JSON_FILES, Checkpoint
from r1release.config import RuleSetting
from r1release.errors import FileUnreadable, R1ReleaseError
from r1release.findings import Finding
from r1release.rules import Context


@dataclass(frozen=True)
class FileChange:
    path: str  # relative to the checkpoint
    old_text: str | None  # None when the file is created
    new_text: str
    rules: tuple[str, ...]

    def diff(self) -> str:
        old = (self.old_text or "").splitlines(keepends=True)
        new = self.new_text.splitlines(keepends=True)
        return "".join(
            difflib.unified_diff(
                old,
                new,
                f"a/{self.path}" if self.old_text is not None else "/dev/null",
                f"b/{self.path}",
            )
        )


@dataclass(frozen=True)
class FixPlan:
    checkpoint: str
    changes: tuple[FileChange, ...]
    fixed: tuple[Finding, ...]  # fixable findings before, gone after the changes
    remaining: tuple[Finding, ...]  # fixable findings the changes could not remove

    @property
    def empty(self) -> bool:
        return not self.changes

    def diff(self) -> str:
        return "".join(c.diff() for c in self.changes)


def plan_fixes(
    path: str | Path,
    *,
    settings: Mapping[str, RuleSetting] | None = None,
    config_path: str | Path = "release.yaml",
) -> FixPlan:
    """Compute every fix for ``path`` in memory and re-check the result; writes nothing."""
    active = [a for a in resolve_rules(settings, config_path) if not a.rule.deep]
    _refuse_broken_json(Checkpoint(path))
    fixable = [a for a in active if a.rule.fixable]
    before = [f for f in run_rules(Checkpoint(path), fixable) if f.fixable]
    work = Checkpoint(path)
    touched: dict[str, list[str]] = {}
    for a in fixable:
        if not _safe_check(a.rule, work, a.options):
            continue
        snapshot = {n: json.dumps(d) for n, d in work.overrides.items()}
        a.rule.fix(Context(work, a.options))  # type: ignore[misc]
        for name, doc in work.overrides.items():
            if snapshot.get(name) != json.dumps(doc):
                touched.setdefault(name, []).append(a.rule.name)
    after = [f for f in run_rules(work, fixable) if f.fixable]
    changes = []
    for name, doc in work.overrides.items():
        if doc is None:
            continue
        old = _old_text(work, name)
        new = render_json(doc, old)
        if new != old:
            changes.append(FileChange(name, old, new, tuple(touched.get(name, ()))))
    remaining = {(f.rule, f.file, f.message) for f in after}
    return FixPlan(
        checkpoint=str(path),
        changes=tuple(sorted(changes, key=lambda c: c.path)),
        fixed=tuple(f for f in before if (f.rule, f.file, f.message) not in remaining),
        remaining=tuple(after),
    )


def _refuse_broken_json(checkpoint: Checkpoint) -> None:
    for name in CONFIG_JSON_FILES:
        try:
            checkpoint.json(name)
        except FileUnreadable as exc:
            raise R1ReleaseError(
                f"{checkpoint.root / name}: {exc.reason}",
                hint="repair it by hand, then run `r1release fix` again; nothing was written",
            ) from None


def _safe_check(rule: Any, checkpoint: Checkpoint, options: Mapping[str, Any]) -> list[Any]:
    try:
        return list(rule.check(Context(checkpoint, options)))
    except FileUnreadable:
        return []


def _old_text(checkpoint: Checkpoint, name: str) -> str | None:
    return checkpoint.raw_text(name) if checkpoint.exists(name) else None


def apply_fixes(plan: FixPlan) -> None:
    """Write the planned changes, each atomically; the checkpoint must not have changed."""
    root = Path(plan.checkpoint)
    for change in plan.changes:
        target = root / change.path
        if target.is_symlink():
            raise R1ReleaseError(
                f"{target}: is a symlink; not replacing it",
                hint="copy the real file into the checkpoint first",
            )
        if target.exists() and not target.is_file():
            raise R1ReleaseError(
                f"{target}: not a regular file; not replacing it",
                hint="remove it, then run `r1release fix` again",
            )
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != change.old_text:
            raise R1ReleaseError(
                f"{target}: changed on disk while fixing; nothing written after it",
                hint="run `r1release fix` again",
            )
        atomic_write(target, change.new_text)


def atomic_write(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` through a temporary file in the same directory."""
    mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_INDENT_RE = re.compile(r"^( +|\t+)\"", re.MULTILINE)


def render_json(doc: dict[str, Any], like: str | None) -> str:
    """Serialise ``doc`` in the style of ``like``: its indent and trailing newline."""
    indent: int | str | None = 2
    if like is not None:
        match = _INDENT_RE.search(like)
        if match:
            found = match.group(1)
            indent = found if found.startswith("\t") else len(found)
        elif like.strip() and "\n" not in like.strip():
            indent = None
    text = json.dumps(doc, indent=indent, ensure_ascii=False)
    newline = like is None or like.endswith("\n")
    return text + ("\n" if newline else "")

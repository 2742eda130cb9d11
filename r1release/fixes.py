"""Applying fixes: computed in memory, re-checked, then written atomically (or diffed).

Fixable rules edit JSON documents through :meth:`Context.edit`; nothing touches the disk
until :func:`apply_fixes`. Every other key and the key order are kept; only files whose
content changes are rewritten, each through a temporary file and ``os.replace``.

A fix never writes what it could not read back: a config holding what JSON cannot write
(``1e400``, which Python reads as infinity; a lone surrogate) is refused before anything is
computed, and every new file is parsed again, strictly, and must equal what was computed.
A checkpoint that cannot be written (read-only) is refused before the first write; a write
that fails midway puts back the files already replaced.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1release.checker import resolve_rules, run_rules
from r1release.checkpoint import CONFIG_JSON_FILES, Checkpoint, loads_strict, unrepresentable
from r1release.config import RuleSetting
from r1release.errors import FileUnreadable, R1ReleaseError
from r1release.findings import Finding
from r1release.rules import Context
from r1release.rules.base import Need, not_applicable


@dataclass(frozen=True)
class FileChange:
    path: str  # relative to the checkpoint
    old_text: str | None  # None when the file is created
    new_text: str
    rules: tuple[str, ...]

    def diff(self) -> str:
        """A unified diff that ``patch`` and ``git apply`` take: a last line without a newline
        is marked as diff marks it (difflib does not, and the next line would join it)."""
        old = (self.old_text or "").splitlines(keepends=True)
        new = self.new_text.splitlines(keepends=True)
        lines = difflib.unified_diff(
            old,
            new,
            f"a/{self.path}" if self.old_text is not None else "/dev/null",
            f"b/{self.path}",
        )
        return "".join(
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
            for line in lines
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
    path: str | Path | Checkpoint,
    *,
    settings: Mapping[str, RuleSetting] | None = None,
    config_path: str | Path = "release.yaml",
) -> FixPlan:
    """Compute every fix for ``path`` in memory and re-check the result; writes nothing.

    ``path`` may be the command's :class:`Checkpoint`: the fixes are an in-memory layer over
    it, undone when the plan is made (its caches, the tokenizer included, are kept).
    """
    active = [a for a in resolve_rules(settings, config_path) if Need.DEEP not in a.rule.needs]
    work = path if isinstance(path, Checkpoint) else Checkpoint(path)
    _refuse_broken_json(work)
    # not a rule that skips this checkpoint: an adapter gets no generation_config.json
    fixable = [a for a in active if a.rule.fixable and not_applicable(a.rule, work) is None]
    with work.layer():
        before = [f for f in run_rules(work, fixable) if f.fixable]
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
            new = _render_checked(work, name, doc, old)
            if new != old:
                changes.append(FileChange(name, old, new, tuple(touched.get(name, ()))))
    remaining = {(f.rule, f.file, f.message) for f in after}
    return FixPlan(
        checkpoint=str(work.root if isinstance(path, Checkpoint) else path),
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


def _render_checked(checkpoint: Checkpoint, name: str, doc: dict[str, Any], old: str | None) -> str:
    """``render_json(doc, old)``, refused unless the text is UTF-8 and parses back, strictly,
    to ``doc``: a fix never writes a file that it could not read back."""
    problem, new = unrepresentable(doc), ""
    if problem is None:
        try:
            new = render_json(doc, old)
            back = loads_strict(new.encode("utf-8").decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # UnicodeError and JSON errors included
            problem = f"the fixed file would not parse back: {exc}"
        else:
            if back != doc:
                problem = "the fixed file would not read back as computed"
    if problem is not None:
        raise R1ReleaseError(
            f"{checkpoint.root / name}: {problem}; nothing was written",
            hint="repair the file by hand, then run `r1release fix` again",
        )
    return new


def _safe_check(rule: Any, checkpoint: Checkpoint, options: Mapping[str, Any]) -> list[Any]:
    try:
        return list(rule.check(Context(checkpoint, options)))
    except FileUnreadable:
        return []


def _old_text(checkpoint: Checkpoint, name: str) -> str | None:
    return checkpoint.raw_text(name) if checkpoint.exists(name) else None


class WriteFailed(R1ReleaseError, OSError):
    """A fix (or another file r1release writes) could not be written: a read-only checkpoint,
    a full disk. An :class:`R1ReleaseError` (one line, exit 1) that is also the ``OSError``
    it comes from (``errno`` and ``strerror`` kept)."""

    def __init__(
        self,
        message: str,
        *,
        errno_: int | None = None,
        strerror: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.errno = errno_
        self.strerror = strerror


_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
_READ_ONLY_HINT = (
    "make the checkpoint writable (e.g. `chmod -R u+w`), or run `r1release fix --dry-run` "
    "and apply the diff to a writable copy"
)


def apply_fixes(plan: FixPlan) -> None:
    """Write the planned changes, each atomically; the checkpoint must not have changed.

    Every target is checked first (a symlink, not a regular file, changed on disk, not
    writable: :class:`R1ReleaseError`, nothing written). When a write still fails, the
    files already replaced are put back and :class:`WriteFailed` is raised."""
    root = Path(plan.checkpoint)
    targets = [(root / change.path, change) for change in plan.changes]
    for target, change in targets:
        _check_target(target, change)
    written: list[tuple[Path, FileChange]] = []
    for target, change in targets:
        try:
            atomic_write(target, change.new_text)
        except OSError as exc:
            restored = _put_back(written)
            raise _write_failed(target, exc, written, restored) from None
        written.append((target, change))


def _check_target(target: Path, change: FileChange) -> None:
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
    try:
        current = target.read_bytes() if target.exists() else None
    except OSError as exc:
        raise WriteFailed(
            f"{target}: cannot read it back before fixing: {exc.strerror}; nothing was written",
            errno_=exc.errno,
            strerror=exc.strerror,
            hint="run `r1release fix` again",
        ) from None
    old = change.old_text.encode("utf-8") if change.old_text is not None else None
    if current != old:
        raise R1ReleaseError(
            f"{target}: changed on disk while fixing; nothing written after it",
            hint="run `r1release fix` again",
        )
    # The directory takes the temporary file and the rename; a file the user made read-only
    # is not replaced behind their back either. (access() reports a read-only mount as such.)
    for path, what in ((target.parent, "directory"), (target, "file")):
        if path.exists() and not os.access(path, os.W_OK | (os.X_OK if what == "directory" else 0)):
            raise WriteFailed(
                f"{target}: cannot fix it: the checkpoint {what} {path} is read-only; "
                "nothing was written",
                errno_=errno.EACCES,
                strerror="read-only",
                hint=_READ_ONLY_HINT,
            )


def _put_back(written: list[tuple[Path, FileChange]]) -> bool:
    """Undo the replacements already made (newest first); whether all were undone."""
    restored = True
    for target, change in reversed(written):
        try:
            if change.old_text is None:
                os.unlink(target)
            else:
                atomic_write(target, change.old_text)
        except OSError:
            restored = False
    return restored


def _write_failed(
    target: Path, exc: OSError, written: list[tuple[Path, FileChange]], restored: bool
) -> WriteFailed:
    if not written:
        outcome = "nothing was written"
    elif restored:
        outcome = "the files already fixed were put back; nothing changed"
    else:
        done = ", ".join(c.path for _, c in written)
        outcome = f"{done} could not be put back: check them"
    return WriteFailed(
        f"{target}: cannot write the fix: {_reason(exc)}; {outcome}",
        errno_=exc.errno,
        strerror=exc.strerror,
        hint=_hint(exc),
    )


def _read_only(exc: OSError) -> bool:
    return exc.errno in _READ_ONLY or isinstance(exc, PermissionError)


def _reason(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"the checkpoint is read-only ({reason})" if _read_only(exc) else reason


def _hint(exc: OSError) -> str:
    return _READ_ONLY_HINT if _read_only(exc) else "fix the cause, then run `r1release fix` again"


def atomic_write(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` through a temporary file in the same directory.

    Raises :class:`WriteFailed` (an ``OSError`` too) when it cannot; ``target`` is then as
    it was, and no temporary file is left."""
    try:
        _atomic_write(target, text)
    except WriteFailed:
        raise
    except OSError as exc:
        raise WriteFailed(
            f"{target}: cannot write it: {exc.strerror or exc}",
            errno_=exc.errno,
            strerror=exc.strerror,
            hint="check the directory's permissions and free space",
        ) from exc


def _atomic_write(target: Path, text: str) -> None:
    mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
    data = text.encode("utf-8")  # before any file is created: a lone surrogate fails here
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
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
    text = json.dumps(doc, indent=indent, ensure_ascii=False, allow_nan=False)
    newline = like is None or like.endswith("\n")
    return text + ("\n" if newline else "")

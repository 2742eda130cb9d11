"""leftovers: no training state in what would be uploaded.

Optimizer, scheduler and RNG states, ``training_args.bin``, ``global_step*/`` and
``checkpoint-*/`` folders are excluded from every upload; this rule says they are there. So is
a ``.git/`` directory (at any depth): the Hub refuses files under ``.git/``. Extra patterns can
be given with the ``patterns`` option.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator

from r1release.checkpoint import is_leftover
from r1release.findings import Severity
from r1release.rules.base import Context, Option, Problem, Rule


def check(ctx: Context) -> Iterator[Problem]:
    extra = tuple(ctx.options.get("patterns", ()))
    found: dict[str, int] = {}
    for entry in ctx.checkpoint.files:
        parts = entry.path.split("/")
        hit = is_leftover(entry.path) or any(
            fnmatch.fnmatchcase(entry.path, p) or fnmatch.fnmatchcase(parts[0], p) for p in extra
        )
        if hit:
            top = parts[0] + ("/" if len(parts) > 1 or entry.is_dir else "")
            found[top] = found.get(top, 0) + entry.size
    for name, size in found.items():
        if name.rstrip("/") == ".git":
            yield Problem(
                f"a git repository ({name}, {_size(size)}) is in the checkpoint; it is "
                "excluded from uploads (the Hub refuses files under .git/)",
                ".git",
                "save the model outside the git work tree, or ignore this warning",
            )
            continue
        yield Problem(
            f"training state {name} ({_size(size)}) is in the checkpoint; it is "
            "excluded from uploads",
            name.rstrip("/"),
            "delete it, or save the final model to its own directory",
        )


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


RULE = Rule(
    id="R501",
    name="leftovers",
    severity=Severity.WARNING,
    description="no optimizer, scheduler or other training state in the checkpoint",
    check=check,
    options=(Option("patterns", (list, tuple), (), "more glob patterns to treat as leftovers"),),
)

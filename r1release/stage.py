"""The staged release: exactly the files a release uploads, with their hashes.

Nothing is copied and the checkpoint is never modified: unchanged files are uploaded from
the checkpoint, fixed JSON files and the model card from memory. Staging runs every check
(the deep pass included, since every file must be hashed anyway) on the checkpoint *as it
will be uploaded*, so a problem that ``push.fix`` repairs does not stop the release, and
any other error-severity finding does — before a single request is sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from r1release.card import ReleaseInfo, render_card
from r1release.checker import check
from r1release.checkpoint import Checkpoint, is_leftover
from r1release.config import ModelConfig, RuleSetting
from r1release.errors import R1ReleaseError
from r1release.findings import Report
from r1release.fixes import FixPlan, plan_fixes

CARD = "README.md"


@dataclass(frozen=True)
class StagedFile:
    path: str  # path in the repository
    size: int
    sha256: str
    source: Path | None = None  # a file of the checkpoint, uploaded as is
    content: bytes | None = None  # a fixed JSON file or the card, uploaded from memory
    origin: str = "checkpoint"  # checkpoint | fixed | card

    def data(self) -> Path | bytes:
        return self.content if self.content is not None else self.source  # type: ignore[return-value]

    def git_sha1(self) -> str:
        """The git blob id the Hub reports for a file stored without LFS."""
        sha = hashlib.sha1(f"blob {self.size}\0".encode(), usedforsecurity=False)
        if self.content is not None:
            sha.update(self.content)
        else:
            with open(self.source, "rb") as fh:  # type: ignore[arg-type]
                while chunk := fh.read(1 << 20):
                    sha.update(chunk)
        return sha.hexdigest()


@dataclass(frozen=True)
class Stage:
    model: ModelConfig
    version: str
    release: ReleaseInfo
    files: dict[str, StagedFile]
    card: str
    report: Report
    fix_plan: FixPlan | None = None
    excluded: tuple[str, ...] = field(default=())

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files.values())


class ReleaseBlocked(R1ReleaseError):
    """Error-severity findings stop the release before anything is sent."""

    def __init__(self, report: Report) -> None:
        self.report = report
        errors = report.errors
        listed = "; ".join(f"{f.rule}: {f.file or ''}: {f.message}" for f in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        super().__init__(
            f"{len(errors)} error finding(s) stop the release: {listed}{more}",
            hint="fix them, or run `r1release check` for the full report; nothing was sent",
        )


def build_stage(
    model: ModelConfig,
    version: str,
    *,
    release: ReleaseInfo | None = None,
    settings: Mapping[str, RuleSetting] | None = None,
    config_path: str | Path = "release.yaml",
    fix: bool = True,
    card_template: str | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Stage:
    """Check, fix (in memory), render the card and hash what the release uploads."""
    checkpoint = Checkpoint(model.checkpoint)
    plan = plan_fixes(model.checkpoint, settings=settings, config_path=config_path) if fix else None
    for change in plan.changes if plan else ():
        checkpoint.override(change.path, json.loads(change.new_text))
    release = release or ReleaseInfo(version=version)
    card = render_card(checkpoint, model, release, card_template)
    report = check(
        checkpoint,
        settings=settings,
        config_path=config_path,
        deep=True,
        workers=workers,
        progress=progress,
        card=card,
        skip=is_leftover,  # never uploaded, so never read (optimizer states are huge)
    )
    if report.errors:
        raise ReleaseBlocked(report)
    digests = {d.path: d for d in report.files}
    files: dict[str, StagedFile] = {}
    excluded = []
    for entry in checkpoint.files:
        if entry.is_dir or entry.escapes or entry.path == CARD:
            continue
        if is_leftover(entry.path) or _extra_leftover(report, entry.path):
            excluded.append(entry.path)
            continue
        digest = digests[entry.path]
        files[entry.path] = StagedFile(
            entry.path, digest.size, digest.sha256 or "", source=checkpoint.root / entry.path
        )
    for change in plan.changes if plan else ():
        files[change.path] = _in_memory(change.path, change.new_text.encode(), "fixed")
    files[CARD] = _in_memory(CARD, card.encode(), "card")
    return Stage(
        model, version, release, dict(sorted(files.items())), card, report, plan, tuple(excluded)
    )


def _in_memory(path: str, content: bytes, origin: str) -> StagedFile:
    return StagedFile(
        path, len(content), hashlib.sha256(content).hexdigest(), content=content, origin=origin
    )


def _extra_leftover(report: Report, path: str) -> bool:
    """Files that the leftovers rule flagged through release.yaml's extra patterns."""
    top = path.split("/")[0]
    return any(f.rule == "leftovers" and f.file == top for f in report.findings)

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
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1release.card import ReleaseInfo, render_card, smoke_prompt
from r1release.checker import check
from r1release.checkpoint import ADAPTER, ADAPTER_CONFIG, Checkpoint, is_leftover
from r1release.config import ModelConfig, RuleSetting
from r1release.deep import DeepScan, FileStat, scan_checkpoint
from r1release.errors import R1ReleaseError
from r1release.evals import eval_result_files, load_evals
from r1release.findings import Report
from r1release.fixes import FixPlan, plan_fixes

CARD = "README.md"
MANIFEST_SCHEMA = 1
# What a release made, committed with it: a later release deletes only the files listed here
# (and what push.keep does not protect on a repository without one); see r1release.hub.
RECORD = ".r1release/files.json"
RECORD_SCHEMA = 1


@dataclass(frozen=True)
class StagedFile:
    path: str  # path in the repository
    size: int
    sha256: str
    source: Path | None = None  # the checkpoint's file (uploaded from disk when no content)
    content: bytes | None = None  # uploaded from memory: the scanned bytes, a fix, the card
    origin: str = "checkpoint"  # checkpoint | fixed | card | record
    stat: FileStat | None = None  # the source as scanned; any change stops the release

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

    def manifest(self) -> dict[str, Any]:
        """What the release uploads, by content: every staged path with its size and sha256,
        and the card's sha256. Deterministic (no clock, no run), so a plan approved in one
        job can be checked against the stage of the next (:func:`manifest_differences`)."""
        return {
            "schema_version": MANIFEST_SCHEMA,
            "repo_id": self.model.repo_id,
            "version": self.version,
            "git_commit": self.release.git_commit,
            "files": [
                {"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files.values()
            ],
            "card_sha256": self.files[CARD].sha256,
        }

    def manifest_sha256(self) -> str:
        """sha256 of the manifest as canonical JSON: one value that names the whole content."""
        canonical = json.dumps(self.manifest(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def changed_on_disk(self) -> list[str]:
        """Staged checkpoint files whose size, mtime or inode changed since they were scanned."""
        changed = []
        for f in self.files.values():
            if f.source is None or f.stat is None:
                continue
            try:
                now = FileStat.of(os.stat(f.source))
            except OSError:
                now = None
            if now != f.stat:
                changed.append(f.path)
        return changed


class ReleaseIncomplete(R1ReleaseError):
    """A rule the release is configured to run at error severity cannot run here."""


class StageChanged(R1ReleaseError):
    """The checkpoint changed after it was checked: what would be uploaded was not checked."""


def manifest_differences(approved: Mapping[str, Any], staged: Mapping[str, Any]) -> list[str]:
    """How ``staged`` differs from an ``approved`` manifest, one short phrase per difference."""
    out = [
        f"{key} {approved.get(key)!r} -> {staged.get(key)!r}"
        for key in ("repo_id", "version", "git_commit")
        if approved.get(key) != staged.get(key)
    ]

    def files(manifest: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
        items = manifest.get("files")
        if not isinstance(items, list):
            return {}
        return {
            str(f.get("path")): (f.get("size"), f.get("sha256"))
            for f in items
            if isinstance(f, dict)
        }

    before, after = files(approved), files(staged)
    out += [f"{p} changed" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]]
    out += [f"{p} is new" for p in sorted(after.keys() - before.keys())]
    out += [f"{p} is gone" for p in sorted(before.keys() - after.keys())]
    return out


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
    card_template_name: str | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    cache: bool = True,
    checkpoint: Checkpoint | None = None,
    scan: DeepScan | None = None,
) -> Stage:
    """Check, fix (in memory), render the card and hash what the release uploads.

    ``checkpoint`` is the command's view of ``model.checkpoint`` (built here when not
    given); the fixes are overrides on it. ``scan`` is a deep scan of it made earlier (by
    ``finalize``): it is reused for every file unchanged since, and only files that changed,
    appeared or were written meanwhile are read again. ``cache=False`` reads every file,
    even weights the digest cache knows unchanged.

    With ``merge: true`` an adapter checkpoint is released as its base merged with it
    (:func:`r1release.adapters.merge_adapter`): the merged directory is what is checked,
    fixed and uploaded (a full checkpoint is released as it is).
    """
    checkpoint = checkpoint if checkpoint is not None else Checkpoint(model.checkpoint)
    if model.merge and checkpoint.kind == ADAPTER:
        checkpoint, scan = _merged(checkpoint), None  # a scan of the adapter is no use
    if scan is not None:
        scan = _brought_up_to_date(checkpoint, scan, workers=workers, cache=cache)
    plan = plan_fixes(checkpoint, settings=settings, config_path=config_path) if fix else None
    for change in plan.changes if plan else ():
        checkpoint.override(change.path, json.loads(change.new_text))
    hub_base = _with_hub_base(checkpoint, model)
    release = release or ReleaseInfo(version=version)
    # Benchmark results are inputs like the checkpoint: read (and refused) before the deep scan.
    evals = load_evals(model.evals, Path(config_path).parent, model.checkpoint)
    card = render_card(
        checkpoint,
        model,
        release,
        card_template,
        template_name=card_template_name,
        evals=evals,
        prompt=smoke_prompt(settings),
    )
    if scan is None:
        # One read of every byte that is uploaded: hashed, scanned, and (small files) kept.
        scan = scan_checkpoint(
            checkpoint, workers=workers, progress=progress, skip=is_leftover, cache=cache
        )
    if scan.changed:
        raise StageChanged(
            f"{model.checkpoint}: {', '.join(scan.changed[:5])} changed while being read",
            hint="stop writing to the checkpoint (is training still saving?) and run again",
        )
    report = check(
        checkpoint,
        settings=_without_omitted(settings, model),
        config_path=config_path,
        deep=True,
        card=card,
        scan=scan,
    )
    if report.errors:
        raise ReleaseBlocked(report)
    files = _checkpoint_files(checkpoint, report, scan)
    excluded = [
        e.path
        for e in checkpoint.files
        if not e.is_dir and not e.escapes and e.path != CARD and e.path not in files
    ]
    for change in plan.changes if plan else ():
        files[change.path] = _in_memory(change.path, change.new_text.encode(), "fixed")
    if hub_base is not None:
        files[ADAPTER_CONFIG] = _in_memory(ADAPTER_CONFIG, hub_base, "fixed")
    files[CARD] = _in_memory(CARD, card.encode(), "card")
    for path, content in eval_result_files(evals).items():
        files[path] = _in_memory(path, content, "evals")
    return Stage(model, version, release, _with_record(files), card, report, plan, tuple(excluded))


def _with_hub_base(checkpoint: Checkpoint, model: ModelConfig) -> bytes | None:
    """For an adapter whose ``base_model_name_or_path`` is a path on this machine (a base
    loaded from a local copy) released with a Hub ``base_model``: ``adapter_config.json``
    naming that Hub id instead, installed in the view (so it is what is checked) and
    returned as the bytes to upload. Uploaded as saved, the path would send
    ``AutoPeftModelForCausalLM`` (the card's quick start) looking for a directory that
    nobody who downloads the adapter has. The checkpoint on disk is not changed."""
    base = model.card_base_model
    if checkpoint.kind != ADAPTER or base is None:
        return None
    from r1release.config import local_path_reason

    config = checkpoint.adapter_config or {}
    recorded = config.get("base_model_name_or_path")
    if not isinstance(recorded, str) or local_path_reason(recorded, checkpoint.root) is None:
        return None
    doc = {**config, "base_model_name_or_path": base}
    checkpoint.override(ADAPTER_CONFIG, doc)
    return (json.dumps(doc, indent=2) + "\n").encode()


def _merged(adapter: Checkpoint) -> Checkpoint:
    """The view of the base merged with ``adapter`` (torch and peft load only here)."""
    from r1release.adapters import merge_adapter

    return Checkpoint(merge_adapter(adapter))


def _brought_up_to_date(
    checkpoint: Checkpoint, scan: DeepScan, *, workers: int | None, cache: bool
) -> DeepScan:
    """``scan`` for the files a release uploads as they are now on disk.

    The view is refreshed first (so it serves nothing read before a change). A file is
    scanned again when the scan lacks it, its size, mtime or inode differ from the scan's,
    or it changed while it was scanned; files gone and training state are dropped."""
    checkpoint.refresh()
    wanted = {
        e.path
        for e in checkpoint.files
        if not e.is_dir and not e.escapes and not is_leftover(e.path)
    }
    stale = {p for p in wanted if _current(checkpoint.root / p) != scan.stats.get(p)}
    stale |= wanted & set(scan.changed)
    keep = wanted - stale
    fresh = DeepScan(
        digests=[d for d in scan.digests if d.path in keep],
        nonfinite={p: v for p, v in scan.nonfinite.items() if p in keep},
        contents={p: v for p, v in scan.contents.items() if p in keep},
        stats={p: v for p, v in scan.stats.items() if p in keep},
    )
    if stale:
        again = scan_checkpoint(
            checkpoint, workers=workers, skip=lambda p: p not in stale, cache=cache
        )
        fresh.digests += again.digests
        fresh.nonfinite |= again.nonfinite
        fresh.contents |= again.contents
        fresh.stats |= again.stats
        fresh.changed = again.changed
        fresh.bytes_read = again.bytes_read
        fresh.cached_files, fresh.cached_bytes = again.cached_files, again.cached_bytes
        fresh.digests.sort(key=lambda d: d.path)
    return fresh


# release.yaml keys that ``local_paths: omit`` may leave out, by the card metadata they fill.
_OMITTABLE = {"base_model": "base_model", "dataset_name": "datasets"}


def _without_omitted(
    settings: Mapping[str, RuleSetting] | None, model: ModelConfig
) -> Mapping[str, RuleSetting] | None:
    """``settings`` with card-metadata no longer requiring what release.yaml deliberately left
    out of the card (a local path under ``local_paths: omit``, already warned about)."""
    omitted = {_OMITTABLE[key] for key in model.omitted if key in _OMITTABLE}
    if not omitted:
        return settings
    from r1release.rules import card_metadata

    current = dict(settings or {})
    base = current.get(card_metadata.RULE.name, RuleSetting())
    default = next(o.default for o in card_metadata.RULE.options if o.name == "required")
    required = base.options.get("required", default)
    options = dict(base.options) | {"required": [k for k in required if k not in omitted]}
    current[card_metadata.RULE.name] = RuleSetting(base.severity, options, base.line)
    return current


def _current(path: Path) -> FileStat | None:
    try:
        return FileStat.of(os.stat(path))
    except OSError:
        return None


def _checkpoint_files(
    checkpoint: Checkpoint, report: Report, scan: DeepScan
) -> dict[str, StagedFile]:
    """The checkpoint's files a release uploads, with the scan's digests (and bytes)."""
    digests = {d.path: d for d in scan.digests}
    files: dict[str, StagedFile] = {}
    for entry in checkpoint.files:
        if entry.is_dir or entry.escapes or entry.path == CARD:
            continue
        if is_leftover(entry.path) or _extra_leftover(report, entry.path):
            continue
        digest = digests[entry.path]
        files[entry.path] = StagedFile(
            entry.path,
            digest.size,
            digest.sha256 or "",
            source=checkpoint.root / entry.path,
            content=scan.contents.get(entry.path),
            stat=scan.stats.get(entry.path),
        )
    return files


def _in_memory(path: str, content: bytes, origin: str) -> StagedFile:
    return StagedFile(
        path, len(content), hashlib.sha256(content).hexdigest(), content=content, origin=origin
    )


def _with_record(files: Mapping[str, StagedFile]) -> dict[str, StagedFile]:
    """The staged files, sorted, plus :data:`RECORD`: each other staged path with its size and
    sha256, and nothing else (no version, clock or commit), so identical content stays
    identical and a release of it is still "already released"."""
    listed = [
        {"path": f.path, "size": f.size, "sha256": f.sha256}
        for path, f in sorted(files.items())
        if path != RECORD
    ]
    text = json.dumps({"schema_version": RECORD_SCHEMA, "files": listed}, indent=2) + "\n"
    staged = {**files, RECORD: _in_memory(RECORD, text.encode(), "record")}
    return dict(sorted(staged.items()))


def _extra_leftover(report: Report, path: str) -> bool:
    """Files that the leftovers rule flagged through release.yaml's extra patterns."""
    top = path.split("/")[0]
    return any(f.rule == "leftovers" and f.file == top for f in report.findings)

"""The digest cache: what the deep scan found in a file, kept while the file is unchanged.

Like git's index: an entry holds a file's sha256, size and NaN/Inf counts, keyed by the file's
real path and identity (device, inode, size, mtime, ctime) and by the scan that produced it
(the scan's version and the tensor layout it scanned). Any stat change misses. An entry is
only trusted when the file's mtime is older than the moment its read began minus
``RACY_NS`` (git's racy-clean rule): a file rewritten within the same timestamp tick, with
the same size, could otherwise keep a stale digest.

One small JSON file per checkpoint directory under ``cache_dir()/digests`` (mode 0600, the
directory 0700: it names local paths), written atomically. Concurrent runs may lose each
other's entries, never corrupt them. A missing, corrupt, foreign or unwritable cache is an
empty one: it costs a full read, never an error and never a wrong digest. Nothing here
raises.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1release.cache import cache_dir

FORMAT = 1  # of the cache file
RACY_NS = 2_000_000_000  # timestamp granularity to allow for (FAT: 2 s; NFS clocks drift)
MAX_BYTES = 64 * 1024 * 1024  # a larger cache file is not read
MAX_ENTRIES = 100_000  # per checkpoint directory
MAX_CHECKPOINTS = 256  # cache files kept; the least recently written go first
NO_CACHE_ENV = "R1RELEASE_NO_CACHE"

log = logging.getLogger(__name__)


def disabled() -> bool:
    """Whether ``$R1RELEASE_NO_CACHE`` turns the cache off (``1``, ``true``, ``yes``, ``on``)."""
    return os.environ.get(NO_CACHE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Identity:
    """What stat says about a file; any change means its bytes may have changed."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class Cached:
    sha256: str
    size: int
    nonfinite: tuple[tuple[str, int], ...]  # (tensor name, count), as the scan lists them


class DigestCache:
    """The entries of one checkpoint directory. :meth:`get` and :meth:`put` may be called
    from the scan's threads (each for its own file); :meth:`save` once, after them."""

    def __init__(self, path: Path | None, entries: dict[str, dict[str, Any]] | None = None):
        self.path = path  # None: in memory only
        self._entries = dict(entries or {})
        self._new: dict[str, dict[str, Any]] = {}

    @classmethod
    def for_checkpoint(cls, root: str | os.PathLike[str]) -> DigestCache:
        try:
            real = os.path.realpath(root)
            name = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:32]
            path = cache_dir() / "digests" / f"{name}.json"
        except (OSError, ValueError, RuntimeError) as exc:
            log.debug("digest cache off: %s", exc)
            return cls(None)
        return cls(path, _load(path))

    def get(self, file: str, identity: Identity, scan: str) -> Cached | None:
        """The entry for ``file`` (a real path) if its identity and scan match and it is
        trustworthy; else None."""
        entry = self._entries.get(file)
        if entry is None:
            return None
        try:
            if (
                entry["scan"] != scan
                or Identity(**{k: entry[k] for k in _IDENTITY}) != identity
                or identity.mtime_ns >= entry["checked_ns"] - RACY_NS
            ):
                return None
            return Cached(
                entry["sha256"], entry["size"], tuple((n, c) for n, c in entry["nonfinite"])
            )
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, file: str, identity: Identity, scan: str, checked_ns: int, found: Cached) -> None:
        """Remember what a read that began at ``checked_ns`` found. A racy entry (the file
        changed less than ``RACY_NS`` before the read began) is not kept: the next scan reads
        the file again and keeps it then."""
        if identity.mtime_ns >= checked_ns - RACY_NS or found.size != identity.size:
            return
        entry: dict[str, Any] = {k: getattr(identity, k) for k in _IDENTITY}
        entry |= {
            "scan": scan,
            "checked_ns": checked_ns,
            "sha256": found.sha256,
            "size": found.size,
            "nonfinite": [[n, c] for n, c in found.nonfinite],
        }
        self._new[file] = entry

    def save(self) -> None:
        """Merge this run's entries into the cache file; drop entries of files that are gone
        or changed. Never raises."""
        if self.path is None:
            return
        try:
            self._save(self.path)
        except (OSError, ValueError, TypeError) as exc:
            log.debug("digest cache not written (%s): %s", self.path, exc)

    def _save(self, path: Path) -> None:
        merged = _load(path)  # what other runs wrote meanwhile
        for file, entry in self._entries.items():
            merged.setdefault(file, entry)
        merged |= self._new
        kept = {f: e for f, e in merged.items() if _current(f, e)}
        if not self._new and kept.keys() == self._entries.keys():
            return  # nothing learnt, nothing pruned
        if len(kept) > MAX_ENTRIES:
            newest = sorted(kept, key=lambda f: kept[f]["checked_ns"], reverse=True)
            kept = {f: kept[f] for f in newest[:MAX_ENTRIES]}
        folder = path.parent
        folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
        if not _private(os.stat(folder)):
            raise OSError(f"{folder} is not a private directory of this user")
        doc = {"format": FORMAT, "entries": kept, "sha256": _checksum(kept)}
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._entries, self._new = kept, {}
        _prune(folder, keep=path)


_IDENTITY = ("dev", "ino", "size", "mtime_ns", "ctime_ns")


def _checksum(entries: dict[str, Any]) -> str:
    canonical = json.dumps(entries, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()


def _private(st: os.stat_result) -> bool:
    """Owned by this user and writable by nobody else: entries from anyone else could claim
    that a file with NaNs is clean."""
    owner = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    return owner and not st.st_mode & 0o022


def _load(path: Path) -> dict[str, dict[str, Any]]:
    """The valid entries of a cache file; {} for a missing, corrupt or foreign one."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return {}
    try:
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or not _private(st) or st.st_size > MAX_BYTES:
                log.debug("digest cache ignored: %s is not a private file", path)
                return {}
            doc = json.loads(fh.read(MAX_BYTES + 1))
        entries = doc["entries"]
        if doc["format"] != FORMAT or doc["sha256"] != _checksum(entries):
            log.debug("digest cache ignored: %s has another format or a bad checksum", path)
            return {}
        return {f: e for f, e in entries.items() if isinstance(f, str) and _valid(e)}
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        log.debug("digest cache ignored: %s: %s", path, exc)
        return {}


def _valid(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    if not all(type(entry.get(k)) is int for k in (*_IDENTITY, "checked_ns")):
        return False
    sha, scan, bad = entry.get("sha256"), entry.get("scan"), entry.get("nonfinite")
    return (
        isinstance(sha, str)
        and len(sha) == 64
        and all(c in "0123456789abcdef" for c in sha)
        and isinstance(scan, str)
        and isinstance(bad, list)
        and all(
            isinstance(b, list)
            and len(b) == 2
            and isinstance(b[0], str)
            and type(b[1]) is int
            and b[1] > 0
            for b in bad
        )
    )


def _current(file: str, entry: dict[str, Any]) -> bool:
    """Whether the entry still describes the file on disk (else it can never hit again)."""
    try:
        now = Identity.of(os.stat(file))
    except (OSError, ValueError):
        return False
    return now == Identity(**{k: entry[k] for k in _IDENTITY})


def _prune(folder: Path, keep: Path) -> None:
    """At most MAX_CHECKPOINTS cache files; stray temporary files older than a day go."""
    now = time.time()
    files = []
    for p in folder.iterdir():
        try:
            mtime = p.lstat().st_mtime
        except OSError:
            continue
        if p.name.startswith(".tmp-"):
            if now - mtime > 86400:
                with contextlib.suppress(OSError):
                    p.unlink()
        elif p.suffix == ".json" and p != keep:
            files.append((mtime, p))
    files.sort(reverse=True)
    for _, p in files[MAX_CHECKPOINTS - 1 :]:
        with contextlib.suppress(OSError):
            p.unlink()

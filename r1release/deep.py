"""The deep pass: read every byte once, hashing each file and scanning each tensor.

Files are processed in parallel threads (``hashlib`` and numpy release the GIL on large
buffers). Each file is read in chunks into one reused buffer; every chunk feeds the sha256
and, for the floating-point tensors it overlaps, a finite-values scan over the raw bits (a
NaN/Inf has an all-ones exponent: ``bits & abs_mask >= threshold``).

sha256 is the bottleneck (about 0.4 GB/s per core without SHA extensions), so the scan must
stay cheap: it first asks, with two read-only ``max`` reductions and no temporary array,
whether a piece holds any non-finite value at all (as unsigned integers the negative NaN/Infs
are the largest values; as signed integers the positive ones are), and only counts, in
cache-sized blocks, in the rare piece that does. See bench/RESULTS.md.

Every safetensors dtype is either scanned or cannot hold a NaN/Inf: the integers and BOOL,
and the sub-byte MX floats F4 (E2M1) and F6 (E2M3, E3M2), which have no NaN or Inf encoding
(finite by construction). Of the float8s, E5M2 is IEEE-like (Inf and NaN have an all-ones
exponent), E4M3 (e4m3fn) has no Inf and NaN S.1111.111, E8M0 (the MX scale) has NaN 0xFF
only, and the FNUZ variants have no Inf and no negative zero: their one NaN is 0x80.

Files larger than ``KEEP_BYTES`` (the weights) that are unchanged since an earlier scan are
served from the digest cache (:mod:`r1release.digests`) without being read.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat as stat_mod
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from r1release.checkpoint import Checkpoint, FileEntry, HeaderError, TensorInfo
from r1release.digests import Cached, DigestCache, Identity, disabled
from r1release.findings import FileDigest

# Bytes read at a time. Small enough that the buffer stays in a core's L2 between the copy
# from the page cache, the sha256 and the scan: with an 8 MiB buffer the copy alone cost 8%
# of the hashing time on the bench machine (no SHA extensions), 5% with 1 MiB; the share is
# larger where sha256 is faster. End to end the difference was within noise there.
CHUNK = 1024 * 1024
# Files up to this size keep their bytes from the scan: a release uploads exactly the bytes it
# hashed (configs, tokenizer, card-sized files; tokenizer.json of Qwen2.5 is about 7 MB).
# Larger files are uploaded from disk with the scanned sha256 declared, so the Hub refuses
# content that changed after the scan.
KEEP_BYTES = 16 * 1024 * 1024
PROGRESS_STEP = 8 * 1024 * 1024  # report progress in steps of at least this many bytes
BLOCK = 128 * 1024  # bytes counted at a time when a piece holds non-finite values
# Part of every digest cache key: bump it when the scan finds something else in the same bytes.
SCAN_VERSION = 1

# dtype -> (unsigned view, mask clearing the sign bit, smallest non-finite bit pattern)
_FLOAT_BITS: dict[str, tuple[type, int, int]] = {
    "BF16": (np.uint16, 0x7FFF, 0x7F80),
    "F16": (np.uint16, 0x7FFF, 0x7C00),
    "F32": (np.uint32, 0x7FFFFFFF, 0x7F800000),
    "C64": (np.uint32, 0x7FFFFFFF, 0x7F800000),
    "F64": (np.uint64, 0x7FFFFFFFFFFFFFFF, 0x7FF0000000000000),
    "F8_E5M2": (np.uint8, 0x7F, 0x7C),
    "F8_E4M3": (np.uint8, 0x7F, 0x7F),  # e4m3fn: no Inf, NaN is S.1111.111
    "F8_E8M0": (np.uint8, 0xFF, 0xFF),
}
# The FNUZ float8s: their one NaN, 0x80 (negative zero's bit pattern), is the smallest int8,
# so one ``min`` reduction tells whether a piece holds any.
_FNUZ = frozenset({"F8_E4M3FNUZ", "F8_E5M2FNUZ"})
_FNUZ_NAN = np.int8(-128)
SCANNED = frozenset(_FLOAT_BITS) | _FNUZ  # the dtypes whose tensors the scan reads
_SIGNED: dict[type, type] = {np.uint8: np.int8, np.uint16: np.int16, np.uint32: np.int32,
                             np.uint64: np.int64}  # fmt: skip

Progress = Callable[[int], None]


@dataclass(frozen=True)
class FileStat:
    """Identity of a file as scanned: any change of it means the bytes may have changed."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass
class DeepScan:
    digests: list[FileDigest] = field(default_factory=list)
    nonfinite: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    bytes_read: int = 0
    contents: dict[str, bytes] = field(default_factory=dict)  # files of at most KEEP_BYTES
    stats: dict[str, FileStat] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)  # files that changed while being scanned
    cached_files: int = 0  # files served from the digest cache, not read
    cached_bytes: int = 0


@dataclass(frozen=True)
class _Job:
    entry: FileEntry
    data_start: int = 0
    tensors: tuple[tuple[str, TensorInfo], ...] = ()  # floating-point tensors, by offset


def scan_checkpoint(
    checkpoint: Checkpoint,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    skip: Callable[[str], bool] | None = None,
    cache: bool | DigestCache = True,
) -> DeepScan:
    """Hash every file and scan every floating-point tensor, reading each byte once.

    ``skip(path)`` leaves files out (a release does not read training state it won't upload).
    ``cache=False`` (or ``$R1RELEASE_NO_CACHE=1``) reads every file, even ones the digest
    cache knows; a ``progress`` with a ``cached(nbytes)`` method is told of each file the
    cache served.
    """
    scan = DeepScan()
    lock = threading.Lock()
    store = _open_cache(checkpoint, cache)
    served = getattr(progress, "cached", None)

    def run(job: _Job) -> None:
        file = checkpoint.root / job.entry.path
        result = _from_cache(store, file, job) if store is not None else None
        hit = result is not None
        if result is None:
            result = _scan_file(file, job, progress)
            if store is not None:
                _remember(store, file, job, result)
        elif callable(served):
            served(result.size)
        path = job.entry.path
        moved = result.before != result.after or (
            job.entry.mtime_ns and result.before.mtime_ns != job.entry.mtime_ns
        )
        with lock:
            scan.digests.append(FileDigest(path, result.size, result.sha256))
            if hit:
                scan.cached_files += 1
                scan.cached_bytes += result.size
            else:
                scan.bytes_read += result.size
            scan.stats[path] = result.after
            if result.content is not None:
                scan.contents[path] = result.content
            if moved or result.size != result.after.size:
                scan.changed.append(path)
            if result.bad:
                scan.nonfinite[path] = result.bad

    # Largest files first, so one big shard does not start last and finish alone.
    jobs = [j for j in _jobs(checkpoint) if skip is None or not skip(j.entry.path)]
    jobs.sort(key=lambda j: j.entry.size, reverse=True)
    if progress is not None:
        progress(0)  # the scan starts now (a caller timing it takes this as its start)
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        for future in [pool.submit(run, job) for job in jobs]:
            future.result()
    if store is not None:
        store.save()
    scan.digests.sort(key=lambda d: d.path)
    scan.changed.sort()
    return scan


def _open_cache(checkpoint: Checkpoint, cache: bool | DigestCache) -> DigestCache | None:
    if isinstance(cache, DigestCache):
        return cache
    return DigestCache.for_checkpoint(checkpoint.root) if cache and not disabled() else None


def _scan_key(job: _Job) -> str:
    """The scan a cache entry came from: this code's version and the tensors it scanned."""
    layout = [SCAN_VERSION, job.data_start, [(n, t.dtype, t.begin, t.end) for n, t in job.tensors]]
    return hashlib.sha256(json.dumps(layout).encode()).hexdigest()


def _from_cache(store: DigestCache, file: Path, job: _Job) -> _Scanned | None:
    """The cached scan of ``file`` if it is unchanged. Files of at most KEEP_BYTES are always
    read: a release uploads the bytes the scan kept."""
    if job.entry.size <= KEEP_BYTES:
        return None
    try:
        st = os.stat(file)
        real = os.path.realpath(file)
    except (OSError, ValueError):
        return None
    if not stat_mod.S_ISREG(st.st_mode) or st.st_size <= KEEP_BYTES:
        return None
    found = store.get(real, Identity.of(st), _scan_key(job))
    if found is None:
        return None
    now = FileStat.of(st)
    return _Scanned(found.sha256, list(found.nonfinite), found.size, now, now, None)


def _remember(store: DigestCache, file: Path, job: _Job, result: _Scanned) -> None:
    if result.identity is None or result.size <= KEEP_BYTES:
        return  # changed while being read, or small (small files are always read)
    try:
        real = os.path.realpath(file)
    except (OSError, ValueError):
        return
    found = Cached(result.sha256, result.size, tuple(result.bad))
    store.put(real, result.identity, _scan_key(job), result.started_ns, found)


def _jobs(checkpoint: Checkpoint) -> list[_Job]:
    weights = set(checkpoint.safetensors_files())
    jobs = []
    for entry in checkpoint.files:
        if entry.is_dir or entry.escapes:
            continue
        if entry.path not in weights:
            jobs.append(_Job(entry))
            continue
        try:
            header = checkpoint.header(entry.path)
        except HeaderError:  # safetensors-header reports it; the file is still hashed
            jobs.append(_Job(entry))
            continue
        floats = sorted(
            ((n, t) for n, t in header.tensors.items() if t.dtype in SCANNED and t.nbytes),
            key=lambda item: item[1].begin,
        )
        jobs.append(_Job(entry, header.data_start, tuple(floats)))
    return jobs


@dataclass(frozen=True)
class _Scanned:
    sha256: str
    bad: list[tuple[str, int]]
    size: int  # bytes read
    before: FileStat  # fstat when opened
    after: FileStat  # fstat when done
    content: bytes | None  # the bytes read, for files of at most KEEP_BYTES
    identity: Identity | None = None  # for the digest cache: None when it changed while read
    started_ns: int = 0  # wall clock when the read began (the digest cache's racy rule)


def _scan_file(path: os.PathLike[str] | str, job: _Job, progress: Progress | None) -> _Scanned:
    sha = hashlib.sha256()
    view = memoryview(bytearray(CHUNK))
    tensors = [t for _, t in job.tensors]
    state = _ScanState()
    offset = reported = 0
    started_ns = time.time_ns()
    with open(path, "rb", buffering=0) as fh:
        first = os.fstat(fh.fileno())
        before = FileStat.of(first)
        kept = bytearray() if before.size <= KEEP_BYTES else None
        if job.data_start:  # the header, so that chunks line up with the data section
            head = fh.read(job.data_start)
            sha.update(head)
            if kept is not None:
                kept += head
            offset = len(head)
        while n := fh.readinto(view):
            chunk = view[:n]
            sha.update(chunk)
            if kept is not None:
                kept += chunk
                if len(kept) > KEEP_BYTES:  # it grew while being read: keep nothing
                    kept = None
            if tensors:
                _scan_chunk(chunk, offset - job.data_start, tensors, state)
            offset += n
            if progress is not None and offset - reported >= PROGRESS_STEP:
                progress(offset - reported)
                reported = offset
        last = os.fstat(fh.fileno())
        after = FileStat.of(last)
    if progress is not None and offset > reported:
        progress(offset - reported)
    bad = [(job.tensors[i][0], c) for i, c in sorted(state.counts.items()) if c]
    content = bytes(kept) if kept is not None else None
    identity = Identity.of(last) if Identity.of(first) == Identity.of(last) else None
    return _Scanned(sha.hexdigest(), bad, offset, before, after, content, identity, started_ns)


@dataclass
class _ScanState:
    first: int = 0  # index of the first tensor not yet fully scanned
    counts: dict[int, int] = field(default_factory=dict)  # tensor index -> non-finite values
    carry: dict[int, bytes] = field(default_factory=dict)  # an element split across chunks


def _scan_chunk(chunk: memoryview, pos: int, tensors: list[TensorInfo], state: _ScanState) -> None:
    end = pos + len(chunk)
    i = state.first
    while i < len(tensors) and tensors[i].begin < end:
        t = tensors[i]
        if t.end > pos:
            piece = chunk[max(t.begin, pos) - pos : min(t.end, end) - pos]
            bad = _scan_piece(piece, i, t.dtype, state)
            if bad:
                state.counts[i] = state.counts.get(i, 0) + bad
        if t.end > end:
            break
        if i == state.first:
            state.first += 1
        i += 1


def _scan_piece(piece: memoryview, index: int, dtype: str, state: _ScanState) -> int:
    size = 1 if dtype in _FNUZ else np.dtype(_FLOAT_BITS[dtype][0]).itemsize
    bad = 0
    pending = state.carry.pop(index, b"")
    if pending:
        whole = pending + bytes(piece[: size - len(pending)])
        piece = piece[size - len(pending) :]
        if len(whole) < size:
            state.carry[index] = whole
            return 0
        bad += _count(memoryview(whole), dtype)
    usable = len(piece) - len(piece) % size
    if usable < len(piece):
        state.carry[index] = bytes(piece[usable:])
    if usable:
        bad += _count(piece[:usable], dtype)
    return bad


def _count(data: memoryview, dtype: str) -> int:
    """The number of NaN/Inf values among the raw ``dtype`` elements in ``data``."""
    if dtype in _FNUZ:
        return _count_fnuz(np.frombuffer(data, dtype=np.int8))
    kind, mask, threshold = _FLOAT_BITS[dtype]
    bits = np.frombuffer(data, dtype=kind)
    sign = 1 << (8 * bits.itemsize - 1)
    if mask == sign - 1:  # a sign bit: (bits & mask) >= threshold for a negative or a positive
        if bits.max() < sign + threshold and bits.view(_SIGNED[kind]).max() < threshold:
            return 0
    elif bits.max() < threshold:  # no sign bit (F8_E8M0): the mask keeps every bit
        return 0
    step = BLOCK // bits.itemsize
    return sum(
        int(np.count_nonzero((bits[i : i + step] & kind(mask)) >= threshold))
        for i in range(0, len(bits), step)
    )


def _count_fnuz(bits: np.ndarray) -> int:
    """The NaNs (0x80, the only non-finite FNUZ value) among raw FNUZ float8 ``bits``."""
    if bits.min() > _FNUZ_NAN:
        return 0
    return sum(
        int(np.count_nonzero(bits[i : i + BLOCK] == _FNUZ_NAN)) for i in range(0, len(bits), BLOCK)
    )

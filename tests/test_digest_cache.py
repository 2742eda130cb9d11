"""The digest cache: an unchanged checkpoint is not read again; any doubt means a full read."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from r1release import deep, digests
from r1release.checker import check
from r1release.checkpoint import Checkpoint
from r1release.cli import main

from factory import safetensors_bytes
from helpers import run_cli, write_release_yaml

SMALL = 1024  # KEEP_BYTES in these tests: the tiny checkpoints' shards count as weights


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "cache"
    monkeypatch.setenv("R1RELEASE_CACHE_DIR", str(where))
    monkeypatch.delenv(digests.NO_CACHE_ENV, raising=False)
    monkeypatch.setattr(deep, "KEEP_BYTES", SMALL)
    return where


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files the deep scan actually opens and reads."""
    seen: list[str] = []
    real = deep._scan_file

    def counting(path, job, progress):
        seen.append(Path(path).name)
        return real(path, job, progress)

    monkeypatch.setattr(deep, "_scan_file", counting)
    return seen


def _age(path: Path, seconds: int = 10) -> None:
    """Set every file's mtime back: older than the racy window, so entries are trusted."""
    for p in path.rglob("*"):
        if p.is_file():
            st = p.stat()
            back = seconds * 1_000_000_000
            os.utime(p, ns=(st.st_atime_ns - back, st.st_mtime_ns - back))


def _big(path: Path) -> dict[str, int]:
    return {
        p.relative_to(path).as_posix(): p.stat().st_size
        for p in path.rglob("*")
        if p.is_file() and p.stat().st_size > SMALL
    }


def _scan(path: Path, **kwargs) -> deep.DeepScan:
    return deep.scan_checkpoint(Checkpoint(path), workers=2, **kwargs)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_unchanged_checkpoint_is_not_read_again(checkpoint, cache, reads):
    path = checkpoint()
    _age(path)
    big = _big(path)
    assert any(name.endswith(".safetensors") for name in big)
    first = _scan(path)
    assert first.cached_files == 0 and sorted(reads) == sorted(
        p.name for p in path.rglob("*") if p.is_file()
    )
    reads.clear()
    second = _scan(path)
    assert not set(reads) & {Path(b).name for b in big}  # no weight file was opened
    assert reads  # the small files still are: their bytes are what a release uploads
    assert second.bytes_read == first.bytes_read - sum(big.values())
    assert (second.cached_files, second.cached_bytes) == (len(big), sum(big.values()))
    assert second.digests == first.digests and second.nonfinite == first.nonfinite
    assert second.contents == first.contents and second.changed == []
    for name in big:
        assert second.stats[name] == deep.FileStat.of(os.stat(path / name))


def _grow(p: Path) -> None:
    p.write_bytes(p.read_bytes() + b" ")
    _age(p.parent)


def _touch(p: Path) -> None:
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns - 5_000_000_000))


def _new_inode(p: Path) -> None:
    st = p.stat()
    copy = p.with_name(p.name + ".tmp")
    shutil.copy2(p, copy)
    os.replace(copy, p)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime, another inode
    assert p.stat().st_ino != st.st_ino


def _same_size_same_mtime(p: Path) -> None:
    """Rewritten in place, mtime put back: only ctime shows it."""
    st = p.stat()
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF
    p.write_bytes(bytes(data))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("change", [_grow, _touch, _new_inode, _same_size_same_mtime])
def test_any_stat_change_reads_the_file_again(checkpoint, cache, reads, change):
    path = checkpoint()
    _age(path)
    _scan(path)
    shard = path / "model-00001-of-00002.safetensors"
    change(shard)
    reads.clear()
    again = _scan(path)
    assert shard.name in reads
    digest = {d.path: d for d in again.digests}[shard.name]
    assert (digest.sha256, digest.size) == (_sha(shard), shard.stat().st_size)
    reads.clear()
    _age(path)  # ctime is now; only mtime must be old
    _scan(path)
    third = _scan(path)
    assert third.cached_files == len(_big(path))


def test_a_freshly_written_file_is_read_again(checkpoint, cache, reads):
    """Racy-clean: a file written in the last RACY_NS is never served from the cache."""
    path = checkpoint()
    for name in _big(path):  # just written (the fixture's copy keeps the build's old mtimes)
        os.utime(path / name)
    first = _scan(path)  # nothing is trusted yet
    reads.clear()
    second = _scan(path)
    assert second.cached_files == 0 and set(_big(path)) <= {n for n in reads}
    assert second.digests == first.digests


def test_same_size_rewrite_within_the_racy_window_is_read(checkpoint, cache, reads, monkeypatch):
    """On a file system with coarse timestamps (simulated: no ctime, mtime pinned to one tick),
    a same-size rewrite leaves stat unchanged; only the racy rule saves the digest."""
    monkeypatch.setattr(digests, "RACY_NS", 60_000_000_000)  # a slow machine stays in it
    coarse = classmethod(lambda cls, st: cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, 0))
    monkeypatch.setattr(digests.Identity, "of", coarse)
    path = checkpoint()
    shard = path / "model-00001-of-00002.safetensors"
    os.utime(shard)  # just written (the fixture's copy keeps the session build's mtime)
    tick = shard.stat().st_mtime_ns
    _scan(path)
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    os.utime(shard, ns=(tick, tick))
    reads.clear()
    again = _scan(path)
    assert shard.name in reads
    assert {d.path: d.sha256 for d in again.digests}[shard.name] == _sha(shard)


def test_entries_within_the_racy_window_are_not_trusted():
    now = 100 * digests.RACY_NS
    found = digests.Cached("a" * 64, 10, (("w", 1),))
    old = digests.Identity(1, 3, 10, now - 2 * digests.RACY_NS, now)
    racy = digests.Identity(1, 2, 10, now - digests.RACY_NS // 2, now)
    store = digests.DigestCache(None)
    store.put("/old", old, "scan", now, found)
    store.put("/racy", racy, "scan", now, found)
    assert store._new.keys() == {"/old"}  # a racy read is not kept
    entry = store._new["/old"]
    cache = digests.DigestCache(
        None, {"/old": entry, "/racy": {**entry, "mtime_ns": racy.mtime_ns}}
    )
    assert cache.get("/old", old, "scan") == found
    assert cache.get("/racy", digests.Identity(1, 3, 10, racy.mtime_ns, now), "scan") is None
    assert cache.get("/old", old, "another scan") is None
    assert cache.get("/old", digests.Identity(1, 3, 11, old.mtime_ns, now), "scan") is None


def _nan_checkpoint(path: Path) -> None:
    values = np.ones(2048, np.float32)
    values[[3, 700]] = np.nan
    raw = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    for name in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        (path / name).unlink()
    (path / "model.safetensors.index.json").unlink()
    tensors = {"model.embed_tokens.weight": ("BF16", (2048,), raw)}
    (path / "model.safetensors").write_bytes(safetensors_bytes(tensors))


def test_a_cached_nan_keeps_its_finding(checkpoint, cache, reads):
    path = checkpoint()
    _nan_checkpoint(path)
    _age(path)
    first = list(check(path, deep=True).by_rule("finite-weights"))
    assert first and "model.safetensors" in {f.file for f in first}
    reads.clear()
    scan = _scan(path)
    assert "model.safetensors" not in reads and scan.cached_files == len(_big(path))
    assert scan.nonfinite == {"model.safetensors": [("model.embed_tokens.weight", 2)]}
    reads.clear()
    again = list(check(path, deep=True).by_rule("finite-weights"))
    assert "model.safetensors" not in reads
    assert again == first


def test_another_scan_version_misses(checkpoint, cache, reads, monkeypatch):
    path = checkpoint()
    _age(path)
    _scan(path)
    monkeypatch.setattr(deep, "SCAN_VERSION", deep.SCAN_VERSION + 1)
    reads.clear()
    assert _scan(path).cached_files == 0 and set(_big(path)) <= set(reads)


def _check_cli(path: Path, *extra: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(
        main, ["check", "--deep", "--format", "json", *extra, str(path)], env=env
    )
    assert result.exit_code in (0, 1), result.output
    return result


def test_no_cache_flag_and_env_read_everything(checkpoint, cache, reads):
    path = checkpoint()
    _age(path)
    first = _check_cli(path)
    big = {Path(b).name for b in _big(path)}
    reads.clear()
    cached = _check_cli(path)
    assert not set(reads) & big
    assert f"{len(big)} files" in cached.stderr and "from the digest cache" in cached.stderr
    assert json.loads(cached.stdout)["files"] == json.loads(first.stdout)["files"]
    reads.clear()
    full = _check_cli(path, "--no-cache")
    assert big <= set(reads) and "digest cache" not in full.stderr
    assert json.loads(full.stdout)["files"] == json.loads(first.stdout)["files"]
    reads.clear()
    _check_cli(path, env={digests.NO_CACHE_ENV: "1"})
    assert big <= set(reads)


def test_push_uses_the_cache_unless_no_cache(checkpoint, cache, reads, hub, tmp_path, monkeypatch):
    path = checkpoint()
    _age(path)
    write_release_yaml(tmp_path, path)
    args = ("push", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--dry-run")
    env = {"HF_HUB_OFFLINE": "1"}
    first = run_cli(monkeypatch, hub, tmp_path, *args, env=env)
    assert first.returncode == 0, first.stderr
    shards = {Path(b).name for b in _big(path) if b.endswith(".safetensors")}
    reads.clear()
    second = run_cli(monkeypatch, hub, tmp_path, *args, env=env)
    assert second.returncode == 0 and not set(reads) & shards
    assert "from the digest cache" in second.stderr and second.stdout == first.stdout
    reads.clear()
    third = run_cli(monkeypatch, hub, tmp_path, *args, "--no-cache", env=env)
    assert third.returncode == 0 and shards <= set(reads) and third.stdout == first.stdout
    assert "--no-cache" in CliRunner().invoke(main, ["release", "--help"]).output


def _cache_files(cache: Path) -> list[Path]:
    return sorted((cache / "digests").glob("*.json"))


@pytest.mark.parametrize(
    "damage",
    [
        lambda f: f.write_bytes(b"\x00garbage{"),
        lambda f: f.write_text(f.read_text().replace('"sha256":"', '"sha256":"f', 1)),
        lambda f: f.write_text(f.read_text()[: len(f.read_text()) // 2]),
        lambda f: f.write_text(json.dumps({"format": 1, "entries": [], "sha256": None})),
        lambda f: f.chmod(0o666),  # writable by others: anyone could have written it
    ],
)
def test_a_damaged_cache_is_an_empty_one(checkpoint, cache, reads, damage):
    path = checkpoint()
    _age(path)
    first = _scan(path)
    (file,) = _cache_files(cache)
    damage(file)
    reads.clear()
    again = _scan(path)
    assert again.cached_files == 0 and set(_big(path)) <= set(reads)
    assert again.digests == first.digests
    assert _scan(path).cached_files == len(_big(path))  # rewritten, whole again
    assert stat.S_IMODE(file.stat().st_mode) == 0o600


def test_tampered_entry_with_a_wrong_digest_is_never_served(checkpoint, cache):
    path = checkpoint()
    _age(path)
    first = _scan(path)
    (file,) = _cache_files(cache)
    doc = json.loads(file.read_text())
    for entry in doc["entries"].values():
        entry["sha256"] = "0" * 64  # and the checksum left as it was
    file.write_text(json.dumps(doc))
    assert _scan(path).digests == first.digests


def test_an_unwritable_cache_still_works(checkpoint, cache, reads):
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("a file where the cache directory should be")
    path = checkpoint()
    _age(path)
    first = _scan(path)
    reads.clear()
    second = _scan(path)
    assert second.cached_files == 0 and second.digests == first.digests
    assert set(_big(path)) <= set(reads)


def test_cache_files_are_private(checkpoint, cache):
    path = checkpoint()
    _age(path)
    _scan(path)
    (file,) = _cache_files(cache)
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE((cache / "digests").stat().st_mode) == 0o700
    assert str(path) not in file.name  # the file name does not spell the path out


def test_the_cache_stays_bounded(checkpoint, cache, monkeypatch, tmp_path):
    path = checkpoint()
    _age(path)
    _scan(path)
    (file,) = _cache_files(cache)
    assert len(json.loads(file.read_text())["entries"]) == len(_big(path))
    (path / "model-00002-of-00002.safetensors").unlink()
    _scan(path)
    assert len(json.loads(file.read_text())["entries"]) == len(_big(path))
    monkeypatch.setattr(digests, "MAX_CHECKPOINTS", 2)
    for name in ("a", "b", "c"):
        other = tmp_path / name
        shutil.copytree(path, other)
        _age(other)
        _scan(other)
    assert len(_cache_files(cache)) == 2

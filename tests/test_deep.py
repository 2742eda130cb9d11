"""--deep: one pass computes every file's sha256 and finds every NaN/Inf."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest
from click.testing import CliRunner

from r1release import deep
from r1release.checkpoint import Checkpoint
from r1release.cli import main
from r1release.rules import finite_weights
from r1release.safetensors_header import DTYPE_BITS

from factory import safetensors_bytes


def test_digests_match_hashlib(checkpoint):
    path = checkpoint()
    result = CliRunner().invoke(main, ["check", "--deep", "--format", "json", str(path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["deep"] is True and "finite-weights" in report["rules_run"]
    files = {f["path"]: f for f in report["files"]}
    on_disk = sorted(p for p in path.rglob("*") if p.is_file())
    assert sorted(files) == sorted(p.relative_to(path).as_posix() for p in on_disk)
    for p in on_disk:
        entry = files[p.relative_to(path).as_posix()]
        assert entry["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
        assert entry["size"] == p.stat().st_size


def test_plain_check_has_no_digests(checkpoint):
    result = CliRunner().invoke(main, ["check", "--format", "json", str(checkpoint())])
    report = json.loads(result.stdout)
    assert report["files"] == [] and "finite-weights" not in report["rules_run"]


def _with_nan(path, values_by_dtype):
    tensors = {}
    for name, (dtype, raw) in values_by_dtype.items():
        tensors[name] = (dtype, (len(raw) * 8 // DTYPE_BITS[dtype],), raw)
    (path / "model-00002-of-00002.safetensors").unlink()
    (path / "model.safetensors.index.json").unlink()
    (path / "model-00001-of-00002.safetensors").unlink()
    (path / "model.safetensors").write_bytes(safetensors_bytes(tensors))


def bf16(values):
    return (np.asarray(values, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()


@pytest.mark.parametrize("chunk", [deep.CHUNK, 7, 64])  # tiny chunks split elements
def test_nonfinite_values_found_with_counts(checkpoint, monkeypatch, chunk):
    monkeypatch.setattr(deep, "CHUNK", chunk)
    path = checkpoint()
    nan, inf = float("nan"), float("inf")
    _with_nan(
        path,
        {
            "clean.bf16": ("BF16", bf16([1.0, -2.0, 3.5] * 50)),
            "bad.bf16": ("BF16", bf16([1.0, nan, 2.0, -inf, nan] * 3)),
            "bad.f16": ("F16", np.array([1, inf, 2], "<f2").tobytes()),
            "bad.f32": ("F32", np.array([nan, 1, 2, 3], "<f4").tobytes()),
            "bad.f64": ("F64", np.array([1, -inf], "<f8").tobytes()),
            "ints": ("I32", np.array([-1, 0x7FFFFFFF], "<i4").tobytes()),  # never scanned
            "max.f32": ("F32", np.array([np.finfo(np.float32).max], "<f4").tobytes()),
        },
    )
    scan = deep.scan_checkpoint(Checkpoint(path), workers=2)
    assert dict(scan.nonfinite["model.safetensors"]) == {
        "bad.bf16": 9,
        "bad.f16": 1,
        "bad.f32": 1,
        "bad.f64": 1,
    }


ALL_BYTES = bytes(range(256))


@pytest.mark.parametrize("chunk", [deep.CHUNK, 7])
def test_float8_nonfinite_bit_patterns(checkpoint, monkeypatch, chunk):
    """Each float8 by its own patterns over all 256 bytes: e4m3fn has NaN S.1111.111 and no
    Inf, E5M2 an IEEE all-ones exponent, E8M0 NaN 0xFF, the FNUZ variants NaN 0x80 only
    (which would be negative zero elsewhere); F4 and F6 have no NaN/Inf (all ones is finite)."""
    monkeypatch.setattr(deep, "CHUNK", chunk)
    path = checkpoint()
    float8 = ["F8_E4M3", "F8_E5M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ"]
    tensors = {name: (name, ALL_BYTES + b"\xff" * 3) for name in float8}
    tensors |= {name: (name, b"\xff" * 12) for name in ["F4", "F6_E2M3", "F6_E3M2"]}
    _with_nan(path, tensors)
    scan = deep.scan_checkpoint(Checkpoint(path), workers=2)
    assert dict(scan.nonfinite["model.safetensors"]) == {
        "F8_E4M3": 2 + 3,
        "F8_E5M2": 8 + 3,
        "F8_E8M0": 1 + 3,
        "F8_E4M3FNUZ": 1,
        "F8_E5M2FNUZ": 1,
    }


def test_every_dtype_is_scanned_or_finite_by_construction():
    """A dtype the reader accepts is either scanned or one that has no NaN/Inf encoding:
    integers and BOOL, and the sub-byte MX floats F4 and F6 (the ``finite-weights`` doc)."""
    finite = {"BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64", "F4", "F6_E2M3",
              "F6_E3M2"}  # fmt: skip
    assert set(DTYPE_BITS) - finite == deep.SCANNED
    doc = " ".join(deep.__doc__.split()) + " ".join(finite_weights.__doc__.split())
    assert "F4 (E2M1) and F6 (E2M3, E3M2)" in doc and "finite by construction" in doc


def test_fnuz_nan_found_in_a_large_clean_tensor(checkpoint):
    """The FNUZ fast path (one ``min``) sees a single NaN among many finite bytes, 0xFF and
    0x7F (the largest magnitudes, finite in FNUZ) included."""
    path = checkpoint()
    raw = bytearray(b"\x7f\xff\x01\x00" * (deep.BLOCK // 2))
    raw[-5] = 0x80
    _with_nan(path, {"w": ("F8_E5M2FNUZ", bytes(raw)), "clean": ("F8_E4M3FNUZ", b"\xff\x7f")})
    scan = deep.scan_checkpoint(Checkpoint(path))
    assert scan.nonfinite["model.safetensors"] == [("w", 1)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dtype", "torch_name"),
    [("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2"), ("F8_E8M0", "float8_e8m0fnu"),
     ("F8_E4M3FNUZ", "float8_e4m3fnuz"), ("F8_E5M2FNUZ", "float8_e5m2fnuz")],
)  # fmt: skip
def test_float8_patterns_agree_with_torch(dtype, torch_name):
    """The byte values the scan counts are exactly those torch decodes as NaN or Inf."""
    import torch

    decoded = torch.frombuffer(bytearray(ALL_BYTES), dtype=torch.uint8).view(
        getattr(torch, torch_name)
    )
    expected = [b for b in range(256) if not torch.isfinite(decoded[b].float())]
    assert [b for b in range(256) if deep._count(memoryview(bytes([b])), dtype)] == expected
    assert deep._count(memoryview(ALL_BYTES), dtype) == len(expected)


def test_unaligned_tensor_offsets(checkpoint, monkeypatch):
    monkeypatch.setattr(deep, "CHUNK", 5)
    path = checkpoint()
    # a 1-byte tensor first puts the bf16 tensor at an odd offset
    _with_nan(path, {"a": ("F8_E5M2", b"\x01"), "b": ("BF16", bf16([1.0, float("nan"), 2.0]))})
    scan = deep.scan_checkpoint(Checkpoint(path))
    assert scan.nonfinite["model.safetensors"] == [("b", 1)]


def test_finite_weights_finding_via_cli(checkpoint):
    path = checkpoint()
    _with_nan(path, {"w": ("BF16", bf16([1.0, float("nan")]))})
    result = CliRunner().invoke(main, ["check", "--deep", str(path)])
    assert result.exit_code == 1
    assert "finite-weights (R304)  model.safetensors: NaN/Inf values in w (1)" in result.stdout
    plain = CliRunner().invoke(main, ["check", str(path)])
    assert plain.exit_code == 0


def test_broken_header_is_still_hashed(checkpoint):
    path = checkpoint()
    shard = path / "model-00001-of-00002.safetensors"
    shard.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    scan = deep.scan_checkpoint(Checkpoint(path))
    digests = {d.path: d.sha256 for d in scan.digests}
    assert digests[shard.name] == hashlib.sha256(shard.read_bytes()).hexdigest()


def test_skipped_files_are_not_read(checkpoint):
    from r1release.checkpoint import is_leftover

    path = checkpoint()
    (path / "optimizer.pt").write_bytes(b"\0" * 4096)
    scan = deep.scan_checkpoint(Checkpoint(path), skip=is_leftover)
    paths = {d.path for d in scan.digests}
    assert "optimizer.pt" not in paths and "config.json" in paths

"""finite-weights on float8 and MX checkpoints: each float8 by its own NaN/Inf patterns."""

from __future__ import annotations

import pytest

from r1release.checkpoint import Checkpoint
from r1release.deep import scan_checkpoint
from r1release.rules import finite_weights
from r1release.rules.base import Context

from factory import safetensors_bytes


def _weights(path, tensors):
    """Replace the checkpoint's shards by one ``model.safetensors`` holding ``tensors``."""
    for name in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                 "model.safetensors.index.json"]:  # fmt: skip
        (path / name).unlink()
    (path / "model.safetensors").write_bytes(safetensors_bytes(tensors))


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        # MXFP4/MXFP6: F4 and F6 cannot hold NaN (all ones is finite), the E8M0 scales can (0xFF)
        ({"blocks": ("F4", (4, 8), b"\xff" * 16), "fp6": ("F6_E2M3", (4,), b"\xff" * 3),
          "e3m2": ("F6_E3M2", (4,), b"\xff" * 3),
          "scales": ("F8_E8M0", (4, 1), b"\x7f\xff\x7f\xff")}, "scales (2)"),
        ({"blocks": ("F4", (4, 8), b"\xff" * 16), "scales": ("F8_E8M0", (2,), b"\x7f\xfe")},
         None),
        # 0x80: the FNUZ NaN, negative zero in e4m3fn and E5M2; 0x7F: the e4m3fn NaN, the
        # largest finite FNUZ value; 0x7C/0xFC: Inf in E5M2, finite in E5M2FNUZ
        ({"fnuz": ("F8_E4M3FNUZ", (4,), b"\x80\x7f\xff\x00"),
          "fn": ("F8_E4M3", (4,), b"\x80\x7f\xff\x00")}, "fnuz (1), fn (2)"),
        ({"e5m2fnuz": ("F8_E5M2FNUZ", (3,), b"\x7c\xfc\x80"),
          "e5m2": ("F8_E5M2", (3,), b"\x7c\xfc\x80")}, "e5m2fnuz (1), e5m2 (2)"),
        ({"fnuz": ("F8_E5M2FNUZ", (4,), b"\x7f\xff\x7c\xfc")}, None),
    ],
)  # fmt: skip
def test_low_precision_table(checkpoint, tensors, message):
    path = checkpoint()
    _weights(path, tensors)
    ckpt = Checkpoint(path)  # the rule alone: a deep check would also build the model
    context = Context(ckpt, deep=scan_checkpoint(ckpt, cache=False))
    found = [(p.file, p.message) for p in finite_weights.check(context)]
    assert found == ([("model.safetensors", f"NaN/Inf values in {message}")] if message else [])

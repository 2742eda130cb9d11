"""safetensors-header on the dtypes of low-precision checkpoints (FP8, FNUZ, MXFP4/MXFP6)."""

from __future__ import annotations

import pytest

from factory import safetensors_bytes
from helpers import rule_findings

LOW_PRECISION = {
    "fp8": ("F8_E4M3", (4, 4), b"\x01" * 16),
    "fp8.fnuz": ("F8_E4M3FNUZ", (4, 4), b"\x01" * 16),
    "fp8.e5m2fnuz": ("F8_E5M2FNUZ", (2,), b"\x01" * 2),
    "mxfp4.blocks": ("F4", (4, 8), b"\x22" * 16),  # 32 elements of 4 bits
    "mxfp4.scales": ("F8_E8M0", (4, 1), b"\x7f" * 4),
    "mxfp6.e2m3": ("F6_E2M3", (2, 4), b"\x00" * 6),  # 8 elements of 6 bits
    "mxfp6.e3m2": ("F6_E3M2", (0, 5), b""),
}


def _weights(path, tensors):
    """Replace the checkpoint's shards by one ``model.safetensors`` holding ``tensors``."""
    for name in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                 "model.safetensors.index.json"]:  # fmt: skip
        (path / name).unlink()
    (path / "model.safetensors").write_bytes(safetensors_bytes(tensors))


def test_every_low_precision_dtype_is_accepted(checkpoint):
    path = checkpoint()
    _weights(path, LOW_PRECISION)
    assert rule_findings(path, "safetensors-header") == []


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (("F4", (3,), b"\x00\x00"), "F4[3] is 3 elements of 4 bits (12 bits)"),
        (("F6_E3M2", (1, 3), b"\x00" * 3), "F6_E3M2[1, 3] is 3 elements of 6 bits (18 bits)"),
    ],
)
def test_sub_byte_tensor_off_a_byte_boundary(checkpoint, tensor, message):
    """One finding, on one line, naming the file, the tensor and its bits."""
    path = checkpoint()
    _weights(path, {**LOW_PRECISION, "odd": tensor})
    [finding] = rule_findings(path, "safetensors-header")
    assert finding.file == "model.safetensors" and "\n" not in finding.message
    assert finding.message == f"tensor 'odd': {message}, not a whole number of bytes"
    assert finding.hint == "re-save the model; the file is damaged or incomplete"


def test_sub_byte_span_counted_in_bits(checkpoint):
    """32 F4 elements take 16 bytes: a span of 32 (one per element) is wrong."""
    path = checkpoint()
    _weights(path, {"w": ("F4", (32,), b"\x00" * 32)})
    [finding] = rule_findings(path, "safetensors-header")
    assert finding.message == "tensor 'w': data_offsets span 32 bytes but F4[32] needs 16"

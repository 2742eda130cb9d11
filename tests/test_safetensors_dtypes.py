"""Every safetensors dtype, cross-checked against the safetensors library itself.

The reader's verdict on a header (valid or not, and each tensor's dtype, shape and span)
must be safe_open's: on headers crafted for every dtype, including the sub-byte F4 and F6
whose spans are counted in bits, and on files safetensors itself writes.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors import SafetensorError, deserialize, safe_open

from r1release.safetensors_header import DTYPE_BITS, HeaderError, read_safetensors_header

# shapes around the byte boundaries of 4- and 6-bit elements, scalars and empty tensors
SHAPES = [[], [0], [1], [2], [3], [4], [5], [7], [8], [2, 3], [3, 3], [4, 0, 3], [1, 1, 1]]


def _write(path: Path, tensors: list[tuple[str, str, list[int], int]]) -> Path:
    """A file of ``(name, dtype, shape, span)`` tensors laid out in order, with distinct bytes
    (so a tensor read from the wrong offset shows)."""
    header: dict[str, object] = {}
    offset = 0
    for name, dtype, shape, span in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + span]}
        offset += span
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    data = bytes(range(251)) * (offset // 251 + 1)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[:offset])
    return path


def _reference(path: Path) -> dict[str, tuple[str, tuple[int, ...], bytes]] | str:
    """safetensors' reading of ``path``: each tensor's dtype, shape and bytes, or its error."""
    try:
        with safe_open(str(path), framework="numpy") as f:
            slices = {k: f.get_slice(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
            infos = {k: (s.get_dtype(), tuple(s.get_shape())) for k, s in slices.items()}
    except SafetensorError as exc:
        return str(exc)
    data = dict(deserialize(path.read_bytes()))
    return {k: (dtype, shape, bytes(data[k]["data"])) for k, (dtype, shape) in infos.items()}


def _ours(path: Path) -> dict[str, tuple[str, tuple[int, ...], bytes]] | str:
    try:
        header = read_safetensors_header(path, path.name)
    except HeaderError as exc:
        return exc.reason
    raw = path.read_bytes()[header.data_start :]
    return {k: (t.dtype, t.shape, raw[t.begin : t.end]) for k, t in header.tensors.items()}


def _agree(path: Path) -> tuple[object, object]:
    """Both readings of ``path``, with any error reduced to "invalid" for the comparison."""
    ours, theirs = _ours(path), _reference(path)
    return (
        ours if isinstance(ours, dict) else "invalid",
        theirs if isinstance(theirs, dict) else "invalid",
    )


def test_every_dtype_safetensors_defines(tmp_path):
    """The installed safetensors lists its dtypes when it meets an unknown one: they are ours."""
    path = _write(tmp_path / "x.safetensors", [("a", "NOPE", [1], 1)])
    error = _reference(path)
    assert isinstance(error, str)
    listed = re.search(r"expected one of (.*?) at line", error)
    assert listed, error
    assert set(re.findall(r"`(\w+)`", listed.group(1))) == set(DTYPE_BITS)
    assert "unknown dtype 'NOPE'" in _ours(path)


@pytest.mark.parametrize("dtype", sorted(DTYPE_BITS))
def test_bits_per_element_match_safetensors(tmp_path, dtype):
    """Eight elements take exactly as many bytes as the dtype has bits, one more or less is
    invalid, for safetensors and for the reader."""
    bits = DTYPE_BITS[dtype]
    for span, valid in [(bits, True), (bits - 1, False), (bits + 1, False)]:
        path = _write(tmp_path / f"{span}.safetensors", [("a", dtype, [8], span)])
        ours, theirs = _agree(path)
        assert ours == theirs
        assert isinstance(ours, dict) is valid


@pytest.mark.parametrize("dtype", sorted(DTYPE_BITS))
def test_verdict_and_spans_equal_safe_open(tmp_path, dtype):
    """For every shape near a byte boundary and spans around the exact one, followed by
    another tensor (so a wrong span moves it), the reader says what safe_open says."""
    checked = 0
    for i, shape in enumerate(SHAPES):
        bits = int(np.prod(shape, dtype=np.int64)) * DTYPE_BITS[dtype]
        for span in sorted({bits // 8, -(-bits // 8), -(-bits // 8) + 1}):
            path = _write(
                tmp_path / f"{i}-{span}.safetensors",
                [("a", dtype, shape, span), ("tail", "U8", [3], 3)],
            )
            ours, theirs = _agree(path)
            assert ours == theirs, (shape, span)
            checked += isinstance(ours, dict)
    assert checked  # some layouts of every dtype are valid


@pytest.mark.parametrize(
    ("dtype", "shape", "span"),
    [("F4", [3], 2), ("F4", [], 1), ("F6_E2M3", [2], 2), ("F6_E3M2", [5, 1], 4)],
)
def test_sub_byte_misalignment_is_one_line(tmp_path, dtype, shape, span):
    """A sub-byte tensor that does not fill whole bytes: safetensors refuses it as misaligned;
    the reader names the tensor, its bits and why."""
    path = _write(tmp_path / "w.safetensors", [("a", dtype, shape, span)])
    assert "byte boundary" in _reference(path)
    bits = int(np.prod(shape, dtype=np.int64)) * DTYPE_BITS[dtype]
    assert _ours(path) == (
        f"tensor 'a': {dtype}{shape} is {bits // DTYPE_BITS[dtype]} elements of "
        f"{DTYPE_BITS[dtype]} bits ({bits} bits), not a whole number of bytes"
    )


def test_files_safetensors_numpy_writes(tmp_path):
    from safetensors.numpy import save_file

    kinds = [np.float64, np.float32, np.float16, np.int64, np.uint64, np.int32, np.uint32,
             np.int16, np.uint16, np.int8, np.uint8, np.bool_]  # fmt: skip
    rng = np.random.default_rng(0)
    tensors = {
        f"{np.dtype(kind).name}{list(shape)}": np.asarray(rng.random(shape) * 100).astype(kind)
        for kind in kinds
        for shape in [(3,), (2, 5), (0, 4), ()]
    }
    path = tmp_path / "np.safetensors"
    save_file(tensors, str(path))
    ours = _ours(path)
    assert isinstance(ours, dict) and ours == _reference(path)
    assert {dtype for dtype, _, _ in ours.values()} == {
        "F64", "F32", "F16", "I64", "U64", "I32", "U32", "I16", "U16", "I8", "U8", "BOOL"
    }  # fmt: skip


@pytest.mark.slow
def test_files_safetensors_torch_writes(tmp_path):
    """Every dtype safetensors.torch writes (the float8s, FNUZ and E8M0 included, and F4 from
    torch's packed float4_e2m1fn_x2, whose header shape counts elements, not bytes)."""
    import torch
    from safetensors.torch import save_file

    names = ["float64", "float32", "float16", "bfloat16", "complex64", "int64", "uint64",
             "int32", "uint32", "int16", "uint16", "int8", "uint8", "bool", "float8_e4m3fn",
             "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu",
             "float4_e2m1fn_x2"]  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    tensors = {}
    for name in names:
        dtype = getattr(torch, name)
        size = torch.empty((), dtype=dtype).element_size()
        # a scalar float4_e2m1fn_x2 is one F4 element in the header: safetensors refuses it
        for shape in [(3,), (2, 5), (0, 4)] + [()] * (name != "float4_e2m1fn_x2"):
            raw = torch.randint(0, 256, (int(np.prod(shape)) * size,), dtype=torch.uint8,
                                generator=generator)  # fmt: skip
            tensors[f"{name}{list(shape)}"] = raw.view(dtype).reshape(shape)
    path = tmp_path / "pt.safetensors"
    save_file(tensors, str(path))
    ours = _ours(path)
    assert isinstance(ours, dict) and ours == _reference(path)
    assert {dtype for dtype, _, _ in ours.values()} == set(DTYPE_BITS) - {"F6_E2M3", "F6_E3M2"}
    assert ours["float4_e2m1fn_x2[2, 5]"][1] == (2, 10)  # 20 F4 elements in 10 bytes
    for key, (_, _, raw) in ours.items():  # and the spans hold the tensors torch gave
        assert tensors[key].reshape(-1).view(torch.uint8).numpy().tobytes() == raw

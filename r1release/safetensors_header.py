"""The safetensors header reader: parses a file's header and checks its bounds and layout.

Reads the 8-byte length and the JSON header only, never the tensor data; every defect is a
:class:`HeaderError` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1release.errors import FileUnreadable

# Every dtype safetensors 0.8 defines (its Rust ``Dtype`` enum): name -> bits per element.
# F4 and F6 are sub-byte: a tensor's span is its element count times these bits, which must
# be a whole number of bytes (safetensors rejects the file otherwise; nothing is rounded).
DTYPE_BITS = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
    "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}  # fmt: skip
MAX_HEADER = 100_000_000  # the limit the safetensors library enforces
MAX_DIM = 2**53  # bounds on a tensor's shape in a safetensors header (exclusive)
MAX_ELEMENTS = 2**60
MAX_RANK = 64


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    begin: int  # offsets relative to the start of the data section
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class SafetensorsHeader:
    path: str
    file_size: int
    header_len: int
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]

    @property
    def data_start(self) -> int:
        return 8 + self.header_len


class HeaderError(FileUnreadable):
    """A safetensors file whose header or layout is invalid."""


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def read_safetensors_header(path: Path, name: str) -> SafetensorsHeader:
    """Read and validate a safetensors header; raises :class:`HeaderError` on any defect."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < 8:
                raise HeaderError(name, f"{size} bytes is too short for a safetensors file")
            (header_len,) = struct.unpack("<Q", fh.read(8))
            if header_len > size - 8:
                raise HeaderError(
                    name,
                    f"header length {header_len} runs past the end of the file "
                    f"({size} bytes): the file is truncated or not safetensors",
                )
            if header_len > MAX_HEADER:
                raise HeaderError(name, f"header length {header_len} exceeds the 100 MB limit")
            raw = fh.read(header_len)
    except OSError as exc:
        raise HeaderError(name, f"cannot read: {exc.strerror}") from None
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise HeaderError(name, "header is not UTF-8 JSON") from None
    except (ValueError, RecursionError) as exc:
        raise HeaderError(name, f"header is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(doc, dict):
        raise HeaderError(name, "header is not a JSON object")
    metadata = doc.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise HeaderError(name, "__metadata__ must map strings to strings")
    tensors = {key: _tensor_info(name, key, value) for key, value in doc.items()}
    _check_layout(name, tensors, size - 8 - header_len)
    return SafetensorsHeader(name, size, header_len, tensors, metadata)


def _tensor_info(file: str, key: str, value: Any) -> TensorInfo:
    name = _tensor_name(key)
    if not isinstance(value, dict):
        raise HeaderError(file, f"tensor {name}: entry is not an object")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        shown = repr(dtype) if len(repr(dtype)) <= 40 else repr(dtype)[:39] + "…"
        raise HeaderError(file, f"tensor {name}: unknown dtype {shown}")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise HeaderError(file, f"tensor {name}: shape must be a list of non-negative ints")
    if len(shape) > MAX_RANK:
        raise HeaderError(
            file, f"tensor {name}: shape has {len(shape)} dimensions (at most {MAX_RANK})"
        )
    for d in shape:  # a zero elsewhere in the shape must not hide an absurd dimension
        if d >= MAX_DIM:
            raise HeaderError(
                file, f"tensor {name}: dimension {_number(d)} of its shape is absurd (>= 2^53)"
            )
    product = 1  # of the non-zero dimensions: a zero makes the tensor empty, not the shape sane
    for d in shape:
        product *= d or 1
        if product >= MAX_ELEMENTS:
            raise HeaderError(
                file,
                f"tensor {name}: shape {_shape(shape)} is absurd: its dimensions multiply to "
                "2^60 or more",
            )
    elements = product if all(shape) else 0
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise HeaderError(file, f"tensor {name}: data_offsets must be [begin, end], begin <= end")
    needed = _span(file, name, dtype, shape, elements)
    if offsets[1] - offsets[0] != needed:
        raise HeaderError(
            file,
            f"tensor {name}: data_offsets span {_number(offsets[1] - offsets[0])} bytes but "
            f"{dtype}{_shape(shape)} needs {needed}",
        )
    return TensorInfo(dtype, tuple(shape), offsets[0], offsets[1])


def _span(file: str, name: str, dtype: str, shape: list[int], elements: int) -> int:
    """The bytes ``elements`` of ``dtype`` take. Like safetensors, a sub-byte tensor (F4, F6)
    whose bits do not fill a whole number of bytes is an error, not a rounded span."""
    bits = elements * DTYPE_BITS[dtype]
    if bits % 8:
        raise HeaderError(
            file,
            f"tensor {name}: {dtype}{_shape(shape)} is {_number(elements)} elements of "
            f"{DTYPE_BITS[dtype]} bits ({_number(bits)} bits), not a whole number of bytes",
        )
    return bits // 8


def _tensor_name(key: str) -> str:
    """``repr`` of a tensor name from an untrusted header, on one line and shortened."""
    shown = repr(key)
    return shown if len(shown) <= 120 else shown[:119] + "…"


def _shape(shape: list[int]) -> str:
    text = str(shape)
    return text if len(text) <= 80 else text[:78] + "…]"


def _number(n: int) -> str:
    text = str(n)
    return text if len(text) <= 30 else f"{text[:12]}…({len(text)} digits)"


def _check_layout(file: str, tensors: dict[str, TensorInfo], data_size: int) -> None:
    position, previous = 0, ""
    for key, info in sorted(tensors.items(), key=lambda kv: (kv[1].begin, kv[1].end)):
        if info.begin < position:
            raise HeaderError(
                file,
                f"tensors {previous} and {_tensor_name(key)} overlap "
                f"(bytes {info.begin}..{position})",
            )
        if info.begin > data_size:
            raise HeaderError(
                file,
                f"tensor {_tensor_name(key)} starts at byte {_number(info.begin)} of the data "
                f"but the file holds {data_size}: truncated",
            )
        if info.begin > position:
            raise HeaderError(
                file,
                f"{info.begin - position} unused bytes before tensor {_tensor_name(key)}: "
                "offsets must be contiguous",
            )
        position, previous = info.end, _tensor_name(key)
    if position > data_size:
        raise HeaderError(
            file, f"truncated: tensor data needs {position} bytes but the file holds {data_size}"
        )
    if position < data_size:
        raise HeaderError(file, f"{data_size - position} trailing bytes after the last tensor")

"""The checkpoint reader: safetensors headers, file list, symlinks, chat templates."""

from __future__ import annotations

import contextlib
import json
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from r1release.checkpoint import Checkpoint, HeaderError, read_safetensors_header

from factory import safetensors_bytes


def test_header_reader_on_valid_file(tmp_path):
    file = tmp_path / "w.safetensors"
    file.write_bytes(
        safetensors_bytes(
            {
                "a": ("BF16", (2, 3), b"\x00" * 12),
                "b": ("F32", (1,), b"\x00" * 4),
            },
            {"format": "pt"},
        )
    )
    header = read_safetensors_header(file, "w.safetensors")
    assert header.tensors["a"].shape == (2, 3) and header.tensors["b"].nbytes == 4
    assert header.metadata == {"format": "pt"}


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, 4, "truncated"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, 12, "trailing bytes"),
        ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, 8, "needs 12"),
        ({"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}}, 8, "unknown dtype"),
        ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, 8, "shape"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, 8, "unused bytes"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}}, 8, "begin <= end"),
        ({"__metadata__": {"x": 1}}, 0, "__metadata__"),
        ([1, 2], 0, "not a JSON object"),
    ],
)
def test_header_defects(tmp_path, header, data, message):
    text = json.dumps(header).encode()
    file = tmp_path / "w.safetensors"
    file.write_bytes(struct.pack("<Q", len(text)) + text + b"\x00" * data)
    with pytest.raises(HeaderError, match=message):
        read_safetensors_header(file, "w.safetensors")


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.binary(max_size=200), length=st.integers(0, 2**64 - 1) | st.integers(0, 300))
def test_header_reader_never_crashes(tmp_path, blob, length):
    file = tmp_path / "fuzz.safetensors"
    file.write_bytes(struct.pack("<Q", length) + blob)
    with contextlib.suppress(HeaderError):
        read_safetensors_header(file, "fuzz.safetensors")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(header=st.dictionaries(st.text(max_size=8), json_values, max_size=4))
def test_header_reader_never_crashes_on_json(tmp_path, header):
    text = json.dumps(header).encode()
    file = tmp_path / "fuzz.safetensors"
    file.write_bytes(struct.pack("<Q", len(text)) + text)
    with contextlib.suppress(HeaderError):
        read_safetensors_header(file, "fuzz.safetensors")


def test_file_list_does_not_follow_symlinks(tmp_path):
    root = tmp_path / "ckpt"
    root.mkdir()
    (root / "config.json").write_text("{}")
    (root / "loop").symlink_to(root / "loop")
    (root / "up").symlink_to(tmp_path, target_is_directory=True)
    (root / "inside.json").symlink_to(root / "config.json")
    entries = {e.path: e for e in Checkpoint(root).files}
    assert entries["loop"].escapes and entries["up"].escapes and entries["up"].is_dir
    assert not entries["inside.json"].escapes and entries["inside.json"].size == 2


def test_escaping_symlink_is_never_read(tmp_path):
    root = tmp_path / "ckpt"
    root.mkdir()
    secret = tmp_path / "secret.json"
    secret.write_text('{"token": "hf_secret"}')
    os.symlink(secret, root / "config.json")
    from r1release.errors import FileUnreadable

    with pytest.raises(FileUnreadable, match="leaves the checkpoint"):
        Checkpoint(root).json("config.json")


def test_named_chat_templates(tmp_path):
    root = tmp_path / "ckpt"
    root.mkdir()
    (root / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "chat_template": [
                    {"name": "tool_use", "template": "T"},
                    {"name": "default", "template": "D"},
                ],
            }
        )
    )
    template = Checkpoint(root).chat_template()
    assert template is not None and (template.source, template.text) == (
        "tokenizer_config.json",
        "D",
    )

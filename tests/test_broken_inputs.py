"""Broken checkpoints and release.yaml files: a clear finding or one-line error, no traceback."""

from __future__ import annotations

import json
import os
import struct

import pytest
from click.testing import CliRunner

from r1release.cli import main

from factory import safetensors_bytes

SHARD1 = "model-00001-of-00002.safetensors"
SHARD2 = "model-00002-of-00002.safetensors"


def run(*args: str, cwd=None):
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(main, list(args))
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(main, list(args))
    finally:
        os.chdir(old)


def assert_clean_failure(result, code: int):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def truncate(path):
    data = (path / SHARD1).read_bytes()
    (path / SHARD1).write_bytes(data[: len(data) - 100])


def header_past_end(path):
    data = (path / SHARD1).read_bytes()
    (path / SHARD1).write_bytes(struct.pack("<Q", len(data) * 10) + data[8:])


def overlapping(path):
    raw = b"\x00" * 32
    (path / SHARD1).write_bytes(b"")  # replaced below with a crafted header
    header = {
        "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
    }
    text = json.dumps(header).encode()
    (path / SHARD1).write_bytes(struct.pack("<Q", len(text)) + text + raw[:24])


def missing_shard(path):
    (path / SHARD2).unlink()


def stray_shard(path):
    (path / "model-00003-of-00003.safetensors").write_bytes(
        safetensors_bytes({"x": ("F32", (1,), b"\x00" * 4)})
    )


def pickle_weights(path):
    (path / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")


def escaping_symlink(path):
    outside = path.parent / "outside.json"
    outside.write_text("{}")
    (path / "special_tokens_map.json").symlink_to(outside)


@pytest.mark.parametrize(
    ("breaker", "rule", "file", "text"),
    [
        (truncate, "safetensors-header", SHARD1, "truncated"),
        (header_past_end, "safetensors-header", SHARD1, "past the end of the file"),
        (overlapping, "safetensors-header", SHARD1, "overlap"),
        (missing_shard, "shard-index", "model.safetensors.index.json", "does not exist"),
        (stray_shard, "shard-index", "model-00003-of-00003.safetensors", "stray"),
        (pickle_weights, "weights-format", "pytorch_model.bin", "pickle"),
        (escaping_symlink, "paths", "special_tokens_map.json", "leaves the checkpoint"),
    ],
)
def test_broken_checkpoint_gives_finding(checkpoint, breaker, rule, file, text):
    path = checkpoint()
    breaker(path)
    result = run("check", "--format", "json", str(path))
    assert_clean_failure(result, 1)
    report = json.loads(result.stdout)
    matches = [f for f in report["findings"] if f["rule"] == rule]
    assert matches, report["findings"]
    assert any(f["file"] == file and text in f["message"] for f in matches), matches
    assert not any("internal error" in f["message"] for f in report["findings"])


@pytest.mark.parametrize(
    "name",
    [
        "config.json",
        "generation_config.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "model.safetensors.index.json",
    ],
)
def test_invalid_json_in_each_config_file(checkpoint, name):
    path = checkpoint()
    (path / name).write_text('{"eos_token_id": 151645,,}')
    result = run("check", str(path))
    assert_clean_failure(result, 1)
    assert f"json-files (R001)  {name}: invalid JSON at line 1 column 25" in result.stdout
    assert "internal error" not in result.output


def test_invalid_tokenizer_json_is_a_finding(checkpoint):
    path = checkpoint()
    (path / "tokenizer.json").write_text("{not json")
    result = run("check", "--format", "json", str(path))
    assert_clean_failure(result, 1)
    [finding] = [f for f in json.loads(result.stdout)["findings"] if f["rule"] == "tokenizer"]
    assert finding["file"] == "tokenizer.json" and "does not load" in finding["message"]


def test_missing_checkpoint_is_one_line_usage_error(tmp_path):
    result = run("check", str(tmp_path / "nope"))
    assert_clean_failure(result, 2)
    assert result.stderr.count("\n") == 1
    assert "checkpoint directory not found" in result.stderr


GOOD = """\
version: 1
models:
  - name: tiny
    checkpoint: {path}
    repo_id: org/tiny
"""


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (GOOD + "checks:\n  eos-alignment: [error\n", 7, "YAML syntax error"),
        (GOOD + "    privat: true\n", 6, "models[0].privat: unknown key (did you mean 'private'?)"),
        (GOOD + "    private: sometimes\n", 6, "models[0].private: expected true/false"),
        (GOOD + "    tags: open-r1\n", 6, "models[0].tags: expected a list"),
        (GOOD.replace("    repo_id: org/tiny\n", ""), 3, "models[0].repo_id: required key"),
        (GOOD + "  - name: tiny\n    checkpoint: x\n    repo_id: a/b\n", 6, "duplicate model"),
        (GOOD + "checks:\n  eos-alignmnt: off\n", 7, "did you mean 'eos-alignment'?"),
        (GOOD + "checks:\n  leftovers: loud\n", 7, "checks.leftovers: expected error, warning"),
        (GOOD + "checks:\n  weights-format: {allow_pickles: true}\n", 7, "unknown option"),
        (GOOD + "push:\n  fix: 3\n", 7, "push.fix: expected true/false, got an integer 3"),
    ],
)
def test_bad_release_yaml(checkpoint, tmp_path, text, line, expected):
    path = checkpoint()
    (tmp_path / "release.yaml").write_text(text.replace("{path}", str(path)))
    result = run("check", cwd=tmp_path)
    assert_clean_failure(result, 2)
    assert result.stderr.startswith(f"error: release.yaml:{line}: "), result.stderr
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_debug_shows_traceback(tmp_path):
    (tmp_path / "release.yaml").write_text("version: 1\nmodels: [\n")
    result = run("--debug", "check", cwd=tmp_path)
    assert result.exit_code == 2
    assert "Traceback" in result.stderr


def test_fix_writes_nothing_while_a_config_file_is_broken(checkpoint):
    path = checkpoint("qwen2.5-base-after-chatml-sft")
    (path / "config.json").write_text("{broken")
    before = (path / "generation_config.json").read_text()
    result = run("fix", str(path))
    assert_clean_failure(result, 1)
    assert "config.json: invalid JSON at line 1 column 2" in result.stderr
    assert (path / "config.json").read_text() == "{broken"
    assert (path / "generation_config.json").read_text() == before

from __future__ import annotations

import json
import os

import pytest

from r1release import fixes
from r1release.errors import R1ReleaseError
from r1release.fixes import apply_fixes, plan_fixes, render_json

FAILING = "qwen2.5-base-after-chatml-sft"


def test_failed_write_leaves_original_intact(checkpoint, monkeypatch):
    path = checkpoint(FAILING)
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    plan = plan_fixes(path)
    real_replace = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fixes.os, "replace", failing_replace)
    with pytest.raises(OSError):
        apply_fixes(plan)
    monkeypatch.setattr(fixes.os, "replace", real_replace)
    assert calls
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before  # no temp file left


def test_failed_write_midway_through_the_file(checkpoint, monkeypatch):
    path = checkpoint(FAILING)
    original = (path / "config.json").read_bytes()
    plan = plan_fixes(path)

    class Exploding:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, text):
            self.fh.write(text[: len(text) // 2])
            raise OSError(5, "I/O error")

    real_fdopen = os.fdopen
    monkeypatch.setattr(fixes.os, "fdopen", lambda *a, **k: Exploding(real_fdopen(*a, **k)))
    with pytest.raises(OSError):
        apply_fixes(plan)
    assert (path / "config.json").read_bytes() == original
    assert not [p for p in path.iterdir() if p.name.endswith(".tmp")]


def test_file_mode_is_kept(checkpoint):
    path = checkpoint(FAILING)
    os.chmod(path / "config.json", 0o640)
    apply_fixes(plan_fixes(path))
    assert (path / "config.json").stat().st_mode & 0o777 == 0o640


def test_changed_on_disk_between_plan_and_apply(checkpoint):
    path = checkpoint(FAILING)
    plan = plan_fixes(path)
    (path / "config.json").write_text((path / "config.json").read_text() + " ")
    with pytest.raises(R1ReleaseError, match="changed on disk"):
        apply_fixes(plan)


def test_symlinked_file_is_not_replaced(checkpoint, tmp_path):
    path = checkpoint(FAILING)
    real = tmp_path / "real_generation_config.json"
    (path / "generation_config.json").rename(real)
    (path / "generation_config.json").symlink_to(real)
    with pytest.raises(R1ReleaseError):
        apply_fixes(plan_fixes(path))


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ('{\n    "a": 1,\n    "b": 2\n}\n', '{\n    "a": 1,\n    "b": 3\n}\n'),
        ('{\n  "a": 1,\n  "b": 2\n}', '{\n  "a": 1,\n  "b": 3\n}'),
        ('{"a": 1, "b": 2}\n', '{"a": 1, "b": 3}\n'),
        ('{\n\t"a": 1,\n\t"b": 2\n}\n', '{\n\t"a": 1,\n\t"b": 3\n}\n'),
    ],
)
def test_render_json_keeps_style(original, expected):
    doc = json.loads(original)
    doc["b"] = 3
    assert render_json(doc, original) == expected

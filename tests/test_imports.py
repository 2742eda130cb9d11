"""Heavy imports stay off the path of `--help` and of a plain check."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = """
import sys
from r1release.cli import main

try:
    main({args!r})
except SystemExit as exc:
    code = exc.code
print("MODULES", "torch" in sys.modules, "transformers" in sys.modules, code)
"""


def _run(args, cwd):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(args=args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )
    line = [x for x in out.stdout.splitlines() if x.startswith("MODULES")][-1]
    return line.split()[1:]


def test_plain_check_leaves_torch_out(checkpoint, tmp_path):
    path = checkpoint("qwen2.5-base-after-chatml-sft")
    torch, _transformers, code = _run(["check", str(path)], tmp_path)
    assert code == "1"  # the check really ran and found the EOS problem
    assert torch == "False"


def test_fix_leaves_torch_out(checkpoint, tmp_path):
    path = checkpoint("qwen2.5-base-after-chatml-sft")
    torch, _transformers, code = _run(["fix", str(path)], tmp_path)
    assert (code, torch) == ("0", "False")


def test_help_imports_neither_torch_nor_transformers(tmp_path):
    torch, transformers, code = _run(["--help"], tmp_path)
    assert (torch, transformers, code) == ("False", "False", "0")

"""The installed wheel's CLI, run from outside the work tree (.ci/run's wheel cell):
`--version`, `--help`, `rules`, `schema`, and a `check` and `fix` of a tiny checkpoint built
by tests/factory.py; r1release must be imported from the venv, not from the checkout."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from factory import build_checkpoint, real_cases  # noqa: E402


def run(*args: str, code: int = 0) -> str:
    out = subprocess.run(["r1release", *args], capture_output=True, text=True, timeout=300)
    if out.returncode != code:
        raise SystemExit(f"r1release {' '.join(args)}: exit {out.returncode}\n{out.stderr}")
    return out.stdout


def main() -> None:
    import r1release

    where = Path(r1release.__file__).resolve()
    if where.parent == TESTS.parent / "r1release":
        raise SystemExit(f"r1release imported from the checkout ({where}), not the wheel")
    assert run("--version").strip().endswith(r1release.__version__)
    assert "Commands:" in run("--help")
    assert "eos-alignment" in run("rules")
    assert json.loads(run("schema"))["type"] == "object"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "ckpt")
        build_checkpoint(path, real_cases()["qwen2.5-base-after-chatml-sft"])
        assert "eos-alignment" in run("check", str(path), code=1)
        run("fix", str(path))
        run("check", str(path))
    print(f"wheel smoke: r1release {r1release.__version__} from {where.parent}: ok")


if __name__ == "__main__":
    main()

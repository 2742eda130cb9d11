from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1release.checker import check

from hubserver import client_env, patch_client

_DELETE = object()
DELETE: Any = _DELETE


def edit_json(path: Path, name: str, **changes: Any) -> None:
    """Set (or with DELETE, remove) top-level keys of a JSON file in the checkpoint."""
    file = path / name
    doc = json.loads(file.read_text()) if file.exists() else {}
    for key, value in changes.items():
        if value is _DELETE:
            doc.pop(key, None)
        else:
            doc[key] = value
    file.write_text(json.dumps(doc, indent=2) + "\n")


def rule_findings(path: Path, rule: str, **kwargs: Any) -> list[Any]:
    return list(check(path, **kwargs).by_rule(rule))


REPO_ID = "org/OpenR1-Tiny"
TOKEN = "hf_canary_token_9f3c1d"


def write_release_yaml(tmp_path: Path, checkpoint: Path, **extra: str) -> Path:
    lines = [
        "version: 1",
        "models:",
        "  - name: OpenR1-Tiny",
        f"    checkpoint: {checkpoint}",
        f"    repo_id: {REPO_ID}",
        "    base_model: Qwen/Qwen2.5-0.5B",
        "    dataset_name: open-r1/Mixture-of-Thoughts",
        "    license: apache-2.0",
    ]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    path = tmp_path / "release.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def r1release(hub, cwd: Path, *args: str, token: str | None = TOKEN, env=None):
    environment = client_env(hub, cwd / ".hf-home", token) | {"R1RELEASE_RETRY_SCALE": "0"}
    environment.pop("CI", None)
    environment.pop("GITHUB_ACTIONS", None)
    environment |= env or {}
    return subprocess.run(
        [sys.executable, "-m", "r1release.cli", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


@dataclass
class Run:
    """What a CLI run left: its exit status and its two streams (like subprocess's)."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(
    monkeypatch: Any,
    hub: Any,
    cwd: Path,
    *args: str,
    token: str | None = TOKEN,
    env: dict[str, str] | None = None,
) -> Run:
    """``r1release ARGS`` in this process (click's runner) against the loopback ``hub``: the
    same code path as the real command, without starting Python and importing torch again.
    Retries never sleep; GitHub's variables are only those in ``env``."""
    from click.testing import CliRunner

    from r1release.cli import main

    with monkeypatch.context() as patch:
        patch_client(patch, hub, cwd / ".hf-home", token)
        if token is None:
            patch.delenv("HF_TOKEN", raising=False)
        for name in list(os.environ):
            if name.startswith("GITHUB_") or name in ("CI", "HF_OIDC_RESOURCE"):
                patch.delenv(name)
        patch.setenv("R1RELEASE_RETRY_SCALE", "0")
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        patch.chdir(cwd)
        result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr)

"""The package as others install it: metadata, one version, the dev tools' one list, the
locks the workflows install, LICENSE and py.typed in the wheel, a complete sdist, a quiet
core install (no torch) and the pre-commit hook."""

from __future__ import annotations

import ast
import importlib.metadata
import logging
import re
import shlex
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import r1release

from helpers import write_release_yaml

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
CLEAN = "qwen2.5-7b-instruct"  # a real case whose checkpoint has no finding


def _names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


# ------------------------------------------------------------------ metadata


def test_the_metadata_says_what_an_index_shows():
    assert PROJECT["license"] == "Apache-2.0"  # PEP 639: an SPDX expression...
    assert PROJECT["license-files"] == ["LICENSE"]  # ...and the file that holds its text
    assert PYPROJECT["build-system"]["requires"] == ["setuptools>=77"]  # the first with both
    assert {"Homepage", "Source", "Issues"} <= set(PROJECT["urls"])
    assert "Typing :: Typed" in PROJECT["classifiers"]
    assert len(PROJECT["keywords"]) >= 5
    python = PROJECT["requires-python"].removeprefix(">=")
    assert f"Programming Language :: Python :: {python}" in PROJECT["classifiers"]


def test_the_version_is_written_once():
    assert "version" not in PROJECT and PROJECT["dynamic"] == ["version"]
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "r1release.__version__"}
    assert importlib.metadata.version("r1release") == r1release.__version__
    holders = [
        path.relative_to(ROOT)
        for path in ROOT.joinpath("r1release").rglob("*.py")
        if "__version__ =" in path.read_text()
    ]
    assert holders == [Path("r1release/__init__.py")]


def test_dev_tools_are_a_dependency_group_not_an_extra():
    assert set(PROJECT["optional-dependencies"]) == {"train"}
    lines = [
        line.strip()
        for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert "-e .[train]" in lines  # the README's first command installs all of it
    tools = [line for line in lines if not line.startswith(("-e ", "torch=="))]
    assert tools == PYPROJECT["dependency-groups"]["dev"]  # a requirements file cannot name it


def _imported_top_level_modules() -> set[str]:
    found: set[str] = set()
    for path in ROOT.joinpath("r1release").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found


def test_every_dependency_is_imported():
    """A declared dependency nothing imports (safetensors was one) only costs an install;
    tokenizers is declared for its lower bound only (pyproject.toml says why)."""
    module = {"pyyaml": "yaml", "huggingface-hub": "huggingface_hub"}
    declared = _names(PROJECT["dependencies"]) - {"tokenizers"}
    assert "safetensors" not in declared
    imported = _imported_top_level_modules()
    assert {module.get(name, name) for name in declared} <= imported


def test_the_license_is_apache_2_0():
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n")
    assert "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text


def test_the_package_says_it_is_typed():
    assert (ROOT / "r1release" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["r1release"]


# ------------------------------------------------------------------ the locks


def _lock(name: str) -> dict[str, str]:
    """requirements/NAME.txt as {package: version}; every entry pinned and hash-checked."""
    text = (ROOT / "requirements" / f"{name}.txt").read_text()
    entries = re.split(r"\n(?=[a-z0-9])", text.split("\n", 1)[1].strip(), flags=re.I)
    pins: dict[str, str] = {}
    for entry in (e for e in entries if not e.startswith("#")):
        requirement = Requirement(entry.split("\\")[0].strip())
        assert "--hash=sha256:" in entry, entry
        (spec,) = requirement.specifier
        assert spec.operator == "==", entry
        if requirement.marker is None or requirement.marker.evaluate():
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


@pytest.mark.parametrize(("lock", "extras"), [("release", ()), ("train", ("train",))])
def test_the_locks_pin_what_the_workflows_need(lock, extras):
    pins = _lock(lock)
    wanted = [
        *PROJECT["dependencies"],
        *(r for e in extras for r in PROJECT["optional-dependencies"][e]),
    ]
    for requirement in map(Requirement, wanted):
        name = canonicalize_name(requirement.name)
        if name == "torch":  # installed for the runner, apart (requirements/release.in)
            assert name not in pins
            continue
        assert requirement.specifier.contains(pins[name]), (name, pins[name])
    assert "setuptools" in pins  # r1release is built with --no-build-isolation
    assert not any(name.startswith("nvidia-") or name == "torch" for name in pins)


# ------------------------------------------------------------------ quiet without torch


def test_the_no_torch_advice_and_only_it_is_dropped():
    logger = logging.getLogger("transformers")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        logger.warning(
            "PyTorch was not found. Models won't be available and only tokenizers, "
            "configuration and file/data utilities can be used."
        )
        logger.warning("PyTorch was found, but something else is wrong")
        logging.getLogger("transformers.tokenization_utils_base").warning("other")
    finally:
        logger.removeHandler(handler)
    assert seen == ["PyTorch was found, but something else is wrong", "other"]


# A CLI in a fresh interpreter where torch cannot be imported (as in the core install).
WITHOUT_TORCH = "import sys; sys.modules['torch'] = None; from r1release.cli import main; main()"


def _cli_without_torch(hub, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from hubserver import client_env

    env = client_env(hub, cwd / ".hf-home", "hf_loopback") | {"R1RELEASE_RETRY_SCALE": "0"}
    env.pop("CI", None)
    env.pop("GITHUB_ACTIONS", None)
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.e2e
def test_transformers_without_torch_prints_its_advice(tmp_path):
    """What the next test silences: transformers, imported without r1release and torch."""
    code = "import sys; sys.modules['torch'] = None; import transformers.utils.logging"
    code += "; from transformers import PreTrainedTokenizerFast"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert "PyTorch was not found" in out.stderr


@pytest.mark.e2e
@pytest.mark.core
@pytest.mark.parametrize(
    "args",
    [
        ("check", "ckpt"),
        ("fix", "ckpt"),
        # A release reports its progress on stderr (and that expected-tensors needs torch):
        # -q leaves only errors.
        ("release", "-q", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--dry-run"),
    ],
    ids=["check", "fix", "release-dry-run"],
)
def test_the_core_cli_is_quiet_on_a_clean_checkpoint(hub, checkpoint, tmp_path, args):
    path = checkpoint(CLEAN)
    path.rename(tmp_path / "ckpt")
    write_release_yaml(tmp_path, tmp_path / "ckpt")
    result = _cli_without_torch(hub, tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    loud = _cli_without_torch(hub, tmp_path, *(a for a in args if a != "-q"))
    assert "PyTorch" not in loud.stderr and "[transformers]" not in loud.stderr


# ------------------------------------------------------------------ the pre-commit hook


def _hook_argv() -> list[str]:
    import yaml

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "r1release-config" and hook["language"] == "python"
    assert re.search(hook["files"], "release.yaml") and re.search(hook["files"], "a/release.yml")
    argv = shlex.split(hook["entry"])
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


@pytest.mark.e2e
def test_the_pre_commit_hook_validates_release_yaml_without_a_checkpoint(tmp_path):
    good = write_release_yaml(tmp_path, tmp_path / "no-such-checkpoint")
    bad = tmp_path / "sub" / "release.yaml"
    bad.parent.mkdir()
    bad.write_text("version: 1\nmodels: 3\n")
    ok = subprocess.run([*_hook_argv(), str(good)], capture_output=True, text=True, cwd=tmp_path)
    assert (ok.returncode, ok.stderr) == (0, "")
    failed = subprocess.run(
        [*_hook_argv(), str(good), str(bad)], capture_output=True, text=True, cwd=tmp_path
    )
    assert failed.returncode == 2
    assert failed.stderr.splitlines() == [
        f"error: {bad}:2: models: expected a list, got an integer 3"
    ]
    assert "Traceback" not in failed.stderr


# ------------------------------------------------------------------ wheel and sdist


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """The sdist, and the wheel built from it (as pip and `python -m build` do)."""
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("r1release-*.whl")
    (sdist,) = out.glob("r1release-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.mark.e2e
def test_the_wheel_ships_license_types_and_metadata(dists):
    version = r1release.__version__
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"r1release-{version}.dist-info/METADATA").decode()
    assert f"r1release-{version}.dist-info/licenses/LICENSE" in names
    assert "r1release/py.typed" in names
    assert not any(name.startswith("tests/") for name in names)
    assert "License-Expression: Apache-2.0" in metadata and "License-File: LICENSE" in metadata
    assert "Project-URL: Source, " in metadata and "Keywords: " in metadata
    assert "Requires-Dist: safetensors" not in metadata
    assert f"Version: {version}\n" in metadata


@pytest.mark.e2e
def test_the_sdist_is_complete(dists):
    """Everything its tests need: conftest, factory, hubserver, tests/data and what the tests
    read from the repository (examples, docs, workflows, the action, release.yaml)."""
    with tarfile.open(dists["sdist"]) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        names = {name.removeprefix(top + "/") for name in sdist.getnames()}
    wanted = [
        path.relative_to(ROOT).as_posix()
        for folder in ("tests", "examples", "docs", ".github")
        for path in ROOT.joinpath(folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]
    wanted += ["LICENSE", "action.yml", "release.yaml", "requirements-dev.txt", ".ci/run"]
    wanted += [".pre-commit-hooks.yaml", "requirements/release.txt", "pyproject.toml"]
    missing = sorted(set(wanted) - names)
    assert not missing
    assert not any("__pycache__" in name for name in names)

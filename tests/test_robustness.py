"""Robustness against hostile checkpoints (issue 12): values JSON cannot write back, lone
surrogates, GitHub workflow-command text in configs, read-only checkpoints, absurdly deep
directories, absurd tensor shapes and a ``.git/`` directory.

Each case runs the real CLI (click's CliRunner, or a subprocess where the kernel must be
involved) and must end the way README's error contract says: exit 1 with one line naming the
file and the key, or a finding; never a traceback or an internal error (exit 3), and a fix
that cannot be written leaves every file as it was.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from r1release import checkpoint as checkpoint_module
from r1release import fixes
from r1release.cli import main

import reliability
from helpers import REPO_ID, write_release_yaml
from hubserver import patch_client

RELIABILITY_AREA = "Hostile input"
record = pytest.fixture(reliability.record)

FAILING = "qwen2.5-base-after-chatml-sft"  # EOS and use_cache wrong: `fix` has work to do
CLEAN = "qwen2.5-7b-instruct"
SHARD2 = "model-00002-of-00002.safetensors"


# ------------------------------------------------------------------ helpers


def invoke(*args: str, cwd: Path | None = None, monkeypatch=None):
    if cwd is not None:
        monkeypatch.chdir(cwd)
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # escaped the CLI's error handler
    return result


def files_state(path: Path) -> dict[str, tuple[bytes, int]]:
    """Every regular file under ``path``: its bytes and mtime."""
    state = {}
    for dirpath, _, names in os.walk(path):
        for name in names:
            full = Path(dirpath, name)
            if full.is_file() and not full.is_symlink():
                state[full.relative_to(path).as_posix()] = (
                    full.read_bytes(),
                    full.stat().st_mtime_ns,
                )
    return state


def assert_one_error_line(result, *needles: str) -> str:
    """Exit 1, exactly one ``error:`` line on stderr holding every needle, no traceback, no
    internal error, and no line a GitHub runner would take for a workflow command."""
    output = result.stdout + result.stderr
    assert result.exit_code == 1, output
    assert "Traceback" not in output and "internal error" not in output, output
    assert not [line for line in output.splitlines() if line.lstrip().startswith("::")], output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def write_config_text(path: Path, name: str, **raw: str) -> None:
    """Set top-level keys of ``name`` to raw JSON text (``1e400`` is no Python value)."""
    file = path / name
    doc = json.loads(file.read_text())
    placeholders = {}
    for i, (key, text) in enumerate(raw.items()):
        marker = f"__r1release_raw_{i}__"
        doc[key] = marker
        placeholders[json.dumps(marker)] = text
    text = json.dumps(doc, indent=2) + "\n"
    for marker, value in placeholders.items():
        text = text.replace(marker, value)
    file.write_text(text)


def set_raw_member(path: Path, name: str, key_json: str, value_json: str) -> None:
    """Add a member written exactly as given (a key with escapes, a value like ``1e400``)."""
    file = path / name
    text = file.read_text().rstrip()
    assert text.endswith("}")
    file.write_text(text[:-1].rstrip() + f",\n  {key_json}: {value_json}\n}}\n")


# ------------------------------------------------------------------ values JSON cannot write

CASE_IDS = {
    "float-overflow", "negative-overflow", "lone-surrogate", "surrogate-in-key",
    "github-escaped-newline-key", "real-newline-key",
}  # fmt: skip


@pytest.mark.parametrize(
    ("case", "key_json", "value_json", "shown_key", "injected"),
    [
        (
            "float-overflow",
            '"rms_norm_eps"',
            "1e400",
            "rms_norm_eps",
            "config.json rms_norm_eps: 1e400",
        ),
        (
            "negative-overflow",
            '"rope_theta"',
            "-1e999",
            "rope_theta",
            "config.json rope_theta: -1e999",
        ),
        ("lone-surrogate", '"note"', '"caf\\ud800"', "note", 'config.json note: "caf\\ud800"'),
        (
            "surrogate-in-key",
            '"bad\\udfffkey"',
            "1",
            '["bad\\udfffkey"]',
            'config.json key "bad\\udfffkey"',
        ),
        (
            "github-escaped-newline-key",
            '"x%0A::error::injected"',
            "1e400",
            '["x%0A::error::injected"]',
            'config.json "x%0A::error::injected": 1e400',
        ),
        (
            "real-newline-key",
            '"x\\n::error::injected"',
            '"\\ud800"',
            '["x\\n::error::injected"]',
            'config.json "x\\n::error::injected": "\\ud800"',
        ),
    ],
    ids=lambda value: value if value in CASE_IDS else "",
)
def test_fix_refuses_what_it_could_not_read_back(
    checkpoint, record, case, key_json, value_json, shown_key, injected
):
    path = checkpoint(FAILING)
    if key_json in ('"rms_norm_eps"', '"rope_theta"'):
        write_config_text(path, "config.json", **{json.loads(key_json): value_json})
    else:
        set_raw_member(path, "config.json", key_json, value_json)
    before = files_state(path)
    result = invoke("fix", str(path))
    record(f"fix: config.json {case}", injected, result)
    line = assert_one_error_line(result, "config.json", shown_key, "nothing was written")
    assert files_state(path) == before  # bytes and mtimes: nothing touched
    assert "Infinity" not in line

    report = invoke("check", str(path))
    assert report.exit_code == 1, report.output
    assert "json-files (R001)" in report.stdout and shown_key in report.stdout


def test_check_reports_overflow_as_a_finding(checkpoint, record):
    path = checkpoint(CLEAN)
    write_config_text(path, "config.json", rope_scaling='{"type": "linear", "factor": 1e400}')
    result = invoke("check", str(path))
    record(
        "check: float overflow in a nested key", "config.json rope_scaling.factor: 1e400", result
    )
    assert result.exit_code == 1 and "internal error" not in result.output
    assert "json-files (R001)" in result.stdout
    assert "rope_scaling.factor" in result.stdout and "1e400" in result.stdout


def test_fix_refuses_absurdly_nested_config(checkpoint, record):
    path = checkpoint(FAILING)
    write_config_text(path, "config.json", deep="[" * 500 + "]" * 500)
    before = files_state(path)
    result = invoke("fix", str(path))
    record("fix: config.json nested 500 levels", "config.json deep: [[[...]]] x500", result)
    assert_one_error_line(result, "config.json", "deep[0]", "nested deeper than")
    assert files_state(path) == before


@pytest.mark.parametrize(
    "value", ["%0A::error::injected", "line\n::error::injected", "caf\u00e9 %25 \u2028 \U0001f600"]
)
def test_fix_keeps_workflow_command_text_in_a_value(checkpoint, record, value):
    """A GitHub-escaped newline (or a real one) in a config value is text like any other: the
    fix is written, reads back strictly, and keeps the value exactly."""
    path = checkpoint(FAILING)
    doc = json.loads((path / "config.json").read_text())
    doc["note"] = value
    (path / "config.json").write_text(json.dumps(doc, indent=2) + "\n")
    result = invoke("fix", str(path))
    record(
        "fix: workflow-command text in a config value",
        f"config.json note: {value!r}",
        result,
        message=f"fixed, value kept: {result.stdout.splitlines()[0] if result.stdout else ''}",
    )
    output = result.stdout + result.stderr
    assert result.exit_code == 0, output
    assert not [line for line in output.splitlines() if line.startswith("::")], output
    written = (path / "config.json").read_bytes()
    fixed = json.loads(written.decode("utf-8"), parse_constant=_no_constant)
    assert fixed["note"] == value and fixed["use_cache"] is True
    assert "Infinity" not in written.decode() and "NaN" not in written.decode()


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} written: not JSON")


def test_fix_refuses_to_render_a_value_it_cannot_read_back(checkpoint, monkeypatch, record):
    """Should a rule put an unrepresentable value into a fix, the re-check of the new text
    refuses it, naming the file and the key, before anything is written."""
    from r1release.rules import use_cache

    path = checkpoint(FAILING)
    real_enable = use_cache.enable

    def enable(doc):
        real_enable(doc)
        doc["max_position_embeddings"] = float("inf")

    monkeypatch.setattr(use_cache, "enable", enable)
    before = files_state(path)
    result = invoke("fix", str(path))
    record("fix: a fix computing infinity", "a rule sets a config value to inf", result)
    assert_one_error_line(result, "config.json", "max_position_embeddings", "nothing was written")
    assert files_state(path) == before


# ------------------------------------------------------------------ read-only checkpoints


def _read_only_mount_works(probe: Path) -> bool:
    if shutil.which("unshare") is None or sys.platform != "linux":
        return False
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && ! touch "$1/x"'
    try:
        proc = subprocess.run(
            ["unshare", "-rm", "sh", "-c", script, "sh", str(probe)],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and not (probe / "x").exists()


@pytest.mark.e2e
def test_fix_on_a_read_only_mount(checkpoint, tmp_path, record):
    """The real thing: the checkpoint on a read-only bind mount (a private mount namespace,
    so root gets EROFS too); skipped where mount namespaces are not allowed."""
    probe = tmp_path / "probe"
    probe.mkdir()
    if not _read_only_mount_works(probe):
        pytest.skip("no unprivileged mount namespace here (unshare -rm)")
    path = checkpoint(FAILING)
    before = files_state(path)
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    env = dict(os.environ) | {"PYTHONIOENCODING": "utf-8", "HF_HUB_OFFLINE": "1"}
    env.pop("GITHUB_ACTIONS", None)
    command = [sys.executable, "-m", "r1release.cli", "fix", str(path)]
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(path), *command],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    record("fix: checkpoint on a read-only mount", "mount -o remount,bind,ro <ckpt>", proc)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "read-only" in errors[0], proc.stderr
    assert "config.json" in errors[0] or "generation_config.json" in errors[0]
    assert files_state(path) == before


def _unprivileged(probe: Path) -> list[str] | None:
    """A command prefix under which file modes are enforced: none for a normal user; for
    root, a user namespace where it keeps owning its files but has no capabilities (so no
    DAC override). ``None`` when neither is to be had."""
    if os.name != "posix":
        return None
    if os.geteuid() != 0:
        return []
    prefix = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]
    probe.write_text("x")
    probe.chmod(0o444)
    code = f"import os, sys; sys.exit(0 if not os.access({str(probe)!r}, os.W_OK) else 1)"
    try:
        proc = subprocess.run([*prefix, sys.executable, "-c", code], timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return prefix if proc.returncode == 0 else None


@pytest.mark.e2e
def test_fix_on_a_chmod_read_only_checkpoint(checkpoint, tmp_path, record):
    """chmod 0o555 on the directory, 0o444 on the files. Root writes through file modes, so
    as root the fix runs without capabilities (a user namespace keeping its uid)."""
    prefix = _unprivileged(tmp_path / "probe")
    if prefix is None:
        pytest.skip("cannot drop root's capabilities here (unshare --user --map-user)")
    path = checkpoint(FAILING)
    for p in [*path.iterdir(), path]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        before = files_state(path)
        env = dict(os.environ) | {"PYTHONIOENCODING": "utf-8", "HF_HUB_OFFLINE": "1"}
        env.pop("GITHUB_ACTIONS", None)
        proc = subprocess.run(
            [*prefix, sys.executable, "-m", "r1release.cli", "fix", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        record("fix: chmod read-only checkpoint", "chmod 0o555 <ckpt>, 0o444 its files", proc)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, proc.stderr
        assert "read-only" in errors[0] and "nothing was written" in errors[0], errors[0]
        assert "config.json" in errors[0]
        assert files_state(path) == before
    finally:
        for p in [path, *path.iterdir()]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_fix_when_the_filesystem_refuses_writes(checkpoint, monkeypatch, record):
    """What a read-only filesystem answers to the temporary file (EROFS), as root too."""
    path = checkpoint(FAILING)
    before = files_state(path)

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", kwargs.get("dir"))

    monkeypatch.setattr(fixes.tempfile, "mkstemp", refuse)
    result = invoke("fix", str(path))
    record("fix: filesystem refuses writes", "mkstemp -> EROFS", result)
    assert_one_error_line(result, "config.json", "read-only", "nothing was written")
    assert files_state(path) == before


def test_fix_puts_back_what_it_wrote_when_a_later_write_is_refused(checkpoint, monkeypatch, record):
    path = checkpoint(FAILING)
    before = {name: data for name, (data, _) in files_state(path).items()}
    real_replace = os.replace
    calls: list[str] = []

    def replace(src, dst):
        calls.append(os.fspath(dst))
        if len(calls) == 2:  # the second file: config.json was already replaced
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(fixes.os, "replace", replace)
    result = invoke("fix", str(path))
    record("fix: second file refused mid-fix", "os.replace -> EACCES on the 2nd file", result)
    assert_one_error_line(result, "generation_config.json", "read-only", "put back")
    assert Path(calls[0]).name == "config.json" and len(calls) >= 3  # then put back
    after = {name: data for name, (data, _) in files_state(path).items()}
    assert after == before  # no partial fix, no temporary file left


# ------------------------------------------------------------------ directory depth


def _nest(root: Path, depth: int) -> None:
    """``root/d/d/.../d/f.txt``, through directory fds (os.makedirs recurses)."""
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        os.close(os.open("f.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


def _unnest(root: Path, depth: int) -> None:
    """Undo :func:`_nest` bottom-up (shutil.rmtree recurses, and would fail at this depth)."""
    fds = [os.open(root, os.O_RDONLY)]
    try:
        for _ in range(depth):
            try:
                fds.append(os.open("d", os.O_RDONLY, dir_fd=fds[-1]))
            except FileNotFoundError:
                break
        for name in os.listdir(fds[-1]):
            os.unlink(name, dir_fd=fds[-1])
        for parent in reversed(fds[:-1]):
            os.rmdir("d", dir_fd=parent)
    finally:
        for fd in fds:
            os.close(fd)


@pytest.fixture
def deep_checkpoint(checkpoint):
    path = checkpoint(CLEAN)
    _nest(path, 1200)
    yield path
    _unnest(path, 1200)


def test_check_on_1200_nested_directories(deep_checkpoint, record):
    result = invoke("check", str(deep_checkpoint))
    record("check: 1,200 nested directories", "<ckpt>/d/d/.../d (1,200 levels)/f.txt", result)
    assert result.exit_code == 1, result.output
    assert "RecursionError" not in result.output and "internal error" not in result.output
    assert "paths (R502)" in result.stdout and "64 levels" in result.stdout


def test_fix_on_1200_nested_directories(deep_checkpoint, record):
    result = invoke("fix", str(deep_checkpoint))
    record(
        "fix: 1,200 nested directories",
        "<ckpt>/d/d/.../d (1,200 levels)/f.txt",
        result,
        message=result.stdout,
    )
    assert result.exit_code == 0, result.output
    assert "nothing to fix" in result.stdout


def test_listing_stops_at_the_entry_limit(checkpoint, monkeypatch, record):
    path = checkpoint(CLEAN)
    extra = path / "logs"
    extra.mkdir()
    for i in range(20):
        (extra / f"event-{i}.log").write_text("x")
    monkeypatch.setattr(checkpoint_module, "MAX_ENTRIES", 12)
    result = invoke("check", str(path))
    record("check: more entries than the listing limit", "limit 12, 29 entries", result)
    assert result.exit_code == 1, result.output
    assert "paths (R502)" in result.stdout and "listing stopped" in result.stdout


def test_listing_matches_a_walk(checkpoint):
    """The iterative listing keeps the old semantics: sorted, symlinks listed not followed,
    FIFOs in ``special``, nested files with posix paths."""
    path = checkpoint(CLEAN)
    (path / "sub" / "inner").mkdir(parents=True)
    (path / "sub" / "inner" / "a.txt").write_text("a")
    (path / "sub" / "b.txt").write_text("b")
    (path / "linkdir").symlink_to(path / "sub", target_is_directory=True)
    (path / "linkfile").symlink_to(path / "config.json")
    (path / "dangling").symlink_to(path / "missing")
    os.mkfifo(path / "sub" / "pipe")
    ckpt = checkpoint_module.Checkpoint(path)
    names = [e.path for e in ckpt.files]
    assert names == sorted(names)
    assert {"sub/inner/a.txt", "sub/b.txt", "linkdir", "linkfile", "dangling"} <= set(names)
    assert not any(n.startswith("linkdir/") for n in names)  # never descended
    assert ckpt.entry("linkdir").is_dir and ckpt.entry("linkfile").is_symlink
    assert ckpt.entry("dangling").escapes
    assert ckpt.special == ("sub/pipe",)
    assert ckpt.unlisted == () and not ckpt.truncated


# ------------------------------------------------------------------ tensor shapes


def _add_tensor(path: Path, name: str, entry: dict) -> None:
    """Add ``entry`` to SHARD2's header (its data section unchanged)."""
    file = path / SHARD2
    raw = file.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    data = raw[8 + length :]
    header[name] = entry
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    file.write_bytes(struct.pack("<Q", len(text)) + text + data)


@pytest.mark.parametrize(
    ("shape", "shown", "expect"),
    [
        ([0, 2**70], "[0, 2**70]", "absurd (>= 2^53)"),
        ([2**70, 0], "[2**70, 0]", "absurd (>= 2^53)"),
        ([2**31, 2**31, 0], "[2**31, 2**31, 0]", "multiply to 2^60"),
    ],
    ids=["zero-then-2^70", "2^70-then-zero", "2^62-elements-times-zero"],
)
def test_absurd_shape_is_a_header_error(checkpoint, record, shape, shown, expect):
    path = checkpoint(CLEAN)
    raw = (path / SHARD2).read_bytes()
    header = json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])
    stop = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
    entry = {"dtype": "BF16", "shape": shape, "data_offsets": [stop, stop]}
    _add_tensor(path, "extra.weight", entry)
    result = invoke("check", str(path))
    record(f"check: tensor shape {shown}", f"{SHARD2}: a tensor of shape {shown}, 0 bytes", result)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stdout.splitlines() if "safetensors-header (R302)" in line]
    assert len(lines) == 1, result.stdout
    assert SHARD2 in lines[0] and "'extra.weight'" in lines[0] and expect in lines[0]


def test_empty_tensor_is_still_valid(tmp_path):
    from factory import safetensors_bytes

    file = tmp_path / "w.safetensors"
    file.write_bytes(
        safetensors_bytes({"a": ("BF16", (0, 4096), b""), "b": ("F32", (1,), b"\0" * 4)})
    )
    header = checkpoint_module.read_safetensors_header(file, "w.safetensors")
    assert header.tensors["a"].nbytes == 0 and header.tensors["a"].shape == (0, 4096)


# ------------------------------------------------------------------ a .git directory


@pytest.fixture
def git_checkpoint(checkpoint):
    path = checkpoint(CLEAN)
    git = path / ".git"
    (git / "objects" / "ab").mkdir(parents=True)
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "config").write_text("[core]\n\trepositoryformatversion = 0\n")
    (git / "refs" / "heads" / "main").write_text("ab" * 20 + "\n")
    (git / "objects" / "ab" / ("cd" * 19)).write_bytes(b"x\x9c" + b"\0" * 64)
    return path


def test_check_reports_a_git_directory(git_checkpoint, record):
    result = invoke("check", str(git_checkpoint))
    record("check: .git/ in the checkpoint", "<ckpt>/.git/{HEAD,config,refs,objects}", result)
    assert result.exit_code == 0, result.output  # a warning: it is excluded, not uploaded
    assert "leftovers (R501)" in result.stdout and ".git" in result.stdout


def test_release_excludes_a_git_directory(git_checkpoint, tmp_path, monkeypatch, hub, record):
    """huggingface_hub refuses any path under .git/ (a ValueError, exit 3 before): the release
    leaves it out, as it does training state."""
    write_release_yaml(tmp_path, git_checkpoint)
    patch_client(monkeypatch, hub, tmp_path / "hf-home", "hf_robustness")
    monkeypatch.setenv("R1RELEASE_RETRY_SCALE", "0")
    for name in ("CI", "GITHUB_ACTIONS", "GITHUB_EVENT_NAME", "GITHUB_EVENT_PATH"):
        monkeypatch.delenv(name, raising=False)
    args = ("release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish")
    result = invoke(*args, cwd=tmp_path, monkeypatch=monkeypatch)
    record("release: .git/ in the checkpoint", "<ckpt>/.git/ with a repository", result)
    assert result.exit_code == 0, result.output
    uploaded = hub.files(REPO_ID, "v1.0.0")
    assert uploaded and not [p for p in uploaded if p.split("/")[0] == ".git"], sorted(uploaded)
    assert "config.json" in uploaded

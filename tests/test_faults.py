"""Hub faults and concurrent releases, injected through the loopback Hub.

Every case ends with the release complete, or stopped with a message that says what failed
and that running it again is safe — and the rerun completes it. Never a tag without its
commit, never two commits for one release, never a retry loop on a permanent 4xx. Our own
backoff is scaled to zero (R1RELEASE_RETRY_SCALE=0); huggingface_hub's internal retries of
uploads sleep about a second each, so each of those cases injects a single fault.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO_ID, r1release, write_release_yaml
from hubserver import client_env

pytestmark = pytest.mark.e2e

RELIABILITY_AREA = "Hub faults"
ARGS = ("push", "--publish", "--model", "OpenR1-Tiny", "--version", "v1.0.0")
RELEASE = ("release", "--publish", "--model", "OpenR1-Tiny", "--version", "v1.0.0")


@pytest.fixture
def workspace(checkpoint, tmp_path):
    write_release_yaml(tmp_path, checkpoint("qwen2.5-base-after-chatml-sft"))
    (tmp_path / "tmp").mkdir()
    return tmp_path


def state(workspace: Path) -> dict[str, object]:
    """Everything a run could change locally: each path (type, size, mtime, content digest)
    but caches, and what is left in the temporary directory the run is given."""
    out: dict[str, object] = {}
    for path in sorted(workspace.rglob("*")):
        rel = path.relative_to(workspace).as_posix()
        if rel.split("/")[0] == ".hf-home" or rel.startswith("tmp/torchinductor_"):
            continue  # the client's cache; torch's compile cache (importing torch._dynamo)
        st = path.lstat()
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[rel] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
        else:  # a directory's mtime moves with its entries, which are compared themselves
            out[rel] = (st.st_mode,)
    return out


def run(hub, workspace: Path, *args: str):
    """`r1release ARGS` that must leave the checkpoint, the workspace and its temporary
    directory exactly as they were, whatever happened on the Hub (no staging left over)."""
    before = state(workspace)
    result = r1release(hub, workspace, *args, env={"TMPDIR": str(workspace / "tmp")})
    assert state(workspace) == before, "the run changed local files or left staging behind"
    return result


def released_once(hub, workspace: Path | None = None) -> bool:
    """One commit through the API, tagged v1.0.0 at the branch head; with `workspace`, the
    tagged commit is complete: every checkpoint file is there, weights byte for byte."""
    repo = hub.repo(REPO_ID)
    if hub.commit_counts[REPO_ID] != 1 or repo.tags.get("v1.0.0") != repo.branches["main"]:
        return False
    if workspace is None:
        return True
    ckpt = workspace / "qwen2.5-base-after-chatml-sft"
    tagged = hub.files(REPO_ID, "v1.0.0")
    local = {p.relative_to(ckpt).as_posix(): p for p in ckpt.rglob("*") if p.is_file()}
    weights = [name for name in local if name.endswith(".safetensors")]
    return (
        set(local) <= set(tagged)
        and "README.md" in tagged
        and bool(weights)
        and all(tagged[name] == local[name].read_bytes() for name in weights)
    )


def _error_line(stderr: str) -> str:
    [error] = [line for line in stderr.splitlines() if line.startswith("error:")]
    return error


def describe(method: str, path: str, fault: dict) -> str:
    if fault.get("midway"):
        what = "connection reset after half the body"
    else:
        what = "connection dropped" if fault.get("drop") else str(fault["status"])
    if fault.get("retry_after"):
        what += f" + Retry-After: {fault['retry_after']}"
    times = fault.get("times", 1)
    return f"{method} {path.strip('^$')} -> {what}" + (f" ({times}x)" if times > 1 else "")


def no_tag(hub) -> bool:
    try:
        return "v1.0.0" not in hub.repo(REPO_ID).tags
    except KeyError:
        return True


CASE_NAMES = {
    "/preupload/": "preupload",
    r"\.git/info/lfs/objects/batch": "LFS batch",
    "^/_lfs/": "LFS upload",
    "/commit/": "commit",
    "/tag/": "tag creation",
    "/refs$": "reading refs",
    "/tree/": "listing files",
    "^/api/repos/create": "repository creation",
}


@pytest.mark.parametrize(
    ("method", "path", "fault"),
    [
        ("POST", r"/preupload/", {"status": 503}),
        ("POST", r"/preupload/", {"status": 502}),
        ("POST", r"\.git/info/lfs/objects/batch", {"status": 500}),
        ("PUT", r"^/_lfs/", {"status": 502}),
        ("PUT", r"^/_lfs/", {"drop": True}),  # the upload arrives, the reply never comes
        ("PUT", r"^/_lfs/", {"midway": True}),  # the connection resets in the middle of an upload
        ("POST", r"/commit/", {"status": 503, "retry_after": 7}),
        ("POST", r"/commit/", {"status": 502, "times": 3}),
        ("POST", r"/commit/", {"drop": True}),
        ("POST", r"/commit/", {"status": 500, "after": True}),  # it landed; the reply was lost
        ("POST", r"/tag/", {"status": 429, "retry_after": 5}),
        ("POST", r"/tag/", {"status": 500, "times": 2}),
        ("POST", r"/tag/", {"drop": True, "after": True}),  # tagged; the connection dropped
        ("GET", r"/refs$", {"status": 503, "times": 2}),
        ("GET", r"/tree/", {"status": 502}),
        ("POST", r"^/api/repos/create", {"status": 503}),
    ],
)
def test_transient_fault_is_retried_to_completion(hub, workspace, record, method, path, fault):
    injected = hub.fail(method, path, **fault)
    result = run(hub, workspace, *ARGS)
    lost = " (after it was carried out)" if fault.get("after") else ""
    record(
        f"{CASE_NAMES[path]} fails transiently{lost}",
        describe(method, path, fault),
        result,
        message=None if result.returncode else "released: retried to one commit and its tag",
    )
    assert result.returncode == 0, result.stderr
    assert injected.hits == fault.get("times", 1)
    assert released_once(hub, workspace)
    if fault.get("retry_after") and path in (r"/commit/",):
        assert "retrying in 7 s" in result.stderr  # Retry-After honoured (not the 1 s default)


def test_slow_response_completes(hub, workspace, record):
    slow = hub.slow("POST", r"/commit/", seconds=3)
    started = time.monotonic()
    result = run(hub, workspace, *ARGS)
    record(
        "a very slow commit response",
        "POST /commit/ answered after 3 s",
        result,
        message=None if result.returncode else "released: waited, one commit and its tag",
    )
    assert result.returncode == 0, result.stderr
    assert slow.hits == 1 and time.monotonic() - started >= 3
    assert released_once(hub, workspace)


@pytest.mark.parametrize(
    ("path", "status"),
    [(r"/commit/", 403), (r"/commit/", 422), (r"/preupload/", 403), (r"/tag/", 403)],
)
def test_permanent_4xx_is_not_retried_and_rerun_completes(hub, workspace, record, path, status):
    injected = hub.fail("POST", path, status=status, times=100)
    result = run(hub, workspace, *ARGS)
    record(
        f"{CASE_NAMES[path]} refused ({status}), then a rerun",
        f"POST {path} -> {status} (every time)",
        result,
    )
    assert result.returncode == 1
    error = _error_line(result.stderr)
    assert f"HTTP {status}" in error and "running the release again is safe" in error
    assert f"injected {status}" in error and "None" not in error  # the Hub's own message
    assert injected.hits == 1  # no retry loop
    assert no_tag(hub)
    assert hub.commit_counts[REPO_ID] <= 1
    injected.times = injected.hits
    again = run(hub, workspace, *ARGS)
    assert again.returncode == 0, again.stderr
    assert released_once(hub, workspace)


def test_persistent_5xx_stops_bounded_then_rerun_completes(hub, workspace, record):
    injected = hub.fail("POST", r"/commit/", status=503, times=100)
    result = run(hub, workspace, *ARGS)
    record("commit keeps failing (503), then a rerun", "POST /commit/ -> 503 (every time)", result)
    assert result.returncode == 1 and "running the release again is safe" in result.stderr
    assert injected.hits == 6  # the first try and five retries
    assert no_tag(hub) and hub.commit_counts[REPO_ID] == 0
    injected.times = injected.hits
    assert run(hub, workspace, *ARGS).returncode == 0
    assert released_once(hub, workspace)


@pytest.mark.parametrize("args", [ARGS, RELEASE], ids=["push", "release"])
def test_concurrent_releases_make_one_commit_and_one_tag(hub, workspace, record, args):
    env = client_env(hub, workspace / ".hf-home", "hf_concurrent") | {"R1RELEASE_RETRY_SCALE": "0"}
    env.pop("CI", None)
    env.pop("GITHUB_ACTIONS", None)
    hub.add_repo(REPO_ID, private=True)  # both processes plan against the same head
    hub.slow("POST", r"/preupload/", seconds=1.5, times=2)  # keep them overlapping
    env["TMPDIR"] = str(workspace / "tmp")
    before = state(workspace)
    cmd = [sys.executable, "-m", "r1release.cli", *args]
    procs = [
        subprocess.Popen(
            cmd, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert state(workspace) == before
    codes = sorted(code for code, _ in outcomes)
    losers = [_error_line(err) for code, err in outcomes if code == 1]
    record(
        f"two `r1release {args[0]}` processes for the same version",
        "started together",
        subprocess.CompletedProcess(cmd, codes[-1], "", ""),
        area="Concurrency",
        message=f"exit codes {codes}; " + (losers[0] if losers else "the other was a no-op"),
    )

    for code, stderr in outcomes:
        assert code in (0, 1), stderr
    for error in losers:
        assert "run the release again" in error or "running the release again" in error
    assert 0 in codes
    assert released_once(hub, workspace)
    final = run(hub, workspace, *args)
    assert final.returncode == 0 and "already released" in final.stdout


def test_same_release_landing_while_committing_is_recognised(hub, workspace, record):
    hub.add_repo(REPO_ID, private=True)
    rival: list = []
    # Hold this release's commit while a second, complete release of the same files runs.
    hub.intercept("POST", r"/commit/", lambda: rival.append(run(hub, workspace, *ARGS)))
    result = run(hub, workspace, *ARGS)
    said = [line for line in result.stderr.splitlines() if "already holds" in line]
    record(
        "the same release lands between planning and committing",
        "a complete second release runs just before POST /commit/",
        result,
        area="Concurrency",
        message=(said or [None])[0],
    )
    assert rival[0].returncode == 0, rival[0].stderr
    assert result.returncode == 0, result.stderr
    assert "the Hub already holds these files" in result.stderr
    assert released_once(hub, workspace)


def test_other_commit_while_committing_stops_then_rerun_completes(hub, workspace, record):
    hub.add_repo(REPO_ID, private=True)
    hub.intercept("POST", r"/commit/", lambda: hub.add_commit(REPO_ID, {"notes.md": b"rival"}))
    result = run(hub, workspace, *ARGS)
    record(
        "someone else commits to main between planning and committing",
        "a different commit just before POST /commit/",
        result,
        area="Concurrency",
    )
    assert result.returncode == 1
    error = _error_line(result.stderr)
    assert (
        "moved to" in error and "no tag was created" in error and "run the release again" in error
    )
    assert no_tag(hub) and hub.commit_counts[REPO_ID] == 0
    assert hub.files(REPO_ID)["notes.md"] == b"rival"  # the other commit is untouched
    again = run(hub, workspace, *ARGS)
    assert again.returncode == 0, again.stderr
    assert released_once(hub, workspace)


def test_other_tag_while_tagging_is_a_clear_conflict(hub, workspace, record):
    initial = hub.add_repo(REPO_ID, private=True).branches["main"]

    def rival_tag() -> None:
        with hub._lock:
            hub.repo(REPO_ID).tags["v1.0.0"] = initial

    hub.intercept("POST", r"/tag/", rival_tag)
    result = run(hub, workspace, *ARGS)
    record(
        "someone else tags the version at another commit while releasing",
        "tag v1.0.0 -> initial commit just before POST /tag/",
        result,
        area="Concurrency",
    )
    assert result.returncode == 1
    error = _error_line(result.stderr)
    assert "tag v1.0.0 was created at" in error and "by someone else" in error
    repo = hub.repo(REPO_ID)
    assert repo.tags["v1.0.0"] == initial  # their tag is not moved without --force
    assert hub.commit_counts[REPO_ID] == 1
    again = run(hub, workspace, *ARGS)
    assert again.returncode == 1 and "already points at" in again.stderr
    forced = run(hub, workspace, *ARGS, "--force")
    assert forced.returncode == 0, forced.stderr
    assert released_once(hub, workspace)

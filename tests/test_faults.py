"""Hub faults and concurrent releases, injected through the loopback Hub.

Every case ends with the release complete, or stopped with a message that says what failed
and that running it again is safe — and the rerun completes it. Never a tag without its
commit, never two commits for one release, never a retry loop on a permanent 4xx. Our own
backoff is scaled to zero (R1RELEASE_RETRY_SCALE=0); huggingface_hub's internal retries of
uploads sleep about a second each, so each of those cases injects a single fault.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from helpers import REPO_ID, r1release, write_release_yaml
from hubserver import client_env

ARGS = ("push", "--model", "OpenR1-Tiny", "--version", "v1.0.0")


@pytest.fixture
def workspace(checkpoint, tmp_path):
    write_release_yaml(tmp_path, checkpoint("qwen2.5-base-after-chatml-sft"))
    return tmp_path


def released_once(hub) -> bool:
    repo = hub.repo(REPO_ID)
    return hub.commit_counts[REPO_ID] == 1 and repo.tags.get("v1.0.0") == repo.branches["main"]


def no_tag(hub) -> bool:
    try:
        return "v1.0.0" not in hub.repo(REPO_ID).tags
    except KeyError:
        return True


@pytest.mark.parametrize(
    ("method", "path", "fault"),
    [
        ("POST", r"/preupload/", {"status": 503}),
        ("POST", r"/preupload/", {"status": 502}),
        ("POST", r"\.git/info/lfs/objects/batch", {"status": 500}),
        ("PUT", r"^/_lfs/", {"status": 502}),
        ("PUT", r"^/_lfs/", {"drop": True}),  # the connection drops in the middle of an upload
        ("POST", r"/commit/", {"status": 503, "retry_after": 7}),
        ("POST", r"/commit/", {"status": 502, "times": 3}),
        ("POST", r"/commit/", {"drop": True}),
        ("POST", r"/tag/", {"status": 429, "retry_after": 5}),
        ("POST", r"/tag/", {"status": 500, "times": 2}),
        ("GET", r"/refs$", {"status": 503, "times": 2}),
        ("GET", r"/tree/", {"status": 502}),
        ("POST", r"^/api/repos/create", {"status": 503}),
    ],
)
def test_transient_fault_is_retried_to_completion(hub, workspace, method, path, fault):
    injected = hub.fail(method, path, **fault)
    result = r1release(hub, workspace, *ARGS)
    assert result.returncode == 0, result.stderr
    assert injected.hits == fault.get("times", 1)
    assert released_once(hub)
    if fault.get("retry_after") and path in (r"/commit/",):
        assert "retrying in 7s" in result.stderr  # Retry-After honoured (not the 1s default)


def test_slow_response_completes(hub, workspace):
    slow = hub.slow("POST", r"/commit/", seconds=3)
    started = time.monotonic()
    result = r1release(hub, workspace, *ARGS)
    assert result.returncode == 0, result.stderr
    assert slow.hits == 1 and time.monotonic() - started >= 3
    assert released_once(hub)


@pytest.mark.parametrize(
    ("path", "status"),
    [(r"/commit/", 403), (r"/commit/", 422), (r"/preupload/", 403), (r"/tag/", 403)],
)
def test_permanent_4xx_is_not_retried_and_rerun_completes(hub, workspace, path, status):
    injected = hub.fail("POST", path, status=status, times=100)
    result = r1release(hub, workspace, *ARGS)
    assert result.returncode == 1
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert f"HTTP {status}" in error and "running the release again is safe" in error
    assert injected.hits == 1  # no retry loop
    assert no_tag(hub)
    assert hub.commit_counts[REPO_ID] <= 1
    injected.times = injected.hits
    again = r1release(hub, workspace, *ARGS)
    assert again.returncode == 0, again.stderr
    assert released_once(hub)


def test_persistent_5xx_stops_bounded_then_rerun_completes(hub, workspace):
    injected = hub.fail("POST", r"/commit/", status=503, times=100)
    result = r1release(hub, workspace, *ARGS)
    assert result.returncode == 1 and "running the release again is safe" in result.stderr
    assert injected.hits == 6  # the first try and five retries
    assert no_tag(hub) and hub.commit_counts[REPO_ID] == 0
    injected.times = injected.hits
    assert r1release(hub, workspace, *ARGS).returncode == 0
    assert released_once(hub)


def test_concurrent_releases_make_one_commit_and_one_tag(hub, workspace):
    env = client_env(hub, workspace / ".hf-home", "hf_concurrent") | {"R1RELEASE_RETRY_SCALE": "0"}
    env.pop("CI", None)
    env.pop("GITHUB_ACTIONS", None)
    hub.add_repo(REPO_ID, private=True)  # both processes plan against the same head
    hub.slow("POST", r"/preupload/", seconds=1.5, times=2)  # keep them overlapping
    cmd = [sys.executable, "-m", "r1release.cli", *ARGS]
    procs = [
        subprocess.Popen(
            cmd, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for code, stderr in outcomes:
        assert code in (0, 1), stderr
        if code == 1:
            [error] = [line for line in stderr.splitlines() if line.startswith("error:")]
            assert "run the release again" in error or "running the release again" in error
    assert any(code == 0 for code, _ in outcomes)
    assert hub.commit_counts[REPO_ID] == 1
    repo = hub.repo(REPO_ID)
    assert repo.tags["v1.0.0"] == repo.branches["main"]
    final = r1release(hub, workspace, *ARGS)
    assert final.returncode == 0 and "already released" in final.stdout

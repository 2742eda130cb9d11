"""The cheap failures come first: before any weight byte is read, a publishing release knows
that it has a token, that the Hub answers, that the token may write to the repository, and
that the repository's visibility is the one release.yaml asks for. Each failure is one line
naming the cause and the fix, exit 2. The CLI runs in-process against the loopback Hub."""

from __future__ import annotations

import sys

import pytest

from helpers import REPO_ID, TOKEN, run_cli, write_release_yaml
from hubserver import HubServer

RELIABILITY_AREA = "Hub faults"
RELEASE = ("release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish")
DRY_RUN = ("release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--dry-run")


@pytest.fixture
def ckpt(checkpoint, tmp_path):
    path = checkpoint()
    write_release_yaml(tmp_path, path)
    return path


@pytest.fixture
def no_scan(monkeypatch):
    """Reading a weight byte fails the test: preflight failures come before the deep scan."""

    def scan(*args, **kwargs):
        raise AssertionError("the deep scan started")

    monkeypatch.setattr("r1release.stage.scan_checkpoint", scan)


def _error(result) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


def _closed_port_hub() -> HubServer:
    server = HubServer()
    server.stop()  # its port now refuses connections: no network
    return server


CASES = [
    # name, how to set the Hub up, token, what the one line must say
    ("no token", None, None, ("no Hub token", "HF_TOKEN", "hf auth login")),
    ("invalid token", "invalid", "hf_not_known", ("rejected the token", "HTTP 401", "HF_TOKEN")),
    ("read-only token", "read", TOKEN, ("read-only", "write", "HF_TOKEN")),
    ("wrong owner", "owner", TOKEN, ("cannot create it under 'someone-else'", "repo_id")),
    ("public repo, private: true", "public", TOKEN, ("is public", "--allow-public")),
    ("no network", "down", TOKEN, ("cannot use the Hub", "network", "HF_ENDPOINT")),
]


@pytest.mark.parametrize(("name", "setup", "token", "expected"), CASES, ids=[c[0] for c in CASES])
def test_preflight_fails_fast_before_the_scan(
    hub, ckpt, no_scan, tmp_path, monkeypatch, record, name, setup, token, expected
):
    server = hub
    if setup == "invalid":
        hub.tokens = {TOKEN: "tester"}
    elif setup == "read":
        hub.roles = {TOKEN: "read"}
    elif setup == "owner":
        write_release_yaml(tmp_path, ckpt)
        text = (tmp_path / "release.yaml").read_text()
        (tmp_path / "release.yaml").write_text(text.replace(REPO_ID, "someone-else/tiny"))
    elif setup == "public":
        hub.add_repo(REPO_ID, private=False)
    elif setup == "down":
        server = _closed_port_hub()
    result = run_cli(monkeypatch, server, tmp_path, *RELEASE, token=token)
    record(name, f"release --publish; {name}", result)
    line = _error(result)
    assert result.returncode == 2, result.stderr
    for words in expected:
        assert words in line, line
    retries = result.stderr.count("retrying in")
    if setup == "down":  # a network error may pass: each retry is said, at most 5 of them
        assert 1 <= retries <= 5 and "Hub unreachable" in result.stderr
    else:  # an answer from the Hub names the cause at once
        assert retries == 0, result.stderr
    assert "deep scan" not in result.stderr
    assert hub.writes() == []


def test_public_repo_is_published_with_allow_public(hub, checkpoint, tmp_path, monkeypatch):
    write_release_yaml(tmp_path, checkpoint())
    hub.add_repo(REPO_ID, private=False)
    result = run_cli(monkeypatch, hub, tmp_path, *RELEASE, "--allow-public")
    assert result.returncode == 0, result.stderr
    assert f"{REPO_ID} (public, revision main)" in result.stdout  # the real visibility


def test_dry_run_without_a_token_says_it_cannot_see_private_repos(hub, ckpt, tmp_path, monkeypatch):
    hub.add_repo(REPO_ID, private=True)
    result = run_cli(monkeypatch, hub, tmp_path, *DRY_RUN, token=None)
    assert result.returncode == 0, result.stderr
    assert "not found without a token: a private repository is invisible" in result.stdout
    assert "new repository" not in result.stdout


def test_token_from_hf_auth_login_is_scrubbed(hub, checkpoint, tmp_path, monkeypatch):
    """A token that comes from the stored login (not the environment) is redacted from Hub
    errors too."""
    write_release_yaml(tmp_path, checkpoint())
    stored = "hf_StoredLoginCanary_0a1b2c3d4e5f"
    hub.tokens = {stored: "tester"}
    home = tmp_path / ".hf-home"
    home.mkdir(exist_ok=True)
    (home / "token").write_text(stored)
    echo = {"X-Error-Message": f"token {stored} may not commit"}
    hub.fail("POST", r"/commit/", status=400, headers=echo)
    result = run_cli(monkeypatch, hub, tmp_path, *RELEASE, token=None)
    assert result.returncode == 1
    assert "may not commit" in result.stderr
    assert stored not in result.stdout + result.stderr


def test_torch_missing_fails_a_ci_release_before_the_scan(hub, ckpt, tmp_path, monkeypatch):
    """expected-tensors needs torch: a release in CI that cannot run it stops (unless
    push.allow_skipped names it); outside CI it is a warning."""
    env = {"GITHUB_ACTIONS": "true"}
    with monkeypatch.context() as patch:
        patch.setattr("r1release.stage.scan_checkpoint", lambda *a, **k: 1 / 0)
        patch.setitem(sys.modules, "torch", None)  # find_spec("torch") is None: not installed
        result = run_cli(monkeypatch, hub, tmp_path, *RELEASE, env=env)
    line = _error(result)
    assert result.returncode == 1
    assert "expected-tensors" in line and "needs torch" in line and "allow_skipped" in line
    assert hub.writes() == []
    text = (tmp_path / "release.yaml").read_text()
    (tmp_path / "release.yaml").write_text(text + "push:\n  allow_skipped: [expected-tensors]\n")
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "torch", None)
        allowed = run_cli(monkeypatch, hub, tmp_path, *RELEASE, env=env)
    assert allowed.returncode == 0, allowed.stderr
    assert "warning: rule expected-tensors is skipped: it needs torch" in allowed.stderr

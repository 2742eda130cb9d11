"""A Hub that stops answering, answers HTML, or serves other files than were sent: every
request is bounded by timeouts, the release by an optional deadline, and a tag never stays
on content that failed verification. The CLI runs in-process against the loopback Hub."""

from __future__ import annotations

import sys
import time

import pytest

from r1release import hub as hub_mod

import reliability
from helpers import REPO_ID, run_cli, write_release_yaml

RELIABILITY_AREA = "Hub faults"
record = pytest.fixture(reliability.record)
RELEASE = ("release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish")


@pytest.fixture
def ws(checkpoint, tmp_path):
    write_release_yaml(tmp_path, checkpoint())
    return tmp_path


def _error(result) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


def test_a_request_held_open_forever_times_out(hub, ws, monkeypatch, record):
    hub.slow("GET", r"/refs$", seconds=30, times=6)  # accepted, never answered (for 30 s)
    monkeypatch.setenv("R1RELEASE_HUB_TIMEOUT", "1")
    started = time.monotonic()
    result = run_cli(monkeypatch, hub, ws, *RELEASE)
    elapsed = time.monotonic() - started
    record("refs request held open", "GET /refs never answers; R1RELEASE_HUB_TIMEOUT=1", result)
    assert result.returncode == 1
    line = _error(result)
    assert "reading the repository's refs" in line and "ReadTimeout" in line
    assert elapsed < 20, elapsed  # 6 tries of 1 s (retry waits scaled to 0 here), not 150 s
    assert "retrying" in result.stderr
    assert hub.writes() == []
    monkeypatch.delenv("R1RELEASE_HUB_TIMEOUT")
    rerun = run_cli(monkeypatch, hub, ws, *RELEASE)
    assert rerun.returncode == 0, rerun.stderr


def test_an_html_502_where_json_is_expected_is_retried(hub, ws, monkeypatch, record):
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    fault = hub.fail("POST", r"^/api/validate-yaml$", status=502, body=page)
    result = run_cli(monkeypatch, hub, ws, *RELEASE)
    record("validate-yaml answers an HTML 502", "POST /api/validate-yaml -> 502 text/html", result)
    assert result.returncode == 0, result.stderr
    assert fault.hits == 1 and "Expecting value" not in result.stderr
    assert "retrying" in result.stderr
    assert hub.commit_counts[REPO_ID] == 1


def test_a_tag_on_content_that_fails_verification_is_removed(hub, ws, monkeypatch, record):
    def lose_a_file() -> None:  # the Hub serves the new tag without one of the files
        repo = hub.repo(REPO_ID)
        repo.commits[repo.tags["v1.0.0"]].files.pop("config.json", None)

    hub.intercept("GET", r"/tree/v1\.0\.0", lose_a_file)
    result = run_cli(monkeypatch, hub, ws, *RELEASE)
    record("the files at the new tag differ", "the tag's tree loses config.json", result)
    assert result.returncode == 1
    line = _error(result)
    assert "differs or missing: config.json" in line and "was removed again" in line
    assert "v1.0.0" not in hub.repo(REPO_ID).tags


def test_a_failed_read_back_says_the_tag_exists(hub, ws, monkeypatch, record):
    hub.fail("GET", r"/tree/v1\.0\.0", status=403)
    result = run_cli(monkeypatch, hub, ws, *RELEASE)
    record("reading the new tag back is refused", "GET /tree/v1.0.0 -> 403", result)
    assert result.returncode == 1
    line = _error(result)
    assert "tag v1.0.0 was created on" in line and "reading it back failed" in line
    assert "nothing was written" not in line
    rerun = run_cli(monkeypatch, hub, ws, *RELEASE)
    assert rerun.returncode == 0 and "already released" in rerun.stdout


def test_the_release_deadline(hub, ws, monkeypatch, record):
    hub.slow("GET", r"/refs$", seconds=2.5)
    result = run_cli(monkeypatch, hub, ws, *RELEASE, "--deadline", "1")
    record("the release deadline passes", "--deadline 1; GET /refs answers after 2.5 s", result)
    assert result.returncode == 1
    line = _error(result)
    assert "deadline (1 s) passed" in line
    assert hub.writes() == []


def test_environment_faults_are_one_line(hub, ws, monkeypatch, record, tmp_path):
    summary_dir = tmp_path / "summary-is-a-directory"
    summary_dir.mkdir()
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary_dir)}
    result = run_cli(monkeypatch, hub, ws, *RELEASE, env=env)
    record("unwritable GITHUB_STEP_SUMMARY", "GITHUB_STEP_SUMMARY names a directory", result)
    assert result.returncode == 0, result.stderr  # released; the summary is a warning
    assert "warning: cannot write the step summary" in result.stderr
    card = run_cli(monkeypatch, hub, ws, "card", "-o", str(tmp_path / "missing" / "README.md"))
    record("card -o into a missing directory", "card -o missing/README.md", card)
    assert card.returncode == 2
    assert "does not exist" in _error(card)


def test_timeouts_and_transport_errors_of_huggingface_hub_1x(monkeypatch):
    """huggingface_hub 1.x (allowed by the bounds) is built on httpx, not httpx2: the timeouts
    take the client's own Timeout class, and httpx's transport errors count as transient."""
    import huggingface_hub
    from huggingface_hub.utils import _http

    from r1release import hub

    class Timeout:  # stands for httpx.Timeout
        def __init__(self, timeout, *, connect, pool):
            self.read, self.connect = timeout, connect

    class Client:
        timeout = Timeout(None, connect=None, pool=None)

    made: list = []
    monkeypatch.setattr(_http, "default_client_factory", Client)
    monkeypatch.setattr(huggingface_hub, "set_client_factory", made.append)
    monkeypatch.setattr(hub, "_timeouts_set", [])
    monkeypatch.setenv("R1RELEASE_HUB_TIMEOUT", "7")
    hub.use_timeouts()
    client = made[0]()
    assert isinstance(client.timeout, Timeout) and client.timeout.read == 7.0
    assert client.timeout.connect == 10.0
    error = type("ReadTimeout", (Exception,), {"__module__": "httpx._exceptions"})
    assert hub.transient(error("timed out"))


def _raised_from(cause: BaseException) -> RuntimeError:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise RuntimeError("Error while uploading 'model.safetensors' to the Hub.") from exc
    except RuntimeError as wrapped:
        return wrapped


def test_an_error_raised_from_a_transient_one_is_transient():
    """huggingface_hub reports a failed LFS upload as a RuntimeError raised from the real
    error (tests/test_faults.py's dropped and refused PUTs at huggingface_hub 1.x)."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    dropped = type("RemoteProtocolError", (Exception,), {"__module__": "httpx"})
    assert hub_mod.transient(_raised_from(dropped("peer closed connection")))
    assert hub_mod.transient(_raised_from(ConnectionResetError("reset")))
    assert not hub_mod.transient(_raised_from(OfflineModeIsEnabled("offline")))
    assert not hub_mod.transient(_raised_from(ValueError("not a transport error")))
    assert not hub_mod.transient(RuntimeError("Error while uploading 'x' to the Hub."))


# ------------------------------------------------------------------ trusted publishing


def test_trusted_publishing_is_refused_where_huggingface_hub_cannot_do_it(hub, ws, monkeypatch):
    """Before 1.19 huggingface_hub has no `_oidc` module and ignores HF_OIDC_RESOURCE: the
    release would run with whichever token it found, or none. Simulated by hiding the module
    (at huggingface_hub < 1.19 it is really absent)."""
    monkeypatch.setitem(sys.modules, "huggingface_hub._oidc", None)
    result = run_cli(monkeypatch, hub, ws, *RELEASE, token=None, env={"HF_OIDC_RESOURCE": REPO_ID})
    assert result.returncode == 2
    line = _error(result)
    assert "HF_OIDC_RESOURCE is set (trusted publishing), but huggingface_hub" in line
    assert f"huggingface_hub>={hub_mod.TRUSTED_PUBLISHING_SINCE}" in line
    assert hub.writes() == []


def test_trusted_publishing_is_refused_by_the_library_too(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub._oidc", None)
    monkeypatch.setenv("HF_OIDC_RESOURCE", REPO_ID)
    with pytest.raises(hub_mod.PreflightError, match="cannot exchange an OIDC id token"):
        hub_mod.stored_token()
    monkeypatch.delenv("HF_OIDC_RESOURCE")
    hub_mod.require_trusted_publishing()  # nothing asked for, nothing refused


def test_the_installed_huggingface_hub_can_do_trusted_publishing():
    """The lower bound of pyproject.toml (run at that bound by .ci/run's lowest cell)."""
    assert hub_mod.trusted_publishing_supported()

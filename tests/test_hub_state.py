"""State in r1release.hub that a checkpoint push (a worker thread) and a release in the main
thread must not share, and a hostile record from the Hub read as the other unreadable ones."""

from __future__ import annotations

import threading

import pytest

from r1release import card
from r1release.hub import PublishError, _retry, check_deadline, retry_log, set_deadline
from r1release.stage import RECORD

from helpers import REPO_ID, run_cli, write_release_yaml


@pytest.fixture(autouse=True)
def _no_deadline():
    yield
    set_deadline(None)


def _in_a_thread(fn):
    """``fn()`` run in another thread: what it returned, or the exception it raised."""
    box: list = []

    def run():
        try:
            box.append(fn())
        except Exception as exc:
            box.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(30)
    [value] = box
    return value


def test_the_release_deadline_is_the_threads_that_set_it():
    set_deadline(0)  # the CLI's --deadline, already passed in the main thread
    assert _in_a_thread(lambda: check_deadline("pushing a checkpoint")) is None
    with pytest.raises(PublishError, match="deadline"):
        check_deadline("committing the release")


def test_retries_are_announced_in_the_thread_that_asked(monkeypatch):
    monkeypatch.setenv("R1RELEASE_RETRY_SCALE", "0")
    main_lines: list[str] = []
    failures = [ConnectionError("dropped")]

    def flaky():
        if failures:
            raise failures.pop()
        return "done"

    with retry_log(main_lines.append):  # finalize's release, in the main thread
        assert _in_a_thread(lambda: _retry("listing files", flaky, wrote=False)) == "done"
        assert main_lines == []  # the worker's retry is not the main thread's to announce
        failures.append(ConnectionError("dropped"))
        assert _retry("listing files", flaky, wrote=False) == "done"
    assert len(main_lines) == 1 and "retrying" in main_lines[0]


def test_a_deeply_nested_record_is_refused_as_unreadable(hub, checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(card, "_git", lambda args: None)
    path = checkpoint("qwen2.5-base-after-chatml-sft")
    write_release_yaml(tmp_path, path, checks="{expected-tensors: off}")
    nested = b'{"files": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    hub.add_repo(REPO_ID, private=True)
    hub.add_commit(REPO_ID, {RECORD: nested, "USAGE.md": b"x\n"})
    hub.clear_log()
    args = ("release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish")
    result = run_cli(monkeypatch, hub, tmp_path, *args)
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "is not a record r1release wrote" in line
    assert "Traceback" not in result.stderr and hub.writes() == []

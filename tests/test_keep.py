"""A release deletes only what r1release made: files on the Hub that it does not stage are
kept when someone else put them there (push.keep, or added after the last release), and
deleted when a previous release made them. The CLI runs in-process against the loopback Hub
(tests/hubserver.py) with the real huggingface_hub client.

What is kept is decided by the file lists alone, so these tests need neither torch nor git:
expected-tensors (the deep check that builds the model on the meta device) is off, the release
has no git commit, and :func:`_no_torch_no_git` holds them to it — they run in the default
selection and in the core cell (marked ``core``), without torch."""

from __future__ import annotations

import json
import sys

import pytest

from r1release import card
from r1release.card import ReleaseInfo
from r1release.config import load
from r1release.hub import VerificationMismatch, make_api, verify
from r1release.stage import RECORD, build_stage

from helpers import REPO_ID, TOKEN, run_cli, write_release_yaml
from hubserver import patch_client

OTHERS = ".eval_results/other.yaml"  # what the owner or the Hub's tooling added
OTHERS_YAML = b"- dataset:\n    id: cais/hle\n    task_id: default\n  value: 20.9\n"
NO_TORCH = "{expected-tensors: off}"  # release.yaml's checks: the one rule that needs torch

pytestmark = pytest.mark.core


@pytest.fixture(autouse=True)
def _no_torch_no_git(monkeypatch):
    """No `git` process (a release outside GitHub Actions asks git for its commit: here it
    has none) and, where torch was not loaded before the test, none loaded by it."""
    loaded = "torch" in sys.modules
    monkeypatch.setattr(card, "_git", lambda args: None)
    yield
    assert loaded or "torch" not in sys.modules, "the test imported torch"


@pytest.fixture
def ckpt(checkpoint, tmp_path):
    path = checkpoint("qwen2.5-base-after-chatml-sft")
    write_release_yaml(tmp_path, path, checks=NO_TORCH)
    return path


def _stage(tmp_path, version: str):
    """The stage a release of ``version`` builds, with release.yaml's checks."""
    config = load(tmp_path / "release.yaml")
    return build_stage(
        config.models[0],
        version,
        release=ReleaseInfo(version=version),
        settings=config.rule_settings(),
        config_path=config.path,
    )


def _release(monkeypatch, hub, tmp_path, version: str, *extra: str):
    args = ("release", "--model", "OpenR1-Tiny", "--version", version, "--publish", *extra)
    result = run_cli(monkeypatch, hub, tmp_path, *args)
    assert result.returncode == 0, result.stderr
    return result


def _plan_line(stdout: str, path: str) -> list[str]:
    """The plan's line for ``path``, split: state, path, size..., (why)."""
    [line] = [line for line in stdout.splitlines() if line.split()[1:2] == [path]]
    return line.split()


def _pre_existing(hub, files: dict[str, bytes]) -> None:
    hub.add_repo(REPO_ID, private=True)
    hub.add_commit(REPO_ID, files, message="added by hand")


def test_the_record_lists_what_the_release_made(ckpt, tmp_path):
    stage = _stage(tmp_path, "v1.0.0")
    record = json.loads(stage.files[RECORD].content)
    assert record == {
        "schema_version": 1,
        "files": [
            {"path": f.path, "size": f.size, "sha256": f.sha256}
            for f in stage.files.values()
            if f.path != RECORD
        ],
    }
    assert {"README.md", "config.json"} <= {f["path"] for f in record["files"]}
    assert b"v1.0.0" not in stage.files[RECORD].content  # no version, clock or commit
    again = _stage(tmp_path, "v1.0.0")
    assert again.files[RECORD].content == stage.files[RECORD].content


def test_someone_elses_eval_results_survive_a_release(hub, ckpt, tmp_path, monkeypatch):
    _release(monkeypatch, hub, tmp_path, "v1.0.0")
    hub.add_commit(REPO_ID, {OTHERS: OTHERS_YAML}, message="Hub evaluation results")
    (ckpt / "notes.md").write_text("a second release with one more file\n")
    second = _release(monkeypatch, hub, tmp_path, "v1.1.0")
    assert hub.files(REPO_ID, "v1.1.0")[OTHERS] == OTHERS_YAML
    assert "notes.md" in hub.files(REPO_ID, "v1.1.0")
    line = _plan_line(second.stdout, OTHERS)
    assert line[0] == "kept" and line[-1] == "(push.keep)"


def test_a_file_a_previous_release_made_is_deleted_when_dropped(hub, ckpt, tmp_path, monkeypatch):
    """Even under push.keep: the record says r1release made it. Someone else's file beside it
    stays."""
    made = ckpt / ".eval_results" / "made.yaml"
    made.parent.mkdir()
    made.write_bytes(OTHERS_YAML)
    _release(monkeypatch, hub, tmp_path, "v1.0.0")
    assert ".eval_results/made.yaml" in hub.files(REPO_ID, "v1.0.0")
    hub.add_commit(REPO_ID, {OTHERS: OTHERS_YAML})
    made.unlink()
    second = _release(monkeypatch, hub, tmp_path, "v1.1.0")
    files = hub.files(REPO_ID, "v1.1.0")
    assert ".eval_results/made.yaml" not in files and OTHERS in files
    assert _plan_line(second.stdout, ".eval_results/made.yaml")[0] == "deleted"
    assert _plan_line(second.stdout, OTHERS)[0] == "kept"


def test_a_file_added_by_hand_after_a_release_survives_the_next(hub, ckpt, tmp_path, monkeypatch):
    _release(monkeypatch, hub, tmp_path, "v1.0.0")
    hub.add_commit(REPO_ID, {"USAGE.md": b"how we serve it\n"})  # outside push.keep
    edited = (ckpt / "chat_template.jinja").read_text() + "\n"
    (ckpt / "chat_template.jinja").write_text(edited)
    planned = run_cli(
        monkeypatch,
        hub,
        tmp_path,
        *("release", "--model", "OpenR1-Tiny", "--version", "v1.1.0", "--format", "json"),
    )
    assert planned.returncode == 0, planned.stderr
    [entry] = [f for f in json.loads(planned.stdout)["release"]["files"] if f["path"] == "USAGE.md"]
    assert entry["state"] == "kept" and entry["origin"] == "not made by r1release"
    second = _release(monkeypatch, hub, tmp_path, "v1.1.0")
    assert hub.files(REPO_ID, "v1.1.0")["USAGE.md"] == b"how we serve it\n"
    assert _plan_line(second.stdout, "USAGE.md")[-4:] == ["(not", "made", "by", "r1release)"]


def test_a_first_release_deletes_stray_files_push_keep_does_not_protect(
    hub, ckpt, tmp_path, monkeypatch
):
    """A repository never released to has no record: the release owns its content."""
    _pre_existing(hub, {"stray.txt": b"old\n", OTHERS: OTHERS_YAML})
    first = _release(monkeypatch, hub, tmp_path, "v1.0.0")
    files = hub.files(REPO_ID, "v1.0.0")
    assert "stray.txt" not in files and files[OTHERS] == OTHERS_YAML
    assert _plan_line(first.stdout, "stray.txt")[0] == "deleted"
    assert _plan_line(first.stdout, OTHERS)[0] == "kept"


def test_push_keep_in_release_yaml_replaces_the_default(hub, ckpt, tmp_path, monkeypatch):
    write_release_yaml(tmp_path, ckpt, push='{keep: ["docs/**"]}', checks=NO_TORCH)
    _pre_existing(hub, {"docs/serving/vllm.md": b"vllm serve\n", OTHERS: OTHERS_YAML})
    _release(monkeypatch, hub, tmp_path, "v1.0.0")
    files = hub.files(REPO_ID, "v1.0.0")
    assert "docs/serving/vllm.md" in files and OTHERS not in files


def test_kept_files_do_not_stop_already_released(hub, ckpt, tmp_path, monkeypatch):
    _pre_existing(hub, {OTHERS: OTHERS_YAML})
    _release(monkeypatch, hub, tmp_path, "v1.0.0")
    assert OTHERS in hub.files(REPO_ID, "v1.0.0")  # the tag holds the kept file
    hub.clear_log()
    again = _release(monkeypatch, hub, tmp_path, "v1.0.0")
    assert "already released" in again.stdout and hub.writes() == []


def test_kept_files_added_after_a_commit_do_not_need_another(hub, ckpt, tmp_path, monkeypatch):
    """A run committed, failed to tag; files were added by hand; the rerun only tags."""
    hub.fail("POST", r"/tag/", status=403, times=1)
    args = ("release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish")
    assert run_cli(monkeypatch, hub, tmp_path, *args).returncode == 1
    hub.add_commit(REPO_ID, {".eval_results/later.yaml": OTHERS_YAML, "USAGE.md": b"x\n"})
    head = hub.repo(REPO_ID).branches["main"]
    hub.clear_log()
    rerun = _release(monkeypatch, hub, tmp_path, "v1.0.0")
    assert "tagging it, no commit" in rerun.stderr
    assert hub.commit_counts[REPO_ID] == 0 and hub.repo(REPO_ID).tags["v1.0.0"] == head


def test_verify_accepts_the_kept_files_and_nothing_else(hub, ckpt, tmp_path, monkeypatch):
    _pre_existing(hub, {OTHERS: OTHERS_YAML})
    _release(monkeypatch, hub, tmp_path, "v1.0.0")
    stage = _stage(tmp_path, "v1.0.0")
    patch_client(monkeypatch, hub, tmp_path / ".hf-home", TOKEN)
    api = make_api(TOKEN)
    verify(api, stage, "v1.0.0", kept=frozenset({OTHERS}))
    with pytest.raises(VerificationMismatch, match=f"unexpected: {OTHERS}"):
        verify(api, stage, "v1.0.0")


def test_an_unreadable_record_stops_the_release_before_any_write(hub, ckpt, tmp_path, monkeypatch):
    _pre_existing(hub, {RECORD: b"{not json", "USAGE.md": b"x\n"})
    hub.clear_log()
    args = ("release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish")
    result = run_cli(monkeypatch, hub, tmp_path, *args)
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert f"{RECORD} at " in line and "is not a record r1release wrote" in line
    assert "nothing was sent" in line and hub.writes() == []

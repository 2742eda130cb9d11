"""Releases are reproducible and safe to re-run: from another workflow run, on another day,
after a failure, against a Hub that fails every request once; and what is uploaded is exactly
what was checked. The CLI runs in-process against the loopback Hub (tests/hubserver.py)."""

from __future__ import annotations

import json
import time

import pytest

from helpers import REPO_ID, run_cli, write_release_yaml

RELEASE = ("release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish")
DAY = 86_400.0


def _github(run_id: str, **extra: str) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_RUN_ID": run_id,
        "GITHUB_REPOSITORY": "org/train",
        "GITHUB_SHA": "a" * 40,  # the same git commit, released again
        **extra,
    }


@pytest.fixture
def ckpt(checkpoint, tmp_path):
    path = checkpoint("qwen2.5-base-after-chatml-sft")  # fixes are staged: README, configs
    write_release_yaml(tmp_path, path)
    return path


def _release(monkeypatch, hub, tmp_path, run_id: str, day: float, *extra: str):
    with monkeypatch.context() as patch:
        patch.setattr(time, "time", lambda: 1_780_000_000.0 + day * DAY)  # today moves on
        return run_cli(monkeypatch, hub, tmp_path, *RELEASE, *extra, env=_github(run_id))


def test_rerun_from_another_run_on_another_day_sends_no_write(hub, ckpt, tmp_path, monkeypatch):
    first = _release(monkeypatch, hub, tmp_path, "100", 0)
    assert first.returncode == 0, first.stderr
    head = hub.repo(REPO_ID).branches["main"]
    hub.clear_log()
    again = _release(monkeypatch, hub, tmp_path, "101", 3)
    assert again.returncode == 0, again.stderr
    assert "already released" in again.stdout
    assert hub.writes() == []
    assert hub.repo(REPO_ID).branches["main"] == head
    assert hub.repo(REPO_ID).tags["v1.0.0"] == head
    card = hub.files(REPO_ID)["README.md"].decode()
    assert "actions/runs" not in card  # the run is in the Hub commit's description instead
    [commit] = [c for c in hub.repo(REPO_ID).commits.values() if c.oid == head]
    assert "actions/runs/100" in commit.message


def test_a_failed_tag_is_completed_by_a_later_run_without_a_second_commit(
    hub, ckpt, tmp_path, monkeypatch
):
    hub.fail("POST", r"/tag/", status=403, times=1)
    failed = _release(monkeypatch, hub, tmp_path, "200", 0)
    assert failed.returncode == 1
    assert "no tag was created" in failed.stderr
    repo = hub.repo(REPO_ID)
    assert hub.commit_counts[REPO_ID] == 1 and "v1.0.0" not in repo.tags
    rerun = _release(monkeypatch, hub, tmp_path, "201", 1)
    assert rerun.returncode == 0, rerun.stderr
    assert hub.commit_counts[REPO_ID] == 1  # exactly one release commit, across both runs
    assert repo.tags["v1.0.0"] == repo.branches["main"]
    assert "tagging it, no commit" in rerun.stderr


def test_every_hub_request_failing_once(hub, ckpt, tmp_path, monkeypatch):
    fault = hub.fail_each_once(503)
    first = _release(monkeypatch, hub, tmp_path, "300", 0)
    assert first.returncode == 0, first.stderr
    assert fault.hits >= 8  # whoami, repo info, refs, tree, preupload, commit, tag, ...
    assert "Hub answered 503" in first.stderr and "retrying in 1 s (1/5)" in first.stderr
    assert hub.commit_counts[REPO_ID] == 1
    hub.clear_log()
    again = _release(monkeypatch, hub, tmp_path, "301", 2)
    assert again.returncode == 0, again.stderr
    assert hub.writes() == [] and hub.commit_counts[REPO_ID] == 0
    assert hub.repo(REPO_ID).tags["v1.0.0"] == hub.repo(REPO_ID).branches["main"]


def test_a_checkpoint_gitattributes_is_merged_and_rereleases_as_a_noop(
    hub, ckpt, tmp_path, monkeypatch
):
    (ckpt / ".gitattributes").write_text("*.jinja text eol=lf\n*.safetensors filter=lfs\n")
    first = _release(monkeypatch, hub, tmp_path, "400", 0)
    assert first.returncode == 0, first.stderr
    merged = hub.files(REPO_ID)[".gitattributes"].decode()
    assert "*.jinja text eol=lf" in merged.splitlines()
    assert "*.bin filter=lfs diff=lfs merge=lfs -text" in merged.splitlines()  # the Hub's own
    hub.clear_log()
    again = _release(monkeypatch, hub, tmp_path, "401", 1)
    assert again.returncode == 0, again.stderr
    assert "already released" in again.stdout and hub.writes() == []


def test_a_file_edited_after_the_scan_stops_the_release_before_the_commit(
    hub, ckpt, tmp_path, monkeypatch
):
    template = ckpt / "chat_template.jinja"
    original = template.read_bytes()
    edited = original.replace(b"assistant", b"ASSISTANT", 1)
    assert len(edited) == len(original) and edited != original

    def edit() -> None:  # while the release reads the Hub, after the deep scan
        template.write_bytes(edited)

    hub.intercept("GET", r"/refs$", edit)
    result = _release(monkeypatch, hub, tmp_path, "500", 0)
    assert result.returncode == 1
    assert "chat_template.jinja changed on disk after it was checked" in result.stderr
    assert hub.count("commit") == 0 and hub.count("preupload") == 0


def test_large_files_declare_the_scanned_sha256(hub, ckpt, tmp_path, monkeypatch):
    """Files uploaded from disk carry the scan's sha256: huggingface_hub does not read them
    again to hash them, and bytes that changed after the last check are refused by the Hub."""
    import huggingface_hub.lfs

    monkeypatch.setattr("r1release.deep.KEEP_BYTES", 0)  # every file uploaded from disk
    hashed: list[str] = []
    real = huggingface_hub.lfs.sha_fileobj
    monkeypatch.setattr(
        huggingface_hub.lfs, "sha_fileobj", lambda f, *a: hashed.append(1) or real(f, *a)
    )
    weights = ckpt / "model-00001-of-00002.safetensors"
    original = weights.read_bytes()

    def corrupt() -> None:  # after r1release's last stat check, while the commit uploads
        weights.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))

    hub.intercept("POST", r"/preupload/", corrupt)
    result = _release(monkeypatch, hub, tmp_path, "600", 0)
    assert hashed == []  # not one file hashed again by the client
    assert result.returncode == 1
    assert hub.count("commit") == 0
    weights.write_bytes(original)
    rerun = _release(monkeypatch, hub, tmp_path, "601", 0)
    assert rerun.returncode == 0, rerun.stderr
    assert hub.files(REPO_ID)[weights.name] == original


def test_manifest_is_deterministic_and_guards_the_publish(hub, ckpt, tmp_path, monkeypatch):
    plan = tmp_path / "plan.json"
    dry = ("release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--dry-run")
    first = run_cli(
        monkeypatch, hub, tmp_path, *dry, "--format", "json", "--manifest", str(plan),
        env=_github("700"),
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    manifest = json.loads(plan.read_text())
    assert doc["manifest"] == manifest
    assert {f["path"] for f in manifest["files"]} >= {"README.md", "config.json"}
    assert manifest["card_sha256"] == next(
        f["sha256"] for f in manifest["files"] if f["path"] == "README.md"
    )
    assert doc["release"]["dry_run"] is True and doc["report"]["summary"]["errors"] == 0
    second = run_cli(monkeypatch, hub, tmp_path, *dry, "--format", "json", env=_github("701"))
    assert json.loads(second.stdout)["manifest"] == manifest  # another run, the same content
    (ckpt / "tokenizer_config.json").write_text(
        (ckpt / "tokenizer_config.json").read_text().replace("}", ', "x": 1}', 1)
    )
    hub.clear_log()
    refused = run_cli(
        monkeypatch, hub, tmp_path, *RELEASE, "--expect-manifest", str(plan), env=_github("702")
    )
    assert refused.returncode == 1
    assert "differs from the approved plan: " in refused.stderr
    assert "tokenizer_config.json changed" in refused.stderr  # (and the record listing it)
    assert hub.writes() == []


@pytest.mark.parametrize(
    "flags", [("--version", "v1.0.0"), ("--model", "OpenR1-Tiny", "--version", "v1.0.0")]
)
def test_a_dispatch_asking_for_a_dry_run_is_one_whatever_the_flags(
    hub, ckpt, tmp_path, monkeypatch, flags
):
    """The composite action passes its own `version:`/`model:` as flags; a workflow_dispatch
    with `dry_run: true` must still send nothing. Only an explicit --publish overrides it."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"inputs": {"version": "v1.0.0", "dry_run": "true"}}))
    env = _github("800", GITHUB_EVENT_NAME="workflow_dispatch", GITHUB_EVENT_PATH=str(event))
    result = run_cli(monkeypatch, hub, tmp_path, "release", *flags, env=env)
    assert result.returncode == 0, result.stderr
    assert "(dry run)" in result.stderr and "dry run: nothing was sent" in result.stdout
    assert hub.writes() == []

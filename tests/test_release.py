"""Releases end to end: the real r1release CLI and huggingface_hub client, the loopback Hub."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from r1release.config import load
from r1release.stage import build_stage

from factory import tiny_qwen2
from helpers import REPO_ID, TOKEN, r1release, write_release_yaml
from hubserver import run_client

pytestmark = pytest.mark.e2e


def digests(path: Path) -> dict[str, str]:
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def broken(checkpoint):
    """The fixture's failing case (EOS and use_cache wrong) with training state beside it."""
    path = checkpoint("qwen2.5-base-after-chatml-sft")
    (path / "optimizer.pt").write_bytes(b"\x80\x04optimizer state")
    (path / "trainer_state.json").write_text(json.dumps({"global_step": 3, "epoch": 1.0}))
    return path


def test_release_end_to_end(hub, broken, tmp_path):
    write_release_yaml(tmp_path, broken)
    before = digests(broken)
    result = r1release(
        hub, tmp_path, "release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish"
    )
    assert result.returncode == 0, result.stderr
    assert f"released {REPO_ID} v1.0.0: {hub.url}/{REPO_ID}/commit/" in result.stdout
    assert digests(broken) == before  # the checkpoint on disk is never modified
    assert hub.commit_counts[REPO_ID] == 1
    repo = hub.repo(REPO_ID)
    assert repo.private is True and "v1.0.0" in repo.tags
    assert repo.tags["v1.0.0"] == repo.branches["main"]

    staged = build_stage(load(tmp_path / "release.yaml").models[0], "v1.0.0")
    downloaded = run_client(
        hub,
        """
from huggingface_hub import snapshot_download
result = snapshot_download(params["repo"], revision="v1.0.0", local_dir=params["dir"])
""",
        tmp_path / "client",
        token=TOKEN,
        repo=REPO_ID,
        dir=str(tmp_path / "download"),
    )
    local = Path(downloaded)
    hub_only = (".cache/", ".gitattributes")  # the download's cache, the Hub's LFS rules
    got = {k: v for k, v in digests(local).items() if not k.startswith(hub_only)}
    want = {path: f.sha256 for path, f in staged.files.items()}
    assert got == want  # byte-identical to the staged set; leftovers not uploaded
    assert "optimizer.pt" not in got

    generation = json.loads((local / "generation_config.json").read_text())
    config = json.loads((local / "config.json").read_text())
    assert generation["eos_token_id"] == [151645, 151643] and generation["use_cache"] is True
    assert config["use_cache"] is True

    from transformers import GenerationConfig, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(local)
    assert tokenizer.eos_token_id in GenerationConfig.from_pretrained(local).eos_token_id
    card = (local / "README.md").read_text()
    assert "# OpenR1-Tiny" in card and "open-r1" in card and "None" not in card


def test_model_loads_from_the_download(hub, tmp_path, _built):
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    ckpt = tmp_path / "ckpt"
    model = tiny_qwen2(eos_token_id=151643, bos_token_id=151643, use_cache=False)
    model.to(torch.bfloat16).save_pretrained(ckpt)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (ckpt / name).write_bytes((_built["qwen2.5-base-after-chatml-sft"] / name).read_bytes())
    write_release_yaml(tmp_path, ckpt)
    result = r1release(
        hub, tmp_path, "push", "--model", "OpenR1-Tiny", "--version", "v0.1.0", "--publish"
    )
    assert result.returncode == 0, result.stderr
    local = Path(
        run_client(
            hub,
            """
from huggingface_hub import snapshot_download
result = snapshot_download(params["repo"], revision="v0.1.0", local_dir=params["dir"])
""",
            tmp_path / "client",
            token=TOKEN,
            repo=REPO_ID,
            dir=str(tmp_path / "dl"),
        )
    )
    model = AutoModelForCausalLM.from_pretrained(local)
    assert model.config.use_cache is True
    assert model.generation_config.eos_token_id == [151645, 151643]


def test_dry_run_sends_no_write(hub, broken, tmp_path):
    write_release_yaml(tmp_path, broken)
    result = r1release(
        hub, tmp_path, "release", "--model", "OpenR1-Tiny", "--version", "v1.0.0"
    )  # outside CI: a dry run by default
    assert result.returncode == 0, result.stderr
    assert hub.writes() == []
    out = result.stdout
    for path in (
        "README.md",
        "config.json",
        "generation_config.json",
        "model-00001-of-00002.safetensors",
        "tokenizer.json",
    ):
        assert any(line.split()[:2] == ["new", path] for line in out.splitlines()), path
    assert "excluded   optimizer.pt" in out
    assert "tag: v1.0.0 (new)" in out
    assert "--- README.md (model card) ---" in out and "# OpenR1-Tiny" in out
    assert "dry run: nothing was sent" in out


def test_offline_dry_run_plans_without_the_hub(hub, broken, tmp_path):
    """HF_HUB_OFFLINE=1: a local dry run needs no Hub (every file new); publishing stops at
    once, before the checks, with one line and exit 2."""
    write_release_yaml(tmp_path, broken)
    hub.add_repo(REPO_ID)  # reachable, but offline mode must not touch it
    summary = tmp_path / "summary.md"
    env = {"HF_HUB_OFFLINE": "1", "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    args = ("release", "--model", "OpenR1-Tiny", "--version", "v1.0.0")
    result = r1release(hub, tmp_path, *args, "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert hub.log == []
    out = result.stdout
    assert "Hub not contacted: HF_HUB_OFFLINE is set" in out
    assert any(line.split()[:2] == ["new", "config.json"] for line in out.splitlines())
    assert "tag: v1.0.0 (not checked: offline)" in out and "# OpenR1-Tiny" in out
    assert "offline: the Hub was not contacted" in summary.read_text()
    publish = r1release(hub, tmp_path, *args, "--publish", env={"HF_HUB_OFFLINE": "1"})
    assert publish.returncode == 2
    assert publish.stderr.strip().splitlines() == [
        "error: HF_HUB_OFFLINE is set: the Hub cannot be reached to publish (unset "
        "HF_HUB_OFFLINE, or pass --dry-run to plan offline)"
    ]
    assert hub.log == []


def test_library_publish_offline(broken, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from r1release.hub import PublishError, publish

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    stage = build_stage(load(write_release_yaml(tmp_path, broken)).models[0], "v1.0.0")
    planned = publish(stage, dry_run=True)
    assert planned.dry_run and planned.plan.offline and not planned.plan.repo_exists
    assert {a.state for a in planned.plan.actions} == {"new"}
    with pytest.raises(PublishError, match="HF_HUB_OFFLINE is set"):
        publish(stage)


def test_offline_mode_is_not_retried():
    from huggingface_hub.errors import OfflineModeIsEnabled

    from r1release.hub import transient

    assert not transient(OfflineModeIsEnabled("offline"))
    assert transient(ConnectionError("refused"))


def test_rerun_is_a_noop_and_different_content_is_refused(hub, broken, tmp_path):
    write_release_yaml(tmp_path, broken)
    args = ("push", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish")
    assert r1release(hub, tmp_path, *args).returncode == 0
    again = r1release(hub, tmp_path, *args)
    assert again.returncode == 0, again.stderr
    assert "already released" in again.stdout
    assert hub.commit_counts[REPO_ID] == 1

    dry = r1release(hub, tmp_path, *args, "--dry-run")
    assert "unchanged  model-00001-of-00002.safetensors" in dry.stdout

    (broken / "tokenizer_config.json").write_text(
        (broken / "tokenizer_config.json").read_text().replace("131072", "4096")
    )
    conflict = r1release(hub, tmp_path, *args)
    assert conflict.returncode == 1
    [error] = [line for line in conflict.stderr.splitlines() if line.startswith("error:")]
    assert "tag v1.0.0 already points at" in error and "--force" in error
    assert hub.commit_counts[REPO_ID] == 1

    forced = r1release(hub, tmp_path, *args, "--force")
    assert forced.returncode == 0, forced.stderr
    repo = hub.repo(REPO_ID)
    assert hub.commit_counts[REPO_ID] == 2
    assert repo.tags["v1.0.0"] == repo.branches["main"]


def test_failed_push_leaves_no_tag_and_rerun_completes(hub, broken, tmp_path):
    write_release_yaml(tmp_path, broken)
    args = ("push", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish")
    commit_fault = hub.fail("POST", r"/commit/", status=500, times=100)
    failed = r1release(hub, tmp_path, *args)
    assert failed.returncode == 1
    assert "Hub request failed while committing the release: HTTP 500" in failed.stderr
    assert "running the release again is safe" in failed.stderr
    assert 1 < commit_fault.hits <= 6  # retried, but bounded
    assert "v1.0.0" not in hub.repo(REPO_ID).tags
    commit_fault.times = commit_fault.hits  # the Hub recovers
    # the commit lands but the tag request keeps failing: still no tag
    tag_fault = hub.fail("POST", r"/tag/", status=503, times=100)
    no_tag = r1release(hub, tmp_path, *args)
    assert no_tag.returncode == 1 and "creating the tag" in no_tag.stderr
    assert "v1.0.0" not in hub.repo(REPO_ID).tags
    assert hub.commit_counts[REPO_ID] == 1
    tag_fault.times = tag_fault.hits
    done = r1release(hub, tmp_path, *args)
    assert done.returncode == 0, done.stderr
    assert hub.commit_counts[REPO_ID] == 1  # the rerun tags the existing commit
    assert "commit: none needed" in done.stdout
    assert hub.repo(REPO_ID).tags["v1.0.0"] == hub.repo(REPO_ID).branches["main"]


def test_lost_commit_reply_is_recognised(hub, broken, tmp_path):
    write_release_yaml(tmp_path, broken)
    hub.fail("POST", r"/commit/", status=500, after=True)  # the commit lands, the reply is lost
    result = r1release(
        hub, tmp_path, "push", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish"
    )
    assert result.returncode == 0, result.stderr
    assert "not committing again" in result.stderr
    assert hub.commit_counts[REPO_ID] == 1
    assert hub.repo(REPO_ID).tags["v1.0.0"] == hub.repo(REPO_ID).branches["main"]


def test_error_findings_stop_before_any_request(hub, broken, tmp_path):
    write_release_yaml(tmp_path, broken)
    (broken / "model-00002-of-00002.safetensors").unlink()
    result = r1release(
        hub, tmp_path, "push", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish"
    )
    assert result.returncode == 1
    assert "stop the release" in result.stderr and "shard-index" in result.stderr
    # Only the preflight's reads (token, repository) came before the checks: no write.
    assert {e.kind for e in hub.log} <= {"whoami", "repo-info"} and hub.writes() == []


def test_without_push_fix_the_eos_problem_stops_the_release(hub, broken, tmp_path):
    write_release_yaml(tmp_path, broken, push="{fix: false}")
    result = r1release(
        hub, tmp_path, "push", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish"
    )
    assert result.returncode == 1 and "eos-alignment" in result.stderr
    assert hub.writes() == [] and {e.kind for e in hub.log} <= {"whoami", "repo-info"}


def test_release_from_tag(hub, broken, tmp_path):
    write_release_yaml(tmp_path, broken)
    result = r1release(hub, tmp_path, "release", "--tag", "v2.0.0", "--publish")
    assert result.returncode == 0, result.stderr
    assert "v2.0.0" in hub.repo(REPO_ID).tags
    bad = r1release(hub, tmp_path, "release", "--tag", "nightly", "--publish")
    assert bad.returncode == 2 and "matches no model's tag_pattern" in bad.stderr


def test_token_never_printed(hub, broken, tmp_path):
    write_release_yaml(tmp_path, broken)
    hub.fail("POST", r"/commit/", status=500, times=100, body=f"echo: Bearer {TOKEN}")
    runs = [
        r1release(hub, tmp_path, "release", "--model", "OpenR1-Tiny", "--version", "v1.0.0"),
        r1release(
            hub,
            tmp_path,
            "--debug",
            "push",
            "--model",
            "OpenR1-Tiny",
            "--version",
            "v1.0.0",
            "--publish",
        ),
    ]
    assert runs[1].returncode == 1
    for run in runs:
        assert TOKEN not in run.stdout + run.stderr
    assert all(TOKEN not in json.dumps(entry.__dict__, default=str) for entry in hub.log)


def test_in_ci_release_publishes_and_uses_the_card_template(hub, broken, tmp_path):
    write_release_yaml(tmp_path, broken, card="{template: card.j2}")
    (tmp_path / "card.j2").write_text("---\n{{ card_data }}\n---\n# {{ model.name }} (ours)\n")
    env = {"CI": "true", "GITHUB_SHA": "c" * 40}
    result = r1release(
        hub, tmp_path, "release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", env=env
    )
    assert result.returncode == 0, result.stderr
    assert hub.commit_counts[REPO_ID] == 1
    files = hub.files(REPO_ID, "v1.0.0")
    assert files["README.md"].decode().split("---\n")[2].startswith("# OpenR1-Tiny (ours)")
    [commit] = [c for c in hub.repo(REPO_ID).commits.values() if "v1.0.0" in c.title]
    assert commit.title == "Release v1.0.0 (cccccccccccc)"

"""One checkpoint view per command, one tokenizer load, one deep scan per finalize().

Each command builds its :class:`Checkpoint` once and passes it down; fixes are an in-memory
layer over it; the tokenizer is cached on it. Counted by wrapping the constructor, the
tokenizer loader and ``scan_checkpoint`` where they are looked up.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import r1release.deep as deep_mod
import r1release.stage as stage_mod
import r1release.tokenizer_view as tokenizer_mod
from r1release.checkpoint import Checkpoint

from helpers import REPO_ID, TOKEN, run_cli, write_release_yaml
from hubserver import patch_client


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    seen: Counter[str] = Counter()
    init = Checkpoint.__init__
    load = tokenizer_mod._load_fast_tokenizer
    scan = deep_mod.scan_checkpoint

    def counted_init(self: Checkpoint, *args: Any, **kwargs: Any) -> None:
        seen["views"] += 1
        init(self, *args, **kwargs)

    def counted_load(*args: Any, **kwargs: Any) -> Any:
        seen["tokenizer"] += 1
        return load(*args, **kwargs)

    def counted_scan(*args: Any, **kwargs: Any) -> Any:
        seen["scans"] += 1
        result = scan(*args, **kwargs)
        seen["files scanned"] += len(result.digests)
        return result

    monkeypatch.setattr(Checkpoint, "__init__", counted_init)
    monkeypatch.setattr(tokenizer_mod, "_load_fast_tokenizer", counted_load)
    monkeypatch.setattr(deep_mod, "scan_checkpoint", counted_scan)  # checker looks it up here
    monkeypatch.setattr(stage_mod, "scan_checkpoint", counted_scan)
    return seen


@pytest.fixture
def broken(checkpoint: Any) -> Path:
    """EOS and use_cache wrong (fixable), a chat template, training state beside it."""
    path = checkpoint("qwen2.5-base-after-chatml-sft")
    (path / "optimizer.pt").write_bytes(b"\x80\x04optimizer state")
    return path


COMMANDS = {
    "check": ("check", "--model", "OpenR1-Tiny"),
    "check --deep": ("check", "--model", "OpenR1-Tiny", "--deep"),
    "fix": ("fix", "--model", "OpenR1-Tiny"),
    "fix --dry-run": ("fix", "--model", "OpenR1-Tiny", "--dry-run"),
    "card": ("card", "--model", "OpenR1-Tiny", "--version", "v1.0.0"),
    "push --dry-run": ("push", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--dry-run"),
    "release --dry-run": (
        "release",
        "--model",
        "OpenR1-Tiny",
        "--version",
        "v1.0.0",
        "--dry-run",
    ),
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_command_builds_one_view_and_loads_the_tokenizer_once(
    command, counts, broken, hub, tmp_path, monkeypatch
):
    write_release_yaml(tmp_path, broken, push="{fix: true}")
    run = run_cli(monkeypatch, hub, tmp_path, *COMMANDS[command])
    assert run.returncode in (0, 1), run.stderr
    assert counts["views"] == 1, dict(counts)
    assert counts["tokenizer"] <= 1, dict(counts)
    deep = command in ("check --deep", "push --dry-run", "release --dry-run")
    assert counts["scans"] == (1 if deep else 0), dict(counts)


def test_fix_then_release_sees_the_fixed_files(counts, broken, hub, tmp_path, monkeypatch):
    """The view that wrote the fixes serves what it wrote, never what was there before."""
    write_release_yaml(tmp_path, broken, push="{fix: false}")
    assert run_cli(monkeypatch, hub, tmp_path, "fix", "--model", "OpenR1-Tiny").returncode == 0
    run = run_cli(monkeypatch, hub, tmp_path, *COMMANDS["release --dry-run"])
    assert run.returncode == 0, run.stderr


# ------------------------------------------------------------------------------ finalize


class _FakeTrainer:
    """What finalize() uses of a Trainer: save_model copies a real tiny checkpoint."""

    def __init__(self, source: Path, out: Path, push: bool) -> None:
        self.source = source
        generation = json.loads((source / "generation_config.json").read_text())
        config = SimpleNamespace(use_cache=False, _name_or_path="")
        self.model = SimpleNamespace(config=config, generation_config=SimpleNamespace(**generation))
        self.args = SimpleNamespace(
            output_dir=str(out),
            push_to_hub=push,
            do_eval=False,
            hub_model_id=REPO_ID if push else None,
            hub_private_repo=None,
        )
        self.processing_class = None
        self.accelerator = None
        self.state = SimpleNamespace(global_step=2)

    def is_world_process_zero(self) -> bool:
        return True

    def save_model(self, out: str) -> None:
        shutil.copytree(self.source, out, dirs_exist_ok=True)


@pytest.mark.slow  # r1release.training imports transformers' Trainer, hence torch
@pytest.mark.parametrize("push", [False, True], ids=["local", "push"])
def test_finalize_scans_once(counts, checkpoint, hub, tmp_path, monkeypatch, push):
    from r1release.training import finalize

    source = checkpoint("qwen2.5-base-after-chatml-sft")
    out = tmp_path / "out"
    patch_client(monkeypatch, hub, tmp_path / ".hf-home", TOKEN)
    result = finalize(
        _FakeTrainer(source, out, push),
        dataset_name="open-r1/tiny-chats",
        base_model="Qwen/Qwen2.5-0.5B",
        license="apache-2.0",
        version="v0.1.0",
    )
    assert not result.report.errors
    assert set(result.fixed_files) == {"config.json", "generation_config.json"}
    assert counts["scans"] == 1, dict(counts)
    assert counts["views"] == 1, dict(counts)
    # The fix rewrites config.json, which transformers' tokenizer loader reads (its
    # transformers_version): the view loads the tokenizer again after it, once.
    assert counts["tokenizer"] <= 2, dict(counts)
    if push:
        assert result.commit_url
        repo = hub.repo(REPO_ID)
        assert "v0.1.0" in repo.tags
        # what was pushed is what is on disk after finalize: fixed files, the written card
        pushed_files = hub.files(REPO_ID, "v0.1.0")
        assert pushed_files["README.md"] == (out / "README.md").read_bytes()
        pushed = json.loads(pushed_files["generation_config.json"])
        assert pushed == json.loads((out / "generation_config.json").read_text())


# ------------------------------------------------------------------------------ no stale reads


def test_a_refreshed_view_serves_what_was_written(counts, broken):
    view = Checkpoint(broken)
    assert view.generation_config["eos_token_id"] == 151643
    eos = view.tokenizer().eos_token
    size = (broken / "generation_config.json").stat().st_size
    text = (broken / "generation_config.json").read_text().replace("151643", "151645")
    (broken / "generation_config.json").write_text(text)  # same size, maybe the same mtime
    assert (broken / "generation_config.json").stat().st_size == size
    assert view.refresh(["generation_config.json"]) == ("generation_config.json",)
    assert view.generation_config["eos_token_id"] == 151645
    assert counts["tokenizer"] == 1  # the generation config is not the tokenizer's
    config = json.loads((broken / "tokenizer_config.json").read_text())
    config["eos_token"] = "<|endoftext|>" if eos != "<|endoftext|>" else "<|im_end|>"
    (broken / "tokenizer_config.json").write_text(json.dumps(config))
    assert "tokenizer_config.json" in view.refresh()  # found by its stat alone
    assert view.tokenizer().eos_token == config["eos_token"]
    assert counts["tokenizer"] == 2
    (broken / "extra.json").write_text("{}")
    assert "extra.json" in view.refresh() and view.exists("extra.json")


def test_an_override_in_a_layer_is_undone(broken):
    view = Checkpoint(broken)
    with view.layer():
        view.override("config.json", {"use_cache": True})
        assert view.config == {"use_cache": True}
    assert view.config["use_cache"] is False


def test_a_reused_scan_reads_again_only_what_changed(counts, broken, monkeypatch):
    from r1release.config import load
    from r1release.deep import scan_checkpoint
    from r1release.stage import build_stage

    write_release_yaml(broken.parent, broken)
    model = load(broken.parent / "release.yaml").models[0]
    view = Checkpoint(broken)
    scan = scan_checkpoint(view)
    scanned = counts["files scanned"]
    (broken / "all_results.json").write_text('{"eval_loss": 1.5}')  # after the scan
    stage = build_stage(model, "v1.0.0", checkpoint=view, scan=scan)
    assert counts["scans"] == 2  # the first scan, then one of the new file only
    assert counts["files scanned"] == scanned + 1
    fresh = build_stage(model, "v1.0.0")
    assert stage.manifest() == fresh.manifest()
    assert stage.files["all_results.json"].content == b'{"eval_loss": 1.5}'
    assert "optimizer.pt" not in stage.files and stage.changed_on_disk() == []

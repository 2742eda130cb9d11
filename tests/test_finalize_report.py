"""What finalize() tells: what it fixed, checked, skipped and pushed (the ``r1release``
logger), and what a release would still need (the card checks a release runs).

The trainer is what finalize() uses of one: ``save_model`` copies a real tiny checkpoint
(the failing Qwen2.5 base after ChatML SFT: EOS and use_cache to fix)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest

import r1release.tokenizer_view as tokenizer_mod

from helpers import REPO_ID, TOKEN
from hubserver import patch_client

pytestmark = pytest.mark.slow  # r1release.training imports transformers' Trainer, hence torch

pytest.importorskip("torch")

FAILING = "qwen2.5-base-after-chatml-sft"
RELEASE = {"dataset_name": "open-r1/tiny-chats", "license": "apache-2.0"}


class _Trainer:
    def __init__(self, source: Path, out: str, push: bool, name_or_path: str = "") -> None:
        self.source = source
        generation = json.loads((source / "generation_config.json").read_text())
        config = SimpleNamespace(use_cache=False, _name_or_path=name_or_path)
        self.model = SimpleNamespace(config=config, generation_config=SimpleNamespace(**generation))
        self.args = SimpleNamespace(
            output_dir=out,
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


def _lines(caplog, level=logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "r1release" and r.levelno == level]


def test_it_logs_what_it_fixed_checked_and_skipped(checkpoint, tmp_path, caplog):
    from r1release.training import finalize

    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="r1release"):
        result = finalize(
            _Trainer(checkpoint(FAILING), str(out), push=False),
            base_model="Qwen/Qwen2.5-0.5B",
            **RELEASE,
        )
    info = _lines(caplog)
    assert f"r1release: fixed {out}/config.json (config-eos-consistency, use-cache)" in info
    assert any(line.startswith(f"r1release: fixed {out}/generation_config.json (") for line in info)
    rules = ", ".join(result.report.rules_run)
    assert "card-metadata" in result.report.rules_run  # the card is checked as a release does
    count = len(result.report.rules_run)
    assert f"r1release: checked {out}: 0 errors, 0 warnings; {count} rules ran: {rules}" in info
    assert "r1release: skipped smoke-generate: opt-in: --smoke" in info
    assert not _lines(caplog, logging.WARNING) and not _lines(caplog, logging.ERROR)


def test_it_logs_what_it_pushed(checkpoint, hub, tmp_path, monkeypatch, caplog):
    from r1release.training import finalize

    patch_client(monkeypatch, hub, tmp_path / ".hf-home", TOKEN)
    with caplog.at_level(logging.INFO, logger="r1release"):
        result = finalize(
            _Trainer(checkpoint(FAILING), str(tmp_path / "out"), push=True),
            base_model="Qwen/Qwen2.5-0.5B",
            version="v0.1.0",
            **RELEASE,
        )
    commit = hub.repo(REPO_ID).tags["v0.1.0"]
    assert result.commit_url and commit in result.commit_url
    expected = f"r1release: pushed {REPO_ID} to main, tagged v0.1.0 (commit {commit}): "
    assert expected + result.commit_url in _lines(caplog)


def test_a_model_from_a_local_folder_says_what_a_release_needs(checkpoint, tmp_path, caplog):
    """_name_or_path is a path: no base_model in the card, and a warning that says so."""
    from r1release.training import finalize

    source = checkpoint(FAILING)
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="r1release"):
        result = finalize(
            _Trainer(source, str(out), push=False, name_or_path=str(source)), **RELEASE
        )
    assert "base_model" not in (out / "README.md").read_text()
    [warning] = result.report.warnings
    assert (warning.rule, warning.message) == ("card-metadata", "metadata has no base_model")
    assert warning.hint == (
        "a release needs base_model: set it in release.yaml or pass base_model=... to "
        f"finalize(); the model was loaded from {source}, a local path, which is not a Hub id"
    )
    [logged] = _lines(caplog, logging.WARNING)
    assert logged.startswith("r1release: card-metadata: README.md: metadata has no base_model (")
    assert "0 errors, 1 warning;" in next(line for line in _lines(caplog) if "checked" in line)


def test_pushing_without_what_a_release_needs_stops_before_the_push(checkpoint, hub, tmp_path):
    from r1release.training import FinalizeError, finalize

    with pytest.raises(FinalizeError) as caught:
        finalize(_Trainer(checkpoint(FAILING), str(tmp_path / "out"), push=True), **RELEASE)
    assert str(caught.value).endswith(
        "1 error finding(s): card-metadata (README.md): metadata has no base_model (a release "
        "needs base_model: set it in release.yaml or pass base_model=... to finalize())"
    )
    assert REPO_ID not in hub.commit_counts


def test_the_local_card_loads_the_checkpoint_by_its_absolute_path(
    checkpoint, tmp_path, monkeypatch
):
    from r1release.training import finalize

    monkeypatch.chdir(tmp_path)
    finalize(
        _Trainer(checkpoint(FAILING), "out", push=False),
        base_model="Qwen/Qwen2.5-0.5B",
        **RELEASE,
    )
    card = (tmp_path / "out" / "README.md").read_text()
    assert f'pipeline("text-generation", model="{tmp_path / "out"}")' in card
    assert 'model="out"' not in card


def test_the_tokenizer_is_loaded_once(checkpoint, tmp_path, monkeypatch):
    """The fixes rewrite config.json, which the tokenizer loader reads only for
    transformers_version and model_type: the view keeps its tokenizer."""
    from r1release.training import finalize

    loads = []
    load = tokenizer_mod._load_fast_tokenizer
    monkeypatch.setattr(
        tokenizer_mod, "_load_fast_tokenizer", lambda *a: loads.append(a) or load(*a)
    )
    result = finalize(
        _Trainer(checkpoint(FAILING), str(tmp_path / "out"), push=False),
        base_model="Qwen/Qwen2.5-0.5B",
        **RELEASE,
    )
    assert "config.json" in result.fixed_files
    assert len(loads) == 1


def test_a_config_change_the_tokenizer_reads_loads_it_again(checkpoint):
    from r1release.checkpoint import Checkpoint

    path = checkpoint(FAILING)
    view = Checkpoint(path)
    before = view.tokenizer()
    config = dict(view.config)  # read before the write, as the fixes read it
    (path / "config.json").write_text(json.dumps(config | {"use_cache": True}))
    view.refresh(["config.json"])
    assert view.tokenizer() is before
    assert view.config["use_cache"] is True
    (path / "config.json").write_text(json.dumps(config | {"transformers_version": "5.1.0"}))
    view.refresh(["config.json"])
    assert view.tokenizer() is not before


@pytest.mark.parametrize(
    ("name_or_path", "hub_id"),
    [
        ("Qwen/Qwen2.5-0.5B", True),
        ("", False),
        ("/data/models/Qwen2.5-0.5B", False),
        ("./Qwen2.5-0.5B", False),
        ("~/Qwen2.5-0.5B", False),
        ("runs/Qwen2.5-0.5B/checkpoint-5", False),
        ("local-folder", False),  # no owner: not what a card's base_model names
    ],
)
def test_which_name_or_path_is_a_base_model(name_or_path, hub_id):
    from r1release.training import _is_hub_id

    assert _is_hub_id(name_or_path) is hub_id


def test_an_existing_folder_named_like_a_hub_id_is_a_path(tmp_path, monkeypatch):
    from r1release.training import _is_hub_id

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "qwen").mkdir(parents=True)
    assert _is_hub_id("models/qwen") is False


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"license": "apache2"}, "finalize(license=...): 'apache2' is not a Hub license id"),
        (
            {"dataset_name": "examples/recipes/tiny/chats.jsonl"},
            "finalize(dataset_name=...): 'examples/recipes/tiny/chats.jsonl' is a local path",
        ),
        ({"base_model": "has space"}, "finalize(base_model=...): "),
    ],
)
def test_card_arguments_are_checked_before_the_save(checkpoint, tmp_path, arguments, expected):
    """As release.yaml's keys are: a typo stops every rank before any work, nothing saved."""
    from r1release.training import FinalizeError, finalize

    out = tmp_path / "out"
    with pytest.raises(FinalizeError) as caught:
        finalize(_Trainer(checkpoint(FAILING), str(out), push=False), **(RELEASE | arguments))
    assert str(caught.value).startswith(expected) and "\n" not in str(caught.value)
    assert not out.exists()


# ------------------------------------------------------------------------ the trainer's method


class GRPOTrainer(_Trainer):
    """Named as TRL's, without its ``_tag_names``, its README or a log history."""


class _KTOLike(_Trainer):
    _tag_names: ClassVar[list[str]] = [
        "trl",
        "kto",
    ]  # as TRL's trainers declare (trl/trainer/kto_trainer.py)


def _card_metadata(out: Path) -> dict:
    import yaml

    return yaml.safe_load((out / "README.md").read_text().split("---")[1])


@pytest.mark.parametrize(
    ("trainer_class", "tags", "cites"),
    [(GRPOTrainer, ["trl", "grpo"], "2402.03300"), (_KTOLike, ["trl", "kto"], "2402.01306")],
)
def test_the_card_names_the_trainers_method(checkpoint, tmp_path, trainer_class, tags, cites):
    from r1release.training import finalize

    out = tmp_path / "out"
    finalize(
        trainer_class(checkpoint(FAILING), str(out), push=False),
        base_model="Qwen/Qwen2.5-0.5B",
        **RELEASE,
    )
    assert set(tags) <= set(_card_metadata(out)["tags"])
    assert cites in (out / "README.md").read_text()


def test_a_plain_trainer_names_no_method(checkpoint, tmp_path):
    from r1release.training import finalize

    out = tmp_path / "out"
    finalize(
        _Trainer(checkpoint(FAILING), str(out), push=False),
        base_model="Qwen/Qwen2.5-0.5B",
        **RELEASE,
    )
    assert "trl" not in _card_metadata(out)["tags"]


# ------------------------------------------------------------------------ merge=True


class _Saving(_Trainer):
    def save_model(self, out: str) -> None:
        self.saved = True
        super().save_model(out)


def _lora_trainer(source: Path, out: Path, **engine: bool) -> _Saving:
    from peft import LoraConfig, get_peft_model

    from factory import tiny_qwen2

    trainer = _Saving(source, str(out), push=False)
    trainer.model = get_peft_model(tiny_qwen2(), LoraConfig(r=2, target_modules=["q_proj"]))
    for name, value in engine.items():
        setattr(trainer, name, value)
    return trainer


@pytest.mark.parametrize(
    ("engine", "named"),
    [({"is_fsdp_enabled": True}, "FSDP"), ({"is_deepspeed_enabled": True}, "DeepSpeed")],
)
def test_merge_under_a_sharding_engine_is_refused_before_the_save(
    checkpoint, tmp_path, engine, named
):
    from r1release.training import FinalizeError, finalize

    pytest.importorskip("peft")
    out = tmp_path / "out"
    trainer = _lora_trainer(checkpoint(FAILING), out, **engine)
    with pytest.raises(FinalizeError) as caught:
        finalize(trainer, merge=True, base_model="Qwen/Qwen2.5-0.5B", **RELEASE)
    assert f"cannot merge the adapter under {named}" in str(caught.value)
    assert "merge: true` in release.yaml" in caught.value.hint
    assert not getattr(trainer, "saved", False) and not out.exists()
    assert type(trainer.model).__name__ == "PeftModel"  # not merged


def test_merge_of_a_model_that_is_no_adapter_says_so(checkpoint, tmp_path, caplog):
    from r1release.training import finalize

    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="r1release"):
        finalize(
            _Trainer(checkpoint(FAILING), str(out), push=False),
            merge=True,
            base_model="Qwen/Qwen2.5-0.5B",
            **RELEASE,
        )
    [warning] = _lines(caplog, logging.WARNING)
    assert "finalize(merge=True): the model is a SimpleNamespace, not a PEFT model" in warning
    assert (out / "config.json").exists()  # saved as it is


class _FsdpPlugin:
    """accelerate's FullyShardedDataParallelPlugin as finalize uses it: its state_dict_type,
    switched with set_state_dict_type (FSDP itself needs a GPU here: accelerate 1.15 turns
    it on only for GPU-like devices)."""

    def __init__(self, state_dict_type: str) -> None:
        self.state_dict_type = state_dict_type
        self.calls: list[str] = []

    def set_state_dict_type(self, state_dict_type: str) -> None:
        self.calls.append(state_dict_type)
        self.state_dict_type = state_dict_type


@pytest.mark.parametrize("trained_with", ["SHARDED_STATE_DICT", "StateDictType.SHARDED_STATE_DICT"])
def test_under_fsdp_the_save_is_a_full_state_dict(checkpoint, tmp_path, caplog, trained_with):
    """transformers 5.24's save_model writes no weights under SHARDED_STATE_DICT: finalize
    switches the plugin to FULL_STATE_DICT for the save, and back after it."""
    from r1release.training import finalize

    trainer = _Trainer(checkpoint(FAILING), str(tmp_path / "out"), push=False)
    plugin = _FsdpPlugin(trained_with)
    trainer.is_fsdp_enabled = True
    trainer.accelerator = SimpleNamespace(
        num_processes=1, state=SimpleNamespace(fsdp_plugin=plugin)
    )
    saved_with: list[str] = []
    copy = trainer.save_model
    trainer.save_model = lambda out: (saved_with.append(plugin.state_dict_type), copy(out))
    with caplog.at_level(logging.INFO, logger="r1release"):
        finalize(trainer, base_model="Qwen/Qwen2.5-0.5B", **RELEASE)
    assert saved_with == ["FULL_STATE_DICT"]
    assert plugin.calls == ["FULL_STATE_DICT", trained_with]
    assert any("saving a full state dict" in line for line in _lines(caplog))

    full = _FsdpPlugin("FULL_STATE_DICT")  # already full: left alone
    trainer.accelerator = SimpleNamespace(num_processes=1, state=SimpleNamespace(fsdp_plugin=full))
    finalize(trainer, base_model="Qwen/Qwen2.5-0.5B", **RELEASE)
    assert full.calls == []

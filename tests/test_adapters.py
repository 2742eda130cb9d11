"""LoRA/PEFT adapters as a checkpoint kind: detection, the rules that apply, the card, merge,
and (slow) a real SFTTrainer + LoraConfig run ending in finalize(), released and loaded back.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from adapter_factory import BASE, lora_tensors, write_adapter

from r1release.card import render_card
from r1release.checker import check
from r1release.checkpoint import Checkpoint
from r1release.config import ModelConfig
from r1release.errors import R1ReleaseError
from r1release.fixes import plan_fixes
from r1release.stage import build_stage

from factory import tiny_qwen2
from helpers import REPO_ID, TOKEN, r1release
from hubserver import run_client

IM_END, ENDOFTEXT = 151645, 151643


def model_config(path: Path, **fields) -> ModelConfig:
    return ModelConfig(name="OpenR1-Tiny", checkpoint=path, repo_id=REPO_ID, **fields)


# ------------------------------------------------------------------ detection and rules


def test_adapter_config_makes_an_adapter(tmp_path, checkpoint):
    assert Checkpoint(write_adapter(tmp_path / "a")).kind == "adapter"
    assert Checkpoint(checkpoint()).kind == "model"


@pytest.fixture(params=["torch", "no torch"])
def torch_or_not(request, monkeypatch):
    """Both installs: with torch, and the core one without it (``import torch`` fails and
    find_spec finds nothing, as tests/test_skipped_rules.py hides it)."""
    if request.param == "no torch":
        monkeypatch.setitem(sys.modules, "torch", None)


def test_an_adapter_checks_clean_and_says_what_it_skipped(tmp_path, torch_or_not):
    """Before: json-files' "config.json is missing", eos-alignment and chat-template-stop
    errors, and a generation-config warning, on a save peft and TRL make every LoRA run.
    Without torch, expected-tensors still says why it does not apply, not "needs torch"."""
    report = check(write_adapter(tmp_path / "a"), deep=True)
    assert report.findings == ()
    assert {"adapter-config", "adapter-tensors", "tokenizer", "finite-weights"} <= set(
        report.rules_run
    )
    skipped = {s.rule: s.reason for s in report.rules_skipped}
    relies = f"the base model {BASE}'s applies, which the release relies on"
    assert skipped["eos-alignment"] == f"an adapter without generation_config.json: {relies}"
    assert skipped["use-cache"] == f"an adapter without config.json: {relies}"
    assert skipped["expected-tensors"].startswith("an adapter holds no full model weights")
    assert not {s.rule for s in report.rules_skipped if s.missing_requirement}


def test_the_configs_an_adapter_carries_are_checked(tmp_path):
    path = write_adapter(tmp_path / "a")
    (path / "generation_config.json").write_text(json.dumps({"eos_token_id": ENDOFTEXT}))
    report = check(path)
    assert "eos-alignment" in report.rules_run
    assert [f.rule for f in report.errors] == ["eos-alignment", "chat-template-stop"]


def test_fix_creates_no_generation_config_for_an_adapter(tmp_path):
    path = write_adapter(tmp_path / "a")
    assert plan_fixes(path).changes == ()


def test_an_adapter_without_its_weights(tmp_path):
    path = write_adapter(tmp_path / "a")
    (path / "adapter_model.safetensors").unlink()
    (found,) = check(path).errors
    assert (found.rule, found.message) == (
        "weights-format",
        "no adapter weights (adapter_model.safetensors) next to adapter_config.json",
    )


def test_a_full_model_still_needs_config_json(checkpoint):
    path = checkpoint()
    (path / "config.json").unlink()
    assert any(f.message.startswith("config.json is missing") for f in check(path).errors)


# ------------------------------------------------------------------ the card


def card_meta(card: str) -> dict:
    import yaml

    return yaml.safe_load(card.split("---\n")[1])


def test_the_card_of_an_adapter(tmp_path):
    path = write_adapter(tmp_path / "a")
    card = render_card(path, model_config(path, base_model=BASE, license="apache-2.0"))
    meta = card_meta(card)
    assert meta["library_name"] == "peft" and meta["base_model"] == BASE
    assert meta["tags"] == ["open-r1", "lora", f"base_model:adapter:{BASE}"]  # as peft's card
    assert f'AutoPeftModelForCausalLM.from_pretrained("{REPO_ID}")' in card
    assert f'PeftModel.from_pretrained(base, "{REPO_ID}")' in card
    assert "from transformers import pipeline" not in card
    assert card.splitlines()[card.splitlines().index("# OpenR1-Tiny") + 2].startswith(
        f"A LoRA adapter for [{BASE}](https://huggingface.co/{BASE})"
    )


def test_the_card_takes_the_adapters_hub_base_when_release_yaml_has_none(tmp_path):
    path = write_adapter(tmp_path / "a")
    assert card_meta(render_card(path, model_config(path)))["base_model"] == BASE
    local = write_adapter(tmp_path / "b", base_model_name_or_path=str(tmp_path / "base"))
    assert "base_model" not in card_meta(render_card(local, model_config(local)))


def test_a_full_models_card_is_unchanged(checkpoint):
    path = checkpoint()
    meta = card_meta(render_card(path, model_config(path, base_model=BASE)))
    assert meta["library_name"] == "transformers" and meta["tags"] == ["open-r1"]


# ------------------------------------------------------------------ merge: true


def test_merge_without_the_base_weights_is_one_error(tmp_path):
    path = write_adapter(tmp_path / "a", base_model_name_or_path="org/not-here")
    with pytest.raises(R1ReleaseError) as caught:
        build_stage(model_config(path, base_model="org/not-here", merge=True), "v1.0.0")
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}/adapter_config.json: merge: true")
    assert "base model org/not-here" in message
    assert "hf download org/not-here" in message and "set merge: false" in message


def test_merge_false_stages_the_adapter(tmp_path):
    path = write_adapter(tmp_path / "a", tensors=lora_tensors(layers=1))
    model = model_config(path, base_model=BASE, dataset_name="org/chats", license="apache-2.0")
    stage = build_stage(model, "v1.0.0")
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= set(stage.files)
    assert "config.json" not in stage.files


def test_a_local_base_path_is_released_as_the_hub_base(tmp_path):
    """Uploaded as saved, the adapter would name a directory of the training machine, and
    AutoPeftModelForCausalLM (the card's quick start) would look for it on the user's."""
    local = str(tmp_path / "base")
    path = write_adapter(tmp_path / "a", base_model_name_or_path=local)
    on_disk = (path / "adapter_config.json").read_bytes()
    model = model_config(path, base_model=BASE, dataset_name="org/chats", license="apache-2.0")
    stage = build_stage(model, "v1.0.0")
    staged = stage.files["adapter_config.json"]
    assert staged.origin == "fixed"
    assert json.loads(staged.content)["base_model_name_or_path"] == BASE
    assert json.loads(staged.content)["target_modules"] == ["q_proj", "v_proj"]
    assert (path / "adapter_config.json").read_bytes() == on_disk
    hub_id = write_adapter(tmp_path / "b")  # a Hub id is uploaded as it is
    model = model_config(hub_id, base_model=BASE, dataset_name="org/chats", license="apache-2.0")
    assert build_stage(model, "v1.0.0").files["adapter_config.json"].origin == "checkpoint"


# ------------------------------------------------------------------ the merge cache


@pytest.fixture
def local_base(tmp_path, checkpoint, monkeypatch) -> Path:
    """A full tiny model as the adapter's base, in a local directory; the cache is the
    test's own."""
    monkeypatch.setenv("R1RELEASE_CACHE_DIR", str(tmp_path / "cache"))
    return checkpoint()


def fake_merge(monkeypatch, effect=None) -> list[Path]:
    """peft and transformers replaced by modules whose merge writes ``model.safetensors``
    (or runs ``effect(out)`` first): the cache's own logic, without torch. Returns the
    directories merged into."""
    merged: list[Path] = []

    class Model:
        def merge_and_unload(self):
            return self

        def save_pretrained(self, out):
            if effect is not None:
                effect(Path(out))
            (Path(out) / "model.safetensors").write_bytes(b"merged")
            merged.append(Path(out))

    auto = SimpleNamespace(from_pretrained=lambda *a, **k: Model())
    peft_model = SimpleNamespace(from_pretrained=lambda *a, **k: Model())
    monkeypatch.setitem(sys.modules, "peft", SimpleNamespace(PeftModel=peft_model))
    monkeypatch.setitem(sys.modules, "transformers", SimpleNamespace(AutoModelForCausalLM=auto))
    return merged


def test_a_merge_another_release_completed_meanwhile_is_used_not_removed(
    tmp_path, local_base, monkeypatch
):
    """Before: the other release's finished merge was rmtree'd under it while it uploaded."""
    from r1release.adapters import merge_adapter

    adapter = Checkpoint(write_adapter(tmp_path / "a", base_model_name_or_path=str(local_base)))
    fake_merge(monkeypatch)
    target = merge_adapter(adapter)  # where the merge goes: its key
    shutil.rmtree(target)

    def other_release_finishes(out: Path) -> None:
        target.mkdir()
        (target / "model.safetensors").write_bytes(b"the other release's, uploading")
        (target / ".r1release-merged").write_text("{}\n")

    fake_merge(monkeypatch, other_release_finishes)
    assert merge_adapter(adapter) == target
    assert (target / "model.safetensors").read_bytes() == b"the other release's, uploading"
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # ours is cleaned up


def test_a_target_without_its_marker_is_replaced(tmp_path, local_base, monkeypatch):
    from r1release.adapters import merge_adapter

    adapter = Checkpoint(write_adapter(tmp_path / "a", base_model_name_or_path=str(local_base)))
    merged = fake_merge(monkeypatch)
    target = merge_adapter(adapter)
    (target / ".r1release-merged").unlink()  # cut short: never reused
    assert merge_adapter(adapter) == target and len(merged) == 2
    assert (target / ".r1release-merged").is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_the_merge_key_follows_contents_not_paths(tmp_path, local_base, monkeypatch):
    """Before: the base's path alone: an edited config.json, or other weights in the same
    directory, reused the old merge."""
    import os

    from r1release.adapters import merge_adapter

    path = write_adapter(tmp_path / "a", base_model_name_or_path=str(local_base))
    merged = fake_merge(monkeypatch)
    first = merge_adapter(Checkpoint(path))
    assert merge_adapter(Checkpoint(path)) == first and len(merged) == 1  # reused
    config = json.loads((local_base / "config.json").read_text())
    (local_base / "config.json").write_text(json.dumps(config | {"rope_theta": 1.0}))
    second = merge_adapter(Checkpoint(path))
    assert second != first
    weights = next(local_base.glob("*.safetensors"))
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    third = merge_adapter(Checkpoint(path))
    assert third not in (first, second)
    weights_file = path / "adapter_model.safetensors"
    stat = weights_file.stat()
    data = bytearray(weights_file.read_bytes())
    data[-1] ^= 1  # same size, same mtime: only the contents tell
    weights_file.write_bytes(bytes(data))
    os.utime(weights_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert merge_adapter(Checkpoint(path)) not in (first, second, third)
    assert len(merged) == 4


def test_merge_without_peft_is_one_error(tmp_path, local_base, monkeypatch):
    from r1release.adapters import MergeUnavailable, merge_adapter

    adapter = Checkpoint(write_adapter(tmp_path / "a", base_model_name_or_path=str(local_base)))
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(MergeUnavailable) as caught:
        merge_adapter(adapter)
    assert str(caught.value).startswith(f"{adapter.root}/adapter_config.json: merge: true needs")
    assert "peft is not installed" in str(caught.value)
    assert "pip install 'r1release[train]'" in caught.value.hint


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (MemoryError(), "memory for the whole base model"),
        (RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB"), "memory for the whole"),
        (KeyError("base_model.model.x\n" * 500), "check that base_model_name_or_path names"),
    ],
)
def test_a_failed_merge_is_one_error(tmp_path, local_base, monkeypatch, error, hint):
    from r1release.adapters import MergeFailed, merge_adapter
    from r1release.cache import cache_dir

    adapter = Checkpoint(write_adapter(tmp_path / "a", base_model_name_or_path=str(local_base)))
    fake_merge(monkeypatch)

    def fails(*args, **kwargs):
        raise error

    monkeypatch.setattr(sys.modules["transformers"].AutoModelForCausalLM, "from_pretrained", fails)
    with pytest.raises(MergeFailed) as caught:
        merge_adapter(adapter)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 1000, message
    assert message.startswith(f"{adapter.root}/adapter_config.json: merging the adapter into")
    assert f": {type(error).__name__}" in message
    assert hint in caught.value.hint and caught.value.hint.endswith(
        "set merge: false to release the adapter itself"
    )
    assert not list((cache_dir() / "merged").iterdir())  # the work directory is gone


def test_a_failed_save_into_the_cache_is_one_error(tmp_path, local_base, monkeypatch):
    from r1release.adapters import MergeFailed, merge_adapter

    def disk_full(out: Path) -> None:
        raise OSError(28, "No space left on device")

    adapter = Checkpoint(write_adapter(tmp_path / "a", base_model_name_or_path=str(local_base)))
    fake_merge(monkeypatch, disk_full)
    with pytest.raises(MergeFailed, match=r"OSError: .*No space left") as caught:
        merge_adapter(adapter)
    assert "check the free space and permissions of" in caught.value.hint


# ------------------------------------------------------------------ a real LoRA run (slow)


def _train(root: Path, source: Path, *, merge: bool = False) -> SimpleNamespace:
    """SFTTrainer + LoraConfig on a tiny Qwen2 saved in ``root/base``, ending in finalize()."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
    from trl import SFTConfig, SFTTrainer

    import r1release

    base = root / "base"
    tiny_qwen2(eos_token_id=ENDOFTEXT, bos_token_id=ENDOFTEXT, use_cache=False).save_pretrained(
        base
    )
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(source / name, base / name)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(base)
    chats = [
        [
            {"role": "user", "content": f"w{i} w{i + 1}"},
            {"role": "assistant", "content": f"w{i + 2} w{i + 3}"},
        ]
        for i in range(8)
    ]
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(base),
        processing_class=tokenizer,
        args=SFTConfig(
            output_dir=str(root / "out"),
            max_steps=2,
            per_device_train_batch_size=2,
            report_to=[],
            use_cpu=True,
            save_strategy="no",
            max_length=64,
            disable_tqdm=True,
        ),
        train_dataset=Dataset.from_dict({"messages": chats}),
        peft_config=LoraConfig(
            r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"
        ),
    )
    trainer.train()
    result = r1release.finalize(
        trainer,
        tokenizer,
        dataset_name="open-r1/tiny-chats",
        base_model="Qwen/Qwen2.5-0.5B",
        license="apache-2.0",
        merge=merge,
    )
    return SimpleNamespace(base=base, out=root / "out", result=result, tokenizer=tokenizer)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, _built):
    pytest.importorskip("peft")
    pytest.importorskip("trl")
    root = tmp_path_factory.mktemp("lora")
    with pytest.MonkeyPatch.context() as patch:  # module scope: before the autouse isolation
        patch.setenv("R1RELEASE_CACHE_DIR", str(root / "cache"))
        patch.setenv("HF_HOME", str(root / "hf"))
        return _train(root, _built["qwen2.5-base-after-chatml-sft"])


def _generates(model, tokenizer) -> bool:
    inputs = tokenizer("w1 w2", return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    return output.shape[1] > inputs["input_ids"].shape[1]


def _download(hub, tmp_path: Path, repo: str, version: str) -> Path:
    code = """
from huggingface_hub import snapshot_download
result = snapshot_download(params["repo"], revision=params["rev"], local_dir=params["dir"])
"""
    dest = str(tmp_path / "download")
    return Path(run_client(hub, code, tmp_path / "client", TOKEN, repo=repo, rev=version, dir=dest))


def _release_yaml(tmp_path: Path, checkpoint: Path, **extra: str) -> None:
    lines = [
        "version: 1",
        "models:",
        "  - name: OpenR1-Tiny",
        f"    checkpoint: {checkpoint}",
        f"    repo_id: {REPO_ID}",
        "    base_model: Qwen/Qwen2.5-0.5B",
        "    dataset_name: open-r1/tiny-chats",
        "    license: apache-2.0",
        *(f"    {k}: {v}" for k, v in extra.items()),
    ]
    (tmp_path / "release.yaml").write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_a_lora_run_ends_in_a_checked_adapter(lora_run):
    from click.testing import CliRunner
    from safetensors import safe_open

    from r1release.cli import main

    out = lora_run.out
    assert (out / "adapter_config.json").is_file() and not (out / "config.json").exists()
    assert lora_run.result.report.errors == ()
    assert {"adapter-config", "adapter-tensors"} <= set(lora_run.result.report.rules_run)
    result = CliRunner().invoke(main, ["check", str(out)])
    assert result.exit_code == 0, result.output
    meta = card_meta((out / "README.md").read_text())
    assert meta["library_name"] == "peft" and meta["base_model"] == "Qwen/Qwen2.5-0.5B"
    assert {"lora", "open-r1"} <= set(meta["tags"])
    # tests/adapter_factory.py writes what peft writes
    with safe_open(out / "adapter_model.safetensors", "pt") as real:
        saved = {k: tuple(real.get_slice(k).get_shape()) for k in real.keys()}  # noqa: SIM118
    assert saved == {k: v[1] for k, v in lora_tensors(layers=1).items()}


@pytest.mark.slow
def test_a_missing_target_module_fails_check_with_its_name(lora_run, tmp_path):
    from click.testing import CliRunner

    from r1release.cli import main

    broken = tmp_path / "broken"
    shutil.copytree(lora_run.out, broken)
    config = json.loads((broken / "adapter_config.json").read_text())
    config["target_modules"] = [*config["target_modules"], "k_proj"]
    (broken / "adapter_config.json").write_text(json.dumps(config))
    # --deep: the base (a local directory here) is built and every module of it compared;
    # a plain check names the module from target_modules alone (tests/rules).
    result = CliRunner().invoke(main, ["check", "--deep", str(broken)])
    assert result.exit_code == 1
    assert "target module k_proj has no LoRA tensors" in result.output
    plain = CliRunner().invoke(main, ["check", str(broken)])
    assert plain.exit_code == 1 and "target module k_proj is in target_modules" in plain.output


@pytest.mark.e2e
@pytest.mark.slow
def test_the_released_adapter_loads_with_peft(lora_run, hub, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    _release_yaml(tmp_path, lora_run.out)
    run = r1release(hub, tmp_path, "release", "--model", "OpenR1-Tiny", "--version", "v1.0.0",
                    "--publish")  # fmt: skip
    assert run.returncode == 0, run.stderr
    local = _download(hub, tmp_path, REPO_ID, "v1.0.0")
    assert not (local / "config.json").exists()
    config = json.loads((local / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "Qwen/Qwen2.5-0.5B"  # not the runner's path
    assert "library_name: peft" in (local / "README.md").read_text()
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(lora_run.base), local)
    assert _generates(model, lora_run.tokenizer)


@pytest.mark.e2e
@pytest.mark.slow
def test_merge_true_releases_a_model_transformers_loads_alone(lora_run, hub, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    _release_yaml(tmp_path, lora_run.out, merge="true")
    run = r1release(hub, tmp_path, "release", "--model", "OpenR1-Tiny", "--version", "v1.0.0",
                    "--publish")  # fmt: skip
    assert run.returncode == 0, run.stderr
    local = _download(hub, tmp_path, REPO_ID, "v1.0.0")
    assert not (local / "adapter_config.json").exists()
    assert json.loads((local / "config.json").read_text())["use_cache"] is True  # checked, fixed
    assert "library_name: transformers" in (local / "README.md").read_text()
    merged = AutoModelForCausalLM.from_pretrained(local)
    assert _generates(merged, lora_run.tokenizer)
    adapter = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(lora_run.base), lora_run.out
    )
    ids = lora_run.tokenizer("w1 w2 w3", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, adapter(ids).logits, atol=1e-4)


@pytest.mark.slow
def test_finalize_merge_saves_the_merged_model(tmp_path, _built):
    pytest.importorskip("peft")
    pytest.importorskip("trl")
    from transformers import AutoModelForCausalLM

    run = _train(tmp_path, _built["qwen2.5-base-after-chatml-sft"], merge=True)
    assert not (run.out / "adapter_config.json").exists()
    assert (run.out / "config.json").is_file() and (run.out / "model.safetensors").is_file()
    assert run.result.report.errors == ()
    assert "expected-tensors" in run.result.report.rules_run  # a full model's checks
    assert _generates(AutoModelForCausalLM.from_pretrained(run.out), run.tokenizer)


def test_a_release_in_ci_without_torch_is_not_refused_for_a_rule_an_adapter_moots(
    tmp_path, checkpoint, monkeypatch
):
    """expected-tensors cannot run without torch, which stops a full model's release in CI;
    on an adapter it does not apply, so it needs nothing on the runner."""
    from r1release.checkpoint import Checkpoint
    from r1release.cli._publish import _rules_that_cannot_run
    from r1release.config import loads
    from r1release.stage import ReleaseIncomplete

    monkeypatch.setitem(sys.modules, "torch", None)
    config = loads("models:\n- name: m\n  checkpoint: a\n  repo_id: o/m\n", tmp_path / "r.yaml")
    said: list[str] = []
    _rules_that_cannot_run(
        config, Checkpoint(write_adapter(tmp_path / "a")), in_ci=True, say=said.append
    )
    assert said == []
    with pytest.raises(ReleaseIncomplete, match="expected-tensors"):
        _rules_that_cannot_run(config, Checkpoint(checkpoint()), in_ci=True, say=said.append)

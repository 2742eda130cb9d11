"""adapter-config: peft_type, base_model_name_or_path, and the release's base_model."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from adapter_factory import BASE, write_adapter

from r1release.card import render_card
from r1release.checker import check
from r1release.config import ModelConfig
from r1release.rules.adapter_config import PEFT_TYPES

from helpers import rule_findings


def messages(path: Path, **kwargs) -> list[str]:
    return [f.message for f in rule_findings(path, "adapter-config", **kwargs)]


def card_for(path: Path, base_model: str | None) -> str:
    model = ModelConfig(name="tiny", checkpoint=path, repo_id="org/tiny", base_model=base_model)
    return render_card(path, model)


def test_peft_types_are_the_installed_peft_ones():
    spec = importlib.util.find_spec("peft")  # read, not imported: peft imports torch
    if spec is None or spec.origin is None:
        pytest.skip("peft is not installed")
    peft_types = Path(spec.origin).parent / "utils" / "peft_types.py"
    block = peft_types.read_text().split("class PeftType", 1)[1].split("\nclass ", 1)[0]
    assert set(re.findall(r'^\s+[A-Z_]+ = "([A-Z_]+)"', block, re.M)) == PEFT_TYPES


def test_a_peft_save_passes(tmp_path):
    assert messages(write_adapter(tmp_path / "a")) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"peft_type": "LORRA"}, "peft_type 'LORRA' is not a PEFT method peft 0.21 knows"),
        ({"peft_type": None}, "peft_type is not set"),
        ({"base_model_name_or_path": ""}, "base_model_name_or_path is not set"),
        ({"base_model_name_or_path": None}, "base_model_name_or_path is not set"),
    ],
)
def test_broken_configs(tmp_path, changes, expected):
    path = write_adapter(tmp_path / "a", **changes)
    (found,) = rule_findings(path, "adapter-config")
    assert found.message.startswith(expected) and found.file == "adapter_config.json"
    assert found.severity.value == "error"


def test_the_release_base_model_must_be_the_adapters(tmp_path):
    path = write_adapter(tmp_path / "a")
    assert messages(path, card=card_for(path, BASE)) == []
    (message,) = messages(path, card=card_for(path, "Qwen/Qwen2.5-7B"))
    assert f"base_model_name_or_path is '{BASE}'" in message
    assert "release's base_model is 'Qwen/Qwen2.5-7B'" in message


def test_a_local_base_path_is_not_compared_with_a_hub_id(tmp_path):
    """A base loaded from a local copy records its path: it names no Hub model."""
    path = write_adapter(tmp_path / "a", base_model_name_or_path=str(tmp_path / "base"))
    assert messages(path, card=card_for(path, BASE)) == []


def test_skipped_on_a_full_model_with_the_reason(checkpoint):
    report = check(checkpoint())
    skipped = {s.rule: s.reason for s in report.rules_skipped}
    assert skipped["adapter-config"] == "not an adapter (no adapter_config.json)"
    assert skipped["adapter-tensors"] == "not an adapter (no adapter_config.json)"
    assert "adapter-config" not in report.rules_run


def test_a_broken_adapter_config_is_one_json_files_error(tmp_path):
    path = write_adapter(tmp_path / "a")
    (path / "adapter_config.json").write_text('{"peft_type": "LORA",}')
    report = check(path)
    (found,) = report.errors
    assert found.rule == "json-files" and found.file == "adapter_config.json"
    assert json.loads((path / "tokenizer_config.json").read_text())  # untouched


@pytest.mark.parametrize("peft_type", [["LORA"], {"type": "LORA"}, 7])
def test_a_peft_type_of_another_type_is_a_finding(tmp_path, peft_type):
    """Before: a list is unhashable, and the rule crashed ("internal error in this rule")."""
    (found,) = rule_findings(write_adapter(tmp_path / "a", peft_type=peft_type), "adapter-config")
    assert found.message.startswith(f"peft_type is {peft_type!r}, not a string")
    assert "internal error" not in found.message and found.hint.startswith("set it to one")


HOSTILE = "org/x\n::error::forged" + "y" * 5000  # a line break, a workflow command, 5 kB


def test_untrusted_values_are_one_bounded_line(tmp_path):
    path = write_adapter(tmp_path / "a", base_model_name_or_path=HOSTILE, peft_type="L\nX" * 999)
    report = check(path, card=card_for(path, BASE))
    found = [f"{f.message} {f.hint}" for f in report.by_rule("adapter-config")]
    assert len(found) == 2  # peft_type, and base_model against the release's
    reasons = [s.reason for s in report.rules_skipped if "the release relies on" in s.reason]
    assert reasons  # the rules that skip the files an adapter lacks name its base
    texts = found + reasons
    for text in texts:
        assert "\n" not in text and len(text) < 600, text
    assert any("'org/x\\n::error::forged" in t for t in texts)  # escaped, as Python writes it

"""smoke-generate: a tiny real model that always answers with its turn-end token.

Every weight of a 1-layer Qwen2 is zero except the embeddings (all ones), the norms (ones)
and lm_head's row for ``<|im_end|>`` (ones): attention and MLP add nothing to the residual
stream, the final norm leaves a vector of ones, and ``<|im_end|>`` gets logit 16 against 0
for every other token. Greedy decoding emits it first, whatever the prompt; generation
stops there when it is a stop token and repeats it to the limit when it is not.
"""

from __future__ import annotations

import inspect
import json
import shutil
import time
from pathlib import Path

import pytest

from r1release.checker import ActiveRule, run_rules
from r1release.checkpoint import Checkpoint
from r1release.rules import REGISTRY, smoke_generate
from r1release.rules.base import Context
from r1release.rules.smoke_generate import NEEDS_TORCH, RULE

from factory import build_checkpoint, real_cases, tiny_qwen2, write_json
from helpers import edit_json, rule_findings

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch")

QWEN = "qwen2.5-7b-instruct"  # stop tokens [<|im_end|> 151645, <|endoftext|> 151643]
IM_END, ENDOFTEXT = 151645, 151643


# an opt-in rule runs only when asked: run_rules(..., smoke=True) once the checker has it
ASKED = {"smoke": True} if "smoke" in inspect.signature(run_rules).parameters else {}


def findings(path: Path, **options) -> list:
    """The rule's findings as the checker runs it, with release.yaml-style options."""
    defaults = {o.name: o.default for o in RULE.options}
    active = ActiveRule(RULE, RULE.severity, defaults | options)
    return run_rules(Checkpoint(path), [active], **ASKED)


@pytest.fixture(scope="module")
def _stopping_model(tmp_path_factory) -> Path:
    case = real_cases()[QWEN]
    root = build_checkpoint(tmp_path_factory.mktemp("smoke") / "model", case, shards=1)
    (root / "model.safetensors").unlink()
    model = tiny_qwen2(
        seed=None,  # every weight is set below
        vocab_size=case["config"]["vocab_size"],
        max_position_embeddings=512,
        tie_word_embeddings=False,
        bos_token_id=case["config"]["bos_token_id"],
        eos_token_id=case["config"]["eos_token_id"],
    )
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
        model.model.embed_tokens.weight.fill_(1.0)
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.fill_(1.0)
        model.lm_head.weight[IM_END].fill_(1.0)
    model.to(torch.bfloat16).save_pretrained(root)
    write_json(root / "generation_config.json", case["generation_config"], sort_keys=True)
    return root


@pytest.fixture
def model(_stopping_model, tmp_path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(_stopping_model, target)
    return target


def test_a_model_that_ends_its_turn_passes(model):
    started = time.perf_counter()
    assert findings(model) == []  # the defaults: one prompt, 256 new tokens
    assert time.perf_counter() - started < 30


def test_without_its_stop_token_it_runs_away(model):
    edit_json(model, "generation_config.json", eos_token_id=[ENDOFTEXT])
    [finding] = findings(model, prompts=["What is 7 * 6?", "Hi"], max_new_tokens=24)[:1]
    assert finding.rule == "smoke-generate"
    assert finding.file == "generation_config.json"
    assert finding.message.startswith(
        "prompt 'What is 7 * 6?': generation did not stop: 24 new tokens, "
        "reached max_new_tokens (24); output ends '…"
    )
    assert finding.message.endswith("<|im_end|> <|im_end|>'")  # WordLevel decodes with spaces
    assert "<|im_end|> (151645)" in finding.hint
    assert "not in generation_config.json eos_token_id [<|endoftext|> (151643)]" in finding.hint


def test_with_pad_equal_to_eos_the_hint_names_the_turn_end(model):
    """SmolLM2, DeepSeek, TRL: the pad is the EOS <|im_end|>, which ends the turn."""
    edit_json(model, "tokenizer_config.json", pad_token="<|im_end|>")
    edit_json(model, "generation_config.json", eos_token_id=[ENDOFTEXT], pad_token_id=IM_END)
    [finding] = findings(model, prompts=["Hi"], max_new_tokens=8)
    assert finding.hint.startswith("the model ended its turn with <|im_end|> (151645), which")


def test_every_prompt_is_reported(model):
    edit_json(model, "generation_config.json", eos_token_id=ENDOFTEXT)
    found = findings(model, prompts=["What is 7 * 6?", "Hi"], max_new_tokens=8)
    assert [f.message.split(":")[0] for f in found] == ["prompt 'What is 7 * 6?'", "prompt 'Hi'"]
    assert all("8 new tokens" in f.message for f in found)


def test_in_memory_fixes_are_what_is_tested(model):
    """A staged copy's fixed generation_config.json (an override) is used, not the disk."""
    edit_json(model, "generation_config.json", eos_token_id=ENDOFTEXT)
    checkpoint = Checkpoint(model)
    doc = json.loads((model / "generation_config.json").read_text())
    checkpoint.override("generation_config.json", doc | {"eos_token_id": [IM_END, ENDOFTEXT]})
    ctx = Context(checkpoint, {"prompts": ["Hi"], "max_new_tokens": 8})
    assert list(RULE.check(ctx)) == []


def test_without_torch_one_problem(model, monkeypatch):
    monkeypatch.setattr(smoke_generate, "torch_available", lambda: False)
    [finding] = findings(model)
    assert finding.message == NEEDS_TORCH
    assert finding.message == "smoke-generate needs torch: pip install 'r1release[train]'"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"prompts": []}, "non-empty list"),
        ({"prompts": [""]}, "non-empty list"),
        ({"max_new_tokens": 0}, "positive integer"),
    ],
)
def test_bad_options(model, options, expected):
    [finding] = findings(model, **options)
    assert expected in finding.message


def test_a_model_that_does_not_load_is_reported(model):
    edit_json(model, "config.json", hidden_size=32)  # the weights are 16 wide
    [finding] = findings(model, max_new_tokens=4)
    assert finding.message.startswith("smoke generation could not run: the model does not load")
    assert "expected-tensors" in finding.hint


def test_a_template_that_does_not_render_is_reported(model):
    (model / "chat_template.jinja").write_text("{{ raise_exception('system turn required') }}")
    [finding] = findings(model, max_new_tokens=4)
    assert finding.message.startswith(
        "smoke generation could not run: the chat template (chat_template.jinja) does not "
        "render the prompt"
    )
    assert "system turn required" in finding.message


def test_rule_metadata():
    assert (RULE.id, RULE.name, RULE.severity.value) == ("R701", "smoke-generate", "error")
    assert {o.name: o.default for o in RULE.options} == {
        "prompts": ["What is 7 * 6?"],
        "max_new_tokens": 256,
    }


# ------------------------------------------------------------ once registered (rules/__init__.py)

registered = pytest.mark.skipif(
    "smoke-generate" not in REGISTRY, reason="smoke-generate is not registered yet"
)


@registered
def test_registered_runs_only_with_smoke(model):
    from r1release.checker import check
    from r1release.config import RuleSetting

    edit_json(model, "generation_config.json", eos_token_id=[ENDOFTEXT])
    assert "smoke-generate" not in check(model).rules_run
    assert rule_findings(model, "smoke-generate") == []
    settings = {"smoke-generate": RuleSetting(options={"prompts": ["Hi"], "max_new_tokens": 8})}
    [finding] = rule_findings(model, "smoke-generate", smoke=True, settings=settings)
    assert "8 new tokens" in finding.message


@registered
def test_cli_smoke_uses_release_yaml(model, tmp_path):
    import os

    from click.testing import CliRunner

    from r1release.cli import main

    edit_json(model, "generation_config.json", eos_token_id=[ENDOFTEXT])
    (tmp_path / "release.yaml").write_text(
        "version: 1\n"
        "models:\n"
        "  - name: tiny\n"
        f"    checkpoint: {model}\n"
        "    repo_id: org/tiny\n"
        "smoke:\n"
        "  prompts: ['Hi', 'Bye']\n"
        "  max_new_tokens: 6\n"
    )
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        plain = CliRunner().invoke(main, ["check", "--format", "json", str(model)])
        smoke = CliRunner().invoke(main, ["check", "--smoke", "--format", "json", str(model)])
    finally:
        os.chdir(old)
    assert "smoke-generate" not in json.loads(plain.stdout)["rules_run"]
    found = [f for f in json.loads(smoke.stdout)["findings"] if f["rule"] == "smoke-generate"]
    assert [f["message"].split(":")[0] for f in found] == ["prompt 'Hi'", "prompt 'Bye'"]
    assert all("6 new tokens" in f["message"] for f in found)
    assert smoke.exit_code == 1


def test_generation_is_time_limited(model, monkeypatch):
    """A model that never stops cannot hang the check: each prompt generates for at most
    R1RELEASE_SMOKE_TIMEOUT seconds (transformers' max_time), then the rule says so."""
    edit_json(model, "generation_config.json", eos_token_id=[ENDOFTEXT])  # it runs away
    monkeypatch.setenv("R1RELEASE_SMOKE_TIMEOUT", "0.05")
    started = time.monotonic()
    [finding] = findings(model, prompts=["Hi"], max_new_tokens=100_000)
    assert time.monotonic() - started < 30
    assert "took more than 0.05 s" in finding.message
    assert "R1RELEASE_SMOKE_TIMEOUT" in (finding.hint or "")

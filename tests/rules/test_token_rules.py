"""Tables for the EOS, stop-token and padding rules, and their fixes."""

from __future__ import annotations

import json

import pytest

from r1release.checker import check
from r1release.fixes import apply_fixes, plan_fixes

from helpers import DELETE, edit_json, rule_findings

QWEN = "qwen2.5-7b-instruct"  # tokenizer EOS <|im_end|> 151645, pad <|endoftext|> 151643
LLAMA = "llama-3.1-8b-instruct"  # EOS <|eot_id|> 128009


@pytest.mark.parametrize(
    ("case", "generation", "rule", "expected"),
    [
        (QWEN, {"eos_token_id": [151645, 151643]}, "eos-alignment", 0),
        (QWEN, {"eos_token_id": 151645}, "eos-alignment", 0),
        (QWEN, {"eos_token_id": 151643}, "eos-alignment", 1),
        (QWEN, {"eos_token_id": [151643]}, "eos-alignment", 1),
        (QWEN, {"eos_token_id": DELETE}, "eos-alignment", 1),
        (QWEN, {"eos_token_id": [151643, 151645]}, "eos-alignment", 0),  # order is free
        (LLAMA, {"eos_token_id": [128001, 128008]}, "eos-alignment", 1),
        (LLAMA, {"eos_token_id": [128001, 128008, 128009]}, "eos-alignment", 0),
        (QWEN, {"eos_token_id": 151643}, "chat-template-stop", 1),
        (QWEN, {"eos_token_id": [151645]}, "chat-template-stop", 0),
        (LLAMA, {"eos_token_id": 128001}, "chat-template-stop", 1),
        (QWEN, {"use_cache": False}, "generation-use-cache", 1),
        (QWEN, {"use_cache": True}, "generation-use-cache", 0),
    ],
)
def test_generation_config_table(checkpoint, case, generation, rule, expected):
    path = checkpoint(case)
    edit_json(path, "generation_config.json", **generation)
    assert len(rule_findings(path, rule)) == expected


MISSING = (
    "missing generation_config.json: serving engines read stop tokens and sampling defaults from it"
)
BASE = "qwen2.5-base-after-chatml-sft"  # config.json EOS 151643, tokenizer EOS 151645


@pytest.mark.parametrize(
    ("case", "config", "errors", "created"),
    [
        # transformers stops on config.json's EOS, the tokenizer's: only the warning
        (QWEN, {}, [], 151645),
        (LLAMA, {}, [], [128001, 128008, 128009]),  # config.json's order kept: it holds EOS
        # config.json's EOS is not the tokenizer's: generation will not stop, an error
        # (and the turn end <|im_end|> is not one either, as with the file)
        (BASE, {"use_cache": True}, ["eos-alignment", "chat-template-stop"], [151645, 151643]),
        (QWEN, {"eos_token_id": DELETE}, ["eos-alignment", "chat-template-stop"], [151645]),
        # the chat template's turn end is written too, after config.json's stop tokens
        (QWEN, {"eos_token_id": [151645, 151643]}, [], [151645, 151643]),
    ],
)
def test_missing_generation_config(checkpoint, case, config, errors, created):
    path = checkpoint(case)
    (path / "generation_config.json").unlink()
    edit_json(path, "config.json", **config)
    report = check(path)
    [warning] = report.by_rule("generation-config")
    assert (warning.severity.value, warning.message, warning.fixable) == ("warning", MISSING, True)
    assert warning.file == "generation_config.json"
    assert [f.rule for f in report.errors] == errors
    apply_fixes(plan_fixes(path))
    doc = json.loads((path / "generation_config.json").read_text())
    assert doc["eos_token_id"] == created
    assert not check(path).findings


def test_missing_generation_config_error_names_what_transformers_stops_on(checkpoint):
    path = checkpoint(BASE)
    (path / "generation_config.json").unlink()
    [error] = rule_findings(path, "eos-alignment")
    assert error.message == (
        "generation_config.json is missing, so generate() stops on config.json's eos_token_id, "
        "which is [<|endoftext|> (151643)] and lacks the tokenizer EOS <|im_end|> (151645): "
        "generation will not stop"
    )
    assert error.hint == "run `r1release fix` to create it (eos_token_id [151645, 151643])"


def test_missing_generation_config_turn_end_is_a_stop_token(checkpoint):
    """The tokenizer's EOS is <|endoftext|>: the turn end <|im_end|> must stop generation too
    (an error without the file), and the file the fix writes holds it."""
    path = checkpoint(QWEN)
    (path / "generation_config.json").unlink()
    edit_json(path, "tokenizer_config.json", eos_token="<|endoftext|>")
    edit_json(path, "config.json", eos_token_id=151643)
    report = check(path)
    # transformers stops on config.json's <|endoftext|> only: the turn end runs on
    assert [f.rule for f in report.errors] == ["chat-template-stop"]
    [warning] = report.by_rule("generation-config")
    assert warning.hint == (
        "run `r1release fix` to write it from config.json "
        "(stop tokens [<|endoftext|> (151643), <|im_end|> (151645)])"
    )
    apply_fixes(plan_fixes(path))
    assert json.loads((path / "generation_config.json").read_text())["eos_token_id"] == [
        151643,
        151645,
    ]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # the generation settings config.json holds, not null; nothing else of it
        ({"do_sample": True, "temperature": None, "hidden_size": 8}, {"do_sample": True}),
        ({"pad_token_id": 0}, {"pad_token_id": 0}),
        # a multimodal config: text_config's where the top level has none
        ({"text_config": {"use_cache": False, "top_k": 5}}, {"top_k": 5}),
        # an output_* flag turns return_dict_in_generate on, as in transformers
        ({"output_attentions": True}, {"output_attentions": True, "return_dict_in_generate": True}),
    ],
)
def test_generation_config_from_model_config_table(config, expected):
    from r1release.rules.generation_config import from_model_config

    base = {"model_type": "qwen2", "use_cache": True, "bos_token_id": 1, "eos_token_id": 2}
    assert from_model_config(base | config) == {
        "use_cache": True,
        "bos_token_id": 1,
        "eos_token_id": 2,
        **expected,
    }


@pytest.mark.parametrize(
    ("case", "before", "after"),
    [
        # the fixture's failing case: tokenizer EOS first, the old stop token kept
        (QWEN, 151643, [151645, 151643]),
        # Llama-3.1 without <|eot_id|>: the other stop tokens survive, never one int
        (LLAMA, [128001, 128008], [128009, 128001, 128008]),
        # transformers >= 4.56 prepends the tokenizer EOS at train time: [0, 1] -> [2, 0, 1];
        # a list that already holds the EOS is kept as the Trainer left it
        (LLAMA, [128009, 128001, 128008], [128009, 128001, 128008]),
    ],
)
def test_eos_fix_keeps_stop_tokens(checkpoint, case, before, after):
    path = checkpoint(case)
    edit_json(path, "generation_config.json", eos_token_id=before)
    apply_fixes(plan_fixes(path))
    generation = json.loads((path / "generation_config.json").read_text())
    assert generation["eos_token_id"] == after


def test_chat_template_stop_fix_appends_turn_end(checkpoint):
    path = checkpoint(QWEN)
    # tokenizer EOS switched to <|endoftext|>: EOS is a stop token, the turn end is not
    edit_json(path, "tokenizer_config.json", eos_token="<|endoftext|>")
    edit_json(path, "generation_config.json", eos_token_id=[151643])
    edit_json(path, "config.json", eos_token_id=151643)
    [finding] = rule_findings(path, "chat-template-stop")
    assert "<|im_end|> (151645)" in finding.message
    apply_fixes(plan_fixes(path))
    generation = json.loads((path / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [151643, 151645]


def test_chat_template_from_tokenizer_config(tmp_path, cases):
    from factory import build_checkpoint

    path = build_checkpoint(tmp_path / "c", cases[QWEN], template_in_config=True)
    assert not (path / "chat_template.jinja").exists()
    edit_json(path, "generation_config.json", eos_token_id=151643)
    [finding] = rule_findings(path, "chat-template-stop")
    assert "tokenizer_config.json" in finding.message


@pytest.mark.parametrize(
    ("config_eos", "generation_eos", "expected"),
    [
        (151645, [151645, 151643], 0),  # Qwen2.5-Instruct as published
        ([151645, 151643], [151645, 151643], 0),
        (151643, [151645, 151643], 1),  # lacks the tokenizer EOS
        (151644, [151645, 151643], 1),  # not a stop token at all
        (DELETE, [151645, 151643], 1),
    ],
)
def test_config_eos_consistency_table(checkpoint, config_eos, generation_eos, expected):
    path = checkpoint(QWEN)
    edit_json(path, "config.json", eos_token_id=config_eos)
    edit_json(path, "generation_config.json", eos_token_id=generation_eos)
    assert len(rule_findings(path, "config-eos-consistency")) == expected


@pytest.mark.parametrize(
    ("config_eos", "message"),
    [
        (
            151644,
            "eos_token_id [<|im_start|> (151644)] is not a stop token of generation_config.json, "
            "which stops on [<|im_end|> (151645), <|endoftext|> (151643)]",
        ),
        (
            [151645, 151644, 7],
            "eos_token_id [<|im_end|> (151645), <|im_start|> (151644), w7 (7)]: "
            "[<|im_start|> (151644), w7 (7)] are not stop tokens of generation_config.json, "
            "which stops on [<|im_end|> (151645), <|endoftext|> (151643)]",
        ),
    ],
)
def test_config_eos_consistency_says_it_once(checkpoint, config_eos, message):
    path = checkpoint(QWEN)
    edit_json(path, "config.json", eos_token_id=config_eos)
    [finding] = rule_findings(path, "config-eos-consistency")
    assert finding.message == message


@pytest.mark.parametrize(
    ("pad_token", "pad_id", "stops", "expected"),
    [
        # Qwen2.5-Instruct: pad <|endoftext|> is a genuine end token in the official list
        ("<|endoftext|>", 151643, [151645, 151643], 0),
        # a dedicated <pad> inside the stop list
        ("<pad>", 151646, [151645, 151646], 1),
        ("<pad>", 151646, [151645], 0),
        ("<|finetune_right_pad_id|>", 151647, [151645, 151647], 1),
    ],
)
def test_pad_not_stop_table(checkpoint, pad_token, pad_id, stops, expected):
    path = checkpoint(QWEN)
    tokenizer = json.loads((path / "tokenizer.json").read_text())
    if pad_token not in tokenizer["model"]["vocab"]:
        tokenizer["model"]["vocab"][pad_token] = pad_id
        tokenizer["added_tokens"].append(
            {
                "id": pad_id,
                "content": pad_token,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
        )
        (path / "tokenizer.json").write_text(json.dumps(tokenizer))
    edit_json(path, "tokenizer_config.json", pad_token=pad_token)
    edit_json(path, "generation_config.json", eos_token_id=stops, pad_token_id=pad_id)
    found = rule_findings(path, "pad-not-stop")
    assert len(found) == expected
    if found:
        assert found[0].severity.value == "warning"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"use_cache": False}, ["use_cache"]),
        ({"use_cache": True}, []),
        ({"use_cache": DELETE}, []),
        ({"text_config": {"use_cache": False}}, ["text_config.use_cache"]),
    ],
)
def test_use_cache_table(checkpoint, config, expected):
    path = checkpoint(QWEN)
    edit_json(path, "config.json", **config)
    found = rule_findings(path, "use-cache")
    assert [f.message.split(" ")[0] for f in found] == expected
    if expected:
        apply_fixes(plan_fixes(path))
        assert rule_findings(path, "use-cache") == []


def test_tokenizer_without_eos_cannot_be_fixed(checkpoint):
    path = checkpoint(QWEN)
    edit_json(path, "tokenizer_config.json", eos_token=None)
    edit_json(path, "generation_config.json", eos_token_id=151643)
    [finding] = rule_findings(path, "tokenizer")
    assert "no eos_token" in finding.message
    assert rule_findings(path, "eos-alignment") == []  # nothing to align with


def test_vocab_smaller_than_tokenizer(checkpoint):
    path = checkpoint(QWEN)
    edit_json(path, "config.json", vocab_size=151000)
    [finding] = rule_findings(path, "tokenizer")
    assert "151645" in finding.message and "151000" in finding.message


@pytest.mark.parametrize(("required", "expected"), [(True, 1), (False, 0)])
def test_missing_chat_template(checkpoint, required, expected):
    from r1release.config import RuleSetting

    path = checkpoint(QWEN)
    (path / "chat_template.jinja").unlink()
    settings = {"chat-template": RuleSetting(options={"required": required})}
    assert len(rule_findings(path, "chat-template", settings=settings)) == expected


def test_broken_chat_template(checkpoint):
    path = checkpoint(QWEN)
    (path / "chat_template.jinja").write_text("{% for m in messages %}{{ m.content }")
    [finding] = rule_findings(path, "chat-template")
    assert finding.file == "chat_template.jinja"
    assert "does not render" in finding.message

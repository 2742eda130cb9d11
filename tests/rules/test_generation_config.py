"""generation-config on a checkpoint written by transformers' own save_pretrained, with its
generation_config.json deleted: transformers still stops (it derives the generation config
from config.json), so it is a warning, and the fix writes what transformers derives."""

from __future__ import annotations

import json
import shutil

import pytest

from r1release.checker import check
from r1release.fixes import apply_fixes, plan_fixes
from r1release.rules.generation_config import GENERATION_KEYS

from factory import tiny_qwen2

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch")

IM_END, ENDOFTEXT = 151645, 151643


@pytest.fixture(scope="module")
def _saved(tmp_path_factory, _built):
    from transformers import PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("saved")
    model = tiny_qwen2(bos_token_id=ENDOFTEXT, eos_token_id=IM_END, pad_token_id=ENDOFTEXT)
    model.save_pretrained(out)
    PreTrainedTokenizerFast.from_pretrained(_built["qwen2.5-7b-instruct"]).save_pretrained(out)
    (out / "generation_config.json").unlink()
    return out


@pytest.fixture
def saved(_saved, tmp_path):
    path = tmp_path / "model"
    shutil.copytree(_saved, path)
    return path


def test_transformers_stops_without_the_file_so_it_is_a_warning(saved):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(saved)
    assert model.generation_config.eos_token_id == IM_END  # from config.json
    report = check(saved)
    assert not report.errors
    [warning] = report.warnings
    assert (warning.rule, warning.severity.value, warning.fixable) == (
        "generation-config",
        "warning",
        True,
    )


def test_the_fix_writes_what_from_model_config_derives(saved):
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import METADATA_FIELDS

    config = json.loads((saved / "config.json").read_text())
    derived = GenerationConfig.from_model_config(config).to_diff_dict()
    apply_fixes(plan_fixes(saved))
    written = json.loads((saved / "generation_config.json").read_text())
    assert written["transformers_version"] == config["transformers_version"]
    assert written == {k: v for k, v in derived.items() if k != "_from_model_config"} | {
        "transformers_version": config["transformers_version"]
    }
    assert set(METADATA_FIELDS) & set(written) == {"transformers_version"}
    assert GenerationConfig.from_pretrained(saved).eos_token_id == IM_END
    assert not check(saved).findings


def test_a_config_eos_that_is_not_the_tokenizers_stays_an_error(saved):
    from transformers import GenerationConfig

    config = json.loads((saved / "config.json").read_text())
    (saved / "config.json").write_text(json.dumps(config | {"eos_token_id": ENDOFTEXT}))
    errors = check(saved).errors
    assert [f.rule for f in errors] == ["eos-alignment", "chat-template-stop"]
    assert "generation will not stop" in errors[0].message
    apply_fixes(plan_fixes(saved))
    assert GenerationConfig.from_pretrained(saved).eos_token_id == [IM_END, ENDOFTEXT]
    assert not check(saved).findings


def test_every_generation_setting_of_this_transformers_is_copied():
    """GENERATION_KEYS is transformers 5.24's list; an older transformers knows fewer."""
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import METADATA_FIELDS

    assert set(GenerationConfig().to_dict()) - set(METADATA_FIELDS) <= GENERATION_KEYS

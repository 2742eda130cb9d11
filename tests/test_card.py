"""The model card: complete metadata, a titled body, never None or null."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from r1release.card import ReleaseInfo, render_card, training_summary
from r1release.checkpoint import Checkpoint
from r1release.cli import main
from r1release.config import ModelConfig


def model_config(path, **overrides):
    values = {
        "name": "OpenR1-Tiny",
        "checkpoint": path,
        "repo_id": "org/OpenR1-Tiny",
        "base_model": "Qwen/Qwen2.5-0.5B",
        "dataset_name": "open-r1/Mixture-of-Thoughts",
        "license": "apache-2.0",
    }
    return ModelConfig(**{**values, **overrides})


def metadata_and_body(text):
    assert text.startswith("---\n")
    _, meta, body = text.split("---\n", 2)
    return yaml.safe_load(meta), body


def walk(value):
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)


def test_card_round_trips_through_huggingface_hub(checkpoint, tmp_path):
    from huggingface_hub import ModelCard

    path = checkpoint()
    (path / "all_results.json").write_text(
        json.dumps({"train_loss": 1.25, "train_runtime": 10.5, "epoch": 1.0, "eval_loss": 0.75})
    )
    release = ReleaseInfo(
        version="v1.0.0",
        git_commit="a" * 40,
        date="2026-11-27",
        run_url="https://github.com/o/r/actions/runs/1",
    )
    text = render_card(path, model_config(path), release)
    (tmp_path / "README.md").write_text(text)
    card = ModelCard.load(tmp_path / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0"
    assert data["base_model"] == "Qwen/Qwen2.5-0.5B"
    assert data["datasets"] == ["open-r1/Mixture-of-Thoughts"]
    assert data["tags"] == ["open-r1"]
    assert data["library_name"] == "transformers"
    assert data["pipeline_tag"] == "text-generation"
    assert card.data.model_name == "OpenR1-Tiny"
    # no model-index: the Trainer's eval_loss is a training diagnostic, not a benchmark
    assert card.data.eval_results is None and "model-index" not in text
    meta, body = metadata_and_body(text)
    assert None not in list(walk(meta))
    assert "None" not in body and "null" not in body
    assert body.lstrip().startswith("# OpenR1-Tiny\n")
    for expected in (
        "fine-tuned version of [Qwen/Qwen2.5-0.5B]",
        "open-r1/Mixture-of-Thoughts",
        'model="org/OpenR1-Tiny", revision="v1.0.0"',
        "<|im_start|>user",
        "- `train_loss`: 1.25\n",
        "- `train_runtime`: 10 s\n",
        "- `eval_loss`: 0.75\n",
        "version: `v1.0.0`",
        "git commit: `" + "a" * 40,
        "date: 2026-11-27 (of the git commit)",
        "- Transformers: 4.57.1",
    ):
        assert expected in body, expected
    assert "actions/runs" not in text  # the run belongs to the Hub commit, not the card


def test_minimal_model_has_no_none(checkpoint):
    path = checkpoint()
    text = render_card(path, ModelConfig(name="Bare", checkpoint=path, repo_id="org/bare"))
    meta, body = metadata_and_body(text)
    assert None not in list(walk(meta))
    assert "None" not in text and "null" not in text
    assert meta["model_name"] == "Bare" and meta["tags"] == ["open-r1"]
    assert "## Evaluation" not in body and "## Training" not in body
    assert "## Release" not in body and "## Citations" not in body


def test_custom_tags_replace_default(checkpoint):
    path = checkpoint()
    meta, _ = metadata_and_body(render_card(path, model_config(path, tags=("math", "r1"))))
    assert meta["tags"] == ["math", "r1"]


def test_training_summary_from_trainer_state(checkpoint):
    path = checkpoint()
    (path / "trainer_state.json").write_text(
        json.dumps(
            {
                "global_step": 120,
                "epoch": 2.0,
                "log_history": [
                    {"loss": 2.0, "step": 10},
                    {"train_loss": 1.5, "train_runtime": 30},
                ],
            }
        )
    )
    summary = training_summary(Checkpoint(path))
    assert summary.global_step == 120 and summary.epochs == 2.0
    assert summary.metrics == {"train_loss": 1.5, "train_runtime": 30}


def test_release_info_from_github_environment():
    env = {
        "GITHUB_SHA": "b" * 40,
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_RUN_ID": "77",
        "GITHUB_SERVER_URL": "https://github.com",
    }
    info = ReleaseInfo.from_environment("v2.0.0", env)
    assert info.git_commit == "b" * 40
    assert info.run_url == "https://github.com/o/r/actions/runs/77"
    assert info.run_id == "77"


def test_card_is_the_same_from_any_run_on_any_day(checkpoint, monkeypatch):
    """Nothing volatile in the card: another workflow run, on another (injected) day, renders
    the same bytes; the date shown is the git commit's own."""
    import subprocess
    import time

    path = checkpoint()
    repo = path.parent / "git"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run(
        [*git, "commit", "-q", "--allow-empty", "-m", "x"],
        check=True,
        env={**os.environ, "GIT_COMMITTER_DATE": "2026-03-04T05:06:07Z"},
    )
    sha = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    monkeypatch.chdir(repo)
    cards = []
    for run_id, day in (("100", 1_780_000_000), ("101", 1_790_000_000)):
        monkeypatch.setattr(time, "time", lambda day=day: float(day))  # today's date moves
        env = {"GITHUB_SHA": sha, "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": run_id}
        cards.append(render_card(path, model_config(path), ReleaseInfo.from_environment("v1", env)))
    assert cards[0] == cards[1]
    assert "date: 2026-03-04 (of the git commit)" in cards[0]
    assert "runs/10" not in cards[0]


def _minimal_release_yaml(tmp_path, path) -> None:
    (tmp_path / "release.yaml").write_text(
        f"version: 1\nmodels:\n  - name: tiny\n    checkpoint: {path}\n    repo_id: org/tiny\n"
    )


def test_card_command(checkpoint, tmp_path, monkeypatch):
    path = checkpoint()
    _minimal_release_yaml(tmp_path, path)
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(main, ["card", "--version", "v1.0.0", "-o", "README.md"])
    elsewhere = CliRunner().invoke(main, ["card", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "README.md").read_text().count("# tiny") == 1
    assert elsewhere.exit_code == 2 and "no model of release.yaml" in elsewhere.stderr


def test_card_command_shows_the_benchmarks_release_yaml_names(checkpoint, tmp_path, monkeypatch):
    """`r1release card` renders what a release stages: the `evals:` results included."""
    import shutil

    path = checkpoint()
    data = Path(__file__).parent / "data" / "evals" / "lighteval"
    shutil.copytree(data, tmp_path / "evals")
    (tmp_path / "release.yaml").write_text(
        f"version: 1\nmodels:\n  - name: tiny\n    checkpoint: {path}\n    repo_id: org/tiny\n"
        "    evals: [evals/results_*.json]\n"
    )
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(main, ["card"])
    assert out.exit_code == 0, out.output
    assert "AIME 2024" in out.stdout and "MATH-500" in out.stdout


@pytest.mark.parametrize("template", ["{{ nope }}", "{% if %}"])
def test_bad_template_is_a_clear_error(checkpoint, template):
    from r1release.errors import R1ReleaseError

    path = checkpoint()
    with pytest.raises(R1ReleaseError, match="model card template"):
        render_card(path, model_config(path), template=template)


@pytest.mark.parametrize(
    ("card", "messages"),
    [
        ("---\nlicense: mit\nbase_model: a/b\ndatasets: [d]\ntags: [open-r1]\n---\n# M\n", []),
        (
            "---\nlicense: null\nbase_model: a/b\ndatasets: [d]\ntags: [t]\n---\n",
            ["metadata license is null", "metadata has no license"],
        ),
        (
            "---\nlicence: mit\nbase_model: a/b\ndatasets: [d]\ntags: [t]\n---\n",
            ["metadata has no license"],
        ),
        (
            "---\nlicense: mit\nbase_model: a/b\ndatasets: [d, null]\ntags: [t]\n---\n",
            ["metadata datasets[1] is null"],
        ),
        ("---\nlicense: [unclosed\n---\n", ["metadata is not valid YAML"]),
        ("# no metadata\n", ["the card has no YAML metadata block"]),
    ],
)
def test_card_metadata_rule(checkpoint, card, messages):
    from r1release.checker import check

    found = check(checkpoint(), card=card).by_rule("card-metadata")
    assert [f.message.split(":")[0] for f in found] == [m.split(":")[0] for m in messages]


def test_card_metadata_runs_only_with_a_card(checkpoint):
    from r1release.checker import check

    assert "card-metadata" not in check(checkpoint()).rules_run


def test_check_with_model_validates_the_card(checkpoint, tmp_path, monkeypatch):
    path = checkpoint()
    _minimal_release_yaml(tmp_path, path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", "--format", "json"])
    report = json.loads(result.stdout)
    assert "card-metadata" in report["rules_run"]
    missing = {f["message"] for f in report["findings"] if f["rule"] == "card-metadata"}
    # no license, base_model or datasets in release.yaml: the Hub card would lack them
    assert missing == {
        "metadata has no license",
        "metadata has no base_model",
        "metadata has no datasets",
    }
    assert result.exit_code == 1


def test_card_template_from_release_yaml(checkpoint, tmp_path):
    path = checkpoint()
    (tmp_path / "card.md.j2").write_text("---\n{{ card_data }}\n---\n# {{ model.name }} custom\n")
    (tmp_path / "release.yaml").write_text(
        f"version: 1\nmodels:\n  - name: tiny\n    checkpoint: {path}\n    repo_id: org/tiny\n"
        "card:\n  template: card.md.j2\n"
    )
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = CliRunner().invoke(main, ["card"])
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.output
    assert "# tiny custom" in result.stdout and "model_name: tiny" in result.stdout


# --------------------------------------------------------------------------- issue 14


def _state(path, *entries, **fields):
    (path / "trainer_state.json").write_text(
        json.dumps({"global_step": 2, "log_history": list(entries), **fields})
    )


TRL_GRPO_CARD = (Path(__file__).parent / "data" / "cards" / "grpo" / "README.md").read_text()


@pytest.mark.parametrize(
    ("method", "logged", "trl_card", "expected"),
    [
        ("sft", {"reward": 1.0, "completions/mean_length": 3.0}, "", "SFT"),  # release.yaml wins
        ("GRPO", {}, "", "GRPO"),
        (None, {"mean_token_accuracy": 0.5}, TRL_GRPO_CARD, "GRPO"),  # TRL's card names it
        (None, {"reward": 1.0, "completions/mean_length": 3.0}, "", "GRPO"),
        (None, {"mean_token_accuracy": 0.5, "rewards/margins": 1, "logps/chosen": 1}, "", "DPO"),
        (None, {"kl": 0.1, "rewards/chosen": 1.0, "logps/chosen": 1}, "", "KTO"),
        (None, {"mean_token_accuracy": 0.5, "entropy": 1.0}, "", "SFT"),
        (None, {"loss": 1.0}, "", None),
    ],
)
def test_training_method(checkpoint, method, logged, trl_card, expected):
    path = checkpoint()
    _state(path, {"step": 1, **logged})
    if trl_card:
        (path / "README.md").write_text(trl_card)
    text = render_card(path, model_config(path, method=method))
    meta, body = metadata_and_body(text)
    if expected is None:
        assert meta["tags"] == ["open-r1"] and "trained with" not in body
        assert "## Citations" not in body
    else:
        assert f"This model was trained with {expected}" in body
        assert meta["tags"] == ["open-r1", "trl", expected.lower()]
        assert "@software{vonwerra2020trl," in body


def test_a_method_trl_does_not_cite_is_named_and_tagged(checkpoint):
    path = checkpoint()
    meta, body = metadata_and_body(render_card(path, model_config(path, method="orpo")))
    assert meta["tags"] == ["open-r1", "trl", "orpo"]
    assert "This model was trained with orpo, using [TRL]" in body
    assert "Cite orpo" not in body


def test_method_citation_is_trls(checkpoint):
    path = checkpoint()
    body = render_card(path, model_config(path, method="dpo"))
    assert "(https://huggingface.co/papers/2305.18290)" in body
    assert "@inproceedings{rafailov2023direct," in body and "Cite DPO as:" in body


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1.2094, "1.2 s"),
        (42.4, "42 s"),
        (894, "14 min 54 s"),
        (3600, "1 h 0 min"),
        (7384.6, "2 h 3 min"),
        (200_000, "2 d 7 h"),
    ],
)
def test_duration_has_units(seconds, text):
    from r1release.card import format_duration

    assert format_duration(seconds) == text


def test_training_section_has_units_and_no_timing_as_result(checkpoint):
    path = checkpoint()
    (path / "all_results.json").write_text(
        json.dumps(
            {
                "train_runtime": 894,
                "train_loss": 0.5,
                "eval_loss": 0.75,
                "eval_runtime": 12.0,
                "eval_samples_per_second": 3.0,
                "eval_steps_per_second": 1.0,
            }
        )
    )
    text = render_card(path, model_config(path))
    assert "- `train_runtime`: 14 min 54 s\n" in text and "- `eval_loss`: 0.75\n" in text
    assert "eval_runtime" not in text and "eval_samples_per_second" not in text
    assert "## Evaluation" not in text  # no benchmark results, so no benchmark table


def test_hyperparameters_from_trainer_state(checkpoint):
    path = checkpoint()
    _state(
        path,
        {"learning_rate": 1e-5, "step": 1},
        {"learning_rate": 2e-5, "step": 2},
        {"learning_rate": 1.5e-5, "step": 3},
        train_batch_size=8,
        max_steps=300,
        num_train_epochs=3,
    )
    text = render_card(path, model_config(path))
    for row in (
        "| `learning_rate` | 2e-05 (peak logged) |",
        "| `per_device_train_batch_size` | 8 |",
        "| `num_train_epochs` | 3 |",
        "| `max_steps` | 300 |",
    ):
        assert row in text, row


@pytest.mark.slow
def test_hyperparameters_from_training_args_json(checkpoint, tmp_path):
    """``training_args.json`` as TrainingArguments writes it (``to_json_string``) wins over
    what trainer_state.json records; its nulls and long values never reach the card."""
    from transformers import TrainingArguments

    path = checkpoint()
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        learning_rate=4e-5,
        lr_scheduler_type="cosine",
        warmup_steps=10,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=8,
        num_train_epochs=3,
        bf16=False,
        seed=42,
        report_to=[],
    )
    recorded = json.loads(args.to_json_string())
    recorded |= {"max_length": None, "optim": "x" * 65}  # as a TRL config may hold them
    (path / "training_args.json").write_text(json.dumps(recorded))
    _state(path, {"learning_rate": 1e-3, "step": 1}, train_batch_size=99)
    text = render_card(path, model_config(path))
    for row in (
        "| `learning_rate` | 4e-05 |",
        "| `lr_scheduler_type` | `cosine` |",
        "| `warmup_steps` | 10 |",
        "| `per_device_train_batch_size` | 4 |",
        "| `gradient_accumulation_steps` | 8 |",
        "| `num_train_epochs` | 3 |",
        "| `seed` | 42 |",
        "| `bf16` | false |",
    ):
        assert row in text, row
    assert "peak logged" not in text and "| 99 |" not in text
    assert "`max_length`" not in text and "`optim`" not in text
    assert "None" not in text and "null" not in text


def test_training_args_bin_is_never_unpickled(checkpoint, tmp_path):
    import pickle

    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = checkpoint()
    (path / "training_args.bin").write_bytes(pickle.dumps(Payload()))
    render_card(path, model_config(path))
    assert not marker.exists()


def test_tracking_run_and_framework_versions_from_trls_card(checkpoint):
    path = checkpoint()
    wandb = "https://wandb.ai/open-r1/tiny/runs/abc123xy"
    badge = (
        '[<img src="https://raw.githubusercontent.com/wandb/assets/main/wandb-github-badge-28.svg"'
        f' alt="Visualize in Weights & Biases" width="150" height="24"/>]({wandb}) \n'
    )
    trl_card = TRL_GRPO_CARD.replace(
        "## Training procedure\n\n", "## Training procedure\n\n" + badge
    )
    trl_card = trl_card.replace(
        "- trl\n",
        "- trl\n- trackio:https://org-space.hf.space?project=p&runs=r1&sidebar=collapsed\n",
    )
    (path / "README.md").write_text(trl_card)
    text = render_card(path, model_config(path))
    assert f"Training run: [Weights & Biases]({wandb})\n" in text
    assert "Training run: [Trackio](https://org-space.hf.space?project=p&runs=r1)\n" in text
    assert "- TRL: 1.16.0\n" in text and "- PyTorch: 2.13.0+cpu\n" in text
    assert "- Transformers: 5.24.0\n" in text  # the training run's, over config.json's 4.57.1
    # rendering again over its own output changes nothing (finalize writes README.md)
    (path / "README.md").write_text(text)
    assert render_card(path, model_config(path)) == text


def test_a_forged_tracking_link_is_not_copied(checkpoint):
    path = checkpoint()
    (path / "README.md").write_text("[x](https://wandb.ai.evil.example/a/b/runs/c)\n")
    assert "Training run" not in render_card(path, model_config(path))


@pytest.mark.parametrize(
    ("generation", "expected", "absent"),
    [
        ({"max_new_tokens": 2048}, ["max_new_tokens=4096,"], ["temperature", "do_sample"]),
        ({"max_new_tokens": 32768, "temperature": 0.6}, ["max_new_tokens=32768,"], []),
        (
            {"do_sample": True, "temperature": 0.6, "top_p": 0.95},
            ["max_new_tokens=4096,", "do_sample=True,", "temperature=0.6,", "top_p=0.95,"],
            [],
        ),
        ({"temperature": None, "top_p": "x"}, ["max_new_tokens=4096,"], ["temperature", "top_p"]),
    ],
)
def test_quick_start_uses_the_releases_generation_settings(
    checkpoint, generation, expected, absent
):
    path = checkpoint()
    (path / "generation_config.json").write_text(json.dumps({"eos_token_id": 151645, **generation}))
    text = render_card(path, model_config(path))
    snippet = text.split("```python")[1].split("```")[0]
    for part in expected:
        assert part in snippet, part
    for part in absent:
        assert part not in snippet, part
    assert "max_new_tokens=512" not in text


def test_intended_use_and_limitations_default_and_override(checkpoint):
    path = checkpoint()
    default = render_card(path, model_config(path))
    assert "## Intended use\n\nA reasoning model" in default
    assert "(hallucinations). Verify its answers" in default
    custom = render_card(
        path,
        model_config(
            path, intended_use="  Math tutoring research.\n", limitations="- *English only*."
        ),
    )
    assert (
        "## Intended use\n\nMath tutoring research.\n\n## Limitations\n\n- *English only*.\n"
        in custom
    )
    assert "hallucinations" not in custom


def test_benchmark_rows_stay_in_their_cells(checkpoint):
    from r1release.evals import EvalResult

    path = checkpoint()
    hostile = EvalResult(
        task="a|b\n| x | y |",
        metric="m|n",
        value=0.123456,
        tool="lm-evaluation-harness",
        source="r.json",
    )
    text = render_card(path, model_config(path), evals=[hostile])
    [row] = [line for line in text.splitlines() if line.startswith("| a")]
    assert row == (
        "| a\\|b \\| x \\| y \\| | a\\|b \\| x \\| y \\| | m\\|n | 0.1235 | — | — "
        "| lm-evaluation-harness |"
    )


def test_omitted_local_paths_and_other_license_in_the_card(checkpoint, tmp_path):
    """`local_paths: omit` keeps a local dataset path out of the card's metadata and links;
    `license: other` carries its name and link."""
    from r1release.config import loads

    config = loads(
        "models:\n"
        "- name: m\n  checkpoint: ckpt\n  repo_id: o/m\n  base_model: Qwen/Qwen2.5-0.5B\n"
        "  dataset_name: data/train/chats.jsonl\n  local_paths: omit\n"
        "  license: other\n  license_name: my-license\n  license_link: LICENSE.md\n",
        tmp_path / "release.yaml",
    )
    card = render_card(checkpoint(), config.models[0])
    meta = yaml.safe_load(card.split("---")[1])
    assert "chats.jsonl" not in card and "datasets" not in meta
    assert meta["base_model"] == "Qwen/Qwen2.5-0.5B"
    assert (meta["license"], meta["license_name"], meta["license_link"]) == (
        "other",
        "my-license",
        "LICENSE.md",
    )


@pytest.mark.parametrize(
    ("settings", "text"),
    [
        ({"num_samples": 1}, "1 sample per prompt"),
        ({"num_samples": 4, "temperature": 0.6}, "temperature 0.6, 4 samples per prompt"),
        ({}, "—"),
        ({"temperature": 0.0, "top_p": 0.95, "max_new_tokens": 16}, "greedy, 16 new tokens max"),
    ],
)
def test_generation_settings_read_as_english(settings, text):
    from r1release.card import _generation_text

    assert _generation_text(settings) == text


def test_quick_start_asks_the_smoke_prompt_as_a_python_literal(checkpoint):
    """The release's first `smoke:` prompt is the example; a hostile one stays a string
    inside the code fence (quotes escaped, backticks as \\u0060)."""
    import ast

    from r1release.card import smoke_prompt
    from r1release.config import RuleSetting

    path = checkpoint()
    prompt = 'Sum 1..10 "twice"?\n```\n# Injected'
    settings = {"smoke-generate": RuleSetting(options={"prompts": [prompt, "other"]})}
    assert smoke_prompt(settings) == prompt and smoke_prompt(None) is None
    text = render_card(path, model_config(path), prompt=smoke_prompt(settings))
    snippet = text.split("```python\n")[1].split("\n```\n")[0]
    line = next(x for x in snippet.splitlines() if x.startswith("messages = "))
    assert ast.literal_eval(line.removeprefix("messages = ")) == [
        {"role": "user", "content": prompt}
    ]
    assert "# Injected" not in [x.strip() for x in snippet.splitlines()]
    example = text.split("The chat template formats that conversation as:\n\n")[1]
    assert example.startswith("````text\n")  # longer than the prompt's ``` run


def test_chat_template_output_cannot_close_its_fence(checkpoint):
    """The chat template comes from the base model: its output with a ``` run gets a longer
    fence, so nothing it prints becomes Markdown of the card."""
    path = checkpoint()
    (path / "chat_template.jinja").write_text(
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n```\n# Owned\n````"
        "{{ m['content'] }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n"
    )
    text = render_card(path, model_config(path))
    example = text.split("The chat template formats that conversation as:\n\n")[1]
    fence = example.split("text\n")[0]
    assert fence == "`````"
    assert example.split("\n" + fence + "\n")[0].count("# Owned") == 1


# --- untrusted input: numbers, names and strings from the checkpoint and release.yaml ------

INJECTED = "\n\n## Injected\n![t](https://evil.example/t.png)"


def test_numbers_too_large_for_a_float_are_left_out(checkpoint):
    """``10**400`` in all_results.json or trainer_state.json is no metric (``float()`` of it
    raises); an integer of over 4300 digits makes the file unreadable: both are skipped."""
    path = checkpoint()
    (path / "all_results.json").write_text(
        json.dumps({"train_loss": 10**400, "train_runtime": 12.0, "epoch": 10**400})
    )
    (path / "train_results.json").write_text('{"train_loss": ' + "9" * 5000 + "}")
    _state(path, {"learning_rate": 10**400, "train_x": 10**400, "step": 1}, epoch=10**400)
    (path / "generation_config.json").write_text(
        json.dumps({"eos_token_id": 151645, "temperature": 10**400, "top_p": 0.9})
    )
    text = render_card(path, model_config(path))
    assert "- `train_runtime`: 12 s\n" in text and "train_loss" not in text
    assert "train_x" not in text and "epochs" not in text and "peak logged" not in text
    assert "temperature" not in text and "top_p=0.9," in text


def test_metric_names_cannot_write_markdown(checkpoint):
    path = checkpoint()
    (path / "all_results.json").write_text(
        json.dumps({f"train_x{INJECTED}": 1.0, "eval_x<img src=x>": 2.0, "train_loss": 0.5})
    )
    _state(path, {f"eval_y{INJECTED}": 3.0, "eval_rewards/chosen": 0.25, "step": 1})
    text = render_card(path, model_config(path))
    assert "Injected" not in text and "evil" not in text and "<img" not in text
    assert "- `train_loss`: 0.5\n" in text and "- `eval_rewards/chosen`: 0.25\n" in text
    summary = training_summary(Checkpoint(path))
    assert set(summary.metrics) == {"train_loss"}  # what a custom template gets, too
    assert set(summary.eval_metrics) == {"eval_rewards/chosen"}


def test_the_number_of_metrics_is_bounded(checkpoint):
    from r1release.card import MAX_METRICS

    path = checkpoint()
    (path / "all_results.json").write_text(
        json.dumps({f"train_m{i:05}": 1.0 for i in range(10_000)})
    )
    text = render_card(path, model_config(path))
    assert text.count("- `train_m") == MAX_METRICS and "- `train_m00000`: 1\n" in text


def test_hyperparameter_values_and_tracking_links_are_plain_and_bounded(checkpoint):
    path = checkpoint()
    (path / "training_args.json").write_text(
        json.dumps(
            {
                "lr_scheduler_type": "_cosine_",
                "optim": "adamw\n## Injected",
                "loss_type": "ｄｒ",  # a Unicode lookalike
            }
        )
    )
    long_run = "https://wandb.ai/o/" + "p" * 10_000 + "/runs/abc"
    (path / "README.md").write_text(f"[w]({long_run})\n")
    text = render_card(path, model_config(path))
    assert "| `lr_scheduler_type` | `_cosine_` |" in text
    assert "Injected" not in text and "`optim`" not in text and "`loss_type`" not in text
    assert "Training run" not in text and "ppp" not in text


def test_a_method_name_from_release_yaml_stays_one_escaped_phrase(checkpoint):
    path = checkpoint()
    text = render_card(path, model_config(path, method=f"My*RL*{INJECTED}"))
    assert "This model was trained with My&#42;RL&#42; ## Injected !&#91;t&#93;(https&#58;" in text
    assert "\n## Injected" not in text and "![t]" not in text


def test_long_card_sections_in_release_yaml_are_refused(tmp_path):
    from r1release.config import MAX_SECTION_CHARS, loads
    from r1release.errors import ConfigError

    head = "models:\n- name: m\n  checkpoint: ckpt\n  repo_id: o/m\n"
    with pytest.raises(ConfigError) as caught:
        loads(head + f"  limitations: {'x' * (MAX_SECTION_CHARS + 1)}\n", tmp_path / "r.yaml")
    assert "limitations" in str(caught.value) and caught.value.line == 5
    with pytest.raises(ConfigError, match="method"):
        loads(head + f"  method: {'x' * 65}\n", tmp_path / "r.yaml")


def test_quick_start_loads_any_local_path_as_a_python_string(checkpoint):
    """finalize passes the checkpoint's absolute path: quotes, backslashes and backticks in it
    stay inside the Python strings of the snippet."""
    import ast

    path = checkpoint()
    local = '/data/run "1"\\out`x`'
    text = render_card(path, model_config(path), ReleaseInfo(version="v1.0.0"), model_ref=local)
    snippet = text.split("```python\n")[1].split("\n```\n")[0]
    line = next(x for x in snippet.splitlines() if x.startswith("generator = "))
    call = ast.parse(line).body[0].value
    assert ast.literal_eval(call.keywords[0].value) == local
    assert ast.literal_eval(call.keywords[1].value) == "v1.0.0"


def test_an_adapters_peft_type_is_no_markdown(tmp_path):
    from adapter_factory import write_adapter

    path = write_adapter(tmp_path / "a", peft_type=f"LORA{INJECTED}")
    text = render_card(path, model_config(path))
    assert "Injected" not in text and "A PEFT adapter for" in text
    snippet = text.split("```python\n")[1].split("\n```\n")[0]
    assert 'from_pretrained("org/OpenR1-Tiny")' in snippet  # no version: no revision

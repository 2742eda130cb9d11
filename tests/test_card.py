"""The model card: complete metadata, a titled body, never None or null."""

from __future__ import annotations

import json
import os

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
    [result] = card.data.eval_results
    assert (result.metric_type, result.metric_value) == ("loss", 0.75)
    meta, body = metadata_and_body(text)
    assert None not in list(walk(meta))
    assert "None" not in body and "null" not in body
    assert body.lstrip().startswith("# OpenR1-Tiny\n")
    for expected in (
        "fine-tuned version of [Qwen/Qwen2.5-0.5B]",
        "open-r1/Mixture-of-Thoughts",
        'model="org/OpenR1-Tiny", revision="v1.0.0"',
        "<|im_start|>user",
        "train_loss: 1.25",
        "| eval_loss | 0.75 |",
        "version: `v1.0.0`",
        "git commit: `" + "a" * 40,
        "date: 2026-11-27 (of the git commit)",
        "transformers: 4.57.1",
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

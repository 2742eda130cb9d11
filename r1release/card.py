"""The model card: a pure function from checkpoint + release.yaml model + release info to text.

Metadata goes through huggingface_hub's ``ModelCardData`` (so the YAML is what the Hub
expects); the body is a Jinja template (``DEFAULT_TEMPLATE``, or one named in release.yaml)
rendered with values that are never ``None``: a missing value leaves its line out.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from r1release.checkpoint import (
    MAX_JSON,
    Checkpoint,
    TemplateTimeout,
    template_timeout,
    time_limit,
)
from r1release.config import ModelConfig
from r1release.errors import FileUnreadable, R1ReleaseError

RESULT_FILES = ("all_results.json", "train_results.json", "eval_results.json")


@dataclass(frozen=True)
class ReleaseInfo:
    """What identifies one release: version, git commit and that commit's date.

    A release's content is a function of the checkpoint, release.yaml, the version and the
    git commit only, so the card holds nothing volatile: ``date`` is the git commit's own date
    (not today's), and the workflow run (``run_url``, ``run_id``) goes only into the Hub
    commit's description, the job summary and the step outputs, never into the card.
    """

    version: str | None = None
    git_commit: str | None = None
    date: str | None = None  # the git commit's date (YYYY-MM-DD), when known
    run_url: str | None = None
    run_id: str | None = None

    @classmethod
    def from_environment(
        cls, version: str | None = None, env: Mapping[str, str] | None = None
    ) -> ReleaseInfo:
        """Read the commit and run from GitHub Actions' variables, else from git."""
        env = os.environ if env is None else env
        commit = env.get("GITHUB_SHA") or _git(["rev-parse", "HEAD"])
        if commit is not None and not re.fullmatch(r"[0-9a-f]{40}", commit):
            commit = None
        date = _git(["show", "-s", "--format=%cs", commit]) if commit else None
        if date is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
            date = None
        run_url, run_id = None, env.get("GITHUB_RUN_ID") or None
        if run_id and env.get("GITHUB_REPOSITORY"):
            server = env.get("GITHUB_SERVER_URL", "https://github.com")
            run_url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{run_id}"
        return cls(version=version, git_commit=commit, date=date, run_url=run_url, run_id=run_id)


def _git(args: list[str]) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = out.stdout.strip()
    return value if out.returncode == 0 and value else None


@dataclass(frozen=True)
class TrainingSummary:
    metrics: dict[str, float | int]  # train_* and epoch, from the results files
    eval_metrics: dict[str, float | int]  # eval_*
    global_step: int | None = None
    epochs: float | None = None
    log_history_steps: int = 0


def training_summary(checkpoint: Checkpoint) -> TrainingSummary:
    """Metrics from ``trainer_state.json`` / ``all_results.json`` / ``train_results.json``."""
    metrics: dict[str, float | int] = {}
    for name in RESULT_FILES:
        for key, value in _json_or_empty(checkpoint, name).items():
            if _is_number(value):
                metrics.setdefault(key, value)
    state = _json_or_empty(checkpoint, "trainer_state.json")
    history = state.get("log_history") if isinstance(state.get("log_history"), list) else []
    for entry in reversed(history):
        if isinstance(entry, dict):
            for key, value in entry.items():
                if key.startswith(("train_", "eval_")) and _is_number(value):
                    metrics.setdefault(key, value)
    step = state.get("global_step")
    epoch = state.get("epoch", metrics.get("epoch"))
    return TrainingSummary(
        metrics={k: v for k, v in metrics.items() if k.startswith("train_")},
        eval_metrics={k: v for k, v in metrics.items() if k.startswith("eval_")},
        global_step=step if isinstance(step, int) and not isinstance(step, bool) else None,
        epochs=float(epoch) if _is_number(epoch) else None,
        log_history_steps=len(history),
    )


def _json_or_empty(checkpoint: Checkpoint, name: str) -> dict[str, Any]:
    entry = checkpoint.entry(name)
    if entry is None or entry.is_dir or entry.size > MAX_JSON:
        return {}
    try:
        doc = json.loads(checkpoint.raw_text(name))
    except (FileUnreadable, ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def card_data(model: ModelConfig, summary: TrainingSummary) -> Any:
    """The card's YAML metadata as ``huggingface_hub.ModelCardData`` (no null values)."""
    from huggingface_hub import EvalResult, ModelCardData

    dataset = model.dataset_name
    eval_results = [
        EvalResult(
            task_type="text-generation",
            dataset_type=dataset or "custom",
            dataset_name=dataset or "evaluation set",
            metric_type=key.removeprefix("eval_"),
            metric_name=key,
            metric_value=value,
        )
        for key, value in sorted(summary.eval_metrics.items())
    ]
    values: dict[str, Any] = {
        "license": model.license,
        "base_model": model.base_model,
        "datasets": [dataset] if dataset else None,
        "tags": list(model.tags) or None,
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "model_name": model.name,
        "eval_results": eval_results or None,
    }
    return ModelCardData(**{k: v for k, v in values.items() if v is not None})


DEFAULT_TEMPLATE = """\
---
{{ card_data }}
---

# {{ model.name }}

{% if base_link and dataset_link -%}
This model is a fine-tuned version of {{ base_link }} on the {{ dataset_link }} dataset.
{%- elif base_link -%}
This model is a fine-tuned version of {{ base_link }}.
{%- elif dataset_link -%}
This model was trained on the {{ dataset_link }} dataset.
{%- else -%}
A text-generation model released with r1release.
{%- endif %}

## Quick start

```python
from transformers import pipeline

generator = pipeline("text-generation", model="{{ model_ref }}"\
{% if release.version %}, revision="{{ release.version }}"{% endif %})
messages = [{"role": "user", "content": "What is 7 * 6?"}]
output = generator(messages, max_new_tokens=512, return_full_text=False)
print(output[0]["generated_text"])
```
{% if prompt_example %}
The chat template formats that conversation as:

```text
{{ prompt_example }}
```
{% endif %}
{%- if summary.metrics or summary.global_step %}
## Training

{% if summary.global_step %}- steps: {{ summary.global_step }}
{% endif %}{% if summary.epochs is not none %}- epochs: {{ "%.2f"|format(summary.epochs) }}
{% endif %}{% for key, value in summary.metrics|dictsort %}- {{ key }}: {{ fmt(value) }}
{% endfor %}{% endif %}
{%- if summary.eval_metrics %}
## Evaluation

| metric | value |
|---|---|
{% for key, value in summary.eval_metrics|dictsort %}| {{ key }} | {{ fmt(value) }} |
{% endfor %}{% endif %}
## Release

{% if release.version %}- version: `{{ release.version }}`
{% endif %}{% if release.git_commit %}- git commit: `{{ release.git_commit }}`
{% endif %}{% if release.date %}- date: {{ release.date }} (of the git commit)
{% endif %}
{%- if versions %}
## Framework versions

{% for name, version in versions|dictsort %}- {{ name }}: {{ version }}
{% endfor %}{% endif %}"""


def framework_versions(checkpoint: Checkpoint) -> dict[str, str]:
    """Versions recorded in the checkpoint itself (not those of this machine)."""
    found: dict[str, str] = {}
    for name in ("config.json", "generation_config.json", "trainer_state.json"):
        doc = _json_or_empty(checkpoint, name)
        for key, label in (("transformers_version", "transformers"), ("trl_version", "trl")):
            if isinstance(doc.get(key), str):
                found.setdefault(label, doc[key])
    return found


def render_card(
    checkpoint: Checkpoint | str | os.PathLike[str],
    model: ModelConfig,
    release: ReleaseInfo | None = None,
    template: str | None = None,
    model_ref: str | None = None,
) -> str:
    """The complete README.md model card for ``model`` at ``checkpoint``.

    ``model_ref`` is what the quick-start snippet loads (default: the Hub repo id).
    """
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint(checkpoint)
    summary = training_summary(ckpt)
    context = {
        "card_data": card_data(model, summary).to_yaml(),
        "model": model,
        "model_ref": model_ref or model.repo_id,
        "base_link": _link(model.base_model, ""),
        "dataset_link": _link(model.dataset_name, "datasets/"),
        # Plain data, and only what is deterministic: no run id or URL reaches a template.
        "release": _release_data(release or ReleaseInfo()),
        "summary": summary,
        "prompt_example": _prompt_example(ckpt),
        "versions": framework_versions(ckpt),
        "fmt": _fmt,
    }
    # Sandboxed (no attribute walk to Python internals) and time-limited, like chat templates.
    env = ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    try:
        with time_limit(template_timeout()):
            text = env.from_string(template or DEFAULT_TEMPLATE).render(context)
    except (jinja2.TemplateError, RecursionError, TemplateTimeout) as exc:
        raise R1ReleaseError(f"model card template: {exc}", hint="fix the card template") from None
    return text.rstrip() + "\n"


def _release_data(release: ReleaseInfo) -> dict[str, str | None]:
    return {"version": release.version, "git_commit": release.git_commit, "date": release.date}


def _prompt_example(checkpoint: Checkpoint) -> str | None:
    template = None
    try:
        template = checkpoint.chat_template()
        if template is None or not checkpoint.has_tokenizer():
            return None
        checkpoint.turn_end_ids()  # renders once (cached): a broken template raises here
        tok = checkpoint.tokenizer()
        return template.render(
            tok, [{"role": "user", "content": "What is 7 * 6?"}], add_generation_prompt=True
        )
    except Exception:  # the chat-template rule reports a broken template
        return None


def _link(repo_id: str | None, kind: str) -> str | None:
    return f"[{repo_id}](https://huggingface.co/{kind}{repo_id})" if repo_id else None


def _fmt(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"

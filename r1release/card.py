"""The model card: a pure function from checkpoint + release.yaml model + release info to text.

Metadata goes through huggingface_hub's ``ModelCardData`` (so the YAML is what the Hub
expects); the body is a Jinja template (``DEFAULT_TEMPLATE``, or one named in release.yaml)
rendered with values that are never ``None``: a missing value leaves its line out.

What the card says comes from what the checkpoint records, never from this machine or the
clock: the training method (release.yaml's ``method``, else TRL's own card beside the
weights, else the metrics TRL's trainers log), hyperparameters from ``trainer_state.json``
and ``training_args.json`` (``training_args.bin`` is a pickle and is never read), the
tracking run and framework versions that TRL's card recorded, and the release's own
generation settings for the quick start.

Benchmark results (:class:`~r1release.evals.EvalResult`) go into the body's table only. The
card has no ``model-index``: huggingface_hub 2.4 documents it as the legacy format
(``EvalResult`` in ``repocard_data.py``) next to the current ``.eval_results/*.yaml``
(``EvalResultEntry``), which the release writes from the same results; a second copy in the
metadata could only disagree with it. The Trainer's own ``eval_*`` metrics (a loss on a
held-out split) are training diagnostics, shown in the training section, never as a benchmark.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import subprocess
from collections.abc import (
    Callable,
    ItemsView,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
    Sized,
    ValuesView,
)
from dataclasses import dataclass
from types import GeneratorType
from typing import Any

from r1release.checkpoint import (
    ADAPTER,
    MAX_JSON,
    Checkpoint,
    TemplateTimeout,
    template_timeout,
    time_limit,
)
from r1release.ci import summary_text
from r1release.config import ModelConfig
from r1release.errors import FileUnreadable, R1ReleaseError
from r1release.evals import BENCHMARKS, Benchmark, EvalResult, finite_number

RESULT_FILES = ("all_results.json", "train_results.json", "eval_results.json")
NOT_RESULTS = ("_runtime", "_samples_per_second", "_steps_per_second")
"""Suffixes of Trainer metrics that measure the machine, not the model."""
METRIC_NAME = re.compile(r"[A-Za-z0-9_./@-]{1,64}")
"""A Trainer metric name the card shows (``train_loss``, ``eval_rewards/chosen``): any other
key of the untrusted results files is left out, so none can write Markdown into the card."""
MAX_METRICS = 64
"""The most ``train_*`` and ``eval_*`` metrics the card lists (by name, each kind)."""
REASONING_TOKENS = 4096
"""The quick start's least ``max_new_tokens``: an R1-style model thinks for thousands of
tokens before it answers (open-r1 evaluates with 32768), so 512 or a short
``generation_config.json`` value cuts the trace off before the answer; a larger recorded
value is kept."""


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
    metrics: dict[str, float | int]  # train_*, from the results files and the log history
    eval_metrics: dict[str, float | int]  # eval_* results (timings left out)
    global_step: int | None = None
    epochs: float | None = None
    log_history_steps: int = 0


def training_summary(checkpoint: Checkpoint) -> TrainingSummary:
    """Metrics from ``trainer_state.json`` / ``all_results.json`` / ``train_results.json``."""
    metrics: dict[str, float | int] = {}
    for name in RESULT_FILES:
        for key, value in _json_or_empty(checkpoint, name).items():
            if finite_number(value):
                metrics.setdefault(key, value)
    state = _json_or_empty(checkpoint, "trainer_state.json")
    history = _log_history(state)
    for entry in reversed(history):
        for key, value in entry.items():
            if key.startswith(("train_", "eval_")) and finite_number(value):
                metrics.setdefault(key, value)
    step = state.get("global_step")
    epoch = state.get("epoch", metrics.get("epoch"))
    return TrainingSummary(
        metrics=_shown_metrics(metrics, lambda k: k.startswith("train_")),
        eval_metrics=_shown_metrics(metrics, _is_eval_result),
        global_step=step if _is_count(step) else None,
        epochs=float(epoch) if finite_number(epoch) else None,
        log_history_steps=len(history),
    )


def _shown_metrics(
    metrics: Mapping[str, float | int], kind: Callable[[str], bool]
) -> dict[str, float | int]:
    """The metrics of one ``kind`` the card may show: plain names only
    (:data:`METRIC_NAME`), the first :data:`MAX_METRICS` by name."""
    names = sorted(k for k in metrics if METRIC_NAME.fullmatch(k) and kind(k))
    return {k: metrics[k] for k in names[:MAX_METRICS]}


def _is_eval_result(key: str) -> bool:
    """An ``eval_*`` metric of the model (``eval_runtime`` and the like time the machine)."""
    return key.startswith("eval_") and not key.endswith(NOT_RESULTS)


def _log_history(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    history = state.get("log_history")
    return [e for e in history if isinstance(e, dict)] if isinstance(history, list) else []


def _json_or_empty(checkpoint: Checkpoint, name: str) -> dict[str, Any]:
    entry = checkpoint.entry(name)
    if entry is None or entry.is_dir or entry.size > MAX_JSON:
        return {}
    try:
        doc = json.loads(checkpoint.raw_text(name))
    except (FileUnreadable, ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _text_or_empty(checkpoint: Checkpoint, name: str) -> str:
    entry = checkpoint.entry(name)
    if entry is None or entry.is_dir or entry.size > MAX_JSON:
        return ""
    try:
        return checkpoint.raw_text(name)
    except FileUnreadable:
        return ""


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# ---------------------------------------------------------------------------------------
# The training method and what the run recorded
# ---------------------------------------------------------------------------------------

TRL_CITATION = """\
@software{vonwerra2020trl,
  title   = {{TRL: Transformers Reinforcement Learning}},
  author  = {von Werra, Leandro and Belkada, Younes and Tunstall, Lewis and Beeching, Edward \
and Thrush, Tristan and Lambert, Nathan and Huang, Shengyi and Rasul, Kashif and Gallouédec, \
Quentin},
  license = {Apache-2.0},
  url     = {https://github.com/huggingface/trl},
  year    = {2020}
}"""


@dataclass(frozen=True)
class Method:
    """A training method as TRL's trainer names it (``_name``, ``_tag_names``, ``_paper``)."""

    name: str
    tag: str
    paper_title: str | None = None
    paper_id: str | None = None
    citation: str | None = None


# Copied from TRL 1.16's trainers (their ``_paper`` attributes), so the card cites what
# TRL's own card cites.
METHODS: dict[str, Method] = {
    "sft": Method("SFT", "sft"),
    "grpo": Method(
        "GRPO",
        "grpo",
        "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models",
        "2402.03300",
        """\
@article{shao2024deepseekmath,
    title        = {{DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language \
Models}},
    author       = {Zhihong Shao and Peiyi Wang and Qihao Zhu and Runxin Xu and Junxiao Song \
and Mingchuan Zhang and Y. K. Li and Y. Wu and Daya Guo},
    year         = 2024,
    eprint       = {arXiv:2402.03300},
}""",
    ),
    "dpo": Method(
        "DPO",
        "dpo",
        "Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
        "2305.18290",
        """\
@inproceedings{rafailov2023direct,
    title        = {{Direct Preference Optimization: Your Language Model is Secretly a Reward \
Model}},
    author       = {Rafael Rafailov and Archit Sharma and Eric Mitchell and Christopher D. \
Manning and Stefano Ermon and Chelsea Finn},
    year         = 2023,
    booktitle    = {Advances in Neural Information Processing Systems 36: Annual Conference on \
Neural Information Processing Systems 2023, NeurIPS 2023, New Orleans, LA, USA, December 10 - \
16, 2023},
    url          = {http://papers.nips.cc/paper_files/paper/2023/hash/\
a85b405ed65c6477a4fe8302b5e06ce7-Abstract-Conference.html},
    editor       = {Alice Oh and Tristan Naumann and Amir Globerson and Kate Saenko and Moritz \
Hardt and Sergey Levine},
}""",
    ),
    "kto": Method(
        "KTO",
        "kto",
        "KTO: Model Alignment as Prospect Theoretic Optimization",
        "2402.01306",
        """\
@article{ethayarajh2024kto,
    title        = {{KTO: Model Alignment as Prospect Theoretic Optimization}},
    author       = {Kawin Ethayarajh and Winnie Xu and Niklas Muennighoff and Dan Jurafsky and \
Douwe Kiela},
    year         = 2024,
    eprint       = {arXiv:2402.01306},
}""",
    ),
    "rloo": Method(
        "RLOO",
        "rloo",
        "Back to Basics: Revisiting REINFORCE-Style Optimization for Learning from Human "
        "Feedback in LLMs",
        "2402.14740",
        """\
@inproceedings{ahmadian2024back,
    title        = {{Back to Basics: Revisiting REINFORCE-Style Optimization for Learning from \
Human Feedback in LLMs}},
    author       = {Arash Ahmadian and Chris Cremer and Matthias Gall{\\'{e}} and Marzieh Fadaee \
and Julia Kreutzer and Olivier Pietquin and Ahmet {\\"{U}}st{\\"{u}}n and Sara Hooker},
    year         = 2024,
    booktitle    = {Proceedings of the 62nd Annual Meeting of the Association for Computational \
Linguistics (Volume 1: Long Papers), {ACL} 2024, Bangkok, Thailand, August 11-16, 2024},
    pages        = {12248--12267},
    publisher    = {Association for Computational Linguistics},
    editor       = {Lun{-}Wei Ku and Andre Martins and Vivek Srikumar},
}""",
    ),
}
_METHOD_TAG = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")

# What each trainer logs that the others do not (TRL 1.16's ``_metrics`` keys), most specific
# first: DPO also logs ``mean_token_accuracy``; RLOO logs the same keys as GRPO, so a
# checkpoint from RLOO without TRL's card needs ``method: rloo`` in release.yaml.
_LOGGED_BY = (
    ("kto", frozenset({"kl", "rewards/chosen"})),
    ("dpo", frozenset({"rewards/margins", "logps/chosen"})),
    ("grpo", frozenset({"reward", "completions/mean_length"})),
    ("sft", frozenset({"mean_token_accuracy"})),
)


def training_method(
    model: ModelConfig, history: Sequence[Mapping[str, Any]], trl_card: str
) -> Method | None:
    """release.yaml's ``method``; else the one TRL's card names ("This model was trained with
    GRPO"); else the one whose metrics the log history holds; else None."""
    if model.method:
        key = model.method.strip().lower()
        if key in METHODS:
            return METHODS[key]
        tag = key if _METHOD_TAG.fullmatch(key) else ""
        return Method(_cell(model.method, 64), tag)
    named = re.search(r"^This model was trained with ([A-Za-z][\w -]{0,31}?)[,.]", trl_card, re.M)
    if named:
        for method in METHODS.values():
            if method.name == named.group(1):
                return method
    logged = {key for entry in history for key in entry}
    for key, needs in _LOGGED_BY:
        if needs <= logged:
            return METHODS[key]
    return None


# ASCII only and each part bounded: the card copies the URL into a link.
_TRACKERS = (
    (
        "Weights & Biases",
        re.compile(r"https://wandb\.ai/[\w.-]{1,64}/[\w.-]{1,128}/runs/[\w-]{1,64}", re.A),
    ),
    (
        "Trackio",
        re.compile(
            r"https://[a-z0-9-]{1,63}\.hf\.space/?\?project=[\w.%-]{1,128}&runs=[\w.%-]{1,128}",
            re.A,
        ),
    ),
    ("Comet", re.compile(r"https://www\.comet\.com/[\w.-]{1,64}/[\w.-]{1,128}/[\w-]{1,64}", re.A)),
)


def tracking_runs(trl_card: str) -> list[list[str]]:
    """The experiment-tracking runs TRL's card links (its badges and its ``trackio:`` tag),
    as ``[label, url]``: the first link of each tracker, matched strictly (the card is
    untrusted text)."""
    found = []
    for label, pattern in _TRACKERS:
        match = pattern.search(trl_card)
        if match:
            found.append([label, match.group(0)])
    return found


_FRAMEWORKS = {
    "trl": "TRL",
    "transformers": "Transformers",
    "pytorch": "PyTorch",
    "torch": "PyTorch",
    "datasets": "Datasets",
    "tokenizers": "Tokenizers",
    "accelerate": "Accelerate",
    "peft": "PEFT",
}
_VERSION = r"[0-9][0-9A-Za-z.+!-]{0,63}"


def framework_versions(checkpoint: Checkpoint, trl_card: str | None = None) -> dict[str, str]:
    """Versions recorded by the training run (TRL's card lists its environment), else those
    the saved files name (``transformers_version``); never this machine's."""
    card = _text_or_empty(checkpoint, "README.md") if trl_card is None else trl_card
    found: dict[str, str] = {}
    section = re.search(r"^#+ Framework versions\n((?:\n|- .*\n)*)", card, re.M | re.I)
    for line in section.group(1).splitlines() if section else ():
        match = re.fullmatch(rf"- ([A-Za-z]+): ({_VERSION})\s*", line)
        if match and match.group(1).lower() in _FRAMEWORKS:
            found.setdefault(_FRAMEWORKS[match.group(1).lower()], match.group(2))
    for name in ("config.json", "generation_config.json", "trainer_state.json"):
        doc = _json_or_empty(checkpoint, name)
        for key, label in (("transformers_version", "Transformers"), ("trl_version", "TRL")):
            if isinstance(doc.get(key), str) and re.fullmatch(_VERSION, doc[key]):
                found.setdefault(label, doc[key])
    return found


# training_args.json keys worth a card row (TrainingArguments / TRL configs), in this order.
_ARGS = (
    "learning_rate",
    "lr_scheduler_type",
    "warmup_ratio",
    "warmup_steps",
    "weight_decay",
    "optim",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "seed",
    "bf16",
    "fp16",
    "gradient_checkpointing",
    "max_length",
    "packing",
    "num_generations",
    "max_completion_length",
    "temperature",
    "beta",
    "loss_type",
)


def hyperparameters(state: Mapping[str, Any], args: Mapping[str, Any]) -> list[list[str]]:
    """``[name, value]`` rows: ``training_args.json`` when the run wrote one, else what
    ``trainer_state.json`` records of the arguments (per-device batch size, step and epoch
    budget, and the peak logged learning rate)."""
    texts = {name: _arg_text(args.get(name)) for name in _ARGS}
    rows = {name: text for name, text in texts.items() if text is not None}
    rates = [
        e["learning_rate"] for e in _log_history(state) if finite_number(e.get("learning_rate"))
    ]
    recorded = {
        "learning_rate": f"{_fmt(max(rates))} (peak logged)" if rates else None,
        "per_device_train_batch_size": _count_text(state.get("train_batch_size")),
        "num_train_epochs": _count_text(state.get("num_train_epochs")),
        "max_steps": _count_text(state.get("max_steps")),
    }
    for name, text in recorded.items():
        if text is not None:
            rows.setdefault(name, text)
    return [[name, text] for name, text in sorted(rows.items(), key=lambda r: _ARGS.index(r[0]))]


def _arg_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return str(value).lower()
    if finite_number(value):
        return _fmt(value)
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", value):
        return f"`{value}`"  # a code span: an underscore or colon in it is no Markdown
    return None


def _count_text(value: Any) -> str | None:
    return str(value) if _is_count(value) else None


def format_duration(seconds: float) -> str:
    """``894`` → ``14 min 54 s``: a duration a reader takes in at a glance, with its units."""
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours == 0:
        return f"{minutes} min {secs} s"
    days, hours = divmod(hours, 24)
    return f"{hours} h {minutes} min" if days == 0 else f"{days} d {hours} h"


def training_results(summary: TrainingSummary) -> list[list[str]]:
    """``[name, value]`` rows of what training measured, each with its unit."""
    units = {
        "train_runtime": format_duration,
        "train_samples_per_second": lambda v: f"{_fmt(v)} samples/s",
        "train_steps_per_second": lambda v: f"{_fmt(v)} steps/s",
    }
    rows = []
    if summary.global_step:
        rows.append(["steps", str(summary.global_step)])
    if summary.epochs is not None:
        rows.append(["epochs", f"{summary.epochs:.2f}"])
    for key, value in sorted(summary.metrics.items()):
        rows.append([key, units.get(key, _fmt)(value)])
    for key, value in sorted(summary.eval_metrics.items()):
        rows.append([key, _fmt(value)])
    return rows


# ---------------------------------------------------------------------------------------
# Benchmarks, generation settings, intended use
# ---------------------------------------------------------------------------------------


def benchmark_rows(evals: Sequence[EvalResult]) -> list[dict[str, str]]:
    """One table row per result, every cell plain text safe inside a Markdown table: the
    results file's strings are escaped (no HTML, link, image or emphasis); the one link is
    the dataset of a benchmark of r1release's own table (:data:`~r1release.evals.BENCHMARKS`)."""
    rows = []
    for result in evals:
        known = _known_benchmark(result)
        if known is not None:
            name = f"[{known.name}](https://huggingface.co/datasets/{known.dataset_id})"
        else:
            name = _cell(result.benchmark or result.task)
        value = _fmt(result.value)
        if result.stderr is not None and finite_number(result.stderr):
            value += f" ± {_fmt(result.stderr)}"
        tool = result.tool + (f" {result.tool_version}" if result.tool_version else "")
        rows.append(
            {
                "benchmark": name,
                "task": _cell(result.task),
                "metric": _cell(result.metric),
                "value": value,
                "samples": str(result.samples) if result.samples is not None else "—",
                "generation": _generation_text(result.generation),
                "tool": _cell(tool),
            }
        )
    return rows


def _known_benchmark(result: EvalResult) -> Benchmark | None:
    """The row of r1release's benchmark table that ``result`` names (its name and dataset)."""
    for benchmark in BENCHMARKS:
        if (benchmark.name, benchmark.dataset_id) == (result.benchmark, result.dataset_id):
            return benchmark
    return None


def _generation_text(settings: Mapping[str, float | int]) -> str:
    """The settings in words; temperature 0 is greedy decoding (top_p then plays no part)."""
    greedy = finite_number(settings.get("temperature")) and settings["temperature"] == 0
    parts = ["greedy"] if greedy else []
    for key, text in (
        ("temperature", "temperature {}"),
        ("top_p", "top_p {}"),
        ("max_new_tokens", "{} new tokens max"),
        ("num_samples", "{} samples per prompt"),
    ):
        if finite_number(settings.get(key)) and not (greedy and key in ("temperature", "top_p")):
            value = _fmt(settings[key])
            if key == "num_samples" and value == "1":
                text = "1 sample per prompt"
            parts.append(text.format(value))
    return ", ".join(parts) or "—"


def _cell(text: str, limit: int = 200) -> str:
    """``text`` as inline Markdown showing just the text, for a table cell or a sentence: one
    line, bounded, no column break, and its HTML and Markdown characters as entities
    (:func:`r1release.ci.summary_text`, which the step summary uses too)."""
    return summary_text(" ".join(str(text).split()), limit)


def quick_start_kwargs(generation: Mapping[str, Any]) -> list[list[str]]:
    """``[name, Python literal]`` of the ``pipeline`` call: the release's own sampling
    settings from ``generation_config.json``, and room for a reasoning trace
    (:data:`REASONING_TOKENS` at least)."""
    recorded = generation.get("max_new_tokens")
    tokens = max(recorded if _is_count(recorded) else 0, REASONING_TOKENS)
    kwargs = [["max_new_tokens", str(tokens)]]
    if isinstance(generation.get("do_sample"), bool):
        kwargs.append(["do_sample", str(generation["do_sample"])])
    for key in ("temperature", "top_p"):
        value = generation.get(key)
        if finite_number(value) and value > 0:
            kwargs.append([key, repr(float(value))])
    return kwargs


DEFAULT_INTENDED_USE = """\
A reasoning model: it writes out its thinking before its answer. It is released for research \
and experimentation with reasoning models: studying how they solve math, code and science \
problems, comparing training recipes, and as a starting point for further fine-tuning. Give it \
room to think (thousands of new tokens, as in the quick start) and check its answers before you \
rely on them."""

DEFAULT_LIMITATIONS = """\
- It can be wrong with confidence: reasoning that looks careful may contain mistakes, made-up \
facts or references (hallucinations). Verify its answers, especially before they reach \
anyone else.
- A reply cut off by `max_new_tokens` may end mid-thought, without a final answer.
- It inherits the biases and limitations of its base model and training data, and it has not \
been evaluated for safety. Do not use it for medical, legal, financial or other high-stakes \
decisions without human review.
- Benchmark numbers describe the settings they were measured with (see the table), not every \
use."""


def _section_text(value: str | None, default: str) -> str:
    """release.yaml's Markdown for a section (its owner's words, trimmed), else ours."""
    return value.strip() if value and value.strip() else default


def card_data(
    model: ModelConfig, tags: Sequence[str], adapter: Mapping[str, str] | None = None
) -> str:
    """The card's YAML metadata, through huggingface_hub's ``ModelCardData`` (no null values;
    no ``model-index``: see the module docstring). For an ``adapter`` (:func:`adapter_data`)
    the library is peft and ``base_model`` is the base it applies to: the Hub derives the
    adapter relation from it."""
    from r1release.hub import card_metadata

    dataset = model.card_dataset_name  # None for a local path release.yaml omits
    values: dict[str, Any] = {
        "license": model.license,
        "license_name": model.license_name if model.license == "other" else None,
        "license_link": model.license_link if model.license == "other" else None,
        "base_model": (adapter["base_model"] or None) if adapter else model.card_base_model,
        "datasets": [dataset] if dataset else None,
        "tags": list(tags) or None,
        "library_name": "peft" if adapter else "transformers",
        "pipeline_tag": "text-generation",
        "model_name": model.name,
    }
    return card_metadata({k: v for k, v in values.items() if v is not None})


def card_tags(
    model: ModelConfig, method: Method | None, adapter: Mapping[str, str] | None = None
) -> list[str]:
    """release.yaml's tags, then ``trl`` and the method's tag as TRL's trainers add them; for
    an adapter, the tags peft's own card adds (``lora`` for LoRA, ``base_model:adapter:BASE``)."""
    tags = list(model.tags)
    if method is not None:
        tags += ["trl", method.tag] if method.tag else ["trl"]
    if adapter and adapter["peft_type"] == "LORA":
        tags.append("lora")
    if adapter and adapter["base_model"]:
        tags.append(f"base_model:adapter:{adapter['base_model']}")
    return list(dict.fromkeys(tags))


_PEFT_TYPE = re.compile(r"[A-Z][A-Z0-9_]{0,31}")


def adapter_data(checkpoint: Checkpoint, model: ModelConfig) -> dict[str, str] | None:
    """What the card says of an adapter checkpoint (None for a full model): its PEFT
    method, and its base model — release.yaml's ``base_model``, else the adapter's
    ``base_model_name_or_path`` when that is a Hub id (a local path is no card metadata)."""
    if checkpoint.kind != ADAPTER:
        return None
    from r1release.config import HUB_ID, local_path_reason

    try:
        config = checkpoint.adapter_config or {}
    except FileUnreadable:  # json-files reports it
        config = {}
    recorded = config.get("base_model_name_or_path")
    base = model.card_base_model
    if base is None and isinstance(recorded, str) and recorded:
        is_path = local_path_reason(recorded, checkpoint.root) is not None
        base = None if is_path or HUB_ID.why_invalid(recorded) else recorded
    peft_type = config.get("peft_type")  # peft's PeftType names: LORA, IA3, ...
    peft_type = peft_type if isinstance(peft_type, str) and _PEFT_TYPE.fullmatch(peft_type) else ""
    return {
        "base_model": base or "",
        "peft_type": peft_type,
        "method": "LoRA" if peft_type == "LORA" else peft_type or "PEFT",
    }


DEFAULT_TEMPLATE = """\
---
{{ card_data }}
---

# {{ model.name }}

{% if adapter -%}
A {{ adapter.method }} adapter\
{% if adapter.base_model %} for [{{ adapter.base_model }}]\
(https://huggingface.co/{{ adapter.base_model }}){% endif %}\
{% if dataset_link %}, trained on the {{ dataset_link }} dataset{% endif %}: \
load it on its base model with [PEFT](https://github.com/huggingface/peft).
{%- elif base_link and dataset_link -%}
This model is a fine-tuned version of {{ base_link }} on the {{ dataset_link }} dataset.
{%- elif base_link -%}
This model is a fine-tuned version of {{ base_link }}.
{%- elif dataset_link -%}
This model was trained on the {{ dataset_link }} dataset.
{%- else -%}
A text-generation model released with r1release.
{%- endif %}

## Quick start
{% if adapter %}
```python
from peft import AutoPeftModelForCausalLM
from transformers import AutoTokenizer

model = AutoPeftModelForCausalLM.from_pretrained({{ model_ref }}\
{% if revision %}, revision={{ revision }}{% endif %})
tokenizer = AutoTokenizer.from_pretrained({{ model_ref }}\
{% if revision %}, revision={{ revision }}{% endif %})
messages = [{"role": "user", "content": {{ prompt }}}]
inputs = tokenizer.apply_chat_template(
    messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
).to(model.device)
output = model.generate(
    **inputs,
{% for name, value in generation %}    {{ name }}={{ value }},
{% endfor %})
print(tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True))
```

`AutoPeftModelForCausalLM` loads the base model named in `adapter_config.json`, then this \
adapter on it (`PeftModel.from_pretrained(base, {{ model_ref }})` does the same for a base \
you loaded yourself; `merge_and_unload()` folds the adapter into its weights).
{% else %}
```python
from transformers import pipeline

generator = pipeline("text-generation", model={{ model_ref }}\
{% if revision %}, revision={{ revision }}{% endif %})
messages = [{"role": "user", "content": {{ prompt }}}]
output = generator(
    messages,
{% for name, value in generation %}    {{ name }}={{ value }},
{% endfor %}    return_full_text=False,
)
print(output[0]["generated_text"])
```
{% endif %}{% if prompt_example %}
The chat template formats that conversation as:

{{ fence }}text
{{ prompt_example }}
{{ fence }}
{% endif %}
## Intended use

{{ intended_use }}

## Limitations

{{ limitations }}
{% if evals %}
## Evaluation

| Benchmark | Task | Metric | Value | Samples | Generation | Tool |
|---|---|---|---|---|---|---|
{% for row in evals %}| {{ row.benchmark }} | {{ row.task }} | {{ row.metric }} | {{ row.value }} \
| {{ row.samples }} | {{ row.generation }} | {{ row.tool }} |
{% endfor %}{% endif %}
{%- if method or training.hyperparameters or training.results %}
## Training
{% if method %}
This model was trained with {{ method.name }}\
{% if method.paper_id %}, a method introduced in [{{ method.paper_title }}]\
(https://huggingface.co/papers/{{ method.paper_id }}){% endif %}, \
using [TRL](https://github.com/huggingface/trl).
{% endif %}{% for label, url in training.runs %}
Training run: [{{ label }}]({{ url }})
{% endfor %}{% if training.hyperparameters %}
| Hyperparameter | Value |
|---|---|
{% for name, value in training.hyperparameters %}| `{{ name }}` | {{ value }} |
{% endfor %}{% endif %}{% if training.results %}
Training results:

{% for name, value in training.results %}- `{{ name }}`: {{ value }}
{% endfor %}{% endif %}{% endif %}
{%- if release.version or release.git_commit or release.date %}
## Release

{% if release.version %}- version: `{{ release.version }}`
{% endif %}{% if release.git_commit %}- git commit: `{{ release.git_commit }}`
{% endif %}{% if release.date %}- date: {{ release.date }} (of the git commit)
{% endif %}{% endif %}
{%- if versions %}
## Framework versions

{% for name, version in versions|dictsort %}- {{ name }}: {{ version }}
{% endfor %}{% endif %}
{%- if method %}
## Citations
{% if method.citation %}
Cite {{ method.name }} as:

```bibtex
{{ method.citation }}
```
{% endif %}
Cite TRL as:

```bibtex
{{ trl_citation }}
```
{% endif %}"""


def render_card(
    checkpoint: Checkpoint | str | os.PathLike[str],
    model: ModelConfig,
    release: ReleaseInfo | None = None,
    template: str | None = None,
    model_ref: str | None = None,
    *,
    template_name: str | None = None,
    evals: Sequence[EvalResult] = (),
    prompt: str | None = None,
) -> str:
    """The complete README.md model card for ``model`` at ``checkpoint``.

    ``model_ref`` is what the quick-start snippet loads (default: the Hub repo id; the
    template gets it, and the version as ``revision``, as Python string literals);
    ``prompt`` what it asks (default :data:`DEFAULT_PROMPT`; a release passes its first
    ``smoke:`` prompt, :func:`smoke_prompt`).
    ``evals`` are the release's benchmark results, in the order the table shows them.
    ``template`` (default :data:`DEFAULT_TEMPLATE`) is untrusted code: it renders in a
    sandbox that holds plain data only (strings, numbers, lists, dicts; no Python object with
    methods), cannot read other templates or files, and is bounded in time
    (``R1RELEASE_TEMPLATE_TIMEOUT``), in the size of every value it builds and in the size of
    the card (:data:`MAX_CARD_BYTES`). Any failure raises :class:`R1ReleaseError` whose
    message is one line, ``<template_name>:<line>: <what went wrong>``; ``template_name`` is
    the template's file (default ``card template``).
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint(checkpoint)
    summary = training_summary(ckpt)
    state = _json_or_empty(ckpt, "trainer_state.json")
    trl_card = _text_or_empty(ckpt, "README.md")
    method = training_method(model, _log_history(state), trl_card)
    example = _prompt_example(ckpt, prompt or DEFAULT_PROMPT)
    adapter = adapter_data(ckpt, model)
    context = {
        "card_data": card_data(model, card_tags(model, method, adapter), adapter),
        "adapter": adapter,
        "model": _model_data(model),
        # Python string literals (a local path may hold quotes or backslashes)
        "model_ref": _python_string(model_ref or model.repo_id),
        "revision": _python_string(release.version) if release and release.version else None,
        "base_link": _link(model.card_base_model, ""),
        "dataset_link": _link(model.card_dataset_name, "datasets/"),
        # Plain data, and only what is deterministic: no run id or URL reaches a template.
        "release": _release_data(release or ReleaseInfo()),
        "summary": _plain(dataclasses.asdict(summary)),
        "prompt": _python_string(prompt or DEFAULT_PROMPT),
        "prompt_example": example,
        "fence": _fence(example or ""),
        "versions": framework_versions(ckpt, trl_card),
        "generation": quick_start_kwargs(_generation_config(ckpt)),
        "intended_use": _section_text(model.intended_use, DEFAULT_INTENDED_USE),
        "limitations": _section_text(model.limitations, DEFAULT_LIMITATIONS),
        "evals": benchmark_rows(evals),
        "method": _plain(dataclasses.asdict(method)) if method else None,
        "training": {
            "runs": tracking_runs(trl_card),
            "hyperparameters": hyperparameters(state, _json_or_empty(ckpt, "training_args.json")),
            "results": training_results(summary),
        },
        "trl_citation": TRL_CITATION,
    }
    return _render_template(
        template or DEFAULT_TEMPLATE, context, template_name or DEFAULT_TEMPLATE_NAME
    )


def _generation_config(checkpoint: Checkpoint) -> dict[str, Any]:
    """``generation_config.json`` as the release will upload it (fixes included)."""
    try:
        return checkpoint.generation_config or {}
    except FileUnreadable:  # the rules report it
        return {}


def _model_data(model: ModelConfig) -> dict[str, Any]:
    """``model``'s fields as plain data (the checkpoint path as a string)."""
    return {f.name: _plain(getattr(model, f.name)) for f in dataclasses.fields(model)}


def _plain(value: Any) -> Any:
    """``value`` as strings, numbers, bools, None, lists and dicts only (of exactly those
    types: no subclass carries its methods into a template)."""
    if value is None or type(value) in (str, bool, int, float):
        return value
    if isinstance(value, int):  # an IntEnum member, say
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return str(value)  # a path, an enum: its text


# ---------------------------------------------------------------------------------------
# The card-template sandbox
# ---------------------------------------------------------------------------------------

MAX_CARD_BYTES = 1024 * 1024
"""The largest card (UTF-8 bytes) a template may render."""
MAX_TEMPLATE_VALUE = 1024 * 1024
"""The largest string (characters) or list / dict (items, counted deeply) a template builds."""
MAX_RANGE = 100_000
"""The most items ``range()`` gives a template."""
MAX_INT_BITS = 64 * 1024
"""The largest integer (bits) ``*`` and ``**`` may make in a template."""
DEFAULT_TEMPLATE_NAME = "card template"
_TEMPLATE_FILENAME = "<template>"  # jinja2's filename for a template made from a string
_FORBIDDEN_TAGS = {"Extends": "extends", "Include": "include", "Import": "import"}


class _Refused(Exception):
    """A template tried to build something too large (raised inside the sandbox)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint or (
            "a model card template's strings, lists and output are limited to "
            f"{MAX_CARD_BYTES:,} bytes"
        )


def _too_large(what: str) -> _Refused:
    return _Refused(
        f"{what} is too large (over {MAX_TEMPLATE_VALUE:,} characters or items; a string bomb?)"
    )


def _render_template(source: str, context: dict[str, Any], name: str) -> str:
    import jinja2
    from jinja2 import nodes

    env = _sandbox_class()()
    tree = None
    try:
        with time_limit(template_timeout()):
            tree = env.parse(source)
            forbidden = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
            for node in tree.find_all(forbidden):
                tag = _FORBIDDEN_TAGS.get(type(node).__name__, "from")
                raise _TemplateFailure(
                    node.lineno,
                    f"{{% {tag} %}} is not allowed: a card template cannot read other files",
                    "put the whole model card template in one file",
                )
            text = env.from_string(tree).render(context)
    except _TemplateFailure as failure:
        raise _template_error(name, failure.lineno, failure.what, failure.hint) from None
    except jinja2.TemplateSyntaxError as exc:
        raise _template_error(name, exc.lineno, exc.message or "syntax error") from None
    except Exception as exc:  # MemoryError, RecursionError, ...: every failure is the template's
        line = _template_line(exc) or _compile_line(exc) or _generated_line(exc, env, tree)
        raise _template_error(name, line, _describe(exc), _hint(exc)) from None
    card = text.rstrip() + "\n"
    if len(card.encode("utf-8", "surrogatepass")) > MAX_CARD_BYTES:
        raise _template_error(name, None, f"the card is larger than {MAX_CARD_BYTES:,} bytes")
    return card


class _TemplateFailure(Exception):
    def __init__(self, lineno: int | None, what: str, hint: str | None = None) -> None:
        super().__init__(what)
        self.lineno, self.what, self.hint = lineno, what, hint


def _template_error(
    name: str, lineno: int | None, what: str, hint: str | None = None
) -> R1ReleaseError:
    what = " ".join(what.split())
    if len(what) > 300:
        what = what[:299] + "…"
    where = f"{name}:{lineno}" if lineno else name
    return R1ReleaseError(f"{where}: {what}", hint=hint or "fix the model card template")


def _template_line(exc: BaseException) -> int | None:
    """The template line ``exc`` was raised on: jinja2 rewrites a render's traceback so that
    each template frame carries the template's own file name and line."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _compile_line(exc: BaseException) -> int | None:
    """The template line jinja2 was reading or compiling when ``exc`` (a RecursionError on a
    deeply nested expression, say) was raised: the deepest parser position or node in the
    traceback, since no template frame runs before the template is compiled."""
    from jinja2 import nodes
    from jinja2.parser import Parser

    line, tb = None, exc.__traceback__
    while tb is not None:
        frame_locals = tb.tb_frame.f_locals
        for value in (frame_locals.get("self"), frame_locals.get("node")):
            if isinstance(value, Parser):
                line = value.stream.current.lineno
            elif isinstance(value, nodes.Node) and getattr(value, "lineno", None):
                line = value.lineno
        tb = tb.tb_next
    return line


def _generated_line(exc: BaseException, env: Any, tree: Any) -> int | None:
    """For a SyntaxError from Python compiling jinja2's generated code ("too many statically
    nested blocks"), the template line of the generated line it names, from the
    ``debug_info`` map jinja2 writes into that code."""
    if not isinstance(exc, SyntaxError) or tree is None or not exc.lineno:
        return None
    try:
        code = env.compile(tree, raw=True)
    except Exception:  # the same failure again: no better line to give
        return None
    found = re.search(r"^debug_info = '([\d=&]*)'$", code, re.M)
    pairs = [p.split("=") for p in found.group(1).split("&") if p] if found else []
    lines = [int(template) for template, generated in pairs if int(generated) <= exc.lineno]
    return lines[-1] if lines else None


def _describe(exc: BaseException) -> str:
    import jinja2

    if isinstance(exc, (jinja2.TemplateError, _Refused, TemplateTimeout)):
        return str(exc) or type(exc).__name__
    if isinstance(exc, RecursionError):
        return "too deeply nested or recursive (maximum recursion depth exceeded)"
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, SyntaxError):  # its own line is one of jinja2's generated code
        return f"Python cannot compile the template: {exc.msg}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _hint(exc: BaseException) -> str:
    from jinja2.exceptions import SecurityError

    if isinstance(exc, SecurityError):
        return "a model card template gets plain data only: strings, numbers, lists and dicts"
    if isinstance(exc, _Refused):
        return exc.hint
    return "fix the model card template"


def _weight(value: Any, budget: int = MAX_TEMPLATE_VALUE) -> int:
    """How large ``value`` is: characters of a string, items of a list or dict counted deeply
    (a list holding one string a thousand times weighs a thousand strings). Stops counting once
    over ``budget``, so it costs at most ``budget`` steps."""
    from jinja2.utils import Cycler, Namespace

    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bytes, bytearray)):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 1
        elif isinstance(item, int):
            total += 1 + item.bit_length() // 3  # at least its decimal digits
        elif isinstance(item, range):
            total += _range_len(item)
        elif isinstance(item, Mapping):
            total += len(item)
            if total <= budget:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset, KeysView, ValuesView, ItemsView)):
            total += len(item)
            if total <= budget:
                stack.extend(item)
        elif isinstance(item, Namespace):
            stack.append(object.__getattribute__(item, "_Namespace__attrs"))
        elif isinstance(item, Cycler):
            stack.append(item.items)
        else:
            total += 1
        if total > budget:
            break
    return total


def _depth(value: Any, budget: int = MAX_TEMPLATE_VALUE) -> int:
    """How deeply lists and dicts nest in ``value`` (at most ``budget`` steps)."""
    deepest, steps, stack = 0, 0, [(value, 1)]
    while stack and steps < budget:
        item, depth = stack.pop()
        steps += 1
        if isinstance(item, Mapping):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _range_len(value: range) -> int:
    try:
        return len(value)
    except OverflowError:
        return MAX_TEMPLATE_VALUE + 1


def _check(size: int, what: str) -> None:
    if size > MAX_TEMPLATE_VALUE:
        raise _too_large(what)


def _check_values(values: Any, what: str) -> None:
    total = 0
    for value in values:
        total += _weight(value, MAX_TEMPLATE_VALUE - total)
        _check(total, what)


def _int(value: Any) -> int:
    return max(value, 0) if isinstance(value, int) and not isinstance(value, bool) else 0


def _ints(values: Any) -> list[int]:
    if isinstance(values, Mapping):
        values = values.values()
    elif not isinstance(values, (list, tuple)):
        values = [values]
    return [abs(v) for v in values if isinstance(v, int) and not isinstance(v, bool)]


def _number(digits: str) -> int:
    return int(digits) if len(digits) <= 9 else MAX_TEMPLATE_VALUE + 1


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?([-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d*))?)[hlL]?[A-Za-z%]")


def _printf_size(fmt: str, values: Any) -> int:
    """An upper bound on the length of ``fmt % values``."""
    specs = _PRINTF_SPEC.findall(fmt)
    widths = sum(_number(d) for spec in specs for d in re.findall(r"\d+", spec))
    stars = sum(spec.count("*") for spec in specs)
    return len(fmt) + widths + len(specs) * _weight(values) + stars * max(_ints(values), default=0)


def _format_size(fmt: str, args: Any, kwargs: Any) -> int:
    """An upper bound on the length of ``fmt.format(*args, **kwargs)``."""
    import string

    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return len(fmt)  # str.format raises the same error
    fields = sum(1 for _, field, _, _ in parsed if field is not None)
    specs = [spec for _, _, spec, _ in parsed if spec]
    widths = sum(_number(d) for spec in specs for d in re.findall(r"\d+", spec))
    nested = sum(spec.count("{") for spec in specs)
    largest = max(_ints(list(args)) + _ints(kwargs), default=0)
    return len(fmt) + widths + fields * (_weight(args) + _weight(kwargs)) + nested * largest


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _replace_size(text: str, old: Any, new: Any, count: Any) -> int:
    text, old, new = str(text), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * len(new)


def _join_size(separator: Any, items: Sized) -> int:
    return _weight(items) + len(str(separator)) * len(items)


# Filters that can make their result much larger than their arguments: an upper bound on
# the result's size, from (value, args, kwargs). Every other filter's result is at most a
# small multiple of its arguments' size, which are bounded.
_FILTER_SIZES: dict[str, Any] = {
    "center": lambda v, a, k: _weight(v) + _int(_arg(a, k, 0, "width", 80)),
    "indent": lambda v, a, k: _indent_size(v, _arg(a, k, 0, "width", 4)),
    "replace": lambda v, a, k: _replace_size(
        v, _arg(a, k, 0, "old", ""), _arg(a, k, 1, "new", ""), _arg(a, k, 2, "count", None)
    ),
    "join": lambda v, a, k: _join_size(_arg(a, k, 0, "d", ""), v),
    "format": lambda v, a, k: _printf_size(str(v), k or a),
    "wordwrap": lambda v, a, k: _wordwrap_size(
        str(v), _arg(a, k, 0, "width", 79), _arg(a, k, 2, "wrapstring", None)
    ),
    "batch": lambda v, a, k: (
        _weight(v)
        + _int(_arg(a, k, 0, "linecount", 0)) * (1 + _weight(_arg(a, k, 1, "fill_with", None)))
    ),
    "slice": lambda v, a, k: (
        _weight(v)
        + _int(_arg(a, k, 0, "slices", 0)) * (1 + _weight(_arg(a, k, 1, "fill_with", None)))
    ),
    "tojson": lambda v, a, k: _weight(v) * (8 + _int(_arg(a, k, 0, "indent", 0)) * _depth(v)),
    "pprint": lambda v, a, k: _weight(v) * (8 + _depth(v)),
    "urlize": lambda v, a, k: (
        3 * len(str(v))
        + len(str(v).split()) * (64 + _weight(k.get("target")) + _weight(k.get("rel")))
    ),
}
_MATERIALIZE = {"join"}  # filters whose size bound needs the items of an iterator value


def _indent_size(text: Any, width: Any) -> int:
    text = str(text)
    per_line = len(width) if isinstance(width, str) else _int(width)
    return len(text) + (text.count("\n") + 1) * per_line


def _wordwrap_size(text: str, width: Any, wrapstring: Any) -> int:
    lines = len(text) // 2 + len(text) // max(_int(width), 1) + 1
    return len(text) + lines * len(str(wrapstring or "\n"))


def _materialize(value: Any, what: str) -> Any:
    """An iterator's items as a list, refusing more than the size limit."""
    if not isinstance(value, Iterator):
        return value
    items: list[Any] = []
    total = 0
    for item in value:
        total += max(1, _weight(item, MAX_TEMPLATE_VALUE - total))
        _check(total, what)
        items.append(item)
    return items


def _bounded(iterator: Iterator[Any], what: str) -> Iterator[Any]:
    """``iterator``, refusing to yield more than the size limit in all."""
    total = 0
    for item in iterator:
        total += max(1, _weight(item, MAX_TEMPLATE_VALUE - total))
        _check(total, what)
        yield item


def _guard_filter(name: str, func: Any) -> Any:
    """``func`` (a Jinja filter) bounded: its arguments and its result are within the size
    limit, and a filter that can amplify is refused before it runs when its result would not
    be. The guard takes the context, so no filter is ever run at compile time."""
    import jinja2

    passes = getattr(getattr(func, "jinja_pass_arg", None), "name", None)
    size = _FILTER_SIZES.get(name)
    what = f"the result of the {name} filter"

    @jinja2.pass_context
    def guarded(context: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        if name in _MATERIALIZE:
            value = _materialize(value, what)
        _check_values((value, *args, *kwargs.values()), f"the input of the {name} filter")
        if size is not None:
            _check(size(value, args, kwargs), what)
        first = {
            "context": (context,),
            "eval_context": (context.eval_ctx,),
            "environment": (context.environment,),
        }.get(passes, ())
        result = func(*first, value, *args, **kwargs)
        if isinstance(result, Iterator):
            return _bounded(result, what)
        _check(_weight(result), what)
        return result

    guarded.__name__ = guarded.__qualname__ = f"{name}_filter"
    return guarded


# str and bytes methods that can make a result much larger than their receiver and arguments
_WIDTH_METHODS = {"center", "ljust", "rjust", "zfill"}


def _check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a call whose result would be too large; returns ``args`` (an iterator given to
    ``str.join`` becomes a list)."""
    receiver = getattr(obj, "__self__", None)
    method = getattr(obj, "__name__", "")
    label = f"{method}()" if isinstance(method, str) and method.isidentifier() else "a call"
    what = f"the result of {label}"
    if isinstance(receiver, (str, bytes)) and method == "join" and args:
        args = (_materialize(args[0], what), *args[1:])  # a lazy map, say
    data_receiver = isinstance(receiver, (str, bytes, int, float, list, tuple, dict, set))
    _check_values(
        ((receiver,) if data_receiver else ()) + args + tuple(kwargs.values()),
        f"the input of {label}",
    )
    if isinstance(receiver, (str, bytes)):
        length = len(receiver)
        if method in _WIDTH_METHODS:
            _check(length + _int(_arg(args, kwargs, 0, "width", 0)), what)
        elif method == "expandtabs":
            tabs = receiver.count("\t" if isinstance(receiver, str) else b"\t")
            _check(length + tabs * _int(_arg(args, kwargs, 0, "tabsize", 8)), what)
        elif method == "replace" and len(args) >= 2:
            count = _arg(args, kwargs, 2, "count", -1)
            if isinstance(receiver, str):
                _check(_replace_size(receiver, args[0], args[1], count), what)
            else:
                _check(length * (1 + _weight(args[1])), what)
        elif method == "join" and args and isinstance(args[0], Sized):
            _check(_join_size(receiver, args[0]), what)
        elif method == "translate" and args and isinstance(args[0], Mapping):
            largest = max((_weight(v) for v in args[0].values()), default=1)
            _check(length * max(largest, 1), what)
    elif isinstance(receiver, int) and method == "to_bytes":
        _check(_int(_arg(args, kwargs, 0, "length", 1)), what)
    return args


def _check_binop(operator: str, left: Any, right: Any) -> None:
    sequences = (str, bytes, list, tuple)
    what = f"the result of {operator!r}"
    if operator == "*":
        seq, times = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(seq, sequences) and isinstance(times, int):
            if times > 0:
                _check(_weight(seq) * times, what)
        elif isinstance(left, int) and isinstance(right, int):
            _check_bits(left.bit_length() + right.bit_length(), what)
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            _check_bits(right * (abs(left).bit_length() - 1), what)
    elif operator == "+":
        if isinstance(left, sequences) and isinstance(right, sequences):
            _check(_weight(left) + _weight(right), what)
    elif operator == "%" and isinstance(left, str):
        _check(_printf_size(left, right), what)


def _check_bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise _Refused(
            f"{what} is too large (an integer of over {MAX_INT_BITS:,} bits)",
            f"integers in a model card template are limited to {MAX_INT_BITS:,} bits",
        )


def _range(*args: Any) -> range:
    result = range(*args)
    if _range_len(result) > MAX_RANGE:
        raise _Refused(
            f"range() of more than {MAX_RANGE:,} items refused",
            f"loop over at most {MAX_RANGE:,} items in a model card template",
        )
    return result


def _dict(*args: Any, **kwargs: Any) -> dict[Any, Any]:
    return dict(*args, **kwargs)


def _finalize(value: Any) -> Any:
    """Every ``{{ value }}``: refuse one too large to write."""
    _check(_weight(value), "an output value")
    return value


@functools.cache
def _sandbox_class() -> type:
    """Jinja's immutable sandbox, bounded (built on first use: jinja2 loads lazily)."""
    import jinja2
    from jinja2.compiler import CodeGenerator
    from jinja2.exceptions import SecurityError
    from jinja2.runtime import markup_join
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.utils import Cycler, Joiner, Namespace

    class CardCodeGenerator(CodeGenerator):
        def visit_Concat(self, node: Any, frame: Any) -> None:
            """``a ~ b`` through :meth:`CardSandbox.bounded_join` (not folded at compile
            time, where no size check runs)."""
            if frame.eval_ctx.volatile:
                escape = "context.eval_ctx.autoescape"
            else:
                escape = "True" if frame.eval_ctx.autoescape else "False"
            self.write("environment.bounded_join((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write(f"), {escape})")

    class CardSandbox(ImmutableSandboxedEnvironment):
        code_generator_class = CardCodeGenerator
        intercepted_binops = frozenset({"*", "**", "+", "%"})

        def __init__(self) -> None:
            super().__init__(
                undefined=jinja2.StrictUndefined,
                keep_trailing_newline=True,
                autoescape=False,
                finalize=_finalize,
            )  # no loader: no template can read another one
            self.globals.clear()
            self.globals.update(
                range=_range,
                dict=_dict,
                cycler=lambda *items: Cycler(*items),
                joiner=lambda sep=", ": Joiner(sep),
                namespace=lambda *args, **kwargs: Namespace(*args, **kwargs),
            )
            self.filters["metric"] = _fmt
            self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            _check_binop(operator, left, right)
            return super().call_binop(context, operator, left, right)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            args = _check_call(__obj, args, kwargs)
            result = super().call(__context, __obj, *args, **kwargs)
            if isinstance(result, Iterator):
                return _bounded(result, "the result of a call")
            _check(_weight(result), "the result of a call")
            return result

        def concat(self, parts: Any) -> str:  # type: ignore[override]
            """Every output buffer (the card, a macro, a ``{% set %}`` block), bounded."""
            out: list[str] = []
            size = 0
            for part in parts:
                size += len(part) if part.isascii() else len(part.encode("utf-8", "surrogatepass"))
                if size >= MAX_CARD_BYTES:  # the card ends with a newline more
                    if not isinstance(parts, GeneratorType):  # a block's buffer
                        raise _Refused(f"a block would be larger than {MAX_CARD_BYTES:,} bytes")
                    exc = _Refused(f"the card would be larger than {MAX_CARD_BYTES:,} bytes")
                    parts.throw(exc)  # raised where the template is, for its line
                    raise exc
                out.append(part)
            return "".join(out)

        def bounded_join(self, items: tuple[Any, ...], autoescape: bool = False) -> str:
            _check_values(items, "the result of '~'")
            return markup_join(items) if autoescape else "".join(map(str, items))

        def wrap_str_format(self, value: Any) -> Any:
            """``str.format`` and ``format_map`` (sandboxed by jinja2), refused before they
            run when the result would be too large."""
            wrapper = super().wrap_str_format(value)
            if wrapper is None:
                return None
            fmt, is_map = value.__self__, value.__name__ == "format_map"

            def bounded(*args: Any, **kwargs: Any) -> str:
                if is_map:
                    size = _format_size(fmt, (), args[0] if args else {})
                else:
                    size = _format_size(fmt, args, kwargs)
                _check(size, f"the result of {value.__name__}()")
                return wrapper(*args, **kwargs)

            return functools.update_wrapper(bounded, wrapper)

        def get_template(self, *args: Any, **kwargs: Any) -> Any:
            raise SecurityError("a card template cannot read other templates")

        select_template = get_or_select_template = get_template

    return CardSandbox


def _release_data(release: ReleaseInfo) -> dict[str, str | None]:
    return {"version": release.version, "git_commit": release.git_commit, "date": release.date}


DEFAULT_PROMPT = "What is 7 * 6?"


def _python_string(text: str) -> str:
    """``text`` as a Python string literal that stays inside a Markdown code fence: JSON's
    escapes are Python's, and a backtick becomes ``\\u0060``."""
    return json.dumps(text).replace("`", "\\u0060")


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text`` (the chat template's output
    comes from the base model: it must not close the fence and write Markdown)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def smoke_prompt(settings: Mapping[str, Any] | None) -> str | None:
    """The first ``smoke:`` prompt of release.yaml (the smoke-generate rule's options), which
    the quick start asks: the release's own example."""
    setting = (settings or {}).get("smoke-generate")
    prompts = getattr(setting, "options", {}).get("prompts") or ()
    return prompts[0] if prompts and isinstance(prompts[0], str) else None


def _prompt_example(checkpoint: Checkpoint, prompt: str) -> str | None:
    template = None
    try:
        template = checkpoint.chat_template()
        if template is None or not checkpoint.has_tokenizer():
            return None
        checkpoint.turn_end_ids()  # renders once (cached): a broken template raises here
        tok = checkpoint.tokenizer()
        return template.render(
            tok, [{"role": "user", "content": prompt}], add_generation_prompt=True
        )
    except Exception:  # the chat-template rule reports a broken template
        return None


def _link(repo_id: str | None, kind: str) -> str | None:
    return f"[{repo_id}](https://huggingface.co/{kind}{repo_id})" if repo_id else None


def _fmt(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"

"""Benchmark results from the evaluation tools people use (lighteval, lm-evaluation-harness),
read into one plain record per (task, metric), and written out in the Hub's current format
(``.eval_results/*.yaml``).

The two layouts are the tools' own (read from their result-writing code; the fixtures in
``tests/data/evals/`` were written by the tools themselves):

- lighteval (``EvaluationTracker.save``): ``results_<date>.json`` holding ``config_general``
  (``model_config.generation_parameters``), ``results`` (``{task: {metric: value,
  metric_stderr: value}}``, plus the ``all`` average over every task), ``config_tasks``
  (``generation_size``, ``effective_num_docs``, metrics) and ``versions``.
- lm-evaluation-harness (``EvaluationTracker.save_results_aggregated``): ``results``
  (``{task: {"metric,filter": value, "metric_stderr,filter": value or "N/A", "alias": ...}}``),
  ``configs`` (``generation_kwargs``, ``repeats``), ``n-samples``, ``config.gen_kwargs``,
  ``lm_eval_version`` and ``date``.

These files are untrusted input that reaches the card and YAML: every string taken from them
is made one line of printable text and bounded, every number must be finite, and the file,
its entries and its nesting are bounded.
"""

from __future__ import annotations

import glob
import itertools
import json
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from r1release.errors import R1ReleaseError

LIGHTEVAL = "lighteval"
LM_EVAL = "lm-evaluation-harness"
MAX_FILE_BYTES = 16 * 1024 * 1024  # lighteval's config_tasks for all of MMLU is a few MB
MAX_RESULTS = 4096  # (task, metric) pairs in one file
MAX_FILES = 256  # results files in one release
MAX_TEXT = 120  # characters of a task, metric or source name
MAX_NOTES = 300
EVAL_RESULTS_DIR = ".eval_results"


@dataclass(frozen=True)
class EvalResult:
    """One benchmark number, as the evaluation tool recorded it."""

    task: str  # the tool's task name, e.g. "aime24" or "gsm8k"
    metric: str  # e.g. "pass@1", "exact_match,strict-match"
    value: float
    tool: str  # "lighteval" or "lm-evaluation-harness"
    source: str  # the results file it came from (as given in release.yaml)
    benchmark: str | None = None  # display name of a known benchmark, e.g. "AIME 2024"
    dataset_id: str | None = None  # its Hub dataset id, when known
    stderr: float | None = None
    samples: int | None = None  # number of evaluated examples
    tool_version: str | None = None
    # temperature, top_p, max_new_tokens, num_samples (per prompt) when the file records them
    generation: Mapping[str, float | int] = field(default_factory=lambda: MappingProxyType({}))
    task_id: str | None = None  # the task within the Hub dataset (``.eval_results``' task_id)
    date: str | None = None  # when the evaluation ran (ISO 8601), when the file records it
    leaderboard: bool = False  # the benchmark's primary metric: the one .eval_results holds


class EvalResultsError(R1ReleaseError):
    """A results file named by ``evals:`` cannot be used; the message names it."""

    exit_code = 2


# ---------------------------------------------------------------------------------------
# Known benchmarks: one row per benchmark; add a row to support another.
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Benchmark:
    """A benchmark the Hub knows as a dataset, and the task names the tools give it.

    ``primary`` is, per tool, the metric its leaderboard score is (patterns over the tool's
    metric names, in order of preference): one benchmark has one score on the Hub, and the
    other metrics of the same run are shown in the card only."""

    name: str
    dataset_id: str  # the Hub dataset the results are filed under
    task_id: str  # the task within it (the dataset subset the tools evaluate)
    tasks: frozenset[str]  # tool task names, without lighteval's suite and few-shot count
    primary: Mapping[str, tuple[str, ...]]

    def primary_metric(self, tool: str, metrics: Iterable[str]) -> str | None:
        """Which of ``metrics`` (one task's, from one file of ``tool``) is the score."""
        names = list(metrics)
        for pattern in self.primary.get(tool, ()):
            for name in names:
                if re.fullmatch(pattern, name):
                    return name
        return None


# lighteval 0.13's pass@1 (metric_utils names a metric ``name:k=1&n=N``, its sample params
# in the order the task config gives them): the score open-r1 reports.
_PASS_AT_1 = r"pass@k:(?:k=1(?:&n=\d+)?|n=\d+&k=1)"
# lm-eval 0.4.13's tasks: aime24, aime25 and hendrycks_math500 score exact_match (no filter:
# "none"); minerva_math500 also math_verify, the answer checked by math-verify as open-r1 does.
_LM_EVAL_MATH = (r"math_verify,none", r"exact_match,none")


# Dataset ids as the tools' task definitions name them (lighteval 0.13 tasks/aime.py,
# math_500.py, gpqa.py, lcb/main.py; lm-eval 0.4.13 tasks/aime, hendrycks_math,
# minerva_math, gpqa). Where the tools read different copies of one benchmark (lm-eval's aime24
# reads Maxwell-Jia/AIME_2024, its aime25 math-ai/aime25; lighteval's LiveCodeBench reads the
# lighteval/code_generation_lite mirror), the results are filed under the one id open-r1 uses,
# so every run of a benchmark lands on the same leaderboard.
BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "AIME 2024",
        "HuggingFaceH4/aime_2024",
        "default",
        frozenset({"aime24", "aime24_avg", "aime24_gpassk"}),
        {LIGHTEVAL: (_PASS_AT_1,), LM_EVAL: _LM_EVAL_MATH},
    ),
    Benchmark(
        "AIME 2025",
        "yentinglin/aime_2025",
        "default",
        frozenset({"aime25", "aime25_avg", "aime25_gpassk"}),
        {LIGHTEVAL: (_PASS_AT_1,), LM_EVAL: _LM_EVAL_MATH},
    ),
    Benchmark(
        "MATH-500",
        "HuggingFaceH4/MATH-500",
        "default",
        frozenset({"math_500", "hendrycks_math500", "minerva_math500"}),
        {LIGHTEVAL: (_PASS_AT_1,), LM_EVAL: _LM_EVAL_MATH},
    ),
    Benchmark(
        "GPQA Diamond",
        "Idavidrein/gpqa",
        "gpqa_diamond",
        frozenset(
            {
                "gpqa:diamond",
                "gpqa_diamond_zeroshot",
                "gpqa_diamond_n_shot",
                "gpqa_diamond_cot_zeroshot",
                "gpqa_diamond_cot_n_shot",
                "gpqa_diamond_generative_n_shot",
            }
        ),
        # lm-eval: the generative tasks score exact_match after their answer filters (the
        # flexible one takes the answer wherever the reasoning puts it), the others acc.
        {LIGHTEVAL: ("gpqa_" + _PASS_AT_1,), LM_EVAL: ("exact_match,flexible-extract", "acc,none")},
    ),
    Benchmark(
        "LiveCodeBench",
        "livecodebench/code_generation_lite",
        "v4_v5",
        frozenset({"lcb:codegeneration"}),
        {LIGHTEVAL: (r"codegen_pass@1:\d+",)},  # lighteval's lcb/main.py names its n in it
    ),
)
_BY_TASK = {task: b for b in BENCHMARKS for task in b.tasks}


def benchmark_for(task: str) -> Benchmark | None:
    """The known benchmark a tool's task name stands for: lighteval's ``suite|task|shots``
    and ``task|shots`` forms count as ``task``."""
    parts = task.split("|")
    if len(parts) >= 2 and parts[-1].isdigit():
        parts = parts[:-1]
    return _BY_TASK.get(parts[-1])


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------


def load_evals(
    patterns: Sequence[str], base: str | os.PathLike[str], checkpoint: str | os.PathLike[str]
) -> list[EvalResult]:
    """Every result of the files that ``patterns`` (``model.evals``) name, in file order.

    A pattern is a path or glob relative to ``base`` (release.yaml's directory) or, when it
    matches nothing there, to ``checkpoint``; one that matches no file is an error."""
    results: list[EvalResult] = []
    for path, shown in resolve_evals(patterns, Path(base), Path(checkpoint)):
        results += read_results(path, shown)
    return results


def resolve_evals(patterns: Sequence[str], base: Path, checkpoint: Path) -> list[tuple[Path, str]]:
    """``(file, name as shown)`` for each file the patterns match, sorted within a pattern,
    each file once."""
    found: dict[Path, str] = {}
    for pattern in patterns:
        _check_pattern(pattern)
        matches = _matches(pattern, base) or _matches(pattern, checkpoint)
        if not matches:
            raise EvalResultsError(
                f"release.yaml: evals: {_plain(pattern)!r} matches no file "
                f"(looked in {base} and in the checkpoint {checkpoint})",
                hint="give the path of a lighteval or lm-evaluation-harness results JSON",
            )
        for path, shown in matches:
            found.setdefault(path.resolve(), shown)
    if len(found) > MAX_FILES:
        raise EvalResultsError(
            f"release.yaml: evals: {len(found)} results files (at most {MAX_FILES})",
            hint="name the results files of this release only",
        )
    return list(found.items())


def _check_pattern(pattern: str) -> None:
    """Refuse a pattern that reaches outside its root: an absolute path or a ``..`` part
    (``/**/*.json`` would walk the whole filesystem)."""
    parts = re.split(r"[/\\]", pattern)
    if os.path.isabs(pattern) or pattern.startswith(("/", "\\")):
        reason = "is an absolute path"
    elif ".." in parts:
        reason = "has a '..' part"
    else:
        return
    raise EvalResultsError(
        f"release.yaml: evals: {_plain(pattern)!r} {reason}",
        hint="give a path or glob relative to release.yaml's directory or to the checkpoint",
    )


def _matches(pattern: str, root: Path) -> list[tuple[Path, str]]:
    """The files ``pattern`` matches under ``root``; the glob stops once it has found more
    than :data:`MAX_FILES` paths (the caller refuses that many)."""
    names = glob.iglob(pattern, root_dir=root, recursive=True)
    found = sorted(itertools.islice(names, MAX_FILES + 1))
    return [(root / name, name) for name in found if (root / name).is_file()]


def read_results(path: str | os.PathLike[str], source: str | None = None) -> list[EvalResult]:
    """The results in one lighteval or lm-evaluation-harness results JSON file; ``source``
    is the name results and errors show (default: ``path``)."""
    shown = _plain(str(source if source is not None else path))
    doc = _load_json(Path(path), shown)
    if isinstance(doc, dict) and isinstance(doc.get("config_general"), dict):
        results = list(_lighteval(doc, shown, Path(path).name))
    elif isinstance(doc, dict) and ("lm_eval_version" in doc or "n-shot" in doc):
        results = list(_lm_eval(doc, shown))
    else:
        raise EvalResultsError(
            f"{shown}: neither a lighteval nor an lm-evaluation-harness results file",
            hint="evals: takes the results_*.json that lighteval or lm_eval writes",
        )
    if not results:
        raise EvalResultsError(
            f"{shown}: holds no benchmark result", hint="is the evaluation run complete?"
        )
    return results


def _load_json(path: Path, shown: str) -> Any:
    try:
        raw = _read_bounded(path)
    except OSError as exc:
        raise EvalResultsError(
            f"{shown}: cannot read ({exc.strerror or exc})", hint="check the path in evals:"
        ) from None
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise EvalResultsError(
            f"{shown}: not UTF-8 text (byte {exc.start})", hint="is it a results JSON?"
        ) from None
    except json.JSONDecodeError as exc:
        raise EvalResultsError(
            f"{shown}:{exc.lineno}: not JSON ({exc.msg})", hint="is it a results JSON?"
        ) from None
    except ValueError as exc:  # an integer of over 4300 digits, say
        raise EvalResultsError(
            f"{shown}: cannot be read as JSON ({_plain(exc, MAX_NOTES)})",
            hint="is it a results JSON?",
        ) from None
    except RecursionError:
        raise EvalResultsError(
            f"{shown}: JSON nested too deeply", hint="is it a results JSON?"
        ) from None


def _read_bounded(path: Path) -> bytes:
    """The file's bytes; never blocks on a FIFO, never reads more than the bound."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise OSError(0, f"{info.st_size} bytes, more than {MAX_FILE_BYTES}")
        return fh.read(MAX_FILE_BYTES + 1)


def _lighteval(doc: Mapping[str, Any], source: str, filename: str) -> Iterator[EvalResult]:
    """lighteval: each task's metrics (``<metric>_stderr`` is the stderr of ``<metric>``;
    ``all`` averages every task's metrics together and is no benchmark)."""
    general = doc["config_general"]
    model_config = _dict(general.get("model_config"))
    parameters = _dict(model_config.get("generation_parameters"))
    sha = general.get("lighteval_sha")
    version = _plain(sha) if isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{7,40}", sha) else None
    date = _lighteval_date(filename)
    tasks = _dict(doc.get("config_tasks"))
    for task, metrics in _entries(_dict(doc.get("results")), source):
        if task == "all":
            continue
        config = _dict(tasks.get(task))
        max_new = parameters.get("max_new_tokens") or config.get("generation_size")
        scores = [m for m, v in metrics.items() if not m.endswith("_stderr") and finite_number(v)]
        primary = _primary(task, LIGHTEVAL, scores)
        for metric in scores:
            value = metrics[metric]
            generation = {
                "temperature": parameters.get("temperature"),
                "top_p": parameters.get("top_p"),
                "max_new_tokens": max_new,
                "num_samples": _lighteval_samples_per_prompt(metric, config),
            }
            yield _result(
                task,
                metric,
                value,
                LIGHTEVAL,
                source,
                stderr=metrics.get(f"{metric}_stderr"),
                samples=config.get("effective_num_docs"),
                tool_version=version,
                generation=generation,
                date=date,
                leaderboard=metric == primary,
            )


def _primary(task: str, tool: str, metrics: Sequence[str]) -> str | None:
    """Which of a task's metrics is the leaderboard score of its known benchmark."""
    known = benchmark_for(task)
    return known.primary_metric(tool, metrics) if known else None


def _lighteval_date(filename: str) -> str | None:
    """The day in the name lighteval gives the file (``results_2025-01-31T10-20-30.123456``):
    the time there is the machine's local time, in no stated zone, so only the day is sure."""
    found = re.fullmatch(r"results_(\d{4}-\d\d-\d\d)T[\d.-]+\.json", filename)
    return found.group(1) if found else None


def _lighteval_samples_per_prompt(metric: str, config: Mapping[str, Any]) -> Any:
    """Generations per prompt: the metric's ``n=`` (``avg@n:n=64``, ``pass@k:k=1&n=1``, or the
    sampling function lighteval records for it), else the task's ``num_samples``."""
    found = re.search(r"[:&]n=(\d+)", metric)
    if found:
        return int(found.group(1))
    entries = config.get("metrics")
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and entry.get("metric_name") == metric:
            found = re.search(r"[(,\s]n=(\d+)", str(entry.get("sample_level_fn", ""))[:2000])
            if found:
                return int(found.group(1))
    counts = config.get("num_samples")
    if isinstance(counts, list) and counts and all(_count(c) for c in counts):
        return max(counts)
    return None


def _lm_eval(doc: Mapping[str, Any], source: str) -> Iterator[EvalResult]:
    """lm-evaluation-harness: ``metric,filter`` keys; ``metric_stderr,filter`` is its stderr
    (``"N/A"`` when not computed); ``alias``, ``name`` and ``sample_len`` describe the task."""
    configs = _dict(doc.get("configs"))
    counts = _dict(doc.get("n-samples"))
    overrides = _gen_kwargs(_dict(doc.get("config")).get("gen_kwargs"))
    version = doc.get("lm_eval_version")
    date = _lm_eval_date(doc.get("date"))
    for task, metrics in _entries(_dict(doc.get("results")), source):
        config = _dict(configs.get(task))
        kwargs = {**_gen_kwargs(config.get("generation_kwargs")), **overrides}
        samples = _dict(counts.get(task)).get("effective", metrics.get("sample_len"))
        generation = {**_lm_eval_sampling(kwargs), "num_samples": config.get("repeats")}
        scores = [
            key
            for key, value in metrics.items()
            if key not in ("alias", "name", "sample_len")
            and not key.partition(",")[0].endswith("_stderr")
            and finite_number(value)
        ]
        primary = _primary(task, LM_EVAL, scores)
        for key in scores:
            value = metrics[key]
            metric, _, filter_name = key.partition(",")
            stderr_key = f"{metric}_stderr,{filter_name}" if filter_name else f"{metric}_stderr"
            yield _result(
                task,
                key,
                value,
                LM_EVAL,
                source,
                stderr=metrics.get(stderr_key),
                samples=samples,
                tool_version=version if isinstance(version, str) else None,
                generation=generation,
                date=date,
                leaderboard=key == primary,
            )


def _gen_kwargs(value: Any) -> dict[str, Any]:
    """lm-eval's generation kwargs: a dict, or the command line's ``temperature=0.6,top_p=0.95``
    parsed as lm-eval parses it (``utils.simple_parse_args_string``)."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        return {}
    pairs = (arg.split("=") for arg in value.strip().split(",") if arg)
    return {kv[0]: _lm_eval_arg("=".join(kv[1:])) for kv in pairs}


def _lm_eval_arg(text: str) -> Any:
    """One value of an lm-eval argument string, typed as ``utils.handle_arg_string`` types it."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "false", "none"):
        return {"true": True, "false": False, "none": None}[lowered]
    try:
        return int(text) if text.lstrip("+-").isdigit() else float(text)
    except ValueError:  # not a number, or an integer of over 4300 digits
        return text


def _lm_eval_sampling(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The settings generation used, as lm-eval's ``models.utils.normalize_gen_kwargs`` sets
    them: ``do_sample`` false (or unset with temperature 0) is greedy, temperature 0 and no
    top_p; the token limit is the first of ``max_gen_toks``, ``max_new_tokens``,
    ``max_tokens``, ``max_completion_tokens``."""
    limits = ("max_gen_toks", "max_new_tokens", "max_tokens", "max_completion_tokens")
    max_new = next((kwargs[k] for k in limits if kwargs.get(k) is not None), None)
    temperature = kwargs.get("temperature", 0.0)
    do_sample = kwargs.get("do_sample")
    if do_sample is None:
        do_sample = finite_number(temperature) and temperature > 0
    if do_sample is False:
        return {"temperature": 0.0, "top_p": None, "max_new_tokens": max_new}
    return {"temperature": temperature, "top_p": kwargs.get("top_p"), "max_new_tokens": max_new}


def _lm_eval_date(value: Any) -> str | None:
    """lm_eval's ``date`` is the run's start as a Unix time."""
    if not finite_number(value) or not 0 < value < 32503680000:  # before the year 3000
        return None
    return datetime.fromtimestamp(value, tz=timezone.utc).isoformat(timespec="seconds")


def _entries(results: Mapping[str, Any], source: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(task, metrics)`` of a ``results`` mapping, bounded in count."""
    total = sum(len(v) for v in results.values() if isinstance(v, dict))
    if total > MAX_RESULTS:
        raise EvalResultsError(
            f"{source}: {total} result entries (at most {MAX_RESULTS})",
            hint="split the evaluation into several results files",
        )
    for task, metrics in results.items():
        if isinstance(metrics, dict):
            yield task, metrics


def _result(
    task: str,
    metric: str,
    value: float,
    tool: str,
    source: str,
    *,
    stderr: Any,
    samples: Any,
    tool_version: str | None,
    generation: Mapping[str, Any],
    date: str | None,
    leaderboard: bool,
) -> EvalResult:
    """One record with every value checked: text plain and bounded, numbers finite, counts
    positive; what is missing or malformed is left out rather than guessed."""
    known = benchmark_for(task)
    settings = {
        key: v
        for key, v in generation.items()
        if (_count(v) if key in ("max_new_tokens", "num_samples") else finite_number(v))
    }
    return EvalResult(
        task=_plain(task),
        metric=_plain(metric),
        value=float(value),
        tool=tool,
        source=source,
        benchmark=known.name if known else None,
        dataset_id=known.dataset_id if known else None,
        stderr=float(stderr) if finite_number(stderr) else None,
        samples=samples if _count(samples) else None,
        tool_version=_plain(tool_version) if tool_version else None,
        generation=MappingProxyType(settings),
        task_id=known.task_id if known else None,
        date=date,
        leaderboard=leaderboard,
    )


# ---------------------------------------------------------------------------------------
# Writing: .eval_results/*.yaml
# ---------------------------------------------------------------------------------------


def eval_result_files(results: Iterable[EvalResult]) -> dict[str, bytes]:
    """``.eval_results/<benchmark>_<metric>.yaml`` (path -> content) for the leaderboard
    result of each known benchmark (its primary metric, :attr:`Benchmark.primary`), in
    huggingface_hub's layout. ``EvalResultEntry`` has no metric field, so the Hub would show
    each further metric as another score of the benchmark: those stay in the card.
    Deterministic: sorted, and the only date is the one the results file records. Two
    results for the same benchmark and metric are an error (which one is the release's?)."""
    from r1release.hub import eval_results_yaml  # hub imports stage, which imports this

    known = sorted(
        (r for r in results if r.dataset_id and r.leaderboard),
        key=lambda r: (r.benchmark or "", r.metric, r.task, r.source),
    )
    files: dict[str, bytes] = {}
    seen: dict[tuple[str | None, str | None, str], EvalResult] = {}
    for result in known:
        key = (result.dataset_id, result.task_id, result.metric)
        if key in seen:
            first = seen[key]
            raise EvalResultsError(
                f"{result.source}: {result.benchmark} {result.metric} is also in {first.source}",
                hint="list one results file per benchmark in evals:",
            )
        seen[key] = result
        path = _file_name(result, files)
        files[path] = eval_results_yaml([_entry(result)])
    return dict(sorted(files.items()))


def _file_name(result: EvalResult, taken: Mapping[str, bytes]) -> str:
    base = f"{_slug(result.benchmark or result.task)}_{_slug(result.metric)}"
    path = f"{EVAL_RESULTS_DIR}/{base}.yaml"
    suffix = 2
    while path in taken:
        path = f"{EVAL_RESULTS_DIR}/{base}-{suffix}.yaml"
        suffix += 1
    return path


def _entry(result: EvalResult) -> dict[str, Any]:
    """The fields of huggingface_hub's ``EvalResultEntry`` for ``result``."""
    entry: dict[str, Any] = {
        "dataset_id": result.dataset_id,
        "task_id": result.task_id,
        "value": result.value,
        "notes": _notes(result),
    }
    if result.date:
        entry["date"] = result.date
    return entry


def _notes(result: EvalResult) -> str:
    """How the number was obtained, in one line: tool, task, metric, settings, samples."""
    tool = result.tool + (f" {result.tool_version}" if result.tool_version else "")
    parts = [f"{tool}, task {result.task}, metric {result.metric}"]
    if result.stderr is not None:
        parts.append(f"stderr {result.stderr:.4g}")
    names = {"max_new_tokens": "max_new_tokens", "num_samples": "samples per prompt"}
    parts += [f"{names.get(k, k)} {v}" for k, v in sorted(result.generation.items())]
    if result.samples is not None:
        parts.append(f"{result.samples} examples")
    return _plain("; ".join(parts), MAX_NOTES)


# ---------------------------------------------------------------------------------------
# Untrusted values
# ---------------------------------------------------------------------------------------


def _plain(text: Any, limit: int = MAX_TEXT) -> str:
    """``text`` as one line of printable characters, at most ``limit`` long."""
    flat = "".join(c if c.isprintable() else " " for c in str(text)[: limit * 4])
    flat = " ".join(flat.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "result"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def finite_number(value: Any) -> bool:
    """A number that is a finite float: not a bool, not NaN/Inf, and not an int too large for
    a float (``10**400`` in an untrusted JSON file: ``float()`` of it raises)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1 << 40

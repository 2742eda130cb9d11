"""Benchmark results in (lighteval's and lm_eval's results JSON) and out (``.eval_results``).

The fixtures under tests/data/evals/ were written by the tools themselves
(make_lighteval.py: lighteval's Pipeline and EvaluationTracker; make_lm_eval.py: a real
``lm_eval run`` on a tiny checkpoint with a local task).
"""

from __future__ import annotations

import dataclasses
import html
import itertools
import json
import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from r1release import evals
from r1release.evals import (
    BENCHMARKS,
    LIGHTEVAL,
    LM_EVAL,
    MAX_FILE_BYTES,
    MAX_FILES,
    EvalResult,
    EvalResultsError,
    benchmark_for,
    eval_result_files,
    load_evals,
    read_results,
    resolve_evals,
)

DATA = Path(__file__).parent / "data" / "evals"
LIGHTEVAL_FILE = next((DATA / "lighteval").glob("results_*.json"))
LM_EVAL_FILE = next((DATA / "lm_eval").glob("results_*.json"))


def by_key(results: list[EvalResult]) -> dict[tuple[str, str], EvalResult]:
    return {(r.task, r.metric): r for r in results}


def edited(tmp_path: Path, source: Path, change, name: str | None = None) -> Path:
    """A copy of a fixture with ``change(doc)`` applied."""
    doc = json.loads(source.read_text())
    change(doc)
    target = tmp_path / (name or source.name)
    target.write_text(json.dumps(doc))
    return target


def hub_entries(content: bytes):
    """A ``.eval_results`` file read back the way huggingface_hub reads it."""
    from huggingface_hub import parse_eval_result_entries  # late: after conftest.py set HF_HOME

    return parse_eval_result_entries(yaml.safe_load(content))


# --- reading the tools' files --------------------------------------------------------------


def test_lighteval_file_gives_every_task_metric_with_its_settings():
    results = by_key(read_results(LIGHTEVAL_FILE, "evals/lighteval.json"))
    assert set(results) == {
        ("aime24|0", "pass@k:k=1"),
        ("aime24|0", "avg@n:n=1"),
        ("math_500|0", "pass@k:k=1&n=1"),
        ("gpqa:diamond|0", "gpqa_pass@k:k=1"),
    }  # no "all" average, no "_stderr" entry as a result of its own
    aime = results["aime24|0", "pass@k:k=1"]
    assert aime.value == pytest.approx(0.6) and aime.stderr == pytest.approx(0.2449489742783178)
    assert (aime.benchmark, aime.dataset_id, aime.task_id) == (
        "AIME 2024",
        "HuggingFaceH4/aime_2024",
        "default",
    )
    assert aime.tool == LIGHTEVAL and aime.source == "evals/lighteval.json"
    assert aime.tool_version is None  # lighteval records a git sha only; here "?"
    assert aime.samples is None  # lighteval 0.13 leaves effective_num_docs at -1
    assert dict(aime.generation) == {
        "temperature": 0.6,
        "top_p": 0.95,
        "max_new_tokens": 32768,
        "num_samples": 1,
    }
    assert aime.date == LIGHTEVAL_FILE.name[len("results_") :][:10]  # the day in its name
    math500 = results["math_500|0", "pass@k:k=1&n=1"]
    assert (math500.benchmark, math500.dataset_id, math500.value) == (
        "MATH-500",
        "HuggingFaceH4/MATH-500",
        0.75,
    )
    gpqa = results["gpqa:diamond|0", "gpqa_pass@k:k=1"]
    assert (gpqa.dataset_id, gpqa.task_id, gpqa.value) == ("Idavidrein/gpqa", "gpqa_diamond", 0.5)


def test_lighteval_records_what_older_versions_write(tmp_path):
    """open-r1's lighteval names tasks ``lighteval|aime24|0``, fills ``effective_num_docs``
    and may leave max_new_tokens to the task's ``generation_size``; n comes from the metric."""

    def older(doc):
        doc["results"] = {"lighteval|aime24|0": doc["results"].pop("aime24|0")}
        doc["results"]["lighteval|aime24|0"]["avg@n:n=64"] = 0.5
        config = doc["config_tasks"].pop("aime24|0")
        config |= {"effective_num_docs": 30, "generation_size": 8192}
        doc["config_tasks"]["lighteval|aime24|0"] = config
        doc["config_general"]["model_config"]["generation_parameters"]["max_new_tokens"] = None
        doc["config_general"]["lighteval_sha"] = "0123456789abcdef0123456789abcdef01234567"

    results = by_key(read_results(edited(tmp_path, LIGHTEVAL_FILE, older)))
    avg = results["lighteval|aime24|0", "avg@n:n=64"]
    assert avg.benchmark == "AIME 2024" and avg.samples == 30 and avg.stderr is None
    assert avg.generation["num_samples"] == 64 and avg.generation["max_new_tokens"] == 8192
    assert avg.tool_version == "0123456789abcdef0123456789abcdef01234567"


def test_lm_eval_file_gives_each_metric_and_filter():
    results = by_key(read_results(LM_EVAL_FILE))
    assert set(results) == {
        ("r1release_tiny_arith", "exact_match,strict-match"),
        ("r1release_tiny_arith", "exact_match,flexible-extract"),
    }  # not alias, name, sample_len or the stderr entries
    strict = results["r1release_tiny_arith", "exact_match,strict-match"]
    assert strict.tool == LM_EVAL and strict.tool_version == "0.4.13"
    assert strict.value == 0.0 and strict.stderr == 0.0 and strict.samples == 4
    assert dict(strict.generation) == {
        "temperature": 0.6,
        "top_p": 0.95,
        "max_new_tokens": 16,
        "num_samples": 2,
    }
    assert strict.benchmark is None and strict.dataset_id is None  # a local task
    recorded = json.loads(LM_EVAL_FILE.read_text())["date"]  # lm_eval's: a Unix time
    assert strict.date.endswith("+00:00")
    assert datetime.fromisoformat(strict.date).timestamp() == pytest.approx(recorded, abs=1)
    assert strict.source == str(LM_EVAL_FILE)


def test_lm_eval_na_stderr_and_command_line_gen_kwargs(tmp_path):
    def change(doc):
        task = doc["results"].pop("r1release_tiny_arith")
        task["exact_match_stderr,strict-match"] = "N/A"
        task["exact_match,strict-match"] = 0.25
        doc["results"]["aime24"] = task
        doc["configs"]["aime24"] = doc["configs"].pop("r1release_tiny_arith")
        doc["n-samples"]["aime24"] = {"original": 30, "effective": 30}
        doc["config"]["gen_kwargs"] = {"temperature": 0.0, "max_gen_toks": 32768}

    results = by_key(read_results(edited(tmp_path, LM_EVAL_FILE, change)))
    aime = results["aime24", "exact_match,strict-match"]
    assert aime.stderr is None and aime.value == 0.25 and aime.samples == 30
    assert (aime.benchmark, aime.dataset_id) == ("AIME 2024", "HuggingFaceH4/aime_2024")
    assert aime.generation["temperature"] == 0.0 and aime.generation["max_new_tokens"] == 32768


@pytest.mark.parametrize(
    ("gen_kwargs", "expected"),
    [
        # lm_eval's --gen_kwargs as typed on the command line, recorded as given
        (
            "temperature=0.6,top_p=0.95,max_gen_toks=32768,do_sample=True",
            {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 32768},
        ),
        # the task's max_gen_toks outranks max_new_tokens; a quoted temperature is a string
        ("max_new_tokens=1024,temperature='0.6'", {"top_p": 0.95, "max_new_tokens": 16}),
        # greedy: do_sample false wins over the task's temperature and top_p
        ("do_sample=false", {"temperature": 0.0, "max_new_tokens": 16}),
        ({"do_sample": False, "temperature": 0.6}, {"temperature": 0.0, "max_new_tokens": 16}),
        (
            {"max_tokens": 64, "do_sample": True},
            {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 64},
        ),
        ("", {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 16}),
    ],
)
def test_lm_eval_generation_as_lm_eval_used_it(tmp_path, gen_kwargs, expected):
    def change(doc):
        doc["config"]["gen_kwargs"] = gen_kwargs
        if isinstance(gen_kwargs, dict) and "max_tokens" in gen_kwargs:  # no max_gen_toks
            del doc["configs"]["r1release_tiny_arith"]["generation_kwargs"]["max_gen_toks"]

    result = read_results(edited(tmp_path, LM_EVAL_FILE, change))[0]
    assert dict(result.generation) == {**expected, "num_samples": 2}


def test_lm_eval_unset_do_sample_follows_the_temperature(tmp_path):
    def change(doc):
        kwargs = doc["configs"]["r1release_tiny_arith"]["generation_kwargs"]
        del kwargs["do_sample"]
        kwargs["temperature"] = 0.0

    result = read_results(edited(tmp_path, LM_EVAL_FILE, change))[0]
    assert dict(result.generation) == {"temperature": 0.0, "max_new_tokens": 16, "num_samples": 2}


@pytest.mark.parametrize(
    ("task", "benchmark"),
    [
        ("lighteval|aime24|0", "AIME 2024"),
        ("aime24|0", "AIME 2024"),
        ("aime24", "AIME 2024"),
        ("aime25", "AIME 2025"),
        ("lighteval|math_500|0", "MATH-500"),
        ("minerva_math500", "MATH-500"),
        ("gpqa:diamond|0", "GPQA Diamond"),
        ("gpqa_diamond_cot_zeroshot", "GPQA Diamond"),
        ("lcb:codegeneration|0", "LiveCodeBench"),
        ("gpqa:main|0", None),
        ("gsm8k", None),
        ("r1release_tiny_arith", None),
    ],
)
def test_known_benchmarks(task, benchmark):
    found = benchmark_for(task)
    assert (found.name if found else None) == benchmark


def test_the_table_covers_the_r1_benchmarks():
    names = {b.name: b.dataset_id for b in BENCHMARKS}
    assert names == {
        "AIME 2024": "HuggingFaceH4/aime_2024",
        "AIME 2025": "yentinglin/aime_2025",
        "MATH-500": "HuggingFaceH4/MATH-500",
        "GPQA Diamond": "Idavidrein/gpqa",
        "LiveCodeBench": "livecodebench/code_generation_lite",
    }


# --- writing .eval_results ---------------------------------------------------------------


def both() -> list[EvalResult]:
    return read_results(LIGHTEVAL_FILE, "lighteval.json") + read_results(LM_EVAL_FILE)


def test_eval_result_files_load_back_with_huggingface_hub():
    files = eval_result_files(both())
    assert list(files) == [
        ".eval_results/aime-2024_pass-k-k-1.yaml",
        ".eval_results/gpqa-diamond_gpqa-pass-k-k-1.yaml",
        ".eval_results/math-500_pass-k-k-1-n-1.yaml",
    ]  # the local lm_eval task has no Hub dataset: card only
    (entry,) = hub_entries(files[".eval_results/aime-2024_pass-k-k-1.yaml"])
    assert (entry.dataset_id, entry.task_id, entry.value) == (
        "HuggingFaceH4/aime_2024",
        "default",
        0.6,
    )
    assert entry.date == both()[0].date and entry.source_url is None
    assert entry.notes.startswith("lighteval, task aime24|0, metric pass@k:k=1; stderr 0.2449")
    assert "temperature 0.6" in entry.notes and "max_new_tokens 32768" in entry.notes
    (gpqa,) = hub_entries(files[".eval_results/gpqa-diamond_gpqa-pass-k-k-1.yaml"])
    assert (gpqa.dataset_id, gpqa.task_id, gpqa.value) == ("Idavidrein/gpqa", "gpqa_diamond", 0.5)


def test_eval_result_files_are_deterministic():
    results = both()
    assert eval_result_files(results) == eval_result_files(list(reversed(results)))


def test_lm_eval_results_of_a_known_benchmark_are_written(tmp_path):
    def as_aime(doc):  # lm-eval's aime25 task has no filter list: its filter is "none"
        task = doc["results"]["r1release_tiny_arith"]
        task["exact_match,none"] = task.pop("exact_match,strict-match")
        task["exact_match_stderr,none"] = task.pop("exact_match_stderr,strict-match")
        doc["results"] = {"aime25": task}
        doc["configs"] = {"aime25": doc["configs"]["r1release_tiny_arith"]}

    files = eval_result_files(read_results(edited(tmp_path, LM_EVAL_FILE, as_aime)))
    assert sorted(files) == [".eval_results/aime-2025_exact-match-none.yaml"]
    (entry,) = hub_entries(files[".eval_results/aime-2025_exact-match-none.yaml"])
    assert entry.dataset_id == "yentinglin/aime_2025" and entry.value == 0.0
    assert entry.date == read_results(LM_EVAL_FILE)[0].date
    assert entry.notes.startswith("lm-evaluation-harness 0.4.13, task aime25")


def test_one_benchmark_gets_one_leaderboard_score():
    """lighteval's aime24 scores pass@k and avg@n: ``EvalResultEntry`` has no metric, so only
    the benchmark's primary metric (pass@1, as open-r1 reports) goes to .eval_results; the
    other stays a row of the card."""
    results = by_key(read_results(LIGHTEVAL_FILE, "lighteval.json"))
    assert results["aime24|0", "pass@k:k=1"].leaderboard
    assert not results["aime24|0", "avg@n:n=1"].leaderboard
    assert results["aime24|0", "avg@n:n=1"].dataset_id == "HuggingFaceH4/aime_2024"  # linked
    files = eval_result_files(results.values())
    aime = [hub_entries(c)[0] for p, c in files.items() if p.startswith(".eval_results/aime")]
    assert [(e.dataset_id, e.value) for e in aime] == [("HuggingFaceH4/aime_2024", 0.6)]
    ids = [(e.dataset_id, e.task_id) for c in files.values() for e in hub_entries(c)]
    assert len(ids) == len(set(ids)) == 3  # AIME 2024, MATH-500, GPQA Diamond: one each


@pytest.mark.parametrize(
    ("task", "metrics", "primary"),
    [
        ("minerva_math500", ["exact_match,none", "math_verify,none"], "math_verify,none"),
        ("hendrycks_math500", ["exact_match,none"], "exact_match,none"),
        (
            "gpqa_diamond_cot_zeroshot",
            ["exact_match,strict-match", "exact_match,flexible-extract"],
            "exact_match,flexible-extract",
        ),
        ("gpqa_diamond_zeroshot", ["acc,none", "acc_norm,none"], "acc,none"),
        ("aime24", ["exact_match,strict-match"], None),  # not the task's own metric: card only
    ],
)
def test_lm_eval_primary_metric_per_benchmark(tmp_path, task, metrics, primary):
    def change(doc):
        doc["results"] = {task: {m: 0.5 for m in metrics}}
        doc["configs"] = {task: doc["configs"]["r1release_tiny_arith"]}

    results = read_results(edited(tmp_path, LM_EVAL_FILE, change))
    assert [r.metric for r in results if r.leaderboard] == ([primary] if primary else [])
    assert len(eval_result_files(results)) == (1 if primary else 0)


@pytest.mark.parametrize(
    ("metric", "primary"),
    [
        ("pass@k:k=1&n=64", True),
        ("pass@k:n=64&k=1", True),
        ("pass@k:k=8&n=64", False),
        ("avg@n:n=64", False),
        ("math-g-pass@k:k=16&n=48", False),
    ],
)
def test_lighteval_pass_at_1_is_the_primary_metric(tmp_path, metric, primary):
    def change(doc):
        doc["results"] = {"lighteval|aime25|0": {metric: 0.5, "avg@n:n=1": 0.25}}

    results = by_key(read_results(edited(tmp_path, LIGHTEVAL_FILE, change)))
    assert results["lighteval|aime25|0", metric].leaderboard is primary


def test_the_same_benchmark_twice_is_an_error():
    results = read_results(LIGHTEVAL_FILE, "a.json") + read_results(LIGHTEVAL_FILE, "b.json")
    with pytest.raises(EvalResultsError, match=r"b.json: AIME 2024 pass@k:k=1 is also in a.json"):
        eval_result_files(results)


def test_hostile_strings_are_one_bounded_line(tmp_path):
    hostile = "aime24\n::error file=x::owned\r\u2028" + "x" * 100_000

    def change(doc):
        doc["results"] = {"aime24|0": {hostile: 0.5, f"{hostile}_stderr": 0.1}}

    (result,) = read_results(edited(tmp_path, LIGHTEVAL_FILE, change), "evil\n::warning::.json")
    for text in (result.metric, result.source):
        assert "\n" not in text and "\r" not in text and "\u2028" not in text
        assert len(text) <= 120
    assert result.metric.startswith("aime24 ::error file=x::owned xxx") and result.stderr == 0.1
    (content,) = eval_result_files([dataclasses.replace(result, leaderboard=True)]).values()
    assert len(content) < 1000 and b"\n::" not in content
    (entry,) = hub_entries(content)
    assert result.metric in entry.notes and "\n" not in entry.notes


# --- bad files ---------------------------------------------------------------------------


def one_line_error(path: Path, source: str | None = None) -> str:
    with pytest.raises(EvalResultsError) as caught:
        read_results(path, source)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert caught.value.hint and caught.value.exit_code == 2
    return message


def test_bad_files_give_one_line_naming_the_file(tmp_path):
    (tmp_path / "text.json").write_text("not json at all")
    assert one_line_error(tmp_path / "text.json", "evals/text.json").startswith(
        "evals/text.json:1: not JSON"
    )
    (tmp_path / "latin1.json").write_bytes(b'{"a": "\xe9"}')
    assert "not UTF-8 text" in one_line_error(tmp_path / "latin1.json")
    (tmp_path / "other.json").write_text(json.dumps({"results": {"x": {"acc": 1.0}}}))
    assert "neither a lighteval nor an lm-evaluation-harness results file" in one_line_error(
        tmp_path / "other.json"
    )
    (tmp_path / "list.json").write_text("[1, 2]")
    assert "neither" in one_line_error(tmp_path / "list.json")
    assert "cannot read" in one_line_error(tmp_path / "missing.json")
    assert "cannot read (Is a directory)" in one_line_error(tmp_path)
    empty = edited(tmp_path, LM_EVAL_FILE, lambda d: d.update(results={}), "empty.json")
    assert "holds no benchmark result" in one_line_error(empty)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    assert "nested too deeply" in one_line_error(tmp_path / "deep.json")


def test_huge_files_and_entries_are_refused_without_reading_them(tmp_path):
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing is written, or read
    assert f"{MAX_FILE_BYTES + 1} bytes, more than" in one_line_error(huge)

    def many(doc):
        doc["results"]["r1release_tiny_arith"] |= {f"m{i},none": 0.5 for i in range(5000)}

    assert "result entries (at most 4096)" in one_line_error(edited(tmp_path, LM_EVAL_FILE, many))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo.json")
    assert "not a regular file" in one_line_error(tmp_path / "fifo.json")


def test_values_that_are_not_finite_numbers_are_left_out(tmp_path):
    def change(doc):
        doc["results"]["aime24|0"] = {
            "a": float("nan"),
            "b": "0.5",
            "c": True,
            "d": 0.25,
            "d_stderr": 10**400,  # too large for a float: no stderr
            "e": 10**400,
        }
        doc["config_tasks"]["aime24|0"]["metrics"] = 5  # not a list: no sampling count

    results = by_key(read_results(edited(tmp_path, LIGHTEVAL_FILE, change)))
    assert [k for k in results if k[0] == "aime24|0"] == [("aime24|0", "d")]
    assert results["aime24|0", "d"].stderr is None

    def lm_eval(doc):
        doc["results"]["r1release_tiny_arith"]["exact_match,strict-match"] = 10**400
        doc["date"] = 10**400

    (result,) = read_results(edited(tmp_path, LM_EVAL_FILE, lm_eval))
    assert result.metric == "exact_match,flexible-extract" and result.date is None


def test_an_integer_too_long_to_read_is_one_line(tmp_path):
    path = tmp_path / "long.json"
    path.write_text('{"results": {"aime24": {"acc,none": ' + "9" * 5000 + "}}}")
    message = one_line_error(path, "evals/long.json")
    assert message.startswith("evals/long.json: cannot be read as JSON (Exceeds the limit")
    assert len(message) < 400


# --- finding the files -------------------------------------------------------------------


def test_patterns_resolve_against_release_yaml_then_the_checkpoint(tmp_path):
    base, ckpt = tmp_path / "repo", tmp_path / "ckpt"
    (base / "evals").mkdir(parents=True)
    (ckpt / "eval").mkdir(parents=True)
    shutil.copy(LIGHTEVAL_FILE, base / "evals" / LIGHTEVAL_FILE.name)
    shutil.copy(LM_EVAL_FILE, ckpt / "eval" / "lm.json")
    found = resolve_evals(["evals/*.json", "eval/lm.json", "evals/**/*.json"], base, ckpt)
    assert [shown for _, shown in found] == [f"evals/{LIGHTEVAL_FILE.name}", "eval/lm.json"]
    results = load_evals(["evals/*.json", "eval/lm.json"], base, ckpt)
    assert {r.tool for r in results} == {LIGHTEVAL, LM_EVAL}
    assert {r.source for r in results} == {f"evals/{LIGHTEVAL_FILE.name}", "eval/lm.json"}
    with pytest.raises(EvalResultsError) as caught:
        load_evals(["evals/*.json", "results/missing-*.json"], base, ckpt)
    assert str(caught.value).startswith(
        "release.yaml: evals: 'results/missing-*.json' matches no file"
    )
    assert load_evals([], base, ckpt) == []


def test_the_number_of_results_files_is_bounded(tmp_path, monkeypatch):
    for i in range(MAX_FILES + 1):
        (tmp_path / f"results_{i}.json").write_text("{}")
    with pytest.raises(EvalResultsError, match=f"{MAX_FILES + 1} results files"):
        resolve_evals(["results_*.json"], tmp_path, tmp_path)

    def endless(pattern, root_dir, recursive):  # a glob over a huge tree
        yield from (f"results_{i}.json" for i in itertools.count())

    monkeypatch.setattr(evals.glob, "iglob", endless)
    with pytest.raises(EvalResultsError, match=f"{MAX_FILES + 1} results files"):
        resolve_evals(["**/*.json"], tmp_path, tmp_path)  # stops at the limit


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("/**/*.json", "is an absolute path"),
        ("/etc/passwd", "is an absolute path"),
        ("../other/results.json", "has a '..' part"),
        ("evals/../../*.json", "has a '..' part"),
        ("evals\\..\\x.json", "has a '..' part"),
    ],
)
def test_patterns_outside_the_roots_are_refused(tmp_path, monkeypatch, pattern, reason):
    def walked(*args, **kwargs):
        raise AssertionError("globbed")

    monkeypatch.setattr(evals.glob, "iglob", walked)
    with pytest.raises(EvalResultsError) as caught:
        resolve_evals([pattern], tmp_path, tmp_path)
    assert caught.value.message == f"release.yaml: evals: {pattern!r} {reason}"
    assert caught.value.hint and "\n" not in str(caught.value)


# --- a release with evals: ------------------------------------------------------------------


def release_yaml(tmp_path: Path, checkpoint: Path) -> Path:
    evals = tmp_path / "evals"
    evals.mkdir()
    shutil.copy(LIGHTEVAL_FILE, evals / LIGHTEVAL_FILE.name)
    shutil.copy(LM_EVAL_FILE, evals / LM_EVAL_FILE.name)
    from helpers import write_release_yaml

    path = write_release_yaml(tmp_path, checkpoint)
    path.write_text(path.read_text() + "    evals: [evals/results_*.json]\n")
    return path


@pytest.mark.slow
def test_the_stage_holds_the_eval_results_and_the_card_their_rows(checkpoint, tmp_path):
    from r1release.config import load
    from r1release.stage import build_stage

    path = release_yaml(tmp_path, checkpoint("qwen2.5-7b-instruct"))
    stage = build_stage(load(path).models[0], "v1.0.0", config_path=path)
    staged = {p: f for p, f in stage.files.items() if p.startswith(".eval_results/")}
    assert sorted(staged) == sorted(eval_result_files(both()))
    aime = staged[".eval_results/aime-2024_pass-k-k-1.yaml"]
    assert aime.origin == "evals" and hub_entries(aime.content)[0].value == 0.6
    shown = html.unescape(stage.card)  # the table's cells are escaped text
    assert "AIME 2024" in shown and "r1release_tiny_arith" in shown
    assert "| avg@n:n=1 |" in shown  # a metric that is no leaderboard score: card only
    assert "exact_match,strict-match" in shown


@pytest.mark.e2e
def test_a_release_puts_eval_results_on_the_hub(hub, checkpoint, tmp_path):
    from helpers import REPO_ID, TOKEN, r1release
    from hubserver import run_client

    release_yaml(tmp_path, checkpoint("qwen2.5-7b-instruct"))
    args = ("release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish")
    result = r1release(hub, tmp_path, *args)
    assert result.returncode == 0, result.stderr
    loaded = run_client(
        hub,
        """
import yaml
from huggingface_hub import ModelCard, hf_hub_download, parse_eval_result_entries
names = sorted(f for f in api.list_repo_files(params["repo"], revision="v1.0.0")
               if f.startswith(".eval_results/"))
entries = {}
for name in names:
    path = hf_hub_download(params["repo"], name, revision="v1.0.0")
    with open(path) as fh:
        entries[name] = [vars(e) for e in parse_eval_result_entries(yaml.safe_load(fh))]
card = ModelCard.load(hf_hub_download(params["repo"], "README.md", revision="v1.0.0"))
result = {"entries": entries, "card": card.text}
""",
        tmp_path / "client",
        token=TOKEN,
        repo=REPO_ID,
    )
    entries = loaded["entries"]
    assert sorted(entries) == sorted(eval_result_files(both()))
    (aime,) = entries[".eval_results/aime-2024_pass-k-k-1.yaml"]
    assert aime["dataset_id"] == "HuggingFaceH4/aime_2024" and aime["value"] == 0.6
    (math500,) = entries[".eval_results/math-500_pass-k-k-1-n-1.yaml"]
    assert math500["dataset_id"] == "HuggingFaceH4/MATH-500" and math500["value"] == 0.75
    shown = html.unescape(loaded["card"])
    assert "AIME 2024" in shown and "r1release_tiny_arith" in shown


@pytest.mark.e2e
def test_a_bad_results_file_stops_the_release_before_any_request(hub, checkpoint, tmp_path):
    from helpers import r1release

    release_yaml(tmp_path, checkpoint("qwen2.5-7b-instruct"))
    (tmp_path / "evals" / LM_EVAL_FILE.name).write_text("{ truncated")
    args = ("release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish")
    result = r1release(hub, tmp_path, *args)
    assert result.returncode == 2
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert line.startswith(f"error: evals/{LM_EVAL_FILE.name}:1: not JSON")
    assert hub.writes() == []

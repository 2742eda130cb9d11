"""finalize() at the end of real training runs: Trainer, TRL's SFTTrainer, accelerate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import edit_json
from hubserver import client_env

torch = pytest.importorskip("torch")
SCRIPT = Path(__file__).parent / "scripts" / "train_tiny.py"
FAILING = "qwen2.5-base-after-chatml-sft"


def train(source: Path, out: Path, *extra: str, env=None, launcher=(), timeout=300):
    cmd = [*launcher, str(SCRIPT), str(source), str(out), *extra]
    if not launcher:
        cmd = [sys.executable, *cmd]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=environment)


def assert_released_shape(out: Path, dataset: str = "open-r1/tiny-chats"):
    from click.testing import CliRunner

    from r1release.cli import main

    result = CliRunner().invoke(main, ["check", str(out)])
    assert result.exit_code == 0, result.output
    generation = json.loads((out / "generation_config.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert generation["use_cache"] is True and config["use_cache"] is True
    card = (out / "README.md").read_text()
    assert f"- {dataset}" in card and "- open-r1" in card and "license: apache-2.0" in card
    return generation


@pytest.mark.e2e
@pytest.mark.parametrize("trainer", ["plain", "sft"])
def test_finalize_after_training(checkpoint, tmp_path, trainer):
    source = checkpoint(FAILING)  # base EOS 151643, tokenizer EOS <|im_end|> 151645
    out = tmp_path / "out"
    run = train(source, out, "--trainer", trainer)
    assert run.returncode == 0, run.stderr[-3000:]
    generation = assert_released_shape(out)
    assert generation["eos_token_id"][0] == 151645
    assert set(generation["eos_token_id"]) == {151645, 151643}


@pytest.mark.e2e
def test_two_stop_tokens_are_kept(checkpoint, tmp_path):
    source = checkpoint("llama-3.1-8b-instruct")
    edit_json(source, "generation_config.json", eos_token_id=[128001, 128008])
    out = tmp_path / "out"
    run = train(source, out)
    assert run.returncode == 0, run.stderr[-3000:]
    generation = assert_released_shape(out)
    assert generation["eos_token_id"][0] == 128009  # tokenizer EOS <|eot_id|>
    assert set(generation["eos_token_id"]) == {128009, 128001, 128008}


@pytest.mark.e2e
def test_tokenizer_without_eos_raises_one_error(checkpoint, tmp_path):
    source = checkpoint(FAILING)
    edit_json(source, "tokenizer_config.json", eos_token=None)
    run = train(source, tmp_path / "out")
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("r1release.training.FinalizeError:")
    assert "tokenizer (tokenizer_config.json): the tokenizer has no eos_token" in last


@pytest.mark.e2e
def test_accelerate_two_processes_push_once(hub, checkpoint, tmp_path):
    pytest.importorskip("accelerate")
    source = checkpoint(FAILING)
    out, log = tmp_path / "out", tmp_path / "writes.jsonl"
    env = client_env(hub, tmp_path / "hf-home", "hf_train_token") | {"OMP_NUM_THREADS": "1"}
    # accelerate's --cpu runs one process; --multi_gpu goes through torchrun, and the script's
    # use_cpu=True makes that a 2-process gloo (MULTI_CPU) run without a GPU.
    launcher = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--multi_gpu",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]
    run = train(
        source,
        out,
        "--push",
        "org/tiny-sft",
        "--write-log",
        str(log),
        env=env,
        launcher=launcher,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    results = [
        json.loads(line.split(" ", 1)[1])
        for line in run.stdout.splitlines()
        if line.startswith("R1RESULT ")
    ]
    assert sorted(r["rank"] for r in results) == ["0", "1"]
    assert [r["main"] for r in sorted(results, key=lambda r: r["rank"])] == [True, False]
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    # Ranks meet through the store: a collective left in flight races the process group's
    # destructor when the script exits (an abort at exit, or a hang).
    assert [e for e in entries if "collective" in e] == []
    writes = [e for e in entries if "file" in e]
    assert {w["rank"] for w in writes} == {"0"}
    files = [w["file"] for w in writes]
    assert files.count("config.json") == 1 and files.count("generation_config.json") == 1
    assert files.count("README.md") == 1
    # exactly one commit: finalize's release, not also the Trainer's own "Model save" push
    assert hub.commit_counts["org/tiny-sft"] == 1
    assert "v0.1.0" in hub.repo("org/tiny-sft").tags
    assert_released_shape(out)


def test_callback_checks_each_checkpoint(checkpoint, tmp_path, caplog):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from r1release import R1ReleaseCallback
    from r1release.training import FinalizeError

    source = checkpoint(FAILING)
    out = tmp_path / "run"
    (out).mkdir()
    (out / "checkpoint-5").symlink_to(source, target_is_directory=True)
    args = TrainingArguments(output_dir=str(out), report_to=[], use_cpu=True)
    state = TrainerState()
    state.global_step = 5
    callback = R1ReleaseCallback()
    with caplog.at_level("WARNING", logger="r1release"):
        callback.on_save(args, state, TrainerControl())
    assert callback.reports[5].errors
    assert "eos-alignment" in caplog.text
    with pytest.raises(FinalizeError, match="eos-alignment"):
        R1ReleaseCallback(fail_on_error=True).on_save(args, state, TrainerControl())


class _Ranks:
    """Two ranks' worth of trainer, as finalize sees them, over one real TCPStore."""

    def __init__(self, rank: int, world: int = 2):
        self.accelerator = type("A", (), {"process_index": rank, "num_processes": world})()


def _store_pair():
    from datetime import timedelta

    from torch.distributed import TCPStore

    server = TCPStore("127.0.0.1", 0, 2, True, timedelta(seconds=30), wait_for_workers=False)
    client = TCPStore("127.0.0.1", server.port, 2, False, timedelta(seconds=30))
    return server, client


@pytest.mark.slow
def test_rendezvous_passes_main_value_and_main_leaves_last(monkeypatch):
    import threading

    from r1release import training

    server, client = _store_pair()
    stores = {0: server, 1: client}
    local = threading.local()
    monkeypatch.setattr(training, "_default_store", lambda: stores[local.rank])
    arrived, left, got = {}, {}, {}

    def run(rank: int, value):
        local.rank = rank
        if rank == 1:
            threading.Event().wait(0.5)  # arrives late: rank 0 must wait for it
        arrived[rank] = time.monotonic()
        got[rank] = training._rendezvous(_Ranks(rank), value)
        left[rank] = time.monotonic()

    class PerRank:  # each rank is its own process, with its own count of rendezvous
        def __next__(self):
            local.count = getattr(local, "count", 0) + 1
            return local.count

    monkeypatch.setattr(training, "_rendezvous_count", PerRank())
    threads = [
        threading.Thread(target=run, args=(r, "push failed: x" if r == 0 else None)) for r in (0, 1)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert got == {0: "push failed: x", 1: "push failed: x"}
    # The main process (which may host the store) leaves only once rank 1 has been and read.
    assert left[0] >= arrived[1]


@pytest.mark.slow
def test_rendezvous_timeout_is_one_error_naming_the_knob(monkeypatch):
    from r1release import training

    _server, client = _store_pair()
    monkeypatch.setattr(training, "_default_store", lambda: client)
    monkeypatch.setenv("R1RELEASE_FINALIZE_TIMEOUT", "0.5")
    with pytest.raises(training.FinalizeError) as caught:
        training._rendezvous(_Ranks(1), None)  # the main process never arrives
    assert "rank 1: finalize stopped waiting for the main process after 0.5 s" in str(caught.value)
    assert "R1RELEASE_FINALIZE_TIMEOUT" in caught.value.hint
    monkeypatch.setenv("R1RELEASE_FINALIZE_TIMEOUT", "soon")
    with pytest.raises(training.FinalizeError, match="is not a number of seconds"):
        training._finalize_timeout()


@pytest.mark.slow
def test_an_unexpected_main_error_reaches_the_waiting_rank(monkeypatch):
    import threading

    from r1release import training

    server, client = _store_pair()
    stores = {0: server, 1: client}
    local = threading.local()
    monkeypatch.setattr(training, "_default_store", lambda: stores[local.rank])

    class PerRank:
        def __next__(self):
            local.count = getattr(local, "count", 0) + 1
            return local.count

    monkeypatch.setattr(training, "_rendezvous_count", PerRank())
    raised, got = [], {}

    def main_rank():
        local.rank = 0
        try:
            with training._main_step(_Ranks(0), training._MainStep()):
                raise OSError(28, "No space left on device")
        except OSError as exc:
            raised.append(exc)

    def other_rank():
        local.rank = 1
        got[1] = training._rendezvous(_Ranks(1), None)

    threads = [threading.Thread(target=main_rank), threading.Thread(target=other_rank)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(raised) == 1  # the main process raises the real error
    assert got[1] == "the main process failed: OSError: [Errno 28] No space left on device"

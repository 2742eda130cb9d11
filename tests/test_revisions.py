"""Checkpoints pushed to revision branches during training (r1release.revisions, the callback,
``r1release push --revision``), against the loopback Hub."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from r1release.config import ModelConfig
from r1release.revisions import (
    RevisionJob,
    RevisionPusher,
    branch_name,
    publish_checkpoint,
    stop_unchecked_pushes,
)

from helpers import REPO_ID, TOKEN, run_cli, write_release_yaml
from hubserver import patch_client

TRAINING_STATE = ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin")


def _model(path: Path, repo_id: str = REPO_ID) -> ModelConfig:
    return ModelConfig(name="tiny", checkpoint=path, repo_id=repo_id)


def _job(tmp_path: Path, step: int) -> RevisionJob:
    path = tmp_path / f"checkpoint-{step}"
    path.mkdir(exist_ok=True)
    return RevisionJob(step, path, branch_name("v00.00", step))


def _settle(pusher: RevisionPusher) -> None:
    """Let the worker finish what is queued, without wait()'s own retry."""
    worker = pusher._worker
    if worker is not None:
        worker.join(10)


def test_branch_names_follow_open_r1():
    assert branch_name("v00.00", 40) == "v00.00-step-000000040"


def test_one_push_in_flight_every_save_pushed_in_order(tmp_path):
    gate, started, seen, running = threading.Event(), threading.Event(), [], []

    def push(job):
        running.append(job.step)
        assert len(running) - len(seen) == 1  # never two at once
        started.set()
        gate.wait(10)
        seen.append(job.step)
        return f"url/{job.step}"

    pusher = RevisionPusher(_model(tmp_path), keep_visibility=True, push=push)
    pusher.submit(_job(tmp_path, 1))
    assert started.wait(10)
    t0 = time.monotonic()
    pusher.submit(_job(tmp_path, 2))  # the saving (training) thread does not wait
    pusher.submit(_job(tmp_path, 3))
    assert time.monotonic() - t0 < 1 and seen == []
    gate.set()
    assert pusher.wait(10)
    assert seen == [1, 2, 3]
    assert [o.commit_url for o in pusher.outcomes] == ["url/1", "url/2", "url/3"]


def test_a_failed_push_is_logged_and_retried_at_the_next_save(tmp_path, caplog):
    failures = {1: 1}
    pushed = []

    def push(job):
        if failures.get(job.step):
            failures[job.step] -= 1
            raise ConnectionError("the Hub went away")
        pushed.append(job.step)
        return "url"

    pusher = RevisionPusher(_model(tmp_path), keep_visibility=True, push=push)
    with caplog.at_level(logging.ERROR, logger="r1release"):
        pusher.submit(_job(tmp_path, 1))
        _settle(pusher)
    assert [j.step for j in pusher.failed] == [1]
    assert "pushing checkpoint-1 to branch v00.00-step-000000001 failed" in caplog.text
    assert "ConnectionError: the Hub went away" in caplog.text
    pusher.submit(_job(tmp_path, 2))
    _settle(pusher)  # the save alone retries it, no wait()
    assert pushed == [1, 2] and pusher.failed == ()


def test_a_failed_checkpoint_deleted_meanwhile_is_not_retried(tmp_path, caplog):
    def push(job):
        raise ConnectionError("down")

    pusher = RevisionPusher(_model(tmp_path), keep_visibility=True, push=push)
    job = _job(tmp_path, 1)
    pusher.submit(job)
    _settle(pusher)
    job.path.rmdir()  # save_total_limit rotated it away
    with caplog.at_level(logging.WARNING, logger="r1release"):
        assert pusher.wait(10)
    assert "checkpoint-1 is gone" in caplog.text
    assert pusher.failed == ()


def test_wait_is_bounded(tmp_path):
    gate = threading.Event()
    pusher = RevisionPusher(_model(tmp_path), keep_visibility=True, push=lambda j: gate.wait(10))
    pusher.submit(_job(tmp_path, 1))
    assert pusher.wait(0.05) is False
    gate.set()
    assert pusher.wait(10)


def test_a_refused_checkpoint_is_not_retried(tmp_path, caplog):
    from r1release.findings import Finding, Report, Severity
    from r1release.stage import ReleaseBlocked

    finding = Finding("R999", "tokenizer", Severity.ERROR, "the tokenizer has no eos_token")
    attempts = []

    def push(job):
        attempts.append(job.step)
        raise ReleaseBlocked(Report(str(job.path), (finding,)))

    pusher = RevisionPusher(_model(tmp_path), keep_visibility=True, push=push)
    with caplog.at_level(logging.ERROR, logger="r1release"):
        pusher.submit(_job(tmp_path, 1))
        pusher.submit(_job(tmp_path, 2))
        assert pusher.wait(10)
    assert attempts == [1, 2] and pusher.failed == ()
    assert "checkpoint-1 is not pushed to branch v00.00-step-000000001" in caplog.text
    assert "the tokenizer has no eos_token" in caplog.text


def test_a_push_loading_the_tokenizer_leaves_the_training_threads_logging_alone(
    checkpoint, monkeypatch
):
    """transformers' verbosity is process-wide: a worker thread must not lower it (the
    training thread's warnings would vanish) nor restore a stale value."""
    from transformers import PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    from r1release.tokenizer_view import _load_fast_tokenizer

    path = checkpoint("qwen2.5-7b-instruct")
    loading, release, loaded = threading.Event(), threading.Event(), []
    original = PreTrainedTokenizerFast.from_pretrained

    def paused(*args, **kwargs):
        loading.set()
        release.wait(20)
        return original(*args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerFast, "from_pretrained", paused)
    verbosity = hf_logging.get_verbosity()
    worker = threading.Thread(target=lambda: loaded.append(_load_fast_tokenizer(path)))
    worker.start()
    try:
        assert loading.wait(30)
        assert hf_logging.get_verbosity() == verbosity
    finally:
        release.set()
        worker.join(30)
    assert loaded and hf_logging.get_verbosity() == verbosity


@pytest.mark.parametrize(
    ("push", "strategy", "stopped"),
    [
        (True, "every_save", True),
        (True, "checkpoint", True),
        (True, "end", False),
        (False, "every_save", False),
    ],
)
def test_the_trainers_unchecked_pushes_to_main_are_stopped(caplog, push, strategy, stopped):
    args = SimpleNamespace(push_to_hub=push, hub_strategy=strategy)
    with caplog.at_level(logging.WARNING, logger="r1release"):
        assert stop_unchecked_pushes(args, "finalize") is stopped
    assert args.hub_strategy == ("end" if stopped else strategy)
    assert ("unchecked to main" in caplog.text) is stopped


# ------------------------------------------------------------------ against the loopback Hub


def _with_training_state(path: Path) -> Path:
    for name in TRAINING_STATE:
        (path / name).write_bytes(b"\x80\x04training state")
    return path


@pytest.mark.slow
def test_a_checkpoint_goes_to_its_branch_as_one_commit_without_training_state(
    hub, checkpoint, tmp_path, monkeypatch
):
    patch_client(monkeypatch, hub, tmp_path / ".hf-home", TOKEN)
    monkeypatch.setenv("R1RELEASE_RETRY_SCALE", "0")
    hub.add_repo(REPO_ID)
    main_head = hub.repo(REPO_ID).branches["main"]
    path = _with_training_state(checkpoint("qwen2.5-base-after-chatml-sft"))  # EOS needs a fix
    job = RevisionJob(3, path, branch_name("v00.00", 3))
    url = publish_checkpoint(_model(path), job, keep_visibility=True)
    repo = hub.repo(REPO_ID)
    head = repo.branches["v00.00-step-000000003"]
    assert url.endswith(head)
    assert repo.commits[head].parent == main_head  # one commit, branched from main
    assert repo.branches["main"] == main_head and repo.tags == {}
    files = hub.files(REPO_ID, "v00.00-step-000000003")
    assert not set(TRAINING_STATE) & set(files)
    assert "model.safetensors" in files or "model.safetensors.index.json" in files
    assert b"151645" in files["generation_config.json"]  # the fix is staged, not skipped
    # the same checkpoint again: nothing to commit
    publish_checkpoint(_model(path), job, keep_visibility=True)
    assert hub.repo(REPO_ID).branches["v00.00-step-000000003"] == head


@pytest.mark.slow
def test_a_checkpoint_branch_drops_mains_own_files(hub, checkpoint, tmp_path, monkeypatch):
    """A branch made from main's head holds the checkpoint only: not main's benchmark
    numbers (.eval_results, under push.keep on main) nor other files main's record does not
    list (kept on main as "not made by r1release")."""
    import json

    from r1release.stage import RECORD

    patch_client(monkeypatch, hub, tmp_path / ".hf-home", TOKEN)
    monkeypatch.setenv("R1RELEASE_RETRY_SCALE", "0")
    hub.add_repo(REPO_ID)
    record = {"schema_version": 1, "files": [{"path": "README.md", "size": 7, "sha256": "0" * 64}]}
    foreign = {".eval_results/x.yaml": b"- value: 83.1\n", "USAGE.md": b"by hand\n"}
    hub.add_commit(
        REPO_ID, {"README.md": b"release", RECORD: json.dumps(record).encode(), **foreign}
    )
    main_files = hub.files(REPO_ID, "main")
    path = checkpoint("qwen2.5-7b-instruct")
    job = RevisionJob(5, path, branch_name("v00.00", 5))
    publish_checkpoint(_model(path), job, keep_visibility=True)
    files = hub.files(REPO_ID, job.branch)
    assert not set(foreign) & set(files)
    assert json.loads(files[RECORD])["files"] != record["files"]  # the checkpoint's own
    assert hub.files(REPO_ID, "main") == main_files  # main untouched
    publish_checkpoint(_model(path), job, keep_visibility=True)  # again: nothing to commit
    assert hub.commit_counts[REPO_ID] == 1


@pytest.mark.slow
def test_push_revision_releases_a_directory_to_a_branch(hub, checkpoint, tmp_path, monkeypatch):
    path = _with_training_state(checkpoint("qwen2.5-7b-instruct"))
    write_release_yaml(tmp_path, path)
    run = run_cli(
        monkeypatch,
        hub,
        tmp_path,
        *("push", str(path), "--version", "v0.1.0"),
        *("--revision", "ckpt/step-10", "--publish"),
    )
    assert run.returncode == 0, run.stderr
    repo = hub.repo(REPO_ID)
    assert repo.tags["v0.1.0"] == repo.branches["ckpt/step-10"]
    assert list(hub.files(REPO_ID, "main")) == [".gitattributes"]  # main untouched
    assert not set(TRAINING_STATE) & set(hub.files(REPO_ID, "ckpt/step-10"))


def test_push_revision_is_checked_as_a_branch_name(hub, checkpoint, tmp_path, monkeypatch):
    path = checkpoint("qwen2.5-7b-instruct")
    write_release_yaml(tmp_path, path)
    run = run_cli(
        monkeypatch,
        hub,
        tmp_path,
        *("push", str(path), "--version", "v0.1.0"),
        *("--revision", "bad..name", "--dry-run"),
    )
    assert run.returncode == 2
    assert "--revision 'bad..name'" in run.stderr and "branch name" in run.stderr
    assert hub.writes() == []


# ------------------------------------------------------------------ a real tiny training run


@pytest.mark.slow
def test_training_pushes_each_save_to_its_branch_and_finalize_waits(
    hub, checkpoint, tmp_path, monkeypatch, caplog
):
    from datasets import Dataset
    from transformers import (
        DataCollatorForLanguageModeling,
        PreTrainedTokenizerFast,
        Trainer,
        TrainingArguments,
    )

    from r1release import finalize
    from r1release.training import R1ReleaseCallback

    from factory import tiny_qwen2

    patch_client(monkeypatch, hub, tmp_path / ".hf-home", TOKEN)
    monkeypatch.setenv("R1RELEASE_RETRY_SCALE", "0")
    repo_id = "org/tiny-ckpt"
    source = checkpoint("qwen2.5-7b-instruct")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(source)
    texts = [f"w{i} w{i + 1} w{i + 2}" for i in range(8)]
    dataset = Dataset.from_dict({"text": texts}).map(
        lambda b: tokenizer(b["text"]), batched=True, remove_columns=["text"]
    )
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        save_steps=1,
        per_device_train_batch_size=4,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        push_to_hub=True,  # with the default hub_strategy every_save: pushes to main...
        hub_model_id=repo_id,
    )
    first, second = branch_name("v00.00", 1), branch_name("v00.00", 2)
    # step 1's commit fails through every retry; step 2's is slow: training must not wait
    hub.fail("POST", rf"/commit/{first}$", status=500, times=6)
    hub.slow("POST", rf"/commit/{second}$", seconds=2.0)
    callback = R1ReleaseCallback(push_revisions=True, license="apache-2.0")
    trainer = Trainer(
        model=tiny_qwen2(tie_word_embeddings=True),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        callbacks=[callback],
    )
    assert args.hub_strategy == "end"  # ...which the callback stopped
    with caplog.at_level(logging.INFO, logger="r1release"):
        trainer.train()
        assert second not in hub.repo(repo_id).branches  # still uploading after training
        result = finalize(trainer, tokenizer, dataset_name=None, push_to_hub=False)
    repo = hub.repo(repo_id)
    main_head = repo.branches["main"]
    assert list(hub.files(repo_id, "main")) == [".gitattributes"]  # no unchecked push
    for branch in (first, second):
        head = repo.branches[branch]  # step 1 retried at the save of step 2
        assert repo.commits[head].parent == main_head, branch  # one commit each
        files = hub.files(repo_id, branch)
        assert not {"optimizer.pt", "scheduler.pt"} & set(files), branch
        assert not [f for f in files if f.startswith("rng_state")], branch
        assert "model.safetensors" in files and "license: apache-2.0" in files["README.md"].decode()
    assert hub.commit_counts[repo_id] == 2 and repo.tags == {}
    assert f"pushing checkpoint-1 to branch {first} failed" in caplog.text
    assert "unchecked to main" in caplog.text
    assert "waiting for the checkpoint pushes" in caplog.text
    assert result.report.errors == ()


def test_a_hub_that_stays_down_costs_at_most_two_attempts_per_checkpoint(tmp_path, caplog):
    attempts = []

    def push(job):
        attempts.append(job.step)
        raise ConnectionError("down")

    pusher = RevisionPusher(_model(tmp_path), keep_visibility=True, push=push)
    with caplog.at_level(logging.ERROR, logger="r1release"):
        pusher.submit(_job(tmp_path, 1))
        pusher.submit(_job(tmp_path, 2))  # queued while 1 may still be running
        _settle(pusher)
        assert attempts == [1, 1, 2]  # 1 retried once, at the save of 2
        pusher.submit(_job(tmp_path, 3))
        _settle(pusher)
        assert attempts == [1, 1, 2, 2, 3]  # 1 is not tried a third time
        assert pusher.wait(10)
        assert pusher.wait(10)  # finalize waiting twice: 3 still has had one retry only
    assert attempts == [1, 1, 2, 2, 3, 3]
    assert [j.step for j in pusher.failed] == [1, 2, 3]
    assert caplog.text.count("failed (again: given up)") == 3
    assert caplog.text.count("failed (retried once, at the next save or by finalize)") == 3


def test_a_refused_checkpoints_report_is_logged_on_one_bounded_line(tmp_path, caplog):
    from r1release.findings import Finding, Report, Severity
    from r1release.stage import ReleaseBlocked

    long = "x" * 3000
    findings = [
        Finding("R999", "tokenizer", Severity.ERROR, f"line one\nline two {long}"),
        Finding("R998", "shard-index", Severity.ERROR, "missing\nshard"),
    ]

    def push(job):
        raise ReleaseBlocked(Report(str(job.path), tuple(findings)))

    pusher = RevisionPusher(_model(tmp_path), keep_visibility=True, push=push)
    with caplog.at_level(logging.ERROR, logger="r1release"):
        pusher.submit(_job(tmp_path, 1))
        assert pusher.wait(10)
    [record] = [r for r in caplog.records if "is not pushed" in r.getMessage()]
    line = record.getMessage()
    assert "\n" not in line and "line one line two x" in line and len(line) < 2200
    [outcome] = pusher.outcomes
    assert outcome.error is not None and "\n" not in outcome.error


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"revision": "main"}, "revision='main'"),
        ({"revision": "bad..name"}, "revision='bad..name'"),
        ({"license": "apache2"}, "license=..."),
    ],
)
def test_callback_arguments_are_checked_before_training(kwargs, message):
    from r1release.training import FinalizeError, R1ReleaseCallback

    with pytest.raises(FinalizeError, match=message.replace(".", r"\.").replace("(", r"\(")):
        R1ReleaseCallback(push_revisions=True, **kwargs)


@pytest.mark.slow
def test_push_revisions_needs_a_repository(tmp_path):
    from r1release.training import FinalizeError, R1ReleaseCallback

    args = SimpleNamespace(output_dir=str(tmp_path), hub_model_id=None, push_to_hub=False)
    with pytest.raises(FinalizeError, match="needs a Hub repository") as caught:
        R1ReleaseCallback(push_revisions=True).on_init_end(args, None, None)
    assert "hub_model_id" in caught.value.hint


@pytest.mark.slow
def test_a_callback_reused_by_a_second_trainer_publishes_that_run(tmp_path):
    from r1release.training import R1ReleaseCallback

    def args(run: str, repo_id: str) -> SimpleNamespace:
        return SimpleNamespace(output_dir=str(tmp_path / run), hub_model_id=repo_id)

    callback = R1ReleaseCallback(push_revisions=True)
    callback.on_init_end(args("first", "org/first"), None, None)
    first = callback.pusher
    callback.on_train_begin(args("first", "org/first"), None, None)
    assert callback.pusher is first  # the same run: the same pusher
    for run, repo_id in (("second", "org/first"), ("second", "org/second")):
        callback.on_init_end(args(run, repo_id), None, None)
        assert callback.pusher is not first
        assert callback.pusher.model.checkpoint == tmp_path / run
        assert callback.pusher.model.repo_id == repo_id
        first = callback.pusher


@pytest.mark.slow
def test_finalize_stops_the_trainers_pushes_and_waits_a_bounded_time(tmp_path, monkeypatch, caplog):
    from r1release.training import R1ReleaseCallback, _wait_for_revisions

    gate, finished = threading.Event(), []
    callback = R1ReleaseCallback()
    hanging = RevisionPusher(_model(tmp_path), keep_visibility=True, push=lambda j: gate.wait(10))
    callback.pusher = hanging
    callback.pusher.submit(_job(tmp_path, 1))
    trainer = SimpleNamespace(
        args=SimpleNamespace(push_to_hub=True, hub_strategy="every_save"),
        callback_handler=SimpleNamespace(callbacks=[callback]),
        _finish_current_push=lambda: finished.append(True),  # the Trainer's push in flight
    )
    monkeypatch.setenv("R1RELEASE_FINALIZE_TIMEOUT", "0.2")
    with caplog.at_level(logging.INFO, logger="r1release"):
        t0 = time.monotonic()
        _wait_for_revisions(trainer)
        assert time.monotonic() - t0 < 5
    gate.set()
    assert finished == [True] and trainer.args.hub_strategy == "end"
    assert "finalize: hub_strategy=every_save" in caplog.text
    assert "checkpoint pushes still running after 0.2 s" in caplog.text
    assert "R1RELEASE_FINALIZE_TIMEOUT" in caplog.text
    assert callback.pusher.wait(10)

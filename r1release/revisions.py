"""Training checkpoints published to their own Hub branches while training goes on.

``R1ReleaseCallback(push_revisions=True)`` hands each saved ``checkpoint-N`` to a
:class:`RevisionPusher`, which publishes it to the branch ``{revision}-step-{N:09d}`` (open-r1's
``PushToHubRevisionCallback`` naming) through the release pipeline: checks, fixes staged,
training state left out, one verified commit, no tag, never ``main``.

- One worker thread, so at most one upload is in flight and training never waits for one.
- Every save is pushed, in order: each has its own branch, and a run evaluated branch by
  branch (as open-r1 does) needs every one of them. A save made while an upload runs waits
  for it; a checkpoint deleted meanwhile (``save_total_limit``) is skipped with a warning.
- A failed push is logged on the ``r1release`` logger and tried again once, while its
  checkpoint still exists: before the next save is pushed, or by :meth:`RevisionPusher.wait`
  (finalize) when no save came after it. When that retry fails too the push is given up
  (logged, and listed by :attr:`RevisionPusher.failed`), so a Hub that stays down costs at
  most two attempts per checkpoint: never a loop, and no backlog that grows with each save.
- A checkpoint is not a release: missing card metadata (license, datasets, base model) is
  a warning here, never a reason to skip the push; every other error finding blocks it.

This module imports no training library: the callback in :mod:`r1release.training` drives it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from r1release.config import ModelConfig, RuleSetting

logger = logging.getLogger("r1release")

DEFAULT_REVISION = "v00.00"  # open-r1's hub_model_revision default
# Training state is expected in checkpoint-N (it is left out of the upload, not an error),
# and a checkpoint needs no release metadata.
REVISION_SETTINGS = {
    "leftovers": RuleSetting(severity="off"),
    "card-metadata": RuleSetting(severity="warning"),
}


def branch_name(revision: str, step: int) -> str:
    """The branch of the checkpoint saved at ``step``, as open-r1 names it."""
    return f"{revision}-step-{step:09d}"


@dataclass(frozen=True)
class RevisionJob:
    step: int
    path: Path
    branch: str


@dataclass(frozen=True)
class RevisionOutcome:
    job: RevisionJob
    commit_url: str | None = None
    error: str | None = None  # one line: what failed, for the log and the caller
    retry: bool = True  # False when trying again cannot help (the checkpoint is refused)


Push = Callable[[RevisionJob], str]


@dataclass(frozen=True)
class _Queued:
    job: RevisionJob | None  # None: wait()'s marker, which only triggers the retries
    fresh: bool = True  # a new save, not yet preceded by the retries of what failed
    last: bool = False  # the retry of a failed push: its last attempt


class RevisionPusher:
    """Publishes checkpoints one at a time in a worker thread; see the module docstring.

    ``push`` publishes one job and returns its commit URL (:func:`publish_checkpoint` by
    default, bound to ``model``); any exception it raises is a failed push."""

    def __init__(self, model: ModelConfig, *, keep_visibility: bool, push: Push | None = None):
        self.model = model
        self._push = push or (lambda job: publish_checkpoint(model, job, keep_visibility))
        self._lock = threading.Lock()
        self._queue: deque[_Queued] = deque()
        self._failed: list[RevisionJob] = []  # failed once: retried once, then given up
        self._given_up: list[RevisionJob] = []  # failed twice: not tried again
        self._worker: threading.Thread | None = None
        self.outcomes: list[RevisionOutcome] = []

    def submit(self, job: RevisionJob) -> None:
        """Queue the save ``job``; the caller (the training loop) does not wait."""
        with self._lock:
            self._queue.append(_Queued(job))
            self._start()

    def wait(self, timeout: float) -> bool:
        """Give what failed and is not retried yet its one retry, then wait up to ``timeout``
        seconds for every queued push; False when some are still running or waiting then."""
        with self._lock:
            self._queue.append(_Queued(None))  # like a save: the failed are retried first
            self._start()
            worker = self._worker
        if worker is not None:
            worker.join(timeout)
        with self._lock:
            return not self._queue and not (self._worker and self._worker.is_alive())

    @property
    def failed(self) -> tuple[RevisionJob, ...]:
        """The pushes that failed and are not on the Hub, oldest first: those given up after
        their retry, then those still waiting for it."""
        with self._lock:
            return (*self._given_up, *self._failed)

    def _retries(self) -> list[_Queued]:
        """The pushes that failed once, oldest first, whose checkpoint still exists: each is
        tried again, a last time, before the next save is pushed."""
        retry = []
        for job in self._failed:
            if job.path.is_dir():
                retry.append(_Queued(job, fresh=False, last=True))
            else:
                logger.warning(
                    "r1release: %s is gone (save_total_limit?): branch %s is not pushed again",
                    job.path,
                    job.branch,
                )
        self._failed.clear()
        return retry

    def _start(self) -> None:
        """A worker when there is work and none runs. Not a daemon: an upload in flight when
        the script ends is finished, not cut off."""
        if self._queue and not (self._worker and self._worker.is_alive()):
            self._worker = threading.Thread(target=self._run, name="r1release-revisions")
            self._worker.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._worker = None
                    return
                item = self._queue.popleft()
                if item.fresh and self._failed:  # a newer save: retry the failed first, once
                    again = [*self._retries(), _Queued(item.job, fresh=False)]
                    self._queue.extendleft(reversed(again))
                    continue
            if item.job is None:
                continue
            outcome = self._attempt(item.job, last=item.last)
            with self._lock:
                self.outcomes.append(outcome)
                if outcome.error is not None and outcome.retry:
                    (self._given_up if item.last else self._failed).append(item.job)

    def _attempt(self, job: RevisionJob, *, last: bool) -> RevisionOutcome:
        if not job.path.is_dir():
            logger.warning("r1release: %s is gone before it was pushed to %s", job.path, job.branch)
            return RevisionOutcome(job, error=f"{job.path} is gone", retry=False)
        from r1release.errors import R1ReleaseError
        from r1release.stage import ReleaseBlocked

        started = time.monotonic()
        try:
            url = self._push(job)
        except ReleaseBlocked as exc:  # the same bytes fail the same checks: no retry
            error = _one_line(str(exc))
            logger.error(
                "r1release: %s is not pushed to branch %s: %s", job.path.name, job.branch, error
            )
            return RevisionOutcome(job, error=error, retry=False)
        except Exception as exc:  # any other failure: logged, retried once
            text = str(exc) if isinstance(exc, R1ReleaseError) else f"{type(exc).__name__}: {exc}"
            error = _one_line(text)
            logger.error(
                "r1release: pushing %s to branch %s failed (%s): %s",
                job.path.name,
                job.branch,
                "again: given up" if last else "retried once, at the next save or by finalize",
                error,
            )
            return RevisionOutcome(job, error=error)
        logger.info(
            "r1release: pushed %s to branch %s in %.1f s: %s",
            job.path.name,
            job.branch,
            time.monotonic() - started,
            url,
        )
        return RevisionOutcome(job, commit_url=url)


def _one_line(text: str) -> str:
    """An error for the log and the caller: one line (a report lists its findings on several),
    bounded (a Hub reply or a long report can be any size)."""
    return " ".join(text.split())[:2000]


def publish_checkpoint(model: ModelConfig, job: RevisionJob, keep_visibility: bool) -> str:
    """Stage and publish one checkpoint to its branch (no tag); returns the commit URL."""
    from r1release.card import ReleaseInfo
    from r1release.hub import publish
    from r1release.stage import build_stage

    checkpoint = replace(model, checkpoint=job.path)
    stage = build_stage(
        checkpoint,
        job.branch,
        release=ReleaseInfo.from_environment(job.branch),
        settings=REVISION_SETTINGS,
    )
    result = publish(
        stage, revision=job.branch, tag=False, log=logger.info, allow_public=keep_visibility
    )
    return result.commit_url


# ------------------------------------------------------------------- the Trainer's own pushes


def stop_unchecked_pushes(args: Any, who: str) -> bool:
    """With ``push_to_hub`` and a ``hub_strategy`` other than ``end`` (``every_save``, the
    Trainer's default, ``checkpoint``, ``all_checkpoints``), the Trainer pushes each save to
    ``main`` itself, unchecked and unfixed. Set the strategy to ``end`` (which makes
    ``Trainer._push_from_checkpoint`` return at once) and warn; True when it did."""
    raw = getattr(args, "hub_strategy", "end")
    strategy = str(getattr(raw, "value", raw))  # transformers' HubStrategy is a str enum
    if not getattr(args, "push_to_hub", False) or strategy == "end":
        return False
    logger.warning(
        "r1release: %s: hub_strategy=%s makes the Trainer push every save unchecked to main; "
        "set to 'end' (use R1ReleaseCallback(push_revisions=True) for checked checkpoint "
        "branches, and finalize() for the release)",
        who,
        strategy,
    )
    args.hub_strategy = "end"
    return True

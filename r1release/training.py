"""The end of a training script, done right: ``finalize(trainer, tokenizer, dataset_name=...)``.

It does open-r1's save-and-push sequence in its order — align EOS, ``save_model``, on the
main process the model card and ``use_cache``, evaluate when asked, push when asked — with
the field's failures corrected:

- EOS is aligned without dropping stop tokens (the tokenizer's EOS first, the others kept);
- ``use_cache`` is restored in ``config.json`` *and* ``generation_config.json``;
- the card is r1release's (titled, tagged, licensed when a license is given);
- it is safe to call on every rank: collective work (``save_model``, ``evaluate``) runs on
  all ranks, files are written and the Hub is called on the main process only, and every
  rank meets the others after each main-process step (through torch.distributed's store, so
  no collective is left in flight when the script exits), so none is left waiting;
- the push is synchronous and verified (one commit, a tag, hashes checked);
- the saved directory is checked as a release checks it, the card included (what a release
  would still need, such as ``base_model``, is a warning; an error when it pushes), and every
  error-severity finding is raised in one error;
- what it fixed, checked, skipped and pushed is logged on the ``r1release`` logger (INFO;
  findings at WARNING or ERROR).

This is the only module that imports transformers' training classes; ``r1release`` imports
it only when ``finalize`` or ``R1ReleaseCallback`` is first used.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from r1release.errors import R1ReleaseError
from r1release.findings import Finding, Report

logger = logging.getLogger("r1release")

CARD = "README.md"
REVISION = "main"  # the branch finalize() publishes to; the version is a tag on it

# Rules that make no sense on an intermediate checkpoint-* (they hold optimizer state).
_CALLBACK_OFF = ("leftovers",)


class FinalizeError(R1ReleaseError):
    """The saved checkpoint has error-severity findings, or the push failed."""

    def __init__(self, message: str, findings: Sequence[Finding] = (), hint: str | None = None):
        self.findings = tuple(findings)
        super().__init__(message, hint=hint)


@dataclass
class FinalizeResult:
    output_dir: Path
    report: Report
    fixed_files: tuple[str, ...] = ()
    eval_metrics: dict[str, float] = field(default_factory=dict)
    commit_url: str | None = None
    is_main_process: bool = True


def finalize(
    trainer: Any,
    tokenizer: Any = None,
    *,
    dataset_name: str | None,
    tags: Sequence[str] = ("open-r1",),
    push_to_hub: bool | None = None,
    do_eval: bool | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    hub_model_id: str | None = None,
    version: str | None = None,
    base_model: str | None = None,
    license: str | None = None,
    model_name: str | None = None,
    private: bool | None = None,
    merge: bool = False,
) -> FinalizeResult:
    """Save, fix, document, check, evaluate and (optionally) publish the trained model.

    A PEFT-wrapped model (``trainer.model`` a ``PeftModel``: a LoRA run) is saved as its
    adapter and checked as one; ``merge=True`` saves the base merged with it instead
    (:func:`_merged_for_save`).

    Defaults come from ``trainer.args`` (``output_dir``, ``push_to_hub``, ``hub_model_id``,
    ``do_eval``, ``hub_private_repo``). ``private=None`` (and no ``hub_private_repo``) creates
    a new repository private and keeps an existing one as it is; ``private=True`` refuses to
    publish into an existing public repository. Call it on every rank. Raises
    :class:`FinalizeError` (on every rank) when the saved checkpoint has error findings or the
    push fails.
    """
    args = trainer.args
    out = Path(output_dir or args.output_dir)
    push = bool(args.push_to_hub if push_to_hub is None else push_to_hub)
    evaluate = bool(args.do_eval if do_eval is None else do_eval)
    tokenizer = tokenizer if tokenizer is not None else getattr(trainer, "processing_class", None)
    main = trainer.is_world_process_zero()
    _finalize_timeout()  # a bad R1RELEASE_FINALIZE_TIMEOUT stops every rank before any work
    _check_card_arguments(license=license, dataset_name=dataset_name, base_model=base_model)

    # 1. Merge a PEFT adapter into its base when asked; align EOS in memory on every rank,
    # so the saved generation config stops.
    if merge:
        _merged_for_save(trainer, main)
    _align_generation_eos(trainer.model, tokenizer)
    # 2. Save: collective under DeepSpeed ZeRO-3 / FSDP, so every rank calls it. With
    # push_to_hub set, Trainer.save_model also starts its own asynchronous "Model save" push
    # of the unfixed files; finalize publishes once, verified, so that push is suppressed.
    pushing = getattr(args, "push_to_hub", False)
    args.push_to_hub = False
    try:
        with _full_state_dict(trainer):
            trainer.save_model(str(out))
    finally:
        args.push_to_hub = pushing
    # 3. Main process: tokenizer, fixes (EOS lists, use_cache in both files), card, check.
    report = Report(str(out), ())
    fixed: tuple[str, ...] = ()
    # The main process's one view of ``out`` and its one deep scan, reused for the push.
    view: Any = None
    scan: Any = None
    if private is None:
        private = getattr(args, "hub_private_repo", None)
    keep_visibility = private is None  # nobody asked: an existing repository stays as it is
    model_config = _model_config(
        trainer,
        out,
        dataset_name,
        tags,
        hub_model_id,
        base_model,
        license,
        model_name,
        True if private is None else bool(private),
    )
    step = _MainStep()
    if main:
        with _main_step(trainer, step):
            _wait_for_revisions(trainer)  # checkpoint branches first, then the release
            view = _view(trainer, tokenizer, out)
            fixed, report, scan = _write_and_check(view, model_config, version, push)
            report = _release_needs(report, _source(trainer))
            _log_report(report)
        if step.failure is None and report.errors:
            step.failure = _findings_message(out, report.errors)
    failure = _rendezvous(trainer, step.failure)
    if failure is not None:
        raise FinalizeError(failure, report.errors if main else ())
    trainer.model.config.use_cache = True  # for anything the script does next
    # 4. Evaluate when asked (collective); metrics land in all_results.json for the card.
    metrics: dict[str, float] = {}
    if evaluate:
        metrics = trainer.evaluate()
    step = _MainStep()
    if evaluate and main:
        with _main_step(trainer, step):
            trainer.log_metrics("eval", metrics)
            trainer.save_metrics("eval", metrics)
            _write_card(view, model_config, version)
            logger.info("r1release: wrote the model card %s with the eval metrics", out / CARD)
    failure = _rendezvous(trainer, step.failure)
    if failure is not None:
        raise FinalizeError(failure)
    # 5. Push when asked: main process only, synchronous and verified; all ranks wait for it.
    commit_url = None
    if push:
        step = _MainStep()
        if main:
            with _main_step(trainer, step, "push failed: "):
                commit_url = _publish(
                    view,
                    scan,
                    model_config,
                    version or _default_version(trainer),
                    keep_visibility,
                )
        failure = _rendezvous(trainer, step.failure)
        if failure is not None:
            raise FinalizeError(failure)
    return FinalizeResult(out, report, fixed, metrics, commit_url, main)


def _merged_for_save(trainer: Any, main: bool) -> None:
    """Replace a ``PeftModel`` on ``trainer`` by its base merged with the adapter
    (``merge_and_unload``), so that ``save_model`` writes a full model. Training is over:
    the merge is in place, on every rank, and needs the whole model in each process (a
    single process or DDP). Under DeepSpeed or FSDP a rank holds a shard, or the engine saves
    its own wrapped module's state: refused on every rank, before anything is saved. A model
    that is no adapter is saved as it is, with a warning: nothing was merged."""
    peft_model = _peft_model_class()
    if peft_model is None or not isinstance(trainer.model, peft_model):
        if main:
            logger.warning(
                "r1release: finalize(merge=True): %s, so there is no adapter to merge; "
                "the model is saved as it is",
                "peft is not installed"
                if peft_model is None
                else f"the model is a {type(trainer.model).__name__}, not a PEFT model",
            )
        return
    sharded = _sharded_by(trainer)
    if sharded:
        raise FinalizeError(
            f"finalize(merge=True) cannot merge the adapter under {sharded}: the merge needs "
            "the whole model in each process (a single process or DDP)",
            hint="call finalize() without merge=True to save the adapter, then release it "
            "with `merge: true` in release.yaml (r1release merges it into the base model)",
        )
    trainer.model = trainer.model.merge_and_unload()


def _peft_model_class() -> type | None:
    """peft's ``PeftModel``; None without peft (then no model is one)."""
    try:
        from peft import PeftModel
    except ImportError:
        return None
    return PeftModel


def _sharded_by(trainer: Any) -> str | None:
    """The engine that holds the model across ranks (its name), or None."""
    if getattr(trainer, "is_fsdp_enabled", False):
        return "FSDP"
    if getattr(trainer, "is_deepspeed_enabled", False):
        return "DeepSpeed"
    return None


def _align_generation_eos(model: Any, tokenizer: Any) -> None:
    from r1release.rules.base import as_ids, with_first

    generation = getattr(model, "generation_config", None)
    eos = getattr(tokenizer, "eos_token_id", None)
    if generation is None or eos is None:
        return
    stops = as_ids(generation.eos_token_id)
    if eos not in stops:
        generation.eos_token_id = with_first(stops, int(eos)) if stops else int(eos)


@contextlib.contextmanager
def _full_state_dict(trainer: Any) -> Iterator[None]:
    """Under FSDP, save a full state dict whatever the run trained with: with
    ``SHARDED_STATE_DICT`` (accelerate's default for FSDP2) ``Trainer.save_model`` writes no
    weights at all (transformers 5.24 saves only a FULL_STATE_DICT), and the release would
    have nothing to publish. accelerate's plugin switches for the save and back after it
    (``set_state_dict_type``), on every rank, as the save is collective."""
    plugin = getattr(
        getattr(getattr(trainer, "accelerator", None), "state", None), "fsdp_plugin", None
    )
    if not getattr(trainer, "is_fsdp_enabled", False) or plugin is None:
        yield
        return
    previous = plugin.state_dict_type
    if "FULL_STATE_DICT" in str(previous):
        yield
        return
    logger.info(
        "r1release: saving a full state dict (the run's FSDP state_dict_type is %s)", previous
    )
    plugin.set_state_dict_type("FULL_STATE_DICT")
    try:
        yield
    finally:
        plugin.set_state_dict_type(previous)


def _check_card_arguments(**values: str | None) -> None:
    """The card's license and Hub ids, checked as release.yaml checks them: on every rank,
    before any work, so a typo (``license="apache2"``, a local ``dataset_name``) stops the
    script before the save rather than leaving a card a release refuses."""
    from r1release.config import HUB_ID, LICENSE, local_path_reason

    for key, value in values.items():
        if value is None:
            continue
        if key == "license":
            why, hint = LICENSE.why_invalid(value), LICENSE.hint
        else:
            why = local_path_reason(value, Path.cwd())
            why = f"{value!r} is a local path ({why})" if why else HUB_ID.why_invalid(value)
            hint = "pass the Hub id (`owner/name`) of the " + (
                "dataset" if key == "dataset_name" else "base model"
            )
        if why:
            raise FinalizeError(f"finalize({key}=...): {why}", hint=hint)


def _model_config(
    trainer: Any,
    out: Path,
    dataset_name: str | None,
    tags: Sequence[str],
    hub_model_id: str | None,
    base_model: str | None,
    license: str | None,
    model_name: str | None,
    private: bool,
) -> Any:
    from r1release.config import ModelConfig

    name = model_name or out.name
    repo_id = hub_model_id or getattr(trainer.args, "hub_model_id", None) or f"local/{name}"
    if base_model is None:
        source = _source(trainer)
        base_model = source if _is_hub_id(source) else None
    return ModelConfig(
        name=name,
        checkpoint=out,
        repo_id=repo_id,
        base_model=base_model,
        dataset_name=dataset_name,
        license=license,
        tags=tuple(tags),
        private=private,
        method=_training_method(trainer),
    )


_TAG = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


def _training_method(trainer: Any) -> str | None:
    """The method the trainer itself names, so the card has TRL's tags and citation even
    without TRL's README or a log history that shows it (sparse ``logging_steps``): a TRL
    trainer's ``_tag_names`` (``["trl", "grpo"]``), else a class (or base class) named
    after a method TRL has (``GRPOTrainer``: grpo); None for a plain ``Trainer``."""
    from r1release.card import METHODS

    tags = getattr(type(trainer), "_tag_names", None)
    if isinstance(tags, (list, tuple)):
        named = [t for t in tags if isinstance(t, str) and t != "trl" and _TAG.fullmatch(t)]
        if named:
            return named[0]
    for cls in type(trainer).__mro__:
        key = cls.__name__.removesuffix("Trainer").lower()
        if cls.__name__.endswith("Trainer") and key in METHODS:
            return key
    return None


def _source(trainer: Any) -> str:
    """What the model was loaded from: a Hub id, or a local folder's path."""
    return str(getattr(trainer.model.config, "_name_or_path", "") or "")


def _is_hub_id(text: str) -> bool:
    """Whether ``text`` names a Hub repository: ``owner/name`` as the Hub spells one, and no
    folder of that name here (``from_pretrained`` loads a local folder first). A model loaded
    from a local folder has its path there, which is no base model."""
    from r1release.config import REPO_ID

    return bool(text) and REPO_ID.why_invalid(text) is None and not Path(text).exists()


def _view(trainer: Any, tokenizer: Any, out: Path) -> Any:
    """The saved directory's one view, built once the tokenizer files are saved."""
    from r1release.checkpoint import Checkpoint

    if tokenizer is not None and not (out / "tokenizer_config.json").exists():
        tokenizer.save_pretrained(str(out))
    return Checkpoint(out)


def _write_and_check(
    view: Any, model_config: Any, version: str | None, push: bool
) -> tuple[tuple[str, ...], Report, Any]:
    """Fix, write the card, then scan once and check; the scan comes after the last write,
    so the push can reuse it for every file that does not change afterwards.

    The card is checked as a release checks it (card-metadata): an error when this call
    pushes, else a warning that says what a later release would still need."""
    from r1release.checker import check
    from r1release.config import RuleSetting
    from r1release.deep import scan_checkpoint
    from r1release.fixes import apply_fixes, plan_fixes

    plan = plan_fixes(view)
    apply_fixes(plan)
    _log_fixes(view.root, plan)
    fixed = tuple(c.path for c in plan.changes)
    card = _write_card(view, model_config, version, written=fixed)
    # expected-tensors (when registered) needs the deep pass; finite-weights comes with it.
    settings = {
        "leftovers": RuleSetting(severity="off"),
        "card-metadata": RuleSetting(severity="error" if push else "warning"),
    }
    scan = scan_checkpoint(view)
    report = check(view, settings=settings, deep=True, scan=scan, card=card)
    return fixed, report, scan


def _log_fixes(out: Path, plan: Any) -> None:
    if plan.empty:
        logger.info("r1release: %s: nothing to fix", out)
    for change in plan.changes:
        logger.info("r1release: fixed %s (%s)", out / change.path, ", ".join(change.rules))


# What each card field a release requires is called among finalize()'s arguments.
_FINALIZE_ARGS = {
    "base_model": "base_model",
    "datasets": "dataset_name",
    "license": "license",
    "tags": "tags",
}
_NO_FIELD = re.compile(r"metadata has no (\S+)\Z")


def _release_needs(report: Report, source: str) -> Report:
    """``report`` with card-metadata's hints saying what a release would still need and how
    to give it here: release.yaml, or the finalize() argument."""
    findings = []
    for finding in report.findings:
        match = _NO_FIELD.match(finding.message) if finding.rule == "card-metadata" else None
        if match:
            findings.append(replace(finding, hint=_needs_hint(match[1], source)))
        else:
            findings.append(finding)
    return replace(report, findings=tuple(findings))


def _needs_hint(key: str, source: str) -> str:
    arg = _FINALIZE_ARGS.get(key)
    hint = f"a release needs {key}: set it in release.yaml"
    hint += f" or pass {arg}=... to finalize()" if arg else ""
    if key == "base_model" and source and not _is_hub_id(source):
        hint += f"; the model was loaded from {source}, a local path, which is not a Hub id"
    return hint


def _log_report(report: Report) -> None:
    """What the check found, ran and skipped, on the ``r1release`` logger."""
    errors, warnings = len(report.errors), len(report.warnings)
    logger.info(
        "r1release: checked %s: %d error%s, %d warning%s; %d rules ran: %s",
        report.checkpoint,
        errors,
        "" if errors == 1 else "s",
        warnings,
        "" if warnings == 1 else "s",
        len(report.rules_run),
        ", ".join(report.rules_run),
    )
    for finding in report.findings:
        log = logger.error if finding.severity.value == "error" else logger.warning
        hint = f" ({finding.hint})" if finding.hint else ""
        log("r1release: %s: %s: %s%s", finding.rule, finding.file or "", finding.message, hint)
    for skipped in report.rules_skipped:
        log = logger.warning if skipped.missing_requirement else logger.info
        log("r1release: skipped %s: %s", skipped.rule, skipped.reason)


def _write_card(
    view: Any, model_config: Any, version: str | None, written: Sequence[str] = ()
) -> str:
    """Render the card from the files as they are now (``written`` were just rewritten;
    evaluation may have added results), write README.md, which the view is told of, and
    return it. Without a Hub repository the quick start loads the checkpoint by its absolute
    path: it runs from any directory on this machine (a release renders its own card)."""
    from r1release.card import ReleaseInfo, render_card
    from r1release.fixes import atomic_write

    view.refresh(written)
    out = view.root
    local = model_config.repo_id.startswith("local/")
    card = render_card(
        view,
        model_config,
        ReleaseInfo.from_environment(version),
        model_ref=str(out.resolve()) if local else None,
    )
    atomic_write(out / CARD, card)
    view.refresh([CARD])
    return card


def _publish(view: Any, scan: Any, model_config: Any, version: str, keep_visibility: bool) -> str:
    from r1release.card import ReleaseInfo
    from r1release.hub import publish
    from r1release.stage import build_stage

    if model_config.repo_id.startswith("local/"):
        raise FinalizeError(
            "push_to_hub needs a Hub repository",
            hint="set hub_model_id='owner/name' (argument or TrainingArguments)",
        )
    stage = build_stage(
        model_config,
        version,
        release=ReleaseInfo.from_environment(version),
        checkpoint=view,
        scan=scan,
    )
    result = publish(stage, revision=REVISION, log=logger.info, allow_public=keep_visibility)
    logger.info(
        "r1release: pushed %s to %s, tagged %s (commit %s): %s",
        model_config.repo_id,
        REVISION,
        version,
        result.commit,
        result.commit_url,
    )
    return result.commit_url


def _default_version(trainer: Any) -> str:
    return f"step-{trainer.state.global_step}"


def _findings_message(out: Path, errors: Sequence[Finding]) -> str:
    lines = "; ".join(
        f"{f.rule} ({f.file or out.name}): {f.message}" + (f" ({f.hint})" if f.hint else "")
        for f in errors
    )
    return f"{out}: {len(errors)} error finding(s): {lines}"


@dataclass
class _MainStep:
    failure: str | None = None  # the message every rank raises


@contextlib.contextmanager
def _main_step(trainer: Any, step: _MainStep, prefix: str = "") -> Iterator[None]:
    """A main-process step between two rendezvous: its R1ReleaseError becomes
    ``step.failure`` (raised on every rank after the rendezvous); any other error is passed
    to the waiting ranks, then raised here."""
    try:
        yield
    except R1ReleaseError as exc:
        step.failure = f"{prefix}{exc}"
    except Exception as exc:
        _abandon(trainer, exc)
        raise


def _abandon(trainer: Any, exc: BaseException) -> None:
    """The main process failed unexpectedly: tell the waiting ranks before raising."""
    with contextlib.suppress(FinalizeError):  # the original error is raised either way
        _rendezvous(trainer, f"the main process failed: {type(exc).__name__}: {exc}"[:2000])


FINALIZE_TIMEOUT_ENV = "R1RELEASE_FINALIZE_TIMEOUT"
DEFAULT_FINALIZE_TIMEOUT = 6 * 3600.0  # seconds one rank waits for the others (a large push)
_rendezvous_count = itertools.count()


def _rendezvous(trainer: Any, value: str | None = None) -> str | None:
    """Every rank meets here, and each returns the main process's ``value``.

    It goes through torch.distributed's key-value store, not a collective: a broadcast or
    barrier leaves a gloo/NCCL work object that a worker thread frees after it returns, and
    a script that exits right after ``finalize`` then races the process group's destructor
    (an abort at exit, "terminate called without an active exception", or a hang). The main
    process leaves last, after every rank has read its value, so a store it hosts is never
    needed after it exits. Waits are bounded by ``R1RELEASE_FINALIZE_TIMEOUT``, not by the
    process group's timeout (30 minutes by default, shorter than a large push).
    """
    accelerator = getattr(trainer, "accelerator", None)
    if accelerator is None or accelerator.num_processes <= 1:
        return value
    store = _default_store()
    if store is None:  # no torch.distributed store (XLA): accelerate's own collective
        from accelerate.utils import broadcast_object_list

        box = [value]
        broadcast_object_list(box, from_process=0)
        return box[0]
    key = f"r1release/finalize/{next(_rendezvous_count)}"
    rank, world = accelerator.process_index, accelerator.num_processes
    timeout = _finalize_timeout()
    try:
        if rank == 0:
            store.set(f"{key}/value", json.dumps(value))
            store.wait([f"{key}/ack/{r}" for r in range(1, world)], timedelta(seconds=timeout))
            return value
        store.wait([f"{key}/value"], timedelta(seconds=timeout))
        received = json.loads(store.get(f"{key}/value"))
        store.set(f"{key}/ack/{rank}", "1")
    except RuntimeError as exc:  # torch's DistStoreError / DistNetworkError
        waiting_for = "the other ranks" if rank == 0 else "the main process"
        raise FinalizeError(
            f"rank {rank}: finalize stopped waiting for {waiting_for} after {timeout:g} s "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
            hint=f"a push that takes longer needs {FINALIZE_TIMEOUT_ENV} (seconds) raised",
        ) from None
    return received if isinstance(received, str) else None


def _default_store() -> Any:
    try:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return None
        from torch.distributed.distributed_c10d import _get_default_store

        return _get_default_store()
    except (ImportError, AttributeError, RuntimeError, ValueError):
        return None


def _finalize_timeout() -> float:
    raw = os.environ.get(FINALIZE_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_FINALIZE_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise FinalizeError(
            f"{FINALIZE_TIMEOUT_ENV}={raw[:40]!r} is not a number of seconds above 0",
            hint=f"unset it for the default ({DEFAULT_FINALIZE_TIMEOUT:g} s)",
        )
    return seconds


# ------------------------------------------------------------------------------ callback


class R1ReleaseCallback(TrainerCallback):
    """Checks each saved ``checkpoint-*`` on the main process and logs the findings; with
    ``push_revisions=True`` also publishes each one to its own Hub branch.

    ``fail_on_error=True`` stops training (raising :class:`FinalizeError`) at the first
    checkpoint with an error finding; ``deep=True`` also hashes and scans every tensor.
    Training state (optimizer, RNG) is expected there, so the leftovers rule is off.

    ``push_revisions=True`` publishes ``checkpoint-N`` to the branch
    ``{revision}-step-{N:09d}`` of ``repo_id`` (default ``args.hub_model_id``) in the
    background, through the release pipeline (:mod:`r1release.revisions`); ``finalize()``
    waits for those pushes before its own release. ``dataset_name``, ``base_model``,
    ``license``, ``tags`` and ``private`` fill the checkpoints' cards as ``finalize()``'s
    arguments fill the release's. Whether it pushes or not, the callback stops the Trainer's
    own unchecked pushes of every save to ``main`` (``hub_strategy`` other than ``end``).
    """

    def __init__(
        self,
        fail_on_error: bool = False,
        deep: bool = False,
        *,
        push_revisions: bool = False,
        revision: str = "v00.00",
        repo_id: str | None = None,
        dataset_name: str | None = None,
        base_model: str | None = None,
        license: str | None = None,
        tags: Sequence[str] = ("open-r1",),
        private: bool | None = None,
    ) -> None:
        self.fail_on_error = fail_on_error
        self.deep = deep
        self.push_revisions = push_revisions
        self.revision = _revision_prefix(revision)
        self.repo_id = repo_id
        self.card = {"dataset_name": dataset_name, "base_model": base_model, "license": license}
        _check_card_arguments(**self.card)
        self.tags = tuple(tags)
        self.private = private
        self.reports: dict[int, Report] = {}
        self.pusher: Any = None  # the RevisionPusher, made when training begins

    def on_init_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self._begin(args, kwargs.get("model"))
        return control

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self._begin(args, kwargs.get("model"))  # added by add_callback: no on_init_end
        return control

    def _begin(self, args: Any, model: Any) -> None:
        """Stop the Trainer's unchecked pushes; with push_revisions, make the pusher (every
        rank checks the repository id, so a missing one stops all of them alike). A callback
        given to a second Trainer gets a new pusher when what it publishes changed (output
        directory, repository, card fields): never one that publishes into the first run's
        repository; the first one's pushes in flight still finish."""
        from r1release.revisions import RevisionPusher, stop_unchecked_pushes

        stop_unchecked_pushes(args, "R1ReleaseCallback")
        if not self.push_revisions:
            return
        repo_id = self.repo_id or getattr(args, "hub_model_id", None)
        if not repo_id:
            raise FinalizeError(
                "R1ReleaseCallback(push_revisions=True) needs a Hub repository",
                hint="pass repo_id='owner/name' or set hub_model_id in the TrainingArguments",
            )
        config, keep_visibility = _revision_config(self, args, model, repo_id)
        if self.pusher is None or self.pusher.model != config:
            self.pusher = RevisionPusher(config, keep_visibility=keep_visibility)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if not state.is_world_process_zero:
            return control
        from r1release.checker import check
        from r1release.config import RuleSetting

        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if not path.is_dir():
            return control
        settings = {name: RuleSetting(severity="off") for name in _CALLBACK_OFF}
        report = check(path, settings=settings, deep=self.deep)
        self.reports[state.global_step] = report
        for finding in report.findings:
            log = logger.error if finding.severity.value == "error" else logger.warning
            log("r1release: %s: %s: %s", finding.rule, finding.file or path.name, finding.message)
        if report.errors and self.fail_on_error:
            control.should_training_stop = True
            raise FinalizeError(_findings_message(path, report.errors), report.errors)
        if self.pusher is not None:
            from r1release.revisions import RevisionJob, branch_name

            branch = branch_name(self.revision, state.global_step)
            self.pusher.submit(RevisionJob(state.global_step, path, branch))
        return control


def _revision_prefix(revision: str) -> str:
    """The branch prefix, checked as a branch name (with a step suffix) before training."""
    from r1release.config import BRANCH
    from r1release.revisions import branch_name

    why = BRANCH.why_invalid(branch_name(revision, 0))
    if why or revision == "main":
        raise FinalizeError(
            f"R1ReleaseCallback(revision={revision!r}): {why or 'main is the release branch'}",
            hint=f"{BRANCH.hint}; checkpoints go to REVISION-step-NNNNNNNNN, e.g. v00.00",
        )
    return revision


def _revision_config(
    callback: R1ReleaseCallback, args: Any, model: Any, repo_id: str
) -> tuple[Any, bool]:
    """What the checkpoints of this run are published as, and whether the repository's
    visibility is left as it is (nobody asked for one)."""
    from r1release.config import ModelConfig

    base_model = callback.card["base_model"]
    if base_model is None and model is not None:
        source = str(getattr(model.config, "_name_or_path", "") or "")
        base_model = source if _is_hub_id(source) else None
    private = callback.private
    if private is None:
        private = getattr(args, "hub_private_repo", None)
    config = ModelConfig(
        name=Path(args.output_dir).name,
        checkpoint=Path(args.output_dir),
        repo_id=repo_id,
        base_model=base_model,
        dataset_name=callback.card["dataset_name"],
        license=callback.card["license"],
        tags=callback.tags,
        private=True if private is None else bool(private),
    )
    return config, private is None


def _wait_for_revisions(trainer: Any) -> None:
    """Before finalize's own release: the Trainer's own push in flight, and every checkpoint
    push of an R1ReleaseCallback, finished (bounded by R1RELEASE_FINALIZE_TIMEOUT). A push
    still failing is logged, not raised: a checkpoint branch is not the release."""
    from r1release.revisions import stop_unchecked_pushes

    if stop_unchecked_pushes(trainer.args, "finalize"):
        getattr(trainer, "_finish_current_push", lambda: None)()
    timeout = _finalize_timeout()
    handler = getattr(trainer, "callback_handler", None)
    for callback in getattr(handler, "callbacks", ()):
        pusher = getattr(callback, "pusher", None)
        if not isinstance(callback, R1ReleaseCallback) or pusher is None:
            continue
        logger.info("r1release: waiting for the checkpoint pushes to %s", pusher.model.repo_id)
        if not pusher.wait(timeout):
            logger.error(
                "r1release: checkpoint pushes still running after %g s; finalize goes on "
                "(a longer wait needs %s raised)",
                timeout,
                FINALIZE_TIMEOUT_ENV,
            )
        for job in pusher.failed:
            logger.error("r1release: %s was not pushed to branch %s", job.path, job.branch)

"""sharded-save: the checkpoint holds the model, not only a distributed training checkpoint.

Two settings make a run save its state in a form transformers cannot load as a model:

* FSDP with ``fsdp_state_dict_type: SHARDED_STATE_DICT``: accelerate's ``save_fsdp_model``
  writes ``pytorch_model_fsdp_0/`` (``torch.distributed.checkpoint``: one ``__R_0.distcp``
  per rank and a ``.metadata``) and ``optimizer_0/``, and ``Trainer.save_model`` writes no
  weights at all; ``LOCAL_STATE_DICT`` writes ``pytorch_model_fsdp_rank*.bin``, one per rank;
* DeepSpeed ZeRO-3 without ``zero3_save_16bit_model``: ``Trainer.save_model`` removes its
  dummy weights and writes the ZeRO checkpoint instead, ``global_stepN/`` (per-rank
  ``*_model_states.pt`` and ``*_optim_states.pt``), ``latest`` and ``zero_to_fp32.py``.

Either is an error when no consolidated weights (top-level ``*.safetensors``, or pickle
weights, which weights-format refuses) sit next to it; the hint names the setting to change
and the command that consolidates what was saved. With consolidated weights beside it the
distributed checkpoint is training state: leftovers warns and uploads exclude it. The command
is quoted for a shell; where a path in it holds a backtick or an unprintable character (a
line break), which no inline-code command can hold, it names ``DIR`` (and ``SAVE``) and says
which directory that is. Found at
any depth, so an ``output_dir`` holding only ``checkpoint-N/`` saves fails too. The file
list alone decides: a plain check catches it, without torch. Empty stub tensors (a
``save_pretrained`` of a ZeRO-3-partitioned model) are expected-tensors' to report.

Fails: ``pytorch_model_fsdp_0/__0_0.distcp`` and no ``model.safetensors``;
``global_step10/zero_pp_rank_0_mp_rank_00_model_states.pt`` and no weights.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from r1release.checkpoint import PICKLE_SUFFIXES, Checkpoint, is_leftover
from r1release.config import shown
from r1release.findings import Severity
from r1release.rules.base import Context, Problem, Rule

FSDP_DIR = "pytorch_model_fsdp_*"  # accelerate's FSDP_MODEL_NAME, then _{model_index}
FSDP_RANK_FILE = "pytorch_model_fsdp*_rank*.bin"  # LOCAL_STATE_DICT, or use_dcp=False
ZERO_DIR = "global_step*"  # DeepSpeed's default checkpoint tag
DCP_SHARD = ".distcp"
SHOWN = 3  # pieces listed in a message
PATH_LIMIT = 200  # characters of a directory named outside the command

FSDP_SETTING = (
    "set `fsdp_state_dict_type: FULL_STATE_DICT` in the accelerate FSDP config "
    "(or in TrainingArguments' fsdp_config) and save again"
)
ZERO3_SETTING = (
    "set `zero3_save_16bit_model: true` in the accelerate DeepSpeed config "
    "(`stage3_gather_16bit_weights_on_model_save: true` in a DeepSpeed JSON) and save again"
)


def check(ctx: Context) -> Iterator[Problem]:
    ckpt = ctx.checkpoint
    if _has_weights(ckpt):
        return
    fsdp, zero = _distributed(ckpt)
    if fsdp:
        yield Problem(
            f"an FSDP sharded checkpoint ({_listed(fsdp)}) and no consolidated weights: "
            "transformers cannot load it as a model",
            _where(fsdp),
            _fsdp_hint(ckpt, fsdp),
        )
    if zero:
        yield Problem(
            f"a DeepSpeed ZeRO checkpoint ({_listed(zero)}) and no consolidated "
            "weights: transformers cannot load it as a model",
            _where(zero),
            _zero_hint(ckpt, zero),
        )


def _has_weights(ckpt: Checkpoint) -> bool:
    """Whether top-level model weights exist: what ``from_pretrained`` would load."""
    return any(
        "/" not in e.path
        and e.path.endswith((".safetensors", *PICKLE_SUFFIXES))
        and not is_leftover(e.path)
        for e in ckpt.files
    )


@dataclass
class Piece:
    """One directory of a distributed checkpoint (``""``: the checkpoint itself), or one
    per-rank file, with what it holds."""

    path: str
    shards: int = 0  # *.distcp
    states: int = 0  # DeepSpeed's *_states.pt
    files: int = 0

    @property
    def shown(self) -> str:
        path = self.path if _codeable(self.path) else _named(self.path)
        if self.path and not self.path.endswith("/"):
            return path  # a per-rank file
        if self.shards:
            count, noun = self.shards, ".distcp shard"
        elif self.states:
            count, noun = self.states, "*_states.pt file"
        else:
            count, noun = self.files, "file"
        return f"{path or './'}: {count} {noun}{'s' if count != 1 else ''}"

    @property
    def is_dcp_model(self) -> bool:
        """A torch.distributed.checkpoint directory of model weights (not optimizer_0/)."""
        return self.shards > 0 and not _is_optimizer(self.path)


def _distributed(ckpt: Checkpoint) -> tuple[list[Piece], list[Piece]]:
    """The FSDP and the DeepSpeed pieces, in one pass over the file list, each in natural
    order (``checkpoint-2`` before ``checkpoint-10``), model weights first."""
    fsdp: dict[str, Piece] = {}
    zero: dict[str, Piece] = {}
    for entry in ckpt.files:
        parts = entry.path.split("/")
        name = parts[-1]
        for i, part in enumerate(parts[:-1]):
            if fnmatch.fnmatchcase(part, FSDP_DIR):
                _count(fsdp, "/".join(parts[: i + 1]) + "/", name)
            elif fnmatch.fnmatchcase(part, ZERO_DIR):
                _count(zero, "/".join(parts[: i + 1]) + "/", name)
        if name.endswith(DCP_SHARD) and not any(fnmatch.fnmatchcase(p, FSDP_DIR) for p in parts):
            # optimizer_0/, or a DCP directory of another name (the checkpoint itself: "")
            _count(fsdp, "/".join(parts[:-1]) + "/" if len(parts) > 1 else "", name)
        elif fnmatch.fnmatchcase(name, FSDP_RANK_FILE):
            fsdp.setdefault(entry.path, Piece(entry.path))
    return _ordered(fsdp), _ordered(zero)


def _count(pieces: dict[str, Piece], path: str, name: str) -> None:
    piece = pieces.setdefault(path, Piece(path))
    piece.files += 1
    piece.shards += name.endswith(DCP_SHARD)
    piece.states += name.endswith("_states.pt")


def _ordered(pieces: dict[str, Piece]) -> list[Piece]:
    """Model weights before optimizer state, each in natural order."""
    return sorted(pieces.values(), key=lambda p: (_is_optimizer(p.path), _natural(p.path)))


def _is_optimizer(path: str) -> bool:
    return PurePosixPath(path).name.startswith("optimizer")


def _natural(path: str) -> list[int | str]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def _listed(pieces: list[Piece]) -> str:
    """``pytorch_model_fsdp_0/: 2 .distcp shards, optimizer_0/: ...``, three at most."""
    shown = ", ".join(p.shown for p in pieces[:SHOWN])
    return shown + (f" and {len(pieces) - SHOWN} more" if len(pieces) > SHOWN else "")


def _where(pieces: list[Piece]) -> str | None:
    """The file a finding names: the first piece (None for the checkpoint itself)."""
    return pieces[0].path.rstrip("/") or None


def _fsdp_hint(ckpt: Checkpoint, pieces: list[Piece]) -> str:
    """The setting, and ``accelerate merge-weights`` for a DCP model directory (the per-rank
    files of LOCAL_STATE_DICT have no merge tool)."""
    models = [p for p in pieces if p.is_dcp_model]
    if not models:
        return FSDP_SETTING
    args = Arguments.of(ckpt, models[-1].path.rstrip("/"))  # the latest save
    return (
        f"{FSDP_SETTING}, or merge the shards into {args.root}/model.safetensors: "
        f"`accelerate merge-weights {args.save} {args.root}`{args.legend}"
    )


def _zero_hint(ckpt: Checkpoint, pieces: list[Piece]) -> str:
    """The setting, and DeepSpeed's ``zero_to_fp32.py``: the copy DeepSpeed saved next to
    the ``global_step*`` directory, else the module DeepSpeed installs."""
    parent = str(PurePosixPath(pieces[-1].path.rstrip("/")).parent)  # the latest save
    parent = "" if parent == "." else parent
    script = f"{parent}/zero_to_fp32.py" if parent else "zero_to_fp32.py"
    args = Arguments.of(ckpt, parent)
    if ckpt.exists(script):
        run = f"python {args.in_save('zero_to_fp32.py')}"
    else:
        run = "python -m deepspeed.utils.zero_to_fp32"
    return (
        f"{ZERO3_SETTING}, or consolidate into {args.root}: "
        f"`{run} {args.save} {args.root} --safe_serialization`{args.legend} (float32 "
        "weights: cast them to the config's dtype)"
    )


@dataclass(frozen=True)
class Arguments:
    """The two paths of a consolidation command, the checkpoint and the save directory in it
    (``""``: the checkpoint itself), as they sit in an inline-code command: each quoted for a
    shell, or a placeholder (``DIR``, ``SAVE``) where the path holds what inline code cannot
    show; ``legend`` then says which directory each placeholder is."""

    root: str
    save: str
    legend: str = ""
    full: str | None = None  # the save directory's path, where the command holds it quoted

    @classmethod
    def of(cls, ckpt: Checkpoint, save: str) -> Arguments:
        root = ckpt.root.as_posix()
        full = f"{root}/{save}" if save else root
        if _codeable(full):
            return cls(shlex.quote(root), shlex.quote(full), full=full)
        legend = f", where DIR is the checkpoint directory {_named(root)}"
        if not save:
            return cls("DIR", "DIR", legend)
        if _codeable(save):
            return cls("DIR", f"DIR/{shlex.quote(save)}", legend)
        return cls("DIR", "SAVE", f"{legend} and SAVE its directory {_named(save)}")

    def in_save(self, name: str) -> str:
        """``name`` (a plain file name) in the save directory."""
        if self.full is None:
            return f"{self.save}/{name}"
        return shlex.quote(f"{self.full}/{name}")


def _codeable(text: str) -> bool:
    """Whether ``text`` can sit in a one-line inline-code command: printable, no backtick."""
    return text.isprintable() and "`" not in text


def _named(path: str) -> str:
    """A path outside the command, escaped (``\\n``, ``\\x60`` for a backtick) and cut."""
    return shown(path, PATH_LIMIT).replace("`", "\\x60")


RULE = Rule(
    id="R306",
    name="sharded-save",
    severity=Severity.ERROR,
    description="the model is saved whole, not only as an FSDP or DeepSpeed ZeRO checkpoint",
    check=check,
)

"""weights-format: the weights are safetensors.

Pickle files (``*.bin``, ``*.pt``, ``*.pth``, ``*.pkl``, ``*.ckpt``) run code when loaded and
are refused unless ``allow_pickle: true``. Training state (``optimizer.pt``,
``training_args.bin``, ...) is left to the leftovers rule.

Fails: ``pytorch_model.bin``; a checkpoint with no weights at all; an adapter without
``adapter_model.safetensors``.
"""

from __future__ import annotations

from collections.abc import Iterator

from r1release.checkpoint import ADAPTER, ADAPTER_WEIGHTS
from r1release.findings import Severity
from r1release.rules.base import Context, Option, Problem, Rule


def check(ctx: Context) -> Iterator[Problem]:
    ckpt = ctx.checkpoint
    pickles = ckpt.pickle_files()
    if not ctx.options.get("allow_pickle", False):
        for name in pickles:
            yield Problem(
                "pickle weights run arbitrary code when loaded; the Hub and vLLM prefer "
                "safetensors",
                name,
                "save with safe_serialization (the default), or set allow_pickle in release.yaml",
            )
    if ckpt.kind == ADAPTER:
        if not ckpt.exists(ADAPTER_WEIGHTS) and not pickles:
            yield Problem(
                f"no adapter weights ({ADAPTER_WEIGHTS}) next to adapter_config.json",
                None,
                "point `checkpoint` at the directory trainer.save_model wrote",
            )
    elif not ckpt.safetensors_files() and not pickles:
        yield Problem(
            "no weight files (*.safetensors) in the checkpoint",
            None,
            "point `checkpoint` at the directory save_model wrote",
        )


RULE = Rule(
    id="R301",
    name="weights-format",
    severity=Severity.ERROR,
    description="weights are safetensors, not pickle",
    check=check,
    options=(Option("allow_pickle", bool, False, "accept pickle weight files"),),
)

"""expected-tensors (deep, needs torch): the weights are the tensors ``config.json`` describes.

The model class is built from ``config.json`` on the meta device (no memory, no weights
read: a 7B config takes well under a second) and its state dict is compared with the
safetensors headers. Reported, each once and summarised:

* tensors the model needs that no shard holds (``lm_head.weight`` with
  ``tie_word_embeddings: false``): transformers would initialise them randomly;
* tensors on disk the model has no place for (transformers drops them when loading);
* tensors with 0 elements: a DeepSpeed ZeRO-3 save that did not gather the parameters;
* shapes that differ from the config (``vocab_size`` against the embedding rows);
* floating-point tensors in another dtype than the config's ``dtype``/``torch_dtype``.

What transformers accepts when loading is not reported: a tied weight stored under either
of its names, the ``_keys_to_ignore_on_load_*`` patterns, old ``rotary_emb.inv_freq`` and
``position_ids`` buffers, the base-model prefix added or dropped, modules kept in float32,
and (transformers >= 5) the per-expert layout ``save_pretrained`` writes for fused MoE
weights. Non-persistent buffers are not in a state dict at all.

Not checked: quantized checkpoints (``quantization_config``: the quantizer, not the config,
decides their layout), model types this transformers does not know that bring their own
code (``auto_map``: r1release never runs checkpoint code), and checkpoints without
safetensors weights (weights-format reports them).

Needs torch (``Need.TORCH``): where torch is not installed the checker does not
run the rule and reports it as skipped, "needs torch (pip install 'r1release[train]')",
never as run; a release's CI fails on that, as on any error rule that could not run. The
training side, where torch is always installed, runs it in ``finalize``.

What the build yields is cached (``r1release/layout_cache.py``: ``cache_dir()/layouts/``,
keyed by the config's content and the installed transformers and torch versions), so a
check of a config seen before imports neither torch nor transformers' model code. Failures
to build that come from the config and transformers' tables alone (no ``model_type``, a
type or class this transformers does not have, custom code) are cached with their message;
exceptions raised inside config or model code are not (they can depend on other installed
packages), and are computed again on every run. The cache is used only where torch is
installed: without torch the rule is skipped as before, cached or not.

Fails: ``lm_head.weight`` missing with untied embeddings; ``[0]`` shapes; ``vocab_size``
that does not match ``model.embed_tokens.weight``; float32 weights with a bfloat16 config.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from r1release.architecture import (  # noqa: F401  (re-exported: the adapter moved there)
    Expected,
    ExpectedTensor,
    UnknownArchitecture,
    expected_layout,
    expected_tensors,
)
from r1release.checkpoint import INDEX_FILE, Checkpoint, HeaderError, TensorInfo
from r1release.findings import Severity
from r1release.rules.adapter_config import not_on_adapter
from r1release.rules.base import Context, Need, Problem, Rule, module_available

SHOWN = 3  # names listed in a message

_FLOATING = {"BF16", "F16", "F32", "F64", "F8_E4M3", "F8_E5M2", "F8_E8M0"}


def torch_available() -> bool:
    return module_available("torch")


# --------------------------------------------------------------------------- the rule


def check(ctx: Context) -> Iterator[Problem]:
    if not torch_available():  # the checker skips the rule then; this is for direct calls
        return
    ckpt = ctx.checkpoint
    config = ckpt.config
    if not isinstance(config, dict) or config.get("quantization_config"):
        return
    disk, complete = disk_tensors(ckpt)
    if not disk:
        return  # no readable safetensors weights: weights-format / safetensors-header say why
    try:
        expected = expected_layout(config)
    except UnknownArchitecture as exc:
        message = str(exc)
        if message:
            yield Problem(
                message,
                "config.json",
                "fix model_type/architectures in config.json, upgrade transformers, or set "
                "`checks: {expected-tensors: off}` in release.yaml",
            )
        return
    yield from compare(expected, disk, complete)


def disk_tensors(ckpt: Checkpoint) -> tuple[dict[str, tuple[str, TensorInfo]], bool]:
    """``{tensor: (file, info)}`` from the weight files a loader reads, and whether all read.

    With an index those are the shards it names, else ``model.safetensors``, else the
    top-level safetensors files (a sharded save that lost its index).
    """
    index = ckpt.json(INDEX_FILE)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    complete = True
    if isinstance(weight_map, dict) and weight_map:
        files = sorted({v for v in weight_map.values() if isinstance(v, str)})
    elif ckpt.exists("model.safetensors"):
        files = ["model.safetensors"]
    else:
        files = [f for f in ckpt.safetensors_files() if "/" not in f]
    tensors: dict[str, tuple[str, TensorInfo]] = {}
    for name in files:
        if not ckpt.exists(name):
            complete = False  # shard-index reports it
            continue
        try:
            header = ckpt.header(name)
        except HeaderError:
            complete = False  # safetensors-header reports it
            continue
        for tensor, info in header.tensors.items():
            tensors.setdefault(tensor, (name, info))
    return tensors, complete


# --------------------------------------------------------------------------- comparing


def compare(
    expected: Expected,
    disk: Mapping[str, tuple[str, TensorInfo]],
    complete: bool = True,
) -> Iterator[Problem]:
    """Problems between what the model expects and the tensors on disk (``complete``: every
    weight file was readable, so absent tensors are really missing)."""
    wanted = expected.tensors
    matched: dict[str, str] = {}  # expected name -> disk name
    unexpected: list[str] = []
    for name in disk:
        key = _as_model_key(name, wanted, expected.base_prefix)
        if key is not None:
            matched.setdefault(key, name)
        elif not (expected.ignore_unexpected and expected.ignore_unexpected.search(name)):
            unexpected.append(name)
    missing = [
        name
        for name in wanted
        if name not in matched
        and not any(alias in matched for alias in expected.aliases.get(name, ()))
        and not (expected.ignore_missing and expected.ignore_missing.search(name))
    ]
    where = f"{expected.model_class} (from config.json)"
    if missing and complete:
        yield Problem(
            f"{_count(missing, 'tensor')} that {where} needs {_are(missing)} in no weight "
            f"file: {_sample(missing)}; transformers would initialise "
            f"{'it' if len(missing) == 1 else 'them'} randomly",
            "config.json" if _untied_head(missing, expected) else _index_or(disk),
            _missing_hint(missing, expected),
        )
    if unexpected:
        yield Problem(
            f"{_count(unexpected, 'tensor')} on disk {_are(unexpected)} not part of {where}: "
            f"{_sample(unexpected)}; transformers drops "
            f"{'it' if len(unexpected) == 1 else 'them'} when loading",
            _file_of(unexpected, disk),
            "check architectures, model_type and num_hidden_layers in config.json against "
            "the model that was trained, or remove the extra tensors",
        )
    empty, shapes, dtypes = [], [], {}
    for key in wanted:  # model order
        if key not in matched:
            continue
        name = matched[key]
        info = disk[name][1]
        want = wanted[key]
        if math.prod(info.shape) == 0 and math.prod(want.shape) > 0:
            empty.append(name)
            continue
        if info.shape != want.shape:
            shapes.append((name, info.shape, want.shape))
        if _dtype_differs(key, info.dtype, want.dtype, expected):
            dtypes.setdefault(info.dtype, []).append(name)
    if empty:
        yield Problem(
            f"{_count(empty, 'tensor')} {_are(empty)} empty (0 elements): {_sample(empty)}; "
            "a DeepSpeed ZeRO-3 save without gathering the parameters",
            _file_of(empty, disk),
            "set `zero3_save_16bit_model: true` in the accelerate DeepSpeed config "
            "(`stage3_gather_16bit_weights_on_model_save: true` in a DeepSpeed JSON) and save "
            "with trainer.save_model on every rank, or consolidate the ZeRO checkpoint "
            "(`trainer.model_wrapped.save_checkpoint(DIR)`, then "
            "`python DIR/zero_to_fp32.py DIR OUT --safe_serialization`)",
        )
    if shapes:
        shown = "; ".join(f"{n} is {list(got)}, expected {list(w)}" for n, got, w in shapes[:SHOWN])
        if len(shapes) > SHOWN:
            shown += f" and {len(shapes) - SHOWN} more"
        vocab = _vocab_mismatch(shapes, expected)
        yield Problem(
            f"{_count(shapes, 'tensor')} {'does' if len(shapes) == 1 else 'do'} not have the "
            f"shape config.json implies: {shown}",
            "config.json" if vocab else _file_of([n for n, _, _ in shapes], disk),
            vocab
            or "config.json does not describe the saved model (hidden_size, heads, "
            "intermediate_size...): save the config of the model that was trained",
        )
    if dtypes:
        count = sum(len(v) for v in dtypes.values())
        floating = sum(
            1
            for key, name in matched.items()
            if wanted[key].dtype in _FLOATING and disk[name][1].dtype in _FLOATING
        )
        saved = " and ".join(f"{len(v)} {dt}" for dt, v in sorted(dtypes.items()))
        yield Problem(
            f"config.json says dtype {expected.dtype} but {count} of {floating} floating-point "
            f"tensors are saved in another dtype ({saved}), e.g. "
            f"{_sample([n for v in dtypes.values() for n in v], 1)}",
            "config.json",
            _dtype_hint(dtypes, expected),
        )


def _as_model_key(name: str, wanted: Mapping[str, ExpectedTensor], prefix: str) -> str | None:
    """The expected name a disk tensor loads into, adding or dropping the base-model prefix
    as transformers does (a base model saved and loaded into a causal LM, or the reverse)."""
    if name in wanted:
        return name
    if prefix:
        if name.startswith(prefix + ".") and name[len(prefix) + 1 :] in wanted:
            return name[len(prefix) + 1 :]
        if f"{prefix}.{name}" in wanted:
            return f"{prefix}.{name}"
    return None


def _dtype_differs(key: str, saved: str, want: str, expected: Expected) -> bool:
    if expected.dtype is None or want not in _FLOATING or saved == want:
        return False
    # modules kept in float32 on purpose (_keep_in_fp32_modules) may be saved so
    return not (saved == "F32" and any(module in key for module in expected.keep_fp32))


def _untied_head(missing: list[str], expected: Expected) -> bool:
    """``lm_head.weight`` missing while the model does not tie it to the embeddings."""
    return any(n.endswith("lm_head.weight") and not expected.aliases.get(n) for n in missing)


def _missing_hint(missing: list[str], expected: Expected) -> str:
    if _untied_head(missing, expected):
        return (
            "config.json has tie_word_embeddings: false, so lm_head.weight must be saved; "
            "if the output layer shares the input embeddings, set tie_word_embeddings: true, "
            "else save the full model again"
        )
    return (
        "save the full model again (trainer.save_model on every rank), or check "
        "num_hidden_layers and architectures in config.json"
    )


def _vocab_mismatch(
    shapes: list[tuple[str, tuple[int, ...], tuple[int, ...]]], expected: Expected
) -> str | None:
    vocab = expected.vocab_size
    for name, got, want in shapes:
        if vocab and got and want and want[0] == vocab and got[0] != vocab:
            return (
                f"config.json vocab_size is {vocab} but {name} has {got[0]} rows: set "
                "vocab_size to the saved embeddings' size (after resize_token_embeddings, "
                "save the model's own config)"
            )
    return None


def _dtype_hint(dtypes: Mapping[str, list[str]], expected: Expected) -> str:
    if set(dtypes) == {"F32"}:
        return (
            "the weights were saved in float32 (twice the size); cast with "
            f"model.to(torch.{expected.dtype}) before save_pretrained, or set dtype to "
            "float32 in config.json"
        )
    return f"save the weights in {expected.dtype}, or set dtype in config.json to match them"


def _count(items: list[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'s' if len(items) != 1 else ''}"


def _are(items: list[Any]) -> str:
    return "is" if len(items) == 1 else "are"


def _sample(names: list[str], limit: int = SHOWN) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _file_of(names: list[str], disk: Mapping[str, tuple[str, TensorInfo]]) -> str | None:
    files = {disk[n][0] for n in names if n in disk}
    return files.pop() if len(files) == 1 else None


def _index_or(disk: Mapping[str, tuple[str, TensorInfo]]) -> str | None:
    files = {file for file, _ in disk.values()}
    if len(files) == 1:
        return files.pop()
    return INDEX_FILE


RULE = Rule(
    id="R305",
    name="expected-tensors",
    severity=Severity.ERROR,
    description="the weights hold the tensors config.json describes (deep, needs torch)",
    check=check,
    needs=frozenset({Need.DEEP, Need.TORCH}),
    inapplicable=not_on_adapter(
        "an adapter holds no full model weights: adapter-tensors checks its LoRA tensors"
    ),
)

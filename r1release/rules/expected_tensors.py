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

Needs torch (``requires=("torch",)``): where torch is not installed the checker does not
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

import contextlib
import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from r1release import layout_cache
from r1release.checkpoint import INDEX_FILE, Checkpoint, HeaderError, TensorInfo
from r1release.findings import Severity
from r1release.rules.base import Context, Problem, Rule, module_available

SHOWN = 3  # names listed in a message

# torch dtype name -> safetensors dtype
_ST_DTYPES = {
    "bfloat16": "BF16",
    "float16": "F16",
    "float32": "F32",
    "float64": "F64",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "float8_e8m0fnu": "F8_E8M0",
    "int8": "I8",
    "uint8": "U8",
    "int16": "I16",
    "int32": "I32",
    "int64": "I64",
    "bool": "BOOL",
    "complex64": "C64",
}
_FLOATING = {"BF16", "F16", "F32", "F64", "F8_E4M3", "F8_E5M2", "F8_E8M0"}
_CONFIG_DTYPES = {"bfloat16", "float16", "float32", "float64"}


class UnknownArchitecture(Exception):
    """The config names a model transformers cannot build; ``str()`` is the message.

    ``cacheable``: the outcome follows from the config and transformers' version alone.
    """

    def __init__(self, message: str, cacheable: bool = True) -> None:
        super().__init__(message)
        self.cacheable = cacheable


@dataclass(frozen=True)
class ExpectedTensor:
    shape: tuple[int, ...]
    dtype: str  # safetensors name: BF16, F32, ...


@dataclass
class Expected:
    """What the model class built from ``config.json`` expects on disk."""

    model_class: str
    tensors: dict[str, ExpectedTensor]
    aliases: dict[str, frozenset[str]] = field(default_factory=dict)  # tied names, by name
    ignore_missing: re.Pattern[str] | None = None
    ignore_unexpected: re.Pattern[str] | None = None
    keep_fp32: tuple[str, ...] = ()
    base_prefix: str = ""
    vocab_size: int | None = None
    dtype: str | None = None  # the config's dtype, as torch names it ("bfloat16")
    # False when the build depended on more than the config and the versions (a class that
    # failed to import for a missing optional dependency): not cached
    cacheable: bool = field(default=True, compare=False, repr=False)


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


# --------------------------------------------------------------------------- cached


def expected_layout(config_doc: Mapping[str, Any]) -> Expected:
    """:func:`expected_tensors`, from the layout cache when this config was built before
    with the same transformers and torch (then neither is imported); stored when not."""
    key = layout_cache.layout_key(config_doc)
    if key is not None:
        cached = _from_entry(layout_cache.load(key), key)
        if isinstance(cached, Expected):
            return cached
        if isinstance(cached, str):
            raise UnknownArchitecture(cached)
    try:
        expected = expected_tensors(config_doc)
    except UnknownArchitecture as exc:
        if key is not None and exc.cacheable:
            _remember(key, {"unknown": str(exc)})
        raise
    if key is not None and expected.cacheable:
        _remember(key, {"layout": _layout_doc(expected)})
    return expected


_LAYOUT_FIELDS = frozenset(
    {
        "model_class",
        "tensors",
        "aliases",
        "ignore_missing",
        "ignore_unexpected",
        "keep_fp32",
        "base_prefix",
        "vocab_size",
        "dtype",
    }
)
_TENSOR_DTYPES = frozenset(_ST_DTYPES.values()) | {"?"}


def _remember(key: str, body: dict[str, Any]) -> None:
    with contextlib.suppress(TypeError, ValueError, RecursionError):  # not JSON: not cached
        layout_cache.store(key, _entry(key, body))


def _entry(key: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": layout_cache.LAYOUT_FORMAT,
        "key": key,
        "sha256": _digest(body),
        "body": body,
    }


def _digest(body: Any) -> str:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _layout_doc(expected: Expected) -> dict[str, Any]:
    return {
        "model_class": expected.model_class,
        # model order kept: findings list tensors in it
        "tensors": {n: [list(t.shape), t.dtype] for n, t in expected.tensors.items()},
        "aliases": {n: sorted(group) for n, group in expected.aliases.items()},
        "ignore_missing": expected.ignore_missing.pattern if expected.ignore_missing else None,
        "ignore_unexpected": (
            expected.ignore_unexpected.pattern if expected.ignore_unexpected else None
        ),
        "keep_fp32": list(expected.keep_fp32),
        "base_prefix": expected.base_prefix,
        "vocab_size": expected.vocab_size,
        "dtype": expected.dtype,
    }


def _from_entry(doc: Any, key: str) -> Expected | str | None:
    """A cache entry's layout (or UnknownArchitecture message); None for anything that is
    not exactly what :func:`_entry` writes for ``key``: then the layout is computed."""
    try:
        if (
            not isinstance(doc, dict)
            or doc.keys() != {"format", "key", "sha256", "body"}
            or doc["format"] != layout_cache.LAYOUT_FORMAT
            or doc["key"] != key
            or not isinstance(doc["body"], dict)
            or doc["sha256"] != _digest(doc["body"])
        ):
            return None
        body = doc["body"]
        if body.keys() == {"unknown"}:
            return body["unknown"] if isinstance(body["unknown"], str) else None
        if body.keys() == {"layout"}:
            return _layout_from(body["layout"])
    except (TypeError, ValueError, RecursionError, re.error):
        pass
    return None


def _layout_from(doc: Any) -> Expected | None:
    if not isinstance(doc, dict) or doc.keys() != _LAYOUT_FIELDS:
        return None
    model_class, tensors, aliases = doc["model_class"], doc["tensors"], doc["aliases"]
    keep_fp32, vocab, dtype = doc["keep_fp32"], doc["vocab_size"], doc["dtype"]
    if not (
        _is_str(model_class)
        and model_class
        and isinstance(tensors, dict)
        and isinstance(aliases, dict)
        and isinstance(keep_fp32, list)
        and all(_is_str(m) for m in keep_fp32)
        and _is_str(doc["base_prefix"])
        and (vocab is None or _is_int(vocab))
        and (dtype is None or dtype in _CONFIG_DTYPES)
    ):
        return None
    wanted: dict[str, ExpectedTensor] = {}
    for name, value in tensors.items():
        if not (isinstance(value, list) and len(value) == 2):
            return None
        shape, st_dtype = value
        if not (
            isinstance(shape, list)
            and all(_is_int(d) and d >= 0 for d in shape)
            and st_dtype in _TENSOR_DTYPES
        ):
            return None
        wanted[name] = ExpectedTensor(tuple(shape), st_dtype)
    groups: dict[str, frozenset[str]] = {}
    for name, group in aliases.items():
        if not (isinstance(group, list) and all(_is_str(g) for g in group) and name in group):
            return None
        groups[name] = frozenset(group)
    patterns = []
    for field_name in ("ignore_missing", "ignore_unexpected"):
        pattern = doc[field_name]
        if pattern is not None and not (_is_str(pattern) and pattern):
            return None
        patterns.append(re.compile(pattern) if pattern else None)
    return Expected(
        model_class=model_class,
        tensors=wanted,
        aliases=groups,
        ignore_missing=patterns[0],
        ignore_unexpected=patterns[1],
        keep_fp32=tuple(keep_fp32),
        base_prefix=doc["base_prefix"],
        vocab_size=vocab,
        dtype=dtype,
    )


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------- building


def expected_tensors(config_doc: Mapping[str, Any]) -> Expected:
    """Build the model class of ``config_doc`` on the meta device; its on-disk tensors.

    Raises :class:`UnknownArchitecture` (with an empty message for custom-code models,
    which are skipped) when transformers cannot build it.
    """
    import torch

    config = _config(config_doc)
    model_class, cacheable = _model_class(config, config_doc)
    dtype_name = _config_dtype(config_doc)
    try:
        with _quiet(), torch.device("meta"), _default_dtype(dtype_name):
            # Not from_config/_from_config: under DeepSpeed ZeRO-3 (finalize runs on the main
            # rank of a training job) they wrap construction in deepspeed.zero.Init, a
            # collective. On the meta device __init__ skips weight initialisation.
            model = model_class(config)
    except Exception as exc:  # invalid configs fail in many ways inside model code
        raise UnknownArchitecture(
            f"cannot build {model_class.__name__} from config.json: "
            f"{type(exc).__name__}: {_first_line(exc)}",
            cacheable=False,
        ) from None
    state = model.state_dict(keep_vars=True)
    by_identity: dict[int, set[str]] = {}
    for name, tensor in state.items():
        by_identity.setdefault(id(tensor), set()).add(name)
    state = _saved_layout(model, {k: v.detach() for k, v in state.items()})
    aliases = {
        name: frozenset(group & state.keys())
        for group in by_identity.values()
        if len(group & state.keys()) > 1
        for name in group & state.keys()
    }
    save_ignored = set(getattr(model, "_keys_to_ignore_on_save", None) or ())
    tensors = {
        name: ExpectedTensor(tuple(t.shape), _ST_DTYPES.get(str(t.dtype).split(".")[-1], "?"))
        for name, t in state.items()
        if name not in save_ignored
    }
    unexpected = set(getattr(model, "_keys_to_ignore_on_load_unexpected", None) or ())
    buffers = [name for name, _ in model.named_buffers()]
    # transformers adds these two to the unexpected patterns itself (old persistent buffers)
    if any(b.endswith("rotary_emb.inv_freq") for b in buffers):
        unexpected.add(r"rotary_emb\.inv_freq")
    if any(b.endswith("position_ids") for b in buffers):
        unexpected.add(r"(^|\.)position_ids$")
    keep_fp32 = set(getattr(model, "_keep_in_fp32_modules", None) or ())
    keep_fp32 |= set(getattr(model, "_keep_in_fp32_modules_strict", None) or ())
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    vocab = getattr(text_config, "vocab_size", None)
    return Expected(
        model_class=model_class.__name__,
        tensors=tensors,
        aliases=aliases,
        ignore_missing=_patterns(getattr(model, "_keys_to_ignore_on_load_missing", None)),
        ignore_unexpected=_patterns(unexpected),
        keep_fp32=tuple(sorted(keep_fp32)),
        base_prefix=getattr(model, "base_model_prefix", "") or "",
        vocab_size=vocab if isinstance(vocab, int) else None,
        dtype=dtype_name,
        cacheable=cacheable,
    )


def _config(config_doc: Mapping[str, Any]) -> Any:
    from transformers import CONFIG_MAPPING

    model_type = config_doc.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise UnknownArchitecture("config.json has no model_type: the architecture is unknown")
    if model_type not in CONFIG_MAPPING:
        if config_doc.get("auto_map"):
            raise UnknownArchitecture("")  # custom code: not run, not checked
        raise UnknownArchitecture(
            f"transformers {_transformers_version()} does not know model_type {model_type!r}: "
            "the expected tensors cannot be checked, and transformers cannot load this model"
        )
    try:
        with _quiet():
            return CONFIG_MAPPING[model_type].from_dict(dict(config_doc))
    except Exception as exc:
        raise UnknownArchitecture(
            f"config.json does not load as a {model_type} config: "
            f"{type(exc).__name__}: {_first_line(exc)}",
            cacheable=False,
        ) from None


def _model_class(config: Any, config_doc: Mapping[str, Any]) -> tuple[Any, bool]:
    """``architectures[0]`` when transformers has it for this config, else the causal LM;
    and whether that choice follows from the config and transformers' version alone."""
    import transformers
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, PreTrainedModel

    archs = config_doc.get("architectures")
    name = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    certain = True
    if name is not None:
        try:
            cls = getattr(transformers, name, None)
        except Exception:  # a lazy import of an optional dependency failing
            cls, certain = None, False
        if (
            isinstance(cls, type)
            and issubclass(cls, PreTrainedModel)
            and isinstance(config, cls.config_class)
        ):
            return cls, certain
    try:
        return MODEL_FOR_CAUSAL_LM_MAPPING[type(config)], certain
    except KeyError:
        pass
    if name is not None and config_doc.get("auto_map"):
        raise UnknownArchitecture("")
    raise UnknownArchitecture(
        f"transformers {_transformers_version()} has no {name or 'causal LM'} class for "
        f"model_type {config_doc.get('model_type')!r}: the expected tensors cannot be checked",
        cacheable=certain,
    )


def _saved_layout(model: Any, state: dict[str, Any]) -> dict[str, Any]:
    """The state dict as ``save_pretrained`` writes it (transformers >= 5 fuses MoE experts
    in memory and splits them again on save)."""
    try:
        from transformers.core_model_loading import revert_weight_conversion
    except ImportError:  # transformers 4: memory and disk names are the same
        return state
    try:
        return revert_weight_conversion(model, state)
    except Exception:  # a conversion that cannot run on meta tensors: compare as in memory
        return state


def _config_dtype(config_doc: Mapping[str, Any]) -> str | None:
    value = config_doc.get("dtype") or config_doc.get("torch_dtype")
    if isinstance(value, str):
        value = value.removeprefix("torch.")
        return value if value in _CONFIG_DTYPES else None
    return None


@contextmanager
def _default_dtype(name: str | None) -> Iterator[None]:
    """Parameters created in the config's dtype, as from_pretrained creates them."""
    import torch

    if name is None:
        yield
        return
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, name))
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@contextmanager
def _quiet() -> Iterator[None]:
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(previous)


def _patterns(patterns: Any) -> re.Pattern[str] | None:
    patterns = [p for p in (patterns or ()) if isinstance(p, str) and p]
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in sorted(patterns)))


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""


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
            "save with `stage3_gather_16bit_weights_on_model_save: true` in the DeepSpeed "
            "config (or consolidate with zero_to_fp32.py) and save again",
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
    deep=True,
    requires=("torch",),
)

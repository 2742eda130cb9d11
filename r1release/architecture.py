"""The transformers architecture adapter: what a checkpoint's ``config.json`` expects on disk.

The model class is built from the config on the meta device (no memory, no weights read)
and its state dict is turned into :class:`Expected` (names, shapes and safetensors dtypes,
tied names, what transformers ignores when loading). :func:`expected_layout` is the cached
entry point (``r1release/layout_cache.py``: keyed by the config's content and the installed
transformers and torch versions), so a config seen before imports neither torch nor
transformers' model code. torch and transformers are imported inside the functions that
build, never at module top level. The expected-tensors rule compares the result with the
safetensors headers.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from r1release import layout_cache

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
    """Floating-point tensors that model code creates without a dtype come out in the
    config's dtype, as ``from_pretrained`` creates them (it sets torch's default dtype).

    Not ``torch.set_default_dtype``: that is process-wide, and a checkpoint push builds in a
    worker thread while the training thread goes on creating tensors. A torch function mode
    (like ``torch.device("meta")``) holds for the thread that entered it only."""
    import torch

    if name is None:
        yield
        return
    with _dtype_mode()(getattr(torch, name)):
        yield


@functools.cache
def _dtype_mode() -> type:
    """The torch function mode behind :func:`_default_dtype` (defined once torch is in)."""
    import torch
    from torch.overrides import TorchFunctionMode

    constructors = {
        torch.empty,
        torch.empty_strided,
        torch.zeros,
        torch.ones,
        torch.full,
        torch.rand,
        torch.randn,
        torch.arange,
        torch.range,
        torch.linspace,
        torch.logspace,
        torch.eye,
        torch.scalar_tensor,
    }
    from_data = {torch.tensor, torch.as_tensor, torch.asarray}  # a dtype of their own, or not

    class DefaultDtype(TorchFunctionMode):
        def __init__(self, dtype: Any) -> None:
            super().__init__()
            self.dtype = dtype

        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            kwargs = kwargs or {}
            follows = func in constructors or (
                func in from_data and args and not hasattr(args[0], "dtype")
            )
            result = func(*args, **kwargs)
            if (
                follows
                and kwargs.get("dtype") is None
                and isinstance(result, torch.Tensor)
                and result.dtype == torch.get_default_dtype()  # not an integer arange
            ):
                return func(*args, **{**kwargs, "dtype": self.dtype})
            return result

    return DefaultDtype


@contextmanager
def _quiet() -> Iterator[None]:
    """transformers' warnings about odd configs silenced while building, in the main thread
    only: its verbosity and Python's warning filters are process-wide and not thread-safe,
    so a build in a worker thread (a checkpoint push while training) leaves them alone and
    the training thread's own warnings are never swallowed."""
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    if threading.current_thread() is not threading.main_thread():
        yield
        return
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

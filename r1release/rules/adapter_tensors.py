"""adapter-tensors: a LoRA adapter holds the tensors its config promises, and nothing more.

Read from the header of ``adapter_model.safetensors`` only (no weights). peft saves a
LoRA adapter's tensors as ``base_model.model.<module>.lora_A.weight`` (shape ``[r, in]``)
and ``.lora_B.weight`` (``[out, r]``), an embedding's as ``.lora_embedding_A`` (``[r,
rows]``) and ``.lora_embedding_B`` (``[dim, r]``); ``modules_to_save`` as the module's own
tensors (``base_model.model.lm_head.weight``), and embeddings with
``save_embedding_layers`` (``embed_tokens.weight``, ``embed_tokens.base_layer.weight``).

Checked: every module ``target_modules`` names (a list: a module matches a name equal to
its path or ending in ``.NAME``, as peft matches) has both its A and B tensors in every
layer (``layers_to_transform`` when set); the rank is ``r`` (or ``rank_pattern``'s); each
``modules_to_save`` entry has its tensors; no full model weights ride along, neither a
``model.safetensors`` (or shards, or ``pytorch_model.bin``) next to the adapter nor base
tensors inside it beyond ``modules_to_save`` and the embeddings.

The base architecture: with ``--deep`` (and in ``finalize()`` and every release, which run
deep), where the base model's ``config.json`` is on this machine (its local directory, or
the Hugging Face cache; never downloaded) and torch is installed, the base is built on the
meta device (:mod:`r1release.architecture`, cached) and every targeted module
of it must have its tensors, with ``in`` and ``out`` equal to the base weight's, as
expected-tensors builds a full model's only under ``--deep``: a plain check reads headers
and never imports torch. Otherwise the shapes alone are checked: A is ``[r, in]``, B is
``[out, r]``, and a module has the same shapes in every layer. ``target_modules`` given as
a regular expression is not evaluated (an untrusted pattern could run for ever): the
tensors present are checked then.

Only LoRA (``peft_type: LORA``) is checked here: other methods' layouts differ. Names from
the config or the file (target modules, tensor names) are untrusted: a message shows each
one on one line, cut when long (:func:`r1release.adapters.named`).

Fails: ``target_modules: [q_proj, v_proj]`` with no ``v_proj`` tensors; a ``lora_A`` of
``[8, 16]`` with ``r: 4``; a ``model.safetensors`` saved next to the adapter.
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from r1release.adapters import NAME_LIMIT, named
from r1release.checkpoint import ADAPTER_CONFIG, ADAPTER_WEIGHTS, Checkpoint, HeaderError
from r1release.config import shown
from r1release.findings import Severity
from r1release.rules.adapter_config import adapter_only
from r1release.rules.base import Context, Problem, Rule, module_available

PREFIX = "base_model.model."  # what PeftModel adds before the base model's module paths
SHOWN = 3  # names listed in a message
# What a full model's save writes: none of it belongs next to an adapter.
FULL_WEIGHTS = (
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "pytorch_model*.bin",
)
EMBEDDINGS = ("embed_tokens", "lm_head")  # peft's EMBEDDING_LAYER_NAMES
_PART = re.compile(r"\.(lora_A|lora_B|lora_embedding_A|lora_embedding_B)(?:\.weight)?\Z")
_LORA_EXTRA = re.compile(r"\.lora_[A-Za-z_]+(?:\.|\Z)")  # DoRA magnitudes, LoRA biases
_LAYER = re.compile(r"\.(\d+)(?=\.)")
_RESAVE = "save the adapter again with peft's save_pretrained (trainer.save_model does)"


@dataclass
class AdapterTensors:
    """The adapter file's tensors, sorted by what they are."""

    lora: dict[str, dict[str, tuple[int, ...]]]  # module path -> {lora_A: shape, ...}
    kept: list[str]  # modules_to_save and embeddings: expected full tensors
    stray: list[str]  # base tensors nothing asked for


def check(ctx: Context) -> Iterator[Problem]:
    ckpt = ctx.checkpoint
    config = ckpt.adapter_config
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        return
    yield from _full_weights(ckpt)
    if not ckpt.exists(ADAPTER_WEIGHTS):
        return  # weights-format says the adapter has no weights
    try:
        header = ckpt.header(ADAPTER_WEIGHTS)
    except HeaderError:
        return  # safetensors-header reports it
    shapes = {name: tuple(info.shape) for name, info in header.tensors.items()}
    found = sort_tensors(shapes, config)
    yield from _stray(found)
    yield from _modules_to_save(config, shapes)
    yield from _pairs(found)
    yield from _ranks(found, config)
    base = _base_weights(ckpt) if ctx.deep is not None else None
    if base is not None:
        yield from _against_base(found, config, base)
    else:
        yield from _targets_by_name(found, config)
        yield from _same_across_layers(found)


def _full_weights(ckpt: Checkpoint) -> Iterator[Problem]:
    for entry in ckpt.files:
        if "/" not in entry.path and any(fnmatch.fnmatchcase(entry.path, p) for p in FULL_WEIGHTS):
            yield Problem(
                "full model weights next to an adapter: the release would upload the base "
                "model's weights too, and loaders would read this directory as a full model",
                entry.path,
                "save the adapter alone (trainer.save_model), or set merge: true in "
                "release.yaml to release a merged model instead",
            )


def sort_tensors(
    shapes: Mapping[str, tuple[int, ...]], config: Mapping[str, Any]
) -> AdapterTensors:
    """Split the adapter file's tensors into LoRA parts, expected full tensors
    (``modules_to_save``, embeddings) and strays."""
    saved = _saved(config)
    lora: dict[str, dict[str, tuple[int, ...]]] = defaultdict(dict)
    kept, stray = [], []
    for name, shape in shapes.items():
        path = name.removeprefix(PREFIX)
        part = _PART.search(path)
        if part:
            lora[path[: part.start()]][part[1]] = shape
        elif _LORA_EXTRA.search(path):
            continue  # part of a LoRA module, shaped by options this rule does not check
        elif _module_matches(path.rsplit(".", 1)[0], saved) or _is_embedding(path):
            kept.append(name)
        else:
            stray.append(name)
    return AdapterTensors(dict(lora), kept, stray)


def _saved(config: Mapping[str, Any]) -> list[str]:
    """``modules_to_save`` as the names it lists (peft's type: a list of strings, or null)."""
    saved = config.get("modules_to_save")
    return [m for m in saved if isinstance(m, str)] if isinstance(saved, list) else []


def _is_embedding(path: str) -> bool:
    """``embed_tokens.weight``, ``lm_head.base_layer.weight``: saved with the adapter when
    the vocabulary was resized or an embedding is targeted (``save_embedding_layers``)."""
    module = path.removesuffix(".weight").removesuffix(".base_layer")
    return module.rsplit(".", 1)[-1] in EMBEDDINGS


def _module_matches(module: str, names: list[str] | tuple[str, ...]) -> bool:
    """peft's rule for a list of names: the module's path is a name or ends in ``.name``."""
    return any(module == n or module.endswith(f".{n}") for n in names)


def _stray(found: AdapterTensors) -> Iterator[Problem]:
    if found.stray:
        yield Problem(
            f"{len(found.stray)} base model tensor(s) inside the adapter that neither "
            f"modules_to_save nor the embeddings account for ({_sample(found.stray)}): full "
            "base weights riding along",
            ADAPTER_WEIGHTS,
            f"list them in modules_to_save if they were trained, else {_RESAVE}",
        )


def _modules_to_save(config: Mapping[str, Any], shapes: Mapping[str, Any]) -> Iterator[Problem]:
    modules = {name.removeprefix(PREFIX).rsplit(".", 1)[0] for name in shapes}
    for wanted in _saved(config):
        if not _module_matches_any(wanted, modules):
            yield Problem(
                f"modules_to_save names {shown(wanted, NAME_LIMIT)} but the adapter holds none "
                "of its tensors: the base's untrained copy would be used",
                ADAPTER_WEIGHTS,
                _RESAVE,
            )


def _module_matches_any(name: str, modules: set[str]) -> bool:
    return any(_module_matches(m, [name]) for m in modules)


def _pairs(found: AdapterTensors) -> Iterator[Problem]:
    for module, parts in sorted(found.lora.items()):
        names = set(parts)
        for a, b in (("lora_A", "lora_B"), ("lora_embedding_A", "lora_embedding_B")):
            if (a in names) != (b in names):
                have, lack = (a, b) if a in names else (b, a)
                yield Problem(
                    f"module {named(module)} has {have} but no {lack}: LoRA needs both",
                    ADAPTER_WEIGHTS,
                    _RESAVE,
                )


def rank(module: str, config: Mapping[str, Any]) -> int | None:
    """The rank ``module`` must have: ``rank_pattern``'s for a key naming it (as a path or
    a path's end), else ``r``; None when a pattern may apply that is not a plain name."""
    patterns = config.get("rank_pattern") or {}
    for key, value in patterns.items() if isinstance(patterns, dict) else ():
        if _module_matches(module, [key]):
            return value if isinstance(value, int) else None
    if patterns:
        return None  # a regular expression may name it: not evaluated (see the docstring)
    r = config.get("r")
    return r if isinstance(r, int) and not isinstance(r, bool) else None


def _ranks(found: AdapterTensors, config: Mapping[str, Any]) -> Iterator[Problem]:
    for module, parts in sorted(found.lora.items()):
        want = rank(module, config)
        for part, shape in sorted(parts.items()):
            got = _rank_of(part, shape)
            if len(shape) != 2:
                yield Problem(
                    f"{named(f'{module}.{part}')} has shape {list(shape)}; LoRA matrices are 2-D",
                    ADAPTER_WEIGHTS,
                    _RESAVE,
                )
            elif want is not None and got != want:
                yield Problem(
                    f"{named(f'{module}.{part}')} has shape {list(shape)}, rank {got}, but "
                    f"{ADAPTER_CONFIG} says r = {want}",
                    ADAPTER_WEIGHTS,
                    f"set r (or rank_pattern) to what was trained, or {_RESAVE}",
                )


def _rank_of(part: str, shape: tuple[int, ...]) -> int | None:
    """A is ``[r, in]``, B is ``[out, r]``."""
    if len(shape) != 2:
        return None
    return shape[0] if part.endswith("A") else shape[1]


def _targets(config: Mapping[str, Any]) -> list[str] | None:
    """``target_modules`` as a list of names; None for a regular expression (not run)."""
    targets = config.get("target_modules")
    if isinstance(targets, list):
        return [t for t in targets if isinstance(t, str)]
    return None


def _layers(config: Mapping[str, Any]) -> set[int] | None:
    wanted = config.get("layers_to_transform")
    if isinstance(wanted, int) and not isinstance(wanted, bool):
        return {wanted}
    if isinstance(wanted, list):
        return {w for w in wanted if isinstance(w, int)}
    return None


def _layer_of(module: str) -> int | None:
    found = _LAYER.findall(f"{module}.")
    return int(found[-1]) if found else None


def _excluded(module: str, config: Mapping[str, Any]) -> bool:
    excluded = config.get("exclude_modules")
    return isinstance(excluded, list) and _module_matches(module, excluded)


def _targets_by_name(found: AdapterTensors, config: Mapping[str, Any]) -> Iterator[Problem]:
    """Without the base: each target name has tensors, in each layer that any module has."""
    targets = _targets(config)
    if targets is None:
        if not found.lora:
            yield _no_tensors(config.get("target_modules"))
        return
    layers = _layers(config) or {n for m in found.lora if (n := _layer_of(m)) is not None}
    for target in targets:
        modules = [m for m in found.lora if _module_matches(m, [target])]
        if not modules:
            yield _no_tensors(target)
            continue
        present = {_layer_of(m) for m in modules}
        if None in present or _layer_of(target) is not None:
            continue  # outside the layers (lm_head), or one layer's path ("all-linear")
        missing = sorted(layers - present)
        if missing:
            yield Problem(
                f"target module {named(target)} has no LoRA tensors in layer(s) "
                f"{_sample([str(n) for n in missing])} of {len(layers)}",
                ADAPTER_WEIGHTS,
                _RESAVE,
            )


def _no_tensors(target: object) -> Problem:
    """``target`` (a name of target_modules, or the whole value when it is no list) has no
    tensors."""
    name = named(target)
    return Problem(
        f"target module {name} is in target_modules but the adapter has no LoRA tensors "
        f"for it ({name}.lora_A / .lora_B)",
        ADAPTER_WEIGHTS,
        f"train and save it again with the same target_modules, or drop {name} from "
        f"target_modules in {ADAPTER_CONFIG}",
    )


def _same_across_layers(found: AdapterTensors) -> Iterator[Problem]:
    """Without the base: each LoRA matrix of a module has the same shape in every layer."""
    groups: dict[tuple[str, str], dict[tuple[int, ...], list[str]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for module, parts in found.lora.items():
        for part, shape in parts.items():
            groups[(_LAYER.sub(".*", module), part)][shape].append(module)
    for (pattern, part), by_shape in sorted(groups.items()):
        if len(by_shape) > 1:
            common = max(by_shape, key=lambda shape: len(by_shape[shape]))
            odd = sorted(m for shape, ms in by_shape.items() if shape != common for m in ms)
            yield Problem(
                f"{named(f'{pattern}.{part}')}: the shapes differ between layers "
                f"({_sample(odd)} differ from {list(common)} in {named(by_shape[common][0])})",
                ADAPTER_WEIGHTS,
                _RESAVE,
            )


def _base_weights(ckpt: Checkpoint) -> dict[str, tuple[int, ...]] | None:
    """The base model's weight shapes, from its config on the meta device, where the config
    is on this machine and torch is installed; None otherwise."""
    if not module_available("torch"):
        return None
    from r1release.adapters import base_config
    from r1release.architecture import UnknownArchitecture, expected_layout

    config = base_config(ckpt)
    if config is None:
        return None
    try:
        expected = expected_layout(config)
    except UnknownArchitecture:
        return None
    return {name: tuple(t.shape) for name, t in expected.tensors.items()}


def _against_base(
    found: AdapterTensors, config: Mapping[str, Any], base: Mapping[str, tuple[int, ...]]
) -> Iterator[Problem]:
    """Every targeted module of the base has its tensors, shaped to its weight."""
    targets = _targets(config)
    layers = _layers(config)
    flipped = bool(config.get("fan_in_fan_out"))
    missing: dict[str, list[str]] = defaultdict(list)
    # (module pattern, part, shape on disk, shape the base wants) -> the modules
    wrong: dict[tuple[str, str, tuple[int, ...], tuple[int, ...]], list[str]] = defaultdict(list)
    for name, shape in sorted(base.items()):
        module = name.removesuffix(".weight")
        if module == name or len(shape) != 2 or _excluded(module, config):
            continue
        if targets is None or not _module_matches(module, targets):
            continue
        if layers is not None and _layer_of(module) not in layers:
            continue
        parts = found.lora.get(module)
        if parts is None:
            missing[_target_of(module, targets)].append(module)
            continue
        for part, got, weight in _misshaped(parts, shape[::-1] if flipped else shape):
            wrong[(_LAYER.sub(".*", module), part, got, weight)].append(module)
    for (pattern, part, got, weight), modules in sorted(wrong.items()):
        yield Problem(
            f"{pattern}.{part} has shape {list(got)} in {len(modules)} module(s) "
            f"({_sample(modules)}), but the base model's weight there is {list(weight)}: "
            "the adapter was trained on another architecture",
            ADAPTER_WEIGHTS,
            "check base_model_name_or_path: it must name the model the adapter was trained on",
        )
    for target, modules in sorted(missing.items()):
        yield Problem(
            f"target module {named(target)} has no LoRA tensors for {len(modules)} module(s) "
            f"of the base model ({_sample(modules)})",
            ADAPTER_WEIGHTS,
            f"train and save it again with the same target_modules, or drop {named(target)} from "
            f"target_modules in {ADAPTER_CONFIG}",
        )


def _target_of(module: str, targets: list[str]) -> str:
    return next(t for t in targets if _module_matches(module, [t]))


def _misshaped(
    parts: Mapping[str, tuple[int, ...]], weight: tuple[int, ...]
) -> Iterator[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    """``(part, shape, weight)`` for each LoRA matrix not shaped to the base ``weight``: A
    is ``[r, in]`` and B ``[out, r]`` for a weight ``[out, in]``; an embedding's A is ``[r,
    rows]`` and B ``[dim, r]`` for a weight ``[rows, dim]``."""
    if "lora_embedding_A" in parts or "lora_embedding_B" in parts:
        rows, dim = weight
        wanted = {"lora_embedding_A": (1, rows), "lora_embedding_B": (0, dim)}
    else:
        out, inp = weight
        wanted = {"lora_A": (1, inp), "lora_B": (0, out)}
    for part, (axis, size) in wanted.items():
        shape = parts.get(part)
        if shape is not None and len(shape) == 2 and shape[axis] != size:
            yield part, shape, weight


def _sample(names: list[str]) -> str:
    listed = ", ".join(named(n) for n in names[:SHOWN])
    return listed + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


RULE = Rule(
    id="R802",
    name="adapter-tensors",
    severity=Severity.ERROR,
    description="a LoRA adapter's tensors match its target modules, rank and base, alone",
    check=check,
    inapplicable=adapter_only,
)

"""The model card: a pure function from checkpoint + release.yaml model + release info to text.

Metadata goes through huggingface_hub's ``ModelCardData`` (so the YAML is what the Hub
expects); the body is a Jinja template (``DEFAULT_TEMPLATE``, or one named in release.yaml)
rendered with values that are never ``None``: a missing value leaves its line out.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import subprocess
from collections.abc import ItemsView, Iterator, KeysView, Mapping, Sized, ValuesView
from dataclasses import dataclass
from types import GeneratorType
from typing import Any

from r1release.checkpoint import (
    MAX_JSON,
    Checkpoint,
    TemplateTimeout,
    template_timeout,
    time_limit,
)
from r1release.config import ModelConfig
from r1release.errors import FileUnreadable, R1ReleaseError

RESULT_FILES = ("all_results.json", "train_results.json", "eval_results.json")


@dataclass(frozen=True)
class ReleaseInfo:
    """What identifies one release: version, git commit and that commit's date.

    A release's content is a function of the checkpoint, release.yaml, the version and the
    git commit only, so the card holds nothing volatile: ``date`` is the git commit's own date
    (not today's), and the workflow run (``run_url``, ``run_id``) goes only into the Hub
    commit's description, the job summary and the step outputs, never into the card.
    """

    version: str | None = None
    git_commit: str | None = None
    date: str | None = None  # the git commit's date (YYYY-MM-DD), when known
    run_url: str | None = None
    run_id: str | None = None

    @classmethod
    def from_environment(
        cls, version: str | None = None, env: Mapping[str, str] | None = None
    ) -> ReleaseInfo:
        """Read the commit and run from GitHub Actions' variables, else from git."""
        env = os.environ if env is None else env
        commit = env.get("GITHUB_SHA") or _git(["rev-parse", "HEAD"])
        if commit is not None and not re.fullmatch(r"[0-9a-f]{40}", commit):
            commit = None
        date = _git(["show", "-s", "--format=%cs", commit]) if commit else None
        if date is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
            date = None
        run_url, run_id = None, env.get("GITHUB_RUN_ID") or None
        if run_id and env.get("GITHUB_REPOSITORY"):
            server = env.get("GITHUB_SERVER_URL", "https://github.com")
            run_url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{run_id}"
        return cls(version=version, git_commit=commit, date=date, run_url=run_url, run_id=run_id)


def _git(args: list[str]) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = out.stdout.strip()
    return value if out.returncode == 0 and value else None


@dataclass(frozen=True)
class TrainingSummary:
    metrics: dict[str, float | int]  # train_* and epoch, from the results files
    eval_metrics: dict[str, float | int]  # eval_*
    global_step: int | None = None
    epochs: float | None = None
    log_history_steps: int = 0


def training_summary(checkpoint: Checkpoint) -> TrainingSummary:
    """Metrics from ``trainer_state.json`` / ``all_results.json`` / ``train_results.json``."""
    metrics: dict[str, float | int] = {}
    for name in RESULT_FILES:
        for key, value in _json_or_empty(checkpoint, name).items():
            if _is_number(value):
                metrics.setdefault(key, value)
    state = _json_or_empty(checkpoint, "trainer_state.json")
    history = state.get("log_history") if isinstance(state.get("log_history"), list) else []
    for entry in reversed(history):
        if isinstance(entry, dict):
            for key, value in entry.items():
                if key.startswith(("train_", "eval_")) and _is_number(value):
                    metrics.setdefault(key, value)
    step = state.get("global_step")
    epoch = state.get("epoch", metrics.get("epoch"))
    return TrainingSummary(
        metrics={k: v for k, v in metrics.items() if k.startswith("train_")},
        eval_metrics={k: v for k, v in metrics.items() if k.startswith("eval_")},
        global_step=step if isinstance(step, int) and not isinstance(step, bool) else None,
        epochs=float(epoch) if _is_number(epoch) else None,
        log_history_steps=len(history),
    )


def _json_or_empty(checkpoint: Checkpoint, name: str) -> dict[str, Any]:
    entry = checkpoint.entry(name)
    if entry is None or entry.is_dir or entry.size > MAX_JSON:
        return {}
    try:
        doc = json.loads(checkpoint.raw_text(name))
    except (FileUnreadable, ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def card_data(model: ModelConfig, summary: TrainingSummary) -> str:
    """The card's YAML metadata, through huggingface_hub's ``ModelCardData`` (no null values)."""
    from r1release.hub import card_metadata

    dataset = model.dataset_name
    eval_results = [
        dict(
            task_type="text-generation",
            dataset_type=dataset or "custom",
            dataset_name=dataset or "evaluation set",
            metric_type=key.removeprefix("eval_"),
            metric_name=key,
            metric_value=value,
        )
        for key, value in sorted(summary.eval_metrics.items())
    ]
    values: dict[str, Any] = {
        "license": model.license,
        "base_model": model.base_model,
        "datasets": [dataset] if dataset else None,
        "tags": list(model.tags) or None,
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "model_name": model.name,
        "eval_results": eval_results or None,
    }
    return card_metadata({k: v for k, v in values.items() if v is not None})


DEFAULT_TEMPLATE = """\
---
{{ card_data }}
---

# {{ model.name }}

{% if base_link and dataset_link -%}
This model is a fine-tuned version of {{ base_link }} on the {{ dataset_link }} dataset.
{%- elif base_link -%}
This model is a fine-tuned version of {{ base_link }}.
{%- elif dataset_link -%}
This model was trained on the {{ dataset_link }} dataset.
{%- else -%}
A text-generation model released with r1release.
{%- endif %}

## Quick start

```python
from transformers import pipeline

generator = pipeline("text-generation", model="{{ model_ref }}"\
{% if release.version %}, revision="{{ release.version }}"{% endif %})
messages = [{"role": "user", "content": "What is 7 * 6?"}]
output = generator(messages, max_new_tokens=512, return_full_text=False)
print(output[0]["generated_text"])
```
{% if prompt_example %}
The chat template formats that conversation as:

```text
{{ prompt_example }}
```
{% endif %}
{%- if summary.metrics or summary.global_step %}
## Training

{% if summary.global_step %}- steps: {{ summary.global_step }}
{% endif %}{% if summary.epochs is not none %}- epochs: {{ "%.2f"|format(summary.epochs) }}
{% endif %}{% for key, value in summary.metrics|dictsort %}- {{ key }}: {{ value|metric }}
{% endfor %}{% endif %}
{%- if summary.eval_metrics %}
## Evaluation

| metric | value |
|---|---|
{% for key, value in summary.eval_metrics|dictsort %}| {{ key }} | {{ value|metric }} |
{% endfor %}{% endif %}
## Release

{% if release.version %}- version: `{{ release.version }}`
{% endif %}{% if release.git_commit %}- git commit: `{{ release.git_commit }}`
{% endif %}{% if release.date %}- date: {{ release.date }} (of the git commit)
{% endif %}
{%- if versions %}
## Framework versions

{% for name, version in versions|dictsort %}- {{ name }}: {{ version }}
{% endfor %}{% endif %}"""


def framework_versions(checkpoint: Checkpoint) -> dict[str, str]:
    """Versions recorded in the checkpoint itself (not those of this machine)."""
    found: dict[str, str] = {}
    for name in ("config.json", "generation_config.json", "trainer_state.json"):
        doc = _json_or_empty(checkpoint, name)
        for key, label in (("transformers_version", "transformers"), ("trl_version", "trl")):
            if isinstance(doc.get(key), str):
                found.setdefault(label, doc[key])
    return found


def render_card(
    checkpoint: Checkpoint | str | os.PathLike[str],
    model: ModelConfig,
    release: ReleaseInfo | None = None,
    template: str | None = None,
    model_ref: str | None = None,
    *,
    template_name: str | None = None,
) -> str:
    """The complete README.md model card for ``model`` at ``checkpoint``.

    ``model_ref`` is what the quick-start snippet loads (default: the Hub repo id).
    ``template`` (default :data:`DEFAULT_TEMPLATE`) is untrusted code: it renders in a
    sandbox that holds plain data only (strings, numbers, lists, dicts; no Python object with
    methods), cannot read other templates or files, and is bounded in time
    (``R1RELEASE_TEMPLATE_TIMEOUT``), in the size of every value it builds and in the size of
    the card (:data:`MAX_CARD_BYTES`). Any failure raises :class:`R1ReleaseError` whose
    message is one line, ``<template_name>:<line>: <what went wrong>``; ``template_name`` is
    the template's file (default ``card template``).
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint(checkpoint)
    summary = training_summary(ckpt)
    context = {
        "card_data": card_data(model, summary),
        "model": _model_data(model),
        "model_ref": model_ref or model.repo_id,
        "base_link": _link(model.base_model, ""),
        "dataset_link": _link(model.dataset_name, "datasets/"),
        # Plain data, and only what is deterministic: no run id or URL reaches a template.
        "release": _release_data(release or ReleaseInfo()),
        "summary": _plain(dataclasses.asdict(summary)),
        "prompt_example": _prompt_example(ckpt),
        "versions": framework_versions(ckpt),
    }
    return _render_template(
        template or DEFAULT_TEMPLATE, context, template_name or DEFAULT_TEMPLATE_NAME
    )


def _model_data(model: ModelConfig) -> dict[str, Any]:
    """``model``'s fields as plain data (the checkpoint path as a string)."""
    return {f.name: _plain(getattr(model, f.name)) for f in dataclasses.fields(model)}


def _plain(value: Any) -> Any:
    """``value`` as strings, numbers, bools, None, lists and dicts only (of exactly those
    types: no subclass carries its methods into a template)."""
    if value is None or type(value) in (str, bool, int, float):
        return value
    if isinstance(value, int):  # an IntEnum member, say
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return str(value)  # a path, an enum: its text


# ---------------------------------------------------------------------------------------
# The card-template sandbox
# ---------------------------------------------------------------------------------------

MAX_CARD_BYTES = 1024 * 1024
"""The largest card (UTF-8 bytes) a template may render."""
MAX_TEMPLATE_VALUE = 1024 * 1024
"""The largest string (characters) or list / dict (items, counted deeply) a template builds."""
MAX_RANGE = 100_000
"""The most items ``range()`` gives a template."""
MAX_INT_BITS = 64 * 1024
"""The largest integer (bits) ``*`` and ``**`` may make in a template."""
DEFAULT_TEMPLATE_NAME = "card template"
_TEMPLATE_FILENAME = "<template>"  # jinja2's filename for a template made from a string
_FORBIDDEN_TAGS = {"Extends": "extends", "Include": "include", "Import": "import"}


class _Refused(Exception):
    """A template tried to build something too large (raised inside the sandbox)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint or (
            "a model card template's strings, lists and output are limited to "
            f"{MAX_CARD_BYTES:,} bytes"
        )


def _too_large(what: str) -> _Refused:
    return _Refused(
        f"{what} is too large (over {MAX_TEMPLATE_VALUE:,} characters or items; a string bomb?)"
    )


def _render_template(source: str, context: dict[str, Any], name: str) -> str:
    import jinja2
    from jinja2 import nodes

    env = _sandbox_class()()
    try:
        with time_limit(template_timeout()):
            tree = env.parse(source)
            forbidden = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
            for node in tree.find_all(forbidden):
                tag = _FORBIDDEN_TAGS.get(type(node).__name__, "from")
                raise _TemplateFailure(
                    node.lineno,
                    f"{{% {tag} %}} is not allowed: a card template cannot read other files",
                    "put the whole model card template in one file",
                )
            text = env.from_string(tree).render(context)
    except _TemplateFailure as failure:
        raise _template_error(name, failure.lineno, failure.what, failure.hint) from None
    except jinja2.TemplateSyntaxError as exc:
        raise _template_error(name, exc.lineno, exc.message or "syntax error") from None
    except Exception as exc:  # MemoryError, RecursionError, ...: every failure is the template's
        raise _template_error(name, _template_line(exc), _describe(exc), _hint(exc)) from None
    card = text.rstrip() + "\n"
    if len(card.encode("utf-8", "surrogatepass")) > MAX_CARD_BYTES:
        raise _template_error(name, None, f"the card is larger than {MAX_CARD_BYTES:,} bytes")
    return card


class _TemplateFailure(Exception):
    def __init__(self, lineno: int | None, what: str, hint: str | None = None) -> None:
        super().__init__(what)
        self.lineno, self.what, self.hint = lineno, what, hint


def _template_error(
    name: str, lineno: int | None, what: str, hint: str | None = None
) -> R1ReleaseError:
    what = " ".join(what.split())
    if len(what) > 300:
        what = what[:299] + "…"
    where = f"{name}:{lineno}" if lineno else name
    return R1ReleaseError(f"{where}: {what}", hint=hint or "fix the model card template")


def _template_line(exc: BaseException) -> int | None:
    """The template line ``exc`` was raised on: jinja2 rewrites a render's traceback so that
    each template frame carries the template's own file name and line."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _describe(exc: BaseException) -> str:
    import jinja2

    if isinstance(exc, (jinja2.TemplateError, _Refused, TemplateTimeout)):
        return str(exc) or type(exc).__name__
    if isinstance(exc, RecursionError):
        return "too deeply nested or recursive (maximum recursion depth exceeded)"
    if isinstance(exc, MemoryError):
        return "out of memory"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _hint(exc: BaseException) -> str:
    from jinja2.exceptions import SecurityError

    if isinstance(exc, SecurityError):
        return "a model card template gets plain data only: strings, numbers, lists and dicts"
    if isinstance(exc, _Refused):
        return exc.hint
    return "fix the model card template"


def _weight(value: Any, budget: int = MAX_TEMPLATE_VALUE) -> int:
    """How large ``value`` is: characters of a string, items of a list or dict counted deeply
    (a list holding one string a thousand times weighs a thousand strings). Stops counting once
    over ``budget``, so it costs at most ``budget`` steps."""
    from jinja2.utils import Cycler, Namespace

    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bytes, bytearray)):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 1
        elif isinstance(item, int):
            total += 1 + item.bit_length() // 3  # at least its decimal digits
        elif isinstance(item, range):
            total += _range_len(item)
        elif isinstance(item, Mapping):
            total += len(item)
            if total <= budget:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset, KeysView, ValuesView, ItemsView)):
            total += len(item)
            if total <= budget:
                stack.extend(item)
        elif isinstance(item, Namespace):
            stack.append(object.__getattribute__(item, "_Namespace__attrs"))
        elif isinstance(item, Cycler):
            stack.append(item.items)
        else:
            total += 1
        if total > budget:
            break
    return total


def _depth(value: Any, budget: int = MAX_TEMPLATE_VALUE) -> int:
    """How deeply lists and dicts nest in ``value`` (at most ``budget`` steps)."""
    deepest, steps, stack = 0, 0, [(value, 1)]
    while stack and steps < budget:
        item, depth = stack.pop()
        steps += 1
        if isinstance(item, Mapping):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _range_len(value: range) -> int:
    try:
        return len(value)
    except OverflowError:
        return MAX_TEMPLATE_VALUE + 1


def _check(size: int, what: str) -> None:
    if size > MAX_TEMPLATE_VALUE:
        raise _too_large(what)


def _check_values(values: Any, what: str) -> None:
    total = 0
    for value in values:
        total += _weight(value, MAX_TEMPLATE_VALUE - total)
        _check(total, what)


def _int(value: Any) -> int:
    return max(value, 0) if isinstance(value, int) and not isinstance(value, bool) else 0


def _ints(values: Any) -> list[int]:
    if isinstance(values, Mapping):
        values = values.values()
    elif not isinstance(values, (list, tuple)):
        values = [values]
    return [abs(v) for v in values if isinstance(v, int) and not isinstance(v, bool)]


def _number(digits: str) -> int:
    return int(digits) if len(digits) <= 9 else MAX_TEMPLATE_VALUE + 1


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?([-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d*))?)[hlL]?[A-Za-z%]")


def _printf_size(fmt: str, values: Any) -> int:
    """An upper bound on the length of ``fmt % values``."""
    specs = _PRINTF_SPEC.findall(fmt)
    widths = sum(_number(d) for spec in specs for d in re.findall(r"\d+", spec))
    stars = sum(spec.count("*") for spec in specs)
    return len(fmt) + widths + len(specs) * _weight(values) + stars * max(_ints(values), default=0)


def _format_size(fmt: str, args: Any, kwargs: Any) -> int:
    """An upper bound on the length of ``fmt.format(*args, **kwargs)``."""
    import string

    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return len(fmt)  # str.format raises the same error
    fields = sum(1 for _, field, _, _ in parsed if field is not None)
    specs = [spec for _, _, spec, _ in parsed if spec]
    widths = sum(_number(d) for spec in specs for d in re.findall(r"\d+", spec))
    nested = sum(spec.count("{") for spec in specs)
    largest = max(_ints(list(args)) + _ints(kwargs), default=0)
    return len(fmt) + widths + fields * (_weight(args) + _weight(kwargs)) + nested * largest


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _replace_size(text: str, old: Any, new: Any, count: Any) -> int:
    text, old, new = str(text), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * len(new)


def _join_size(separator: Any, items: Sized) -> int:
    return _weight(items) + len(str(separator)) * len(items)


# Filters that can make their result much larger than their arguments: an upper bound on
# the result's size, from (value, args, kwargs). Every other filter's result is at most a
# small multiple of its arguments' size, which are bounded.
_FILTER_SIZES: dict[str, Any] = {
    "center": lambda v, a, k: _weight(v) + _int(_arg(a, k, 0, "width", 80)),
    "indent": lambda v, a, k: _indent_size(v, _arg(a, k, 0, "width", 4)),
    "replace": lambda v, a, k: _replace_size(
        v, _arg(a, k, 0, "old", ""), _arg(a, k, 1, "new", ""), _arg(a, k, 2, "count", None)
    ),
    "join": lambda v, a, k: _join_size(_arg(a, k, 0, "d", ""), v),
    "format": lambda v, a, k: _printf_size(str(v), k or a),
    "wordwrap": lambda v, a, k: _wordwrap_size(
        str(v), _arg(a, k, 0, "width", 79), _arg(a, k, 2, "wrapstring", None)
    ),
    "batch": lambda v, a, k: (
        _weight(v)
        + _int(_arg(a, k, 0, "linecount", 0)) * (1 + _weight(_arg(a, k, 1, "fill_with", None)))
    ),
    "slice": lambda v, a, k: (
        _weight(v)
        + _int(_arg(a, k, 0, "slices", 0)) * (1 + _weight(_arg(a, k, 1, "fill_with", None)))
    ),
    "tojson": lambda v, a, k: _weight(v) * (8 + _int(_arg(a, k, 0, "indent", 0)) * _depth(v)),
    "pprint": lambda v, a, k: _weight(v) * (8 + _depth(v)),
    "urlize": lambda v, a, k: (
        3 * len(str(v))
        + len(str(v).split()) * (64 + _weight(k.get("target")) + _weight(k.get("rel")))
    ),
}
_MATERIALIZE = {"join"}  # filters whose size bound needs the items of an iterator value


def _indent_size(text: Any, width: Any) -> int:
    text = str(text)
    per_line = len(width) if isinstance(width, str) else _int(width)
    return len(text) + (text.count("\n") + 1) * per_line


def _wordwrap_size(text: str, width: Any, wrapstring: Any) -> int:
    lines = len(text) // 2 + len(text) // max(_int(width), 1) + 1
    return len(text) + lines * len(str(wrapstring or "\n"))


def _materialize(value: Any, what: str) -> Any:
    """An iterator's items as a list, refusing more than the size limit."""
    if not isinstance(value, Iterator):
        return value
    items: list[Any] = []
    total = 0
    for item in value:
        total += max(1, _weight(item, MAX_TEMPLATE_VALUE - total))
        _check(total, what)
        items.append(item)
    return items


def _bounded(iterator: Iterator[Any], what: str) -> Iterator[Any]:
    """``iterator``, refusing to yield more than the size limit in all."""
    total = 0
    for item in iterator:
        total += max(1, _weight(item, MAX_TEMPLATE_VALUE - total))
        _check(total, what)
        yield item


def _guard_filter(name: str, func: Any) -> Any:
    """``func`` (a Jinja filter) bounded: its arguments and its result are within the size
    limit, and a filter that can amplify is refused before it runs when its result would not
    be. The guard takes the context, so no filter is ever run at compile time."""
    import jinja2

    passes = getattr(getattr(func, "jinja_pass_arg", None), "name", None)
    size = _FILTER_SIZES.get(name)
    what = f"the result of the {name} filter"

    @jinja2.pass_context
    def guarded(context: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        if name in _MATERIALIZE:
            value = _materialize(value, what)
        _check_values((value, *args, *kwargs.values()), f"the input of the {name} filter")
        if size is not None:
            _check(size(value, args, kwargs), what)
        first = {
            "context": (context,),
            "eval_context": (context.eval_ctx,),
            "environment": (context.environment,),
        }.get(passes, ())
        result = func(*first, value, *args, **kwargs)
        if isinstance(result, Iterator):
            return _bounded(result, what)
        _check(_weight(result), what)
        return result

    guarded.__name__ = guarded.__qualname__ = f"{name}_filter"
    return guarded


# str and bytes methods that can make a result much larger than their receiver and arguments
_WIDTH_METHODS = {"center", "ljust", "rjust", "zfill"}


def _check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a call whose result would be too large; returns ``args`` (an iterator given to
    ``str.join`` becomes a list)."""
    receiver = getattr(obj, "__self__", None)
    method = getattr(obj, "__name__", "")
    label = f"{method}()" if isinstance(method, str) and method.isidentifier() else "a call"
    what = f"the result of {label}"
    if isinstance(receiver, (str, bytes)) and method == "join" and args:
        args = (_materialize(args[0], what), *args[1:])  # a lazy map, say
    data_receiver = isinstance(receiver, (str, bytes, int, float, list, tuple, dict, set))
    _check_values(
        ((receiver,) if data_receiver else ()) + args + tuple(kwargs.values()),
        f"the input of {label}",
    )
    if isinstance(receiver, (str, bytes)):
        length = len(receiver)
        if method in _WIDTH_METHODS:
            _check(length + _int(_arg(args, kwargs, 0, "width", 0)), what)
        elif method == "expandtabs":
            tabs = receiver.count("\t" if isinstance(receiver, str) else b"\t")
            _check(length + tabs * _int(_arg(args, kwargs, 0, "tabsize", 8)), what)
        elif method == "replace" and len(args) >= 2:
            count = _arg(args, kwargs, 2, "count", -1)
            if isinstance(receiver, str):
                _check(_replace_size(receiver, args[0], args[1], count), what)
            else:
                _check(length * (1 + _weight(args[1])), what)
        elif method == "join" and args and isinstance(args[0], Sized):
            _check(_join_size(receiver, args[0]), what)
        elif method == "translate" and args and isinstance(args[0], Mapping):
            largest = max((_weight(v) for v in args[0].values()), default=1)
            _check(length * max(largest, 1), what)
    elif isinstance(receiver, int) and method == "to_bytes":
        _check(_int(_arg(args, kwargs, 0, "length", 1)), what)
    return args


def _check_binop(operator: str, left: Any, right: Any) -> None:
    sequences = (str, bytes, list, tuple)
    what = f"the result of {operator!r}"
    if operator == "*":
        seq, times = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(seq, sequences) and isinstance(times, int):
            if times > 0:
                _check(_weight(seq) * times, what)
        elif isinstance(left, int) and isinstance(right, int):
            _check_bits(left.bit_length() + right.bit_length(), what)
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            _check_bits(right * (abs(left).bit_length() - 1), what)
    elif operator == "+":
        if isinstance(left, sequences) and isinstance(right, sequences):
            _check(_weight(left) + _weight(right), what)
    elif operator == "%" and isinstance(left, str):
        _check(_printf_size(left, right), what)


def _check_bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise _Refused(
            f"{what} is too large (an integer of over {MAX_INT_BITS:,} bits)",
            f"integers in a model card template are limited to {MAX_INT_BITS:,} bits",
        )


def _range(*args: Any) -> range:
    result = range(*args)
    if _range_len(result) > MAX_RANGE:
        raise _Refused(
            f"range() of more than {MAX_RANGE:,} items refused",
            f"loop over at most {MAX_RANGE:,} items in a model card template",
        )
    return result


def _dict(*args: Any, **kwargs: Any) -> dict[Any, Any]:
    return dict(*args, **kwargs)


def _finalize(value: Any) -> Any:
    """Every ``{{ value }}``: refuse one too large to write."""
    _check(_weight(value), "an output value")
    return value


@functools.cache
def _sandbox_class() -> type:
    """Jinja's immutable sandbox, bounded (built on first use: jinja2 loads lazily)."""
    import jinja2
    from jinja2.compiler import CodeGenerator
    from jinja2.exceptions import SecurityError
    from jinja2.runtime import markup_join
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.utils import Cycler, Joiner, Namespace

    class CardCodeGenerator(CodeGenerator):
        def visit_Concat(self, node: Any, frame: Any) -> None:
            """``a ~ b`` through :meth:`CardSandbox.bounded_join` (not folded at compile
            time, where no size check runs)."""
            if frame.eval_ctx.volatile:
                escape = "context.eval_ctx.autoescape"
            else:
                escape = "True" if frame.eval_ctx.autoescape else "False"
            self.write("environment.bounded_join((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write(f"), {escape})")

    class CardSandbox(ImmutableSandboxedEnvironment):
        code_generator_class = CardCodeGenerator
        intercepted_binops = frozenset({"*", "**", "+", "%"})

        def __init__(self) -> None:
            super().__init__(
                undefined=jinja2.StrictUndefined,
                keep_trailing_newline=True,
                autoescape=False,
                finalize=_finalize,
            )  # no loader: no template can read another one
            self.globals.clear()
            self.globals.update(
                range=_range,
                dict=_dict,
                cycler=lambda *items: Cycler(*items),
                joiner=lambda sep=", ": Joiner(sep),
                namespace=lambda *args, **kwargs: Namespace(*args, **kwargs),
            )
            self.filters["metric"] = _fmt
            self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            _check_binop(operator, left, right)
            return super().call_binop(context, operator, left, right)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            args = _check_call(__obj, args, kwargs)
            result = super().call(__context, __obj, *args, **kwargs)
            if isinstance(result, Iterator):
                return _bounded(result, "the result of a call")
            _check(_weight(result), "the result of a call")
            return result

        def concat(self, parts: Any) -> str:  # type: ignore[override]
            """Every output buffer (the card, a macro, a ``{% set %}`` block), bounded."""
            out: list[str] = []
            size = 0
            for part in parts:
                size += len(part) if part.isascii() else len(part.encode("utf-8", "surrogatepass"))
                if size >= MAX_CARD_BYTES:  # the card ends with a newline more
                    if not isinstance(parts, GeneratorType):  # a block's buffer
                        raise _Refused(f"a block would be larger than {MAX_CARD_BYTES:,} bytes")
                    exc = _Refused(f"the card would be larger than {MAX_CARD_BYTES:,} bytes")
                    parts.throw(exc)  # raised where the template is, for its line
                    raise exc
                out.append(part)
            return "".join(out)

        def bounded_join(self, items: tuple[Any, ...], autoescape: bool = False) -> str:
            _check_values(items, "the result of '~'")
            return markup_join(items) if autoescape else "".join(map(str, items))

        def wrap_str_format(self, value: Any) -> Any:
            """``str.format`` and ``format_map`` (sandboxed by jinja2), refused before they
            run when the result would be too large."""
            wrapper = super().wrap_str_format(value)
            if wrapper is None:
                return None
            fmt, is_map = value.__self__, value.__name__ == "format_map"

            def bounded(*args: Any, **kwargs: Any) -> str:
                if is_map:
                    size = _format_size(fmt, (), args[0] if args else {})
                else:
                    size = _format_size(fmt, args, kwargs)
                _check(size, f"the result of {value.__name__}()")
                return wrapper(*args, **kwargs)

            return functools.update_wrapper(bounded, wrapper)

        def get_template(self, *args: Any, **kwargs: Any) -> Any:
            raise SecurityError("a card template cannot read other templates")

        select_template = get_or_select_template = get_template

    return CardSandbox


def _release_data(release: ReleaseInfo) -> dict[str, str | None]:
    return {"version": release.version, "git_commit": release.git_commit, "date": release.date}


def _prompt_example(checkpoint: Checkpoint) -> str | None:
    template = None
    try:
        template = checkpoint.chat_template()
        if template is None or not checkpoint.has_tokenizer():
            return None
        checkpoint.turn_end_ids()  # renders once (cached): a broken template raises here
        tok = checkpoint.tokenizer()
        return template.render(
            tok, [{"role": "user", "content": "What is 7 * 6?"}], add_generation_prompt=True
        )
    except Exception:  # the chat-template rule reports a broken template
        return None


def _link(repo_id: str | None, kind: str) -> str | None:
    return f"[{repo_id}](https://huggingface.co/{kind}{repo_id})" if repo_id else None


def _fmt(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"

"""``release.yaml``: a frozen, typed model of the file, loaded with file:line:key errors.

The dataclasses below are the single source of truth: the loader walks the YAML node tree
against their type hints (keeping each node's line for error messages), and
:func:`json_schema` derives the JSON Schema from the same hints and field docs.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import stat
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml

from r1release.errors import ConfigError

DEFAULT_CONFIG = "release.yaml"
MAX_CONFIG_BYTES = 16 * 1024 * 1024
SeverityName = Literal["error", "warning", "off"]
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _doc(text: str, **extra: Any) -> dict[str, Any]:
    return {"doc": text, **extra}


@dataclass(frozen=True)
class ModelConfig:
    name: str = field(
        metadata=_doc(
            "Short name of the model; used in git tags `NAME@vX.Y.Z`.",
            pattern=(_NAME_RE, "use letters, digits, '.', '_' and '-'"),
        )
    )
    checkpoint: Path = field(
        metadata=_doc("Checkpoint directory; `${VAR}` is expanded, relative to release.yaml.")
    )
    repo_id: str = field(
        metadata=_doc("Hub repository, `owner/name`.", pattern=(_REPO_RE, "use `owner/name`"))
    )
    base_model: str | None = field(default=None, metadata=_doc("Hub id of the base model."))
    dataset_name: str | None = field(default=None, metadata=_doc("Hub id of the dataset."))
    license: str | None = field(default=None, metadata=_doc("License id, e.g. `apache-2.0`."))
    tags: tuple[str, ...] = field(
        default=("open-r1",), metadata=_doc("Model card tags; defaults to `[open-r1]`.")
    )
    private: bool = field(
        default=True, metadata=_doc("Create the Hub repository as private (default true).")
    )
    tag_pattern: str | None = field(
        default=None,
        metadata=_doc(
            "Git tags that release this model: `v*` for one model, `NAME@v*` for several."
        ),
    )


@dataclass(frozen=True)
class RuleSetting:
    """A rule's entry under ``checks:``: a severity and/or rule options."""

    severity: SeverityName | None = None
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    line: int | None = None


@dataclass(frozen=True)
class SmokeConfig:
    prompts: tuple[str, ...] = field(
        default=("What is 7 * 6?",), metadata=_doc("Chat prompts for the smoke generation.")
    )
    max_new_tokens: int = field(
        default=256, metadata=_doc("Generation must stop within this many new tokens.")
    )


@dataclass(frozen=True)
class PushConfig:
    revision: str = field(default="main", metadata=_doc("Hub branch to commit to."))
    fix: bool = field(
        default=True,
        metadata=_doc("Upload a fixed staged copy; the checkpoint on disk is never edited."),
    )
    allow_skipped: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "Rules of error severity that a release in CI may skip when they cannot run here "
            "(e.g. expected-tensors without torch); by default such a skip fails the release."
        ),
    )


@dataclass(frozen=True)
class CardConfig:
    template: Path | None = field(
        default=None,
        metadata=_doc("Jinja template for the model card (README.md), relative to release.yaml."),
    )


@dataclass(frozen=True)
class Config:
    models: tuple[ModelConfig, ...] = field(metadata=_doc("The models this repository releases."))
    version: Literal[1] = field(default=1, metadata=_doc("Version of the release.yaml format."))
    checks: Mapping[str, RuleSetting] = field(
        default_factory=lambda: MappingProxyType({}),
        metadata=_doc("Per-rule severity (`error`, `warning`, `off`) or `{severity, options}`."),
    )
    smoke: SmokeConfig = field(default_factory=SmokeConfig)
    push: PushConfig = field(default_factory=PushConfig)
    card: CardConfig = field(default_factory=CardConfig)
    path: Path = field(default=Path(DEFAULT_CONFIG), metadata={"internal": True})

    def rule_settings(self) -> dict[str, RuleSetting]:
        """``checks:`` plus the ``smoke:`` section as smoke-generate's options (options set
        under ``checks: smoke-generate`` win)."""
        settings = dict(self.checks)
        base = settings.get("smoke-generate", RuleSetting())
        smoke = {"prompts": list(self.smoke.prompts), "max_new_tokens": self.smoke.max_new_tokens}
        settings["smoke-generate"] = RuleSetting(
            base.severity, MappingProxyType(smoke | dict(base.options)), base.line
        )
        return settings

    def card_template(self) -> str | None:
        """The text of the configured card template, or None for the built-in one."""
        if self.card.template is None:
            return None
        try:
            return read_config_file(self.card.template).decode("utf-8")
        except (OSError, ValueError, NotAConfigFile) as exc:
            raise ConfigError(
                f"card.template {self.card.template}: cannot read ({exc})", file=self.path
            ) from None

    def model(self, name: str) -> ModelConfig:
        for m in self.models:
            if m.name == name:
                return m
        names = [m.name for m in self.models]
        raise ConfigError(
            f"no model named {name!r}{did_you_mean(name, names)}; models: {', '.join(names)}",
            file=self.path,
        )


# --------------------------------------------------------------------------- loading


class NotAConfigFile(Exception):
    """A path that is not a regular file (reading a FIFO blocks) or too large to be a config."""


def read_config_file(path: str | Path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of a small regular file; never blocks on a FIFO, never reads gigabytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotAConfigFile("not a regular file")
        if info.st_size > limit:
            raise NotAConfigFile(f"{info.st_size} bytes is too large for a configuration file")
        return fh.read(limit + 1)


def load(path: str | Path = DEFAULT_CONFIG) -> Config:
    """Load and validate ``release.yaml``; raises :class:`ConfigError` naming file and line."""
    path = Path(path)
    try:
        text = read_config_file(path).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "file not found", file=path, hint="create it, or pass --config PATH"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=path) from None
    except NotAConfigFile as exc:
        raise ConfigError(str(exc), file=path, hint="pass a release.yaml with --config") from None
    return loads(text, path)


def loads(text: str, path: str | Path = DEFAULT_CONFIG) -> Config:
    path = Path(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark and mark and mark.index >= len(text.rstrip()):
            mark = exc.context_mark  # "unexpected end of file": point at what was left open
        line = mark.line + 1 if mark else None
        message = f"YAML syntax error: {exc.problem or exc.context}"
        if exc.context and mark is exc.context_mark:
            message += f" ({exc.context})"
        raise ConfigError(message, file=path, line=line) from None
    except yaml.YAMLError as exc:  # e.g. a control character: not marked, several lines
        raise ConfigError(f"YAML error: {_one_line(exc)}", file=path) from None
    except RecursionError:
        raise ConfigError("YAML nesting too deep", file=path) from None
    if root is None:
        raise ConfigError("file is empty", file=path, hint="see `r1release schema`")
    walker = _Walker(path)
    values = walker.dataclass_fields(root, Config, "", skip={"path"})
    config = Config(**values, path=path)
    _check_models(config, root, walker)
    return config


def _check_models(config: Config, root: yaml.Node, walker: _Walker) -> None:
    if not config.models:
        raise ConfigError(
            "at least one model is required",
            file=walker.path,
            key="models",
            line=root.start_mark.line + 1,
        )
    seen: dict[str, int] = {}
    models_node = walker.child(root, "models")
    for i, model in enumerate(config.models):
        node = models_node.value[i] if isinstance(models_node, yaml.SequenceNode) else root
        line = node.start_mark.line + 1
        if model.name in seen:
            raise ConfigError(
                f"duplicate model name {model.name!r} (first defined at line {seen[model.name]})",
                file=walker.path,
                line=line,
                key=f"models[{i}].name",
            )
        seen[model.name] = line


class _Walker:
    """Converts YAML nodes to typed values, raising errors that carry the node's line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent

    def error(
        self, node: yaml.Node, key: str, message: str, hint: str | None = None
    ) -> ConfigError:
        return ConfigError(
            message,
            file=self.path,
            line=node.start_mark.line + 1,
            key=key or "(top level)",
            hint=hint,
        )

    @staticmethod
    def child(node: yaml.Node, name: str) -> yaml.Node | None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == name:
                    return v
        return None

    def mapping(self, node: yaml.Node, key: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, key, f"expected a mapping, got {_kind(node)}")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode) or k.tag != "tag:yaml.org,2002:str":
                raise self.error(k, key, "keys must be strings")
            if k.value in out:
                first = out[k.value][0].start_mark.line + 1
                raise self.error(k, _join(key, k.value), f"duplicate key (first at line {first})")
            out[k.value] = (k, v)
        return out

    def dataclass_fields(
        self, node: yaml.Node, cls: type, key: str, skip: frozenset[str] | set[str] = frozenset()
    ) -> dict[str, Any]:
        items = self.mapping(node, key)
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
        values: dict[str, Any] = {}
        for name, (knode, vnode) in items.items():
            if name not in fields:
                raise self.error(
                    knode,
                    _join(key, name),
                    "unknown key" + did_you_mean(name, list(fields)),
                    hint=f"allowed keys: {', '.join(fields)}",
                )
            values[name] = self.convert(vnode, hints[name], _join(key, name))
            pattern, hint = fields[name].metadata.get("pattern", (None, None))
            if pattern and isinstance(values[name], str) and not pattern.match(values[name]):
                raise self.error(
                    vnode, _join(key, name), f"invalid value {values[name]!r}", hint=hint
                )
        for name, f in fields.items():
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required and name not in values:
                raise self.error(node, _join(key, name), "required key is missing")
        return values

    def convert(self, node: yaml.Node, tp: Any, key: str) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            if _is_null(node) and type(None) in args:
                return None
            inner = [a for a in args if a is not type(None)]
            return self.convert(node, inner[0], key)
        if dataclasses.is_dataclass(tp):
            return tp(**self.dataclass_fields(node, tp, key))
        if origin is tuple:
            if not isinstance(node, yaml.SequenceNode):
                raise self.error(node, key, f"expected a list, got {_kind(node)}")
            return tuple(
                self.convert(item, args[0], f"{key}[{i}]") for i, item in enumerate(node.value)
            )
        if origin is Literal:
            value = self.scalar(node, key)
            if value not in args:
                choices = ", ".join(repr(a) for a in args)
                raise self.error(node, key, f"expected one of {choices}, got {value!r}")
            return value
        if tp == Mapping[str, RuleSetting]:
            return self.rule_settings(node, key)
        if tp is Path:
            return self.path_value(node, key)
        value = self.scalar(node, key)
        ok = (
            isinstance(value, tp) and not (tp is int and isinstance(value, bool))
            if tp in (str, int, bool)
            else True
        )
        if not ok:
            raise self.error(node, key, f"expected {_type_name(tp)}, got {_describe(value)}")
        return value

    def scalar(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, key, f"expected a single value, got {_kind(node)}")
        try:
            return yaml.constructor.SafeConstructor().construct_object(node)
        except Exception as exc:  # PyYAML's constructors raise anything on odd tagged values
            raise self.error(node, key, f"invalid value: {_one_line(exc)}") from None

    def path_value(self, node: yaml.Node, key: str) -> Path:
        raw = self.scalar(node, key)
        if not isinstance(raw, str) or not raw:
            raise self.error(node, key, f"expected a path, got {_describe(raw)}")

        def expand(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            value = os.environ.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    raise self.error(
                        node,
                        key,
                        f"environment variable {name} is not set",
                        hint=f"set {name} or write ${{{name}:-default}}",
                    )
                return default
            return value

        expanded = Path(_ENV_RE.sub(expand, raw)).expanduser()
        return expanded if expanded.is_absolute() else self.base / expanded

    def rule_settings(self, node: yaml.Node, key: str) -> Mapping[str, RuleSetting]:
        out: dict[str, RuleSetting] = {}
        for name, (knode, vnode) in self.mapping(node, key).items():
            sub = _join(key, name)
            line = knode.start_mark.line + 1
            if isinstance(vnode, yaml.MappingNode):
                opts = {
                    k: self.scalar_or_list(v, _join(sub, k))
                    for k, (_, v) in self.mapping(vnode, sub).items()
                }
                severity = opts.pop("severity", None)
                if severity is not None:
                    severity = self._severity(vnode, sub, severity)
                out[name] = RuleSetting(severity, MappingProxyType(opts), line)
            else:
                value = self.scalar(vnode, sub)
                out[name] = RuleSetting(self._severity(vnode, sub, value), line=line)
        return MappingProxyType(out)

    def scalar_or_list(self, node: yaml.Node, key: str) -> Any:
        if isinstance(node, yaml.SequenceNode):
            return tuple(self.scalar(n, f"{key}[{i}]") for i, n in enumerate(node.value))
        return self.scalar(node, key)

    def _severity(self, node: yaml.Node, key: str, value: Any) -> SeverityName:
        if value is False:  # YAML 1.1 reads a bare `off` as false
            return "off"
        if value not in ("error", "warning", "off"):
            raise self.error(node, key, f"expected error, warning or off, got {_describe(value)}")
        return value


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    try:
        return _describe(yaml.constructor.SafeConstructor().construct_object(node))
    except Exception:  # e.g. 2024-13-45, !!binary that is not base64, an empty !!int
        return f"the invalid value {node.value!r}"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    return f"{_type_name(type(value))} {value!r}"


def _type_name(tp: Any) -> str:
    return {str: "a string", int: "an integer", bool: "true/false", float: "a number"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------- JSON Schema


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of ``release.yaml``, for editors and CI validation."""
    schema = _schema_for(Config)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/r1release/r1release/release.schema.json",
        "title": "r1release release.yaml",
        **schema,
    }


def _schema_for(tp: Any) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return {"anyOf": [_schema_for(inner[0]), {"type": "null"}]}
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        props: dict[str, Any] = {}
        required = []
        for f in dataclasses.fields(tp):
            if f.metadata.get("internal") or tp is RuleSetting:
                continue
            prop = _schema_for(hints[f.name])
            if "doc" in f.metadata:
                prop["description"] = f.metadata["doc"]
            if "pattern" in f.metadata:
                prop["pattern"] = f.metadata["pattern"][0].pattern
            if f.default is not dataclasses.MISSING and f.default is not None:
                default = f.default
                prop["default"] = (
                    list(default)
                    if isinstance(default, tuple)
                    else (str(default) if isinstance(default, Path) else default)
                )
            props[f.name] = prop
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
        out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
        if required:
            out["required"] = required
        return out
    if origin is tuple:
        return {"type": "array", "items": _schema_for(args[0])}
    if origin is Literal:
        return {"enum": list(args)}
    if tp == Mapping[str, RuleSetting]:
        severity = {"enum": ["error", "warning", "off", False]}
        return {
            "type": "object",
            "additionalProperties": {
                "anyOf": [
                    severity,
                    {
                        "type": "object",
                        "properties": {"severity": severity},
                        "additionalProperties": True,
                    },
                ]
            },
        }
    if tp is Path:
        return {"type": "string", "minLength": 1}
    return {"type": {str: "string", int: "integer", bool: "boolean", float: "number"}[tp]}

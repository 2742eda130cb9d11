"""Which model and version a run releases: a git tag, workflow_dispatch inputs, or flags.

Tags follow ``tag_pattern``: ``v*`` releases the only model, ``NAME@v*`` (the gto
convention) one of several. The Hub tag is the version (``v1.2.0``), the part after ``@``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from r1release.config import (
    Config,
    ModelConfig,
    NotAConfigFile,
    read_config_file,
    ref_problem,
    shown,
)
from r1release.errors import UsageError

# ASCII digits only (``\d`` would take Arabic-Indic or fullwidth ones), matched in full (``$``
# alone would let a trailing newline through). The version becomes a Hub tag and a git tag.
# A version starts with ``v``: the Hub tag is the version, and the tags that release a model
# are ``v*`` (``NAME@v*``), so push --version and release --tag take the same strings.
_VERSION_RE = re.compile(r"v[0-9]+(\.[0-9]+)*([.+-][0-9A-Za-z.+-]+)?")
MAX_VERSION = 128  # longer strings are no version (and would make the regex backtrack)
MAX_EVENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Resolved:
    model: ModelConfig
    version: str
    source: str  # "tag", "workflow_dispatch" or "flags"
    dry_run: bool | None = None  # what the event asked for (workflow_dispatch's input)


def tag_pattern(model: ModelConfig, config: Config) -> str:
    if model.tag_pattern:
        return model.tag_pattern
    return "v*" if len(config.models) == 1 else f"{model.name}@v*"


def from_tag(config: Config, tag: str) -> Resolved:
    tag = tag.removeprefix("refs/tags/")
    if _lacks_v(tag.rpartition("@")[2]):
        check_version(tag.rpartition("@")[2])  # 1.3.0: refused as push --version 1.3.0 is
    matches = [m for m in config.models if fnmatch.fnmatchcase(tag, tag_pattern(m, config))]
    if not matches:
        patterns = ", ".join(f"{m.name}: {tag_pattern(m, config)}" for m in config.models)
        raise UsageError(f"git tag {tag!r} matches no model's tag_pattern ({patterns})")
    if len(matches) > 1:
        names = ", ".join(m.name for m in matches)
        raise UsageError(
            f"git tag {tag!r} matches several models ({names})",
            hint="use NAME@vX.Y.Z tags and tag_pattern: NAME@v*",
        )
    version = tag.split("@", 1)[1] if "@" in tag else tag
    return Resolved(matches[0], check_version(version), "tag")


def check_version(version: str) -> str:
    """``version`` if it is a version like v1.2.0 that git also takes as a tag name (no
    ``..``, no trailing ``.`` or ``.lock``, ...); the error shows it escaped, on one line."""
    if (
        len(version) > MAX_VERSION
        or not _VERSION_RE.fullmatch(version)
        or ref_problem(version) is not None
    ):
        hint = f"a version starts with v: v{version}" if _lacks_v(version) else None
        raise UsageError(f"version {shown(version)} is not a version like v1.2.0", hint=hint)
    return version


def _lacks_v(version: str) -> bool:
    """``1.3.0``: a version but for its leading ``v``."""
    return len(version) < MAX_VERSION and _VERSION_RE.fullmatch(f"v{version}") is not None


def from_flags(config: Config, model: str | None, version: str | None) -> Resolved:
    if not version:
        raise UsageError("pass --version V (or --tag TAG)")
    if model is None:
        if len(config.models) > 1:
            names = ", ".join(m.name for m in config.models)
            raise UsageError(f"several models in {config.path}; pass --model NAME ({names})")
        return Resolved(config.models[0], check_version(version), "flags")
    return Resolved(config.model(model), check_version(version), "flags")


def from_github(config: Config, env: Mapping[str, str] | None = None) -> Resolved | None:
    """The release a GitHub Actions event asks for, or None outside a release event."""
    env = os.environ if env is None else env
    event = env.get("GITHUB_EVENT_NAME")
    if event == "push" and env.get("GITHUB_REF_TYPE") == "tag":
        return from_tag(config, env.get("GITHUB_REF_NAME") or env.get("GITHUB_REF", ""))
    if event == "workflow_dispatch":
        inputs = _event_inputs(env)
        where = env.get("GITHUB_EVENT_PATH", "GitHub event")
        model = _string_input(inputs, "model", where) or None
        resolved = from_flags(config, model, _string_input(inputs, "version", where))
        return Resolved(
            resolved.model, resolved.version, "workflow_dispatch", _dry_run(inputs, where)
        )
    return None


def dispatch_dry_run(env: Mapping[str, str] | None = None) -> bool | None:
    """A workflow_dispatch event's ``dry_run`` input (None for other events, or unset).

    It holds whatever else names the release (the composite action's ``version:``, flags): a
    person who ticked "dry run" gets one."""
    env = os.environ if env is None else env
    if env.get("GITHUB_EVENT_NAME") != "workflow_dispatch":
        return None
    return _dry_run(_event_inputs(env), env.get("GITHUB_EVENT_PATH", "GitHub event"))


def _dry_run(inputs: Mapping[str, object], where: str) -> bool | None:
    dry = inputs.get("dry_run")
    if isinstance(dry, str):
        dry = {"true": True, "false": False, "": None}.get(dry.lower(), dry)
    if dry is not None and not isinstance(dry, bool):
        raise UsageError(f"{where}: inputs.dry_run must be true or false, not {shown(dry)}")
    return dry


def _string_input(inputs: Mapping[str, object], name: str, where: str) -> str | None:
    value = inputs.get(name)
    if value is not None and not isinstance(value, str):
        raise UsageError(f"{where}: inputs.{name} must be a string, not {shown(value)}")
    return value


def _event_inputs(env: Mapping[str, str]) -> dict[str, object]:
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        text = read_config_file(path, MAX_EVENT_BYTES).decode("utf-8")
        payload = json.loads(text, parse_constant=_reject_constant)
    except (OSError, ValueError, RecursionError, NotAConfigFile) as exc:
        raise UsageError(f"{path}: cannot read the GitHub event payload: {exc}") from None
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    return inputs if isinstance(inputs, dict) else {}


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")

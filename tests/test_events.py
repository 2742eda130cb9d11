"""Which model and version a run releases: tags, workflow_dispatch payloads, flags."""

from __future__ import annotations

import json

import pytest

from r1release import config as config_mod
from r1release import events
from r1release.errors import ConfigError, UsageError

ONE = "version: 1\nmodels:\n  - {name: solo, checkpoint: c, repo_id: o/solo}\n"
TWO = (
    "version: 1\nmodels:\n"
    "  - {name: small, checkpoint: a, repo_id: o/small}\n"
    "  - {name: big, checkpoint: b, repo_id: o/big}\n"
)


def cfg(text, tmp_path):
    return config_mod.loads(text, tmp_path / "release.yaml")


@pytest.mark.parametrize(
    ("text", "tag", "model", "version"),
    [
        (ONE, "v1.2.0", "solo", "v1.2.0"),
        (ONE, "refs/tags/v1.2.0-rc.1", "solo", "v1.2.0-rc.1"),
        (TWO, "big@v2.0.0", "big", "v2.0.0"),
        (TWO, "small@v0.1.0", "small", "v0.1.0"),
    ],
)
def test_from_tag(tmp_path, text, tag, model, version):
    resolved = events.from_tag(cfg(text, tmp_path), tag)
    assert (resolved.model.name, resolved.version, resolved.source) == (model, version, "tag")


@pytest.mark.parametrize(
    ("text", "tag", "message"),
    [
        (ONE, "nightly", "matches no model's tag_pattern"),
        (TWO, "v1.0.0", "matches no model"),  # several models need NAME@v tags
        (ONE, "vX", "not a version"),
    ],
)
def test_bad_tags(tmp_path, text, tag, message):
    with pytest.raises(UsageError, match=message):
        events.from_tag(cfg(text, tmp_path), tag)


def test_explicit_tag_pattern_and_bad_version(tmp_path):
    text = "version: 1\nmodels:\n  - {name: m, checkpoint: c, repo_id: o/m, tag_pattern: 'rel-*'}\n"
    with pytest.raises(UsageError, match="not a version"):
        events.from_tag(cfg(text, tmp_path), "rel-x")


def test_github_tag_push(tmp_path):
    env = {
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REF_TYPE": "tag",
        "GITHUB_REF_NAME": "big@v3.1.0",
        "GITHUB_REF": "refs/tags/big@v3.1.0",
    }
    resolved = events.from_github(cfg(TWO, tmp_path), env)
    assert (resolved.model.name, resolved.version, resolved.dry_run) == ("big", "v3.1.0", None)


@pytest.mark.parametrize(("dry_run", "expected"), [(True, True), (False, False), ("true", True)])
def test_github_workflow_dispatch(tmp_path, dry_run, expected):
    payload = tmp_path / "event.json"
    payload.write_text(
        json.dumps({"inputs": {"model": "small", "version": "v1.0.0", "dry_run": dry_run}})
    )
    env = {"GITHUB_EVENT_NAME": "workflow_dispatch", "GITHUB_EVENT_PATH": str(payload)}
    resolved = events.from_github(cfg(TWO, tmp_path), env)
    assert (resolved.model.name, resolved.version, resolved.dry_run) == (
        "small",
        "v1.0.0",
        expected,
    )


def test_github_other_events(tmp_path):
    assert events.from_github(cfg(ONE, tmp_path), {"GITHUB_EVENT_NAME": "push"}) is None


def test_flags(tmp_path):
    assert events.from_flags(cfg(ONE, tmp_path), None, "v1.0.0").model.name == "solo"
    with pytest.raises(UsageError, match="several models"):
        events.from_flags(cfg(TWO, tmp_path), None, "v1.0.0")
    with pytest.raises(ConfigError, match="did you mean 'big'"):
        events.from_flags(cfg(TWO, tmp_path), "bug", "v1.0.0")
    with pytest.raises(UsageError, match="--version"):
        events.from_flags(cfg(ONE, tmp_path), None, None)

"""Identifiers in release.yaml and events (issue 12): names, repo ids, branches, tag patterns,
versions; YAML alias amplification; the smoke section's bounds.

These values end up in git tags, Hub tags and commit messages, URLs, workflow output and the
model card, and release.yaml arrives in pull requests: a bad one must stop the load with one
ConfigError naming ``release.yaml:LINE: KEY``.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
from click.testing import CliRunner

from r1release import config as config_mod
from r1release import events
from r1release.cli import main
from r1release.errors import ConfigError, UsageError

import reliability

RELIABILITY_AREA = "Hostile input"
record = pytest.fixture(reliability.record)

BASE = "version: 1\nmodels:\n  - name: m\n    checkpoint: c\n    repo_id: org/m\n"
INJECTION = "x\n::error title=X::"
CYRILLIC_A = "\u0430"  # looks like "a"
CYRILLIC_O = "\u043e"  # looks like "o"
FULLWIDTH_M = "\uff4d"  # looks like "m"
ZERO_WIDTH = "\u200b"
RTL_OVERRIDE = "\u202e"


def q(value: str) -> str:
    """``value`` as a YAML double-quoted scalar (JSON's escapes are YAML's)."""
    return json.dumps(value)


# key -> (release.yaml with {v} where the value goes, line of the value, key in the error)
PLACES = {
    "name": (BASE.replace("name: m", "name: {v}"), 3, "models[0].name"),
    "repo_id": (BASE.replace("repo_id: org/m", "repo_id: {v}"), 5, "models[0].repo_id"),
    "tag_pattern": (BASE + "    tag_pattern: {v}\n", 6, "models[0].tag_pattern"),
    "revision": (BASE + "push:\n  revision: {v}\n", 7, "push.revision"),
    "max_new_tokens": (BASE + "smoke:\n  max_new_tokens: {v}\n", 7, "smoke.max_new_tokens"),
    "checks max_new_tokens": (
        BASE + "checks:\n  smoke-generate:\n    max_new_tokens: {v}\n",
        8,
        "checks.smoke-generate.max_new_tokens",
    ),
    "prompts": (BASE + "smoke:\n  prompts: {v}\n", 7, "smoke.prompts"),
}

IDENTIFIERS = {
    "name": config_mod.MODEL_NAME,
    "repo_id": config_mod.REPO_ID,
    "tag_pattern": config_mod.TAG_GLOB,
    "revision": config_mod.BRANCH,
}


def document(key: str, value: object) -> str:
    template = PLACES[key][0]
    text = q(value) if isinstance(value, str) else json.dumps(value)
    return template.replace("{v}", text)


GOOD = {
    "name": ["m", "OpenR1-Distill-7B", "Qwen2.5-0.5B", "a.b_c-d", "7b", "x" * 96],
    "repo_id": [
        "org/m",
        "open-r1/OpenR1-Distill-7B",
        "Org.Name/model.v2",
        "_org/_m_",  # the Hub's validator allows '_' at either end
        "a/" + "x" * 96,
        "x" * 96 + "/m",
    ],
    "tag_pattern": ["v*", "m@v*", "release-*", "rel/v*", "*", "v*.*", "t" * 128],
    "revision": ["main", "release/v1", "refs/pr/1", "v1.0-rc_2", "foo@bar", "a{b}", "x" * 255],
    "max_new_tokens": [1, 256, 4096],
    "checks max_new_tokens": [1, 4096],
    "prompts": [["hi"], ["p"] * 32, ["x" * 4096]],
}

BAD = {
    "name": [
        ("m\n", "character '\\n' (U+000A) is not allowed"),
        (INJECTION, "character '\\n' (U+000A) is not allowed"),
        ("has space", "character ' ' (U+0020) is not allowed"),
        ("a..b", "contains '..'"),
        ("a@{b", "character '@' is not allowed"),
        ("m@v1", "character '@' is not allowed"),
        (f"m{CYRILLIC_O}del", "character '\\u043e' (U+043E) is not allowed"),
        (FULLWIDTH_M, "character '\\uff4d' (U+FF4D) is not allowed"),
        (f"m{ZERO_WIDTH}", "character '\\u200b' (U+200B) is not allowed"),
        (f"{RTL_OVERRIDE}m", "character '\\u202e' (U+202E) is not allowed"),
        ("x" * 97, "longer than 96 characters"),
        ("-m", "must start with a letter or digit"),
        (".m", "must start with a letter or digit"),
        ("_m", "must start with a letter or digit"),
        ("m.lock", "ends with '.lock'"),
        ("m.", "ends with '.'"),
        ("org/m", "character '/' is not allowed"),
        ("", "empty"),
    ],
    "repo_id": [
        ("org/m\n", "character '\\n' (U+000A) is not allowed"),
        ("org/" + INJECTION, "character '\\n' (U+000A) is not allowed"),
        ("org/has space", "character ' ' (U+0020) is not allowed"),
        ("org/a..b", "contains '..'"),
        ("org/a@{b", "character '@' is not allowed"),
        (f"org/m{CYRILLIC_O}del", "character '\\u043e' (U+043E) is not allowed"),
        (f"{FULLWIDTH_M}/m", "character '\\uff4d' (U+FF4D) is not allowed"),
        (f"org/m{ZERO_WIDTH}", "character '\\u200b' (U+200B) is not allowed"),
        ("a/" + "x" * 97, "the name is longer than 96 characters"),
        ("x" * 97 + "/m", "the owner is longer than 96 characters"),
        ("m", "must be `owner/name`, with exactly one '/'"),
        ("a/b/c", "must be `owner/name`, with exactly one '/'"),
        ("org/m--x", "contains '--'"),
        ("org/-m", "the name cannot start or end with '-' or '.'"),
        ("org/m-", "the name cannot start or end with '-' or '.'"),
        ("org/.m", "the name cannot start or end with '-' or '.'"),
        ("org/m.", "the name cannot start or end with '-' or '.'"),
        ("org/m.git", "ends with '.git'"),
        ("/m", "the owner is empty"),
        ("org/", "the name is empty"),
        ("https://hf.co/org/m", "must be `owner/name`, with exactly one '/'"),
    ],
    "tag_pattern": [
        ("v*\n", "character '\\n' (U+000A) is not allowed"),
        (INJECTION, "character '\\n' (U+000A) is not allowed"),
        ("v *", "character ' ' (U+0020) is not allowed"),
        ("v..*", "contains '..'"),
        ("v@{*", "contains '@{'"),
        (f"v{CYRILLIC_A}*", "character '\\u0430' (U+0430) is not allowed"),
        ("v" + "*" * 128, "longer than 128 characters"),
        ("-v*", "starts with '-'"),
        ("v*/", "ends with '/'"),
        ("v*.", "ends with '.'"),
        ("v*.lock", "ends with '.lock'"),
        ("v*.lock/x", "a part ends with '.lock'"),
        ("v?", "character '?' is not allowed"),
        ("v[0-9]*", "character '[' is not allowed"),
        ("v~1", "character '~' is not allowed"),
        ("v^", "character '^' is not allowed"),
        ("v:*", "character ':' is not allowed"),
        ("v\\*", "character '\\\\' is not allowed"),
        ("//v*", "contains '//'"),
        ("v//*", "contains '//'"),
        (".v*", "a part starts with '.'"),
        ("x/.v*", "a part starts with '.'"),
        ("@", "'@' is not a tag name"),
        ("", "empty"),
    ],
    "revision": [
        ("main\n", "character '\\n' (U+000A) is not allowed"),
        (INJECTION, "character '\\n' (U+000A) is not allowed"),
        ("has space", "character ' ' (U+0020) is not allowed"),
        ("a..b", "contains '..'"),
        ("a@{b", "contains '@{'"),
        (f"m{CYRILLIC_A}in", "character '\\u0430' (U+0430) is not allowed"),
        (f"main{ZERO_WIDTH}", "character '\\u200b' (U+200B) is not allowed"),
        ("x" * 256, "longer than 255 characters"),
        ("-main", "starts with '-'"),
        ("/main", "starts with '/'"),
        ("main/", "ends with '/'"),
        ("main.", "ends with '.'"),
        ("a.lock", "ends with '.lock'"),
        ("a.lock/b", "a part ends with '.lock'"),
        ("a//b", "contains '//'"),
        (".hidden", "a part starts with '.'"),
        ("a/.b", "a part starts with '.'"),
        ("a~1", "character '~' is not allowed"),
        ("a^", "character '^' is not allowed"),
        ("a:b", "character ':' is not allowed"),
        ("a?", "character '?' is not allowed"),
        ("a*", "character '*' is not allowed"),
        ("a[b", "character '[' is not allowed"),
        ("a\\b", "character '\\\\' is not allowed"),
        ("a\x7f", "character '\\x7f' (U+007F) is not allowed"),
        ("a\tb", "character '\\t' (U+0009) is not allowed"),
        ("@", "'@' is not a branch name"),
        ("HEAD", "'HEAD' is not a branch name"),
        ("", "empty"),
    ],
    "max_new_tokens": [
        (0, "0 is not between 1 and 4096"),
        (-1, "-1 is not between 1 and 4096"),
        (4097, "4097 is not between 1 and 4096"),
        (10**9, "1000000000 is not between 1 and 4096"),
    ],
    "checks max_new_tokens": [
        (0, "0 is not between 1 and 4096"),
        (4097, "4097 is not between 1 and 4096"),
        (10**12, "1000000000000 is not between 1 and 4096"),
    ],
    "prompts": [
        (["p"] * 33, "33 items, more than the maximum 32"),
        (["x" * 4097], "4097 characters, more than the maximum 4096"),
        (["ok", "x" * 10_000], "10000 characters, more than the maximum 4096"),
    ],
}

GOOD_CASES = [(k, v) for k, values in GOOD.items() for v in values]
BAD_CASES = [(k, v, why) for k, values in BAD.items() for v, why in values]


def case_id(case: object) -> str:
    text = ascii(case)
    return text if len(text) <= 40 else text[:37] + "..."


def load(text: str, tmp_path):
    return config_mod.loads(text, tmp_path / "release.yaml")


@pytest.mark.parametrize(("key", "value"), GOOD_CASES, ids=case_id)
def test_good_values_load(key, value, tmp_path):
    config = load(document(key, value), tmp_path)
    model = config.models[0]
    got = {
        "name": model.name,
        "repo_id": model.repo_id,
        "tag_pattern": model.tag_pattern,
        "revision": config.push.revision,
        "max_new_tokens": config.smoke.max_new_tokens,
        "checks max_new_tokens": config.checks.get("smoke-generate")
        and config.checks["smoke-generate"].options["max_new_tokens"],
        "prompts": list(config.smoke.prompts),
    }[key]
    assert got == value


@pytest.mark.parametrize(("key", "value", "why"), BAD_CASES, ids=case_id)
def test_bad_values_are_one_config_error(key, value, why, tmp_path):
    _, line, name = PLACES[key]
    with pytest.raises(ConfigError) as caught:
        load(document(key, value), tmp_path)
    error = caught.value
    text = str(error)
    assert error.exit_code == 2
    assert error.line == line
    assert error.key == name or error.key.startswith(name + "[")  # smoke.prompts[1]
    assert text.startswith(f"{tmp_path / 'release.yaml'}:{line}: {error.key}: "), text
    if key in IDENTIFIERS:
        assert f"invalid value {config_mod.shown(value)}: {why}" in text, text
    else:
        assert why in text, text
    assert "\n" not in text and "\r" not in text  # one line: no workflow command sneaks out
    assert len(text) < 400, text  # an overlong value is cut, not echoed whole
    if isinstance(value, str) and value.endswith("\n"):
        assert "\\n" in text  # shown escaped


# ------------------------------------------------------------------ the regexes match the rules


STRING_CASES = [(k, v, True) for k in IDENTIFIERS for v in GOOD[k]] + [
    (k, v, False) for k in IDENTIFIERS for v, _ in BAD[k]
]


@pytest.mark.parametrize(("key", "value", "ok"), STRING_CASES, ids=case_id)
def test_regex_and_rule_agree(key, value, ok):
    """The loader's reasons, the regex (Python) and the regex as ECMA-262 (what JSON Schema
    validators run, through the Rust `regress` check-jsonschema uses) give one verdict."""
    ident = IDENTIFIERS[key]
    assert (ident.problem(value) is None and len(value) <= ident.max_length) is ok
    assert bool(ident.pattern.fullmatch(value)) is ok
    assert (ident.why_invalid(value) is None) is ok
    regress = pytest.importorskip("regress")
    assert (regress.Regex(ident.pattern.pattern, "u").find(value) is not None) is ok


def _values(key: str) -> list[str]:
    return GOOD[key] + [v for v, _ in BAD[key]]


@pytest.mark.parametrize("value", _values("repo_id"), ids=case_id)
def test_repo_id_rules_are_the_hubs(value):
    """huggingface_hub's own validator, with an owner required (as of 1.33, which checks
    what the Hub checks: ASCII only, the whole id, owners of at most 96 characters)."""
    from importlib.metadata import version

    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if tuple(int(p) for p in version("huggingface_hub").split(".")[:2]) < (1, 33):
        pytest.skip("huggingface_hub < 1.33 validates repo ids more loosely than the Hub")

    try:
        validate_repo_id(value)
        hub_ok = value.count("/") == 1
    except HFValidationError:
        hub_ok = False
    assert (config_mod.REPO_ID.why_invalid(value) is None) is hub_ok


def _git_accepts(args: list[str], cwd) -> bool:
    proc = subprocess.run(["git", "check-ref-format", *args], cwd=cwd, capture_output=True)
    return proc.returncode == 0


@pytest.mark.parametrize("value", _values("revision"), ids=case_id)
def test_revision_rules_are_gits(value, tmp_path):
    """git check-ref-format --branch agrees, but where ours is stricter: ASCII only, not the
    lone ``@`` (git's shorthand for HEAD), at most 255 characters."""
    if value == "" or "\n" in value:
        pytest.skip("not an argument git can judge")
    git_ok = _git_accepts(["--branch", value], tmp_path)  # outside a repository: no @{-1}
    ours = config_mod.BRANCH.why_invalid(value) is None
    if ours:
        assert git_ok
    elif value.isascii() and value != "@" and len(value) <= 255:
        assert not git_ok


@pytest.mark.parametrize("value", _values("tag_pattern"), ids=case_id)
def test_tag_pattern_rules_are_gits(value, tmp_path):
    """A tag the pattern matches (each ``*`` read as ``x``) is one git accepts; what we
    refuse git refuses too, but where ours is stricter: ASCII only, no leading '-', not the
    lone ``@``, at most 128 characters."""
    if value == "" or "\n" in value:
        pytest.skip("not an argument git can judge")
    git_ok = _git_accepts([f"refs/tags/{value.replace('*', 'x')}"], tmp_path)
    if config_mod.TAG_GLOB.why_invalid(value) is None:
        assert git_ok
    elif value.isascii() and value != "@" and not value.startswith("-") and len(value) <= 128:
        assert not git_ok


# ------------------------------------------------------------------ versions (events.py)

GOOD_VERSIONS = ["v1.2.0", "v1.2.0-rc.1", "v1.0.0+build.5", "v2", "v1.0-"]
BAD_VERSIONS = [
    "1.0",  # a version starts with v, as release --tag takes it
    "v1.0.0\n",
    "v1.0.0\n::error title=X::",
    "v1 .0",
    "v1..2",
    "v1.0-a..b",
    "v1.0@{x}",
    "v\u0661.\u0662",  # Arabic-Indic digits: \d takes them
    "v\uff11.0",  # a fullwidth 1
    "v1.0-x.lock",
    "v1.0-x.",
    "v1.0-" + "1" * 200,
    "",
]


@pytest.mark.parametrize("version", GOOD_VERSIONS)
def test_good_versions(version, tmp_path):
    assert events.check_version(version) == version
    assert _git_accepts([f"refs/tags/{version}"], tmp_path)


@pytest.mark.parametrize("version", BAD_VERSIONS, ids=case_id)
def test_bad_versions(version):
    with pytest.raises(UsageError) as caught:
        events.check_version(version)
    text = str(caught.value)
    assert caught.value.exit_code == 2
    assert "is not a version like v1.2.0" in text
    assert "\n" not in text and len(text) < 200
    if "\n" in version:
        assert "\\n" in text


def test_every_version_is_a_git_tag(tmp_path):
    """Whatever the version regex takes, git takes as a tag (a sample of its edge cases)."""
    edge = ["v1.0-a.b", "v1+x", "1.2.3-rc.1+b.2", "v0.0.0-", "v1.0+-", "v1..2", "v1.0-x."]
    for version in [*edge, "v1.0-x.lock", "v1.0.lock", "1.0-a/b", "v1-.", "v1.0+.lock"]:
        try:
            events.check_version(version)
        except UsageError:
            continue
        assert _git_accepts([f"refs/tags/{version}"], tmp_path), version


def test_version_from_a_pushed_tag_with_a_trailing_newline(tmp_path):
    config = load(BASE, tmp_path)
    with pytest.raises(UsageError, match=re.escape("'v1.0.0\\n'")):
        events.from_tag(config, "v1.0.0\n")


# ------------------------------------------------------------------ YAML alias amplification


def test_alias_bomb_is_refused_fast(tmp_path):
    text = BASE + "    tags:\n      - &a " + "x" * 1_000_000 + "\n" + "      - *a\n" * 199
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load(text, tmp_path)
    elapsed = time.perf_counter() - started
    error = caught.value
    # the first alias adds 1,000,000 characters (under the 1 MiB bound): the second is refused
    assert (error.line, error.key) == (9, "models[0].tags[2]")  # the second alias
    assert "YAML aliases expand to more than 1048576 characters" in str(error)
    assert elapsed < 10, elapsed


def test_alias_bound_counts_nested_expansion(tmp_path):
    """Aliases of mappings: each copy of the model counts all of its keys and values."""
    model = "{name: m, checkpoint: c, repo_id: org/m, license: " + "l" * 300_000 + "}"
    text = "version: 1\nmodels:\n  - &m " + model + "\n" + "  - *m\n" * 5
    with pytest.raises(ConfigError) as caught:
        load(text, tmp_path)
    # aliases 1-3 add 900,000 characters; the fourth (models[4], line 7) goes over
    assert (caught.value.line, caught.value.key) == (7, "models[4].license")
    assert "YAML aliases expand" in str(caught.value)


def test_small_aliases_still_load(tmp_path):
    text = BASE + "    tags: &t [a, b]\n" + "smoke:\n  prompts: [&p 'What is 7 * 6?', *p, *p]\n"
    config = load(text, tmp_path)
    assert config.smoke.prompts == ("What is 7 * 6?",) * 3


def test_alias_error_lines_point_at_the_alias(tmp_path):
    text = BASE + "    tag_pattern: &t 'v*'\npush:\n  revision: *t\n"
    with pytest.raises(ConfigError) as caught:
        load(text, tmp_path)
    assert (caught.value.line, caught.value.key) == (8, "push.revision")  # not the anchor's 6


# ------------------------------------------------------------------ JSON Schema


def test_schema_carries_the_limits():
    schema = config_mod.json_schema()
    model = schema["properties"]["models"]["items"]["properties"]
    assert model["name"]["pattern"] == config_mod.MODEL_NAME.pattern.pattern
    assert model["name"]["maxLength"] == 96
    assert model["repo_id"]["pattern"] == config_mod.REPO_ID.pattern.pattern
    assert model["tag_pattern"]["anyOf"][0]["maxLength"] == 128
    push = schema["properties"]["push"]["properties"]
    assert push["revision"]["maxLength"] == 255
    smoke = schema["properties"]["smoke"]["properties"]
    assert (smoke["max_new_tokens"]["minimum"], smoke["max_new_tokens"]["maximum"]) == (1, 4096)
    assert smoke["prompts"]["maxItems"] == 32
    assert smoke["prompts"]["items"]["maxLength"] == 4096


@pytest.mark.parametrize(
    ("key", "value"), [c[:2] for c in BAD_CASES if "checks" not in c[0]], ids=case_id
)
def test_schema_refuses_what_the_loader_refuses(key, value):
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    doc = yaml.safe_load(document(key, value))
    validator = jsonschema.Draft202012Validator(config_mod.json_schema())
    if isinstance(value, str) and value.endswith("\n"):
        # Python's re.search (jsonschema's) lets `$` match before a final newline: ECMA's
        # does not; the loader does not either (test_regex_and_rule_agree)
        pytest.skip("jsonschema runs patterns with Python's re")
    assert not validator.is_valid(doc)


# ------------------------------------------------------------------ the CLI, recorded

NL = "character '\\n' (U+000A) is not allowed"
HOSTILE = [
    ("name-newline", "a model name ending in a newline", "name", "m\n", NL),
    ("name-workflow-command", "a model name carrying ::error", "name", INJECTION, NL),
    ("name-lookalike", "a model name with a Cyrillic o", "name", f"m{CYRILLIC_O}del",
     "character '\\u043e' (U+043E)"),
    ("name-at", "a model name with '@' (splits NAME@vX.Y.Z)", "name", "m@v1", "character '@'"),
    ("name-overlong", "a 10,000-character model name", "name", "m" * 10_000,
     "(10000 characters): longer than 96"),
    ("repo-id-workflow-command", "a repo_id carrying ::error", "repo_id", "org/" + INJECTION, NL),
    ("repo-id-lookalike", "a repo_id with a fullwidth m", "repo_id", f"{FULLWIDTH_M}/m",
     "(U+FF4D) is not allowed"),
    ("repo-id-traversal", "a repo_id with '..'", "repo_id", "org/a..b", "contains '..'"),
    ("repo-id-double-dash", "a repo_id with '--'", "repo_id", "org/a--b", "contains '--'"),
    ("repo-id-url", "a repo_id that is a URL", "repo_id", "https://hf.co/org/m",
     "exactly one '/'"),
    ("revision-space", "push.revision with a space", "revision", "my branch", "character ' '"),
    ("revision-reflog", "push.revision with '@{'", "revision", "main@{1}", "contains '@{'"),
    ("revision-newline", "push.revision carrying ::error", "revision", INJECTION, NL),
    ("revision-dotdot", "push.revision with '..'", "revision", "a..b", "contains '..'"),
    ("revision-option", "push.revision that looks like an option", "revision", "--force",
     "starts with '-'"),
    ("revision-overlong", "a 300-character push.revision", "revision", "b" * 300,
     "longer than 255"),
    ("tag-pattern-glob-class", "tag_pattern with '[' (an fnmatch class)", "tag_pattern",
     "v[0-9]*", "character '['"),
    ("tag-pattern-newline", "tag_pattern ending in a newline", "tag_pattern", "v*\n", NL),
    ("smoke-max-new-tokens", "smoke.max_new_tokens: 10^9", "max_new_tokens", 10**9,
     "not between 1 and 4096"),
    ("smoke-max-new-tokens-option", "checks.smoke-generate.max_new_tokens: 10^12",
     "checks max_new_tokens", 10**12, "not between 1 and 4096"),
    ("smoke-prompts-many", "33 smoke prompts", "prompts", ["p"] * 33, "33 items"),
    ("smoke-prompt-huge", "a 10,000-character smoke prompt", "prompts", ["x" * 10_000],
     "10000 characters"),
]  # fmt: skip


def _check(tmp_path, monkeypatch, text: str):
    (tmp_path / "release.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    for name in ("CI", "GITHUB_ACTIONS", "GITHUB_EVENT_NAME", "GITHUB_EVENT_PATH"):
        monkeypatch.delenv(name, raising=False)
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["check"])
    return result, time.perf_counter() - started


def _assert_one_error_line(result, where: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stdout + result.stderr
    lines = [s for s in result.stderr.splitlines() if s.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {where}"), lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("case", "injected", "key", "value", "expect"), HOSTILE, ids=[c[0] for c in HOSTILE]
)
def test_check_on_hostile_identifier(
    case, injected, key, value, expect, tmp_path, monkeypatch, record
):
    result, _ = _check(tmp_path, monkeypatch, document(key, value))
    record(case, injected, result)
    _, line, name = PLACES[key]
    _assert_one_error_line(result, f"release.yaml:{line}: {name}")
    assert expect in result.stderr, result.stderr


def test_check_on_alias_bomb(tmp_path, monkeypatch, record):
    text = BASE + "    tags: [&a " + "x" * 1_000_000 + ", " + ", ".join(["*a"] * 199) + "]\n"
    result, elapsed = _check(tmp_path, monkeypatch, text)
    record("yaml-alias-amplification", "a 1 MB tag and 199 aliases to it (a 200 MB card)", result)
    _assert_one_error_line(result, "release.yaml:6: models[0].tags[2]")
    assert "YAML aliases expand to more than" in result.stderr
    assert elapsed < 10, elapsed


def test_release_on_version_with_newline(tmp_path, monkeypatch, record):
    (tmp_path / "release.yaml").write_text(BASE)
    (tmp_path / "c").mkdir()
    monkeypatch.chdir(tmp_path)
    for name in ("CI", "GITHUB_ACTIONS", "GITHUB_EVENT_NAME", "GITHUB_EVENT_PATH"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["release", "--version", "v1.0.0\n", "--dry-run"])
    record("version-trailing-newline", "--version 'v1.0.0\\n'", result)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    errors = [s for s in result.stderr.splitlines() if s.startswith("error")]
    assert errors == [errors[0]] and "'v1.0.0\\n' is not a version" in errors[0], result.stderr

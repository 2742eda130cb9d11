"""Hostile inputs: broken, malicious or absurd release.yaml, checkpoint files and GitHub events.

Every case runs one command on a workspace with one thing broken (``tests/hostile.py`` builds
them) and must end the way README's error contract says: exit 1 (a finding, or an error about
the checkpoint) or 2 (usage / configuration), no traceback, at most one error line on stderr,
no "internal error", within a time limit (inputs that could block — FIFOs, huge files — run in
a subprocess with a timeout), nothing written outside the checkpoint (nothing at all for
check, card and dry runs), and no write request to the Hub.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from r1release.cli import main

import reliability
from hostile import (
    GB,
    INDEX,
    MODEL,
    SHARD1,
    SHARD2,
    Builder,
    Workspace,
    billion_laughs,
    both,
    checkpoint_is,
    edit,
    event,
    event_path,
    fifo,
    github,
    index,
    many_tensors,
    mkdir,
    nested,
    one_tensor,
    outside,
    pushed_tag,
    put,
    raw_name,
    release_yaml,
    rename,
    root_file,
    safetensors,
    setenv,
    snapshot,
    sparse,
    symlink,
    truncate,
    unlink,
    yaml_extra,
    yaml_file,
    yaml_replace,
)
from hubserver import client_env, patch_client

RELIABILITY_AREA = "Hostile input"
record = pytest.fixture(reliability.record)

BASE = "qwen2.5-7b-instruct"  # a clean checkpoint: every command succeeds on it
COMMANDS = {
    "check": ("check", "{ckpt}"),
    "fix": ("fix", "{ckpt}"),
    "fix --dry-run": ("fix", "--dry-run", "{ckpt}"),
    "card": ("card", "--model", MODEL),
    "release --dry-run": ("release", "--model", MODEL, "--version", "v1.0.0", "--dry-run"),
    "release --dry-run (event)": ("release", "--dry-run"),  # the event names model and version
    "release (event)": ("release",),  # the event decides even whether it is a dry run
}
WRITES_CHECKPOINT = frozenset({"fix"})
TIMEOUT = 60  # seconds, for every case


@dataclass(frozen=True)
class Case:
    name: str
    injected: str
    build: Builder
    command: str
    exit_code: int
    expect: str  # in the error line on stderr, or in a finding on stdout
    subprocess: bool = False  # could block or exhaust memory: run it where it can be killed
    timeout: int = TIMEOUT

    def __str__(self) -> str:
        return self.name


def C(*args, **kwargs) -> Case:
    return Case(*args, **kwargs)


TEMPLATE_RECURSION = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"
# 10^10 iterations: hours of rendering (the sandbox caps one range() at 100,000 items)
ENDLESS = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
FAST_TIMEOUT = setenv(R1RELEASE_TEMPLATE_TIMEOUT="2")
NOT_A_VERSION = "is not a version like v1.2.0"

# name, what is injected, builder, command, exit code, expected text
# fmt: off
RELEASE_YAML = [
    C("yaml-truncated", "release.yaml cut inside a flow mapping",
      yaml_file("version: 1\nmodels: [{name: OpenR1-Tiny, checkpoint: {ckpt}, repo_i"), "check", 2,
      "YAML syntax error"),
    # refused at the first undeclared option, before any alias is read
    C("yaml-billion-laughs", "9 levels of 9 aliases (9^9 strings) as rule options",
      yaml_extra("checks:", "  leftovers:", *billion_laughs("    ")), "check", 2,
      "checks.leftovers.x0: unknown option"),
    C("yaml-billion-laughs-option", "9^9 aliases as the value of a declared option",
      yaml_extra("checks:", "  leftovers:", "    patterns:", *billion_laughs("      ")),
      "check", 2, "checks.leftovers.patterns: expected a single value, got a mapping"),
    C("yaml-billion-laughs-unused", "9^9 aliases under an unknown key",
      yaml_extra("x-laughs:", *billion_laughs("  ")), "check", 2, "x-laughs: unknown key"),
    C("yaml-deep-flow-nesting", "100,000 nested flow sequences",
      yaml_file("version: 1\nmodels: " + nested(100_000) + "\n"), "check", 2, "nesting too deep"),
    C("yaml-deep-mapping-nesting", "100,000 nested flow mappings",
      yaml_file("version: 1\nmodels: " + nested(100_000, "{a: ", "}") + "\n"), "check", 2,
      "nesting too deep"),
    C("yaml-cyclic-alias", "a mapping that contains itself (&a {k: *a})",
      yaml_extra("checks: &c {leftovers: *c}"), "check", 2, "checks.leftovers"),
    C("yaml-non-utf8", "Latin-1 bytes in release.yaml",
      yaml_file(b"version: 1\nmodels:\n  - name: Mod\xe8le\n"), "check", 2, "not UTF-8 text (byte"),
    C("yaml-nul-byte", "a NUL byte in release.yaml", yaml_file("version: 1\x00\nmodels: []\n"),
      "check", 2, "special characters are not allowed"),
    C("yaml-top-level-list", "a list instead of a mapping",
      yaml_file("- version: 1\n- models: []\n"), "check", 2, "expected a mapping, got a list"),
    C("yaml-top-level-scalar", "a bare string", yaml_file("hello\n"), "check", 2,
      "expected a mapping"),
    C("yaml-only-comments", "nothing but comments", yaml_file("# version: 1\n"), "check", 2,
      "file is empty"),
    C("yaml-no-models", "models: []", yaml_file("version: 1\nmodels: []\n"), "check", 2,
      "at least one model is required"),
    C("yaml-name-int", "a model name that is an integer",
      yaml_replace("name: OpenR1-Tiny", "name: 123"), "check", 2,
      "models[0].name: expected a string, got an integer 123"),
    C("yaml-invalid-date", "models: 2024-13-45 (a timestamp that does not exist)",
      yaml_file("version: 1\nmodels: 2024-13-45\n"), "check", 2, "models: expected a list"),
    C("yaml-python-tag", "!!python/object/apply:os.system as repo_id",
      yaml_replace("repo_id: org/OpenR1-Tiny",
                   'repo_id: !!python/object/apply:os.system ["touch pwned"]'),
      "check", 2, "repo_id: expected a single value, got a list"),
    C("yaml-python-name-tag", "!!python/name:os.system where a list belongs",
      yaml_file("version: 1\nmodels: !!python/name:os.system\n"), "check", 2,
      "models: expected a list"),
    C("yaml-bad-binary", "!!binary that is not base64 where a list belongs",
      yaml_extra("    tags: !!binary '%%%'"), "check", 2, "models[0].tags: expected a list"),
    C("yaml-merge-key", "a YAML merge key (<<)", yaml_file("<<: {version: 1}\nmodels: []\n"),
      "check", 2, "keys must be strings"),
    C("yaml-duplicate-key", "repo_id twice", yaml_extra("    repo_id: evil/repo"), "check", 2,
      "duplicate key (first at line 5)"),
    C("yaml-private-nan", "private: .nan", yaml_extra("    private: .nan"), "check", 2,
      "expected true/false, got a number nan"),
    C("yaml-version-huge", "version: a 400-digit integer",
      yaml_replace("version: 1", "version: " + "9" * 400),
      "check", 2, "version: expected one of 1"),
    C("yaml-checkpoint-nul", "a NUL character in the checkpoint path",
      yaml_replace("checkpoint: {ckpt}", 'checkpoint: "{ckpt}\\0x"'),
      "card", 2, "is not a directory"),
    C("yaml-checkpoint-unset-env", "${VAR} that is not set",
      yaml_file(release_yaml(Path("${R1RELEASE_HOSTILE_UNSET}"))), "check", 2,
      "environment variable R1RELEASE_HOSTILE_UNSET is not set"),
    C("yaml-repo-id-newline", "a repo_id carrying a newline and a workflow command",
      yaml_replace("repo_id: org/OpenR1-Tiny", 'repo_id: "org/x\\n::add-mask::y"'),
      "check", 2, "models[0].repo_id: invalid value"),
    C("yaml-option-type", "allow_pickle: a list",
      yaml_extra("checks:", "  weights-format: {allow_pickle: [1, 2]}"), "check", 2,
      "expected bool, got (1, 2)"),
    C("yaml-sparse-2gb", "a 2 GB sparse release.yaml",
      sparse("release.yaml", 2 * GB, b"version: 1\n", where="root"), "check", 2,
      "too large for a configuration file", subprocess=True),
    C("yaml-fifo", "release.yaml is a FIFO with no writer", fifo("release.yaml", where="root"),
      "check", 2, "release.yaml: not a regular file", subprocess=True),
    C("card-template-recursion", "a card template that recurses forever",
      both(yaml_extra("card: {template: card.j2}"), root_file("card.j2", TEMPLATE_RECURSION)),
      "card", 1, "model card template"),
    C("card-template-endless-loop", "a card template looping 10^10 times",
      both(yaml_extra("card: {template: card.j2}"), root_file("card.j2", ENDLESS), FAST_TIMEOUT),
      "card", 1, "rendering took longer than 2 s", subprocess=True),
    C("card-template-python-internals", "a card template reaching for Python internals",
      both(yaml_extra("card: {template: card.j2}"),
           root_file("card.j2", "{{ model.__class__.__init__.__globals__ }}")),
      "card", 1, "model card template"),
    C("card-template-non-utf8", "a card template in Latin-1",
      both(yaml_extra("card: {template: card.j2}"), root_file("card.j2", b"# Mod\xe8le\n")), "card",
      2, "card.template"),
    C("card-template-fifo", "the card template is a FIFO",
      both(yaml_extra("card: {template: card.j2}"), fifo("card.j2", where="root")), "card", 2,
      "not a regular file", subprocess=True),
    C("release-card-template-recursion", "a recursive card template, at release",
      both(yaml_extra("card: {template: card.j2}"), root_file("card.j2", TEMPLATE_RECURSION)),
      "release --dry-run", 1, "model card template"),
]
# fmt: on

# fmt: off
EVENTS = [
    C("event-truncated", "a truncated event payload",
      event(None, raw=b'{"inputs": {"version": "v1'), "release --dry-run (event)", 2,
      "cannot read the GitHub event payload"),
    C("event-non-utf8", "a payload in Latin-1",
      event(None, raw=b'{"inputs": {"version": "v1.0.0", "model": "Mod\xe8le"}}'),
      "release --dry-run (event)", 2, "cannot read the GitHub event payload"),
    C("event-deep-nesting", "a payload nested 100,000 deep",
      event(None, raw=nested(100_000).encode()), "release --dry-run (event)", 2,
      "cannot read the GitHub event payload"),
    C("event-version-nan", "inputs.version: NaN", event(None, raw=b'{"inputs": {"version": NaN}}'),
      "release --dry-run (event)", 2, "cannot read the GitHub event payload"),
    C("event-version-int", "inputs.version: 1 (a number)", event({"inputs": {"version": 1}}),
      "release --dry-run (event)", 2, "inputs.version must be a string"),
    C("event-version-list", "inputs.version: a list", event({"inputs": {"version": ["v1.0.0"]}}),
      "release --dry-run (event)", 2, "inputs.version must be a string"),
    C("event-model-int", "inputs.model: 7", event({"inputs": {"model": 7, "version": "v1.0.0"}}),
      "release --dry-run (event)", 2, "inputs.model must be a string"),
    C("event-version-huge", "a 200 kB version that makes the version regex backtrack",
      event({"inputs": {"version": "v1" + ".1" * 100_000 + "!"}}), "release --dry-run (event)", 2,
      NOT_A_VERSION),
    C("event-version-injection", "a version carrying a shell command",
      event({"inputs": {"version": "v1.0.0; rm -rf ~"}}), "release --dry-run (event)", 2,
      NOT_A_VERSION),
    C("event-dry-run-garbage", "inputs.dry_run: 'maybe' (no --dry-run flag)",
      event({"inputs": {"version": "v1.0.0", "dry_run": "maybe"}}), "release (event)", 2,
      "inputs.dry_run must be true or false"),
    C("event-dry-run-object", "inputs.dry_run: an object (no --dry-run flag)",
      event({"inputs": {"version": "v1.0.0", "dry_run": {"value": True}}}), "release (event)", 2,
      "inputs.dry_run must be true or false"),
    C("event-payload-list", "a payload that is a list", event([1, 2, 3]),
      "release --dry-run (event)", 2, "pass --version V"),
    C("event-inputs-null", "inputs: null", event({"inputs": None}), "release --dry-run (event)", 2,
      "pass --version V"),
    C("event-payload-missing", "GITHUB_EVENT_PATH names no file", event_path("nope/event.json"),
      "release --dry-run (event)", 2, "cannot read the GitHub event payload"),
    C("event-payload-directory", "GITHUB_EVENT_PATH names a directory", event_path("."),
      "release --dry-run (event)", 2, "cannot read the GitHub event payload"),
    C("event-payload-fifo", "GITHUB_EVENT_PATH names a FIFO with no writer",
      both(fifo("event.json", where="root"), event_path("event.json")), "release --dry-run (event)",
      2, "not a regular file", subprocess=True),
    C("tag-newline", "a pushed tag name carrying a newline and a workflow command",
      pushed_tag("v1.0.0\n::add-mask::x"), "release --dry-run (event)", 2, NOT_A_VERSION),
    C("tag-traversal", "a pushed tag ../../etc/passwd", pushed_tag("../../etc/passwd"),
      "release --dry-run (event)", 2, "matches no model's tag_pattern"),
    C("tag-huge", "a 100 kB pushed tag", pushed_tag("v" + "1." * 50_000 + "x!"),
      "release --dry-run (event)", 2, NOT_A_VERSION),
]
# fmt: on

NAN_HEADER = b'{"w":{"dtype":"F32","shape":[NaN],"data_offsets":[0,4]}}'

# fmt: off
CHECKPOINT = [
    C("config-truncated", "config.json cut in half", truncate("config.json"), "check", 1,
      "config.json: invalid JSON at line"),
    C("config-array", "config.json is a JSON array", put("config.json", "[1, 2]"), "check", 1,
      "expected a JSON object, got list"),
    C("config-non-utf8", "config.json in Latin-1", put("config.json", b'{"model_type": "qw\xe8n"}'),
      "check", 1, "not UTF-8 text (byte 18)"),
    C("config-nan", "a NaN literal in config.json", put("config.json", '{"use_cache": NaN}'),
      "check", 1, "NaN is not valid JSON"),
    C("config-infinity", "-Infinity in config.json",
      put("config.json", '{"rope_theta": -Infinity}'), "check", 1, "-Infinity is not valid JSON"),
    C("config-deep-nesting", "config.json nested 100,000 deep", put("config.json", nested(100_000)),
      "check", 1, "config.json: invalid JSON"),
    C("config-duplicate-keys", "use_cache twice, the last false",
      put("config.json", '{"model_type": "qwen2", "use_cache": true, "use_cache": false}'), "check",
      1, "use_cache is false"),
    C("config-huge-int", "a 5,000-digit integer in config.json",
      put("config.json", '{"vocab_size": ' + "9" * 5000 + "}"), "check", 1,
      "config.json: invalid JSON"),
    C("config-sparse-2gb", "a 2 GB sparse config.json", sparse("config.json", 2 * GB, b"{"),
      "check", 1, "too large for a config file"),
    C("config-fifo", "config.json is a FIFO with no writer", fifo("config.json"), "check", 1,
      "not a regular file", subprocess=True),
    C("config-is-directory", "config.json is a directory", mkdir("config.json"), "check", 1,
      "config.json is missing"),
    C("config-symlink-loop", "config.json is a symlink to itself",
      symlink("config.json", "config.json"), "check", 1, "leaves the checkpoint directory"),
    C("config-symlink-passwd", "config.json -> /etc/passwd", symlink("config.json", "/etc/passwd"),
      "check", 1, "leaves the checkpoint directory"),
    C("config-eos-huge", "config.json eos_token_id 10**30",
      edit("config.json", eos_token_id=10**30), "check", 1, "eos_token_id"),
    C("generation-eos-string", "eos_token_id as a string",
      edit("generation_config.json", eos_token_id="151645"), "check", 1, "is not a stop token"),
    C("generation-eos-dict", "eos_token_id as an object",
      edit("generation_config.json", eos_token_id={"id": 151645}), "check", 1,
      "is not a stop token"),
    C("generation-eos-float", "eos_token_id as a float",
      edit("generation_config.json", eos_token_id=151645.0), "check", 1, "is not a stop token"),
    C("generation-eos-bool", "eos_token_id: true",
      edit("generation_config.json", eos_token_id=True), "check", 1, "is not a stop token"),
    C("generation-eos-negative", "eos_token_id: -1",
      edit("generation_config.json", eos_token_id=-1), "check", 1, "is not a stop token"),
    C("generation-eos-huge", "eos_token_id: 2**64",
      edit("generation_config.json", eos_token_id=2**64), "check", 1, "is not a stop token"),
    C("generation-eos-list-garbage", "eos_token_id: [null, 'x', {}, [151645]]",
      edit("generation_config.json", eos_token_id=[None, "x", {}, [151645]]), "check", 1,
      "is not a stop token"),
    C("generation-string", "generation_config.json is a JSON string",
      put("generation_config.json", '"eos"'), "check", 1, "expected a JSON object, got str"),
    C("tokenizer-config-eos-int", "tokenizer_config.json eos_token: 5",
      edit("tokenizer_config.json", eos_token=5), "check", 1, "tokenizer"),
    C("tokenizer-config-eos-object", "eos_token: {content: 5}",
      edit("tokenizer_config.json", eos_token={"content": 5}), "check", 1, "tokenizer"),
    C("tokenizer-config-template-int", "chat_template: 5 in tokenizer_config.json",
      both(edit("tokenizer_config.json", chat_template=5), unlink("chat_template.jinja")),
      "check", 1, "chat"),
    C("tokenizer-config-deep-nesting", "tokenizer_config.json nested 100,000 deep",
      put("tokenizer_config.json", nested(100_000, '{"a":', "}")), "check", 1,
      "tokenizer_config.json: invalid JSON"),
    C("special-tokens-map-truncated", "special_tokens_map.json cut short",
      put("special_tokens_map.json", '{"eos_token": {"content": "<|im_'), "check", 1,
      "special_tokens_map.json: invalid JSON"),
    C("special-tokens-map-fifo", "special_tokens_map.json is a FIFO",
      fifo("special_tokens_map.json"), "check", 1, "not a regular file", subprocess=True),
    C("tokenizer-json-truncated", "tokenizer.json cut in half", truncate("tokenizer.json"), "check",
      1, "does not load"),
    C("tokenizer-json-deep-nesting", "tokenizer.json model nested 100,000 deep",
      put("tokenizer.json", '{"version": "1.0", "model": ' + nested(100_000) + "}"), "check", 1,
      "does not load"),
    C("tokenizer-json-non-utf8", "tokenizer.json with Latin-1 bytes",
      put("tokenizer.json", b'{"version": "1.0", "model": "\xe8"}'), "check", 1, "does not load"),
    C("tokenizer-model-fifo", "tokenizer.model (read by transformers) is a FIFO",
      fifo("tokenizer.model"), "check", 1, "not a regular file", subprocess=True),
    C("tokenizer-json-fifo", "tokenizer.json is a FIFO", fifo("tokenizer.json"), "check", 1,
      "not a regular file", subprocess=True),
    C("chat-template-syntax", "a chat template that does not parse",
      put("chat_template.jinja", "{% for %}"), "check", 1, "does not render"),
    C("chat-template-raises", "a chat template that calls raise_exception",
      put("chat_template.jinja", "{{ raise_exception('no') }}"), "check", 1, "does not render"),
    C("chat-template-recursion", "a chat template that recurses forever",
      put("chat_template.jinja", TEMPLATE_RECURSION), "check", 1, "does not render"),
    C("chat-template-endless-loop", "a chat template looping 10^10 times",
      both(put("chat_template.jinja", ENDLESS), FAST_TIMEOUT), "check", 1,
      "rendering took longer than 2 s", subprocess=True),
    C("release-chat-template-endless-loop", "a chat template looping 10^10 times, at release",
      both(put("chat_template.jinja", ENDLESS), FAST_TIMEOUT), "release --dry-run", 1,
      "rendering took longer than 2 s", subprocess=True),
    C("chat-template-non-utf8", "chat_template.jinja in Latin-1",
      put("chat_template.jinja", b"{{ '\xe8' }}"), "check", 1, "utf-8"),
    C("chat-template-fifo", "chat_template.jinja is a FIFO", fifo("chat_template.jinja"), "check",
      1, "not a regular file", subprocess=True),
    C("safetensors-empty", "a 0-byte shard", put(SHARD1, b""), "check", 1, "0 bytes is too short"),
    C("safetensors-header-2**63", "header length 2**63", put(SHARD1, b"\x00" * 7 + b"\x80" + b"{}"),
      "check", 1, "runs past the end of the file"),
    C("safetensors-header-over-limit", "a 120 MB header length in a sparse 130 MB shard",
      sparse(SHARD1, 130_000_000, (120_000_000).to_bytes(8, "little")), "check", 1,
      "exceeds the 100 MB limit"),
    C("safetensors-header-nan", "NaN in a safetensors header",
      put(SHARD1, safetensors(None, b"\x00" * 4, raw=NAN_HEADER)), "check", 1,
      "header is not valid JSON"),
    C("safetensors-header-deep-nesting", "a header nested 100,000 deep",
      put(SHARD1, safetensors(None, raw=nested(100_000).encode())), "check", 1,
      "header is not valid JSON"),
    C("safetensors-header-non-utf8", "a header with Latin-1 bytes",
      put(SHARD1, safetensors(None, raw=b'{"\xe8": 1}')), "check", 1, "not UTF-8 JSON"),
    C("safetensors-header-list", "a header that is a JSON list", put(SHARD1, safetensors([1, 2])),
      "check", 1, "header is not a JSON object"),
    C("safetensors-dtype-list", "dtype: ['F32']",
      one_tensor(SHARD1, dtype=["F32"]),
      "check", 1, "unknown dtype ['F32']"),
    C("safetensors-dtype-object", "dtype: {}",
      one_tensor(SHARD1, dtype={}),
      "check", 1, "unknown dtype {}"),
    C("safetensors-shape-float", "shape: [1.5]",
      one_tensor(SHARD1, shape=[1.5]),
      "check", 1, "shape must be a list"),
    C("safetensors-shape-huge", "shape: [2**62, 2**62]",
      one_tensor(SHARD1, shape=[2**62, 2**62]),
      "check", 1, "of its shape is absurd"),
    C("safetensors-offsets-huge", "data_offsets: [0, 2**70]",
      one_tensor(SHARD1, "U8", [4], [0, 2**70]),
      "check", 1, "data_offsets span"),
    C("safetensors-metadata-int", "__metadata__: {format: 1}",
      put(SHARD1, safetensors({"__metadata__": {"format": 1}})), "check", 1,
      "__metadata__ must map strings to strings"),
    C("safetensors-1m-tensors", "a shard whose header lists 1,000,000 tensors",
      put(SHARD1, many_tensors(1_000_000)), "check", 1, "which the index does not map to it",
      subprocess=True, timeout=180),
    C("safetensors-fifo", "a shard that is a FIFO", fifo(SHARD2), "check", 1, "not a regular file",
      subprocess=True),
    C("index-absolute-shard", "weight_map names /etc/passwd", index("/etc/passwd"), "check", 1,
      "a path outside the checkpoint"),
    C("index-dotdot-shard", "weight_map names ../outside.safetensors (which exists)",
      both(outside("outside.safetensors", b"\x00" * 16), index("../outside.safetensors")), "check",
      1, "a path outside the checkpoint"),
    C("index-backslash-shard", "weight_map names ..\\outside.safetensors",
      index("..\\outside.safetensors"), "check", 1, "a path outside the checkpoint"),
    C("index-weight-map-list", "weight_map is a list", index([SHARD1]), "check", 1,
      "weight_map must map tensor names"),
    C("index-weight-map-ints", "weight_map values are integers", index({"model.norm.weight": 1}),
      "check", 1, "weight_map must map tensor names"),
    C("index-total-size-nan", "metadata.total_size: NaN",
      put(INDEX, '{"metadata": {"total_size": NaN}, "weight_map": {}}'), "check", 1,
      "NaN is not valid JSON"),
    C("index-shard-directory", "weight_map names a directory",
      both(mkdir("shards"), index("shards")), "check", 1, "which does not exist"),
    C("index-shard-escaping-symlink", "a shard that is a symlink out of the checkpoint",
      both(outside("elsewhere.safetensors", b"\x00" * 16),
           symlink(SHARD2, "../elsewhere.safetensors")),
      "check", 1, "leaves the checkpoint"),
    C("checkpoint-is-file", "the checkpoint path is a regular file", checkpoint_is("file"), "check",
      2, "not a directory"),
    C("checkpoint-is-fifo", "the checkpoint path is a FIFO", checkpoint_is("fifo"), "check", 2,
      "not a directory", subprocess=True),
    C("checkpoint-empty", "an empty checkpoint directory", checkpoint_is("empty"), "check", 1,
      "config.json is missing"),
    C("checkpoint-missing", "no checkpoint directory", checkpoint_is("missing"), "check", 2,
      "checkpoint directory not found"),
    C("checkpoint-self-loop", "the checkpoint is a symlink to itself", checkpoint_is("loop"),
      "check", 2, "checkpoint directory not found"),
    C("symlink-loop-pair", "a -> b, b -> a inside the checkpoint",
      both(symlink("a", "b"), symlink("b", "a")), "check", 1, "leaves the checkpoint"),
    C("filename-non-utf8", "a file named b'\\xff\\xfe.json'", raw_name(b"\xff\xfe.json"), "check",
      1, "file name is not UTF-8"),
    C("filename-non-utf8-pickle", "a pickle named b'\\xe8.bin', a strict UTF-8 stdout",
      raw_name(b"\xe8.bin", b"\x80\x04K\x01."), "check", 1, "pickle weights", subprocess=True),
    C("filename-non-utf8-github", "a pickle named b'\\xe8.bin', in GitHub Actions",
      both(raw_name(b"\xe8.bin", b"\x80\x04K\x01."), github), "check", 1, "pickle weights"),
    C("filename-newline", "a file whose name holds a newline", raw_name(b"evil\nname.txt"), "check",
      1, "file name holds control characters"),
    C("fix-nan", "fix with a NaN in config.json", put("config.json", '{"use_cache": NaN}'), "fix",
      1, "NaN is not valid JSON"),
    C("fix-dry-run-truncated", "fix --dry-run with generation_config.json cut short",
      truncate("generation_config.json"), "fix --dry-run", 1, "invalid JSON at line"),
    C("fix-symlinked-generation-config", "fix must replace a symlinked generation_config.json",
      both(rename("generation_config.json", "gen.json"), edit("gen.json", eos_token_id=1),
           symlink("generation_config.json", "gen.json")),
      "fix", 1, "is a symlink; not replacing it"),
    C("fix-generation-config-link-to-fifo", "generation_config.json -> a FIFO in a subdirectory",
      both(mkdir("sub"), fifo("sub/pipe"), symlink("generation_config.json", "sub/pipe")), "fix", 1,
      "generation_config.json: symlink leaves the checkpoint directory; not read", subprocess=True),
    C("fix-checkpoint-is-file", "fix on a regular file", checkpoint_is("file"), "fix --dry-run", 2,
      "not a directory"),
    C("fix-deep-tokenizer-config", "fix --dry-run with tokenizer_config.json nested deep",
      put("tokenizer_config.json", nested(100_000)), "fix --dry-run", 1, "invalid JSON"),
    C("release-fifo", "a FIFO in the checkpoint at release (deep scan reads every file)",
      fifo("notes.txt"), "release --dry-run", 1, "not a regular file", subprocess=True),
    C("release-symlink-loop", "a symlink loop at release", symlink("loop.json", "loop.json"),
      "release --dry-run", 1, "leaves the checkpoint"),
    C("release-non-utf8-name", "a non-UTF-8 file name at release", raw_name(b"\xff.txt"),
      "release --dry-run", 1, "file name is not UTF-8"),
    C("release-index-dotdot", "weight_map names ../x at release", index("../x.safetensors"),
      "release --dry-run", 1, "a path outside the checkpoint"),
    C("release-header-nan", "NaN in a safetensors header at release",
      put(SHARD1, safetensors(None, b"\x00" * 4, raw=NAN_HEADER)), "release --dry-run", 1,
      "header is not valid JSON"),
    C("release-checkpoint-missing", "the model's checkpoint does not exist, at release",
      checkpoint_is("missing"), "release --dry-run", 2, "checkpoint directory not found"),
    C("card-checkpoint-is-file", "card when the model's checkpoint is a file",
      checkpoint_is("file"), "card", 2, "is not a directory"),
]
# fmt: on

# Inputs that are wrong but harmless: ignored (the card leaves the value out), so the command
# succeeds; they must still never crash, hang or write.
# fmt: off
TOLERATED = [
    C("pad-negative-stop", "pad_token_id -1, which is also a stop token (a warning)",
      edit("generation_config.json", eos_token_id=[151645, 151643, -1], pad_token_id=-1), "check",
      0, "padding token -1"),
    C("trainer-state-deep-nesting", "trainer_state.json nested 100,000 deep",
      put("trainer_state.json", nested(100_000)), "card", 0, "# OpenR1-Tiny"),
    C("trainer-state-nan", "NaN/Infinity metrics in trainer_state.json and all_results.json",
      both(put("trainer_state.json", '{"global_step": NaN, "log_history": [{"loss": Infinity}]}'),
           put("all_results.json", '{"eval_loss": NaN, "epoch": 1e999}')),
      "card", 0, "# OpenR1-Tiny"),
    C("trainer-state-wrong-types", "global_step a string, log_history an object",
      put("trainer_state.json", '{"global_step": "3", "epoch": [1], "log_history": {"a": 1}}'),
      "card", 0, "# OpenR1-Tiny"),
    C("fix-generation-config-fifo",
      "generation_config.json is a FIFO: the tokenizer is not loaded, so nothing is fixable",
      fifo("generation_config.json"), "fix", 0, "nothing to fix", subprocess=True),
    C("trainer-state-fifo", "trainer_state.json is a FIFO", fifo("trainer_state.json"), "card", 0,
      "# OpenR1-Tiny", subprocess=True),
    C("release-results-deep-nesting", "all_results.json nested 100,000 deep, at release",
      put("all_results.json", nested(100_000)), "release --dry-run", 0, "dry run: nothing"),
]
# fmt: on

CASES = RELEASE_YAML + EVENTS + CHECKPOINT + TOLERATED
KNOWN_BUGS: dict[str, str] = {}  # name -> the fix it needs; a strict xfail, so it is noticed


def test_corpus_is_large_and_names_are_unique():
    names = [c.name for c in CASES]
    assert len(set(names)) == len(names)
    assert len(CASES) - len(TOLERATED) >= 40


@pytest.fixture
def workspace(_built, tmp_path: Path, tmp_path_factory) -> Workspace:
    import shutil

    root = tmp_path / "ws"
    root.mkdir()
    ckpt = root / "ckpt"
    shutil.copytree(_built[BASE], ckpt, symlinks=True)
    (root / "release.yaml").write_text(release_yaml(ckpt))
    return Workspace(root, ckpt, tmp_path_factory.mktemp("outside"))


def _args(case: Case, ws: Workspace) -> list[str]:
    return [a.replace("{ckpt}", str(ws.ckpt)) for a in COMMANDS[case.command]]


def _in_process(args: list[str], ws: Workspace, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.chdir(ws.root)
    result = CliRunner().invoke(main, args, env=ws.env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        tb = "".join(traceback.format_exception(result.exception))
        return 99, result.stdout, result.stderr + "\nTraceback (escaped the CLI):\n" + tb
    return result.exit_code, result.stdout, result.stderr


def _subprocess(
    args: list[str], ws: Workspace, env: dict[str, str], timeout: int
) -> tuple[int, str, str]:
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "r1release.cli", *args],
            cwd=ws.root,
            env=env | ws.env,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode("utf-8", "replace")
        err = (exc.stderr or b"").decode("utf-8", "replace")
        return 124, out, err + f"\nhung: killed after {timeout}s"
    return (
        proc.returncode,
        proc.stdout.decode("utf-8", "backslashreplace"),
        proc.stderr.decode("utf-8", "backslashreplace"),
    )


@pytest.mark.parametrize(
    "case",  # the cases that could block or exhaust memory run in a killable process: e2e
    [pytest.param(c, id=str(c), marks=[pytest.mark.e2e] if c.subprocess else []) for c in CASES],
)
def test_hostile_input(
    case: Case, workspace: Workspace, tmp_path, tmp_path_factory, request, monkeypatch, record
):
    if case.name in KNOWN_BUGS:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_BUGS[case.name], strict=True))
    ws = workspace
    case.build(ws)
    args = _args(case, ws)
    releasing = case.command.startswith("release")
    hub = request.getfixturevalue("hub") if releasing else None
    home = tmp_path_factory.mktemp("hf-home")
    if case.subprocess:
        env = dict(os.environ) | {"HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}
        env |= {"PYTHONIOENCODING": "utf-8"}  # a strict UTF-8 stdout, as on most terminals
        if hub is not None:
            env = client_env(hub, home, "hf_hostile") | {"PYTHONIOENCODING": "utf-8"}
        env |= {"R1RELEASE_RETRY_SCALE": "0"}
        for name in ("CI", "GITHUB_ACTIONS", "GITHUB_EVENT_NAME", "GITHUB_EVENT_PATH"):
            env.pop(name, None)
    else:
        if hub is not None:
            patch_client(monkeypatch, hub, home, "hf_hostile")
        monkeypatch.setenv("R1RELEASE_RETRY_SCALE", "0")
        for name in ("CI", "GITHUB_EVENT_NAME", "GITHUB_EVENT_PATH", "GITHUB_REF_TYPE"):
            monkeypatch.delenv(name, raising=False)
    before = snapshot(tmp_path)

    started = time.perf_counter()
    if case.subprocess:
        code, stdout, stderr = _subprocess(args, ws, env, case.timeout)
    else:
        code, stdout, stderr = _in_process(args, ws, monkeypatch)
    elapsed = time.perf_counter() - started
    after = snapshot(tmp_path)

    outcome = subprocess.CompletedProcess(args, code, stdout, stderr)
    output = stdout + stderr
    shown = next((line for line in output.splitlines() if case.expect in line), None)
    record(case.name, case.injected, outcome, message=shown)
    error_lines = [
        line
        for line in stderr.splitlines()
        if line.lower().startswith(("error", "internal error", "usage:", "try "))
    ]
    assert code == case.exit_code, f"exit {code}\nstdout:\n{stdout[-3000:]}\nstderr:\n{stderr}"
    assert "Traceback" not in output, stderr
    assert "internal error" not in output, output[-3000:]
    # One line per error; a release.yaml with several errors reports each (at most 50).
    assert len(error_lines) <= 50, stderr
    if code == 2:
        assert error_lines and all(line.startswith("error: ") for line in error_lines), stderr
        assert stdout == "" or releasing, stdout
    if case.expect:
        where = "\n".join(error_lines) if code == 2 else output
        assert case.expect in where, f"{case.expect!r} not in:\n{where[-3000:]}"
    assert elapsed < case.timeout, f"took {elapsed:.1f}s"

    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    if case.command in WRITES_CHECKPOINT:
        outside_ckpt = {p for p in changed if not p.startswith("ws/ckpt/")}
        assert not outside_ckpt, f"written outside the checkpoint: {sorted(outside_ckpt)}"
    else:
        assert not changed, f"written: {sorted(changed)}"
    if hub is not None:
        assert hub.writes() == [], hub.writes()


# ------------------------------------------------------------------ property-based

YAML_FRAGMENTS = [
    "version", "models", "name", "checkpoint", "repo_id", "checks", "push", "card", "smoke",
    "tags", "private", "tag_pattern", "leftovers", "patterns", "severity", ":", ": ", " ", "\n",
    "  ", "- ", "[", "]", "{", "}", ", ", "&a ", "*a", "!!binary ", "!!python/name:os.system ",
    "!!str ", "!!int ", "!!float ", "!!map ", "!!seq ", "!!set ", "!!omap ", "!!timestamp ",
    "<<", "'", '"', "#", "|", ">", "? ", "1", "-1", "0x1F", "1e999", "2024-13-45", "2024-01-01",
    ".nan", ".inf", "~", "null", "true", "off", "yes", "${HOME}", "${R1_X:-y}", "${R1_UNSET}",
    "org/x", "---\n", "...\n", "%YAML 1.1\n", "%TAG ! tag:x,2024:\n", "\t", "\x00", "\ufeff",
    "\\", "\\0", "é", "\U0001f600", "\r", "\x85", "\u2028",
]  # fmt: skip
yaml_ish = st.lists(st.sampled_from(YAML_FRAGMENTS), max_size=60).map("".join)

SCHEMA_KEYS = [
    "version", "models", "checks", "smoke", "push", "card", "name", "checkpoint", "repo_id",
    "base_model", "dataset_name", "license", "tags", "private", "tag_pattern", "prompts",
    "max_new_tokens", "revision", "fix", "template", "severity", "eos-alignment", "leftovers",
    "patterns", "weights-format", "allow_pickle", "card-metadata", "required", "x",
]  # fmt: skip
yaml_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["error", "warning", "off", "v*", "org/x", "/tmp", "${HOME}", "${R1_UNSET}"])
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(SCHEMA_KEYS) | st.integers(0, 3), inner, max_size=4)
    ),
    max_leaves=20,
)
model_docs = st.fixed_dictionaries(
    {"name": st.just("m") | yaml_values, "checkpoint": st.just("ckpt") | yaml_values,
     "repo_id": st.just("org/m") | yaml_values},
    optional={k: yaml_values for k in ("tags", "private", "tag_pattern", "license", "x")},
)  # fmt: skip
config_docs = (
    st.fixed_dictionaries(
        {
            "version": st.just(1) | yaml_values,
            "models": st.lists(model_docs | yaml_values, max_size=3),
        },
        optional={k: yaml_values for k in ("checks", "smoke", "push", "card", "x")},
    )
    | yaml_values
)


def _loads_or_config_error(text: str) -> None:
    from r1release.checker import resolve_rules
    from r1release.config import Config, ConfigError, loads

    try:
        config = loads(text, "release.yaml")
        resolve_rules(config.checks, config.path)  # rule names and options are checked here
    except ConfigError as exc:
        assert "\n" not in str(exc)  # one line, as the CLI prints it
        return
    assert isinstance(config, Config)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200) | yaml_ish)
def test_release_yaml_loader_on_arbitrary_text(text):
    _loads_or_config_error(text)


@settings(max_examples=300, deadline=None)
@given(doc=config_docs)
def test_release_yaml_loader_on_random_documents(doc):
    import yaml

    _loads_or_config_error(yaml.safe_dump(doc, allow_unicode=True))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=200))
def test_release_yaml_file_on_arbitrary_bytes(tmp_path, data):
    from r1release.config import Config, ConfigError, load

    (tmp_path / "release.yaml").write_bytes(data)
    with contextlib.suppress(ConfigError):
        assert isinstance(load(tmp_path / "release.yaml"), Config)


JSON_FRAGMENTS = [
    "{", "}", "[", "]", '"a"', '"eos_token_id"', '"use_cache"', ":", ",", " ", "\n", "NaN",
    "Infinity", "-Infinity", "1e999", "-0", "1.5", "9" * 5000, "true", "false", "null",
    '"\\ud800"', '"\\u0000"', '"\\x"', '"', "\\", "\ufeff", "é",
]  # fmt: skip
json_ish = st.lists(st.sampled_from(JSON_FRAGMENTS), max_size=40).map(lambda p: "".join(p).encode())


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=200) | json_ish)
def test_checkpoint_json_on_arbitrary_bytes(tmp_path, data):
    from r1release.checkpoint import Checkpoint
    from r1release.errors import FileUnreadable

    root = tmp_path / "ckpt"
    root.mkdir(exist_ok=True)
    (root / "config.json").write_bytes(data)
    try:
        doc = Checkpoint(root).json("config.json")
    except FileUnreadable as exc:
        assert exc.file == "config.json" and "\n" not in exc.reason
        return
    assert isinstance(doc, dict)


token_ids = st.integers(0, 2**32 - 1) | st.sampled_from([0, 64, 151643, 151644, 151645])
hostile_json = st.recursive(
    st.none() | st.booleans() | token_ids | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
CONFIG_KEYS = [
    "eos_token_id", "pad_token_id", "bos_token_id", "use_cache", "text_config", "vocab_size",
    "model_type", "transformers_version",
]  # fmt: skip
config_like = st.dictionaries(st.sampled_from(CONFIG_KEYS), hostile_json, max_size=5)


@settings(max_examples=60, deadline=None)
@given(config=config_like | st.none(), generation=config_like | st.none())
def test_rules_and_fixes_on_random_configs(_built, config, generation):
    """Wrongly typed EOS / pad / use_cache values: findings and fixes, never a crash.

    Token ids stay in the tokenizer's range (0..2**32-1): outside it see KNOWN_BUGS."""
    from r1release.checker import resolve_rules, run_rules
    from r1release.checkpoint import Checkpoint
    from r1release.errors import FileUnreadable
    from r1release.rules import Context

    ckpt = Checkpoint(_built[BASE])
    ckpt.override("config.json", config)
    ckpt.override("generation_config.json", generation)
    rules = [a for a in resolve_rules() if not a.rule.deep]
    findings = run_rules(ckpt, rules)
    assert not [f for f in findings if "internal error" in f.message], findings
    for active in rules:
        if active.rule.fixable:
            with contextlib.suppress(FileUnreadable):
                active.rule.fix(Context(ckpt, active.options))
    after = run_rules(ckpt, rules)
    assert not [f for f in after if "internal error" in f.message], after

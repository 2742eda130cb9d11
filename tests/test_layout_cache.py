"""The layout cache: expected-tensors without torch and transformers' model code when the
config was built before (r1release/layout_cache.py, architecture.expected_layout)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from r1release import architecture, layout_cache
from r1release.checker import ActiveRule, run_rules
from r1release.checkpoint import Checkpoint
from r1release.deep import DeepScan
from r1release.rules.expected_tensors import RULE, UnknownArchitecture

from factory import safetensors_bytes, tensor_shapes, write_weights
from helpers import edit_json

pytest.importorskip("torch")

QWEN = "qwen2.5-7b-instruct"
HEAD = "lm_head.weight"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "c"
    monkeypatch.setenv("R1RELEASE_CACHE_DIR", str(root))
    return root


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The configs expected-tensors really builds (the cache missed) in this test."""
    calls: list[dict] = []
    real = architecture.expected_tensors

    def counting(config_doc):
        calls.append(dict(config_doc))
        return real(config_doc)

    monkeypatch.setattr(architecture, "expected_tensors", counting)
    return calls


def findings(path: Path) -> list:
    return run_rules(Checkpoint(path), [ActiveRule(RULE, RULE.severity, {})], DeepScan())


def config_of(path: Path) -> dict:
    return json.loads((path / "config.json").read_text())


def entries(cache: Path) -> list[Path]:
    return sorted((cache / "layouts").glob("*.json"))


def rewrite_weights(path: Path, shapes: dict) -> None:
    for old in [*path.glob("*.safetensors"), *path.glob("model.safetensors.index.json")]:
        old.unlink()
    write_weights(path, shapes)


def no_head(path: Path) -> Path:
    rewrite_weights(path, {n: s for n, s in tensor_shapes(config_of(path)).items() if n != HEAD})
    return path


def float32_weights(path: Path) -> Path:
    shapes = tensor_shapes(config_of(path))
    for old in [*path.glob("*.safetensors"), path / "model.safetensors.index.json"]:
        old.unlink()
    tensors = {n: ("F32", s, np.zeros(s, dtype="<f4").tobytes()) for n, s in shapes.items()}
    (path / "model.safetensors").write_bytes(safetensors_bytes(tensors, {"format": "pt"}))
    return path


# ----------------------------------------------------------------------- miss, then hit


def test_a_miss_builds_and_writes_the_entry(checkpoint, cache, builds):
    path = checkpoint(QWEN)
    assert findings(path) == []
    assert len(builds) == 1
    [entry] = entries(cache)
    assert entry.name == f"{layout_cache.layout_key(config_of(path))}.json"
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE((cache / "layouts").stat().st_mode) == 0o700
    doc = json.loads(entry.read_text())
    assert doc["format"] == layout_cache.LAYOUT_FORMAT
    assert doc["body"]["layout"]["model_class"] == "Qwen2ForCausalLM"
    assert doc["body"]["layout"]["tensors"][HEAD] == [[152064, 8], "BF16"]
    assert findings(path) == []
    assert len(builds) == 1  # the second check read the entry


@pytest.mark.parametrize("broken", [no_head, float32_weights])
def test_a_hit_gives_the_same_findings(checkpoint, cache, monkeypatch, broken):
    path = broken(checkpoint(QWEN))
    cold = findings(path)
    assert len(cold) == 1
    assert len(entries(cache)) == 1

    def no_build(config_doc):
        raise AssertionError("built although cached")

    monkeypatch.setattr(architecture, "expected_tensors", no_build)
    assert findings(path) == cold


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"tie_word_embeddings": True},
        {"torch_dtype": None, "dtype": "float32"},
        {"model_type": "llama", "architectures": ["LlamaForCausalLM"]},
    ],
)
def test_a_hit_is_the_expected_layout_itself(checkpoint, cache, changes):
    config = config_of(checkpoint(QWEN)) | changes
    built = architecture.expected_tensors(config)
    assert architecture.expected_layout(config) == built  # a miss: built and stored
    assert len(entries(cache)) == 1
    cached = architecture.expected_layout(config)
    assert cached == built
    assert list(cached.tensors) == list(built.tensors)  # model order: findings list in it


def test_a_changed_config_is_another_key(checkpoint, cache, builds):
    path = checkpoint(QWEN)
    assert findings(path) == []
    edit_json(path, "config.json", vocab_size=151936)  # no longer the saved embeddings' rows
    [finding] = findings(path)
    assert "vocab_size is 151936" in finding.hint
    assert len(builds) == 2
    assert len(entries(cache)) == 2


def test_the_key_is_the_configs_content_and_versions(monkeypatch):
    config = {"model_type": "qwen2", "vocab_size": 10, "architectures": ["Qwen2ForCausalLM"]}
    key = layout_cache.layout_key(config)
    assert key == layout_cache.layout_key(dict(reversed(config.items())))  # order is not content
    assert key != layout_cache.layout_key({**config, "vocab_size": 11})
    real = layout_cache.package_version
    for package in ("transformers", "torch"):
        monkeypatch.setattr(
            layout_cache, "package_version", lambda n, p=package: "0.0.1" if n == p else real(n)
        )
        assert layout_cache.layout_key(config) != key
        monkeypatch.setattr(layout_cache, "package_version", lambda n, p=package: None)
        assert layout_cache.layout_key(config) is None  # not keyed: never cached
    monkeypatch.setattr(layout_cache, "LAYOUT_FORMAT", layout_cache.LAYOUT_FORMAT + 1)
    monkeypatch.setattr(layout_cache, "package_version", real)
    assert layout_cache.layout_key(config) != key


def test_another_transformers_misses(checkpoint, cache, builds, monkeypatch):
    path = no_head(checkpoint(QWEN))
    first = findings(path)
    real = layout_cache.package_version
    monkeypatch.setattr(
        layout_cache, "package_version", lambda n: "99.0.0" if n == "transformers" else real(n)
    )
    assert findings(path) == first
    assert len(builds) == 2
    assert len(entries(cache)) == 2


# ----------------------------------------------------------------------- broken entries


def _plausible_but_wrong(entry: Path) -> bytes:
    """The entry with lm_head dropped from the layout, digest left alone (bit rot, edits)."""
    doc = json.loads(entry.read_text())
    del doc["body"]["layout"]["tensors"][HEAD]
    return json.dumps(doc).encode()


def _tampered(entry: Path, edit) -> bytes:
    """A layout edited and re-digested as the writer would: only the strict shape check
    stands between it and the verdict."""
    doc = json.loads(entry.read_text())
    edit(doc["body"]["layout"])
    doc["sha256"] = architecture._digest(doc["body"])
    return json.dumps(doc).encode()


CORRUPTIONS = {
    "garbage": lambda e: b"\x00\xff not json \x80" * 10,
    "empty": lambda e: b"",
    "truncated": lambda e: e.read_bytes()[: len(e.read_bytes()) // 2],
    "a list": lambda e: b"[1, 2, 3]",
    "null": lambda e: b"null",
    "another key": lambda e: e.read_bytes().replace(e.stem.encode(), b"0" * 64, 1),
    "another format": lambda e: e.read_bytes().replace(
        f'"format":{layout_cache.LAYOUT_FORMAT}'.encode(), b'"format":0', 1
    ),
    "digest mismatch": _plausible_but_wrong,
    "extra field": lambda e: _tampered(e, lambda d: d.update(extra=1)),
    "negative dim": lambda e: _tampered(e, lambda d: d["tensors"][HEAD][0].__setitem__(0, -1)),
    "bool dim": lambda e: _tampered(e, lambda d: d["tensors"][HEAD][0].__setitem__(0, True)),
    "odd dtype": lambda e: _tampered(e, lambda d: d["tensors"][HEAD].__setitem__(1, "F33")),
    "shape as int": lambda e: _tampered(e, lambda d: d["tensors"][HEAD].__setitem__(0, 8)),
    "bad pattern": lambda e: _tampered(e, lambda d: d.update(ignore_missing="(")),
    "pattern not str": lambda e: _tampered(e, lambda d: d.update(ignore_missing=1)),
    "vocab as str": lambda e: _tampered(e, lambda d: d.update(vocab_size="152064")),
    "dtype unknown": lambda e: _tampered(e, lambda d: d.update(dtype="int4")),
    "alias not list": lambda e: _tampered(e, lambda d: d.update(aliases={HEAD: HEAD})),
    "no layout": lambda e: _tampered(e, lambda d: d.clear()),
    "deep nesting": lambda e: b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_broken_entry_is_a_miss(checkpoint, cache, builds, corruption):
    path = no_head(checkpoint(QWEN))
    first = findings(path)
    [entry] = entries(cache)
    entry.write_bytes(CORRUPTIONS[corruption](entry))
    assert findings(path) == first  # rebuilt: no error, no other verdict
    assert len(builds) == 2
    assert findings(path) == first
    assert len(builds) == 2  # the rebuilt entry was stored in its place


def test_an_entry_that_is_not_a_file_is_a_miss(checkpoint, cache, builds):
    path = checkpoint(QWEN)
    key = layout_cache.layout_key(config_of(path))
    (cache / "layouts" / f"{key}.json").mkdir(parents=True, mode=0o700)
    assert findings(path) == []
    assert findings(path) == []
    assert len(builds) == 2  # never stored over a directory, never an error
    (cache / "layouts" / f"{key}.json").rmdir()
    assert findings(path) == []
    assert [e.stem for e in entries(cache)] == [key]


def test_an_oversized_entry_is_not_read(checkpoint, cache, builds, monkeypatch):
    path = checkpoint(QWEN)
    assert findings(path) == []
    assert len(entries(cache)) == 1
    monkeypatch.setattr(layout_cache, "MAX_ENTRY_BYTES", 100)
    assert findings(path) == []
    assert len(builds) == 2
    assert all(e.stat().st_size > 100 for e in entries(cache))  # nor written


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_unusable_cache_dir_still_checks(checkpoint, tmp_path, monkeypatch, builds, where):
    (tmp_path / "f").write_text("not a directory")
    target = tmp_path / "f" if where == "a file" else tmp_path / "f" / "c"
    monkeypatch.setenv("R1RELEASE_CACHE_DIR", str(target))
    path = no_head(checkpoint(QWEN))
    [finding] = findings(path)
    assert HEAD in finding.message
    assert findings(path) == [finding]
    assert len(builds) == 2
    monkeypatch.setenv("R1RELEASE_CACHE_DIR", str(tmp_path / "usable"))
    assert findings(path) == [finding]
    assert len(list((tmp_path / "usable" / "layouts").glob("*.json"))) == 1


def test_a_read_only_cache_dir_still_checks(checkpoint, cache, builds, monkeypatch):
    path = no_head(checkpoint(QWEN))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(layout_cache.tempfile, "mkstemp", refuse)  # root ignores chmod
    [finding] = findings(path)
    assert HEAD in finding.message
    assert entries(cache) == []
    assert [t for t in (cache / "layouts").iterdir()] == []  # no temporary file left


def test_a_directory_others_can_write_is_not_trusted(checkpoint, cache, builds):
    """An entry decides a verdict: one planted where another account can write is ignored."""
    path = no_head(checkpoint(QWEN))
    [finding] = findings(path)
    [entry] = entries(cache)
    # a valid entry saying the model needs no lm_head: trusted, it would hide the finding
    planted = _tampered(entry, lambda d: d["tensors"].pop(HEAD))
    entry.write_bytes(planted)
    os.chmod(cache / "layouts", 0o777)
    assert findings(path) == [finding]
    assert len(builds) == 2
    assert entry.read_bytes() == planted  # nor written into
    os.chmod(cache / "layouts", 0o700)
    assert findings(path) == []  # the planted entry is what a trusted one would decide


def test_the_cache_is_bounded(checkpoint, cache, monkeypatch):
    monkeypatch.setattr(layout_cache, "MAX_ENTRIES", 3)
    config = config_of(checkpoint(QWEN))
    keys = []
    for i, vocab in enumerate(range(1000, 1005)):
        doc = {**config, "vocab_size": vocab}
        architecture.expected_layout(doc)
        keys.append(layout_cache.layout_key(doc))
        os.utime(entries(cache)[0].parent / f"{keys[-1]}.json", (1000 + i, 1000 + i))
    assert [e.stem for e in entries(cache)] == sorted(keys[-3:])
    stale = cache / "layouts" / ".tmp-dead.json"
    stale.write_text("{")
    os.utime(stale, (0, 0))
    architecture.expected_layout({**config, "vocab_size": 999})
    assert not stale.exists()
    assert len(entries(cache)) == 3


# ----------------------------------------------------------------------- unknown models


def test_unknown_model_types_are_cached_with_their_message(checkpoint, cache, builds):
    path = checkpoint(QWEN)
    edit_json(path, "config.json", model_type="foo_lm", architectures=["FooForCausalLM"])
    [first] = findings(path)
    assert "model_type 'foo_lm'" in first.message
    assert findings(path) == [first]
    assert len(builds) == 1
    [entry] = entries(cache)
    assert json.loads(entry.read_text())["body"] == {"unknown": first.message}


def test_custom_code_stays_skipped_when_cached(checkpoint, cache, builds):
    path = checkpoint(QWEN)
    edit_json(
        path,
        "config.json",
        model_type="my_lm",
        architectures=["MyLMForCausalLM"],
        auto_map={"AutoModelForCausalLM": "modeling_my_lm.MyLMForCausalLM"},
    )
    assert findings(path) == []
    assert findings(path) == []
    assert len(builds) == 1


def test_failures_inside_model_code_are_not_cached(checkpoint, cache, builds):
    path = checkpoint(QWEN)
    edit_json(path, "config.json", hidden_act="no_such_activation")
    [first] = findings(path)
    assert "cannot build Qwen2ForCausalLM" in first.message
    assert findings(path) == [first]
    assert len(builds) == 2
    assert entries(cache) == []
    with pytest.raises(UnknownArchitecture) as raised:
        architecture.expected_layout(config_of(path))
    assert raised.value.cacheable is False


# ----------------------------------------------------------------------- the point of it

WARM = """
import json, sys
from r1release.cli import main
try:
    main(["check", "--deep", "--format", "json", sys.argv[1]])
except SystemExit as exc:
    code = exc.code
heavy = [m for m in sys.modules if m == "torch" or m.startswith(("torch.", "transformers.models"))]
print("RESULT " + json.dumps({"code": code, "heavy": heavy}))
"""


@pytest.mark.e2e
def test_a_warm_deep_check_imports_neither_torch_nor_model_code(checkpoint, cache):
    path = no_head(checkpoint(QWEN))
    [cold] = findings(path)  # fills the cache, in this interpreter
    env = {**os.environ, "R1RELEASE_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    env.pop("GITHUB_ACTIONS", None)
    out = subprocess.run(
        [sys.executable, "-c", WARM, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    result = json.loads(next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))[7:])
    assert result == {"code": 1, "heavy": []}, out.stderr
    report = json.loads(out.stdout.split("RESULT ")[0])
    assert "expected-tensors" in report["rules_run"]
    [finding] = [f for f in report["findings"] if f["rule"] == "expected-tensors"]
    assert finding["message"] == cold.message


def test_a_class_that_failed_to_import_is_not_cached(checkpoint, cache, monkeypatch):
    """architectures[0] failing on a missing optional dependency: the causal LM is built
    instead, which installing the dependency would change."""
    import transformers

    lazy = type(transformers)
    real = lazy.__getattr__

    def failing(self, name):
        if name == "Qwen2NeedsExtrasForCausalLM":
            raise ImportError("requires the `extras` library")
        return real(self, name)

    monkeypatch.setattr(lazy, "__getattr__", failing)
    config = config_of(checkpoint(QWEN)) | {"architectures": ["Qwen2NeedsExtrasForCausalLM"]}
    expected = architecture.expected_layout(config)
    assert expected.model_class == "Qwen2ForCausalLM"
    assert not expected.cacheable
    assert entries(cache) == []


def test_what_fix_and_a_resave_rewrite_keeps_the_key(checkpoint, cache, builds):
    """EOS ids, use_cache and the saving transformers' version cannot change a tensor: a
    fixed or re-saved config.json reuses the layout instead of importing torch again."""
    path = checkpoint(QWEN)
    assert findings(path) == []
    edit_json(
        path,
        "config.json",
        eos_token_id=[151645, 151643],
        use_cache=True,
        transformers_version="9.9.9",
        _name_or_path="elsewhere/model",
    )
    assert findings(path) == []
    assert len(builds) == 1 and len(entries(cache)) == 1
    base = {"model_type": "qwen2", "vocab_size": 10}
    for key in layout_cache.NOT_LAYOUT:
        assert layout_cache.layout_key({**base, key: 1}) == layout_cache.layout_key(base)
    assert layout_cache.layout_key({**base, "hidden_size": 8}) != layout_cache.layout_key(base)

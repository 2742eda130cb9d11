"""The card's metadata checked offline (issue 14, part 5): ``license`` is a Hub license id (or
``other``, named and linked), ``base_model``/``dataset_name`` are Hub ids and not local paths
(or are left out with a warning under ``local_paths: omit``), and every Hub request names
r1release and its version in its User-Agent."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from r1release import __version__
from r1release import config as config_mod
from r1release.errors import ConfigError
from r1release.licenses import HUB_LICENSES

from helpers import REPO_ID, run_cli
from hubserver import patch_client

MODEL = "version: 1\nmodels:\n  - name: OpenR1-Tiny\n    checkpoint: {ckpt}\n    repo_id: {repo}\n"


def release_yaml(*lines: str, ckpt: str = "c") -> str:
    """A one-model release.yaml; ``lines`` are the model's extra keys, from line 6 on."""
    return MODEL.format(ckpt=ckpt, repo=REPO_ID) + "".join(f"    {line}\n" for line in lines)


def load(text: str, tmp_path: Path) -> config_mod.Config:
    return config_mod.loads(text, tmp_path / "release.yaml")


def one_error(text: str, tmp_path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(text, tmp_path)
    assert caught.value.count == 1, str(caught.value)
    assert "\n" not in str(caught.value)
    return caught.value


# ------------------------------------------------------------------------------- license


@pytest.mark.parametrize("license_id", ["apache-2.0", "mit", "llama3.1", "cc-by-nc-4.0", "gemma"])
def test_hub_license_ids_load(tmp_path, license_id):
    [model] = load(release_yaml(f"license: {license_id}"), tmp_path).models
    assert model.license == license_id


@pytest.mark.parametrize(
    ("value", "suggestion"),
    [
        ("apache2", "apache-2.0"),
        ("Apache-2.0", "apache-2.0"),
        ("MIT", "mit"),
        ("llama-3.1", "llama3.1"),
        ("cc-by-4", "cc-by-4.0"),
    ],
)
def test_a_license_that_is_not_a_hub_id_names_the_closest(tmp_path, value, suggestion):
    error = one_error(release_yaml(f"license: {value}"), tmp_path)
    assert (error.line, error.key) == (6, "models[0].license")
    text = str(error)
    assert text.startswith(f"{tmp_path / 'release.yaml'}:6: models[0].license: "), text
    assert f"{value!r} is not a Hub license id (did you mean {suggestion!r}?)" in text
    assert "repositories-licenses" in text  # the hint says where the ids are listed


def test_an_unknown_license_without_a_close_id_still_says_what_to_do(tmp_path):
    text = str(one_error(release_yaml("license: proprietary-xyz"), tmp_path))
    assert "'proprietary-xyz' is not a Hub license id (" in text
    assert "`other` with license_name and license_link" in text


def test_license_other_with_its_name_and_link(tmp_path):
    text = release_yaml("license: other", "license_name: my-model-license", "license_link: LICENSE")
    [model] = load(text, tmp_path).models
    assert (model.license, model.license_name, model.license_link) == (
        "other",
        "my-model-license",
        "LICENSE",
    )
    url = release_yaml(
        "license: other", "license_name: coqui-cpml", "license_link: https://coqui.ai/cpml"
    )
    assert load(url, tmp_path).models[0].license_link == "https://coqui.ai/cpml"


@pytest.mark.parametrize(
    ("lines", "line", "key", "expected"),
    [
        (["license: other"], 6, "license", "`other` needs license_name and license_link"),
        (["license: other", "license_name: x"], 6, "license", "`other` needs license_link"),
        (
            ["license: mit", "license_name: mit-license"],
            7,
            "license_name",
            "only used with `license: other`; the Hub knows 'mit' by its id",
        ),
        (["license_link: LICENSE"], 6, "license_link", "only used with `license: other`"),
        (
            ["license: other", "license_name: My License", "license_link: LICENSE"],
            7,
            "license_name",
            "invalid value 'My License': character 'M' is not allowed",
        ),
        (
            ["license: other", "license_name: x", "license_link: ftp://example.com/l"],
            8,
            "license_link",
            "only http(s) addresses are links",
        ),
        (
            ["license: other", "license_name: x", "license_link: ../LICENSE"],
            8,
            "license_link",
            "without '..'",
        ),
    ],
)
def test_license_other_is_named_and_linked_and_only_then(tmp_path, lines, line, key, expected):
    error = one_error(release_yaml(*lines), tmp_path)
    assert (error.line, error.key) == (line, f"models[0].{key}")
    assert expected in str(error), str(error)


def test_the_license_table_holds_hub_ids():
    ids = list(HUB_LICENSES)
    assert len(ids) == len(set(ids))
    assert {"apache-2.0", "mit", "llama3", "llama3.1", "gemma", "other"} <= set(ids)
    assert all(i == i.lower() and " " not in i for i in ids)


# ---------------------------------------------------------------- base_model / dataset_name


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("dataset_name", "open-r1/Mixture-of-Thoughts"),
        ("dataset_name", "gsm8k"),  # a legacy canonical name
        ("base_model", "Qwen/Qwen2.5-0.5B"),
        ("base_model", "gpt2"),
        ("base_model", "_org/_m_"),
    ],
)
def test_hub_ids_load(tmp_path, key, value):
    config = load(release_yaml(f"{key}: {value}"), tmp_path)
    [model] = config.models
    assert getattr(model, key) == value
    assert getattr(model, f"card_{key}") == value
    assert config.warnings == ()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("examples/recipes/tiny/chats.jsonl", "more than one '/'"),
        ("./data", "starts with '.'"),
        ("/data/chats", "starts with '/'"),
        ("~/chats", "starts with '~'"),
        ("chats.jsonl", "a .jsonl file"),
        ("org/train.parquet", "a .parquet file"),
        ("data.JSON", "a .json file"),
    ],
)
def test_a_local_dataset_path_is_refused_with_a_hint(tmp_path, value, reason):
    error = one_error(release_yaml(f"dataset_name: {value}"), tmp_path)
    assert (error.line, error.key) == (6, "models[0].dataset_name")
    text = str(error)
    assert f"{value!r} is a local path ({reason}), not a Hub dataset id" in text, text
    assert "use the dataset's Hub id (`owner/name`), or set `local_paths: omit`" in text


def test_a_name_that_exists_beside_release_yaml_is_a_local_path(tmp_path):
    (tmp_path / "mydata").mkdir()
    error = one_error(release_yaml("base_model: mydata"), tmp_path)
    assert error.key == "models[0].base_model"
    assert f"is a local path ({tmp_path / 'mydata'} exists), not a Hub model id" in str(error)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("has space", "character ' ' (U+0020) is not allowed"),
        ("org/a--b", "contains '--'"),
        ("org/m.git", "ends with '.git'"),
        ("-org/m", "the owner cannot start or end with '-' or '.'"),
        ("org/", "the name is empty"),
    ],
)
def test_an_id_the_hub_refuses_is_an_error(tmp_path, value, why):
    error = one_error(release_yaml(f"base_model: {value!r}"), tmp_path)
    assert error.key == "models[0].base_model"
    assert f"invalid value {value!r}: {why}" in str(error), str(error)


def test_local_paths_omit_loads_and_warns(tmp_path):
    text = release_yaml(
        "base_model: ./runs/base",
        "dataset_name: examples/recipes/tiny/chats.jsonl",
        "local_paths: omit",
    )
    config = load(text, tmp_path)
    [model] = config.models
    assert model.base_model == "./runs/base"  # kept as written: training scripts may read it
    assert (model.card_base_model, model.card_dataset_name) == (None, None)
    where = tmp_path / "release.yaml"
    assert config.warnings == (
        f"{where}:6: models[0].base_model: './runs/base' is a local path (starts with '.'): "
        "left out of the card (local_paths: omit)",
        f"{where}:7: models[0].dataset_name: 'examples/recipes/tiny/chats.jsonl' is a local "
        "path (more than one '/'): left out of the card (local_paths: omit)",
    )


def test_local_paths_omit_keeps_hub_ids_and_still_refuses_bad_ones(tmp_path):
    both = release_yaml("base_model: Qwen/Qwen2.5-0.5B", "dataset_name: d.csv", "local_paths: omit")
    [model] = load(both, tmp_path).models
    assert (model.card_base_model, model.card_dataset_name) == ("Qwen/Qwen2.5-0.5B", None)
    bad = release_yaml("base_model: 'has space'", "local_paths: omit")
    assert one_error(bad, tmp_path).key == "models[0].base_model"


# ------------------------------------------------------------------------------ JSON Schema


def test_the_schema_lists_the_license_ids_and_takes_local_paths():
    schema = config_mod.json_schema()
    model = schema["properties"]["models"]["items"]["properties"]
    assert model["license"]["anyOf"][0]["enum"] == list(HUB_LICENSES)
    assert model["license_name"]["anyOf"][0]["pattern"] == config_mod.LICENSE_NAME.pattern.pattern
    good = yaml.safe_load(release_yaml("license: apache-2.0", "dataset_name: data/x/y.jsonl"))
    jsonschema.validate(good, schema)  # a local path is allowed there: `local_paths: omit`
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(release_yaml("license: apache2")), schema)


HUB_IDS = [
    ("gpt2", True),
    ("org/m", True),
    ("_org/_m_", True),
    ("a/" + "x" * 96, True),
    ("a/" + "x" * 97, False),
    ("a/b/c", False),
    ("a--b", False),
    ("a..b", False),
    ("x.git", False),
    ("-x", False),
    ("x.", False),
    ("", False),
    ("a b", False),
    ("org/m\n", False),
]


@pytest.mark.parametrize(("value", "valid"), HUB_IDS)
def test_hub_id_regex_and_function_agree(value, valid):
    assert (config_mod.HUB_ID.why_invalid(value) is None) is valid
    matches = config_mod.HUB_ID.pattern.fullmatch(value) is not None
    assert matches is (valid and len(value) <= config_mod.HUB_ID.max_length)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("my-model-license", True),
        ("llama-license", True),
        ("a.b_c", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("My", False),
        ("-x", False),
        ("", False),
        ("a b", False),
    ],
)
def test_license_name_regex_and_function_agree(value, valid):
    ident = config_mod.LICENSE_NAME
    assert (ident.why_invalid(value) is None) is valid
    assert (ident.pattern.fullmatch(value) is not None) is valid


# ------------------------------------------------ release stops before any Hub request


@pytest.mark.parametrize(
    ("line", "key", "alternative"),
    [
        ("license: apache2", "models[0].license", "did you mean 'apache-2.0'?"),
        (
            "dataset_name: examples/recipes/tiny/chats.jsonl",
            "models[0].dataset_name",
            "use the dataset's Hub id (`owner/name`), or set `local_paths: omit`",
        ),
    ],
)
def test_release_stops_before_any_hub_request(
    hub, checkpoint, tmp_path, monkeypatch, line, key, alternative
):
    (tmp_path / "release.yaml").write_text(release_yaml(line, ckpt=str(checkpoint())))
    args = ("release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish")
    result = run_cli(monkeypatch, hub, tmp_path, *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: release.yaml:6: {key}: "), lines[0]
    assert alternative in lines[0]
    assert hub.log == [] and hub.user_agents == []  # not one request
    assert result.stdout == ""


def test_local_paths_omit_warns_on_the_command_line(checkpoint, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from r1release.cli import main

    text = release_yaml("dataset_name: data/chats.jsonl", "local_paths: omit", ckpt="ck")
    (tmp_path / "release.yaml").write_text(text)
    (tmp_path / "ck").symlink_to(checkpoint())
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", "--model", "OpenR1-Tiny"])
    assert (
        "warning: release.yaml:6: models[0].dataset_name: 'data/chats.jsonl' is a local path "
        "(a .jsonl file): left out of the card (local_paths: omit)\n"
    ) in result.stderr


# ------------------------------------------------------------------------------ User-Agent


def test_hub_requests_name_r1release_and_its_version(hub, tmp_path, monkeypatch):
    from r1release.hub import make_api

    patch_client(monkeypatch, hub, tmp_path / ".hf-home", "hf_loopback")
    hub.add_repo(REPO_ID)
    api = make_api()
    assert api.repo_private(REPO_ID) is not None
    assert api.refs(REPO_ID) is not None
    assert len(hub.user_agents) >= 2
    for method, path, agent in hub.user_agents:
        assert agent.startswith(f"r1release/{__version__}; hf_hub/"), (method, path, agent)


@pytest.mark.slow
def test_a_release_names_r1release_in_every_api_request(hub, checkpoint, tmp_path, monkeypatch):
    """The whole release: every request to the Hub's API carries r1release's name. The LFS
    object uploads are not API requests: they go to the storage URL the LFS batch answer
    gives (presigned, on the real Hub not huggingface.co), which gets no Hub headers."""
    lines = ("base_model: Qwen/Qwen2.5-0.5B", "dataset_name: org/data", "license: apache-2.0")
    text = release_yaml(*lines, ckpt=str(checkpoint()))
    (tmp_path / "release.yaml").write_text(text)
    args = ("release", "--model", "OpenR1-Tiny", "--version", "v1.0.0", "--publish")
    result = run_cli(monkeypatch, hub, tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert hub.commit_counts[REPO_ID] == 1
    kinds = {e.kind for e in hub.log}
    assert {"commit", "preupload"} <= kinds, kinds
    api = [(m, p, a) for m, p, a in hub.user_agents if not p.startswith("/_lfs/")]
    assert len(api) > 5
    unnamed = [(m, p, a) for m, p, a in api if not a.startswith(f"r1release/{__version__};")]
    assert unnamed == []


@pytest.mark.slow  # a release's deep checks build the architecture with torch
def test_a_release_stages_without_what_local_paths_omit_left_out(checkpoint, tmp_path):
    """`local_paths: omit` warns once at load; card-metadata then no longer requires the
    field it left out, so the release is not blocked on `datasets`."""
    from r1release.stage import build_stage

    text = release_yaml(
        "base_model: Qwen/Qwen2.5-0.5B",
        "dataset_name: data/chats.jsonl",
        "license: apache-2.0",
        "local_paths: omit",
        ckpt=str(checkpoint()),
    )
    config = load(text, tmp_path)
    stage = build_stage(
        config.models[0],
        "v1.0.0",
        settings=config.rule_settings(),
        config_path=config.path,
    )
    assert "chats.jsonl" not in stage.card
    assert not [f for f in stage.report.findings if f.rule == "card-metadata"]

"""The loopback Hub (tests/hubserver.py) driven by the real huggingface_hub client.

The client runs in a fresh process (`run_client`): huggingface_hub reads HF_ENDPOINT, HF_HOME,
HF_HUB_OFFLINE and HF_HUB_DISABLE_XET at import time, and this test session already set
HF_HUB_OFFLINE=1 (conftest.py) before anything could import it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import hubserver
from hubserver import HubServer, run_client

# Also registered in conftest.py for every test module; kept here so this file stands alone.


@pytest.fixture
def chunked_hub() -> Iterator[HubServer]:
    """Small thresholds, so a 150 kB file goes up in four 40 kB parts (multipart transfer)."""
    with HubServer(multipart_threshold=100_000, chunk_size=40_000) as server:
        yield server


def seed(hub: HubServer) -> tuple[str, str]:
    """org/m with a first release commit (tagged v1) and a second one changing config.json."""
    hub.add_repo("org/m", private=True)
    first = hub.add_commit(
        "org/m",
        {
            "config.json": b'{"use_cache": true}',
            "model.safetensors": os.urandom(3000),
            "sub/notes.txt": b"notes",
        },
        message="Release v1",
    )
    hub.repo("org/m").tags["v1"] = first
    second = hub.add_commit("org/m", {"config.json": b'{"use_cache": false}'}, message="Later")
    return first, second


@pytest.mark.e2e
def test_create_repo_private_then_exist_ok_then_repo_info(hub: HubServer, tmp_path: Path) -> None:
    result = run_client(
        hub,
        """
        first = api.create_repo("org/m", private=True)
        again = api.create_repo("org/m", private=True, exist_ok=True)
        conflict = attempt(api.create_repo, "org/m")
        info = api.repo_info("org/m", files_metadata=True)
        result = {"first": first, "again": again, "conflict": conflict, "private": info.private,
                  "sha": info.sha, "siblings": [s.rfilename for s in info.siblings]}
        """,
        tmp_path,
    )
    assert result["first"] == result["again"] == f"{hub.url}/org/m"
    assert result["conflict"]["error"] == "HfHubHTTPError" and result["conflict"]["status"] == 409
    assert result["private"] is True
    assert result["sha"] == hub.repo("org/m").branches["main"]
    assert re.fullmatch(r"[0-9a-f]{40}", result["sha"])
    assert result["siblings"] == [".gitattributes"]  # the Hub's initial commit
    assert [e.status for e in hub.log if e.kind == "create-repo"] == [200, 409, 409]


@pytest.mark.e2e
def test_upload_folder_makes_one_commit_with_basic_and_multipart_lfs(
    chunked_hub: HubServer, tmp_path: Path
) -> None:
    hub, folder = chunked_hub, tmp_path / "ckpt"
    files = {
        "config.json": b'{"model_type": "qwen2"}',
        "README.md": b"---\nlicense: apache-2.0\ntags: [open-r1]\n---\n# Model\n",
        "sub/notes.txt": b"x" * 100,
        "model.safetensors": os.urandom(5_000),  # LFS by suffix, basic transfer
        "big.bin": os.urandom(150_000),  # LFS, multipart: 4 parts of 40 kB
        "empty.safetensors": b"",  # empty files are always regular
    }
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    result = run_client(
        hub,
        """
        api.create_repo("org/m", private=True)
        info = api.upload_folder(repo_id="org/m", folder_path=params["folder"],
                                 commit_message="Release v1.0.0", commit_description="git abc123")
        again = api.upload_folder(repo_id="org/m", folder_path=params["folder"],
                                  commit_message="Release v1.0.0")
        commits = api.list_repo_commits("org/m")
        refs = api.list_repo_refs("org/m")
        result = {"oid": info.oid, "again": again.oid, "titles": [c.title for c in commits],
                  "message": commits[0].message, "main": refs.branches[0].target_commit}
        """,
        tmp_path / "client",
        folder=folder,
    )
    assert result["titles"] == ["Release v1.0.0", "initial commit"]
    assert result["message"] == "git abc123"
    assert result["oid"] == result["main"] == result["again"]  # the re-upload changed nothing
    assert hub.commit_counts == {"org/m": 1}
    assert hub.files("org/m") == files | {".gitattributes": hubserver.GITATTRIBUTES.encode()}
    tree = hub.repo("org/m").commits[result["oid"]].files
    assert {p for p, blob in tree.items() if blob.lfs} == {"model.safetensors", "big.bin"}
    # the re-upload asks the LFS batch endpoint again, which answers "already stored": no bytes
    assert hub.count("lfs-batch") == 2
    assert hub.count("lfs-upload", "PUT") == 1  # basic: one PUT
    assert hub.count("lfs-part", "PUT") == 4  # multipart: parts, then the completion POST
    assert hub.count("lfs-upload", "POST") == 1
    assert hub.count("lfs-verify") == 2
    assert (
        hub.count("validate-yaml") == 4
    )  # per upload_folder: listing the folder, then create_commit
    assert hub.bytes_received() > 155_000


@pytest.mark.e2e
def test_tags_and_pull_request_refs(hub: HubServer, tmp_path: Path) -> None:
    first, second = seed(hub)
    result = run_client(
        hub,
        """
        out = {}
        api.create_tag("org/m", tag="v1.0.0", revision=params["first"], tag_message="first")
        out["tags"] = [(t.name, t.target_commit) for t in api.list_repo_refs("org/m").tags]
        out["taken"] = attempt(api.create_tag, "org/m", tag="v1.0.0")
        out["exist_ok"] = attempt(api.create_tag, "org/m", tag="v1.0.0", exist_ok=True)
        api.delete_tag("org/m", tag="v1.0.0")
        out["deleted"] = [t.name for t in api.list_repo_refs("org/m").tags]
        out["missing"] = attempt(api.delete_tag, "org/m", tag="v1.0.0")
        pr = api.upload_file(path_or_fileobj=b"pr", path_in_repo="pr.txt", repo_id="org/m",
                             create_pr=True)
        refs = api.list_repo_refs("org/m", include_pull_requests=True)
        out["pr"] = [pr.pr_url, [(r.ref, r.target_commit) for r in refs.pull_requests], pr.oid]
        out["pr_file"] = open(api.hf_hub_download("org/m", "pr.txt", revision="refs/pr/1")).read()
        result = out
        """,
        tmp_path,
        first=first,
    )
    assert result["tags"] == [["v1", first], ["v1.0.0", first]]
    assert result["taken"]["status"] == 409
    assert result["exist_ok"] == {"ok": None}
    assert result["deleted"] == ["v1"]
    assert result["missing"]["error"] == "RevisionNotFoundError"
    pr_url, pr_refs, pr_oid = result["pr"]
    assert pr_url == f"{hub.url}/org/m/discussions/1"
    assert pr_refs == [["refs/pr/1", pr_oid]]
    assert hub.repo("org/m").commits[pr_oid].parent == second
    assert hub.repo("org/m").branches["main"] == second  # a PR leaves main alone
    assert result["pr_file"] == "pr"
    assert "/org/m/resolve/refs/pr/1/pr.txt" in [e.path for e in hub.log]  # refs%2Fpr%2F1


@pytest.mark.e2e
def test_downloads_at_a_tag_are_byte_identical(hub: HubServer, tmp_path: Path) -> None:
    first, second = seed(hub)
    result = run_client(
        hub,
        """
        from huggingface_hub import RepoFile, hf_hub_download, snapshot_download
        out = {"dir": snapshot_download("org/m", revision="v1", local_dir=params["dir"])}
        out["config"] = open(hf_hub_download("org/m", "config.json", revision="v1")).read()
        info = api.get_paths_info("org/m", ["sub", "model.safetensors", "nope"], revision="v1")
        out["paths"] = [(i.path, type(i).__name__, getattr(i, "lfs", None) and i.lfs.sha256)
                        for i in info]
        tree = api.list_repo_tree("org/m", recursive=True, expand=True)
        out["tree"] = {f.path: f.last_commit.oid for f in tree}
        out["top"] = [f.path for f in api.list_repo_tree("org/m")]
        out["sub"] = [f.path for f in api.list_repo_tree("org/m", "sub")]
        result = out
        """,
        tmp_path / "client",
        dir=tmp_path / "dl",
    )
    expected = hub.files("org/m", "v1")
    downloaded = {
        p.relative_to(tmp_path / "dl").as_posix(): p.read_bytes()
        for p in (tmp_path / "dl").rglob("*")
        if p.is_file() and ".cache" not in p.parts
    }
    assert downloaded == expected
    assert result["config"] == expected["config.json"].decode()
    sha = hashlib.sha256(expected["model.safetensors"]).hexdigest()
    assert result["paths"] == [
        ["sub", "RepoFolder", None],
        ["model.safetensors", "RepoFile", sha],
    ]
    assert result["tree"]["config.json"] == second  # lastCommit: the last change on main
    assert result["tree"]["model.safetensors"] == result["tree"]["sub"] == first
    assert result["top"] == [".gitattributes", "config.json", "model.safetensors", "sub"]
    assert result["sub"] == ["sub/notes.txt"]


@pytest.mark.e2e
def test_commit_is_not_retried_but_preupload_is(hub: HubServer, tmp_path: Path) -> None:
    hub.add_repo("org/m")
    hub.fail("POST", r"/commit/", status=503, retry_after=0)
    hub.fail("POST", r"/preupload/", status=503, retry_after=0)
    result = run_client(
        hub,
        """
        import time
        upload = lambda: api.upload_file(path_or_fileobj=b"v1", path_in_repo="a.txt",
                                         repo_id="org/m")
        start = time.monotonic()
        out = {"first": attempt(upload), "seconds": time.monotonic() - start}
        out["second"] = attempt(upload)
        result = out
        """,
        tmp_path,
    )
    # preupload goes through http_backoff: 503 + Retry-After: 0 -> sleep 0 + 1 s, retry, 200.
    # the commit POST is a plain session.post (create_commit never passes retry_on_error).
    assert result["first"]["error"] == "HfHubHTTPError" and result["first"]["status"] == 503
    assert result["seconds"] >= 1
    assert "ok" in result["second"]
    kinds = [(e.kind, e.status, e.fault) for e in hub.log]
    assert kinds == [
        ("preupload", 503, "injected 503"),
        ("preupload", 200, None),
        ("commit", 503, "injected 503"),
        ("preupload", 200, None),
        ("commit", 200, None),
    ]
    assert hub.commit_counts == {"org/m": 1}


@pytest.mark.e2e
def test_dropped_connections(hub: HubServer, tmp_path: Path) -> None:
    hub.add_repo("org/m")
    hub.fail("POST", r"/preupload/", drop=True)  # retried by http_backoff
    hub.fail("POST", r"/commit/", drop=True)  # not retried: the commit never happens
    hub.fail("POST", r"/commit/", drop=True, after=True)  # the commit happens, the reply is lost
    result = run_client(
        hub,
        """
        upload = lambda: api.upload_file(path_or_fileobj=b"v1", path_in_repo="a.txt",
                                         repo_id="org/m")
        result = [attempt(upload), attempt(upload), attempt(upload)]
        """,
        tmp_path,
    )
    lost, lost_after, rerun = result
    # httpx2's own exception reaches the caller, not an HfHubHTTPError
    assert lost["error"] == lost_after["error"] == "RemoteProtocolError"
    assert "ok" in rerun  # preupload reports a.txt unchanged: no second commit
    assert [e.fault for e in hub.log if e.fault] == ["dropped", "dropped", "dropped after"]
    assert hub.commit_counts == {"org/m": 1}
    assert rerun["ok"].endswith(hub.repo("org/m").branches["main"])
    assert hub.count("commit") == 2


def test_midway_reset_cuts_an_upload_while_the_client_sends(hub: HubServer) -> None:
    hub.fail("PUT", r"^/_lfs/", midway=True)
    body = b"x" * (32 * 1024 * 1024)  # far more than the socket buffers hold
    conn = http.client.HTTPConnection("127.0.0.1", int(hub.url.rsplit(":", 1)[1]), timeout=30)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        conn.request("PUT", "/_lfs/upload-1", body=body)
        conn.getresponse()
    conn.close()
    [entry] = [e for e in hub.log if e.fault]
    assert entry.fault == "dropped midway" and entry.kind == "lfs-upload"
    assert entry.received == len(body) // 2


@pytest.mark.e2e
def test_not_found_errors_and_refused_commits(hub: HubServer, tmp_path: Path) -> None:
    first, second = seed(hub)
    result = run_client(
        hub,
        """
        from huggingface_hub import CommitOperationAdd
        out = {"repo": attempt(api.repo_info, "org/none"),
               "revision": attempt(api.repo_info, "org/m", revision="v9"),
               "file": attempt(api.hf_hub_download, "org/m", "nope.txt"),
               "file_revision": attempt(api.hf_hub_download, "org/m", "config.json", revision="v9"),
               "folder": attempt(lambda: list(api.list_repo_tree("org/m", "nope"))),
               "delete": attempt(api.delete_file, "nope.txt", repo_id="org/m")}
        out["stale"] = attempt(api.upload_file, path_or_fileobj=b"x", path_in_repo="x.txt",
                               repo_id="org/m", parent_commit=params["first"])
        ghost = CommitOperationAdd("ghost.safetensors", b"x" * 100)  # claims an LFS upload
        ghost._upload_mode, ghost._should_ignore, ghost._is_uploaded = "lfs", False, True
        out["ghost"] = attempt(api.create_commit, "org/m", [ghost], commit_message="ghost")
        out["null_card"] = attempt(api.upload_file, path_or_fileobj=b"---\\nlicense: null\\n---\\n",
                                   path_in_repo="README.md", repo_id="org/m")
        result = out
        """,
        tmp_path,
        first=first,
    )
    errors = {name: (r["error"], r["status"]) for name, r in result.items()}
    assert errors == {
        "repo": ("RepositoryNotFoundError", 404),
        "revision": ("RevisionNotFoundError", 404),
        "file": ("RemoteEntryNotFoundError", 404),
        "file_revision": ("RevisionNotFoundError", 404),
        "folder": ("RemoteEntryNotFoundError", 404),
        "delete": ("RemoteEntryNotFoundError", 404),
        "stale": ("HfHubHTTPError", 412),
        "ghost": ("BadRequestError", 400),
        "null_card": ("ValueError", None),  # the client turns the 400 into a ValueError
    }
    assert "EntryNotFoundError" in result["file"]["mro"]  # huggingface_hub.errors' base class
    assert "was not uploaded" in result["ghost"]["message"]
    assert hub.repo("org/m").branches["main"] == second
    assert hub.commit_counts == {}


@pytest.mark.e2e
def test_read_only_calls_make_no_writes(hub: HubServer, tmp_path: Path) -> None:
    seed(hub)
    code = """
    api.repo_info("org/m")
    list(api.list_repo_tree("org/m", recursive=True))
    api.get_paths_info("org/m", ["config.json"])  # a POST, but a read
    api.hf_hub_download("org/m", "config.json")
    if params["write"]:
        api.upload_file(path_or_fileobj=b"new", path_in_repo="new.txt", repo_id="org/m")
    """
    run_client(hub, code, tmp_path, write=False)
    assert hub.writes() == []
    assert len(hub.log) == 5  # repo_info, tree, paths-info, HEAD + GET resolve
    run_client(hub, code, tmp_path, write=True)
    assert [e.kind for e in hub.writes()] == ["preupload", "commit"]


@pytest.mark.e2e
def test_the_token_never_reaches_the_log(tmp_path: Path) -> None:
    good, wrong = "hf_GOODsecret0123456789", "hf_WRONGsecret9876543210"
    with HubServer(tokens={good: "alice"}, auth="all") as hub:
        result = run_client(
            hub,
            """
            from huggingface_hub import HfApi
            api.create_repo("m")
            api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/m")
            result = {"me": api.whoami()["name"],
                      "wrong": attempt(HfApi(token=params["wrong"]).repo_info, "alice/m"),
                      "anonymous": attempt(HfApi(token=False).repo_info, "alice/m")}
            """,
            tmp_path,
            token=good,
            wrong=wrong,
        )
        log = repr(hub.log)
    assert result["me"] == "alice"
    assert result["wrong"]["status"] == result["anonymous"]["status"] == 401
    assert wrong not in result["wrong"]["message"]
    assert good not in log and wrong not in log and "Bearer" not in log
    assert hub.repo("alice/m").commits[hub.repo("alice/m").branches["main"]].author == "alice"


def test_in_process_client_with_patched_constants(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import HfApi, constants, hf_hub_download

    before = constants.ENDPOINT
    with monkeypatch.context() as patch:
        hubserver.patch_client(patch, hub, tmp_path)
        HfApi().create_repo("org/m")
        HfApi().upload_file(path_or_fileobj=b"in-process", path_in_repo="a.txt", repo_id="org/m")
        assert Path(hf_hub_download("org/m", "a.txt")).read_bytes() == b"in-process"
        assert str(tmp_path) in hf_hub_download("org/m", "a.txt")
    assert before == constants.ENDPOINT  # undone: the session's own settings are back
    assert hub.commit_counts == {"org/m": 1}


def test_chunked_request_bodies(hub: HubServer) -> None:
    """huggingface_hub 2.4 sends Content-Length; a streamed (chunked) body must work too."""
    host, port = hub.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    body = iter([b'{"content": "---\\nlicense: mit\\n', b'---\\n"}'])
    conn.request("POST", "/api/validate-yaml", body=body, encode_chunked=True)
    response = conn.getresponse()
    assert (response.status, json.loads(response.read())) == (200, {"errors": [], "warnings": []})
    assert hub.log[-1].received == 39
    conn.close()


def test_state_survives_a_restart_with_a_data_dir(tmp_path: Path) -> None:
    with HubServer(data_dir=tmp_path) as hub:
        hub.add_repo("org/m")
        oid = hub.add_commit("org/m", {"model.safetensors": b"weights"})
    with HubServer(data_dir=tmp_path) as hub:
        assert hub.repo("org/m").branches["main"] == oid
        assert hub.files("org/m")["model.safetensors"] == b"weights"


@pytest.mark.e2e
def test_runs_by_hand_until_ctrl_c(tmp_path: Path) -> None:
    script = Path(hubserver.__file__)
    cmd = [sys.executable, str(script), "--port", "0", "--data", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert re.match(r"serving http://127\.0\.0\.1:\d+", proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0

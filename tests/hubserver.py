"""A loopback Hugging Face Hub for tests: the real `huggingface_hub` client talks to it over HTTP.

Point the client at it with `HF_ENDPOINT` (see `client_env`), never mock `HfApi`. The server keeps
a small git-like model in memory (optionally in a directory): repos with branches, tags and
pull-request refs pointing at 40-hex commits; a commit has a parent, a title, a description and a
file tree; a file is a blob (sha256, git blob id, size) stored inline ("regular") or through the
LFS batch API (basic and multipart transfers). A request log, counters and fault injection let
tests check what a client did and how it copes with errors.

Run it by hand: `python tests/hubserver.py --port 8000 --data DIR` (serves until Ctrl-C), then
`HF_ENDPOINT=http://127.0.0.1:8000 HF_HUB_DISABLE_XET=1 HF_TOKEN=x hf upload ...`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

PLURALS = {"models": "model", "datasets": "dataset", "spaces": "space"}
PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".gguf", ".onnx")
LFS_SUFFIXES += (".msgpack", ".npy", ".npz", ".pkl", ".pickle", ".model", ".zip", ".tar", ".gz")
GITATTRIBUTES = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES)
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
QUERY_KINDS = frozenset({"paths-info", "validate-yaml"})  # POSTs that change nothing
PRESIGNED = frozenset({"lfs-upload", "lfs-part"})  # storage URLs: the client sends no token
AUTH_KINDS = frozenset(
    {"create-repo", "delete-repo", "preupload", "commit", "tag", "branch", "settings"}
    | {"lfs-batch", "lfs-verify", "whoami"}
)
COMMIT_RE = re.compile(r"[0-9a-f]{40}")


def git_blob_id(data: bytes) -> str:
    """The git object id of `data` as a blob: sha1 of `blob {len}\\0` + data."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class Blob:
    """A file in a tree. `oid` is the git blob id (of the LFS pointer when `lfs`)."""

    sha256: str
    size: int
    lfs: bool
    oid: str


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    author: str
    date: str
    files: dict[str, Blob]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    prs: dict[int, str] = field(default_factory=dict)
    lfs_objects: set[str] = field(default_factory=set)


@dataclass
class LogEntry:
    """One request. Never holds headers, so never a token."""

    method: str
    path: str  # percent-decoded, without the query string
    kind: str  # the endpoint, e.g. "commit", "preupload", "lfs-batch", "resolve"
    status: int = 0  # 0 when the connection was dropped
    received: int = 0  # request body bytes
    fault: str | None = None  # "injected 503", "dropped", "dropped after"...

    @property
    def write(self) -> bool:
        return self.method in WRITE_METHODS and self.kind not in QUERY_KINDS


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int
    retry_after: float | None
    drop: bool
    body: bytes | None
    headers: Mapping[str, str]
    after: bool
    hits: int = 0


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, **headers: str):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json(obj: Any, status: int = 200, **headers: str) -> Reply:
    headers.setdefault("Content-Type", "application/json")
    return Reply(status, json.dumps(obj).encode(), headers)


@dataclass
class Request:
    method: str
    path: str
    kind: str
    repo_type: str
    repo_id: str
    args: list[str]
    query: dict[str, list[str]]
    body: bytes
    user: str | None

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as e:
            raise HubError(400, f"invalid JSON body: {e}") from None

    def flag(self, name: str) -> bool:
        return self.query.get(name, [""])[0].lower() in ("1", "true")


def _route(segs: list[str]) -> tuple[str, str, str, list[str]]:
    """(kind, repo_type, repo_id, args) for a decoded path."""
    if segs[:1] == ["api"]:
        rest = segs[1:]
        fixed = {("whoami-v2",): "whoami", ("repos", "create"): "create-repo"}
        fixed |= {("repos", "delete"): "delete-repo", ("validate-yaml",): "validate-yaml"}
        if tuple(rest) in fixed:
            return fixed[tuple(rest)], "", "", []
        if len(rest) >= 3 and rest[0] in PLURALS:
            repo_type, repo_id, tail = PLURALS[rest[0]], f"{rest[1]}/{rest[2]}", rest[4:]
            name = rest[3] if len(rest) > 3 else "revision"
            if name == "tree" and tail:
                tail = [tail[0], "/".join(tail[1:])]
            kinds = {"revision", "preupload", "commit", "commits", "refs", "tree", "paths-info"}
            if name in kinds | {"tag", "branch", "settings"}:
                kind = "repo-info" if name == "revision" else name
                return kind, repo_type, repo_id, tail or ["main"]
        return "unknown", "", "", []
    if segs[:1] == ["_lfs"] and len(segs) in (2, 3):
        return ("lfs-upload" if len(segs) == 2 else "lfs-part"), "", "", segs[1:]
    repo_type = "model"
    if segs and segs[0] in ("datasets", "spaces"):
        repo_type, segs = PLURALS[segs[0]], segs[1:]
    lfs_path = len(segs) == 6 and segs[2:5] == ["info", "lfs", "objects"]
    if lfs_path and segs[1].endswith(".git") and segs[5] in ("batch", "verify"):
        return f"lfs-{segs[5]}", repo_type, f"{segs[0]}/{segs[1][:-4]}", []
    if len(segs) >= 5 and segs[2] == "resolve":
        return "resolve", repo_type, f"{segs[0]}/{segs[1]}", [segs[3], "/".join(segs[4:])]
    return "unknown", "", "", []


@dataclass
class _Upload:
    repo: tuple[str, str]
    oid: str
    size: int
    chunk_size: int | None
    parts: dict[int, bytes] = field(default_factory=dict)


class HubServer:
    """A Hub-compatible HTTP server on 127.0.0.1, started on a free port in a background thread.

    Args:
        data_dir: keep repos and blobs in this directory (reloaded on start); in memory if None.
        tokens: accepted tokens -> user name; None accepts any bearer token as user "tester".
        auth: "writes" (like the Hub: writes need a valid token), "all" (every request but the
            pre-signed LFS upload URLs), or "none". Private repos always need a valid token.
        lfs_threshold / lfs_suffixes: the preupload answer is "lfs" for larger files or these
            suffixes (the Hub: 10 MB and `.gitattributes`); a regular file breaking the rule is
            refused at commit time, as the Hub refuses binary files pushed without LFS.
        multipart_threshold / chunk_size: LFS objects of at least `multipart_threshold` bytes
            are uploaded in parts of `chunk_size` bytes (multipart transfer), smaller ones with
            one PUT (basic transfer).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        data_dir: str | Path | None = None,
        tokens: Mapping[str, str] | None = None,
        auth: str = "writes",
        lfs_threshold: int = 10 * 1024 * 1024,
        lfs_suffixes: tuple[str, ...] = LFS_SUFFIXES,
        multipart_threshold: int = 64 * 1024 * 1024,
        chunk_size: int = 16 * 1024 * 1024,
    ) -> None:
        if auth not in ("writes", "all", "none"):
            raise ValueError(f"auth must be 'writes', 'all' or 'none', not {auth!r}")
        self.tokens, self.auth = tokens, auth
        self.lfs_threshold, self.lfs_suffixes = lfs_threshold, lfs_suffixes
        self.multipart_threshold, self.chunk_size = multipart_threshold, chunk_size
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.log: list[LogEntry] = []
        self.commit_counts: Counter[str] = Counter()  # commits made through the API, per repo
        self._faults: list[Fault] = []
        self._repos: dict[tuple[str, str], Repo] = {}
        self._blobs: dict[str, bytes] = {}
        self._uploads: dict[str, _Upload] = {}
        self._seq = 0
        self._lock = threading.RLock()
        if self.data_dir is not None:
            (self.data_dir / "objects").mkdir(parents=True, exist_ok=True)
            self._load()
        handler = type("Handler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> HubServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- log, counters and faults ---------------------------------------------------------

    def writes(self) -> list[LogEntry]:
        """Requests that may change state: POST/PUT/DELETE/PATCH, except paths-info and
        validate-yaml (read-only POSTs). Preupload and LFS batch count: they start an upload."""
        return [e for e in self.log if e.write]

    def bytes_received(self) -> int:
        return sum(e.received for e in self.log)

    def count(self, kind: str, method: str | None = None) -> int:
        return sum(e.kind == kind and method in (None, e.method) for e in self.log)

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()
            self.commit_counts.clear()

    def fail(
        self,
        method: str,
        path_regex: str,
        status: int = 503,
        times: int = 1,
        retry_after: float | None = None,
        drop: bool = False,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        after: bool = False,
    ) -> Fault:
        """Make the next `times` requests of `method` ("*" for any) whose decoded path matches
        `path_regex` (re.search) fail with `status` (+ `Retry-After`, `headers`, `body`), or be
        dropped without a response (`drop`). With `after`, the request is carried out first and
        only its response is replaced: the "commit landed but the reply was lost" case."""
        raw = body.encode() if isinstance(body, str) else body
        fault = Fault(
            method=method.upper(),
            pattern=re.compile(path_regex),
            status=status,
            times=times,
            retry_after=retry_after,
            drop=drop,
            body=raw,
            headers=dict(headers or {}),
            after=after,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def _take_fault(self, method: str, path: str, after: bool) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.after != after or fault.hits >= fault.times:
                    continue
                if fault.method in ("*", method) and fault.pattern.search(path):
                    fault.hits += 1
                    return fault
        return None

    # -- Python API for seeding and inspecting state ----------------------------------------

    def add_repo(self, repo_id: str, *, repo_type: str = "model", private: bool = False) -> Repo:
        """Create a repo the way the Hub does: one initial commit holding `.gitattributes`."""
        with self._lock:
            repo = Repo(repo_type, repo_id, private, _now())
            self._repos[(repo_type, repo_id)] = repo
            files = {".gitattributes": self._store(GITATTRIBUTES.encode(), lfs=False)}
            self._commit(repo, "main", None, "initial commit", "", "system", files)
            return repo

    def add_commit(
        self,
        repo_id: str,
        files: Mapping[str, bytes],
        *,
        message: str = "seed",
        revision: str = "main",
        repo_type: str = "model",
    ) -> str:
        """Commit `files` (path -> content, LFS by the server's rule) directly; returns the oid."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id, "system")
            head = self._branch_head(repo, revision)
            tree = dict(repo.commits[head].files)
            for path, data in files.items():
                tree[path] = self._store(data, self._is_lfs(path, len(data)))
            return self._commit(repo, revision, head, message, "", "seed", tree)

    def files(
        self, repo_id: str, revision: str = "main", repo_type: str = "model"
    ) -> dict[str, bytes]:
        with self._lock:
            commit = self._resolve(self._get_repo(repo_type, repo_id, "system"), revision)
            return {path: self._read(blob.sha256) for path, blob in commit.files.items()}

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        with self._lock:
            return self._get_repo(repo_type, repo_id, "system")

    # -- storage ----------------------------------------------------------------------------

    def _is_lfs(self, path: str, size: int) -> bool:
        return size > 0 and (size > self.lfs_threshold or path.lower().endswith(self.lfs_suffixes))

    def _store(self, data: bytes, lfs: bool) -> Blob:
        sha256 = hashlib.sha256(data).hexdigest()
        if self.data_dir is not None:
            target = self.data_dir / "objects" / sha256
            if not target.exists():
                target.write_bytes(data)
        else:
            self._blobs[sha256] = data
        oid = git_blob_id(lfs_pointer(sha256, len(data)) if lfs else data)
        return Blob(sha256, len(data), lfs, oid)

    def _read(self, sha256: str) -> bytes:
        if self.data_dir is not None:
            return (self.data_dir / "objects" / sha256).read_bytes()
        return self._blobs[sha256]

    def _has(self, sha256: str) -> bool:
        if self.data_dir is not None:
            return (self.data_dir / "objects" / sha256).exists()
        return sha256 in self._blobs

    def _save(self) -> None:
        if self.data_dir is None:
            return
        state = [
            dataclasses.asdict(repo) | {"lfs_objects": sorted(repo.lfs_objects)}
            for repo in self._repos.values()
        ]
        tmp = self.data_dir / "state.json.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.data_dir / "state.json")

    def _load(self) -> None:
        assert self.data_dir is not None
        path = self.data_dir / "state.json"
        for raw in json.loads(path.read_text()) if path.exists() else []:
            commits = {
                oid: Commit(**(c | {"files": {p: Blob(**b) for p, b in c["files"].items()}}))
                for oid, c in raw.pop("commits").items()
            }
            prs = {int(n): oid for n, oid in raw.pop("prs").items()}
            repo = Repo(**raw, commits=commits, prs=prs)
            repo.lfs_objects = set(repo.lfs_objects)
            self._repos[(repo.repo_type, repo.repo_id)] = repo

    # -- the git-like model -----------------------------------------------------------------

    def _get_repo(self, repo_type: str, repo_id: str, user: str | None) -> Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        if repo.private and user is None:
            raise HubError(401, "Repository not found", "RepoNotFound")
        return repo

    def _resolve(self, repo: Repo, revision: str) -> Commit:
        name = revision.removeprefix("refs/heads/").removeprefix("refs/tags/")
        pr = re.fullmatch(r"refs/pr/(\d+)", revision)
        oid = repo.branches.get(name) or repo.tags.get(name)
        if pr:
            oid = repo.prs.get(int(pr.group(1)))
        elif oid is None and COMMIT_RE.fullmatch(revision) and revision in repo.commits:
            oid = revision
        if oid is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[oid]

    def _branch_head(self, repo: Repo, revision: str) -> str:
        pr = re.fullmatch(r"refs/pr/(\d+)", revision)
        head = (
            repo.prs.get(int(pr.group(1)))
            if pr
            else repo.branches.get(revision.removeprefix("refs/heads/"))
        )
        if head is None:
            raise HubError(404, f"Invalid rev id: {revision} (not a branch)", "RevisionNotFound")
        return head

    def _commit(
        self,
        repo: Repo,
        ref: str,
        parent: str | None,
        title: str,
        message: str,
        author: str,
        files: dict[str, Blob],
    ) -> str:
        self._seq += 1
        tree = hashlib.sha1("".join(f"{p}\0{b.oid}\n" for p, b in sorted(files.items())).encode())
        header = f"tree {tree.hexdigest()}\nparent {parent}\nauthor {author} {_now()} {self._seq}"
        oid = hashlib.sha1(f"{header}\n\n{title}\n\n{message}".encode()).hexdigest()
        repo.commits[oid] = Commit(oid, parent, title, message, author, _now(), dict(files))
        pr = re.fullmatch(r"refs/pr/(\d+)", ref)
        if pr:
            repo.prs[int(pr.group(1))] = oid
        else:
            repo.branches[ref.removeprefix("refs/heads/")] = oid
        self._save()
        return oid

    def _entry(self, repo: Repo, commit: Commit, path: str, expand: bool) -> dict[str, Any]:
        blob = commit.files.get(path)
        if blob is None:
            inside = sorted((p, b.oid) for p, b in commit.files.items() if p.startswith(path + "/"))
            entry: dict[str, Any] = {
                "type": "directory",
                "oid": hashlib.sha1(repr(inside).encode()).hexdigest(),
            }
            entry |= {"size": 0, "path": path}
        else:
            entry = {"type": "file", "oid": blob.oid, "size": blob.size, "path": path}
            if blob.lfs:
                pointer_size = len(lfs_pointer(blob.sha256, blob.size))
                entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": pointer_size}
        if expand:
            last = self._last_change(repo, commit, path)
            entry["lastCommit"] = {"id": last.oid, "title": last.title, "date": last.date}
        return entry

    def _last_change(self, repo: Repo, commit: Commit, path: str) -> Commit:
        def state(c: Commit) -> list[tuple[str, str]]:
            return sorted(
                (p, b.oid) for p, b in c.files.items() if p == path or p.startswith(path + "/")
            )

        while commit.parent is not None and state(repo.commits[commit.parent]) == state(commit):
            commit = repo.commits[commit.parent]
        return commit

    def _info(self, repo: Repo, commit: Commit, blobs: bool) -> dict[str, Any]:
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:  # like the Hub: sizes and LFS info only with `files_metadata=True`
                sibling |= {"size": blob.size, "blobId": blob.oid}
                if blob.lfs:
                    pointer_size = len(lfs_pointer(blob.sha256, blob.size))
                    sibling["lfs"] = {
                        "size": blob.size,
                        "sha256": blob.sha256,
                        "pointerSize": pointer_size,
                    }
            siblings.append(sibling)
        card: Any = {}
        if "README.md" in commit.files:
            with contextlib.suppress(yaml.YAMLError):
                readme = self._read(commit.files["README.md"].sha256)
                card, _ = _front_matter(readme.decode("utf-8", "replace"))
        info = {"_id": repo.repo_id, "id": repo.repo_id, "author": repo.repo_id.split("/")[0]}
        info |= {"sha": commit.oid, "lastModified": commit.date, "createdAt": repo.created_at}
        info |= {
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
        }
        tags = card.get("tags") if isinstance(card, dict) else None
        info |= {"tags": tags if isinstance(tags, list) else [], "siblings": siblings}
        if isinstance(card, dict) and card:
            info["cardData"] = card
        return info

    # -- endpoints: accounts and repos ------------------------------------------------------

    def _whoami(self, req: Request) -> Reply:
        """`HfApi.whoami` (GET /api/whoami-v2)."""
        if req.user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        token_info = {"displayName": "loopback", "role": "write"}
        me = {"type": "user", "id": req.user, "name": req.user, "fullname": req.user, "orgs": []}
        return _json(me | {"auth": {"type": "access_token", "accessToken": token_info}})

    def _create_repo(self, req: Request) -> Reply:
        """`HfApi.create_repo` (POST /api/repos/create); 409 with `url` when it exists."""
        body = req.json()
        repo_type = body.get("type") or "model"
        if repo_type not in PREFIX or not body.get("name"):
            raise HubError(400, f"invalid repo type or name: {repo_type!r} {body.get('name')!r}")
        repo_id = f"{body.get('organization') or req.user}/{body['name']}"
        url = {"url": f"{self.url}/{PREFIX[repo_type]}{repo_id}"}
        if (repo_type, repo_id) in self._repos:
            return _json(url | {"error": "You already created this model repo"}, 409)
        self.add_repo(
            repo_id, repo_type=repo_type, private=body.get("visibility", "public") == "private"
        )
        return _json(url | {"name": repo_id, "id": repo_id})

    def _delete_repo(self, req: Request) -> Reply:
        """`HfApi.delete_repo` (DELETE /api/repos/delete)."""
        body = req.json()
        key = (
            body.get("type") or "model",
            f"{body.get('organization') or req.user}/{body.get('name')}",
        )
        self._get_repo(*key, req.user)
        del self._repos[key]
        self._save()
        return Reply()

    def _settings(self, req: Request) -> Reply:
        """`HfApi.update_repo_settings` (PUT /api/{type}s/{id}/settings): visibility only."""
        repo, body = self._get_repo(req.repo_type, req.repo_id, req.user), req.json()
        if "visibility" in body or "private" in body:
            repo.private = body.get("visibility") == "private" or body.get("private") is True
        self._save()
        return _json({})

    def _validate_yaml(self, req: Request) -> Reply:
        """Called by `upload_folder`/`create_commit` when README.md is uploaded (POST
        /api/validate-yaml). Like the Hub: YAML must parse to a mapping without null values."""
        try:
            meta, errors = _front_matter(str(req.json().get("content", "")))
        except yaml.YAMLError as e:
            meta, errors = {}, [f"Invalid YAML in README.md metadata: {e}"]
        errors += [f'"{key}" must not be null' for key in _null_keys(meta)]
        if errors:
            return _json(
                {"error": errors[0], "errors": [{"message": m} for m in errors], "warnings": []},
                400,
            )
        return _json({"errors": [], "warnings": []})

    def _repo_info(self, req: Request) -> Reply:
        """`repo_info`/`model_info`/`revision_exists`/`snapshot_download` (GET /api/{type}s/{id}
        and /api/{type}s/{id}/revision/{rev}); `blobs=True` comes from `files_metadata=True`."""
        repo = self._get_repo(req.repo_type, req.repo_id, req.user)
        return _json(self._info(repo, self._resolve(repo, req.args[0]), req.flag("blobs")))

    def _refs(self, req: Request) -> Reply:
        """`list_repo_refs` (GET /api/{type}s/{id}/refs[?include_prs=1])."""
        repo = self._get_repo(req.repo_type, req.repo_id, req.user)

        def refs(names: Mapping[str, str], prefix: str) -> list[dict[str, str]]:
            return [
                {"name": n, "ref": f"{prefix}{n}", "targetCommit": oid}
                for n, oid in sorted(names.items())
            ]

        out = {
            "branches": refs(repo.branches, "refs/heads/"),
            "converts": [],
            "tags": refs(repo.tags, "refs/tags/"),
        }
        if req.flag("include_prs"):
            out["pullRequests"] = [
                {"name": str(n), "ref": f"refs/pr/{n}", "targetCommit": oid}
                for n, oid in sorted(repo.prs.items())
            ]
        return _json(out)

    def _commits(self, req: Request) -> Reply:
        """`list_repo_commits` (GET /api/{type}s/{id}/commits/{rev}), newest first, one page."""
        repo = self._get_repo(req.repo_type, req.repo_id, req.user)
        commit: Commit | None = self._resolve(repo, req.args[0])
        out = []
        while commit is not None:
            out.append(
                {
                    "id": commit.oid,
                    "title": commit.title,
                    "message": commit.message,
                    "date": commit.date,
                }
            )
            out[-1]["authors"] = [{"user": commit.author, "avatar": ""}]
            commit = repo.commits[commit.parent] if commit.parent else None
        return _json(out)

    def _tree(self, req: Request) -> Reply:
        """`list_repo_tree`/`list_repo_files`/`snapshot_download` (GET /api/{type}s/{id}/tree/{rev}
        [/{path}]?recursive=&expand=), one page."""
        repo = self._get_repo(req.repo_type, req.repo_id, req.user)
        commit = self._resolve(repo, req.args[0])
        base = req.args[1].strip("/") if len(req.args) > 1 else ""
        prefix = f"{base}/" if base else ""
        below = [p for p in commit.files if p.startswith(prefix)]
        if base and not below:
            raise HubError(404, f"{base} does not exist on {req.args[0]}", "EntryNotFound")
        paths = set()
        for path in below:
            parts = path[len(prefix) :].split("/")
            depth = len(parts) if req.flag("recursive") else 1
            paths |= {prefix + "/".join(parts[: i + 1]) for i in range(min(depth, len(parts)))}
        return _json([self._entry(repo, commit, p, req.flag("expand")) for p in sorted(paths)])

    def _paths_info(self, req: Request) -> Reply:
        """`get_paths_info` (POST /api/{type}s/{id}/paths-info/{rev}, form-encoded `paths`)."""
        repo = self._get_repo(req.repo_type, req.repo_id, req.user)
        commit = self._resolve(repo, req.args[0])
        form = parse_qs(req.body.decode())
        expand = form.get("expand", ["False"])[0].lower() == "true"
        out = []
        for path in dict.fromkeys(p.strip("/") for p in form.get("paths", [])):
            if path in commit.files or any(p.startswith(path + "/") for p in commit.files):
                out.append(self._entry(repo, commit, path, expand))
        return _json(out)

    def _tag(self, req: Request) -> Reply:
        """`create_tag` (POST /api/{type}s/{id}/tag/{rev}, JSON {tag, message}); 409 if taken."""
        repo, body = self._get_repo(req.repo_type, req.repo_id, req.user), req.json()
        tag = str(body.get("tag", ""))
        if not re.fullmatch(r"[\w.@+-]+(/[\w.@+-]+)*", tag):
            raise HubError(400, f"Invalid tag name: {tag!r}")
        if tag in repo.tags:
            raise HubError(409, f"Tag {tag} already exists")
        repo.tags[tag] = self._resolve(repo, req.args[0]).oid
        self._save()
        return _json({"name": tag, "ref": f"refs/tags/{tag}"})

    def _delete_tag(self, req: Request) -> Reply:
        """`delete_tag` (DELETE /api/{type}s/{id}/tag/{tag})."""
        repo = self._get_repo(req.repo_type, req.repo_id, req.user)
        if repo.tags.pop(req.args[0], None) is None:
            raise HubError(404, f"Tag {req.args[0]} does not exist", "RevisionNotFound")
        self._save()
        return Reply()

    def _branch(self, req: Request) -> Reply:
        """`create_branch` (POST /api/{type}s/{id}/branch/{branch}, JSON {startingPoint})."""
        repo, name = self._get_repo(req.repo_type, req.repo_id, req.user), req.args[0]
        if name in repo.branches:
            raise HubError(409, f"Branch {name} already exists")
        repo.branches[name] = self._resolve(repo, req.json().get("startingPoint") or "main").oid
        self._save()
        return _json({})

    def _delete_branch(self, req: Request) -> Reply:
        """`delete_branch` (DELETE /api/{type}s/{id}/branch/{branch}); main cannot go."""
        repo, name = self._get_repo(req.repo_type, req.repo_id, req.user), req.args[0]
        if name == "main":
            raise HubError(403, "You cannot delete the default branch")
        if repo.branches.pop(name, None) is None:
            raise HubError(404, f"Branch {name} does not exist", "RevisionNotFound")
        self._save()
        return Reply()

    # -- endpoints: uploads and commits -----------------------------------------------------

    def _preupload(self, req: Request) -> Reply:
        """`create_commit`/`upload_folder`/`preupload_lfs_files` (POST /api/{type}s/{id}/preupload/
        {rev}): `uploadMode` per file, `shouldIgnore` (always false) and the current `oid`
        (sha256 for LFS, git blob id otherwise), which lets the client skip unchanged files."""
        repo = self._get_repo(req.repo_type, req.repo_id, req.user)
        files = self._resolve(repo, req.args[0]).files if not req.flag("create_pr") else {}
        out = []
        for item in req.json().get("files", []):
            path, blob = item["path"], files.get(item["path"])
            mode = "lfs" if self._is_lfs(path, int(item.get("size", 0))) else "regular"
            oid = None if blob is None else blob.sha256 if blob.lfs else blob.oid
            out.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return _json({"files": out, "commitOid": self._branch_head(repo, req.args[0])})

    def _lfs_batch(self, req: Request) -> Reply:
        """`create_commit` LFS step (POST /{id}.git/info/lfs/objects/batch): upload actions, basic
        or multipart (`header.chunk_size` + one URL per part); no actions for objects stored."""
        repo, body = self._get_repo(req.repo_type, req.repo_id, req.user), req.json()
        if body.get("operation") != "upload":
            raise HubError(422, "only the upload operation is supported")
        multipart_ok = "multipart" in body.get("transfers", ["basic"])
        verify = {
            "href": f"{self.url}/{PREFIX[repo.repo_type]}{repo.repo_id}.git/info/lfs/objects/verify"
        }
        objects, transfer = [], "basic"
        for obj in body.get("objects", []):
            oid, size = str(obj.get("oid")), int(obj.get("size", -1))
            if not re.fullmatch(r"[0-9a-f]{64}", oid) or size < 0:
                objects.append(
                    {
                        "oid": oid,
                        "size": size,
                        "error": {"code": 422, "message": "invalid oid or size"},
                    }
                )
                continue
            if oid in repo.lfs_objects:
                objects.append({"oid": oid, "size": size})
                continue
            upload_id = secrets.token_hex(8)
            href = f"{self.url}/_lfs/{upload_id}"
            chunked = multipart_ok and size >= self.multipart_threshold
            self._uploads[upload_id] = _Upload(
                (repo.repo_type, repo.repo_id), oid, size, self.chunk_size if chunked else None
            )
            header: dict[str, str] = {}
            if chunked:
                transfer = "multipart"
                n_parts = -(-size // self.chunk_size)
                header = {"chunk_size": str(self.chunk_size)} | {
                    str(i): f"{href}/{i}" for i in range(1, n_parts + 1)
                }
            actions = {"upload": {"href": href, "header": header}, "verify": verify}
            objects.append({"oid": oid, "size": size, "authenticated": True, "actions": actions})
        return _json({"transfer": transfer, "objects": objects, "hash_algo": "sha256"})

    def _finish_upload(self, upload_id: str, data: bytes) -> None:
        upload = self._uploads[upload_id]
        sha256 = hashlib.sha256(data).hexdigest()
        if sha256 != upload.oid or len(data) != upload.size:
            raise HubError(
                400,
                f"uploaded content has sha256 {sha256} and size {len(data)}, expected {upload.oid}",
            )
        self._store(data, True)
        self._repos[upload.repo].lfs_objects.add(sha256)
        del self._uploads[upload_id]
        self._save()

    def _lfs_upload(self, req: Request) -> Reply:
        """LFS basic transfer: PUT of the whole object to the pre-signed `href` (no token)."""
        if req.args[0] not in self._uploads or self._uploads[req.args[0]].chunk_size is not None:
            raise HubError(404, "unknown upload")
        self._finish_upload(req.args[0], req.body)
        return Reply()

    def _lfs_part(self, req: Request) -> Reply:
        """LFS multipart transfer: PUT of one part; the reply's ETag goes into the completion."""
        upload = self._uploads.get(req.args[0])
        if upload is None or upload.chunk_size is None or not req.args[1].isdigit():
            raise HubError(404, "unknown upload part")
        if len(req.body) > upload.chunk_size:
            raise HubError(400, f"part is larger than chunk_size {upload.chunk_size}")
        upload.parts[int(req.args[1])] = req.body
        return Reply(headers={"ETag": f'"{hashlib.md5(req.body).hexdigest()}"'})

    def _lfs_complete(self, req: Request) -> Reply:
        """LFS multipart completion: POST {oid, parts: [{partNumber, etag}]} to the `href`."""
        upload, body = self._uploads.get(req.args[0]), req.json()
        if upload is None or upload.chunk_size is None or body.get("oid") != upload.oid:
            raise HubError(404, "unknown upload")
        parts = body.get("parts", [])
        numbers = [p.get("partNumber") for p in parts]
        if numbers != list(range(1, len(upload.parts) + 1)) or sorted(upload.parts) != numbers:
            raise HubError(
                400, f"parts {numbers} do not match the uploaded parts {sorted(upload.parts)}"
            )
        for part in parts:
            if part.get("etag") != f'"{hashlib.md5(upload.parts[part["partNumber"]]).hexdigest()}"':
                raise HubError(400, f"wrong etag for part {part['partNumber']}")
        self._finish_upload(req.args[0], b"".join(upload.parts[n] for n in numbers))
        return _json({"success": True})

    def _lfs_verify(self, req: Request) -> Reply:
        """LFS verify action (POST /{id}.git/info/lfs/objects/verify, JSON {oid, size})."""
        repo, body = self._get_repo(req.repo_type, req.repo_id, req.user), req.json()
        oid = str(body.get("oid"))
        if oid not in repo.lfs_objects or len(self._read(oid)) != body.get("size"):
            raise HubError(404, f"LFS object {oid} of size {body.get('size')} not found")
        return _json({"success": True})

    def _commit_endpoint(self, req: Request) -> Reply:
        """`create_commit`/`upload_folder`/`upload_file`/`delete_file` (POST /api/{type}s/{id}/
        commit/{rev}, NDJSON: a header line {summary, description, parentCommit?} then `file`
        (base64), `lfsFile`, `deletedFile`, `deletedFolder` lines). `create_pr=1` opens a PR."""
        repo = self._get_repo(req.repo_type, req.repo_id, req.user)
        try:
            lines = [json.loads(line) for line in req.body.splitlines() if line.strip()]
        except ValueError as e:
            raise HubError(400, f"invalid NDJSON body: {e}") from None
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the first NDJSON line must be the header")
        header, revision = lines[0]["value"], req.args[0]
        head = self._branch_head(repo, revision)
        parent = header.get("parentCommit")
        if parent and parent != head:
            raise HubError(
                412,
                f"A commit has happened since. Please refresh and try again ({revision}: {head})",
            )
        tree = dict(repo.commits[head].files)
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            path = str(value.get("path", "")).strip("/")
            if key == "file":
                data = base64.b64decode(value["content"])
                if self._is_lfs(path, len(data)):
                    raise HubError(
                        400, f"{path} must be uploaded with LFS (see preupload), not inline"
                    )
                tree[path] = self._store(data, False)
            elif key == "lfsFile":
                oid = value.get("oid")
                if oid not in repo.lfs_objects:
                    raise HubError(
                        400, f"LFS object {oid} for {path} was not uploaded to this repo"
                    )
                if value.get("size") not in (None, len(self._read(oid))):
                    raise HubError(
                        400, f"LFS object {oid} for {path} has not size {value.get('size')}"
                    )
                tree[path] = self._store(self._read(oid), True)
            elif key == "deletedFile":
                if tree.pop(path, None) is None:
                    raise HubError(
                        404, f"A file with this name doesn't exist: {path}", "EntryNotFound"
                    )
            elif key == "deletedFolder":
                doomed = [p for p in tree if p.startswith(path + "/")]
                if not doomed:
                    raise HubError(
                        404, f"A folder with this name doesn't exist: {path}", "EntryNotFound"
                    )
                for p in doomed:
                    del tree[p]
            else:
                raise HubError(400, f"unknown operation {key!r}")
        ref, pr_url = revision, None
        if req.flag("create_pr"):
            number = max(repo.prs, default=0) + 1
            ref, pr_url = (
                f"refs/pr/{number}",
                f"{self.url}/{PREFIX[repo.repo_type]}{repo.repo_id}/discussions/{number}",
            )
        title, message = header.get("summary") or "Update", header.get("description") or ""
        oid = self._commit(repo, ref, head, title, message, req.user or "anonymous", tree)
        self.commit_counts[repo.repo_id] += 1
        url = f"{self.url}/{PREFIX[repo.repo_type]}{repo.repo_id}/commit/{oid}"
        return _json(
            {"success": True, "commitOid": oid, "commitUrl": url, "pullRequestUrl": pr_url}
        )

    # -- endpoints: downloads ---------------------------------------------------------------

    def _resolve_file(self, req: Request, head_only: bool, range_header: str | None) -> Reply:
        """`hf_hub_download`/`snapshot_download`/`file_exists`/`get_hf_file_metadata` (HEAD and
        GET /{id}/resolve/{rev}/{path}): `X-Repo-Commit`, `ETag` (+ `X-Linked-Etag`/`-Size` for
        LFS); GET honours a single `Range`."""
        repo = self._get_repo(req.repo_type, req.repo_id, req.user)
        commit = self._resolve(repo, req.args[0])
        blob = commit.files.get(req.args[1])
        if blob is None:
            raise HubError(404, "Entry not found", "EntryNotFound", **{"X-Repo-Commit": commit.oid})
        headers = {
            "X-Repo-Commit": commit.oid,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        headers["ETag"] = f'"{blob.sha256 if blob.lfs else blob.oid}"'
        if blob.lfs:
            headers |= {"X-Linked-Etag": headers["ETag"], "X-Linked-Size": str(blob.size)}
        if head_only:
            return Reply(200, b"", headers | {"Content-Length": str(blob.size)})
        data, status = self._read(blob.sha256), 200
        if range_header:
            match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", range_header)
            start, end = (match.group(1), match.group(2)) if match else ("", "")
            first = int(start) if start else max(blob.size - int(end or 0), 0)
            last = min(int(end), blob.size - 1) if start and end else blob.size - 1
            if not match or first > last:
                raise HubError(
                    416, "Range Not Satisfiable", **{"Content-Range": f"bytes */{blob.size}"}
                )
            data, status = data[first : last + 1], 206
            headers["Content-Range"] = f"bytes {first}-{last}/{blob.size}"
        return Reply(status, data, headers)

    # -- dispatch ---------------------------------------------------------------------------

    def _dispatch(self, req: Request, range_header: str | None) -> Reply:
        if req.kind == "resolve" and req.method in ("GET", "HEAD"):
            return self._resolve_file(req, req.method == "HEAD", range_header)
        table: dict[tuple[str, str], Callable[[Request], Reply]] = {
            ("GET", "whoami"): self._whoami,
            ("POST", "create-repo"): self._create_repo,
            ("DELETE", "delete-repo"): self._delete_repo,
            ("PUT", "settings"): self._settings,
            ("POST", "validate-yaml"): self._validate_yaml,
            ("GET", "repo-info"): self._repo_info,
            ("GET", "refs"): self._refs,
            ("GET", "commits"): self._commits,
            ("GET", "tree"): self._tree,
            ("POST", "paths-info"): self._paths_info,
            ("POST", "tag"): self._tag,
            ("DELETE", "tag"): self._delete_tag,
            ("POST", "branch"): self._branch,
            ("DELETE", "branch"): self._delete_branch,
            ("POST", "preupload"): self._preupload,
            ("POST", "lfs-batch"): self._lfs_batch,
            ("PUT", "lfs-upload"): self._lfs_upload,
            ("POST", "lfs-upload"): self._lfs_complete,
            ("PUT", "lfs-part"): self._lfs_part,
            ("POST", "lfs-verify"): self._lfs_verify,
            ("POST", "commit"): self._commit_endpoint,
        }
        handler = table.get((req.method, req.kind))
        if handler is None:
            raise HubError(
                404 if req.kind == "unknown" else 405, f"no route for {req.method} {req.path}"
            )
        return handler(req)

    def _user(self, authorization: str | None) -> tuple[str | None, bool]:
        """(user, credentials_valid) for an Authorization header."""
        if not authorization:
            return None, True
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, False
        if self.tokens is None:
            return "tester", True
        user = self.tokens.get(token.strip())
        return user, user is not None

    def handle(
        self,
        method: str,
        raw_path: str,
        authorization: str | None,
        range_header: str | None,
        body: bytes,
    ) -> Reply | Fault:
        """Serve one request (called by the HTTP handler), logging it and applying faults."""
        split = urlsplit(raw_path)
        segs = [unquote(s) for s in split.path.split("/") if s]
        kind, repo_type, repo_id, args = _route(segs)
        path = unquote(split.path)
        entry = LogEntry(method, path, kind, received=len(body))
        with self._lock:
            self.log.append(entry)
        fault = self._take_fault(method, path, after=False)
        if fault is None:
            user, valid = self._user(authorization)
            req = Request(
                method, path, kind, repo_type, repo_id, args, parse_qs(split.query), body, user
            )
            try:
                if not valid:
                    raise HubError(401, "Invalid credentials in Authorization header")
                needs_auth = kind in AUTH_KINDS if self.auth == "writes" else kind not in PRESIGNED
                if self.auth != "none" and needs_auth and user is None:
                    raise HubError(401, "You must be authenticated (Authorization: Bearer <token>)")
                with self._lock:
                    reply = self._dispatch(req, range_header)
            except HubError as e:
                headers = {"X-Error-Message": e.message} | e.headers
                if e.code:
                    headers["X-Error-Code"] = e.code
                reply = _json({"error": e.message}, e.status, **headers)
            except Exception as e:  # a bug here must reach the test as a 500, not a hang
                reply = _json({"error": f"loopback hub crashed: {type(e).__name__}: {e}"}, 500)
            fault = self._take_fault(method, path, after=True)
        if fault is not None:
            entry.fault = ("dropped" if fault.drop else f"injected {fault.status}") + (
                " after" if fault.after else ""
            )
            entry.status = 0 if fault.drop else fault.status
            return fault
        entry.status = reply.status
        return reply


def _front_matter(text: str) -> tuple[Any, list[str]]:
    """(metadata, errors) of a model card's YAML front matter; raises yaml.YAMLError."""
    match = re.match(r"\A---\s*\n(.*?\n)?---\s*(\n|\Z)", text, re.DOTALL)
    if match is None:
        return {}, []
    meta = yaml.safe_load(match.group(1) or "") or {}
    return (
        (meta, [])
        if isinstance(meta, dict)
        else ({}, ["README.md metadata must be a YAML mapping"])
    )


def _null_keys(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _null_keys(item, f"{prefix}{key}" if not prefix else f"{prefix}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _null_keys(item, f"{prefix}[{i}]")
    elif value is None:
        yield prefix


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"
    timeout = 60

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        body = self._read_body()
        auth, rng = self.headers.get("Authorization"), self.headers.get("Range")
        result = self.hub.handle(self.command, self.path, auth, rng, body)
        if isinstance(result, Fault):
            fault = result
            if fault.drop:
                self.close_connection = True
                return
            headers = dict(fault.headers)
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            result = _json({"error": f"injected {fault.status}"}, fault.status, **headers)
            if fault.body is not None:
                result.body = fault.body
        self.send_response(result.status)
        for name, value in result.headers.items():
            self.send_header(name, value)
        if "Content-Length" not in result.headers:
            self.send_header("Content-Length", str(len(result.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(result.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the server keeps its own log


# -- client side: drive the real huggingface_hub in a fresh process ------------------------


def client_env(server: HubServer, home: Path, token: str | None = "hf_loopback") -> dict[str, str]:
    """The environment a huggingface_hub process needs to use `server` and nothing else."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("HF_", "HUGGING", "TRANSFORMERS_"))
    }
    env = {k: v for k, v in env.items() if "proxy" not in k.lower()}
    env |= {"HF_ENDPOINT": server.url, "HF_HOME": str(home), "HF_HUB_DISABLE_XET": "1"}
    env |= {
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HUB_OFFLINE": "0",
    }
    env |= {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "NO_PROXY": "127.0.0.1,localhost"}
    if token is not None:
        env["HF_TOKEN"] = token
    return env


_PRELUDE = '''
import json, socket, sys
_connect = socket.socket.connect
def _guarded(self, address):
    if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "localhost", "::1"):
        raise OSError(f"the loopback client must not reach {address!r}")
    return _connect(self, address)
socket.socket.connect = _guarded
from huggingface_hub import HfApi
api = HfApi()
def attempt(fn, *args, **kwargs):
    """Call fn; return {"ok": value} or {"error": class name, "status": HTTP status, ...}."""
    try:
        return {"ok": fn(*args, **kwargs)}
    except Exception as e:
        response = getattr(e, "response", None)
        return {"error": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__],
                "status": getattr(response, "status_code", None), "message": str(e)}
result = None
'''
_EPILOGUE = '\nprint("\\n@@RESULT@@" + json.dumps(result, default=str))\n'


def run_client(
    server: HubServer,
    code: str,
    home: Path,
    *,
    token: str | None = "hf_loopback",
    timeout: float = 120,
) -> Any:
    """Run `code` in a fresh Python with `client_env`; it sees `api` (an HfApi), `attempt(...)`
    and sets `result` (JSON-serialisable, `default=str`), which is returned."""
    script = _PRELUDE + textwrap.dedent(code) + _EPILOGUE
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=client_env(server, home, token),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0 or "@@RESULT@@" not in proc.stdout:
        raise AssertionError(
            f"client failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return json.loads(proc.stdout.rsplit("@@RESULT@@", 1)[1])


def hub() -> Iterator[HubServer]:
    """The `hub` pytest fixture: a fresh server per test (register with `pytest.fixture(hub)`)."""
    with HubServer() as server:
        yield server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a loopback Hugging Face Hub until Ctrl-C.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--data", type=Path, default=None, help="keep repos in this directory")
    parser.add_argument("--auth", choices=["writes", "all", "none"], default="writes")
    args = parser.parse_args(argv)
    server = HubServer(port=args.port, data_dir=args.data, auth=args.auth)
    print(f"serving {server.url} (HF_ENDPOINT={server.url} HF_HUB_DISABLE_XET=1)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()

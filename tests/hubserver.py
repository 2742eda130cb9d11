"""A loopback Hugging Face Hub for tests: the real `huggingface_hub` client talks to it over HTTP.

Point the client at it with `HF_ENDPOINT` (`client_env` builds the whole environment); never
mock `HfApi`. The server keeps a small git-like model in memory (or in a directory): repos
whose branches, tags and pull-request refs point at 40-hex commits; a commit has a parent, a
title, a description and a file tree; a file is a blob (sha256, git blob id, size), committed
inline ("regular") or uploaded through the LFS batch API (basic or multipart transfer). A
request log, counters and fault injection let a test check what a client did and how it copes.

By hand: `python tests/hubserver.py --port 8000 --data DIR` serves until Ctrl-C; then e.g.
`HF_ENDPOINT=http://127.0.0.1:8000 HF_HUB_DISABLE_XET=1 HF_HUB_DISABLE_UPDATE_CHECK=1
HF_TOKEN=x hf upload org/model .` (any token is accepted: user "tester").
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import pickle
import re
import secrets
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a TCP reset
PLURALS = {"models": "model", "datasets": "dataset", "spaces": "space"}
PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
LFS_SUFFIXES: tuple[str, ...] = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".h5",
    ".gguf",
    ".onnx",
    ".npy",
)
LFS_SUFFIXES += (".npz", ".msgpack", ".pkl", ".pickle", ".model", ".zip", ".tar", ".gz")
GITATTRIBUTES = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES)
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
QUERY_KINDS = frozenset({"paths-info", "validate-yaml", "oauth-token"})  # POSTs: no change
PRESIGNED = frozenset({"lfs-upload", "lfs-part"})  # storage URLs: the client sends no token
NO_AUTH = PRESIGNED | {"oauth-token"}  # the OIDC id token in the body is the credential
DEFAULT_ORGS = ("org", "o", "open-r1", "a", "evil")  # owners the tests' repositories use
AUTH_KINDS = frozenset({"create-repo", "preupload", "commit", "tag", "lfs-batch", "lfs-verify"})
AUTH_KINDS |= {"branch"}
PR_RE = re.compile(r"refs/pr/(\d+)")
LFS_SPEC = "https://git-lfs.github.com/spec/v1"
FIXED_ROUTES = {"api/whoami-v2": "whoami", "api/repos/create": "create-repo"}
FIXED_ROUTES["api/validate-yaml"] = "validate-yaml"
FIXED_ROUTES["oauth/token"] = "oauth-token"  # trusted publishing: OIDC token exchange
REPO_ENDPOINTS = {name: name for name in ("preupload", "commit", "commits", "refs", "tree", "tag")}
REPO_ENDPOINTS |= {"branch": "branch"}
REPO_ENDPOINTS |= {"paths-info": "paths-info", "revision": "repo-info"}


def git_blob_id(data: bytes) -> str:
    """The git object id of `data` as a blob: sha1 of `blob {len}\\0` + data."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The pointer file git stores for an LFS object."""
    return f"version {LFS_SPEC}\noid sha256:{sha256}\nsize {size}\n".encode()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class Blob:
    """A file in a tree; `oid` is its git blob id (of the LFS pointer file when `lfs`)."""

    sha256: str
    size: int
    lfs: bool
    oid: str

    def lfs_info(self, sha_key: str) -> dict[str, Any]:
        pointer_size = len(lfs_pointer(self.sha256, self.size))
        return {sha_key: self.sha256, "size": self.size, "pointerSize": pointer_size}


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
    created_at: str = field(default_factory=_now)
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    prs: dict[int, str] = field(default_factory=dict)
    lfs_objects: set[str] = field(default_factory=set)


@dataclass
class LogEntry:
    """One request. Headers are never kept, so neither is a token."""

    method: str
    path: str  # percent-decoded, without the query string
    kind: str  # the endpoint: "commit", "preupload", "lfs-batch", "resolve", "tree", ...
    received: int  # request body bytes
    status: int = 0  # 0 when the connection was dropped
    fault: str | None = None  # "injected 503", "dropped", "dropped after", ...

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
    headers: dict[str, str]
    after: bool
    hits: int = 0
    delay: float = 0.0
    call: Callable[[], object] | None = None
    midway: bool = False  # drop after receiving half of the request body


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, **headers: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    headers = {"Content-Type": "application/json", **(headers or {})}
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
    range: str | None
    token: str | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as e:
            raise HubError(400, f"invalid JSON body: {e}") from None

    def flag(self, name: str) -> bool:
        return self.query.get(name, [""])[0].lower() in ("1", "true")


def _route(segs: list[str]) -> tuple[str, str, str, list[str]]:
    """(kind, repo_type, repo_id, args) of a request from its percent-decoded path segments."""
    if kind := FIXED_ROUTES.get("/".join(segs)):
        return kind, "", "", []
    if len(segs) >= 4 and segs[0] == "api" and segs[1] in PLURALS:
        repo_type, repo_id = PLURALS[segs[1]], f"{segs[2]}/{segs[3]}"
        name, tail = (segs[4], segs[5:]) if len(segs) > 4 else ("revision", [])
        if name == "tree" and tail:
            tail = [tail[0], "/".join(tail[1:])]
        if name in REPO_ENDPOINTS:
            return REPO_ENDPOINTS[name], repo_type, repo_id, tail or ["main"]
    if len(segs) in (2, 3) and segs[0] == "_lfs":
        return ("lfs-upload" if len(segs) == 2 else "lfs-part"), "", "", segs[1:]
    repo_type = "model"
    if segs and segs[0] in ("datasets", "spaces"):
        repo_type, segs = PLURALS[segs[0]], segs[1:]
    lfs = len(segs) == 6 and segs[1].endswith(".git") and segs[2:5] == ["info", "lfs", "objects"]
    if lfs and segs[5] in ("batch", "verify"):
        return f"lfs-{segs[5]}", repo_type, f"{segs[0]}/{segs[1][:-4]}", []
    if len(segs) >= 5 and segs[2] == "resolve":
        return "resolve", repo_type, f"{segs[0]}/{segs[1]}", [segs[3], "/".join(segs[4:])]
    return "unknown", "", "", []


@dataclass
class _Upload:
    repo: Repo
    oid: str
    size: int
    chunk_size: int | None  # None: basic transfer
    parts: dict[int, bytes] = field(default_factory=dict)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return  # a client that hung up is not a server error
        super().handle_error(request, client_address)


class HubServer:
    """A Hub-compatible HTTP server on 127.0.0.1, serving from a background thread at `.url`.

    Args:
        port: 0 picks a free port.
        data_dir: keep repos (`repos.pickle`) and blobs (`objects/`) here, reloaded on start.
        tokens: accepted bearer tokens -> user name; None accepts any token as user "tester".
        auth: "writes" (as on the Hub: creating, uploading, committing, tagging need a token),
            "all" (every request but pre-signed LFS uploads), or "none". A private repo always
            needs a valid token; an invalid token is always a 401.
        lfs_threshold, lfs_suffixes: preupload says "lfs" for non-empty files over the threshold
            or with these suffixes (the Hub: 10 MB and `.gitattributes`); a commit sending such a
            file inline is refused, as the Hub refuses binary files pushed without LFS.
        multipart_threshold, chunk_size: LFS objects of at least `multipart_threshold` bytes go
            up in `chunk_size` parts (multipart transfer), smaller ones in one PUT (basic).
        orgs: the organizations every user belongs to (`whoami` lists them); as on the Hub, a
            repository can be created only under the user's own name or one of them.
        roles: token -> role that `whoami` reports ("write" unless named here: "read" makes
            the Hub refuse every write of that token with 403).
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
        orgs: tuple[str, ...] = DEFAULT_ORGS,
        roles: Mapping[str, str] | None = None,
    ) -> None:
        if auth not in ("writes", "all", "none"):
            raise ValueError(f"auth must be 'writes', 'all' or 'none', not {auth!r}")
        self.tokens, self.auth = tokens, auth
        self.orgs, self.roles = orgs, dict(roles or {})
        self.lfs_threshold, self.lfs_suffixes = lfs_threshold, lfs_suffixes
        self.multipart_threshold, self.chunk_size = multipart_threshold, chunk_size
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.log: list[LogEntry] = []
        self.user_agents: list[tuple[str, str, str]] = []  # (method, path, User-Agent) each
        self.commit_counts: Counter[str] = Counter()  # commits made through the API, per repo id
        self._faults: list[Fault] = []
        self._slow: list[Fault] = []
        self._hooks: list[Fault] = []
        self._midway: list[Fault] = []
        self._each_once: Fault | None = None
        self._seen: set[tuple[str, str]] = set()
        self.oidc_tokens: dict[str, str] = {}  # Hub tokens issued by OIDC exchange -> resource
        self._repos: dict[tuple[str, str], Repo] = {}
        self._blobs: dict[str, bytes] = {}
        self._uploads: dict[str, _Upload] = {}
        self._seq = 0
        self._lock = threading.RLock()
        if self.data_dir is not None:
            (self.data_dir / "objects").mkdir(parents=True, exist_ok=True)
            if (self.data_dir / "repos.pickle").exists():
                self._repos = pickle.loads((self.data_dir / "repos.pickle").read_bytes())
        handler = type("Handler", (_Handler,), {"hub": self})
        self._httpd = _QuietServer(("127.0.0.1", port), handler)
        self._httpd.daemon_threads, self._httpd.block_on_close = True, False
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

    # -- log, counters, faults --------------------------------------------------------------

    def writes(self) -> list[LogEntry]:
        """Requests that may change state: POST/PUT/DELETE/PATCH except the read-only POSTs
        (paths-info, validate-yaml). Preupload and LFS batch count: they begin an upload."""
        return [e for e in self.log if e.write]

    def bytes_received(self) -> int:
        return sum(e.received for e in self.log)

    def count(self, kind: str, method: str | None = None) -> int:
        """How many logged requests hit endpoint `kind` (see `LogEntry.kind`)."""
        return sum(e.kind == kind and method in (None, e.method) for e in self.log)

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()
            self.user_agents.clear()
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
        midway: bool = False,
    ) -> Fault:
        """Make the next `times` requests with `method` ("*": any) whose percent-decoded path
        matches `path_regex` (re.search) fail with `status` (+ `Retry-After`, `headers`, `body`)
        or, with `drop`, close the connection without a response. With `after`, the request is
        carried out and only its response replaced: "the commit landed but the reply was lost".
        With `midway`, the connection is reset after half of the request body has arrived, the
        client still sending: an upload cut in the middle. The returned `Fault` counts its
        `hits`."""
        raw = body.encode() if isinstance(body, str) else body
        args = (status, times, retry_after, drop or midway, raw, dict(headers or {}), after)
        fault = Fault(method.upper(), re.compile(path_regex), *args)
        fault.midway = midway
        with self._lock:
            (self._midway if midway else self._faults).append(fault)
        return fault

    def fail_each_once(self, status: int = 503) -> Fault:
        """Make the first request of every distinct (method, path) fail with `status`: every
        call a client makes has to be retried once. The returned `Fault` counts its `hits`."""
        fault = Fault("*", re.compile(""), status, 1 << 30, None, False, None, {}, False)
        with self._lock:
            self._each_once = fault
        return fault

    def slow(self, method: str, path_regex: str, seconds: float, times: int = 1) -> Fault:
        """Delay the next `times` matching requests by `seconds` before they are served."""
        fault = Fault(
            method.upper(), re.compile(path_regex), 0, times, None, False, None, {}, False
        )
        fault.delay = seconds
        with self._lock:
            self._slow.append(fault)
        return fault

    def intercept(
        self, method: str, path_regex: str, call: Callable[[], object], times: int = 1
    ) -> Fault:
        """Run `call()` just before each of the next `times` matching requests is served, as
        if someone else changed the Hub at that moment (`add_commit`, a tag, ...)."""
        hook = Fault(method.upper(), re.compile(path_regex), 0, times, None, False, None, {}, False)
        hook.call = call
        with self._lock:
            self._hooks.append(hook)
        return hook

    def _take(self, faults: list[Fault], method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in faults:
                live = fault.hits < fault.times and fault.method in ("*", method)
                if live and fault.pattern.search(path):
                    fault.hits += 1
                    return fault
        return None

    def _take_delay(self, method: str, path: str) -> float:
        fault = self._take(self._slow, method, path)
        return fault.delay if fault else 0.0

    def _take_fault(self, method: str, path: str, after: bool) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                live = fault.after == after and fault.hits < fault.times
                if live and fault.method in ("*", method) and fault.pattern.search(path):
                    fault.hits += 1
                    return fault
        return None

    # -- Python API to seed and inspect state -----------------------------------------------

    def add_repo(self, repo_id: str, *, repo_type: str = "model", private: bool = False) -> Repo:
        """Create a repo as the Hub does: an "initial commit" holding `.gitattributes`."""
        with self._lock:
            repo = self._repos[(repo_type, repo_id)] = Repo(repo_type, repo_id, private)
            files = {".gitattributes": self._store(GITATTRIBUTES.encode(), lfs=False)}
            self._commit(repo, "main", files, "initial commit")
            return repo

    def add_commit(self, repo_id: str, files: Mapping[str, bytes], message: str = "seed") -> str:
        """Commit `files` (path -> bytes; LFS by the server's rule) to main of a model repo."""
        with self._lock:
            repo = self.repo(repo_id)
            tree = dict(repo.commits[repo.branches["main"]].files)
            tree |= {p: self._store(data, self._is_lfs(p, len(data))) for p, data in files.items()}
            return self._commit(repo, "main", tree, message)

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        with self._lock:
            return self._find_repo(repo_type, repo_id, "system")

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """Path -> content of a model repo at `revision` (branch, tag, PR ref or commit id)."""
        with self._lock:
            commit = self._resolve(self.repo(repo_id), revision)
            return {path: self._read(blob.sha256) for path, blob in commit.files.items()}

    # -- storage and the git-like model -----------------------------------------------------

    def _is_lfs(self, path: str, size: int) -> bool:
        return size > 0 and (size > self.lfs_threshold or path.lower().endswith(self.lfs_suffixes))

    def _store(self, data: bytes, lfs: bool) -> Blob:
        sha256 = hashlib.sha256(data).hexdigest()
        if self.data_dir is None:
            self._blobs[sha256] = data
        elif not (self.data_dir / "objects" / sha256).exists():
            (self.data_dir / "objects" / sha256).write_bytes(data)
        oid = git_blob_id(lfs_pointer(sha256, len(data)) if lfs else data)
        return Blob(sha256, len(data), lfs, oid)

    def _read(self, sha256: str) -> bytes:
        if self.data_dir is None:
            return self._blobs[sha256]
        return (self.data_dir / "objects" / sha256).read_bytes()

    def _save(self) -> None:
        if self.data_dir is not None:
            (self.data_dir / "repos.tmp").write_bytes(pickle.dumps(self._repos))
            os.replace(self.data_dir / "repos.tmp", self.data_dir / "repos.pickle")

    def _find_repo(self, repo_type: str, repo_id: str, user: str | None) -> Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        if repo.private and user is None:  # the Hub answers 401 + RepoNotFound too
            raise HubError(401, "Repository not found", "RepoNotFound")
        return repo

    def _resolve(self, repo: Repo, revision: str) -> Commit:
        """A branch, tag, `refs/heads/..`, `refs/tags/..`, `refs/pr/N` or full commit id."""
        name = revision.removeprefix("refs/heads/").removeprefix("refs/tags/")
        oid = repo.branches.get(name) or repo.tags.get(name)
        if pr := PR_RE.fullmatch(revision):
            oid = repo.prs.get(int(pr.group(1)))
        elif oid is None and revision in repo.commits:
            oid = revision
        if oid is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[oid]

    def _branch_head(self, repo: Repo, revision: str) -> str:
        pr = PR_RE.fullmatch(revision)
        name = revision.removeprefix("refs/heads/")
        head = repo.prs.get(int(pr.group(1))) if pr else repo.branches.get(name)
        if head is None:
            raise HubError(404, f"Invalid rev id: {revision} (not a branch)", "RevisionNotFound")
        return head

    def _commit(
        self,
        repo: Repo,
        ref: str,
        files: dict[str, Blob],
        title: str,
        message: str = "",
        author: str = "system",
    ) -> str:
        """Add a commit on top of branch or PR ref `ref` (created when missing)."""
        pr = PR_RE.fullmatch(ref)
        parent = repo.prs.get(int(pr.group(1))) if pr else repo.branches.get(ref)
        self._seq += 1
        tree = "".join(f"{p}\0{b.oid}\n" for p, b in sorted(files.items()))
        text = f"tree {tree}\nparent {parent}\n{author} {_now()} {self._seq}\n\n{title}\n{message}"
        oid = hashlib.sha1(text.encode()).hexdigest()
        repo.commits[oid] = Commit(oid, parent, title, message, author, _now(), dict(files))
        if pr:
            repo.prs[int(pr.group(1))] = oid
        else:
            repo.branches[ref] = oid
        self._save()
        return oid

    def _entry(self, repo: Repo, commit: Commit, path: str, expand: bool) -> dict[str, Any]:
        """A `list_repo_tree`/`get_paths_info` item: a file (with `lfs`) or a directory."""
        blob = commit.files.get(path)
        if blob is None:
            inside = sorted((p, b.oid) for p, b in commit.files.items() if p.startswith(path + "/"))
            oid = hashlib.sha1(repr(inside).encode()).hexdigest()
            entry: dict[str, Any] = {"type": "directory", "oid": oid, "size": 0, "path": path}
        else:
            entry = {"type": "file", "oid": blob.oid, "size": blob.size, "path": path}
            if blob.lfs:
                entry["lfs"] = blob.lfs_info("oid")
        if expand:  # the last commit that changed the path

            def state(c: Commit) -> list[tuple[str, str]]:
                return sorted(
                    (p, b.oid) for p, b in c.files.items() if f"{p}/".startswith(f"{path}/")
                )

            last = commit
            while last.parent is not None and state(repo.commits[last.parent]) == state(last):
                last = repo.commits[last.parent]
            entry["lastCommit"] = {"id": last.oid, "title": last.title, "date": last.date}
        return entry

    # -- endpoints: accounts, repos, reads --------------------------------------------------
    # Each handler is `_<method>_<kind>`; its docstring names the client calls that use it.

    def _get_whoami(self, req: Request) -> Reply:
        """`HfApi.whoami` (GET /api/whoami-v2)."""
        if req.user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        orgs = [{"type": "org", "name": o, "roleInOrg": "write"} for o in self.orgs]
        me = {"type": "user", "id": req.user, "name": req.user, "fullname": req.user, "orgs": orgs}
        token = {"displayName": "loopback", "role": self.roles.get(req.token or "", "write")}
        return _json(me | {"auth": {"type": "access_token", "accessToken": token}})

    def _post_oauth_token(self, req: Request) -> Reply:
        """Trusted publishing's token exchange (`huggingface_hub._oidc.exchange_oidc_token`, POST
        /oauth/token, RFC 8693): any non-empty OIDC id token buys a short-lived Hub token scoped
        to `resource`; it is valid for this server from then on (`oidc_tokens`)."""
        body = req.json()
        if not isinstance(body, dict) or not body.get("subject_token"):
            raise HubError(400, "invalid_request: subject_token is required")
        if body.get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange":
            raise HubError(400, "unsupported_grant_type")
        token = f"hf_oidc_{secrets.token_hex(16)}"
        self.oidc_tokens[token] = str(body.get("resource", ""))
        if self.tokens is not None:
            self.tokens = {**self.tokens, token: "oidc"}
        issued = "urn:ietf:params:oauth:token-type:access_token"
        return _json(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": 3600,
                "issued_token_type": issued,
            }
        )

    def _post_create_repo(self, req: Request) -> Reply:
        """`create_repo` (POST /api/repos/create); 409 with `url` when it exists (`exist_ok`)."""
        body = req.json()
        repo_type = body.get("type") or "model"
        if repo_type not in PREFIX or not re.fullmatch(r"[\w.-]+", str(body.get("name"))):
            raise HubError(400, f"invalid repo type or name: {repo_type!r} {body.get('name')!r}")
        owner = body.get("organization") or req.user
        if owner != req.user and owner not in self.orgs:
            raise HubError(
                403, f"You don't have the rights to create a model under the namespace {owner!r}"
            )
        repo_id = f"{owner}/{body['name']}"
        url = {"url": f"{self.url}/{PREFIX[repo_type]}{repo_id}"}
        if (repo_type, repo_id) in self._repos:
            return _json(url | {"error": f"You already created this {repo_type} repo"}, 409)
        # huggingface_hub 2.x sends `visibility`, 1.x `private` (the Hub takes both)
        private = body.get("visibility") == "private" or body.get("private") is True
        self.add_repo(repo_id, repo_type=repo_type, private=private)
        return _json(url | {"name": repo_id, "id": repo_id})

    def _post_validate_yaml(self, req: Request) -> Reply:
        """README.md check in `upload_folder`/`create_commit` (POST /api/validate-yaml): like
        the Hub, the metadata must parse to a mapping and hold no null."""
        try:
            meta, errors = _front_matter(str(req.json().get("content", "")))
        except yaml.YAMLError as e:
            meta, errors = {}, [f"Invalid YAML in README.md metadata: {e}"]
        errors += [f'"{key}" must not be null' for key in _null_keys(meta)]
        if errors:
            return _json({"error": errors[0], "errors": [{"message": m} for m in errors]}, 400)
        return _json({"errors": [], "warnings": []})

    def _get_repo_info(self, req: Request) -> Reply:
        """`repo_info`/`model_info`/`revision_exists`, `snapshot_download` (GET /api/{type}s/{id}
        [/revision/{rev}]); sizes, blob ids and LFS only with `blobs` (`files_metadata=True`)."""
        repo = self._find_repo(req.repo_type, req.repo_id, req.user)
        commit = self._resolve(repo, req.args[0])
        siblings: list[dict[str, Any]] = []
        for path, blob in sorted(commit.files.items()):
            siblings.append({"rfilename": path})
            if req.flag("blobs"):
                siblings[-1] |= {"size": blob.size, "blobId": blob.oid}
                if blob.lfs:
                    siblings[-1]["lfs"] = blob.lfs_info("sha256")
        card: Any = {}
        if "README.md" in commit.files:
            with contextlib.suppress(yaml.YAMLError, UnicodeDecodeError):
                card, _ = _front_matter(self._read(commit.files["README.md"].sha256).decode())
        info: dict[str, Any] = {"id": repo.repo_id, "author": repo.repo_id.split("/")[0]}
        info |= {"sha": commit.oid, "lastModified": commit.date, "createdAt": repo.created_at}
        info |= {"private": repo.private, "gated": False, "disabled": False, "siblings": siblings}
        info |= {"tags": card.get("tags") or [], "cardData": card or None, "downloads": 0}
        return _json(info)

    def _get_refs(self, req: Request) -> Reply:
        """`list_repo_refs` (GET /api/{type}s/{id}/refs[?include_prs=1])."""
        repo = self._find_repo(req.repo_type, req.repo_id, req.user)

        def refs(names: Mapping[Any, str], prefix: str) -> list[dict[str, str]]:
            items = sorted(names.items())
            return [{"name": str(n), "ref": f"{prefix}{n}", "targetCommit": o} for n, o in items]

        out = {"branches": refs(repo.branches, "refs/heads/"), "converts": []}
        out["tags"] = refs(repo.tags, "refs/tags/")
        if req.flag("include_prs"):
            out["pullRequests"] = refs(repo.prs, "refs/pr/")
        return _json(out)

    def _get_commits(self, req: Request) -> Reply:
        """`list_repo_commits` (GET /api/{type}s/{id}/commits/{rev}): newest first, one page."""
        repo = self._find_repo(req.repo_type, req.repo_id, req.user)
        commit: Commit | None = self._resolve(repo, req.args[0])
        out: list[dict[str, Any]] = []
        while commit is not None:
            authors = [{"user": commit.author, "avatar": ""}]
            out.append({"id": commit.oid, "title": commit.title, "message": commit.message})
            out[-1] |= {"date": commit.date, "authors": authors}
            commit = repo.commits[commit.parent] if commit.parent else None
        return _json(out)

    def _get_tree(self, req: Request) -> Reply:
        """`list_repo_tree`/`list_repo_files`, `snapshot_download` (GET /api/{type}s/{id}/tree/
        {rev}[/{path}]?recursive=&expand=): one page, folders and files sorted by path."""
        repo = self._find_repo(req.repo_type, req.repo_id, req.user)
        commit = self._resolve(repo, req.args[0])
        base = req.args[1].strip("/") if len(req.args) > 1 else ""
        prefix = f"{base}/" if base else ""
        below = [p[len(prefix) :].split("/") for p in commit.files if p.startswith(prefix)]
        if base and not below:
            raise HubError(404, f"{base} is not a folder at {req.args[0]}", "EntryNotFound")
        depth = 1_000 if req.flag("recursive") else 1
        paths = {prefix + "/".join(parts[:i]) for parts in below for i in range(1, len(parts) + 1)}
        paths = {p for p in paths if p[len(prefix) :].count("/") < depth}
        return _json([self._entry(repo, commit, p, req.flag("expand")) for p in sorted(paths)])

    def _post_paths_info(self, req: Request) -> Reply:
        """`get_paths_info` (POST /api/{type}s/{id}/paths-info/{rev}, form: paths=..&expand=)."""
        repo = self._find_repo(req.repo_type, req.repo_id, req.user)
        commit = self._resolve(repo, req.args[0])
        form = parse_qs(req.body.decode())
        expand = form.get("expand", [""])[0].lower() == "true"
        wanted = dict.fromkeys(p.strip("/") for p in form.get("paths", []))
        folders = {f.rsplit("/", i)[0] for f in commit.files for i in range(1, f.count("/") + 1)}
        found = [p for p in wanted if p in commit.files or p in folders]
        return _json([self._entry(repo, commit, p, expand) for p in found])

    def _get_resolve(self, req: Request) -> Reply:
        """`hf_hub_download`/`snapshot_download` (GET), `file_exists`/`get_hf_file_metadata`
        (HEAD) on /{id}/resolve/{rev}/{path}: `X-Repo-Commit`, `ETag` (git blob id, or sha256
        for LFS, with `X-Linked-Etag`/`X-Linked-Size`); GET honours one `Range`."""
        commit = self._resolve(self._find_repo(req.repo_type, req.repo_id, req.user), req.args[0])
        blob = commit.files.get(req.args[1])
        if blob is None:
            raise HubError(404, "Entry not found", "EntryNotFound", **{"X-Repo-Commit": commit.oid})
        etag = f'"{blob.sha256 if blob.lfs else blob.oid}"'
        headers = {"X-Repo-Commit": commit.oid, "ETag": etag, "Accept-Ranges": "bytes"}
        headers["Content-Type"] = "application/octet-stream"
        if blob.lfs:
            headers |= {"X-Linked-Etag": etag, "X-Linked-Size": str(blob.size)}
        if req.method == "HEAD":
            return Reply(200, b"", headers | {"Content-Length": str(blob.size)})
        data = self._read(blob.sha256)
        if not req.range:
            return Reply(200, data, headers)
        match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", req.range)
        start, end = match.groups() if match else ("", "")
        first = int(start) if start else blob.size - int(end or blob.size + 1)
        last = min(int(end), blob.size - 1) if start and end else blob.size - 1
        if not match or first < 0 or first > last:
            raise HubError(
                416, "Range Not Satisfiable", **{"Content-Range": f"bytes */{blob.size}"}
            )
        headers["Content-Range"] = f"bytes {first}-{last}/{blob.size}"
        return Reply(206, data[first : last + 1], headers)

    # -- endpoints: tags, uploads, commits --------------------------------------------------

    def _post_tag(self, req: Request) -> Reply:
        """`create_tag` (POST /api/{type}s/{id}/tag/{rev}, JSON {tag, message}); 409 if taken."""
        repo, tag = self._find_repo(req.repo_type, req.repo_id, req.user), req.json().get("tag")
        if not re.fullmatch(r"[\w.@+-]+(/[\w.@+-]+)*", str(tag)):
            raise HubError(400, f"Invalid tag name: {tag!r}")
        if tag in repo.tags:
            raise HubError(409, f"Tag {tag} already exists")
        repo.tags[tag] = self._resolve(repo, req.args[0]).oid
        self._save()
        return _json({"name": tag, "ref": f"refs/tags/{tag}"})

    def _post_branch(self, req: Request) -> Reply:
        """`create_branch` (POST /api/{type}s/{id}/branch/{name}, JSON {startingPoint?}: a
        branch, tag or commit; main's head when absent); 409 if the branch exists."""
        repo, branch = self._find_repo(req.repo_type, req.repo_id, req.user), req.args[0]
        if not re.fullmatch(r"[\w.@+-]+(/[\w.@+-]+)*", branch) or PR_RE.fullmatch(branch):
            raise HubError(400, f"Invalid reference for a branch: {branch!r}")
        if branch in repo.branches:
            raise HubError(409, f"Reference already exists: refs/heads/{branch}")
        start = (req.json() or {}).get("startingPoint") or "main"
        repo.branches[branch] = self._resolve(repo, start).oid
        self._save()
        return _json({"name": branch, "ref": f"refs/heads/{branch}"})

    def _delete_tag(self, req: Request) -> Reply:
        """`delete_tag` (DELETE /api/{type}s/{id}/tag/{tag})."""
        repo = self._find_repo(req.repo_type, req.repo_id, req.user)
        if repo.tags.pop(req.args[0], None) is None:
            raise HubError(404, f"Tag {req.args[0]} does not exist", "RevisionNotFound")
        self._save()
        return Reply()

    def _post_preupload(self, req: Request) -> Reply:
        """`create_commit`/`upload_folder`/`preupload_lfs_files` (POST /api/{type}s/{id}/
        preupload/{rev}): per file `uploadMode`, `shouldIgnore` (always false) and the current
        `oid` (sha256 for LFS, git blob id otherwise): the client skips unchanged files."""
        repo = self._find_repo(req.repo_type, req.repo_id, req.user)
        files = {} if req.flag("create_pr") else self._resolve(repo, req.args[0]).files
        out = []
        for item in req.json().get("files", []):
            path, blob = item["path"], files.get(item["path"])
            mode = "lfs" if self._is_lfs(path, int(item.get("size", 0))) else "regular"
            oid = None if blob is None else blob.sha256 if blob.lfs else blob.oid
            out.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return _json({"files": out})

    def _post_lfs_batch(self, req: Request) -> Reply:
        """LFS step of `create_commit` (POST /{id}.git/info/lfs/objects/batch): per object an
        upload action (basic: one `href`; multipart: `header` with `chunk_size` and one URL per
        part) and a verify action; no actions for an object the repo already holds."""
        repo, body = self._find_repo(req.repo_type, req.repo_id, req.user), req.json()
        if body.get("operation") != "upload":
            raise HubError(422, "only the upload operation is supported")
        web = f"{self.url}/{PREFIX[repo.repo_type]}{repo.repo_id}"
        verify = {"href": f"{web}.git/info/lfs/objects/verify"}
        objects, transfer = [], "basic"
        for obj in body.get("objects", []):
            oid, size = str(obj.get("oid")), obj.get("size")
            if not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int) or size < 0:
                error = {"code": 422, "message": "bad oid or size"}
                objects.append({"oid": oid, "size": -1, "error": error})
                continue
            if oid in repo.lfs_objects:
                objects.append({"oid": oid, "size": size})
                continue
            upload_id = secrets.token_hex(8)
            href = f"{self.url}/_lfs/{upload_id}"
            chunked = "multipart" in body.get("transfers", []) and size >= self.multipart_threshold
            self._uploads[upload_id] = _Upload(
                repo, oid, size, self.chunk_size if chunked else None
            )
            header = {}
            if chunked:
                transfer, parts = "multipart", range(1, -(-size // self.chunk_size) + 1)
                header = {"chunk_size": str(self.chunk_size)} | {
                    str(i): f"{href}/{i}" for i in parts
                }
            actions = {"upload": {"href": href, "header": header}, "verify": verify}
            objects.append({"oid": oid, "size": size, "authenticated": True, "actions": actions})
        return _json({"transfer": transfer, "objects": objects, "hash_algo": "sha256"})

    def _finish_upload(self, upload_id: str, data: bytes) -> None:
        upload = self._uploads[upload_id]
        sha256 = hashlib.sha256(data).hexdigest()
        if sha256 != upload.oid or len(data) != upload.size:
            raise HubError(400, f"got sha256 {sha256}, size {len(data)}; expected {upload.oid}")
        self._store(data, lfs=True)
        upload.repo.lfs_objects.add(sha256)
        del self._uploads[upload_id]
        self._save()

    def _put_lfs_upload(self, req: Request) -> Reply:
        """LFS basic transfer: one PUT of the object to its pre-signed `href` (no token)."""
        upload = self._uploads.get(req.args[0])
        if upload is None or upload.chunk_size is not None:
            raise HubError(404, "unknown upload")
        self._finish_upload(req.args[0], req.body)
        return Reply()

    def _put_lfs_part(self, req: Request) -> Reply:
        """LFS multipart transfer: PUT of one part; its `ETag` goes into the completion."""
        upload = self._uploads.get(req.args[0])
        if upload is None or upload.chunk_size is None or not req.args[1].isdigit():
            raise HubError(404, "unknown upload part")
        if len(req.body) > upload.chunk_size:
            raise HubError(400, f"part larger than chunk_size {upload.chunk_size}")
        upload.parts[int(req.args[1])] = req.body
        return Reply(headers={"ETag": f'"{hashlib.md5(req.body).hexdigest()}"'})

    def _post_lfs_upload(self, req: Request) -> Reply:
        """LFS multipart completion: POST {oid, parts: [{partNumber, etag}]} to the `href`."""
        upload, body = self._uploads.get(req.args[0]), req.json()
        if upload is None or upload.chunk_size is None or body.get("oid") != upload.oid:
            raise HubError(404, "unknown upload")
        etags = {p.get("partNumber"): p.get("etag") for p in body.get("parts", [])}
        expected = {n: f'"{hashlib.md5(data).hexdigest()}"' for n, data in upload.parts.items()}
        if etags != expected or sorted(etags) != list(range(1, len(etags) + 1)):
            raise HubError(400, f"parts {sorted(etags)} do not match the uploaded parts")
        self._finish_upload(req.args[0], b"".join(upload.parts[n] for n in sorted(etags)))
        return _json({"success": True})

    def _post_lfs_verify(self, req: Request) -> Reply:
        """LFS verify action (POST /{id}.git/info/lfs/objects/verify, JSON {oid, size})."""
        repo, body = self._find_repo(req.repo_type, req.repo_id, req.user), req.json()
        oid = str(body.get("oid"))
        if oid not in repo.lfs_objects or len(self._read(oid)) != body.get("size"):
            raise HubError(404, f"LFS object {oid} of size {body.get('size')} not found")
        return _json({"success": True})

    def _post_commit(self, req: Request) -> Reply:
        """`create_commit`/`upload_folder`/`upload_file`/`delete_file` (POST /api/{type}s/{id}/
        commit/{rev}, NDJSON: a header {summary, description, parentCommit?}, then `file`
        (base64), `lfsFile`, `deletedFile`, `deletedFolder` lines); `create_pr=1` opens a PR."""
        repo = self._find_repo(req.repo_type, req.repo_id, req.user)
        try:
            lines = [json.loads(line) for line in req.body.splitlines() if line.strip()]
        except ValueError as e:
            raise HubError(400, f"invalid NDJSON body: {e}") from None
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the first NDJSON line must be the header")
        header, revision = lines[0]["value"], req.args[0]
        head = self._branch_head(repo, revision)
        if header.get("parentCommit") not in (None, head):
            raise HubError(
                412, f"A commit has happened since. Please refresh and try again ({head})"
            )
        tree = dict(repo.commits[head].files)
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            path = str(value.get("path", "")).strip("/")
            if key == "file":
                data = base64.b64decode(value["content"])
                if self._is_lfs(path, len(data)):
                    raise HubError(400, f"{path} must go through LFS (see preupload), not inline")
                tree[path] = self._store(data, lfs=False)
            elif key == "lfsFile":
                oid = value.get("oid")
                if oid not in repo.lfs_objects:
                    raise HubError(400, f"LFS object {oid} for {path} was not uploaded here")
                if value.get("size") not in (None, len(self._read(oid))):
                    raise HubError(400, f"LFS object {oid} for {path} is not {value['size']} bytes")
                tree[path] = self._store(self._read(oid), lfs=True)
            elif key == "deletedFile" and path in tree:
                del tree[path]
            elif key == "deletedFolder" and any(p.startswith(path + "/") for p in tree):
                tree = {p: b for p, b in tree.items() if not p.startswith(path + "/")}
            elif key in ("deletedFile", "deletedFolder"):
                raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            else:
                raise HubError(400, f"unknown commit operation {key!r}")
        ref, pr_url, web = revision, None, f"{self.url}/{PREFIX[repo.repo_type]}{repo.repo_id}"
        if req.flag("create_pr"):  # a new refs/pr/N starting at the branch head
            number = max(repo.prs, default=0) + 1
            ref, pr_url = f"refs/pr/{number}", f"{web}/discussions/{number}"
            repo.prs[number] = head
        title, message = header.get("summary") or "Update", header.get("description") or ""
        oid = self._commit(repo, ref, tree, title, message, req.user or "anonymous")
        self.commit_counts[repo.repo_id] += 1
        out = {"success": True, "commitOid": oid, "commitUrl": f"{web}/commit/{oid}"}
        return _json(out | {"pullRequestUrl": pr_url})

    # -- request handling -------------------------------------------------------------------

    def _user(self, authorization: str | None) -> tuple[str | None, bool]:
        """(user, valid) for an Authorization header; no header is valid and anonymous."""
        if not authorization:
            return None, True
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, False
        user = "tester" if self.tokens is None else self.tokens.get(token.strip())
        return user, user is not None

    def _handle(
        self, method: str, target: str, auth: str | None, rng: str | None, body: bytes
    ) -> Reply | Fault:
        """Serve one request: log it, apply faults, check auth, dispatch to `_<method>_<kind>`."""
        split = urlsplit(target)
        kind, repo_type, repo_id, args = _route([unquote(s) for s in split.path.split("/") if s])
        entry = LogEntry(method, unquote(split.path), kind, len(body))
        with self._lock:
            self.log.append(entry)
        delay = self._take_delay(method, entry.path)
        if delay:
            entry.fault = f"slowed {delay:g}s"
            time.sleep(delay)
        hook = self._take(self._hooks, method, entry.path)
        if hook is not None and hook.call is not None:
            hook.call()
        fault = self._take_fault(method, entry.path, after=False)
        if fault is None and self._each_once is not None:
            with self._lock:
                if (method, entry.path) not in self._seen:
                    self._seen.add((method, entry.path))
                    fault = self._each_once
                    fault.hits += 1
        if fault is None:
            user, valid = self._user(auth)
            query = parse_qs(split.query)
            token = (auth or "").partition(" ")[2].strip() or None
            req = Request(
                method, entry.path, kind, repo_type, repo_id, args, query, body, user, rng, token
            )
            verb = "get" if method == "HEAD" else method.lower()  # HEAD: GET's headers, no body
            handler = getattr(self, f"_{verb}_{kind.replace('-', '_')}", None)
            needs_auth = kind in AUTH_KINDS if self.auth == "writes" else kind not in NO_AUTH
            reply: Reply
            try:
                if not valid:
                    raise HubError(401, "Invalid credentials in Authorization header")
                if self.auth != "none" and needs_auth and user is None:
                    raise HubError(401, "You must be authenticated (Authorization: Bearer <token>)")
                if kind in AUTH_KINDS and self.roles.get(token or "") == "read":
                    raise HubError(403, "This token has a read role: it cannot write")
                if handler is None:
                    status = 404 if kind == "unknown" else 405
                    raise HubError(status, f"no route for {method} {entry.path}")
                with self._lock:
                    reply = handler(req)
            except HubError as e:
                headers = {"X-Error-Message": e.message, **e.headers}
                headers |= {"X-Error-Code": e.code} if e.code else {}
                reply = _json({"error": e.message}, e.status, headers)
            except Exception as e:  # a server bug reaches the test as a 500, not as a hang
                reply = _json({"error": f"loopback hub crashed: {type(e).__name__}: {e}"}, 500)
            fault = self._take_fault(method, entry.path, after=True)
        if fault is not None:
            entry.fault = "dropped" if fault.drop else f"injected {fault.status}"
            entry.fault += " after" * fault.after
            entry.status = 0 if fault.drop else fault.status
            return fault
        entry.status = reply.status
        return reply


def _front_matter(text: str) -> tuple[Any, list[str]]:
    """(metadata, errors) of a model card's YAML front matter; raises yaml.YAMLError."""
    match = re.match(r"\A---[ \t]*\n(.*?\n)?---[ \t]*(\n|\Z)", text, re.DOTALL)
    meta = (yaml.safe_load(match.group(1) or "") or {}) if match else {}
    if not isinstance(meta, dict):
        return {}, ["README.md metadata must be a YAML mapping"]
    return meta, []


def _null_keys(value: Any, prefix: str = "") -> Iterator[str]:
    if value is None:
        yield prefix
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _null_keys(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _null_keys(item, f"{prefix}[{i}]")


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    timeout = 60

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    def _serve(self) -> None:
        path = unquote(urlsplit(self.path).path)
        if self.hub._take(self.hub._midway, self.command, path) is not None:
            length = int(self.headers.get("Content-Length") or 0)
            got = self.rfile.read(length // 2)
            kind = _route([s for s in path.split("/") if s])[0]
            entry = LogEntry(self.command, path, kind, len(got), fault="dropped midway")
            with self.hub._lock:
                self.hub.log.append(entry)
            self.close_connection = True
            with contextlib.suppress(OSError):  # reset, not a clean close: the client is sending
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
            return
        body = self._read_body()
        with self.hub._lock:  # the one header kept: it names the client, never a secret
            self.hub.user_agents.append((self.command, path, self.headers.get("User-Agent", "")))
        auth, range_ = self.headers.get("Authorization"), self.headers.get("Range")
        result = self.hub._handle(self.command, self.path, auth, range_, body)
        if isinstance(result, Fault):
            if result.drop:
                self.close_connection = True
                return
            headers = dict(result.headers)
            if result.retry_after is not None:
                headers["Retry-After"] = f"{result.retry_after:g}"
            reply = _json({"error": f"injected {result.status}"}, result.status, headers)
            reply.body = reply.body if result.body is None else result.body
        else:
            reply = result
        self.send_response(reply.status)
        for name, value in {"Content-Length": str(len(reply.body)), **reply.headers}.items():
            self.send_header(name, value)
        try:
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client hung up first (it had the status it needed, e.g. a 401): that is the
            # client's right, not a server error to print on the test's stderr.
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the server keeps its own log, without headers


# -- the client side: the real huggingface_hub in a fresh process -------------------------------


def client_env(server: HubServer, home: Path, token: str | None = "hf_loopback") -> dict[str, str]:
    """Environment for a process whose huggingface_hub must use `server` and nothing else. The
    client reads these at import time, hence a fresh process (or setting them before import)."""
    drop = ("HF_", "HUGGING", "TRANSFORMERS_")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(drop)}
    env = {k: v for k, v in env.items() if "proxy" not in k.lower()}
    env |= {"HF_ENDPOINT": server.url, "HF_HOME": str(home), "HF_HUB_DISABLE_XET": "1"}
    env |= {"HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1"}
    env |= {"HF_HUB_DISABLE_UPDATE_CHECK": "1"}
    env |= {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "NO_PROXY": "127.0.0.1,localhost"}
    return env | ({"HF_TOKEN": token} if token is not None else {})


_PRELUDE = '''
import json, socket
_connect = socket.socket.connect
def _loopback_only(self, address):
    if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "localhost", "::1"):
        raise OSError(f"the loopback client must not reach {address!r}")
    return _connect(self, address)
socket.socket.connect = _loopback_only
from huggingface_hub import HfApi
api = HfApi()
def attempt(fn, *args, **kwargs):
    """{"ok": fn(...)} or {"error": class name, "mro": [...], "status": HTTP status, "message"}."""
    try:
        return {"ok": fn(*args, **kwargs)}
    except Exception as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        mro = [c.__name__ for c in type(e).__mro__]
        return {"error": type(e).__name__, "mro": mro, "status": status, "message": str(e)}
result = None
'''
_EPILOGUE = '\nprint("\\n@@RESULT@@" + json.dumps(result, default=str))\n'


def run_client(
    server: HubServer, code: str, home: Path, token: str | None = "hf_loopback", **params: Any
) -> Any:
    """Run `code` in a fresh Python with `client_env(server, home, token)`. The code sees `api`
    (an `HfApi`), `attempt` and `params` (the keyword arguments, through JSON) and sets `result`,
    which comes back through JSON (`default=str`)."""
    given = f"params = json.loads({json.dumps(params, default=str)!r})\n"
    script = _PRELUDE + given + textwrap.dedent(code) + _EPILOGUE
    home.mkdir(parents=True, exist_ok=True)
    env = client_env(server, home, token)
    cmd = [sys.executable, "-c", script]
    proc = subprocess.run(cmd, env=env, cwd=home, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or "@@RESULT@@" not in proc.stdout:
        output = f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        raise AssertionError(f"client failed ({proc.returncode}):\n{output}")
    return json.loads(proc.stdout.rsplit("@@RESULT@@", 1)[1])


def patch_client(
    monkeypatch: Any, server: HubServer, home: Path, token: str | None = "hf_loopback"
) -> None:
    """Point huggingface_hub in *this* process at `server`, undone by `monkeypatch` (pytest's):
    for in-process tests of library code. The client froze its settings at import, so they are
    patched in `huggingface_hub.constants` (imported first, so the frozen values stay the
    session's); `HfApi()` and `hf_hub_download` then need no `endpoint`."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN", raising=False)  # read at call time, as are the others here
    for name, value in client_env(server, home, token).items():
        if name.startswith("HF_"):
            monkeypatch.setenv(name, value)
    url = server.url
    template = f"{url}/{{repo_id}}/resolve/{{revision}}/{{filename}}"
    patched: dict[str, Any] = {"ENDPOINT": url, "HUGGINGFACE_CO_URL_TEMPLATE": template}
    patched |= {"HF_HUB_OFFLINE": False, "HF_HUB_DISABLE_XET": True, "HF_HOME": str(home)}
    patched |= {"HF_HUB_CACHE": str(home / "hub"), "HF_TOKEN_PATH": str(home / "token")}
    patched |= {"HF_HUB_DISABLE_TELEMETRY": True}
    for name, value in patched.items():
        monkeypatch.setattr(constants, name, value)


def hub() -> Iterator[HubServer]:
    """The `hub` pytest fixture, a fresh server per test: `hub = pytest.fixture(hubserver.hub)`."""
    with HubServer() as server:
        yield server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a loopback Hugging Face Hub until Ctrl-C.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--data", type=Path, help="keep repos in this directory across runs")
    parser.add_argument("--auth", choices=["writes", "all", "none"], default="writes")
    args = parser.parse_args(argv)
    server = HubServer(port=args.port, data_dir=args.data, auth=args.auth)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C may come while the line is printed
        print(
            f"serving {server.url}: export HF_ENDPOINT={server.url} HF_HUB_DISABLE_XET=1",
            flush=True,
        )
        threading.Event().wait()
    server.stop()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    import hubserver  # the pickled state must name `hubserver.Repo`, not `__main__.Repo`

    hubserver.main()

"""Everything that talks to the Hub: plan, commit, tag, verify. The only huggingface_hub user.

A release is one commit (named after the version and the git commit) and a Hub tag equal to
the version on that commit, then a verification that every file on the Hub at the tag has
the staged hash. It is idempotent: when the tag already holds the staged content nothing is
sent; when the branch head already holds it (a run that failed after committing) only the
tag is created; a tag on different content stops the release unless ``force``.

A release deletes only what r1release made. Each one commits ``.r1release/files.json``, the
list of the files it staged. A file on the Hub that this release does not stage is deleted
when the record at the branch head lists it (a previous release made it); otherwise it is
kept when it matches a ``push.keep`` pattern (:mod:`fnmatch` globs on the repository path,
where ``*`` and ``**`` both match across ``/``; default ``.eval_results/**``), or when the
head has a record at all (someone else added it since the last release). On a branch without
a record (never released to, or released by an r1release before records) the release owns
the content: everything else is deleted. A training checkpoint's branch (``publish(...,
tag=False)``) is always owned that way, whatever its record says: it holds that checkpoint
only. ``.gitattributes`` (the Hub's LFS rules) is always kept. Kept files are not
differences: a release of the same files is "already released".

Every request goes through a :class:`HubBackend`; :class:`HfHubBackend` (huggingface_hub's
``HfApi``) is its one real implementation. Other modules get huggingface_hub's card metadata
and token discovery from here (:func:`card_metadata`, :func:`stored_token`), so this stays the
only module that imports it (tests/test_layering.py).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from r1release.config import PushConfig
from r1release.errors import R1ReleaseError, redact, remember_secret
from r1release.stage import RECORD, Stage, StageChanged, StagedFile

GITATTRIBUTES = ".gitattributes"
KEEP_ON_HUB = frozenset({GITATTRIBUTES})
DEFAULT_KEEP = PushConfig().keep  # push.keep when no release.yaml says (finalize's push)
# Transient failures (429, 5xx, dropped connections) are retried after these delays, or after
# the server's Retry-After when it sends one (capped). R1RELEASE_RETRY_SCALE scales them
# (tests set 0 so they never sleep for real); permanent 4xx errors are never retried.
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)
MAX_RETRY_AFTER = 60.0
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
FileState = Literal["new", "changed", "unchanged", "deleted", "kept"]
Log = Callable[[str], None]


class PublishError(R1ReleaseError):
    """A Hub request failed; the message says what failed and whether a rerun is safe."""

    status: int | None = None  # the HTTP status of the failed request, if it had one


class TagConflict(R1ReleaseError):
    """The version's tag already points at different content."""


class VerificationMismatch(PublishError):
    """The files on the Hub at the tag are not the staged files."""


class RecordError(R1ReleaseError):
    """The record of what a previous release made is unreadable: deleting by it could remove
    files r1release never made, so nothing is planned."""


class PreflightError(R1ReleaseError):
    """The release cannot succeed (no token, no Hub, no write access, wrong visibility): found
    before the checkpoint is read, so it costs seconds, not a deep scan."""

    exit_code = 2


@dataclass(frozen=True)
class Access:
    """What the Hub says about us and the repository, before anything is read or sent."""

    user: str | None  # None: no token (anonymous)
    repo_exists: bool
    private: bool | None  # the repository's real visibility (None: it does not exist / unseen)
    orgs: tuple[str, ...] = ()


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    blob_id: str
    sha256: str | None  # for LFS files


@dataclass(frozen=True)
class Refs:
    """A repository's branches and tags, each name -> commit id."""

    branches: dict[str, str]
    tags: dict[str, str]


class HubBackend(Protocol):
    """What a release needs from a Hub. :class:`HfHubBackend` (huggingface_hub) is the one
    real implementation; the loopback Hub of the tests is driven through it.

    Each method is one Hub operation and raises on failure. Retries, the deadline, redaction
    and verification stay in this module, which classifies a failure by its
    ``response.status_code`` or its transport error type (:func:`transient`); request
    timeouts are the back-end's own (:func:`make_api` sets them). A missing repository is
    ``None``, not an error.
    """

    @property
    def endpoint(self) -> str:
        """The Hub's base URL (commit links, and the key of cached file texts)."""
        ...

    def token(self) -> str | None:
        """The token requests carry (given, or discovered: :func:`stored_token`)."""
        ...

    def whoami(self, token: str) -> dict[str, Any]:
        """The Hub's account record for ``token``: ``name``, ``orgs``, ``auth.accessToken``."""
        ...

    def repo_private(self, repo_id: str) -> bool | None:
        """The repository's visibility; None when it does not exist (or is not visible)."""
        ...

    def refs(self, repo_id: str) -> Refs | None:
        """Branches and tags; None when the repository does not exist."""
        ...

    def list_files(self, repo_id: str, revision: str) -> dict[str, RemoteFile]:
        """Every file (not folder) at ``revision``, by path."""
        ...

    def read_file(self, repo_id: str, path: str, revision: str) -> bytes | None:
        """A small file's first MiB at ``revision``; None when the file is not there."""
        ...

    def create_repo(self, repo_id: str, *, private: bool) -> None:
        """Create the model repository; an existing one is not an error."""
        ...

    def commit_operations(self, adds: Mapping[str, StagedFile], deletes: Sequence[str]) -> Any:
        """The operations of one commit (upload ``adds`` by path, delete ``deletes``), made
        once and passed to every :meth:`create_commit` attempt, so that files an attempt
        already uploaded are not sent again."""
        ...

    def create_commit(
        self,
        repo_id: str,
        operations: Any,
        *,
        message: str,
        description: str,
        revision: str,
        parent: str | None,
    ) -> str:
        """One commit on branch ``revision`` whose parent must be ``parent`` (the Hub refuses
        it when the branch moved); returns its commit id."""
        ...

    def create_tag(self, repo_id: str, tag: str, *, revision: str, message: str) -> None:
        """Tag commit ``revision``; an existing tag of that name is not an error."""
        ...

    def delete_tag(self, repo_id: str, tag: str) -> None: ...

    def create_branch(self, repo_id: str, branch: str, *, revision: str | None) -> None:
        """Branch ``branch`` at commit ``revision`` (main's head when None); an existing
        branch of that name is not an error."""
        ...


@dataclass(frozen=True)
class FileAction:
    path: str
    size: int
    state: FileState
    origin: str = "checkpoint"  # a staged file's origin; "hub"; why a kept file is kept


@dataclass(frozen=True)
class Plan:
    repo_id: str
    revision: str
    version: str
    private: bool
    repo_exists: bool
    head: str | None  # commit id of the branch head, None for an empty or missing repo
    tag_target: str | None  # commit the version's tag points at, if it exists
    tag_matches: bool  # the tag exists and holds exactly the staged files
    head_matches: bool  # the branch head holds exactly the staged files
    actions: tuple[FileAction, ...]
    commit_message: str
    offline: bool = False  # HF_HUB_OFFLINE: planned without the Hub, as for a new repository
    anonymous: bool = False  # no token: a private repository would look missing
    files: dict[str, StagedFile] | None = None  # what is uploaded (.gitattributes merged)
    keep: tuple[str, ...] = DEFAULT_KEEP  # push.keep: a re-plan after a failed commit uses it
    owned: bool = False  # the release owns the branch: it deletes every file it does not stage

    @property
    def needs_commit(self) -> bool:
        return not self.tag_matches and not self.head_matches

    @property
    def noop(self) -> bool:
        return self.tag_matches

    def count(self, state: FileState) -> int:
        return sum(1 for a in self.actions if a.state == state)

    @property
    def kept(self) -> frozenset[str]:
        """Files on the Hub that the release neither stages nor deletes."""
        return frozenset(a.path for a in self.actions if a.state == "kept")


@dataclass(frozen=True)
class PublishResult:
    plan: Plan
    commit: str
    commit_url: str
    created_commit: bool
    created_tag: bool
    verified: bool
    dry_run: bool = False


def make_api(token: str | None = None) -> HubBackend:
    """The Hub back-end at ``HF_ENDPOINT`` (huggingface_hub's ``HfApi``); the token comes from
    ``HF_TOKEN`` or huggingface_hub's own discovery. Every request it makes has connect and
    read timeouts (:func:`use_timeouts`), and a User-Agent that names r1release and its
    version (``r1release/0.1.0; hf_hub/...``), so the Hub's logs tell its uploads apart."""
    from huggingface_hub import HfApi

    from r1release import __version__

    use_timeouts()
    api = HfApi(
        endpoint=os.environ.get("HF_ENDPOINT") or None,
        token=token,
        library_name="r1release",
        library_version=__version__,
    )
    return HfHubBackend(api)


class HfHubBackend:
    """:class:`HubBackend` on huggingface_hub's ``HfApi``."""

    def __init__(self, api: Any) -> None:
        self.api = api

    @property
    def endpoint(self) -> str:
        return str(self.api.endpoint)

    def token(self) -> str | None:
        given = self.api.token
        return given if isinstance(given, str) else stored_token()

    def whoami(self, token: str) -> dict[str, Any]:
        return self.api.whoami(token=token)  # type: ignore[no-any-return]

    def repo_private(self, repo_id: str) -> bool | None:
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            info = self.api.repo_info(repo_id)
        except RepositoryNotFoundError:
            return None
        return bool(getattr(info, "private", False))

    def refs(self, repo_id: str) -> Refs | None:
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            refs = self.api.list_repo_refs(repo_id)
        except RepositoryNotFoundError:
            return None
        return Refs(
            {b.name: b.target_commit for b in refs.branches},
            {t.name: t.target_commit for t in refs.tags},
        )

    def list_files(self, repo_id: str, revision: str) -> dict[str, RemoteFile]:
        from huggingface_hub.hf_api import RepoFile

        entries = self.api.list_repo_tree(repo_id, recursive=True, revision=revision)
        return {
            e.path: RemoteFile(e.path, e.size, e.blob_id, e.lfs.sha256 if e.lfs else None)
            for e in entries
            if isinstance(e, RepoFile)
        }

    def read_file(self, repo_id: str, path: str, revision: str) -> bytes | None:
        import tempfile

        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        with tempfile.TemporaryDirectory(prefix="r1release-") as tmp:
            try:
                got = hf_hub_download(
                    repo_id,
                    path,
                    revision=revision,
                    local_dir=tmp,
                    endpoint=self.api.endpoint,
                    token=self.api.token,
                )
            except EntryNotFoundError:
                return None
            with open(got, "rb") as fh:
                return fh.read(1 << 20)

    def create_repo(self, repo_id: str, *, private: bool) -> None:
        self.api.create_repo(repo_id, private=private, exist_ok=True)

    def commit_operations(self, adds: Mapping[str, StagedFile], deletes: Sequence[str]) -> Any:
        """A file uploaded from disk declares the sha256 the deep scan found, so
        huggingface_hub does not read it again to hash it and the Hub refuses other bytes."""
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        ops: list[Any] = []
        for path, staged in adds.items():
            op = CommitOperationAdd(path, staged.data())
            if staged.content is None and staged.sha256:
                op.upload_info.sha256 = bytes.fromhex(staged.sha256)  # UploadInfo's own setter
            ops.append(op)
        ops.extend(CommitOperationDelete(path) for path in deletes)
        return ops

    def create_commit(
        self,
        repo_id: str,
        operations: Any,
        *,
        message: str,
        description: str,
        revision: str,
        parent: str | None,
    ) -> str:
        info = self.api.create_commit(
            repo_id,
            operations,
            commit_message=message,
            commit_description=description,
            revision=revision,
            parent_commit=parent,
        )
        return str(info.oid)

    def create_tag(self, repo_id: str, tag: str, *, revision: str, message: str) -> None:
        self.api.create_tag(repo_id, tag=tag, revision=revision, tag_message=message, exist_ok=True)

    def delete_tag(self, repo_id: str, tag: str) -> None:
        self.api.delete_tag(repo_id, tag=tag)

    def create_branch(self, repo_id: str, branch: str, *, revision: str | None) -> None:
        self.api.create_branch(repo_id, branch=branch, revision=revision, exist_ok=True)


def stored_token() -> str | None:
    """The token huggingface_hub finds: ``HF_TOKEN``, ``HF_TOKEN_PATH``, ``hf auth login``'s
    stored one; with ``HF_OIDC_RESOURCE``, a trusted-publishing token exchanged now (and
    cached for the process), raising when the exchange fails or cannot happen
    (:func:`require_trusted_publishing`)."""
    from huggingface_hub import get_token

    require_trusted_publishing()
    return get_token()


TRUSTED_PUBLISHING_SINCE = "1.19"  # the huggingface_hub that reads HF_OIDC_RESOURCE


def trusted_publishing_supported() -> bool:
    """Whether the installed huggingface_hub exchanges an OIDC id token for a Hub token (its
    ``_oidc`` module, from 1.19 on). Detected, not read from the version: what matters is
    the code that is there."""
    import importlib.util

    return importlib.util.find_spec("huggingface_hub._oidc") is not None


def require_trusted_publishing() -> None:
    """Refuse ``HF_OIDC_RESOURCE`` where huggingface_hub cannot honour it: an older one ignores
    the variable, and a release meant for trusted publishing would run anonymously or with
    whichever token it finds instead."""
    if not os.environ.get("HF_OIDC_RESOURCE") or trusted_publishing_supported():
        return
    from importlib.metadata import version

    raise PreflightError(
        f"HF_OIDC_RESOURCE is set (trusted publishing), but huggingface_hub "
        f"{version('huggingface_hub')} cannot exchange an OIDC id token",
        hint=f"install huggingface_hub>={TRUSTED_PUBLISHING_SINCE} "
        f"(pip install 'huggingface_hub>={TRUSTED_PUBLISHING_SINCE}'), or unset HF_OIDC_RESOURCE "
        "and pass a write token in HF_TOKEN",
    )


def card_metadata(values: Mapping[str, Any]) -> str:
    """A model card's YAML metadata as the Hub writes it (huggingface_hub's ``ModelCardData``):
    ``values`` are its fields, ``eval_results`` a list of ``EvalResult`` keyword arguments."""
    from huggingface_hub import EvalResult, ModelCardData

    fields = dict(values)
    if "eval_results" in fields:
        fields["eval_results"] = [EvalResult(**e) for e in fields["eval_results"]]
    return str(ModelCardData(**fields).to_yaml())


def request_timeouts() -> tuple[float, float]:
    """(connect, read) seconds for every Hub request: ``R1RELEASE_HUB_CONNECT_TIMEOUT``
    (default 10) and ``R1RELEASE_HUB_TIMEOUT`` (default 60; also the write timeout of each
    piece of an upload). huggingface_hub's own client waits forever."""

    def seconds(name: str, default: float) -> float:
        try:
            value = float(os.environ.get(name) or default)
        except ValueError:
            raise PreflightError(
                f"{name}={os.environ[name]!r} is not a number of seconds"
            ) from None
        if not 0 < value <= 24 * 3600:
            raise PreflightError(f"{name}={value:g} is out of range (0 to 86400 seconds)")
        return value

    return seconds("R1RELEASE_HUB_CONNECT_TIMEOUT", 10.0), seconds("R1RELEASE_HUB_TIMEOUT", 60.0)


_timeouts_set: list[tuple[float, float]] = []


def use_timeouts() -> None:
    """Give huggingface_hub's shared HTTP client connect/read/write timeouts, through its
    supported hook (``set_client_factory``): a Hub that accepts a connection and never answers
    ends in a timeout, which counts as transient and is retried like a 503."""
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import _http

    wanted = request_timeouts()
    if _timeouts_set == [wanted]:
        return
    connect, read = wanted
    base = _http.default_client_factory

    def factory() -> Any:
        client = base()
        # The client's own Timeout class: httpx2 in huggingface_hub 2.x, httpx in 1.x.
        client.timeout = type(client.timeout)(read, connect=connect, pool=connect)
        return client

    set_client_factory(factory)
    _timeouts_set[:] = [wanted]


def hub_offline() -> bool:
    """huggingface_hub's offline mode (``HF_HUB_OFFLINE=1``): no request may be sent."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def new_repo_plan(
    stage: Stage, *, revision: str = "main", offline: bool = False, anonymous: bool = False
) -> Plan:
    """The plan for a repository that does not exist yet: every staged file is new. With
    ``offline``, the Hub was not asked (``HF_HUB_OFFLINE``); with ``anonymous``, it was asked
    without a token, so the repository may exist and be private."""
    model = stage.model
    return Plan(
        model.repo_id,
        revision,
        stage.version,
        model.private,
        False,
        None,
        None,
        False,
        False,
        _actions(stage.files, {}, {}),
        _message(stage),
        offline=offline,
        anonymous=anonymous,
        files=stage.files,
    )


def plan_release(
    api: HubBackend,
    stage: Stage,
    *,
    revision: str = "main",
    access: Access | None = None,
    keep: Sequence[str] = DEFAULT_KEEP,
    owned: bool = False,
) -> Plan:
    """Compare the staged files with the Hub; sends only read (GET) requests. ``keep`` is
    ``push.keep``: what the release keeps of the files it does not stage (module docstring);
    with ``owned`` it keeps none of them (``.gitattributes`` aside), whatever the record says."""
    model = stage.model
    refs = _retry("reading the repository's refs", lambda: api.refs(model.repo_id), wrote=False)
    anonymous = access is not None and access.user is None
    if refs is None:
        return new_repo_plan(stage, revision=revision, anonymous=anonymous)
    head = refs.branches.get(revision)
    head_files = _remote_files(api, model.repo_id, head) if head else {}
    tag_target = refs.tags.get(stage.version)
    if tag_target == head:
        tag_files = head_files
    else:
        tag_files = _remote_files(api, model.repo_id, tag_target) if tag_target else {}
    files = _merged_gitattributes(api, stage, head, head_files)
    unstaged = _unstaged(api, model.repo_id, head, head_files, files, keep, owned)
    private = access.private if access is not None and access.private is not None else None
    return Plan(
        repo_id=model.repo_id,
        revision=revision,
        version=stage.version,
        private=model.private if private is None else private,
        repo_exists=True,
        head=head,
        tag_target=tag_target,
        tag_matches=tag_target is not None
        and _same(stage, tag_files, api, tag_target, keep, owned),
        head_matches=head is not None and _same(stage, head_files, api, head, keep, owned),
        actions=_actions(files, head_files, unstaged),
        commit_message=_message(stage),
        anonymous=anonymous,
        files=files,
        keep=tuple(keep),
        owned=owned,
    )


def preflight(
    api: HubBackend, repo_id: str, *, private: bool, publishing: bool, allow_public: bool = False
) -> Access:
    """Before the checkpoint is read: is there a token, does the Hub answer, may the token
    write to ``repo_id``, does its visibility match ``private``. A problem that would make
    publishing fail raises :class:`PreflightError` (one line naming the cause and the fix)
    when ``publishing``; a dry run only learns what it can (without a token a private
    repository is invisible, and the plan says so)."""
    token = api.token()  # given, or HF_TOKEN, HF_TOKEN_PATH, `hf auth login`'s stored token
    if token:
        remember_secret(token)  # scrubbed from every message, wherever it came from
    elif publishing:
        raise PreflightError(
            f"no Hub token to publish {repo_id} with",
            hint="set HF_TOKEN to a write token or run `hf auth login`; in GitHub Actions pass "
            "secrets.HF_TOKEN, or use trusted publishing (HF_OIDC_RESOURCE with "
            "`permissions: id-token: write`)",
        )
    me: dict[str, Any] = {}
    if token:
        try:
            me = _retry("checking the token (whoami)", lambda: api.whoami(token), wrote=False)
        except PublishError as exc:
            if exc.status == 401:
                raise PreflightError(
                    f"the Hub rejected the token for {repo_id} (HTTP 401): it is invalid, "
                    "expired or revoked",
                    hint="create a write token at huggingface.co/settings/tokens and set "
                    "HF_TOKEN, or run `hf auth login`",
                ) from None
            raise _unreachable(exc) from None
    user = me.get("name") if isinstance(me.get("name"), str) else None
    orgs = tuple(
        o["name"]
        for o in me.get("orgs") or ()
        if isinstance(o, dict) and isinstance(o.get("name"), str)
    )
    if publishing:
        _check_write_role(me, repo_id)
    try:
        is_private = _retry(f"reading {repo_id}", lambda: api.repo_private(repo_id), wrote=False)
    except PublishError as exc:
        if exc.status == 401:
            raise PreflightError(
                f"the Hub rejected the token reading {repo_id} (HTTP 401)",
                hint="set HF_TOKEN to a valid write token, or run `hf auth login`",
            ) from None
        raise _unreachable(exc) from None
    if is_private is None:
        owner = repo_id.split("/", 1)[0]
        if publishing and user is not None and owner != user and owner not in orgs:
            member = f"{user} or the organizations {', '.join(orgs)}" if orgs else user
            raise PreflightError(
                f"{repo_id} does not exist, and this token ({member}) cannot create it under "
                f"{owner!r}",
                hint=f"use a token of a member of {owner} with write access, create the "
                "repository first, or fix repo_id in release.yaml",
            )
        return Access(user, False, None, orgs)
    if publishing and private and not is_private and not allow_public:
        raise PreflightError(
            f"{repo_id} is public on the Hub, but release.yaml says private: true",
            hint="make the repository private in its Settings, set `private: false`, or pass "
            "--allow-public to publish into the public repository",
        )
    return Access(user, True, is_private, orgs)


def _check_write_role(me: Mapping[str, Any], repo_id: str) -> None:
    auth = me.get("auth") if isinstance(me.get("auth"), dict) else {}
    token = auth.get("accessToken") if isinstance(auth.get("accessToken"), dict) else {}
    role = token.get("role")
    if role == "read":
        raise PreflightError(
            f"the token ({token.get('displayName') or 'unnamed'}) is read-only: it cannot "
            f"publish {repo_id}",
            hint="create a token with the `write` role (or a fine-grained token with write "
            "access to the repository) and set HF_TOKEN, or run `hf auth login`",
        )
    if role != "fineGrained":
        return
    fine = token.get("fineGrained") if isinstance(token.get("fineGrained"), dict) else {}
    owner = repo_id.split("/", 1)[0]
    allowed = set()
    for scope in fine.get("scoped") or ():
        entity = scope.get("entity") if isinstance(scope, dict) else None
        if isinstance(entity, dict) and entity.get("name") in (owner, repo_id):
            allowed |= set(scope.get("permissions") or ())
    allowed |= {p for p in fine.get("global") or () if isinstance(p, str)}
    if not allowed & {"repo.write", "repo.content.write"}:
        raise PreflightError(
            f"the fine-grained token ({token.get('displayName') or 'unnamed'}) has no write "
            f"permission on {repo_id}",
            hint=f"give it `Write access to contents/settings of all repos` under {owner}, or "
            "of this repository, and rerun",
        )


def _unreachable(exc: PublishError) -> PreflightError:
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    return PreflightError(
        f"cannot use the Hub at {endpoint}: "
        + exc.message.removeprefix("Hub request failed while "),
        hint="check the network, proxies and HF_ENDPOINT, then rerun; nothing was read or sent",
    )


def publish(
    stage: Stage,
    *,
    api: HubBackend | None = None,
    revision: str = "main",
    force: bool = False,
    dry_run: bool = False,
    log: Log | None = None,
    access: Access | None = None,
    allow_public: bool = False,
    keep: Sequence[str] = DEFAULT_KEEP,
    tag: bool = True,
) -> PublishResult:
    """Release ``stage``: one commit, the version tag on it, then verify every hash.

    A ``revision`` branch that does not exist yet is created from main's head first.
    ``tag=False`` (a training checkpoint pushed to its own branch) makes no tag: the commit
    is verified as it is, and a branch that already holds the staged files is a no-op. That
    branch is the checkpoint's alone: everything else on it is deleted (``.gitattributes``
    aside), so a branch made from main's head drops main's own files (its
    ``.eval_results/``, its card's benchmark numbers) instead of keeping them as "not made by
    r1release".

    ``access`` is what :func:`preflight` found (it runs here when not given); ``keep`` is
    ``push.keep`` (files on the Hub it protects, module docstring). In offline mode
    (``HF_HUB_OFFLINE=1``) a dry run plans without the Hub (every file new) and a real
    release stops at once with a :class:`PublishError`.
    """
    if hub_offline():
        if not dry_run:
            raise PublishError(
                "HF_HUB_OFFLINE is set: the Hub cannot be reached to publish",
                hint="unset HF_HUB_OFFLINE to publish, or plan offline with a dry run",
            )
        return PublishResult(
            new_repo_plan(stage, revision=revision, offline=True), "", "", False, False, False, True
        )
    api = api or make_api()
    say = log or (lambda _msg: None)
    with retry_log(say):
        if access is None:
            access = preflight(
                api,
                stage.model.repo_id,
                private=stage.model.private,
                publishing=not dry_run,
                allow_public=allow_public,
            )
        return _publish(api, stage, revision, force, dry_run, say, access, tuple(keep), tag)


def _publish(
    api: HubBackend,
    stage: Stage,
    revision: str,
    force: bool,
    dry_run: bool,
    say: Log,
    access: Access,
    keep: tuple[str, ...],
    tag: bool = True,
) -> PublishResult:
    owned = not tag
    plan = plan_release(api, stage, revision=revision, access=access, keep=keep, owned=owned)
    if plan.tag_target and not plan.tag_matches and not force:
        raise TagConflict(
            f"{plan.repo_id}: tag {plan.version} already points at {plan.tag_target[:12]}, whose "
            "files differ from this release",
            hint="release a new version, or pass --force to move the tag",
        )
    endpoint = api.endpoint.rstrip("/")
    if dry_run or plan.noop:
        commit = plan.tag_target or plan.head or ""
        return PublishResult(
            plan,
            commit,
            _commit_url(endpoint, plan.repo_id, commit),
            False,
            False,
            plan.noop,
            dry_run,
        )
    _unchanged_since_scan(stage)  # before the first write
    if not plan.repo_exists:
        say(f"creating {'private' if plan.private else 'public'} repository {plan.repo_id}")
        _call("creating the repository", api.create_repo, plan.repo_id, private=plan.private)
        plan = plan_release(  # 1st commit
            api, stage, revision=revision, access=access, keep=keep, owned=owned
        )
    if plan.head is None and revision != "main":
        say(f"creating branch {revision} from main")
        _call("creating the branch", api.create_branch, plan.repo_id, revision, revision=None)
        plan = plan_release(api, stage, revision=revision, access=access, keep=keep, owned=owned)
    commit, created = plan.head or "", False
    if plan.needs_commit:
        say(
            f"committing {plan.count('new') + plan.count('changed')} file(s), "
            f"deleting {plan.count('deleted')}: {plan.commit_message}"
        )
        commit, created = _commit_once(api, stage, plan, say)
    elif not plan.tag_matches:
        then = "tagging it, no commit" if tag else "nothing to commit"
        say(f"{plan.revision} already holds these files at {commit[:12]}: {then}")
    if not tag:
        verify(api, stage, commit, kept=plan.kept)
        url = _commit_url(endpoint, plan.repo_id, commit)
        return PublishResult(plan, commit, url, created, False, True)
    if plan.tag_target and plan.tag_target != commit:  # --force: move the tag
        say(f"moving tag {plan.version} from {plan.tag_target[:12]} to {commit[:12]}")
        _call("deleting the old tag", api.delete_tag, plan.repo_id, plan.version)
    say(f"tagging {commit[:12]} as {plan.version}")
    _call(
        "creating the tag",
        api.create_tag,
        plan.repo_id,
        plan.version,
        revision=commit,
        message=plan.commit_message,
    )
    try:
        verify(api, stage, plan.version, kept=plan.kept)
    except PublishError as failure:
        refs = _retry("reading the tags", lambda: api.refs(plan.repo_id), wrote=True)
        target = refs.tags.get(plan.version) if refs else None
        if target == commit and isinstance(failure, VerificationMismatch):
            _untag(api, plan, commit, failure, say)  # the files at our new tag are wrong
        if target == commit:  # the check itself could not be made: say what is left
            raise PublishError(
                f"{plan.repo_id}: tag {plan.version} was created on {commit[:12]}, but reading "
                f"it back failed: {failure.message.removeprefix('Hub request failed while ')}",
                hint="run the release again: it finds the tag and verifies it",
            ) from None
        if target and target != commit:  # someone else's tag won the race
            raise TagConflict(
                f"{plan.repo_id}: tag {plan.version} was created at {target[:12]} by someone else "
                f"while releasing; this release's commit {commit[:12]} is on {plan.revision}, "
                "untagged",
                hint="find out who else releases this version; then release a new version, or "
                "pass --force to move the tag",
            ) from None
        raise
    return PublishResult(
        plan, commit, _commit_url(endpoint, plan.repo_id, commit), created, True, True
    )


def _untag(api: HubBackend, plan: Plan, commit: str, failure: PublishError, say: Log) -> None:
    """Verification found other files than staged at the tag just created: remove that tag,
    so no version tag ever names content that was not checked."""
    say(f"verification failed: removing tag {plan.version} from {commit[:12]}")
    try:
        _call(
            "removing the tag after a failed verification",
            api.delete_tag,
            plan.repo_id,
            plan.version,
        )
    except PublishError as exc:
        raise PublishError(
            f"{failure.message}; the tag {plan.version} on {commit[:12]} could not be removed "
            f"({exc.message})",
            hint=f"delete the tag {plan.version} on the Hub by hand, then run the release again",
        ) from None
    raise PublishError(
        f"{failure.message}; the tag {plan.version} was removed again",
        hint="run the release again: it re-checks and commits the staged files",
    ) from None


def _unchanged_since_scan(stage: Stage) -> None:
    changed = stage.changed_on_disk()
    if changed:
        raise StageChanged(
            f"{stage.model.checkpoint}: {', '.join(changed[:5])} changed on disk after it was "
            "checked; nothing was sent",
            hint="stop writing to the checkpoint, then run the release again (it re-checks)",
        )


def _commit_once(api: HubBackend, stage: Stage, plan: Plan, say: Log) -> tuple[str, bool]:
    """Make the release's single commit, even across retries, lost replies and rivals.

    The commit names the planned head as its parent, so the Hub refuses it (412) when the
    branch moved. After any failure the Hub is read again: if the branch already holds
    exactly the staged files — the commit landed but its reply was lost, or a concurrent
    release of the same files won — that commit is the release's and nothing is resent.
    """
    operations = _operations(api, plan)
    for attempt, delay in enumerate((*RETRY_DELAYS, None), 1):
        check_deadline("committing the release")
        _unchanged_since_scan(stage)
        try:
            oid = api.create_commit(
                plan.repo_id,
                operations,
                message=plan.commit_message,
                description=_description(stage),
                revision=plan.revision,
                parent=plan.head,
            )
            return oid, True
        except Exception as exc:
            current = plan_release(
                api, stage, revision=plan.revision, keep=plan.keep, owned=plan.owned
            )
            if current.tag_matches or current.head_matches:
                say(
                    "the Hub already holds these files (the commit landed, or a concurrent "
                    "release did); not committing again"
                )
                return (current.tag_target if current.tag_matches else current.head) or "", False
            if current.head != plan.head:
                raise PublishError(
                    f"{plan.repo_id}: {plan.revision} moved to {(current.head or '')[:12]} while "
                    "releasing (another commit landed); no tag was created",
                    hint="run the release again: it plans against the new head",
                ) from None
            if delay is None or not transient(exc):
                raise _hub_error("committing the release", exc) from None
            wait = min(_retry_after(exc) or delay, MAX_RETRY_AFTER)
            say(_retry_line("committing", exc, wait, attempt))
            _sleep(wait)
    raise AssertionError("unreachable")


def verify(
    api: HubBackend, stage: Stage, revision: str, *, kept: frozenset[str] = frozenset()
) -> None:
    """Every staged file is on the Hub at ``revision`` with the same hash, and nothing else
    but the files the plan ``kept`` (a ``.gitattributes`` of the checkpoint is there when the
    Hub's holds all its lines). Only the plan's kept files, not the keep rule: at the tag the
    record is this release's, by which any other file would count as someone else's."""
    remote = _remote_files(api, stage.model.repo_id, revision)
    wrong = [
        p
        for p, f in stage.files.items()
        if p not in remote or not _matches_at(api, stage, f, remote[p], revision)
    ]
    extra = sorted(set(remote) - set(stage.files) - KEEP_ON_HUB - kept)
    if wrong or extra:
        raise VerificationMismatch(
            f"verification failed at {revision}: "
            + "; ".join(
                filter(
                    None,
                    [
                        f"differs or missing: {', '.join(wrong[:5])}" if wrong else "",
                        f"unexpected: {', '.join(extra[:5])}" if extra else "",
                    ],
                )
            ),
            hint="running the release again is safe",
        )


# ------------------------------------------------------------------------------ helpers


def _remote_files(api: HubBackend, repo_id: str, revision: str) -> dict[str, RemoteFile]:
    return _retry(
        f"listing the files at {revision}",
        lambda: api.list_files(repo_id, revision),
        wrote=False,
    )


def _matches(local: StagedFile, remote: RemoteFile) -> bool:
    if local.size != remote.size:
        return False
    if remote.sha256 is not None:
        return remote.sha256 == local.sha256
    return remote.blob_id == local.git_sha1()


def _matches_at(
    api: HubBackend, stage: Stage, local: StagedFile, remote: RemoteFile, revision: str | None
) -> bool:
    if local.path == GITATTRIBUTES and revision is not None:
        held = _remote_text(api, stage.model.repo_id, GITATTRIBUTES, revision)
        return not _missing_lines(_local_bytes(local), held)
    return _matches(local, remote)


def _same(
    stage: Stage,
    remote: dict[str, RemoteFile],
    api: HubBackend,
    revision: str,
    keep: Sequence[str],
    owned: bool = False,
) -> bool:
    """``revision`` holds the staged files, and nothing else that this release would delete."""
    if not set(stage.files) <= set(remote):
        return False
    if not all(_matches_at(api, stage, f, remote[p], revision) for p, f in stage.files.items()):
        return False
    unstaged = _unstaged(api, stage.model.repo_id, revision, remote, stage.files, keep, owned)
    return None not in unstaged.values()


def _local_bytes(staged: StagedFile) -> bytes:
    if staged.content is not None:
        return staged.content
    with open(staged.source, "rb") as fh:  # type: ignore[arg-type]
        return fh.read()


def _missing_lines(local: bytes, held: bytes | None) -> list[bytes]:
    """Lines of the checkpoint's .gitattributes that the Hub's does not hold (order kept)."""
    have = {line.strip() for line in (held or b"").splitlines()}
    return [line for line in local.splitlines() if line.strip() and line.strip() not in have]


def _merged_gitattributes(
    api: HubBackend, stage: Stage, head: str | None, head_files: dict[str, RemoteFile]
) -> dict[str, StagedFile]:
    """The staged files, with a checkpoint's ``.gitattributes`` merged into the Hub's: the
    Hub's lines (its LFS rules) stay, the checkpoint's missing ones are appended; when none is
    missing the Hub's file is left as it is."""
    local = stage.files.get(GITATTRIBUTES)
    if local is None or head is None or GITATTRIBUTES not in head_files:
        return stage.files
    held = _remote_text(api, stage.model.repo_id, GITATTRIBUTES, head) or b""
    missing = _missing_lines(_local_bytes(local), held)
    if not missing:
        merged = held
    else:
        merged = held + (b"" if held.endswith(b"\n") or not held else b"\n")
        merged += b"\n".join(missing) + b"\n"
    files = dict(stage.files)
    files[GITATTRIBUTES] = replace(
        local,
        size=len(merged),
        sha256=hashlib.sha256(merged).hexdigest(),
        content=merged,
        origin="merged with the Hub's",
        source=None,
        stat=None,
    )
    return files


_texts: dict[tuple[str, str, str, str], bytes | None] = {}  # by commit id: they never change


def _remote_text(api: HubBackend, repo_id: str, path: str, revision: str) -> bytes | None:
    """A small file's bytes on the Hub at ``revision`` (None when it is not there); fetched
    once per commit id, as a plan compares the same commit several times."""
    key = (api.endpoint, repo_id, path, revision)
    if key in _texts:
        return _texts[key]
    text = _fetch_text(api, repo_id, path, revision)
    if re.fullmatch(r"[0-9a-f]{40}", revision):
        _texts[key] = text
    return text


def _fetch_text(api: HubBackend, repo_id: str, path: str, revision: str) -> bytes | None:
    return _retry(
        f"reading {path} at {revision[:12]}",
        lambda: api.read_file(repo_id, path, revision),
        wrote=False,
    )


def _actions(
    files: Mapping[str, StagedFile],
    remote: dict[str, RemoteFile],
    unstaged: Mapping[str, str | None],
) -> tuple[FileAction, ...]:
    actions = []
    for path, f in files.items():
        if path not in remote:
            state: FileState = "new"
        else:
            state = "unchanged" if _matches(f, remote[path]) else "changed"
        actions.append(FileAction(path, f.size, state, f.origin))
    for path, why in unstaged.items():
        gone: FileState = "deleted" if why is None else "kept"
        actions.append(FileAction(path, remote[path].size, gone, why or "hub"))
    return tuple(actions)


def _unstaged(
    api: HubBackend,
    repo_id: str,
    revision: str | None,
    remote: Mapping[str, RemoteFile],
    staged: Mapping[str, StagedFile],
    keep: Sequence[str],
    owned: bool = False,
) -> dict[str, str | None]:
    """Each file at ``revision`` that is not staged (``.gitattributes`` aside), sorted: why the
    release keeps it, or None when it deletes it (the rule is in the module docstring; on a
    branch the release ``owned``, every such file is deleted)."""
    paths = sorted(set(remote) - set(staged) - KEEP_ON_HUB)
    if owned:
        return dict.fromkeys(paths)
    made = _made(api, repo_id, revision, remote) if paths and revision else None
    return {path: _kept_because(path, keep, made) for path in paths}


def _kept_because(path: str, keep: Sequence[str], made: frozenset[str] | None) -> str | None:
    if made is not None and path in made:
        return None  # a previous release made it, and this one drops it
    if any(fnmatch.fnmatchcase(path, pattern) for pattern in keep):
        return "push.keep"
    return "not made by r1release" if made is not None else None


def _made(
    api: HubBackend, repo_id: str, revision: str, remote: Mapping[str, RemoteFile]
) -> frozenset[str] | None:
    """The paths the record at ``revision`` lists; None when there is no record."""
    if RECORD not in remote:
        return None
    paths = _listed(_remote_text(api, repo_id, RECORD, revision))
    if paths is None:
        raise RecordError(
            f"{repo_id}: {RECORD} at {revision[:12]} is not a record r1release wrote, so what "
            "the last release made is unknown",
            hint=f"restore {RECORD} from the last release's commit, or delete it on the Hub "
            "(the release then deletes every file push.keep does not protect); nothing was sent",
        )
    return paths


def _listed(raw: bytes | None) -> frozenset[str] | None:
    """The paths a record lists (stage.py writes it); None when it is not such a record."""
    try:
        entries = json.loads(raw or b"").get("files")
    except (ValueError, AttributeError, RecursionError):  # RecursionError: nested too deep
        return None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("path"), str) for e in entries
    ):
        return None
    return frozenset(e["path"] for e in entries)


def _operations(api: HubBackend, plan: Plan) -> Any:
    """The commit's operations: the new and changed files, then the deleted ones."""
    files = plan.files or {}
    adds = {a.path: files[a.path] for a in plan.actions if a.state in ("new", "changed")}
    deletes = [a.path for a in plan.actions if a.state == "deleted"]
    return api.commit_operations(adds, deletes)


def _message(stage: Stage) -> str:
    commit = stage.release.git_commit
    return f"Release {stage.version}" + (f" ({commit[:12]})" if commit else "")


def _description(stage: Stage) -> str:
    lines = [f"Released by r1release: {stage.model.name} {stage.version}."]
    if stage.release.git_commit:
        lines.append(f"Git commit: {stage.release.git_commit}")
    if stage.release.run_url:
        lines.append(f"Workflow run: {stage.release.run_url}")
    return "\n".join(lines)


def _commit_url(endpoint: str, repo_id: str, commit: str) -> str:
    return f"{endpoint}/{repo_id}/commit/{commit}" if commit else f"{endpoint}/{repo_id}"


def _call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, retrying transient failures; a PublishError otherwise."""
    return _retry(what, lambda: fn(*args, **kwargs), wrote=True)


class _PerThread(threading.local):
    """Where retries are announced and the release's deadline, for each thread apart: a
    checkpoint push in a worker thread and finalize's or the CLI's release in the main
    thread never announce through, or stop at, each other's."""

    def __init__(self) -> None:
        self.say: list[Log] = []  # the innermost retry_log last
        self.deadline: tuple[float, float] | None = None  # (monotonic time, seconds given)


_per_thread = _PerThread()


def set_deadline(seconds: float | None) -> None:
    """Stop the release this thread makes with a :class:`PublishError` once ``seconds`` have
    passed (checked before every Hub request and retry wait; each request is bounded by its
    timeouts)."""
    import time

    _per_thread.deadline = None if seconds is None else (time.monotonic() + seconds, seconds)


def check_deadline(what: str) -> None:
    import time

    deadline = _per_thread.deadline
    if deadline and time.monotonic() > deadline[0]:
        raise PublishError(
            f"the release's deadline ({deadline[1]:g} s) passed before {what}",
            hint="no tag was created by this step; run the release again (it completes what "
            "landed), or allow more time with --deadline",
        )


@contextmanager
def retry_log(say: Log) -> Iterator[None]:
    """Announce every retry wait in this thread through ``say`` while the block runs."""
    _per_thread.say.append(say)
    try:
        yield
    finally:
        _per_thread.say.pop()


def _retry_line(what: str, exc: BaseException, wait: float, attempt: int) -> str:
    status = _status(exc)
    cause = f"Hub answered {status}" if status else f"Hub unreachable ({type(exc).__name__})"
    return f"{cause} while {what}, retrying in {wait:.0f} s ({attempt}/{len(RETRY_DELAYS)})"


def _retry(what: str, attempt: Callable[[], Any], *, wrote: bool) -> Any:
    for n, delay in enumerate((*RETRY_DELAYS, None), 1):
        check_deadline(what)
        try:
            return attempt()
        except Exception as exc:
            if delay is None or not transient(exc):
                raise _hub_error(what, exc, wrote=wrote) from None
            wait = min(_retry_after(exc) or delay, MAX_RETRY_AFTER)
            if _per_thread.say:
                _per_thread.say[-1](_retry_line(what, exc, wait, n))
            _sleep(wait)
    raise AssertionError("unreachable")


def transient(exc: BaseException) -> bool:
    """A failure worth retrying: 408/429/5xx, or the connection failed or dropped (but not
    huggingface_hub's offline mode, which fails every request the same way). An error raised
    *from* another is judged by that cause: huggingface_hub reports a failed LFS upload as
    ``RuntimeError("Error while uploading …") from`` the transport's or the Hub's error (at
    huggingface_hub 1.x a dropped or refused LFS upload reaches r1release only that way)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        verdict = _transient_itself(cause)
        if verdict is not None:
            return verdict
        cause = cause.__cause__
    return False


def _transient_itself(exc: BaseException) -> bool | None:
    """:func:`transient` for ``exc`` alone; None when it says nothing (look at its cause)."""
    import json

    from huggingface_hub.errors import OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return False
    status = _status(exc)
    if status is not None:
        return status in TRANSIENT_STATUS
    if isinstance(exc, json.JSONDecodeError) and exc.doc.lstrip()[:1] in ("<", ""):
        return True  # an HTML error page (a gateway's 502) where the Hub sends JSON
    transport = ("httpx", "httpcore", "httpx2", "httpcore2")  # huggingface_hub 1.x and 2.x
    if type(exc).__module__.split(".")[0] in transport:
        return True
    return True if isinstance(exc, (ConnectionError, TimeoutError)) else None


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return float(headers.get("Retry-After"))
    except (TypeError, ValueError):
        return None


def _sleep(seconds: float) -> None:
    import time

    scale = _retry_scale()
    if seconds * scale > 0:
        time.sleep(seconds * scale)


def _retry_scale() -> float:
    return float(os.environ.get("R1RELEASE_RETRY_SCALE", "1") or 1)


def _hub_error(what: str, exc: Exception, wrote: bool = True) -> PublishError:
    from huggingface_hub.errors import HfHubHTTPError

    status = ""
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = f"HTTP {exc.response.status_code}: "
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    server = " ".join(str(getattr(exc, "server_message", None) or "").split())
    if detail.endswith(": None."):  # huggingface_hub's 403 line when X-Error-Message is unset
        detail = detail[: -len(": None.")]
    if server and server not in detail:
        detail = f"{detail.rstrip('.')}: {server}"
    if "Timeout" in type(exc).__name__:
        connect, read = request_timeouts()
        limit = connect if "Connect" in type(exc).__name__ else read
        detail = f"{type(exc).__name__}: no answer within {limit:g} s (R1RELEASE_HUB_TIMEOUT)"
    code = _status(exc)
    if code == 401:
        hint = "the Hub rejected the token: set HF_TOKEN to a valid write token, or run "
        hint += "`hf auth login`"
    elif code == 403 and wrote:
        hint = (
            "the token may not do this: check its write access to the repository (and the "
            "repository's settings); no tag was created, and running the release again is "
            "safe once it can"
        )
    elif wrote:
        hint = "no tag was created; running the release again is safe and completes it"
    else:
        hint = "nothing was written; check HF_ENDPOINT, the network and the token, then rerun"
    detail = redact(detail)[:300]  # redact before cutting: a cut token is no longer found
    error = PublishError(f"Hub request failed while {what}: {status}{detail}", hint=hint)
    error.status = _status(exc)
    return error


# ---------------------------------------------------------------------------------------
# Benchmark results in the Hub's format (r1release.evals builds the entries)
# ---------------------------------------------------------------------------------------


def eval_results_yaml(entries: Sequence[Mapping[str, Any]]) -> bytes:
    """One ``.eval_results/*.yaml`` file: ``entries`` are ``EvalResultEntry`` keyword
    arguments, serialised by huggingface_hub's own ``eval_result_entries_to_yaml`` (so the
    layout is the one the Hub reads, not a copy of it) and dumped as safe, sorted YAML."""
    import yaml
    from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml

    data = eval_result_entries_to_yaml([EvalResultEntry(**e) for e in entries])
    return yaml.safe_dump(data, sort_keys=True, allow_unicode=True, width=1000).encode()


# ---------------------------------------------------------------------------------------
# The local Hugging Face cache (an adapter's base model; r1release.adapters asks)
# ---------------------------------------------------------------------------------------


def cached_snapshot(repo_id: str) -> Path | None:
    """The directory of ``repo_id``'s ``main`` snapshot in the local Hugging Face cache
    when it holds its ``config.json``, else None. Reads the cache only: never a request,
    whatever ``HF_HUB_OFFLINE`` says (a check must not download a base model)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:  # not a Hub id (HFValidationError): a local path that is not there
        return None
    return Path(found).parent if isinstance(found, str) else None

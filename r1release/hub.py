"""Everything that talks to the Hub: plan, commit, tag, verify. The only huggingface_hub user.

A release is one commit (named after the version and the git commit) and a Hub tag equal to
the version on that commit, then a verification that every file on the Hub at the tag has
the staged hash. It is idempotent: when the tag already holds the staged content nothing is
sent; when the branch head already holds it (a run that failed after committing) only the
tag is created; a tag on different content stops the release unless ``force``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from r1release.errors import R1ReleaseError
from r1release.stage import Stage, StagedFile

KEEP_ON_HUB = frozenset({".gitattributes"})
# Transient failures (429, 5xx, dropped connections) are retried after these delays, or after
# the server's Retry-After when it sends one (capped). R1RELEASE_RETRY_SCALE scales them
# (tests set 0 so they never sleep for real); permanent 4xx errors are never retried.
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)
MAX_RETRY_AFTER = 60.0
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
FileState = Literal["new", "changed", "unchanged", "deleted"]
Log = Callable[[str], None]


class PublishError(R1ReleaseError):
    """A Hub request failed; the message says what failed and whether a rerun is safe."""


class TagConflict(R1ReleaseError):
    """The version's tag already points at different content."""


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    blob_id: str
    sha256: str | None  # for LFS files


@dataclass(frozen=True)
class FileAction:
    path: str
    size: int
    state: FileState
    origin: str = "checkpoint"


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

    @property
    def needs_commit(self) -> bool:
        return not self.tag_matches and not self.head_matches

    @property
    def noop(self) -> bool:
        return self.tag_matches

    def count(self, state: FileState) -> int:
        return sum(1 for a in self.actions if a.state == state)


@dataclass(frozen=True)
class PublishResult:
    plan: Plan
    commit: str
    commit_url: str
    created_commit: bool
    created_tag: bool
    verified: bool
    dry_run: bool = False


def make_api(token: str | None = None) -> Any:
    """An ``HfApi``; the token comes from ``HF_TOKEN`` or huggingface_hub's own discovery."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)


def hub_offline() -> bool:
    """huggingface_hub's offline mode (``HF_HUB_OFFLINE=1``): no request may be sent."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def new_repo_plan(stage: Stage, *, revision: str = "main", offline: bool = False) -> Plan:
    """The plan for a repository that does not exist yet: every staged file is new. With
    ``offline``, the Hub was not asked (``HF_HUB_OFFLINE``)."""
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
        _actions(stage, {}),
        _message(stage),
        offline=offline,
    )


def plan_release(api: Any, stage: Stage, *, revision: str = "main") -> Plan:
    """Compare the staged files with the Hub; sends only read (GET) requests."""
    model = stage.model
    refs = _retry(
        "reading the repository's refs", lambda: _refs_or_none(api, model.repo_id), wrote=False
    )
    if refs is None:
        return new_repo_plan(stage, revision=revision)
    heads = {b.name: b.target_commit for b in refs.branches}
    tags = {t.name: t.target_commit for t in refs.tags}
    head = heads.get(revision)
    head_files = _remote_files(api, model.repo_id, head) if head else {}
    tag_target = tags.get(stage.version)
    if tag_target == head:
        tag_files = head_files
    else:
        tag_files = _remote_files(api, model.repo_id, tag_target) if tag_target else {}
    return Plan(
        repo_id=model.repo_id,
        revision=revision,
        version=stage.version,
        private=model.private,
        repo_exists=True,
        head=head,
        tag_target=tag_target,
        tag_matches=tag_target is not None and _same(stage, tag_files),
        head_matches=head is not None and _same(stage, head_files),
        actions=_actions(stage, head_files),
        commit_message=_message(stage),
    )


def publish(
    stage: Stage,
    *,
    api: Any = None,
    revision: str = "main",
    force: bool = False,
    dry_run: bool = False,
    log: Log | None = None,
) -> PublishResult:
    """Release ``stage``: one commit, the version tag on it, then verify every hash.

    In offline mode (``HF_HUB_OFFLINE=1``) a dry run plans without the Hub (every file new)
    and a real release stops at once with a :class:`PublishError`.
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
    plan = plan_release(api, stage, revision=revision)
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
    if not plan.repo_exists:
        say(f"creating {'private' if plan.private else 'public'} repository {plan.repo_id}")
        _call(
            "creating the repository",
            api.create_repo,
            plan.repo_id,
            private=plan.private,
            exist_ok=True,
        )
        plan = plan_release(api, stage, revision=revision)  # the Hub's initial commit
    commit, created = plan.head or "", False
    if plan.needs_commit:
        say(
            f"committing {plan.count('new') + plan.count('changed')} file(s), "
            f"deleting {plan.count('deleted')}: {plan.commit_message}"
        )
        commit, created = _commit_once(api, stage, plan, say)
    if plan.tag_target and plan.tag_target != commit:  # --force: move the tag
        say(f"moving tag {plan.version} from {plan.tag_target[:12]} to {commit[:12]}")
        _call("deleting the old tag", api.delete_tag, plan.repo_id, tag=plan.version)
    say(f"tagging {commit[:12]} as {plan.version}")
    _call(
        "creating the tag",
        api.create_tag,
        plan.repo_id,
        tag=plan.version,
        revision=commit,
        tag_message=plan.commit_message,
        exist_ok=True,
    )
    try:
        verify(api, stage, plan.version)
    except PublishError:
        refs = _retry("reading the tags", lambda: _refs_or_none(api, plan.repo_id), wrote=True)
        target = {t.name: t.target_commit for t in refs.tags}.get(plan.version) if refs else None
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


def _refs_or_none(api: Any, repo_id: str) -> Any:
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        return api.list_repo_refs(repo_id)
    except RepositoryNotFoundError:
        return None


def _commit_once(api: Any, stage: Stage, plan: Plan, say: Log) -> tuple[str, bool]:
    """Make the release's single commit, even across retries, lost replies and rivals.

    The commit names the planned head as its parent, so the Hub refuses it (412) when the
    branch moved. After any failure the Hub is read again: if the branch already holds
    exactly the staged files — the commit landed but its reply was lost, or a concurrent
    release of the same files won — that commit is the release's and nothing is resent.
    """
    operations = _operations(stage, plan)
    for delay in (*RETRY_DELAYS, None):
        try:
            info = api.create_commit(
                plan.repo_id,
                operations,
                commit_message=plan.commit_message,
                commit_description=_description(stage),
                revision=plan.revision,
                parent_commit=plan.head,
            )
            return info.oid, True
        except Exception as exc:
            current = plan_release(api, stage, revision=plan.revision)
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
            say(f"committing: {_status(exc) or type(exc).__name__}; retrying in {wait:.0f}s")
            _sleep(wait)
    raise AssertionError("unreachable")


def verify(api: Any, stage: Stage, revision: str) -> None:
    """Every staged file is on the Hub at ``revision`` with the same hash, and nothing else."""
    remote = _remote_files(api, stage.model.repo_id, revision)
    wrong = [p for p, f in stage.files.items() if p not in remote or not _matches(f, remote[p])]
    extra = sorted(set(remote) - set(stage.files) - KEEP_ON_HUB)
    if wrong or extra:
        raise PublishError(
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


def _remote_files(api: Any, repo_id: str, revision: str) -> dict[str, RemoteFile]:
    from huggingface_hub.hf_api import RepoFile

    def listing() -> dict[str, RemoteFile]:
        entries = api.list_repo_tree(repo_id, recursive=True, revision=revision)
        return {
            e.path: RemoteFile(e.path, e.size, e.blob_id, e.lfs.sha256 if e.lfs else None)
            for e in entries
            if isinstance(e, RepoFile)
        }

    return _retry(f"listing the files at {revision}", listing, wrote=False)


def _matches(local: StagedFile, remote: RemoteFile) -> bool:
    if local.size != remote.size:
        return False
    if remote.sha256 is not None:
        return remote.sha256 == local.sha256
    return remote.blob_id == local.git_sha1()


def _same(stage: Stage, remote: dict[str, RemoteFile]) -> bool:
    if set(remote) - KEEP_ON_HUB != set(stage.files):
        return False
    return all(_matches(f, remote[p]) for p, f in stage.files.items())


def _actions(stage: Stage, remote: dict[str, RemoteFile]) -> tuple[FileAction, ...]:
    actions = []
    for path, f in stage.files.items():
        if path not in remote:
            state: FileState = "new"
        else:
            state = "unchanged" if _matches(f, remote[path]) else "changed"
        actions.append(FileAction(path, f.size, state, f.origin))
    for path in sorted(set(remote) - set(stage.files) - KEEP_ON_HUB):
        actions.append(FileAction(path, remote[path].size, "deleted", "hub"))
    return tuple(actions)


def _operations(stage: Stage, plan: Plan) -> list[Any]:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    ops: list[Any] = []
    for action in plan.actions:
        if action.state in ("new", "changed"):
            ops.append(CommitOperationAdd(action.path, stage.files[action.path].data()))
        elif action.state == "deleted":
            ops.append(CommitOperationDelete(action.path))
    return ops


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


def _retry(what: str, attempt: Callable[[], Any], *, wrote: bool) -> Any:
    for delay in (*RETRY_DELAYS, None):
        try:
            return attempt()
        except Exception as exc:
            if delay is None or not transient(exc):
                raise _hub_error(what, exc, wrote=wrote) from None
            _sleep(min(_retry_after(exc) or delay, MAX_RETRY_AFTER))
    raise AssertionError("unreachable")


def transient(exc: BaseException) -> bool:
    """A failure worth retrying: 408/429/5xx, or the connection failed or dropped (but not
    huggingface_hub's offline mode, which fails every request the same way)."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return False
    status = _status(exc)
    if status is not None:
        return status in TRANSIENT_STATUS
    return type(exc).__module__.split(".")[0] in ("httpx2", "httpcore2") or isinstance(
        exc, (ConnectionError, TimeoutError)
    )


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

    scale = float(os.environ.get("R1RELEASE_RETRY_SCALE", "1") or 1)
    if seconds * scale > 0:
        time.sleep(seconds * scale)


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
    hint = (
        "no tag was created; running the release again is safe and completes it"
        if wrote
        else "nothing was written; check HF_ENDPOINT, the network and the token, then rerun"
    )
    return PublishError(f"Hub request failed while {what}: {status}{detail[:300]}", hint=hint)

"""The Hub token never leaks: a canary in HF_TOKEN, every command and output format.

Each run looks for the canary (and a distinctive piece of it) in stdout, stderr, the model
card, the release plan, ``$GITHUB_STEP_SUMMARY``, ``$GITHUB_OUTPUT``, every file under the
test's directory, what the loopback Hub stored and its request log. The only place it may
appear is nowhere: a token from ``secrets.*`` is masked by the runner itself, so r1release
never echoes it, not even in an ``::add-mask::`` line. Only secrets the runner does not know
(the OIDC id token, the Hub token trusted publishing buys) get an ``::add-mask::`` line, on
stderr (the runner reads workflow commands there too), so stdout stays data. Cheap commands
run in-process; those that talk to the Hub run the real CLI in a subprocess (huggingface_hub
reads its settings at import).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from r1release.cli import main

import reliability
from helpers import REPO_ID, r1release, write_release_yaml
from hubserver import HubError

RELIABILITY_AREA = "Secrets"
record = pytest.fixture(reliability.record)

CANARY = "hf_CanaryLeakCheck_5e1d0c9b7a3f2468"
PIECES = (CANARY, CANARY[-12:])  # the whole token, or a recognisable part of it
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm9yZy9yMSJ9.OidcCanary7c4e2a9d1b"
MODEL = ("--model", "OpenR1-Tiny")
VERSION = ("--version", "v1.0.0")


@dataclass
class Workspace:
    root: Path
    ckpt: Path
    gh: Path  # GitHub's files: summary, outputs, event
    env: dict[str, str] = field(default_factory=dict)

    def github(self, **extra: str) -> dict[str, str]:
        return {
            "GITHUB_ACTIONS": "true",
            "GITHUB_STEP_SUMMARY": str(self.gh / "summary.md"),
            "GITHUB_OUTPUT": str(self.gh / "output.txt"),
            "GITHUB_WORKSPACE": str(self.root),
            **extra,
        }


@pytest.fixture
def ws(checkpoint, tmp_path) -> Workspace:
    ckpt = checkpoint("qwen2.5-base-after-chatml-sft")  # EOS and use_cache to fix
    (ckpt / "optimizer.pt").write_bytes(b"\x80\x04optimizer state")
    write_release_yaml(tmp_path, ckpt)
    gh = tmp_path / "gh"
    gh.mkdir()
    return Workspace(tmp_path, ckpt, gh)


def leaks(text: str) -> list[str]:
    """Lines holding the token (or a part of it): there must be none, not even a mask."""
    return [line for line in text.splitlines() if any(p in line for p in PIECES)]


def files_with_token(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(p.encode() in data for p in PIECES):
                found.append(str(path.relative_to(root)))
    return found


def hub_state(hub) -> str:
    """What the loopback Hub logged and stored: requests, commits, files."""
    parts = [json.dumps([entry.__dict__ for entry in hub.log], default=str)]
    try:
        repo = hub.repo(REPO_ID)
    except HubError:  # never created
        return parts[0]
    for commit in repo.commits.values():
        parts += [commit.title, commit.message, commit.author]
    parts += [data.decode("utf-8", "replace") for data in hub.files(REPO_ID).values()]
    return "\n".join(parts)


def leak_report(ws: Workspace, stdout: str, stderr: str, github: bool, hub=None) -> list[str]:
    """Where the token shows: stdout and stderr (but the mask command), any file written under
    the test's directory (the card with -o, fixed files, the step summary, the outputs,
    HF_HOME), and what the Hub logged and stored."""
    found = [f"stdout: {line}" for line in leaks(stdout)]
    found += [f"stderr: {line}" for line in leaks(stderr)]
    found += [f"stdout: workflow command {line[:40]}" for line in stdout.splitlines()
              if line.startswith("::")]  # fmt: skip
    found += [f"file {name}" for name in files_with_token(ws.root)]
    if hub is not None and any(p in hub_state(hub) for p in PIECES):
        found.append("the Hub's log or repository")
    return found


def checked(github: bool, hub=None) -> str:
    places = ["stdout", "stderr", "files"]
    places += ["step summary", "outputs"] if github else []
    places += ["Hub log and repo"] if hub is not None else []
    return "token absent from " + ", ".join(places)


# ------------------------------------------------------------------ in-process commands

# name, arguments, GitHub Actions?, expected exit code
IN_PROCESS = [
    ("check text", ("check",), False, 1),
    ("check json", ("check", "--format", "json"), False, 1),
    ("check github --debug", ("--debug", "check"), True, 1),
    ("check --deep json github", ("check", "--deep", "--format", "json"), True, 1),
    ("fix --dry-run", ("fix", "--dry-run"), False, 0),
    ("fix --dry-run github --debug", ("--debug", "fix", "--dry-run"), True, 0),
    ("fix", ("fix",), True, 0),
    ("card stdout", ("card", "--version", "v1.0.0"), False, 0),
    ("card -o github --debug", ("--debug", "card", "-o", "{root}/README.md"), True, 0),
    ("schema", ("schema",), True, 0),
    ("rules text", ("rules",), False, 0),
    ("rules json github", ("rules", "--format", "json"), True, 0),
    ("push without a version (usage error)", ("push",), True, 2),
]


@pytest.mark.parametrize(
    ("name", "args", "github", "code"), IN_PROCESS, ids=[c[0] for c in IN_PROCESS]
)
def test_token_not_printed_in_process(ws, monkeypatch, record, name, args, github, code):
    monkeypatch.chdir(ws.root)
    env = {"HF_TOKEN": CANARY} | (ws.github() if github else {})
    argv = [a.replace("{root}", str(ws.root)) for a in args]
    result = CliRunner().invoke(main, argv, env=env)
    found = leak_report(ws, result.stdout, result.stderr, github)
    message = "; ".join(found) or checked(github)
    injected = f"HF_TOKEN canary; r1release {' '.join(args)}".replace("{root}/", "")
    record(name, injected, result, message=message)
    assert result.exit_code == code, result.output
    assert not found


DATA_COMMANDS = [
    ("card > README.md", ("card", "--version", "v1.0.0"), "card"),
    ("check --format json > report.json", ("check", "--format", "json"), "json"),
    ("check --deep --format json", ("check", "--deep", "--format", "json"), "json"),
    ("schema > schema.json", ("schema",), "json"),
    ("rules --format json", ("rules", "--format", "json"), "json"),
]


@pytest.mark.parametrize(("name", "args", "kind"), DATA_COMMANDS, ids=[c[0] for c in DATA_COMMANDS])
def test_stdout_is_data_in_github_actions(ws, monkeypatch, record, name, args, kind):
    """In GitHub Actions, with the Hub token and an unregistered OIDC id token in the
    environment, a command whose stdout is data writes only data there: the card or JSON,
    no workflow command, no token. The id token's mask line goes to stderr, which the runner
    reads for workflow commands as it reads stdout (actions/runner's ScriptHandler hands
    both streams to its command manager)."""
    monkeypatch.chdir(ws.root)
    env = {"HF_TOKEN": CANARY, "HF_OIDC_ID_TOKEN": ID_TOKEN} | ws.github()
    result = CliRunner().invoke(main, list(args), env=env)
    out = result.stdout
    problems = [f"stdout: {line[:60]}" for line in out.splitlines() if line.startswith("::")]
    problems += [f"{where}: the token" for where, text in (("stdout", out),
                 ("stderr", result.stderr)) if CANARY in text]  # fmt: skip
    if ID_TOKEN in out:
        problems.append("stdout: the OIDC id token")
    if kind == "json":
        try:
            json.loads(out)
        except ValueError as exc:
            problems.append(f"stdout is not JSON: {exc}")
    else:
        from huggingface_hub import ModelCard

        card = ws.root / "README.md"
        card.write_text(out)
        if ModelCard.load(card).data.model_name != "OpenR1-Tiny" or not out.startswith("---\n"):
            problems.append("stdout is not the model card")
        card.unlink()
    masks = [line for line in result.stderr.splitlines() if line.startswith("::add-mask::")]
    if masks != [f"::add-mask::{ID_TOKEN}"]:
        problems.append(f"stderr: expected one mask line, for the id token only: {len(masks)}")
    record(name, "HF_TOKEN and HF_OIDC_ID_TOKEN canaries in GitHub Actions", result,
           message="; ".join(problems) or f"stdout is valid {kind}, tokens absent")  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    assert not problems


def test_token_in_an_error_message_is_scrubbed(ws, monkeypatch, record):
    """A token that reaches an error message (here: pasted into release.yaml) is redacted,
    in the one-line error and in the --debug traceback."""
    text = (ws.root / "release.yaml").read_text()
    (ws.root / "release.yaml").write_text(
        text.replace(f"repo_id: {REPO_ID}", f"repo_id: 'https://user:{CANARY}@hf.co/x'")
    )
    monkeypatch.chdir(ws.root)
    result = CliRunner().invoke(main, ["--debug", "check"], env={"HF_TOKEN": CANARY})
    (ws.root / "release.yaml").write_text(text)  # not a leak of ours: the file is the user's
    found = leak_report(ws, result.stdout, result.stderr, github=False)
    record(
        "token in a release.yaml error, --debug",
        "the canary pasted into repo_id; --debug traceback",
        result,
        message="; ".join(found) or f"redacted to *** ({checked(False)})",
    )
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "***" in result.stderr
    assert not found


def test_internal_error_traceback_is_scrubbed(ws, monkeypatch, record):
    """An unexpected exception whose text holds the token: --debug traceback and message."""

    def explode(*args, **kwargs):
        raise RuntimeError(f"request failed: Authorization: Bearer {CANARY}")

    monkeypatch.setattr("r1release.checker.check", explode)
    monkeypatch.chdir(ws.root)
    result = CliRunner().invoke(main, ["--debug", "check"], env={"HF_TOKEN": CANARY} | ws.github())
    found = leak_report(ws, result.stdout, result.stderr, github=True)
    record(
        "internal error holding the token, --debug, github",
        "an exception whose text holds the token; --debug traceback",
        result,
        message="; ".join(found) or f"redacted to *** ({checked(True)})",
    )
    assert result.exit_code == 3
    assert "Traceback" in result.stderr and "Bearer ***" in result.stderr
    assert not found


# ------------------------------------------------------------------ the real CLI and the Hub

DISPATCH = {"inputs": {"model": "", "version": "v1.0.0", "dry_run": "true"}}
ECHO = f'{{"error": "Authorization header Bearer {CANARY} is not allowed here"}}'

# name, arguments, GitHub Actions?, Hub fault to inject, expected exit code
SUBPROCESS = [
    ("push --dry-run", ("push", *MODEL, *VERSION, "--dry-run"), False, None, 0),
    ("release --dry-run github (workflow_dispatch) --debug", ("--debug", "release"), True,
     None, 0),
    ("push github --debug", ("--debug", "push", *MODEL, *VERSION), True, None, 0),
    ("release --publish", ("release", *MODEL, *VERSION, "--publish"), False, None, 0),
    ("commit fails, body and header echo the token, --debug github",
     ("--debug", "release", *MODEL, *VERSION, "--publish"), True,
     dict(method="POST", path_regex=r"/commit/", status=400, body=ECHO,
          headers={"X-Error-Message": f"bad Authorization: Bearer {CANARY}"}), 1),
    ("refs read fails (retried 5xx) echoing the token",
     ("release", *MODEL, *VERSION, "--publish"), False,
     dict(method="GET", path_regex=r"/refs", status=503, times=100, body=ECHO,
          headers={"X-Error-Message": f"Bearer {CANARY}"}), 1),
    ("check --debug github (real process)", ("--debug", "check", "--format", "github"), True,
     None, 1),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "args", "github", "fault", "code"), SUBPROCESS, ids=[c[0] for c in SUBPROCESS]
)
@pytest.mark.e2e
def test_token_not_leaked_by_the_cli(ws, hub, record, name, args, github, fault, code):
    env = {}
    if github:
        event = ws.gh / "event.json"
        event.write_text(json.dumps(DISPATCH))
        env = ws.github(GITHUB_EVENT_NAME="workflow_dispatch", GITHUB_EVENT_PATH=str(event))
    if fault:
        hub.fail(**fault)
    result = r1release(hub, ws.root, *args, token=CANARY, env=env)
    injected = f"HF_TOKEN canary; r1release {' '.join(args)}" + (
        f"; Hub answers {fault['status']} echoing the token" if fault else ""
    )
    found = leak_report(ws, result.stdout, result.stderr, github, hub)
    record(name, injected, result, message="; ".join(found) or checked(github, hub))
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr or "--debug" in args
    assert not found
    if github and code == 0:
        outputs = (ws.gh / "output.txt").read_text()
        assert "repo_id=" in outputs and not leaks(outputs)
        summary = (ws.gh / "summary.md").read_text()
        assert "r1release" in summary and not leaks(summary)
    assert not [k for k in os.environ if os.environ[k] == CANARY]


# ------------------------------------------------------------------ trusted publishing (OIDC)


def _trusted_env(ws: Workspace) -> dict[str, str]:
    event = ws.gh / "event.json"
    event.write_text(json.dumps({"inputs": {"model": "", "version": "v1.0.0"}}))
    return ws.github(
        GITHUB_EVENT_NAME="workflow_dispatch",
        GITHUB_EVENT_PATH=str(event),
        HF_OIDC_RESOURCE=REPO_ID,
        HF_OIDC_ID_TOKEN=ID_TOKEN,
    )


@pytest.mark.e2e
def test_trusted_publishing_masks_the_exchanged_token(ws, hub, record):
    hub.tokens = {}  # only a token from the OIDC exchange is accepted
    result = r1release(hub, ws.root, "--debug", "release", token=None, env=_trusted_env(ws))
    [issued] = hub.oidc_tokens
    lines = result.stderr.splitlines()
    masks = [line for line in lines if line.startswith("::add-mask::")]
    assert not [line for line in result.stdout.splitlines() if line.startswith("::")]
    shown = [
        line for line in (result.stdout + result.stderr).splitlines()
        if line not in masks and (issued in line or ID_TOKEN[-16:] in line)
    ]  # fmt: skip
    files = [
        str(path.relative_to(ws.root))
        for path in ws.root.rglob("*")
        if path.is_file() and any(s.encode() in path.read_bytes() for s in (issued, ID_TOKEN))
    ]
    stored = [s for s in (issued, ID_TOKEN[-16:]) if s in hub_state(hub)]
    found = shown + [f"file {f}" for f in files] + [f"Hub: {s[:7]}…" for s in stored]
    record(
        "trusted publishing: the OIDC id token and the Hub token it buys",
        "HF_OIDC_RESOURCE + HF_OIDC_ID_TOKEN canary; release in GitHub Actions, --debug",
        result,
        message="; ".join(found) or "both masked first; absent from output, files, Hub",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert hub.oidc_tokens[issued] == REPO_ID  # scoped to the released repository
    assert f"::add-mask::{ID_TOKEN}" in masks and f"::add-mask::{issued}" in masks
    assert lines[: len(masks)] == masks  # the masks come before anything else on stderr
    assert not found


@pytest.mark.e2e
def test_failed_token_exchange_is_one_clear_line(ws, hub, record):
    hub.fail("POST", r"^/oauth/token$", status=401, body=f'{{"error": "bad token {ID_TOKEN}"}}',
             headers={"X-Error-Message": f"invalid subject_token {ID_TOKEN}"})  # fmt: skip
    result = r1release(hub, ws.root, "release", token=None, env=_trusted_env(ws))
    record(
        "trusted publishing: the OIDC exchange is refused, echoing the id token",
        "POST /oauth/token -> 401 with the id token in body and header",
        result,
    )
    assert result.returncode == 1
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "OIDC token exchange failed" in error and "id-token: write" in error
    assert "Traceback" not in result.stderr
    assert ID_TOKEN[-16:] not in result.stdout
    assert ID_TOKEN[:24] not in result.stderr.replace(f"::add-mask::{ID_TOKEN}", "")
    assert hub.writes() == []


def test_library_errors_never_hold_the_token(ws, monkeypatch, record):
    """In a training script there is no CLI to scrub output: ``r1release.load_config`` with
    the token pasted into ``repo_id`` raises a ConfigError whose text is already redacted."""
    import r1release

    monkeypatch.setenv("HF_TOKEN", CANARY)
    text = (ws.root / "release.yaml").read_text()
    bad = ws.root / "bad.yaml"
    bad.write_text(text.replace(f"repo_id: {REPO_ID}", f"repo_id: 'https://u:{CANARY}@hf.co/x'"))
    with pytest.raises(r1release.ConfigError) as caught:
        r1release.load_config(bad)
    bad.unlink()  # not a leak of ours: the file is the user's
    error = caught.value
    found = leaks(f"{error}\n{error.message}\n{error.hint}\n{error.args}")
    record(
        "library error (no CLI) holding the token",
        "the canary pasted into repo_id; r1release.load_config() in-process",
        str(error),
        message="; ".join(found) or "token absent from the exception (redacted to ***)",
    )
    assert "repo_id" in str(error) and "***" in str(error)
    assert not found

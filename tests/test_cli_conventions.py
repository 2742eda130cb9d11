"""The CLI conventions of the field (click, ``hf``, twine), one table row each (issue 15):
global options after the subcommand too, ``NO_COLOR`` and ``--color/--no-color``, ``-q`` and
``-v``, one publish rule and one version rule for ``push`` and ``release``, every error one
line (click's usage errors included, exit 2), a closed pipe that exits quietly, ``rules``
without repeated flags, and a ``fix --dry-run`` diff that ``git apply`` takes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from r1release.cli import main

from helpers import REPO_ID, Run, run_cli, write_release_yaml

MODEL = ("--model", "OpenR1-Tiny")
VERSION = ("--version", "v1.0.0")
ANSI = "\x1b["


@dataclass(frozen=True)
class Case:
    """One convention: the command line (``{ckpt}`` is the checkpoint, ``{cfg}`` a
    release.yaml outside the working directory), its environment, whether stdout is a
    terminal, and what must hold of the run."""

    id: str
    args: tuple[str, ...]
    expect: Callable[[Run], None]
    env: dict[str, str] = field(default_factory=dict)
    tty: bool = False
    cwd_config: bool = True  # release.yaml in the working directory


@pytest.fixture
def workspace(checkpoint: Any, tmp_path: Path) -> dict[str, Path]:
    """A checkpoint with fixable errors (EOS, use_cache), its release.yaml in ``work/`` and a
    copy of that release.yaml in ``elsewhere/``; an empty directory ``bare/``."""
    path = checkpoint("qwen2.5-base-after-chatml-sft")
    work, elsewhere, bare = (tmp_path / n for n in ("work", "elsewhere", "bare"))
    for d in (work, elsewhere, bare):
        d.mkdir()
    write_release_yaml(work, path, push="{fix: true}")
    shutil.copy(work / "release.yaml", elsewhere / "release.yaml")
    return {"ckpt": path, "cfg": elsewhere / "release.yaml", "work": work, "bare": bare}


def _cli(ws: dict[str, Path], case: Case, monkeypatch: Any) -> Run:
    args = [a.format(ckpt=ws["ckpt"], cfg=ws["cfg"]) for a in case.args]
    for name in ("NO_COLOR", "CI", "GITHUB_ACTIONS", "R1RELEASE_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ws["work"] if case.cwd_config else ws["bare"])
    result = CliRunner().invoke(main, args, color=case.tty)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def _code(code: int, *also: Callable[[Run], None]) -> Callable[[Run], None]:
    def expect(run: Run) -> None:
        assert run.returncode == code, (run.returncode, run.stdout, run.stderr)
        for check in also:
            check(run)

    return expect


def _out(text: str, present: bool = True) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        assert (text in run.stdout) is present, run.stdout

    return check


def _err(text: str, present: bool = True) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        assert (text in run.stderr) is present, run.stderr

    return check


def _one_error_line(expected: str) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        assert run.stderr.splitlines() == [expected], run.stderr
        assert run.stdout == ""

    return check


def _only_error_findings(run: Run) -> None:
    lines = run.stdout.splitlines()
    assert lines and all(" (R" in line and "checkpoint:" not in line for line in lines), lines
    assert not any(line.startswith(("errors", "warnings", "0 errors")) for line in lines)
    assert "pad-not-stop" not in run.stdout and run.stderr == ""


def _no_repeated_flag(run: Run) -> None:
    for line in run.stdout.splitlines():
        for flag in ("(deep)", "(fixable)", "(opt-in: --smoke)"):
            assert line.count(flag) <= 1, line
        assert line.count("deep") <= 1 and line.count("--smoke") <= 1, line


CHECK = ("check", *MODEL)
CASES = [
    # 1. global options after the subcommand, with the meaning they have before it
    Case("--debug before", ("--debug", "check", "missing"), _code(2, _err("Traceback"))),
    Case("--debug after", ("check", "missing", "--debug"), _code(2, _err("Traceback"))),
    Case("no --debug", ("check", "missing"), _code(2, _err("Traceback", False))),
    Case(
        "--config before",
        ("--config", "{cfg}", *CHECK),
        _code(1, _out("eos-alignment")),
        cwd_config=False,
    ),
    Case(
        "--config after",
        (*CHECK, "--config", "{cfg}"),
        _code(1, _out("eos-alignment")),
        cwd_config=False,
    ),
    Case(
        "--config after wins",
        ("--config", "nowhere.yaml", *CHECK, "--config", "{cfg}"),
        _code(1, _out("eos-alignment")),
        cwd_config=False,
    ),
    Case("no --config", CHECK, _code(2, _err("release.yaml: not found")), cwd_config=False),
    # 2. color: a terminal gets it, NO_COLOR (any value) turns it off, the flags override
    Case("color on a terminal", CHECK, _code(1, _out(ANSI)), tty=True),
    Case("no color in a pipe", CHECK, _code(1, _out(ANSI, False))),
    Case("NO_COLOR", CHECK, _code(1, _out(ANSI, False)), env={"NO_COLOR": "1"}, tty=True),
    Case("NO_COLOR=0 too", CHECK, _code(1, _out(ANSI, False)), env={"NO_COLOR": "0"}, tty=True),
    Case("NO_COLOR empty", CHECK, _code(1, _out(ANSI)), env={"NO_COLOR": ""}, tty=True),
    Case("--color over NO_COLOR", (*CHECK, "--color"), _code(1, _out(ANSI)), env={"NO_COLOR": "1"}),
    Case("--color before", ("--color", *CHECK), _code(1, _out(ANSI))),
    Case("--no-color on a terminal", (*CHECK, "--no-color"), _code(1, _out(ANSI, False)), tty=True),
    # 3. -q: only errors (and data); -v: more detail
    Case("check -q", (*CHECK, "-q"), _code(1, _only_error_findings)),
    Case("-q check", ("-q", *CHECK), _code(1, _only_error_findings)),
    Case("check", CHECK, _code(1, _out("checkpoint: "), _out("skipped (", False))),
    Case("check -v", (*CHECK, "-v"), _code(1, _out("skipped ("), _out("smoke-generate"))),
    Case("-v then -q: the last wins", ("-v", *CHECK, "-q"), _code(1, _only_error_findings)),
    Case("check --deep", (*CHECK, "--deep"), _code(1, _err("deep scan:"))),
    Case("check --deep -q", (*CHECK, "--deep", "-q"), _code(1, lambda r: _no_stderr(r))),
    Case(
        "fix --dry-run -q",
        ("fix", *MODEL, "--dry-run", "-q"),
        _code(0, _out("+++ b/"), lambda r: _no_stderr(r)),
    ),
    Case(
        "fix --dry-run",
        ("fix", *MODEL, "--dry-run"),
        _code(0, _out("+++ b/"), _err("would change"), _err("would fix:", False)),
    ),
    Case("fix --dry-run -v", ("fix", *MODEL, "--dry-run", "-v"), _code(0, _err("would fix: eos-"))),
    Case("fix -q", ("fix", *MODEL, "-q"), _code(0, lambda r: _silent(r))),
    Case("fix", ("fix", *MODEL), _code(0, _out("fixed "))),
    Case(
        "fix --format json -q",
        ("fix", *MODEL, "--dry-run", "--format", "json", "-q"),
        _code(0, lambda r: _json_only(r)),
    ),
    Case("card -o -q", ("card", *MODEL, "-o", "card.md", "-q"), _code(0, lambda r: _silent(r))),
    Case("card -o", ("card", *MODEL, "-o", "card.md"), _code(0, _err("wrote card.md"))),
    # 5. every error one line, exit 2 for usage errors
    Case(
        "unknown option",
        ("check", "--deepx"),
        _code(
            2,
            _one_error_line(
                "error: no such option: --deepx (did you mean --deep or --help?); "
                "see r1release check --help"
            ),
        ),
    ),
    Case(
        "unknown group option",
        ("--bogus", "check"),
        _code(
            2,
            _one_error_line(
                "error: no such option: --bogus (did you mean --verbose?); see r1release --help"
            ),
        ),
    ),
    Case(
        "unknown command",
        ("chek",),
        _code(
            2,
            _one_error_line(
                "error: no such command: chek (did you mean check or schema?); see r1release --help"
            ),
        ),
    ),
    Case(
        "bad choice",
        ("check", "--format", "xml"),
        _code(
            2,
            _one_error_line(
                "error: invalid value for '--format': 'xml' is not one of 'text', 'json', "
                "'github'; see r1release check --help"
            ),
        ),
    ),
    Case(
        "missing option",
        ("push",),
        _code(
            2,
            _one_error_line("error: missing option '--version'; see r1release push --help"),
        ),
    ),
    Case("a library error", ("check", "missing"), _code(2, lambda r: _one_line(r))),
    # 7. rules names each flag once
    Case("rules", ("rules",), _code(0, _no_repeated_flag, _out("(deep, needs torch)"))),
]


def _no_stderr(run: Run) -> None:
    assert run.stderr == "", run.stderr


def _json_only(run: Run) -> None:
    assert json.loads(run.stdout)["dry_run"] is True and run.stderr == "", run.stderr


def _silent(run: Run) -> None:
    assert run.stdout == "" and run.stderr == "", (run.stdout, run.stderr)


def _one_line(run: Run) -> None:
    [line] = run.stderr.splitlines()
    assert line.startswith("error: ") and run.stdout == ""


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_convention(case: Case, workspace: dict[str, Path], monkeypatch: Any) -> None:
    case.expect(_cli(workspace, case, monkeypatch))


def test_help_names_the_global_options_of_every_command() -> None:
    for name, command in {"r1release": main, **main.commands}.items():
        names = {opt for p in command.params for opt in p.opts + p.secondary_opts}
        assert {"--config", "--debug", "--color", "--no-color", "-q", "-v"} <= names, name


# ------------------------------------------------------------------ 4. push and release


def _published(hub: Any) -> bool:
    return bool(hub.writes())


PUBLISH_CASES = [
    # (id, command, flag, env, publishes)
    ("push outside CI", "push", (), {}, False),
    ("release outside CI", "release", (), {}, False),
    ("push in CI", "push", (), {"CI": "true"}, True),
    ("release in CI", "release", (), {"CI": "true"}, True),
    ("push --publish", "push", ("--publish",), {}, True),
    ("release --publish", "release", ("--publish",), {}, True),
    ("push --dry-run in CI", "push", ("--dry-run",), {"CI": "true"}, False),
    ("release --dry-run in CI", "release", ("--dry-run",), {"CI": "true"}, False),
]


@pytest.mark.parametrize(
    ("command", "flag", "env", "publishes"),
    [c[1:] for c in PUBLISH_CASES],
    ids=[c[0] for c in PUBLISH_CASES],
)
def test_push_and_release_share_one_publish_rule(
    hub: Any, workspace: dict[str, Path], monkeypatch: Any, command, flag, env, publishes
) -> None:
    run = run_cli(monkeypatch, hub, workspace["work"], command, *MODEL, *VERSION, *flag, env=env)
    assert run.returncode == 0, run.stderr
    assert _published(hub) is publishes, hub.writes()
    assert ("dry run: nothing was sent" in run.stdout) is not publishes
    if publishes:
        assert "v1.0.0" in hub.repo(REPO_ID).tags


def test_a_dispatch_asking_for_a_dry_run_holds_for_push_too(
    hub: Any, workspace: dict[str, Path], monkeypatch: Any
) -> None:
    event = workspace["work"] / "event.json"
    event.write_text('{"inputs": {"dry_run": true}}')
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "workflow_dispatch"}
    run = run_cli(
        monkeypatch, hub, workspace["work"], "push", *MODEL, *VERSION,
        env=env | {"GITHUB_EVENT_PATH": str(event)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert not _published(hub)


VERSIONS = [
    # (version, accepted)
    ("v1.2", True),
    ("v1.3.0-rc.1", True),
    ("1.2", False),
    ("1.3.0", False),
    ("v1..2", False),
]


@pytest.mark.parametrize(("version", "accepted"), VERSIONS)
def test_push_and_release_share_one_version_rule(
    hub: Any, workspace: dict[str, Path], monkeypatch: Any, version: str, accepted: bool
) -> None:
    """push --version, release --version and release --tag: the same strings, refused with
    the same line."""
    runs = {
        form: run_cli(monkeypatch, hub, workspace["work"], *args, "--dry-run")
        for form, args in {
            "push --version": ("push", *MODEL, "--version", version),
            "release --version": ("release", *MODEL, "--version", version),
            "release --tag": ("release", "--tag", version),
        }.items()
    }
    codes = {form: run.returncode for form, run in runs.items()}
    assert set(codes.values()) == {0 if accepted else 2}, codes
    if not accepted:
        errors = {form: run.stderr.strip() for form, run in runs.items()}
        assert len(set(errors.values())) == 1, errors
        assert errors["push --version"].startswith(f"error: version '{version}' is not a version")


def test_push_quiet_prints_the_outcome_only(
    hub: Any, workspace: dict[str, Path], monkeypatch: Any
) -> None:
    run = run_cli(monkeypatch, hub, workspace["work"], "push", *MODEL, *VERSION, "-q")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "dry run: nothing was sent (use --publish, or run in CI, to release)"
    ]
    assert run.stderr == ""


def test_release_json_quiet_prints_the_document_only(
    hub: Any, workspace: dict[str, Path], monkeypatch: Any
) -> None:
    args = ("release", *MODEL, *VERSION, "--format", "json", "-q")
    run = run_cli(monkeypatch, hub, workspace["work"], *args)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert json.loads(run.stdout)["release"]["dry_run"] is True


def test_release_verbose_lists_each_files_sha256(
    hub: Any, workspace: dict[str, Path], monkeypatch: Any
) -> None:
    quiet = run_cli(monkeypatch, hub, workspace["work"], "release", *MODEL, *VERSION)
    verbose = run_cli(monkeypatch, hub, workspace["work"], "release", *MODEL, *VERSION, "-v")
    assert "sha256 " not in quiet.stdout
    assert "  sha256 " in verbose.stdout and "config.json" in verbose.stdout


def test_release_takes_config_after_the_subcommand(
    hub: Any, workspace: dict[str, Path], monkeypatch: Any
) -> None:
    args = ("release", *MODEL, *VERSION, "--config", str(workspace["cfg"]))
    run = run_cli(monkeypatch, hub, workspace["bare"], *args)
    assert run.returncode == 0, run.stderr


# ------------------------------------------------------------------ 6. a closed pipe


def test_a_closed_pipe_exits_quietly_in_process(monkeypatch: Any) -> None:
    """The reader went away (BrokenPipeError on the first write): exit 141, no error line
    (it was "internal error: BrokenPipeError", exit 3)."""

    def closed(*args: Any, **kwargs: Any) -> None:
        if not kwargs.get("err"):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(click, "echo", closed)
    result = CliRunner().invoke(main, ["rules"])
    assert result.exit_code == 141 and result.stderr == ""


@pytest.mark.e2e
@pytest.mark.parametrize("args", [("rules",), ("--help",), ("schema",)])
def test_a_closed_pipe_exits_quietly(args: tuple[str, ...], tmp_path: Path) -> None:
    """stdout's reader is gone before the command writes (deterministic: the read end is
    closed before the process starts)."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "r1release.cli", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    finally:
        os.close(write)
    assert proc.returncode in (0, 141) and proc.stderr == "", (proc.returncode, proc.stderr)


@pytest.mark.e2e
def test_rules_into_head() -> None:
    """The acceptance line: `r1release rules | head -1` exits 0 or 141 without an error line."""
    script = f"'{sys.executable}' -m r1release.cli rules | head -1; echo \"rc=${{PIPESTATUS[0]}}\""
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    first, status = proc.stdout.splitlines()
    assert first.startswith("R0") and status in ("rc=0", "rc=141"), proc.stdout
    assert proc.stderr == ""


# ------------------------------------------------------------------ 8. the diff of fix --dry-run


def test_fix_dry_run_diff_of_a_file_without_a_final_newline_applies(
    workspace: dict[str, Path], monkeypatch: Any, tmp_path: Path
) -> None:
    """difflib glues the next line to a last line without a newline; diff and git mark it
    with "\\ No newline at end of file". The diff must apply and give what fix writes."""
    ckpt = workspace["ckpt"]
    gen = ckpt / "generation_config.json"
    gen.write_text(gen.read_text().rstrip("\n"))
    before = tmp_path / "before"
    shutil.copytree(ckpt, before)
    run = _cli(workspace, Case("diff", ("fix", "{ckpt}", "--dry-run"), _code(0)), monkeypatch)
    assert "\\ No newline at end of file\n" in run.stdout, run.stdout
    assert _cli(workspace, Case("fix", ("fix", "{ckpt}"), _code(0)), monkeypatch).returncode == 0
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    applied = subprocess.run(
        ["git", "apply", "-p1", "-"], input=run.stdout, cwd=before, text=True, capture_output=True
    )
    assert applied.returncode == 0, applied.stderr
    assert (before / "generation_config.json").read_text() == gen.read_text()

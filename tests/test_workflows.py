"""The GitHub Actions workflows and the composite action, run in a simulated runner.

Each `run:` step runs with bash, in order, in an environment shaped like GitHub's: the
GITHUB_* variables, an event payload at GITHUB_EVENT_PATH, fresh GITHUB_OUTPUT / GITHUB_PATH /
GITHUB_STEP_SUMMARY files per step, the runner's environment pointing huggingface_hub at the
loopback Hub. `${{ }}` expressions in `env:`, `if:`, `outputs:`, `concurrency:` and
`environment:` are evaluated by the small evaluator below, which knows only what these files
use and fails loudly on anything else. A job's `if:` is evaluated too, secrets reach only
jobs in an environment, and each job starts with an empty RUNNER_TEMP. Two kinds of step
are skipped, and every test says which steps ran: a step that `uses:` an action (checkout,
setup-python), and a step with a command that installs the project (`python3 -m venv`,
`pip install`): the project is installed in the test venv, which is on the simulated PATH.
actions/upload-artifact and actions/download-artifact are simulated: a per-run store.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from helpers import REPO_ID, TOKEN, write_release_yaml
from hubserver import HubServer, Reply, client_env

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTION = ROOT / "action.yml"
SHA = "5f0c4e1d2b3a49687766554433221100ffeeddcc"
REPOSITORY = "org/training"
CASE = "qwen2.5-base-after-chatml-sft"

# ------------------------------------------------------------------------------ expressions


class ExpressionError(AssertionError):
    """An expression the simulation does not support (or a context that is not there)."""


class Strict(dict):
    """A context whose keys are all known: looking up another one is an error, not null."""


_TOKEN_RE = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||!|\(|\))"
    r"|(?P<name>[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*))"
)
_TEMPLATE_RE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


def _tokens(text: str) -> list[tuple[str, str]]:
    text, pos, out = text.rstrip(), 0, []
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            raise ExpressionError(f"unsupported syntax at {text[pos:]!r} in {text!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0 and not math.isnan(value)
    return value != "" if isinstance(value, str) else True


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, (bool, int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip() or 0)
        except ValueError:
            return math.nan
    return math.nan


def loose_equal(a: Any, b: Any) -> bool:
    """GitHub's `==`: strings ignore case; other mixed types compare as numbers."""
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return a is b
    if type(a) is type(b):
        return a == b
    return _number(a) == _number(b)


def to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ExpressionError(f"cannot interpolate {type(value).__name__} {value!r}")


class _Parser:
    """`||` < `&&` < `==`/`!=` < `!` < literals, context paths, parentheses."""

    def __init__(self, text: str, contexts: dict[str, Any]) -> None:
        self.text, self.contexts = text, contexts
        self.tokens, self.i = _tokens(text), 0

    def peek(self) -> tuple[str | None, str | None]:
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None)

    def take(self) -> tuple[str | None, str | None]:
        token = self.peek()
        self.i += 1
        return token

    def parse(self) -> Any:
        value = self.either()
        if self.i != len(self.tokens):
            raise ExpressionError(f"unexpected {self.peek()[1]!r} in {self.text!r}")
        return value

    def either(self) -> Any:
        left = self.both()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.both()
            left = left if truthy(left) else right
        return left

    def both(self) -> Any:
        left = self.compare()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.compare()
            left = right if truthy(left) else left
        return left

    def compare(self) -> Any:
        left = self.unary()
        while self.peek() in (("op", "=="), ("op", "!=")):
            op = self.take()[1]
            equal = loose_equal(left, self.unary())
            left = equal if op == "==" else not equal
        return left

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            return not truthy(self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, value = self.take()
        if (kind, value) == ("op", "("):
            inner = self.either()
            if self.take() != ("op", ")"):
                raise ExpressionError(f"missing ')' in {self.text!r}")
            return inner
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "name":
            if self.peek() == ("op", "("):
                raise ExpressionError(f"function {value}() is not simulated ({self.text!r})")
            if value in ("true", "false"):
                return value == "true"
            return None if value == "null" else self.lookup(value)
        raise ExpressionError(f"unexpected {value!r} in {self.text!r}")

    def lookup(self, path: str) -> Any:
        head, *keys = path.split(".")
        if head not in self.contexts:
            raise ExpressionError(f"context {head!r} is not available here ({path})")
        node = self.contexts[head]
        for key in keys:
            if isinstance(node, Strict):
                if key not in node:
                    raise ExpressionError(f"{path}: no {key!r} here (known: {sorted(node)})")
                node = node[key]
            elif isinstance(node, dict):
                node = node.get(key)
            else:
                return None  # a property of null or of a string is null
        return node


def evaluate(expression: str, contexts: dict[str, Any]) -> Any:
    return _Parser(expression, contexts).parse()


def render(value: Any, contexts: dict[str, Any]) -> str:
    """A YAML value with its `${{ }}` expressions substituted."""
    if not isinstance(value, str):
        return to_text(value)
    return _TEMPLATE_RE.sub(lambda m: to_text(evaluate(m.group(1), contexts)), value)


def condition(value: Any, contexts: dict[str, Any]) -> bool:
    """An `if:`, with or without `${{ }}` around it."""
    if isinstance(value, bool):
        return value
    whole = re.fullmatch(r"\s*\$\{\{(.*)\}\}\s*", value, re.DOTALL)
    return truthy(evaluate(whole.group(1) if whole else value, contexts))


def test_evaluator_semantics():
    ctx = {
        "inputs": Strict(model="", dry_run=True, version="v1"),
        "vars": {"FLAG": "TRUE"},
        "github": Strict(ref_name="a@v1", event={"inputs": {"dry_run": "false"}}),
    }
    assert evaluate("vars.FLAG == 'true'", ctx) is True  # strings compare ignoring case
    assert evaluate("vars.MISSING || 'x'", ctx) == "x"
    assert evaluate("inputs.dry_run && 'dry' || 'publish'", ctx) == "dry"
    assert evaluate("github.event.inputs.dry_run == 'false'", ctx) is True
    assert evaluate("!(inputs.model != '')", ctx) is True
    assert render("r-${{ inputs.model || github.ref_name }}", ctx) == "r-a@v1"
    for bad in ("inputs.nope", "runner.temp", "contains(inputs.model, 'x')", "inputs.x[0]"):
        with pytest.raises(ExpressionError):
            evaluate(bad, ctx)


# ----------------------------------------------------------------------------- the runner

INSTALL_RE = re.compile(r"(python3? -m venv|python3? -m pip install|pip install)\b")
SKIP_USES, SKIP_INSTALL, SKIP_IF = "uses an action", "installs the project", "if: false"
UPLOAD, DOWNLOAD = "actions/upload-artifact@", "actions/download-artifact@"


def skip_reason(step: dict[str, Any], install: bool = False) -> str | None:
    """Which steps the simulation does not run: actions (but the artifact ones), and the
    steps that install the project (a line of the script starts with an install command)."""
    if "uses" in step:
        return None if step["uses"].startswith((UPLOAD, DOWNLOAD)) else SKIP_USES
    lines = step["run"].splitlines()
    return SKIP_INSTALL if not install and any(INSTALL_RE.match(x.strip()) for x in lines) else None


class StepFailed(AssertionError):
    """A step exited non-zero: the job stops there; `steps` holds what ran, the failed last."""

    def __init__(self, message: str, steps: list[StepRun], summary: str) -> None:
        super().__init__(message)
        self.steps, self.summary = steps, summary

    @property
    def step(self) -> StepRun:
        return self.steps[-1]


def parse_env_file(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT's format: `name=value` lines and `name<<DELIMITER` heredocs."""
    out, lines, i = {}, text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        eq, heredoc = line.find("="), line.find("<<")
        if heredoc != -1 and (eq == -1 or heredoc < eq):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i)
            out[name], i = "\n".join(lines[i:end]), end + 1
        else:
            name, value = line.split("=", 1)
            out[name] = value
    return out


@dataclass
class StepRun:
    name: str
    why: str  # "ran", "failed" or why it was skipped
    env: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    returncode: int = 0


@dataclass
class JobRun:
    steps: list[StepRun]
    outputs: dict[str, str]
    summary: str
    concurrency: str | None = None
    environment: tuple[str, str] | None = None  # name, url

    def ran(self) -> list[str]:
        return [s.name for s in self.steps if s.why == "ran"]

    def skipped(self) -> dict[str, str]:
        return {s.name: s.why for s in self.steps if s.why != "ran"}

    def step(self, name: str) -> StepRun:
        return next(s for s in self.steps if s.name == name)

    def text(self) -> str:
        """Everything the job printed or wrote: for checking that no secret leaked."""
        printed = "".join(s.stdout + s.stderr for s in self.steps)
        return printed + self.summary + json.dumps(self.outputs)


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    return {on: {}} if isinstance(on, str) else {k: v or {} for k, v in on.items()}


@dataclass
class GitHub:
    """One event (one workflow run), the secrets of the `huggingface` environment (a job sees
    them only when it runs in an environment), the repository's variables, and one runner
    that runs the jobs one after another in the same workspace, as a self-hosted one does."""

    root: Path
    workspace: Path
    event_name: str
    ref: str
    payload: dict[str, Any]
    runner_env: dict[str, str]
    secrets: dict[str, str] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    id_token_url: str | None = None  # GitHub's OIDC endpoint, given with `id-token: write`
    artifacts: dict[str, Path] = field(default_factory=dict)  # this run's, by name

    @property
    def temp(self) -> Path:
        return self.root / "runner-temp"

    def fresh_temp(self) -> None:
        """RUNNER_TEMP is emptied before each job: only an artifact carries files over."""
        shutil.rmtree(self.temp, ignore_errors=True)
        self.temp.mkdir(parents=True)

    def artifact(self, step: dict[str, Any], contexts: dict[str, Any]) -> None:
        """actions/upload-artifact (one path) and actions/download-artifact (one name)."""
        given = {k: render(v, contexts) for k, v in (step.get("with") or {}).items()}
        store = self.root / "artifacts" / given["name"]
        if step["uses"].startswith(UPLOAD):
            source = Path(given["path"])
            assert source.exists() or given.get("if-no-files-found") != "error", source
            assert given["name"] not in self.artifacts or given.get("overwrite") == "true"
            shutil.rmtree(store, ignore_errors=True)
            if source.is_dir():
                shutil.copytree(source, store)
            else:
                store.mkdir(parents=True)
                shutil.copy2(source, store)
            self.artifacts[given["name"]] = store
        else:
            assert given["name"] in self.artifacts, f"no artifact {given['name']!r} in this run"
            shutil.copytree(self.artifacts[given["name"]], given["path"], dirs_exist_ok=True)

    @property
    def ref_name(self) -> str:
        return self.ref.split("/", 2)[2]

    @property
    def ref_type(self) -> str:
        return "tag" if self.ref.startswith("refs/tags/") else "branch"

    def triggers(self, workflow: dict[str, Any]) -> bool:
        """Whether the event starts the workflow (push: `tags`/`branches` filters)."""
        on = triggers(workflow)
        if self.event_name not in on:
            return False
        if self.event_name != "push":
            return True
        kind, other = ("tags", "branches") if self.ref_type == "tag" else ("branches", "tags")
        patterns = on["push"].get(kind)
        if patterns is None:  # filtering only the other kind of ref excludes this kind
            return other not in on["push"]
        return any(fnmatch.fnmatchcase(self.ref_name, p) for p in patterns)

    def github_context(self, job: str, action_path: Path | None = None) -> Strict:
        ctx = Strict(
            event_name=self.event_name,
            event=self.payload,
            ref=self.ref,
            ref_name=self.ref_name,
            ref_type=self.ref_type,
            sha=SHA,
            repository=REPOSITORY,
            workspace=str(self.workspace),
            workflow="simulated",
            job=job,
            run_id="4242",
        )
        if action_path is not None:
            ctx["action_path"] = str(action_path)
        return ctx

    def base_env(self, job: str, id_token: bool) -> dict[str, str]:
        event_path = self.root / "event.json"
        event_path.write_text(json.dumps(self.payload))
        env = dict(self.runner_env)
        env |= {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": self.event_name,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_REF": self.ref,
            "GITHUB_REF_NAME": self.ref_name,
            "GITHUB_REF_TYPE": self.ref_type,
            "GITHUB_SHA": SHA,
            "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_REPOSITORY_OWNER": REPOSITORY.split("/")[0],
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": "4242",
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_WORKFLOW": "simulated",
            "GITHUB_JOB": job,
            "GITHUB_ACTOR": "octocat",
            "GITHUB_WORKSPACE": str(self.workspace),
            "RUNNER_TEMP": str(self.temp),
            "RUNNER_OS": "Linux",
        }
        self.temp.mkdir(parents=True, exist_ok=True)
        if id_token and self.id_token_url:  # GitHub sets these only with `id-token: write`
            env["ACTIONS_ID_TOKEN_REQUEST_URL"] = self.id_token_url
            env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = ID_REQUEST_TOKEN
        return env

    def run_steps(
        self,
        steps: list[dict[str, Any]],
        contexts: dict[str, Any],
        env: dict[str, str],
        yaml_env: dict[str, str],
        shell: str | None,
        only: set[str] | None = None,
        install: bool = False,
    ) -> tuple[list[StepRun], str]:
        runs, summary, path_dirs = [], "", []
        contexts["steps"] = Strict()
        for n, step in enumerate(steps):
            name = step.get("name") or step.get("uses") or step["run"].splitlines()[0]
            assert "${{" not in step.get("run", ""), f"{name}: an expression inside run:"
            if "id" in step:
                contexts["steps"][step["id"]] = {"outputs": {}, "outcome": "skipped"}
            if only is not None and name not in only:
                runs.append(StepRun(name, "not selected"))
                continue
            contexts["env"] = yaml_env
            if "if" in step and not condition(step["if"], contexts):
                runs.append(StepRun(name, SKIP_IF))
                continue
            step_env = {k: render(v, contexts) for k, v in (step.get("env") or {}).items()}
            if reason := skip_reason(step, install):
                runs.append(StepRun(name, reason))
                continue
            if "uses" in step:  # an artifact action
                self.artifact(step, contexts)
                runs.append(StepRun(name, "ran"))
                continue
            files = {k: self.root / f"{n}-{k.lower()}" for k in ("OUTPUT", "PATH", "SUMMARY")}
            for file in files.values():
                file.write_text("")
            full_env = env | yaml_env | step_env
            full_env["PATH"] = os.pathsep.join([*reversed(path_dirs), env["PATH"]])
            full_env["GITHUB_OUTPUT"] = str(files["OUTPUT"])
            full_env["GITHUB_PATH"] = str(files["PATH"])
            full_env["GITHUB_STEP_SUMMARY"] = str(files["SUMMARY"])
            script = self.root / f"{n}-step.sh"
            script.write_text(step["run"])
            step_shell = step.get("shell", shell)
            if step_shell == "bash":
                command = ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)]
            elif step_shell is None:
                command = ["bash", "-e", str(script)]
            else:
                raise ExpressionError(f"{name}: shell {step_shell!r} is not simulated")
            cwd = self.workspace / step.get("working-directory", ".")
            proc = subprocess.run(
                command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=180
            )
            summary += files["SUMMARY"].read_text()
            ran = StepRun(name, "ran", step_env, proc.stdout, proc.stderr, proc.returncode)
            if proc.returncode != 0:
                ran.why = "failed"
                raise StepFailed(
                    f"step {name!r} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
                    [*runs, ran],
                    summary,
                )
            runs.append(ran)
            if "id" in step:
                outputs = parse_env_file(files["OUTPUT"].read_text())
                contexts["steps"][step["id"]] = {"outputs": outputs, "outcome": "success"}
            path_dirs += [p for p in files["PATH"].read_text().splitlines() if p]
        return runs, summary

    def job_contexts(
        self, workflow: dict[str, Any], job_id: str, needs: dict[str, JobRun] | None
    ) -> dict[str, Any]:
        """The contexts of a job's `if:` (no secrets there), checking its `needs:`."""
        needed = workflow["jobs"][job_id].get("needs", [])
        needed = [needed] if isinstance(needed, str) else needed
        assert sorted(needs or {}) == sorted(needed), f"{job_id} needs {needed}"
        return {
            "github": self.github_context(job_id),
            "inputs": self.inputs(workflow),
            "vars": dict(self.vars),
            "needs": Strict(
                {k: {"outputs": v.outputs, "result": "success"} for k, v in (needs or {}).items()}
            ),
        }

    def job_runs(
        self, workflow: dict[str, Any], job_id: str, needs: dict[str, JobRun] | None = None
    ) -> bool:
        """The job's `if:` (GitHub's implicit `success()`: every needed job succeeded)."""
        job = workflow["jobs"][job_id]
        contexts = self.job_contexts(workflow, job_id, needs)
        return "if" not in job or condition(job["if"], contexts)

    def run_job(
        self,
        workflow: dict[str, Any],
        job_id: str,
        needs: dict[str, JobRun] | None = None,
        only: set[str] | None = None,
    ) -> JobRun:
        job = workflow["jobs"][job_id]
        assert self.job_runs(workflow, job_id, needs), f"job {job_id} is skipped by its if:"
        contexts = self.job_contexts(workflow, job_id, needs)
        environment = job.get("environment") or {}
        environment = environment if isinstance(environment, dict) else {"name": environment}
        contexts["secrets"] = dict(self.secrets) if environment else {}
        yaml_env = {k: render(v, contexts) for k, v in (workflow.get("env") or {}).items()}
        contexts["env"] = yaml_env
        yaml_env |= {k: render(v, contexts) for k, v in (job.get("env") or {}).items()}
        concurrency = job.get("concurrency")
        group = render(concurrency["group"], contexts) if concurrency else None
        permissions = job.get("permissions", workflow.get("permissions")) or {}
        id_token = isinstance(permissions, dict) and permissions.get("id-token") == "write"
        contexts["runner"] = Strict(temp=str(self.temp), os="Linux")
        shell = ((job.get("defaults") or workflow.get("defaults") or {}).get("run") or {}).get(
            "shell"
        )
        self.fresh_temp()
        steps, summary = self.run_steps(
            job["steps"], contexts, self.base_env(job_id, id_token), yaml_env, shell, only
        )
        outputs = {k: render(v, contexts) for k, v in (job.get("outputs") or {}).items()}
        if environment:
            name, url = (render(environment.get(k, ""), contexts) for k in ("name", "url"))
            return JobRun(steps, outputs, summary, group, (name, url))
        return JobRun(steps, outputs, summary, group)

    def run_workflow(self, workflow: dict[str, Any]) -> dict[str, JobRun | None]:
        """Every job, in the order of `needs:`; a job skipped by its `if:` (or by a skipped
        job it needs) is None. A failed step raises StepFailed."""
        assert self.triggers(workflow)
        done: dict[str, JobRun | None] = {}
        while len(done) < len(workflow["jobs"]):
            for job_id, job in workflow["jobs"].items():
                needed = job.get("needs", [])
                needed = [needed] if isinstance(needed, str) else needed
                if job_id in done or any(n not in done for n in needed):
                    continue
                needs = {n: done[n] for n in needed}
                if any(run is None for run in needs.values()):
                    done[job_id] = None
                    continue
                ran = {n: run for n, run in needs.items() if run is not None}
                runs = self.job_runs(workflow, job_id, ran)
                done[job_id] = self.run_job(workflow, job_id, ran) if runs else None
        return done

    def run_action(
        self,
        action: dict[str, Any],
        inputs: dict[str, str],
        step_env: dict[str, str],
        install: bool = False,
        only: set[str] | None = None,
    ) -> JobRun:
        """A composite action called from a step with `with: inputs` and `env: step_env`
        (`install=True` runs the install step too: for a test with stubs on PATH)."""
        assert action["runs"]["using"] == "composite"
        declared = action.get("inputs") or {}
        assert set(inputs) <= set(declared), f"undeclared inputs {set(inputs) - set(declared)}"
        values = {k: inputs.get(k, to_text(v.get("default", ""))) for k, v in declared.items()}
        contexts: dict[str, Any] = {
            "github": self.github_context("caller", action_path=ROOT),
            "inputs": Strict(values),
            "runner": Strict(temp=str(self.temp), os="Linux"),
        }
        for step in action["runs"]["steps"]:
            assert "uses" in step or step.get("shell"), "a composite run step needs a shell"
        steps, summary = self.run_steps(
            action["runs"]["steps"],
            contexts,
            self.base_env("caller", False),
            step_env,
            None,
            only,
            install,
        )
        outputs = {k: render(v["value"], contexts) for k, v in action["outputs"].items()}
        return JobRun(steps, outputs, summary)

    def inputs(self, workflow: dict[str, Any]) -> Strict:
        """The `inputs` context: workflow_dispatch inputs, typed (booleans stay booleans); an
        input the dispatch leaves out has its declared default, as on GitHub."""
        declared = (triggers(workflow).get("workflow_dispatch") or {}).get("inputs") or {}
        given = self.payload.get("inputs") or {} if self.event_name == "workflow_dispatch" else {}
        dispatched = self.event_name == "workflow_dispatch"
        out = Strict()
        for name, spec in declared.items():
            value = given.get(name, spec.get("default") if dispatched else None)
            if value is not None and spec.get("type") == "boolean":
                value = str(value).lower() == "true"
            out[name] = value
        return out


# ----------------------------------------------------------------------------- events

REPOSITORY_PAYLOAD = {
    "full_name": REPOSITORY,
    "name": REPOSITORY.split("/")[1],
    "owner": {"login": REPOSITORY.split("/")[0], "type": "Organization"},
    "default_branch": "main",
    "private": True,
}
SENDER = {"login": "octocat", "type": "User"}


def tag_push(tag: str) -> tuple[str, str, dict[str, Any]]:
    """GitHub's `push` payload for a new tag (the fields a workflow can read)."""
    payload = {
        "ref": f"refs/tags/{tag}",
        "before": "0" * 40,
        "after": SHA,
        "created": True,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "commits": [],
        "head_commit": {"id": SHA, "message": "Train OpenR1-Tiny", "tree_id": "e" * 40},
        "pusher": {"name": "octocat", "email": "octocat@example.com"},
        "repository": REPOSITORY_PAYLOAD,
        "sender": SENDER,
    }
    return "push", f"refs/tags/{tag}", payload


def branch_push(branch: str = "main") -> tuple[str, str, dict[str, Any]]:
    payload = {"ref": f"refs/heads/{branch}", "before": "a" * 40, "after": SHA, "created": False}
    payload |= {"deleted": False, "repository": REPOSITORY_PAYLOAD, "sender": SENDER}
    return "push", f"refs/heads/{branch}", payload


def dispatch(**inputs: str) -> tuple[str, str, dict[str, Any]]:
    """GitHub's `workflow_dispatch` payload: every input a string, booleans too."""
    payload = {"inputs": inputs, "ref": "refs/heads/main", "repository": REPOSITORY_PAYLOAD}
    payload |= {"sender": SENDER, "workflow": ".github/workflows/release.yml"}
    return "workflow_dispatch", "refs/heads/main", payload


def make_github(
    tmp_path: Path,
    workspace: Path,
    hub: HubServer,
    event: tuple[str, str, dict[str, Any]],
    **kwargs: Any,
) -> GitHub:
    root = tmp_path / "runner"
    root.mkdir(exist_ok=True)
    env = client_env(hub, tmp_path / "hf-home", token=None)  # the token comes from secrets
    env.pop("CI", None)
    env.pop("R1RELEASE_CHECKPOINTS", None)  # release.yaml or the step says where checkpoints are
    tools = [str(Path(sys.executable).parent)]  # the test venv: r1release is installed there
    env["PATH"] = os.pathsep.join([*kwargs.pop("path", []), *tools, env.get("PATH", "")])
    return GitHub(root, workspace, *event, runner_env=env, **kwargs)


# ------------------------------------------------------------------------------ release.yml

RELEASE = WORKFLOWS / "release.yml"
PUBLISH = WORKFLOWS / "publish.yml"
PLAN_SKIPPED = {"Check out the repository": SKIP_USES, "Install r1release": SKIP_INSTALL}
PLAN_STEPS = [
    "Model and version of this event",
    "Plan",
    "Model card",
    "Card, manifest and report in the job summary",
    "Upload the plan for review",
]
PUBLISH_SKIPPED = PLAN_SKIPPED
PUBLISH_STEPS = ["Download the approved plan", "Release"]
SUMMARY_STEP = "Card, manifest and report in the job summary"
INSTALL = "Install r1release"
ID_REQUEST_TOKEN, ID_TOKEN, EXCHANGED = "gh_request_3d1f", "eyJ.id-token.sig", "hf_oidc_7c2e55"


@pytest.fixture
def workspace(tmp_path, checkpoint):
    """A training repository whose release.yaml names the fixture's typical SFT output."""
    path = tmp_path / "workspace"
    path.mkdir()
    write_release_yaml(path, checkpoint(CASE))
    return path


def checkpoint_of(workspace: Path) -> Path:
    return Path(load(workspace / "release.yaml")["models"][0]["checkpoint"])


def change_weights(checkpoint: Path) -> str:
    """A new value in a weights file (its header untouched): the checks still pass."""
    weights = sorted(checkpoint.glob("*.safetensors"))[-1]
    data = bytearray(weights.read_bytes())
    data[-2:] = b"\x00\x00" if data[-2:] != b"\x00\x00" else b"\x80\x3f"  # 0.0 or 1.0 (bf16)
    weights.write_bytes(bytes(data))
    return weights.name


def check_plan(github: GitHub, plan: JobRun, version: str) -> dict[str, Any]:
    """The plan job ran without a secret, and its artifact and summary hold the plan, the
    card, the JSON report and the manifest (whose card hash is the card's)."""
    assert plan.ran() == PLAN_STEPS and plan.skipped() == PLAN_SKIPPED
    assert plan.environment is None and plan.concurrency is None
    assert all("HF_TOKEN" not in s.env for s in plan.steps)
    assert plan.outputs["repo_id"] == REPO_ID and plan.outputs["version"] == version
    files = github.artifacts["release-plan"]
    assert sorted(p.name for p in files.iterdir()) == ["README.md", "manifest.json", "release.json"]
    doc = json.loads((files / "release.json").read_text())
    manifest = json.loads((files / "manifest.json").read_text())
    assert set(doc) == {"schema_version", "release", "report", "manifest"}
    assert doc["schema_version"] == 1 and doc["manifest"] == manifest
    assert doc["release"]["repo_id"] == REPO_ID and doc["release"]["dry_run"] is True
    assert manifest["repo_id"] == REPO_ID and manifest["version"] == version
    assert manifest["git_commit"] == SHA
    card = (files / "README.md").read_bytes()
    assert manifest["card_sha256"] == hashlib.sha256(card).hexdigest()  # the card reviewed
    assert plan.step("Plan").stdout == ""  # stdout went into release.json
    assert plan.outputs["model"] == "OpenR1-Tiny"
    assert f"### r1release: OpenR1-Tiny {version} (dry run)" in plan.summary
    for title in ("Model card (README.md)", "Manifest (manifest.json)"):
        assert f"<details><summary>{title}</summary>" in plan.summary
    assert card.decode() in plan.summary
    return manifest


def run_release(github: GitHub) -> dict[str, JobRun | None]:
    """The whole workflow run; the plan job checked. Skipped jobs are None."""
    jobs = github.run_workflow(load(RELEASE))
    assert jobs["model"] is not None and jobs["plan"] is not None
    assert jobs["model"].ran() == ["Model named by the tag or the inputs"]
    check_plan(github, jobs["plan"], jobs["plan"].outputs["version"])
    return jobs


def released(hub: HubServer, job: JobRun, version: str) -> None:
    repo = hub.repo(REPO_ID)
    assert hub.commit_counts[REPO_ID] == 1
    assert repo.tags[version] == repo.branches["main"] and len(repo.tags) == 1
    head = repo.branches["main"]
    assert job.outputs == {
        "repo_id": REPO_ID,
        "version": version,
        "revision": head,
        "commit_url": f"{hub.url}/{REPO_ID}/commit/{head}",
        "dry_run": "false",
    }
    assert f"### r1release: OpenR1-Tiny {version} (released)" in job.summary


def test_workflow_triggers():
    workflow = load(RELEASE)
    for tag in ("v1.2.0", "OpenR1-Distill-7B@v1.2.0"):
        assert GitHub(ROOT, ROOT, *tag_push(tag), runner_env={}).triggers(workflow)
    for tag in ("latest", "release-1"):
        assert not GitHub(ROOT, ROOT, *tag_push(tag), runner_env={}).triggers(workflow)
    assert not GitHub(ROOT, ROOT, *branch_push(), runner_env={}).triggers(workflow)
    inputs = triggers(workflow)["workflow_dispatch"]["inputs"]
    assert inputs["dry_run"] == {**inputs["dry_run"], "type": "boolean", "default": True}
    assert set(inputs) == {"model", "version", "dry_run"}  # what r1release.events reads


def test_plan_then_approved_publish():
    """An ungated plan job without secrets; two publish jobs in the `huggingface`
    environment, the same but for `if:` and `id-token: write` (only publish-oidc has it)."""
    jobs = load(RELEASE)["jobs"]
    assert set(jobs) == {"model", "plan", "publish", "publish-oidc"}
    plan = jobs["plan"]
    assert "environment" not in plan and "if" not in plan and "concurrency" not in plan
    assert plan["permissions"] == {"contents": "read"}
    assert plan["runs-on"] == ["self-hosted", "linux", "gpu"]  # the runner with the checkpoint
    assert "secrets" not in json.dumps(plan)
    uploads = [s for s in plan["steps"] if s.get("uses", "").startswith(UPLOAD)]
    assert [s["with"]["name"] for s in uploads] == ["release-plan"]
    for name in ("publish", "publish-oidc"):
        job = jobs[name]
        assert job["environment"]["name"] == "huggingface", name
        assert job["needs"] == ["model", "plan"] and job["runs-on"] == plan["runs-on"]
        downloads = [s for s in job["steps"] if s.get("uses", "").startswith(DOWNLOAD)]
        assert [s["with"]["name"] for s in downloads] == ["release-plan"]
        assert "--expect-manifest" in job["steps"][-1]["run"]
    assert jobs["publish"]["permissions"] == {"contents": "read"}
    assert jobs["publish-oidc"]["permissions"] == {"contents": "read", "id-token": "write"}
    same = {"name", "if", "permissions"}  # everything else is word for word the same
    assert {k: v for k, v in jobs["publish"].items() if k not in same} == {
        k: v for k, v in jobs["publish-oidc"].items() if k not in same
    }

    # At most one publish job runs; none for a manual dry run.
    workflow, done = load(RELEASE), JobRun([], {}, "")
    events = {"tag": tag_push("v1.0.0"), "publish": dispatch(version="v1", dry_run="false")}
    events["dry run"] = dispatch(version="v1", dry_run="true")
    for (kind, event), trusted in itertools.product(events.items(), [None, "true", "false"]):
        github = GitHub(ROOT, ROOT, *event, runner_env={})
        github.vars = {} if trusted is None else {"HF_TRUSTED_PUBLISHING": trusted}
        runs = {
            job: github.job_runs(workflow, job, {"model": done, "plan": done})
            for job in ("publish", "publish-oidc")
        }
        expected = {"publish": trusted != "true", "publish-oidc": trusted == "true"}
        assert runs == ({k: False for k in runs} if kind == "dry run" else expected), kind


@pytest.mark.e2e
@pytest.mark.parametrize("tag", ["v1.0.0", "OpenR1-Tiny@v1.0.0"])
def test_tag_push_releases(hub, tmp_path, workspace, checkpoint, tag):
    if "@" in tag:  # several models (NAME@v* tags): the other model is left alone
        text = (workspace / "release.yaml").read_text()
        other = text.split("models:\n", 1)[1].replace("OpenR1-Tiny", "OpenR1-Other")
        (workspace / "release.yaml").write_text(text + other)
    github = make_github(
        tmp_path, workspace, hub, tag_push(tag), secrets={"HF_TOKEN": TOKEN}, vars={}
    )
    jobs = run_release(github)
    model, job = jobs["model"], jobs["publish"]
    assert job is not None and model is not None and jobs["publish-oidc"] is None

    group = "OpenR1-Tiny" if "@" in tag else "default"
    assert model.outputs == {"name": group}
    assert job.concurrency == f"release-{group}"
    assert job.environment == ("huggingface", job.outputs["commit_url"])
    assert job.ran() == PUBLISH_STEPS and job.skipped() == PUBLISH_SKIPPED
    released(hub, job, "v1.0.0")
    assert set(hub.commit_counts) == {REPO_ID} and hub.count("create-repo") == 1
    step = job.step("Release")
    assert step.env["HF_TOKEN"] == TOKEN and step.env["HF_OIDC_RESOURCE"] == ""
    # The runner masks secrets.HF_TOKEN itself; r1release never prints it anyway.
    for run in jobs.values():
        assert run is None or TOKEN not in run.text().replace(f"::add-mask::{TOKEN}", "")


@pytest.mark.e2e
def test_publish_refuses_what_was_not_approved(hub, tmp_path, workspace):
    """A checkpoint file changes after the plan was approved: the publish job stops with a
    line naming it, before a single write; the Hub saw read requests only."""
    github = make_github(tmp_path, workspace, hub, tag_push("v1.0.0"), secrets={"HF_TOKEN": TOKEN})
    workflow = load(RELEASE)
    needs = {"model": github.run_job(workflow, "model"), "plan": github.run_job(workflow, "plan")}
    check_plan(github, needs["plan"], "v1.0.0")
    changed = change_weights(checkpoint_of(workspace))

    with pytest.raises(StepFailed) as failed:
        github.run_job(workflow, "publish", needs=needs)
    step = failed.value.step
    assert step.name == "Release" and step.returncode == 1
    assert [s.name for s in failed.value.steps if s.why == "ran"] == PUBLISH_STEPS[:-1]
    assert f"{changed} changed" in step.stderr and "nothing was sent" in step.stderr
    assert "approved" in step.stderr and hub.writes() == []
    assert TOKEN not in (step.stdout + step.stderr).replace(f"::add-mask::{TOKEN}", "")

    # Planned again and approved, the changed checkpoint publishes.
    needs["plan"] = github.run_job(workflow, "plan")
    released(hub, github.run_job(workflow, "publish", needs=needs), "v1.0.0")


@pytest.mark.e2e
@pytest.mark.parametrize("dry_run", [True, False])
def test_workflow_dispatch(hub, tmp_path, workspace, dry_run):
    event = dispatch(model="OpenR1-Tiny", version="v1.1.0", dry_run=str(dry_run).lower())
    github = make_github(tmp_path, workspace, hub, event, secrets={"HF_TOKEN": TOKEN})
    jobs = run_release(github)
    model, plan, job = jobs["model"], jobs["plan"], jobs["publish"]
    assert model is not None and plan is not None and jobs["publish-oidc"] is None

    assert model.outputs == {"name": "OpenR1-Tiny"}
    assert "dry run: nothing was sent" in plan.step("Plan").stderr
    if dry_run:  # the run stops after the plan
        assert job is None and hub.writes() == []
        assert plan.outputs["repo_id"] == REPO_ID and plan.outputs["version"] == "v1.1.0"
        # Were the publish job to run anyway, the CLI would read the event's dry_run too.
        workflow = load(RELEASE)
        del workflow["jobs"]["publish"]["if"]
        job = github.run_job(workflow, "publish", needs={"model": model, "plan": plan})
        assert hub.writes() == [] and job.outputs["dry_run"] == "true"
        assert "### r1release: OpenR1-Tiny v1.1.0 (dry run)" in job.summary
    else:
        assert job is not None and job.concurrency == "release-OpenR1-Tiny"
        assert job.ran() == PUBLISH_STEPS and job.skipped() == PUBLISH_SKIPPED
        released(hub, job, "v1.1.0")
    for run in (model, plan, job):
        assert TOKEN not in run.text().replace(f"::add-mask::{TOKEN}", "")


def test_plan_summary_cannot_be_broken_out_of(tmp_path):
    """The card, manifest and report reach the summary as fenced code in <details>: a card
    with backtick fences, `</details>` and HTML stays inside its block, byte for byte."""
    step = next(s for s in load(RELEASE)["jobs"]["plan"]["steps"] if s["name"] == SUMMARY_STEP)
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    github = GitHub(tmp_path, tmp_path, *tag_push("v1.0.0"), runner_env={"PATH": path})
    plan = github.temp / "plan"
    plan.mkdir(parents=True)
    card = "# Card\n\n``````\n</details>\n\n<img src=x onerror=alert(1)>\n```` $(id) `x`\n"
    (plan / "README.md").write_text(card)
    (plan / "manifest.json").write_text('{"files": []}\n')
    (plan / "release.json").write_text('{"note": "```"}\n')
    contexts = {"github": github.github_context("plan"), "runner": Strict(temp=str(github.temp))}
    runs, summary = github.run_steps([step], contexts, github.base_env("plan", False), {}, "bash")
    assert [r.why for r in runs] == ["ran"]
    fence = "`" * 7  # one more than the longest run of backticks in the card
    block = f"<details><summary>Model card (README.md)</summary>\n\n{fence}markdown\n"
    assert block + card + fence + "\n\n</details>\n" in summary
    assert '\n````json\n{"note": "```"}\n````\n' in summary
    assert summary.count("<details><summary>") == 3 and summary.count("</details>") == 3 + 1


class OidcHub(HubServer):
    """The loopback Hub that only accepts an exchanged token, plus GitHub's id-token endpoint
    (`/_github/id-token`) and the Hub's RFC 8693 token exchange (`POST /oauth/token`)."""

    def __init__(self) -> None:
        super().__init__(tokens={EXCHANGED: "publisher"})
        self.audiences: list[str] = []
        self.exchanges: list[dict[str, Any]] = []

    def _handle(self, method: str, target: str, auth: Any, rng: Any, body: bytes) -> Any:
        split = urlsplit(target)
        if split.path == "/_github/id-token" and auth == f"Bearer {ID_REQUEST_TOKEN}":
            self.audiences += parse_qs(split.query).get("audience", [])
            return Reply(200, json.dumps({"value": ID_TOKEN}).encode())
        if split.path == "/oauth/token" and method == "POST":
            self.exchanges.append(json.loads(body))
            reply = {"access_token": EXCHANGED, "token_type": "bearer", "expires_in": 3600}
            return Reply(200, json.dumps(reply).encode(), {"Content-Type": "application/json"})
        return super()._handle(method, target, auth, rng, body)


@pytest.mark.e2e
def test_trusted_publishing(tmp_path, workspace):
    """vars.HF_TRUSTED_PUBLISHING=true: HF_OIDC_RESOURCE is the model's Hub repo, the job's
    OIDC id token is exchanged for a Hub token, the long-lived secret is not passed on."""
    with OidcHub() as hub:
        hub.add_repo(REPO_ID, private=True)  # a trusted publisher is set on an existing repo
        github = make_github(
            tmp_path,
            workspace,
            hub,
            tag_push("v1.0.0"),
            secrets={"HF_TOKEN": "hf_long_lived_secret"},  # the Hub here would refuse it
            vars={"HF_TRUSTED_PUBLISHING": "true"},
            id_token_url=f"{hub.url}/_github/id-token?api-version=2.0",
        )
        jobs = run_release(github)

    job = jobs["publish-oidc"]
    assert job is not None and jobs["publish"] is None
    assert job.ran() == PUBLISH_STEPS and job.skipped() == PUBLISH_SKIPPED
    step = job.step("Release")
    assert step.env["HF_OIDC_RESOURCE"] == REPO_ID and step.env["HF_TOKEN"] == ""
    assert hub.audiences and set(hub.audiences) == {hub.url}
    assert {e["resource"] for e in hub.exchanges} == {REPO_ID}
    assert {e["subject_token"] for e in hub.exchanges} == {ID_TOKEN}
    released(hub, job, "v1.0.0")
    # The exchanged token is masked (on stderr: stdout may be data) before anything else is
    # printed, then never shown.
    assert step.stderr.splitlines()[0] == f"::add-mask::{EXCHANGED}"
    for run in jobs.values():
        assert run is None or EXCHANGED not in run.text().replace(f"::add-mask::{EXCHANGED}", "")
        assert run is None or "hf_long_lived_secret" not in run.text()


def test_only_publish_oidc_may_mint_an_id_token():
    for path in sorted(WORKFLOWS.glob("*.yml")):
        workflow = load(path)
        top = workflow.get("permissions")
        assert top in ({}, {"contents": "read"}), path.name
        for job_id, job in workflow["jobs"].items():
            granted = job.get("permissions", top) or {}
            minting = {(RELEASE, "publish-oidc"), (PUBLISH, "publish")}
            assert granted.get("id-token") != "write" or (path, job_id) in minting
            if any(str(s.get("uses", "")).startswith("actions/checkout") for s in job["steps"]):
                assert granted.get("contents") == "read", (path.name, job_id)


def test_actions_are_pinned_and_inputs_reach_scripts_through_env():
    for path in [*sorted(WORKFLOWS.glob("*.yml")), ACTION]:
        doc, text = load(path), path.read_text()  # a pinned commit names its version
        jobs = doc["jobs"].values() if "jobs" in doc else [doc["runs"]]
        for step in (s for job in jobs for s in job["steps"]):
            assert "${{" not in step.get("run", ""), (path.name, step.get("name"))
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
                assert re.search(rf"uses: {step['uses']} # v\d+\.\d+\.\d+\n", text), step["uses"]
            if str(step.get("uses", "")).startswith("actions/checkout"):
                assert step["with"]["persist-credentials"] is False


# ------------------------------------------------------------------------------ action.yml


@pytest.mark.e2e
def test_composite_action(hub, tmp_path, workspace):
    action = load(ACTION)
    env = {"HF_TOKEN": TOKEN}  # the calling step's `env: HF_TOKEN: ${{ secrets.HF_TOKEN }}`

    # On a tag push, with every input left at its default: the event decides, and publishes.
    job = make_github(tmp_path, workspace, hub, tag_push("v1.0.0")).run_action(action, {}, env)
    assert job.skipped() == {"Set up Python": SKIP_IF, "Install r1release": SKIP_INSTALL}
    assert job.ran() == ["Release"]
    assert job.step("Release").env["RELEASE_DRY_RUN"] == "auto"
    head = hub.repo(REPO_ID).branches["main"]
    assert job.outputs == {
        "repo-id": REPO_ID,
        "version": "v1.0.0",
        "revision": head,
        "commit-url": f"{hub.url}/{REPO_ID}/commit/{head}",
        "dry-run": "false",
    }
    assert hub.commit_counts[REPO_ID] == 1

    # On a branch push, with the inputs naming the release: a dry run, nothing written.
    hub.clear_log()
    inputs = {"model": "OpenR1-Tiny", "version": "v2.0.0", "dry-run": "true", "args": "--force"}
    inputs |= {"python-version": "3.11"}
    github = make_github(tmp_path, workspace, hub, branch_push())
    job = github.run_action(action, inputs, env)
    assert job.skipped() == {"Set up Python": SKIP_USES, "Install r1release": SKIP_INSTALL}
    assert "release OpenR1-Tiny v2.0.0 -> org/OpenR1-Tiny (dry run)" in job.step("Release").stderr
    assert hub.writes() == [] and job.outputs["dry-run"] == "true"
    assert job.outputs["version"] == "v2.0.0"
    assert TOKEN not in job.text().replace(f"::add-mask::{TOKEN}", "")


@pytest.mark.e2e
@pytest.mark.parametrize("dispatched", [{}, {"version": "v1.1.0"}])
def test_composite_action_honours_a_dispatch_dry_run(hub, tmp_path, workspace, dispatched):
    """`dry-run: auto` with the action's `model`/`version` set: a workflow_dispatch whose
    `dry_run` input is ticked stays a dry run (only `dry-run: false` would publish)."""
    event = dispatch(**dispatched, dry_run="true")
    github = make_github(tmp_path, workspace, hub, event)
    inputs = {"model": "OpenR1-Tiny", "version": "v3.0.0"}
    job = github.run_action(load(ACTION), inputs, {"HF_TOKEN": TOKEN})
    assert job.ran() == ["Release"] and job.step("Release").env["RELEASE_DRY_RUN"] == "auto"
    assert hub.writes() == [] and job.outputs["dry-run"] == "true"
    assert job.outputs["version"] == "v3.0.0"
    assert "release OpenR1-Tiny v3.0.0 -> org/OpenR1-Tiny (dry run)" in job.step("Release").stderr


@pytest.mark.e2e
def test_composite_action_plan_and_approved_publish(hub, tmp_path, workspace):
    """README's two jobs with the action: `dry-run: true` + `manifest`, then
    `expect-manifest`, which refuses a changed checkpoint before any write."""
    action, env = load(ACTION), {"HF_TOKEN": TOKEN}
    github = make_github(tmp_path, workspace, hub, tag_push("v1.0.0"))
    manifest = tmp_path / "approved" / "manifest.json"
    manifest.parent.mkdir()
    plan = {"dry-run": "true", "manifest": str(manifest)}

    job = github.run_action(action, plan, env)
    assert hub.writes() == [] and job.outputs["dry-run"] == "true"
    assert json.loads(manifest.read_text())["version"] == "v1.0.0"
    changed = change_weights(checkpoint_of(workspace))
    with pytest.raises(StepFailed) as failed:
        github.run_action(action, {"expect-manifest": str(manifest)}, env)
    assert failed.value.step.returncode == 1 and hub.writes() == []
    assert f"{changed} changed" in failed.value.step.stderr

    github.run_action(action, plan, env)  # planned and approved again
    job = github.run_action(action, {"expect-manifest": str(manifest)}, env)
    assert job.outputs["dry-run"] == "false" and hub.commit_counts[REPO_ID] == 1
    assert hub.repo(REPO_ID).tags["v1.0.0"] == job.outputs["revision"]


STUB_PYTHON = """\
import json, os, sys
from pathlib import Path
me, argv = Path(sys.argv[0]), sys.argv[1:]
venv = me.parent.parent if me.name == "python" else None
log = Path(os.environ["STUB_LOG"])
with log.open("a") as out:
    out.write(json.dumps(["venv" if venv else "runner", *argv]) + "\\n")
if argv[:2] == ["-m", "venv"]:
    (Path(argv[-1]) / "bin").mkdir(parents=True)
    (Path(argv[-1]) / "site-packages").mkdir()
    (Path(argv[-1]) / "bin" / "python").symlink_to(me)
elif argv[:2] == ["-m", "pip"]:
    pass
elif argv[0] == "-c" and "sysconfig" in argv[1]:
    print(venv / "site-packages")
elif argv[0] == "-c" and "torch" in argv[1]:
    if venv is None:
        found = os.environ.get("STUB_RUNNER_TORCH")
    else:  # installed into the venv, or the runner's through a .pth file
        found = list((venv / "site-packages").glob("*.pth")) or '"torch==' in log.read_text()
    if not found:
        sys.exit("ModuleNotFoundError: No module named 'torch'")
    print(found)
else:
    sys.exit(f"stub python3: unexpected {argv}")
"""
TORCH_PIN = (
    "torch==" + re.search(r"^torch==(.+)$", (ROOT / "requirements-dev.txt").read_text(), re.M)[1]
)
CPU_TORCH = ["install", "--quiet", TORCH_PIN, "--index-url", "https://download.pytorch.org/whl/cpu"]


@pytest.mark.parametrize(
    "mode,runner_torch,installs",
    [
        ("auto", "/opt/runner/site-packages", "runner"),  # the GPU runner's torch, as it is
        ("auto", None, "cpu"),
        ("cpu", "/opt/runner/site-packages", "cpu"),
        ("skip", None, "none"),
    ],
)
@pytest.mark.e2e
def test_composite_action_installs_torch(hub, tmp_path, mode, runner_torch, installs):
    """The `torch` input, with a stub python3 that logs what it is asked: `auto` uses the
    runner's torch when its python3 imports one, else the CPU build; `cpu` always the CPU
    build; `skip` none. Then the project, from the action's directory."""
    stubs, log = tmp_path / "stubs", tmp_path / "python.log"
    stubs.mkdir()
    (stubs / "python3").write_text(f"#!{sys.executable}\n{STUB_PYTHON}")
    (stubs / "python3").chmod(0o755)
    env = {"STUB_LOG": str(log)} | ({"STUB_RUNNER_TORCH": runner_torch} if runner_torch else {})
    github = make_github(tmp_path, tmp_path, hub, tag_push("v1.0.0"), path=[str(stubs)])
    github.runner_env |= env
    job = github.run_action(load(ACTION), {"torch": mode}, {}, install=True, only={INSTALL})
    assert job.ran() == [INSTALL]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    venv = github.temp / "r1release-action"
    assert calls[0] == ["runner", "-m", "venv", str(venv)]
    assert all(c[0] == "venv" for c in calls if c[1:3] == ["-m", "pip"])
    pips = [c[3:] for c in calls if c[1:3] == ["-m", "pip"]]
    torch = [CPU_TORCH] if installs == "cpu" else []
    lock = ["install", "--quiet", "--require-hashes", "--no-deps", "-r"]
    lock.append(f"{ROOT}/requirements/release.txt")
    project = ["install", "--quiet", "--no-deps", "--no-build-isolation", str(ROOT)]
    assert pips == [*torch, lock, project]  # a pinned, hash-checked set, then r1release
    pth = venv / "site-packages" / "r1release-runner-torch.pth"
    if installs == "runner":
        assert pth.read_text() == f"{runner_torch}\n"
        assert f"torch: the runner's, in {runner_torch}" in job.step(INSTALL).stdout
    else:
        assert not pth.exists()
    checked = ["venv", "-c", "import torch"] in calls  # the venv imports torch at the end
    assert checked == (installs != "none")

    with pytest.raises(StepFailed, match="torch must be auto, cpu or skip"):
        github.run_action(load(ACTION), {"torch": "cuda"}, {}, install=True, only={INSTALL})


# ------------------------------------------------------------------------------ train.yml


@pytest.mark.e2e
def test_train_writes_where_release_yaml_says_and_checks(hub, tmp_path):
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    checkpoint = tmp_path / "runs" / "OpenR1-Tiny"
    write_release_yaml(workspace, checkpoint)
    stubs, log = tmp_path / "stubs", tmp_path / "accelerate.json"
    stubs.mkdir()
    accelerate = stubs / "accelerate"  # trains in no time: writes a tiny, correct checkpoint
    accelerate.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "from pathlib import Path\n"
        "from factory import build_checkpoint, real_cases\n"
        f"Path({str(log)!r}).write_text(json.dumps(sys.argv[1:]))\n"
        "out = sys.argv[sys.argv.index('--output_dir') + 1]\n"
        "build_checkpoint(Path(out), real_cases()['qwen2.5-7b-instruct'])\n"
    )
    accelerate.chmod(0o755)
    event = dispatch(recipe="recipes/sft.yaml", model="OpenR1-Tiny")
    github = make_github(tmp_path, workspace, hub, event, path=[str(stubs)])
    job = github.run_job(load(WORKFLOWS / "train.yml"), "train")

    assert job.ran() == ["Checkpoint directory from release.yaml", "Train", "Check the checkpoint"]
    assert job.concurrency == "train-OpenR1-Tiny"
    args = ["launch", "examples/sft.py", "--config", "recipes/sft.yaml"]
    assert json.loads(log.read_text()) == [*args, "--output_dir", str(checkpoint)]
    assert f"### r1release check: `{checkpoint}`" in job.summary
    assert "No findings" in job.summary and hub.log == []

    # release.yaml's default, `${R1RELEASE_CHECKPOINTS:-data}/...`, lies inside the checkout,
    # which the next actions/checkout deletes: train.yml refuses it before training.
    write_release_yaml(workspace, Path("${R1RELEASE_CHECKPOINTS:-data}/OpenR1-Tiny"))
    log.unlink()
    with pytest.raises(AssertionError, match="is inside the checkout"):
        github.run_job(load(WORKFLOWS / "train.yml"), "train")
    assert not log.exists()


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("method", "script"), [("grpo", "examples/grpo.py"), ("../evil", None), ("sft;id", None)]
)
def test_train_runs_the_script_the_method_input_names(hub, tmp_path, method, script):
    """`method` picks examples/sft.py or examples/grpo.py; anything else (an API dispatch is
    not held to the choice) stops before training, as a path is never built from it."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    write_release_yaml(workspace, tmp_path / "runs" / "OpenR1-Tiny")
    stubs, log = tmp_path / "stubs", tmp_path / "accelerate.json"
    stubs.mkdir()
    accelerate = stubs / "accelerate"
    accelerate.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(log)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    accelerate.chmod(0o755)
    event = dispatch(method=method, recipe="recipes/grpo.yaml", model="OpenR1-Tiny")
    github = make_github(tmp_path, workspace, hub, event, path=[str(stubs)])
    if script is None:
        with pytest.raises(AssertionError, match="method must be sft or grpo"):
            github.run_job(load(WORKFLOWS / "train.yml"), "train", only={"Train"})
        assert not log.exists()
    else:
        github.run_job(load(WORKFLOWS / "train.yml"), "train", only={"Train"})
        assert json.loads(log.read_text())[:2] == ["launch", script]


# ------------------------------------------------------------------------------ ci.yml


@pytest.mark.e2e
def test_ci_dry_runs_the_example_release_yaml(hub, tmp_path):
    """ci.yml's last step, as it is: a tiny checkpoint, its own loopback Hub, a dry run."""
    name = "Dry-run the example release.yaml against a loopback Hub"
    github = make_github(tmp_path, ROOT, hub, branch_push())
    job = github.run_job(load(WORKFLOWS / "ci.yml"), "test", only={name})
    assert hub.log == []  # the step started a Hub of its own
    assert job.ran() == [name]
    out = job.step(name).stdout
    # No token in ci.yml: the Hub cannot tell "missing" from "private and not yours".
    anonymous = "not found without a token: a private repository is invisible, it may exist"
    assert any(
        f"open-r1/OpenR1-Distill-7B (private, {repo})" in out
        for repo in ("new repository", anonymous)
    )
    assert "tag: v0.0.0 (new)" in out and "dry run: nothing was sent" in out
    assert "### r1release: OpenR1-Distill-7B v0.0.0 (dry run)" in job.summary


GITHUB_HOSTED = re.compile(r"(ubuntu|windows|macos)-[\w.-]+")


def test_pull_requests_never_reach_a_self_hosted_runner():
    """Code from a pull request runs on GitHub-hosted runners only; the self-hosted runner
    (checkpoints, Hub credentials) runs only tag pushes and manual runs, which only people
    with write access can start. No workflow runs on pull_request_target or workflow_run."""
    for path in sorted(WORKFLOWS.glob("*.yml")):
        on = triggers(load(path))
        assert not set(on) & {"pull_request_target", "workflow_run"}, path.name
        for job_id, job in load(path)["jobs"].items():
            labels = job["runs-on"] if isinstance(job["runs-on"], list) else [job["runs-on"]]
            if "pull_request" in on:
                assert all(GITHUB_HOSTED.fullmatch(x) for x in labels), (path.name, job_id)
            if "self-hosted" in labels:
                assert set(on) <= {"push", "workflow_dispatch"}, (path.name, job_id)
                assert set(on.get("push", {})) <= {"tags"}, (path.name, job_id)  # no branch
    assert "pull_request" in triggers(load(WORKFLOWS / "ci.yml"))


# ------------------------------------------------------------------------------ audits


def _tool(name: str) -> str:
    found = shutil.which(
        name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    if found is None:
        pytest.skip(f"{name} is not installed (it is in the test extra)")
    return found


@pytest.mark.e2e
def test_zizmor_finds_nothing():
    proc = subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", ".github/workflows", "action.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings" in proc.stdout


@pytest.mark.parametrize(
    "schema,files",
    [
        ("vendor.github-workflows", sorted(str(p) for p in WORKFLOWS.glob("*.yml"))),
        ("vendor.github-actions", [str(ACTION)]),
        ("vendor.dependabot", [str(ROOT / ".github" / "dependabot.yml")]),
    ],
)
@pytest.mark.e2e
def test_check_jsonschema(schema, files):
    tool = _tool("check-jsonschema")
    proc = subprocess.run(
        [tool, "--builtin-schema", schema, *files], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------------------ publish.yml


def test_publish_builds_then_publishes_with_trusted_publishing():
    """A package tag (never a model's `v*` / `NAME@v*`), a build job with no credential, and
    a publish job in the `pypi` environment that alone may mint an id token and runs no code
    of the repository: download, then pypa/gh-action-pypi-publish with attestations."""
    workflow = load(PUBLISH)
    assert triggers(workflow) == {"push": {"tags": ["r1release-v*"]}}
    assert not GitHub(ROOT, ROOT, *tag_push("v1.2.0"), runner_env={}).triggers(workflow)
    assert not any(
        fnmatch.fnmatchcase("r1release-v0.2.0", t) for t in triggers(load(RELEASE))["push"]["tags"]
    )
    assert workflow["permissions"] == {}
    build, publish = workflow["jobs"]["build"], workflow["jobs"]["publish"]
    assert build["permissions"] == {"contents": "read"} and "environment" not in build
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi" and publish["needs"] == ["build"]
    uses = [step.get("uses", "").split("@")[0] for step in publish["steps"]]
    assert uses == ["actions/download-artifact", "pypa/gh-action-pypi-publish"]
    assert publish["steps"][-1]["with"] == {"attestations": True}
    script = "\n".join(step.get("run", "") for step in build["steps"])
    assert "--require-hashes" in script and "--no-isolation" in script
    assert "twine check --strict" in script
    setup = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    assert "cache" not in setup["with"]  # what is published is never built from a cache


def test_publish_refuses_a_tag_that_is_not_the_version(tmp_path):
    """The version check of the build job, run: `r1release-v<__version__>` only."""
    import r1release

    (step,) = (
        s
        for s in load(PUBLISH)["jobs"]["build"]["steps"]
        if s.get("name") == "The tag names the package's version"
    )

    def run(tag: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ["PATH"], "GITHUB_REF_NAME": tag}
        return subprocess.run(
            ["bash", "-c", step["run"]], cwd=ROOT, env=env, capture_output=True, text=True
        )

    assert run(f"r1release-v{r1release.__version__}").returncode == 0
    refused = run("r1release-v99.0.0")
    assert refused.returncode == 1
    assert f"is not r1release-v{r1release.__version__}" in refused.stdout


# ------------------------------------------------------------------------------ ci.yml, locks


def test_ci_runs_on_the_default_branch_and_pull_requests_with_a_pip_cache():
    workflow = load(WORKFLOWS / "ci.yml")
    assert triggers(workflow) == {"push": {"branches": ["main"]}, "pull_request": {}}
    for job_id, job in workflow["jobs"].items():
        setup = next(
            s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python")
        )
        assert setup["with"]["cache"] == "pip", job_id
        assert "requirements-dev.txt" in setup["with"]["cache-dependency-path"], job_id
    cells = workflow["jobs"]["packaging"]["steps"][-1]["run"]
    assert "bash .ci/run lowest core wheel" in cells


def test_release_installs_are_pinned_and_hash_checked():
    """The composite action, release.yml and train.yml install a lock of requirements/, with
    hashes and without dependencies of their own choosing, then r1release with --no-deps."""
    scripts = {
        ACTION: [load(ACTION)["runs"]["steps"]],
        RELEASE: [job["steps"] for job in load(RELEASE)["jobs"].values()],
        WORKFLOWS / "train.yml": [
            job["steps"] for job in load(WORKFLOWS / "train.yml")["jobs"].values()
        ],
    }
    for path, jobs in scripts.items():
        for steps in jobs:
            installs = [
                line.strip()
                for step in steps
                for line in step.get("run", "").splitlines()
                if re.search(r"-m pip install", line)
            ]
            for line in installs:
                assert "--upgrade" not in line, (path.name, line)
                pinned = "--require-hashes --no-deps -r" in line or '"torch==' in line
                project = "--no-deps --no-build-isolation" in line
                assert pinned or project or '"$torch"' in line, (path.name, line)
            if installs:
                assert any("--require-hashes" in line for line in installs), path.name


def test_dependabot_moves_the_pinned_actions_and_the_python_locks():
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    ecosystems = {u["package-ecosystem"]: u for u in config["updates"]}
    assert ecosystems["github-actions"]["directory"] == "/"  # workflows and action.yml
    assert set(ecosystems["pip"]["directories"]) == {"/", "/requirements"}

"""The GitHub Actions workflows and the composite action, run in a simulated runner.

Each `run:` step runs with bash, in order, in an environment shaped like GitHub's: the
GITHUB_* variables, an event payload at GITHUB_EVENT_PATH, fresh GITHUB_OUTPUT / GITHUB_PATH /
GITHUB_STEP_SUMMARY files per step, the runner's environment pointing huggingface_hub at the
loopback Hub. `${{ }}` expressions in `env:`, `if:`, `outputs:`, `concurrency:` and
`environment:` are evaluated by the small evaluator below, which knows only what these files
use and fails loudly on anything else. Two kinds of step are skipped, and every test says
which steps ran: a step that `uses:` an action (checkout, setup-python), and a step whose
first command installs the project (`python3 -m venv`, `pip install`): the project is
installed in the test venv, which is on the simulated PATH.
"""

from __future__ import annotations

import fnmatch
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


def skip_reason(step: dict[str, Any]) -> str | None:
    """Which steps the simulation does not run: actions, and installing the project."""
    if "uses" in step:
        return SKIP_USES
    first = next(line for line in step["run"].splitlines() if line.strip())
    return SKIP_INSTALL if INSTALL_RE.match(first.strip()) else None


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
    why: str  # "ran" or why it was skipped
    env: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""


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
    """One event, the repository's secrets and variables, and a runner to run jobs on."""

    root: Path
    workspace: Path
    event_name: str
    ref: str
    payload: dict[str, Any]
    runner_env: dict[str, str]
    secrets: dict[str, str] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    id_token_url: str | None = None  # GitHub's OIDC endpoint, given with `id-token: write`

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
            "RUNNER_TEMP": str(self.root / "runner-temp"),
            "RUNNER_OS": "Linux",
        }
        (self.root / "runner-temp").mkdir(exist_ok=True)
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
            if reason := skip_reason(step):
                runs.append(StepRun(name, reason))
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
            assert proc.returncode == 0, (
                f"step {name!r} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
            runs.append(StepRun(name, "ran", step_env, proc.stdout, proc.stderr))
            if "id" in step:
                outputs = parse_env_file(files["OUTPUT"].read_text())
                contexts["steps"][step["id"]] = {"outputs": outputs, "outcome": "success"}
            path_dirs += [p for p in files["PATH"].read_text().splitlines() if p]
            summary += files["SUMMARY"].read_text()
        return runs, summary

    def run_job(
        self,
        workflow: dict[str, Any],
        job_id: str,
        needs: dict[str, JobRun] | None = None,
        only: set[str] | None = None,
    ) -> JobRun:
        job = workflow["jobs"][job_id]
        needed = job.get("needs", [])
        needed = [needed] if isinstance(needed, str) else needed
        assert sorted(needs or {}) == sorted(needed), f"{job_id} needs {needed}"
        contexts: dict[str, Any] = {
            "github": self.github_context(job_id),
            "inputs": self.inputs(workflow),
            "secrets": dict(self.secrets),
            "vars": dict(self.vars),
            "needs": Strict(
                {k: {"outputs": v.outputs, "result": "success"} for k, v in (needs or {}).items()}
            ),
        }
        yaml_env = {k: render(v, contexts) for k, v in (workflow.get("env") or {}).items()}
        contexts["env"] = yaml_env
        yaml_env |= {k: render(v, contexts) for k, v in (job.get("env") or {}).items()}
        concurrency = job.get("concurrency")
        group = render(concurrency["group"], contexts) if concurrency else None
        environment = job.get("environment") or {}
        environment = environment if isinstance(environment, dict) else {"name": environment}
        permissions = job.get("permissions", workflow.get("permissions")) or {}
        id_token = isinstance(permissions, dict) and permissions.get("id-token") == "write"
        contexts["runner"] = Strict(temp=str(self.root / "runner-temp"), os="Linux")
        shell = ((job.get("defaults") or workflow.get("defaults") or {}).get("run") or {}).get(
            "shell"
        )
        steps, summary = self.run_steps(
            job["steps"], contexts, self.base_env(job_id, id_token), yaml_env, shell, only
        )
        outputs = {k: render(v, contexts) for k, v in (job.get("outputs") or {}).items()}
        if environment:
            name, url = (render(environment.get(k, ""), contexts) for k in ("name", "url"))
            return JobRun(steps, outputs, summary, group, (name, url))
        return JobRun(steps, outputs, summary, group)

    def run_action(
        self, action: dict[str, Any], inputs: dict[str, str], step_env: dict[str, str]
    ) -> JobRun:
        """A composite action called from a step with `with: inputs` and `env: step_env`."""
        assert action["runs"]["using"] == "composite"
        declared = action.get("inputs") or {}
        assert set(inputs) <= set(declared), f"undeclared inputs {set(inputs) - set(declared)}"
        values = {k: inputs.get(k, to_text(v.get("default", ""))) for k, v in declared.items()}
        contexts: dict[str, Any] = {
            "github": self.github_context("caller", action_path=ROOT),
            "inputs": Strict(values),
            "runner": Strict(temp=str(self.root / "runner-temp"), os="Linux"),
        }
        for step in action["runs"]["steps"]:
            assert "uses" in step or step.get("shell"), "a composite run step needs a shell"
        steps, summary = self.run_steps(
            action["runs"]["steps"], contexts, self.base_env("caller", False), step_env, None
        )
        outputs = {k: render(v["value"], contexts) for k, v in action["outputs"].items()}
        return JobRun(steps, outputs, summary)

    def inputs(self, workflow: dict[str, Any]) -> Strict:
        """The `inputs` context: workflow_dispatch inputs, typed (booleans stay booleans)."""
        declared = (triggers(workflow).get("workflow_dispatch") or {}).get("inputs") or {}
        given = self.payload.get("inputs") or {} if self.event_name == "workflow_dispatch" else {}
        out = Strict()
        for name, spec in declared.items():
            value = given.get(name)
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
RELEASE_SKIPPED = {
    "Check out the repository": SKIP_USES,
    "Install r1release": SKIP_INSTALL,
    "Hub repository for trusted publishing": SKIP_IF,
}
ID_REQUEST_TOKEN, ID_TOKEN, EXCHANGED = "gh_request_3d1f", "eyJ.id-token.sig", "hf_oidc_7c2e55"


@pytest.fixture
def workspace(tmp_path, checkpoint):
    """A training repository whose release.yaml names the fixture's typical SFT output."""
    path = tmp_path / "workspace"
    path.mkdir()
    write_release_yaml(path, checkpoint(CASE))
    return path


def run_release(github: GitHub) -> tuple[JobRun, JobRun]:
    workflow = load(RELEASE)
    assert github.triggers(workflow)
    model = github.run_job(workflow, "model")
    assert model.ran() == ["Model named by the tag or the inputs"]
    return model, github.run_job(workflow, "release", needs={"model": model})


def released(hub: HubServer, job: JobRun, version: str) -> None:
    repo = hub.repo(REPO_ID)
    assert hub.commit_counts[REPO_ID] == 1
    assert repo.tags[version] == repo.branches["main"]
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


@pytest.mark.parametrize("tag", ["v1.0.0", "OpenR1-Tiny@v1.0.0"])
def test_tag_push_releases(hub, tmp_path, workspace, checkpoint, tag):
    if "@" in tag:  # several models (NAME@v* tags): the other model is left alone
        text = (workspace / "release.yaml").read_text()
        other = text.split("models:\n", 1)[1].replace("OpenR1-Tiny", "OpenR1-Other")
        (workspace / "release.yaml").write_text(text + other)
    github = make_github(
        tmp_path, workspace, hub, tag_push(tag), secrets={"HF_TOKEN": TOKEN}, vars={}
    )
    model, job = run_release(github)

    group = "OpenR1-Tiny" if "@" in tag else "default"
    assert model.outputs == {"name": group}
    assert job.concurrency == f"release-{group}"
    assert job.environment == ("huggingface", job.outputs["commit_url"])
    assert job.ran() == ["Release"] and job.skipped() == RELEASE_SKIPPED
    released(hub, job, "v1.0.0")
    assert set(hub.commit_counts) == {REPO_ID} and hub.count("create-repo") == 1
    step = job.step("Release")
    assert step.env["HF_TOKEN"] == TOKEN and step.env["HF_OIDC_RESOURCE"] == ""
    assert step.stdout.splitlines()[0] == f"::add-mask::{TOKEN}"
    assert TOKEN not in job.text().replace(f"::add-mask::{TOKEN}", "")


@pytest.mark.parametrize("dry_run", [True, False])
def test_workflow_dispatch(hub, tmp_path, workspace, dry_run):
    event = dispatch(model="OpenR1-Tiny", version="v1.1.0", dry_run=str(dry_run).lower())
    github = make_github(tmp_path, workspace, hub, event, secrets={"HF_TOKEN": TOKEN})
    model, job = run_release(github)

    assert model.outputs == {"name": "OpenR1-Tiny"}
    assert job.concurrency == "release-OpenR1-Tiny"
    assert job.ran() == ["Release"] and job.skipped() == RELEASE_SKIPPED
    if dry_run:
        assert hub.writes() == []
        assert job.outputs["dry_run"] == "true" and job.outputs["repo_id"] == REPO_ID
        assert "### r1release: OpenR1-Tiny v1.1.0 (dry run)" in job.summary
        assert "dry run: nothing was sent" in job.step("Release").stdout
    else:
        released(hub, job, "v1.1.0")
    assert TOKEN not in job.text().replace(f"::add-mask::{TOKEN}", "")


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
        _, job = run_release(github)

    assert job.ran() == ["Hub repository for trusted publishing", "Release"]
    step = job.step("Release")
    assert step.env["HF_OIDC_RESOURCE"] == REPO_ID and step.env["HF_TOKEN"] == ""
    assert hub.audiences and set(hub.audiences) == {hub.url}
    assert {e["resource"] for e in hub.exchanges} == {REPO_ID}
    assert {e["subject_token"] for e in hub.exchanges} == {ID_TOKEN}
    released(hub, job, "v1.0.0")
    # The exchanged token is masked before anything else is printed, then never shown.
    assert step.stdout.splitlines()[0] == f"::add-mask::{EXCHANGED}"
    assert EXCHANGED not in job.text().replace(f"::add-mask::{EXCHANGED}", "")
    assert "hf_long_lived_secret" not in job.text()


def test_only_the_release_job_may_mint_an_id_token():
    for path in sorted(WORKFLOWS.glob("*.yml")):
        workflow = load(path)
        top = workflow.get("permissions")
        assert top in ({}, {"contents": "read"}), path.name
        for job_id, job in workflow["jobs"].items():
            granted = job.get("permissions", top) or {}
            assert granted.get("id-token") != "write" or (path, job_id) == (RELEASE, "release")
            if any(str(s.get("uses", "")).startswith("actions/checkout") for s in job["steps"]):
                assert granted.get("contents") == "read", (path.name, job_id)


def test_actions_are_pinned_and_inputs_reach_scripts_through_env():
    for path in [*sorted(WORKFLOWS.glob("*.yml")), ACTION]:
        doc = load(path)
        jobs = doc["jobs"].values() if "jobs" in doc else [doc["runs"]]
        for step in (s for job in jobs for s in job["steps"]):
            assert "${{" not in step.get("run", ""), (path.name, step.get("name"))
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
            if str(step.get("uses", "")).startswith("actions/checkout"):
                assert step["with"]["persist-credentials"] is False


# ------------------------------------------------------------------------------ action.yml


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


# ------------------------------------------------------------------------------ train.yml


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


# ------------------------------------------------------------------------------ ci.yml


def test_ci_dry_runs_the_example_release_yaml(hub, tmp_path):
    """ci.yml's last step, as it is: a tiny checkpoint, its own loopback Hub, a dry run."""
    name = "Dry-run the example release.yaml against a loopback Hub"
    github = make_github(tmp_path, ROOT, hub, branch_push())
    job = github.run_job(load(WORKFLOWS / "ci.yml"), "test", only={name})
    assert hub.log == []  # the step started a Hub of its own
    assert job.ran() == [name]
    out = job.step(name).stdout
    assert "open-r1/OpenR1-Distill-7B (private, new repository)" in out
    assert "tag: v0.0.0 (new)" in out and "dry run: nothing was sent" in out
    assert "### r1release: OpenR1-Distill-7B v0.0.0 (dry run)" in job.summary


# ------------------------------------------------------------------------------ audits


def _tool(name: str) -> str:
    found = shutil.which(
        name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    if found is None:
        pytest.skip(f"{name} is not installed (it is in the test extra)")
    return found


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
    ],
)
def test_check_jsonschema(schema, files):
    tool = _tool("check-jsonschema")
    proc = subprocess.run(
        [tool, "--builtin-schema", schema, *files], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

"""GitHub Actions output: annotations, the step summary, step outputs and token masking.

Pure functions that build text, plus two small writers for the files GitHub names in
``GITHUB_OUTPUT`` and ``GITHUB_STEP_SUMMARY``; the CLI decides when to use them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from r1release.findings import Finding, Report


def in_github_actions(env: Mapping[str, str] | None = None) -> bool:
    return (os.environ if env is None else env).get("GITHUB_ACTIONS") == "true"


# Secrets the runner does not know: it masks what comes from `secrets.*` (HF_TOKEN) by
# itself, but an OIDC id token that a step put in the environment is no registered secret.
# (The Hub token that trusted publishing buys is masked when it is obtained.)
UNREGISTERED_SECRETS = ("HF_OIDC_ID_TOKEN",)


def mask_commands(env: Mapping[str, str] | None = None) -> list[str]:
    """``::add-mask::`` for the secrets of the environment that the runner does not already
    mask, printed (on stderr) before anything else."""
    env = os.environ if env is None else env
    return [f"::add-mask::{env[name]}" for name in UNREGISTERED_SECRETS if env.get(name)]


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def repo_path(checkpoint: str | Path, file: str | None, workspace: str | None = None) -> str:
    """A finding's file relative to the repository root (``GITHUB_WORKSPACE``) when inside it."""
    full = Path(checkpoint, file) if file else Path(checkpoint)
    root = Path(workspace or os.environ.get("GITHUB_WORKSPACE") or os.getcwd())
    try:
        return Path(os.path.abspath(full)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return os.path.abspath(full)


def annotation(finding: Finding, checkpoint: str | Path, workspace: str | None = None) -> str:
    """One ``::error``/``::warning`` workflow command for a finding."""
    level = "error" if finding.severity.value == "error" else "warning"
    props = {
        "file": repo_path(checkpoint, finding.file, workspace),
        "title": f"{finding.rule} ({finding.rule_id})",
    }
    message = finding.message + (f" (hint: {finding.hint})" if finding.hint else "")
    joined = ",".join(f"{k}={_escape_property(v)}" for k, v in props.items())
    return f"::{level} {joined}::{_escape_data(message)}"


def annotations(report: Report, workspace: str | None = None) -> list[str]:
    return [annotation(f, report.checkpoint, workspace) for f in report.findings]


def findings_table(findings: Iterable[Finding]) -> str:
    rows = ["| severity | rule | file | message |", "|---|---|---|---|"]
    for f in findings:
        cells = [
            f.severity.value,
            f"`{f.rule}`",
            f"`{f.file}`" if f.file else "",
            f.message.replace("|", "\\|"),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def report_summary(report: Report, title: str | None = None) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: a headline and the findings table."""
    lines = [f"### {title or 'r1release check'}: `{report.checkpoint}`", ""]
    if report.findings:
        lines.append(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")
        lines += ["", findings_table(report.findings)]
    else:
        lines.append(f"No findings ({len(report.rules_run)} rules).")
    lines += skipped_lines(report)
    return "\n".join(lines) + "\n"


def skipped_lines(report: Report) -> list[str]:
    """Markdown lines for the rules that could not run here (a missing requirement)."""
    cannot = [s for s in report.rules_skipped if s.missing_requirement]
    if not cannot:
        return []
    lines = ["", "Skipped, cannot run here:", ""]
    lines += [f"- `{s.rule}` ({s.severity.value}): {s.reason}" for s in cannot]
    return lines


def release_summary(stage: Any, result: Any, release: Any = None) -> str:
    """Markdown for a release: the plan, the Hub links, and the findings (warnings) table."""
    plan = result.plan
    endpoint = result.commit_url.split(f"/{plan.repo_id}/", 1)[0]
    if not result.commit_url:  # offline: no request was made, so no URL came back
        endpoint = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    state = "dry run" if result.dry_run else ("already released" if plan.noop else "released")
    state += ", offline: the Hub was not contacted" if plan.offline else ""
    lines = [
        f"### r1release: {stage.model.name} {plan.version} ({state})",
        "",
        f"- repository: [{plan.repo_id}]({endpoint}/{plan.repo_id})"
        + (" (private)" if plan.private else ""),
        f"- tag: [{plan.version}]({endpoint}/{plan.repo_id}/tree/{plan.version})",
    ]
    if result.commit:
        lines.append(f"- commit: [{result.commit[:12]}]({result.commit_url})")
    if release is not None and release.git_commit:
        lines.append(f"- git commit: `{release.git_commit}`")
    if release is not None and release.run_url:
        lines.append(f"- workflow run: {release.run_url}")
    lines.append(f"- manifest sha256: `{stage.manifest_sha256()}`")
    lines += ["", "| file | state | size |", "|---|---|---|"]
    lines += [f"| `{a.path}` | {a.state} | {a.size} |" for a in plan.actions]
    lines += [f"| `{p}` | excluded (training state) | |" for p in stage.excluded]
    if stage.report.findings:
        lines += ["", findings_table(stage.report.findings)]
    lines += skipped_lines(stage.report)
    return "\n".join(lines) + "\n"


def append_summary(markdown: str, env: Mapping[str, str] | None = None) -> None:
    path = (os.environ if env is None else env).get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(markdown + "\n")


def write_outputs(values: Mapping[str, str], env: Mapping[str, str] | None = None) -> None:
    """Append ``name=value`` pairs to ``$GITHUB_OUTPUT`` (heredoc syntax for multi-line)."""
    path = (os.environ if env is None else env).get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        for name, value in values.items():
            if "\n" in value:
                delimiter = f"r1release_{secrets.token_hex(8)}"
                fh.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
            else:
                fh.write(f"{name}={value}\n")

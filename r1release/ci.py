"""GitHub Actions output: annotations, the step summary, step outputs and token masking.

Pure functions that build text, plus two small writers for the files GitHub names in
``GITHUB_OUTPUT`` and ``GITHUB_STEP_SUMMARY``; the CLI decides when to use them.

Every string from a checkpoint, ``release.yaml``, an event payload or a Hub reply is
untrusted: it reaches the Actions log, an annotation or the step summary only through the
escaping functions below (DESIGN.md §6a), the one place that knows GitHub's rules:

- :func:`command_data`, :func:`command_property`: a workflow command's message and its
  ``key=value`` properties (the runner's own escaping, src/Runner.Common/ActionCommand.cs);
- :func:`summary_text`, :func:`summary_code`, :func:`summary_link`: Markdown table cells,
  list items and headings of the step summary: one line, no HTML, no Markdown markup, no
  cell break;
- :func:`log_line`: a human-readable line on stdout or stderr that the runner must not take
  for a workflow command.

Lengths are capped (the ``*_LIMIT`` constants): GitHub truncates or rejects larger output
anyway, and a 10 MB token name must not become a 10 MB log line.
"""

from __future__ import annotations

import os
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from r1release.findings import Finding, Report

T = TypeVar("T")

# Caps, in characters of the untrusted text before escaping (escaping can only lengthen it,
# by a bounded factor). GitHub shows an annotation's title up to 255 characters and keeps at
# most 1 MiB of step summary per step.
ANNOTATION_MESSAGE_LIMIT = 4096
ANNOTATION_TITLE_LIMIT = 255
ANNOTATION_FILE_LIMIT = 1024
SUMMARY_CELL_LIMIT = 2048  # one table cell, list item value or heading value
SUMMARY_TABLE_ROWS = 500  # rows per summary table; the rest are counted in one last row
SUMMARY_LIMIT = 1000 * 1024  # bytes in $GITHUB_STEP_SUMMARY (GitHub's limit: 1 MiB per step)
LOG_LINE_LIMIT = 8192
URL_LIMIT = 2048


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
    return [
        f"::add-mask::{command_data(env[name])}" for name in UNREGISTERED_SECRETS if env.get(name)
    ]


# ----------------------------------------------------------------------- escaping


def command_data(text: object) -> str:
    """A workflow command's data (an annotation's message, ``::add-mask::``'s value), escaped
    as the runner unescapes it: ``%`` -> ``%25``, CR -> ``%0D``, LF -> ``%0A``. The result
    holds no line break, so the text cannot end the command's line and start another."""
    return str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def command_property(text: object) -> str:
    """A workflow command's property value (``file=``, ``title=``): :func:`command_data`
    and also ``:`` -> ``%3A`` and ``,`` -> ``%2C``, so the value can end neither the property
    list (``::``) nor its own property (``,``)."""
    return command_data(text).replace(":", "%3A").replace(",", "%2C")


def log_line(text: object, limit: int = LOG_LINE_LIMIT) -> str:
    """``text`` as one line for stdout or stderr that the runner cannot read as a workflow
    command.

    Line breaks are shown as ``\\n``/``\\r`` (``\\u2028`` …), tabs as ``\\t``, other control
    and format characters (ANSI escapes, zero-width and bidirectional marks) as ``\\xNN`` or
    ``\\uNNNN``, as are combining marks that follow no letter. A line that, blanks trimmed,
    would begin with ``::`` gets a ``\\`` before it (a blank would not do: the runner trims
    leading blanks), and ``##[`` (the runner's older command syntax, matched anywhere in a
    line) becomes ``##\\[``. Longer texts are cut at ``limit`` characters.
    """
    line = _visible(_truncate(str(text), limit), breaks=None, marks=True)
    line = line.replace("##[", "##\\[")
    body = line.lstrip()
    if body.startswith("::"):
        line = line[: len(line) - len(body)] + "\\" + body
    return line


_MARKDOWN = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "\\": "&#92;",  # no backslash of the text's own can undo an escape below
        "`": "&#96;",
        "[": "&#91;",
        "]": "&#93;",
        "*": "&#42;",
        "_": "&#95;",
        "~": "&#126;",
        "$": "&#36;",  # math
        "@": "&#64;",  # mentions
        "|": "\\|",  # a table cell's end (GFM wants the backslash, an entity does not do)
    }
)
_LEADING = re.compile(r"^(\s*)(?:([#+=-])|(\d+)([.)]))")  # block markers at a line's start
_AUTOLINK = re.compile(r"(?i)(?<=[a-z0-9]):(?=//)|\b(www)\.")


def summary_text(text: object, limit: int = SUMMARY_CELL_LIMIT) -> str:
    """``text`` as inline Markdown for a table cell, a list item or a heading of the step
    summary, shown as it is and nothing more.

    One line: line breaks become ``↵``, other control characters ``\\xNN``/``\\uNNNN``.
    ``|`` becomes ``\\|``; ``& < > \\ ` [ ] * _ ~ $ @`` become HTML entities (no HTML tag, no
    link, no emphasis, no code span, no math, no mention); a leading ``#``, ``-``, ``+``,
    ``=`` or ``1.`` is an entity too, and URLs are not turned into links. Cut at ``limit``
    characters.
    """
    text = _visible(_truncate(str(text), limit), breaks="↵").translate(_MARKDOWN)
    text = _AUTOLINK.sub(lambda m: "www&#46;" if m.group(1) else "&#58;", text)
    return _LEADING.sub(_leading_entity, text, count=1)


def summary_code(text: object, *, cell: bool = True, limit: int = SUMMARY_CELL_LIMIT) -> str:
    """``text`` as a Markdown code span that nothing in it can end: its fence is one backtick
    longer than the longest run of backticks in the text. One line (line breaks become
    ``↵``, control characters ``\\xNN``); in a table cell (``cell``, the default) ``|`` is
    ``\\|``, which GitHub shows as ``|`` inside the span. Empty text gives an empty string.
    Cut at ``limit`` characters."""
    body = _visible(_truncate(str(text), limit), breaks="↵")
    if not body:
        return ""
    if cell:
        body = body.replace("|", "\\|")
    fence = "`" * (max(map(len, re.findall("`+", body)), default=0) + 1)
    edges = body[0] + body[-1]
    pad = " " if "`" in edges or (" " in edges and body.strip(" ")) else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def summary_link(text: object, url: object) -> str:
    """A Markdown link: :func:`summary_text` of ``text`` to ``url``, percent-encoded so that
    it cannot end the link; only ``http(s)://`` URLs are linked (else just the text)."""
    label = summary_text(text)
    target = safe_url(url)
    return f"[{label}]({target})" if label and target else label


def safe_url(url: object) -> str | None:
    """``url`` percent-encoded for a Markdown link destination (no blank, parenthesis,
    bracket, angle bracket, backtick, pipe or non-ASCII character left), or None when it is
    not an ``http(s)://`` URL or is longer than :data:`URL_LIMIT`."""
    url = "" if url is None else str(url)
    if len(url) > URL_LIMIT or not re.match(r"(?i)https?://", url):
        return None
    return quote(url, safe="/:?#&=+;,%!$'*@", errors="backslashreplace")


_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_INVISIBLE = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))  # control, format, surrogate, separators
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(text: str, *, breaks: str | None, marks: bool = False) -> str:
    """Control and format characters written out (``\\n``, ``\\x1b``, ``\\u200b``); with
    ``breaks``, each line break (CR LF counting as one) is replaced by it instead; with
    ``marks``, so is a combining mark that follows no letter, number or symbol (nothing the
    runner could skip over when it compares ``::``)."""
    out: list[str] = []
    prev = "C"  # the category of the previous character as written, C: none or escaped
    last = ""
    for ch in text:
        cat = unicodedata.category(ch)
        if breaks is not None and ch in _LINE_BREAKS:
            if not (ch == "\n" and last == "\r"):
                out.append(breaks)
            cat = "C"
        elif cat in _INVISIBLE or (marks and cat[0] == "M" and prev[0] in "CPZ"):
            out.append(_escape_char(ch))
            cat = "C"
        else:
            out.append(ch)
        prev, last = cat, ch
    return "".join(out)


def _escape_char(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def _leading_entity(m: re.Match[str]) -> str:
    if m.group(2):
        return f"{m.group(1)}&#{ord(m.group(2))};"
    return f"{m.group(1)}{m.group(3)}&#{ord(m.group(4))};"


def _table(header: Sequence[str], items: Iterable[T], cells: Callable[[T], Sequence[str]]) -> str:
    """A Markdown table of at most :data:`SUMMARY_TABLE_ROWS` rows; ``cells`` gives a row's
    cells, already escaped."""
    items = list(items)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for item in islice(items, SUMMARY_TABLE_ROWS):
        row = list(cells(item))
        assert len(row) == len(header)
        lines.append("| " + " | ".join(row) + " |")
    if len(items) > SUMMARY_TABLE_ROWS:
        more = [f"… {len(items) - SUMMARY_TABLE_ROWS} more not shown"]
        lines.append("| " + " | ".join(more + [""] * (len(header) - 1)) + " |")
    return "\n".join(lines)


# -------------------------------------------------------------------- annotations


def repo_path(checkpoint: str | Path, file: str | None, workspace: str | None = None) -> str:
    """A finding's file relative to the repository root (``GITHUB_WORKSPACE``) when inside it."""
    full = Path(checkpoint, file) if file else Path(checkpoint)
    root = Path(workspace or os.environ.get("GITHUB_WORKSPACE") or os.getcwd())
    try:
        return Path(os.path.abspath(full)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return os.path.abspath(full)


def annotation(finding: Finding, checkpoint: str | Path, workspace: str | None = None) -> str:
    """One ``::error``/``::warning`` workflow command for a finding, on one line."""
    level = "error" if finding.severity.value == "error" else "warning"
    props = {
        "file": _truncate(repo_path(checkpoint, finding.file, workspace), ANNOTATION_FILE_LIMIT),
        "title": _truncate(f"{finding.rule} ({finding.rule_id})", ANNOTATION_TITLE_LIMIT),
    }
    message = f"{finding.message}" + (f" (hint: {finding.hint})" if finding.hint else "")
    joined = ",".join(f"{k}={command_property(v)}" for k, v in props.items())
    return f"::{level} {joined}::{command_data(_truncate(message, ANNOTATION_MESSAGE_LIMIT))}"


def annotations(report: Report, workspace: str | None = None) -> list[str]:
    return [annotation(f, report.checkpoint, workspace) for f in report.findings]


# ------------------------------------------------------------------- step summary


def findings_table(findings: Iterable[Finding]) -> str:
    return _table(
        ("severity", "rule", "file", "message"),
        findings,
        lambda f: (
            summary_text(f.severity.value),
            summary_code(f.rule),
            summary_code(f.file) if f.file else "",
            summary_text(f.message),
        ),
    )


def report_summary(report: Report, title: str | None = None) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: a headline and the findings table."""
    heading = summary_text(title or "r1release check")
    lines = [f"### {heading}: {summary_code(report.checkpoint, cell=False)}", ""]
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
    lines += [
        f"- {summary_code(s.rule, cell=False)} ({summary_text(s.severity.value)}): "
        f"{summary_text(s.reason)}"
        for s in islice(cannot, SUMMARY_TABLE_ROWS)
    ]
    if len(cannot) > SUMMARY_TABLE_ROWS:
        lines.append(f"- … {len(cannot) - SUMMARY_TABLE_ROWS} more not shown")
    return lines


def release_summary(stage: Any, result: Any, release: Any = None) -> str:
    """Markdown for a release: the plan, the Hub links, and the findings (warnings) table."""
    plan = result.plan
    repo_id, version = str(plan.repo_id), str(plan.version)
    commit_url = str(result.commit_url or "")
    endpoint = commit_url.split(f"/{repo_id}/", 1)[0]
    if not commit_url:  # offline: no request was made, so no URL came back
        endpoint = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    repo_url = f"{endpoint}/{repo_id}"
    tag_url = f"{repo_url}/tree/{quote(version, safe='')}"
    state = "dry run" if result.dry_run else ("already released" if plan.noop else "released")
    state += ", offline: the Hub was not contacted" if plan.offline else ""
    lines = [
        f"### r1release: {summary_text(stage.model.name)} {summary_text(version)} ({state})",
        "",
        f"- repository: {summary_link(repo_id, repo_url)}" + (" (private)" if plan.private else ""),
        f"- tag: {summary_link(version, tag_url)}",
    ]
    if result.commit:
        lines.append(f"- commit: {summary_link(str(result.commit)[:12], commit_url)}")
    if release is not None and release.git_commit:
        lines.append(f"- git commit: {summary_code(release.git_commit, cell=False)}")
    if release is not None and release.run_url:
        lines.append(f"- workflow run: {summary_link(release.run_url, release.run_url)}")
    lines.append(f"- manifest sha256: {summary_code(stage.manifest_sha256(), cell=False)}")
    rows: list[tuple[str, str, str]] = [
        (summary_code(a.path), summary_text(a.state), summary_text(a.size)) for a in plan.actions
    ]
    rows += [(summary_code(p), "excluded (training state)", "") for p in stage.excluded]
    lines += ["", _table(("file", "state", "size"), rows, lambda row: row)]
    if stage.report.findings:
        lines += ["", findings_table(stage.report.findings)]
    lines += skipped_lines(stage.report)
    return "\n".join(lines) + "\n"


def append_summary(markdown: str, env: Mapping[str, str] | None = None) -> None:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY``, cut at a line so that the file stays
    within :data:`SUMMARY_LIMIT` bytes (GitHub drops a larger step summary)."""
    path = (os.environ if env is None else env).get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    data = (markdown + "\n").encode("utf-8", "backslashreplace")
    try:
        room = SUMMARY_LIMIT - os.path.getsize(path)
    except OSError:
        room = SUMMARY_LIMIT
    if len(data) > room:
        note = b"\n_(r1release: the rest of this summary was cut, over GitHub's 1 MiB.)_\n"
        cut = data.rfind(b"\n", 0, max(room - len(note), 0))
        data = data[:cut] + note if cut >= 0 else b""
    with open(path, "ab") as fh:
        fh.write(data)


# ------------------------------------------------------------------- step outputs

_OUTPUT_NAME = re.compile(r"[A-Za-z0-9_-]+")
_WINDOWS = os.name == "nt"


def write_outputs(values: Mapping[str, Any], env: Mapping[str, str] | None = None) -> None:
    """Append ``name=value`` pairs to ``$GITHUB_OUTPUT``: heredoc syntax for a value with a
    line break, under a random delimiter that the value does not contain. Names must match
    ``[A-Za-z0-9_-]+`` (ValueError otherwise); None is written as an empty value."""
    bad = [name for name in values if not _OUTPUT_NAME.fullmatch(str(name))]
    if bad:
        raise ValueError(f"invalid step output name(s): {', '.join(map(repr, bad))}")
    path = (os.environ if env is None else env).get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8", errors="backslashreplace", newline="") as fh:
        for name, raw in values.items():
            value = "" if raw is None else str(raw)
            if "\n" in value or "\r" in value:
                delimiter = _delimiter(value)
                # The runner on Windows also ends a line at CR LF: there, a value ending in CR
                # would lose it before an LF.
                end = "\r\n" if _WINDOWS else "\n"
                fh.write(f"{name}<<{delimiter}\n{value}{end}{delimiter}\n")
            else:
                fh.write(f"{name}={value}\n")


def _delimiter(value: str) -> str:
    """A heredoc delimiter found nowhere in ``value`` (not even as part of a line), so no line
    of the value, whatever its line ending, can close the heredoc early."""
    for _ in range(64):
        delimiter = f"r1release_{secrets.token_hex(8)}"
        if delimiter not in value:
            return delimiter
    raise RuntimeError("no heredoc delimiter found that the step output value does not hold")

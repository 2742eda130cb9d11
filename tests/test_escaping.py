"""Untrusted strings cannot forge workflow commands, break the step summary or a step output.

Every string field that reaches GitHub (a finding's rule, file, message and hint, the
checkpoint path, the release's name, version, repository, files, commits and URLs) is fed
hostile text; the runner's own parsing (src/Runner.Worker/ActionCommandManager.cs,
ActionCommand.cs, FileCommandManager.cs of actions/runner) is ported below to read the result
as GitHub would.
"""

from __future__ import annotations

import html
import itertools
import re
import unicodedata
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from r1release import ci
from r1release.findings import Finding, Report, Severity, SkippedRule

import reliability

RELIABILITY_AREA = "Hostile input"
record = pytest.fixture(reliability.record)

# ------------------------------------------------------------------ the runner, ported

REGISTERED = {
    "error", "warning", "notice", "debug", "add-mask", "add-matcher", "remove-matcher",
    "group", "endgroup", "echo", "save-state", "set-output", "set-env", "add-path",
    "stop-commands", "internal-set-repo-path",
}  # fmt: skip


def runner_lines(text: str) -> list[str]:
    """Lines as the runner reads a step's output (StreamReader.ReadLine: CR, LF, CR LF)."""
    return re.split(r"\r\n|\r|\n", text)


def unescape_data(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def unescape_property(text: str) -> str:
    for escaped, char in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(escaped, char)
    return text


def runner_command(line: str) -> tuple[str, dict[str, str], str] | None:
    """(command, properties, data) when the runner takes ``line`` for a workflow command:
    ``::name props::data`` after leading blanks, or the older ``##[name]data`` anywhere."""
    message = line.lstrip()
    if message.startswith("::") and (end := message.find("::", 2)) >= 0:
        name, _, props = message[2:end].partition(" ")
        if name in REGISTERED:
            properties = {}
            for prop in props.strip().split(","):
                key, _, value = prop.partition("=")
                if key and value:
                    properties[key] = unescape_property(value)
            return name, properties, unescape_data(message[end + 2 :])
    start = line.find("##[")
    if start >= 0 and (end := line.find("]", start)) >= 0:
        name = line[start + 3 : end].split(" ")[0]
        if name in REGISTERED:
            return name, {}, line[end + 1 :]
    return None


def commands(text: str) -> list[tuple[str, dict[str, str], str]]:
    return [c for line in runner_lines(text) if (c := runner_command(line)) is not None]


def read_outputs(text: str, windows: bool = False) -> dict[str, str]:
    """$GITHUB_OUTPUT read as the runner reads it (FileCommandManager.cs)."""

    def read_line(index: int) -> tuple[str | None, int, str | None]:
        if index >= len(text):
            return None, index, None
        lf = text.find("\n", index)
        if lf < 0:
            return text[index:], len(text), None
        crlf = text.find("\r\n", index)
        if windows and 0 <= crlf < lf:
            return text[index:crlf], crlf + 2, "\r\n"
        return text[index:lf], lf + 1, "\n"

    values: dict[str, str] = {}
    line, index, _ = read_line(0)
    while line is not None:
        if line:
            equals, heredoc = line.find("="), line.find("<<")
            if equals >= 0 and (heredoc < 0 or equals < heredoc):
                key, value = line.split("=", 1)
            else:
                assert heredoc >= 0, f"invalid line {line!r}"
                key, delimiter = line.split("<<", 1)
                start = end = index
                temp, index, newline = read_line(index)
                while temp != delimiter:
                    assert temp is not None and newline is not None, "delimiter not found"
                    end = index - len(newline)
                    temp, index, newline = read_line(index)
                value = text[start:end] if end > start else ""
            assert key not in values, f"{key} set twice"
            values[key] = value
        line, index, _ = read_line(index)
    return values


# ----------------------------------------------------------------- Markdown, as GitHub

_LINK = re.compile(r"\[([^\[\]]*)\]\((https?://[^()\s<>`]*)\)")


def code_spans(line: str) -> tuple[str, list[str]]:
    """``line`` with its CommonMark code spans cut out (as \\0), and the spans' contents."""
    out, spans, i = [], [], 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            out.append(line[i : i + 2])
            i += 2
        elif line[i] == "`":
            j = i
            while j < len(line) and line[j] == "`":
                j += 1
            n, k, close = j - i, j, -1
            while k < len(line):
                if line[k] != "`":
                    k += 1
                    continue
                m = k
                while m < len(line) and line[m] == "`":
                    m += 1
                if m - k == n:
                    close = k
                    break
                k = m
            if close < 0:
                out.append(line[i:j])
                i = j
            else:
                body = line[j:close]
                if body.startswith(" ") and body.endswith(" ") and body.strip(" "):
                    body = body[1:-1]
                spans.append(body)
                out.append("\0")
                i = close + n
        else:
            out.append(line[i])
            i += 1
    return "".join(out), spans


def cell_count(row: str) -> int:
    """Cells of a GFM table row: split at each pipe that has no backslash before it."""
    body = row.strip()
    assert body.startswith("|") and body.endswith("|") and not body.endswith("\\|"), row
    return len(re.split(r"(?<!\\)\|", body[1:-1]))


def check_markdown(markdown: str) -> None:
    """One step-summary text: no line a workflow command, every table row as many cells as
    its header, and, outside code spans and r1release's own links, no HTML or Markdown
    markup character (only entities and ``\\|``)."""
    lines = markdown.split("\n")
    assert not set(markdown) & set("\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
    for line in lines:
        assert not line.lstrip().startswith("::"), line
        rest, _ = code_spans(_LINK.sub(r"\1", line))
        rest = rest.replace("\\|", "")
        for char in "<>`[]*_~$@\\":
            assert char not in rest, (char, line)
    for is_table, group in itertools.groupby(lines, key=lambda line: line.startswith("|")):
        if is_table:
            rows = list(group)
            assert len(rows) >= 2 and set(rows[1]) == {"|", "-"}, rows
            assert {cell_count(row) for row in rows} == {cell_count(rows[0])}, rows


def check_log_line(text: str) -> None:
    assert len(runner_lines(text)) == 1 and len(text.splitlines()) <= 1, text
    assert runner_command(text) is None and runner_command("warning: " + text) is None, text
    assert "##[" not in text and not text.lstrip().startswith("::"), text
    assert not [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")]


# ----------------------------------------------------------------------- fake objects


def finding(severity: Severity = Severity.ERROR, **fields: str) -> Finding:
    base = {"rule_id": "R101", "rule": "eos-alignment", "message": "m", "file": "f.json"}
    base |= {"hint": "h"} | fields
    return Finding(severity=severity, fixable=False, **base)


def hostile_report(value: str) -> Report:
    """Every Finding string field hostile, alone and all at once; a hostile skipped rule."""
    fields = ("message", "file", "hint", "rule", "rule_id")
    findings = [finding(**{name: value}) for name in fields]
    findings.append(finding(Severity.WARNING, **{name: value for name in fields}))
    skipped = SkippedRule("R900", value, Severity.ERROR, value, missing_requirement=True)
    return Report(f"out/{value}/ckpt", tuple(findings), ("a",), rules_skipped=(skipped,))


def fake_release(value: str, report: Report) -> tuple[SimpleNamespace, ...]:
    """What release_summary reads of a stage, a publish result and the release's info."""
    actions = (
        SimpleNamespace(path=value, state=value, size=value),
        SimpleNamespace(path="model.safetensors", state="new", size=12),
    )
    plan = SimpleNamespace(
        repo_id=f"org/{value}",
        version=value,
        private=True,
        noop=False,
        offline=False,
        actions=actions,
    )
    result = SimpleNamespace(
        plan=plan,
        commit=value,
        commit_url=f"https://huggingface.co/org/{value}/commit/{value}",
        dry_run=False,
    )
    stage = SimpleNamespace(
        model=SimpleNamespace(name=value),
        excluded=(value, "optimizer.pt"),
        manifest_sha256=lambda: value,
        report=report,
    )
    release = SimpleNamespace(git_commit=value, run_url=value)
    return stage, result, release


HOSTILE = [
    ("a newline and a forged ::error", "\n::error title=X::pwned"),
    ("CR LF and ::add-mask", "\r\n::add-mask::x"),
    ("a bare CR and ::warning", "ok\r::warning file=a::pwned"),
    ("pre-escaped %0A", "%0A::error::%0D%25"),
    ("table pipes", "|a|b|"),
    ("a backslash before a pipe", "a\\|b\\"),
    ("an HTML <script>", "<script>alert(1)</script>"),
    ("a closing </details>", "</details><details><summary>x"),
    ("backticks", "``` `x` ``"),
    ("a text beginning with ::", "::error::pwned"),
    ("blanks before ::", " \t\u3000::error::pwned"),
    ("the older ##[ command syntax", "##[error]pwned ##[add-mask]x"),
    ("Unicode line separators", "\u2028::error::a\u2029::error::b\x85::error::c\x0b\x0c"),
    ("zero-width and bidi characters", "\u200b::error::x\u202e\ufeff"),
    ("a combining mark between colons", "\u034f::error::x :\u034f:y"),
    ("ANSI escapes", "\x1b[2K\r::error::x\x1b[0m\x00"),
    ("Markdown markup", "[x](javascript:alert(1)) **b** _i_ ~~s~~ $m$ @user ![i](u)"),
    ("block markers", "# h"),
    ("a URL", "https://evil.example/ www.evil.example"),
    ("a heredoc delimiter", "x\nr1release_0123456789abcdef\ny=1"),
]


@pytest.mark.parametrize(("case", "value"), HOSTILE, ids=[c for c, _ in HOSTILE])
def test_hostile_strings_in_every_field(record, case, value):
    report = hostile_report(value)
    stage, result, release = fake_release(value, report)

    # Annotations: exactly one workflow command per finding, each carrying the text intact.
    lines = ci.annotations(report, workspace="/w")
    joined = "\n".join(lines)
    found = commands(joined)
    assert len(runner_lines(joined)) == len(report.findings) == len(found)
    assert [c[0] for c in found] == [f.severity.value for f in report.findings]
    for (_, props, data), f in zip(found, report.findings, strict=True):
        assert set(props) == {"file", "title"}
        assert props["title"] == f"{f.rule} ({f.rule_id})"
        assert props["file"] == ci.repo_path(report.checkpoint, f.file, "/w")
        assert data == f"{f.message} (hint: {f.hint})"

    # The step summary: as many lines, rows and cells as with harmless text.
    clean_report = hostile_report("v")
    clean_release = fake_release("v", clean_report)
    for text, clean in (
        (ci.report_summary(report, title=value), ci.report_summary(clean_report)),
        (ci.release_summary(stage, result, release), ci.release_summary(*clean_release)),
    ):
        check_markdown(text)
        assert len(text.split("\n")) == len(clean.split("\n"))
        assert len(text.splitlines()) == len(clean.splitlines())
    if "<script>" in value:
        assert "<script>" in html.unescape(ci.report_summary(report))  # shown, not dropped

    # Human-readable lines (the CLI's warning and report lines).
    logged = [ci.log_line(f"warning: {f.rule}: {f.file}: {f.message}") for f in report.findings]
    logged += [ci.log_line(value), ci.log_line(report.checkpoint)]
    for line in logged:
        check_log_line(line)
    record(
        f"{case} in every string field",
        ascii(value),
        f"{len(found)} annotations for {len(report.findings)} findings; summary tables "
        f"intact; log: {ci.log_line(value)}",
    )


# ------------------------------------------------------------------------- properties

FRAGMENTS = [
    "\n", "\r", "\r\n", "::", "::error ", "::add-mask::", "%", "%0A", "%25", "%3A", ",", ":",
    "=", "|", "\\", "`", "``", "<", ">", "&", "&lt;", "[", "]", "(", ")", "##[", "#", "-",
    "1.", "*", "_", "~", "$", "@", " ", "\t", "\u3000", "\u2028", "\x85", "\x0b", "\x1b",
    "\u200b", "\u034f", "\ufe0f", "https://", "www.", "<<", "r1release_", "\u00e9", "\U0001f600",
]  # fmt: skip

texts = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=12).map(
    "".join
)
with_surrogates = st.one_of(texts, texts.map(lambda s: s + "\udcff" + s))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _plain(text: str) -> bool:
    return not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in text)


@SETTINGS
@given(texts)
def test_command_data_and_property_round_trip(text):
    data, prop = ci.command_data(text), ci.command_property(text)
    assert unescape_data(data) == text and unescape_property(prop) == text
    assert not set(data) & set("\r\n") and not set(prop) & set("\r\n:,")


@SETTINGS
@given(
    texts, texts, texts, texts, texts, st.sampled_from(list(Severity)), st.sampled_from([0, 500])
)
def test_annotation_is_one_command(message, file, hint, rule, checkpoint, severity, repeat):
    message += "\n::error title=X::pwned" * repeat
    f = Finding("R1", rule, severity, message, file or None, hint or None)
    line = ci.annotation(f, f"ckpt/{checkpoint}", "/w")
    found = commands(line)
    assert len(runner_lines(line)) == 1 and len(found) == 1
    name, props, data = found[0]
    assert name == severity.value and props["title"] == f"{rule} (R1)"
    assert props["file"] == ci.repo_path(f"ckpt/{checkpoint}", file or None, "/w")
    full = message + (f" (hint: {hint})" if hint else "")
    limit = ci.ANNOTATION_MESSAGE_LIMIT
    cut = f"{full[:limit]}… [{len(full) - limit} more characters]"
    assert data == (full if len(full) <= limit else cut)
    assert len(line) < 3 * (limit + ci.ANNOTATION_FILE_LIMIT + ci.ANNOTATION_TITLE_LIMIT) + 100


@SETTINGS
@given(with_surrogates)
def test_log_line_is_one_line_and_no_command(text):
    line = ci.log_line(text)
    check_log_line(line)
    check_log_line(ci.log_line(text + text))
    marks = any(unicodedata.category(c)[0] == "M" for c in text)
    if _plain(text) and not marks and "##[" not in text and not text.lstrip().startswith("::"):
        assert line == text  # ordinary text is left alone


@SETTINGS
@given(with_surrogates, with_surrogates)
def test_summary_cells_keep_the_table(a, b):
    row = f"| {ci.summary_text(a)} | {ci.summary_code(b)} | {ci.summary_code(a)} |"
    table = "| x | y | z |\n|---|---|---|\n" + row
    check_markdown(table)
    check_markdown(f"- {ci.summary_code(b, cell=False)}: {ci.summary_text(a)}")
    check_markdown(ci.summary_link(a, f"https://h/{b}"))
    if _plain(a):  # shown as it is: entities and \| decode to the text
        assert html.unescape(ci.summary_text(a).replace("\\|", "|")) == a
    if _plain(b) and b:
        rest, spans = code_spans(ci.summary_code(b, cell=False))
        assert rest == "\0" and spans == [b]


@SETTINGS
@given(st.dictionaries(st.sampled_from(["a", "b-1", "c_2", "D"]), texts, max_size=4))
def test_outputs_round_trip(tmp_path_factory, values):
    for windows in (False, True):
        path = tmp_path_factory.mktemp("out") / "output"
        ci._WINDOWS = windows
        try:
            ci.write_outputs(values, {"GITHUB_OUTPUT": str(path)})
        finally:
            ci._WINDOWS = False
        assert read_outputs(path.read_bytes().decode("utf-8"), windows) == values


# ----------------------------------------------------------------- outputs and limits


def test_output_value_holding_the_delimiter(record, tmp_path, monkeypatch):
    """A value that holds the delimiter (as a line, or with CR LF) cannot end the heredoc."""
    hexes = iter(["0123456789abcdef", "0123456789abcdef", "fedcba9876543210"])
    monkeypatch.setattr(ci.secrets, "token_hex", lambda n: next(hexes))
    value = "x\r\nr1release_0123456789abcdef\r\ninjected=1\nr1release_0123456789abcdef\n"
    path = tmp_path / "output"
    ci.write_outputs({"notes": value, "version": "v1"}, {"GITHUB_OUTPUT": str(path)})
    text = path.read_bytes().decode("utf-8")
    for windows in (False, True):
        assert read_outputs(text, windows) == {"notes": value, "version": "v1"}
    assert "notes<<r1release_fedcba9876543210\n" in text
    record(
        "a step output value holds the heredoc delimiter",
        "a line equal to the delimiter, CR LF, injected=1",
        f"written under another delimiter; outputs read back: {sorted(read_outputs(text))}",
    )


@pytest.mark.parametrize("name", ["a=b", "x\ny", "", "a<<b", "na\u00efve", "a b"])
def test_output_names_are_checked(record, tmp_path, name):
    path = tmp_path / "output"
    with pytest.raises(ValueError, match="invalid step output name"):
        ci.write_outputs({name: "v"}, {"GITHUB_OUTPUT": str(path)})
    assert not path.exists()
    if name == "x\ny":
        record("a step output name holds a newline", ascii(name), "ValueError, nothing written")


def test_huge_strings_are_capped(record, tmp_path):
    big = "\n::error::x" * 1_000_000  # 11 MB
    report = Report(big, (finding(message=big, file=big, hint=big, rule=big),))
    line = ci.annotation(report.findings[0], big)
    assert len(line) < 3 * (ci.ANNOTATION_MESSAGE_LIMIT + 2 * ci.ANNOTATION_FILE_LIMIT) + 200
    assert len(commands(line)) == 1 and "more characters]" in unescape_data(line)
    for text in (ci.summary_text(big), ci.summary_code(big), ci.log_line(big)):
        assert len(text) < 8 * ci.LOG_LINE_LIMIT
    summary = ci.report_summary(report)
    check_markdown(summary)
    assert len(summary) < 100_000
    many = Report("c", tuple(finding(message=str(i)) for i in range(2000)))
    table = ci.report_summary(many)
    check_markdown(table)
    assert table.count("\n|") == ci.SUMMARY_TABLE_ROWS + 3 and "1500 more not shown" in table
    record(
        "an 11 MB message in every field",
        "'\\n::error::x' * 1e6",
        f"annotation {len(line)} characters, one command; summary {len(summary)} characters",
    )


def test_step_summary_stays_under_the_limit(record, tmp_path):
    path = tmp_path / "summary.md"
    env = {"GITHUB_STEP_SUMMARY": str(path)}
    row = "| a | b |\n"
    ci.append_summary("| x | y |\n|---|---|\n" + row * 200_000, env)  # 2 MB
    size = path.stat().st_size
    assert size <= ci.SUMMARY_LIMIT and path.read_text().endswith("1 MiB.)_\n")
    ci.append_summary("more " * 1000, env)
    assert path.stat().st_size <= ci.SUMMARY_LIMIT
    check_markdown(path.read_text().split("\n_(")[0])
    record("a 2 MB step summary", "200,000 table rows", f"{size} bytes written, cut at a row")


def test_mask_value_stays_one_command():
    env = {"HF_OIDC_ID_TOKEN": "abc\n::error::x%0A"}
    (line,) = ci.mask_commands(env)
    assert commands(line) == [("add-mask", {}, "abc\n::error::x%0A")]


def test_plain_values_unchanged():
    assert ci.summary_code("use-cache") == "`use-cache`"
    assert ci.summary_text("v1.0.0 OpenR1-Tiny") == "v1.0.0 OpenR1-Tiny"
    assert ci.summary_code("a`b") == "``a`b``" and ci.summary_code("`") == "`` ` ``"
    assert ci.log_line("release OpenR1-Tiny v1 -> org/m (dry run)") == (
        "release OpenR1-Tiny v1 -> org/m (dry run)"
    )
    assert ci.log_line("::error::x") == "\\::error::x"
    assert ci.summary_link("o/m", "javascript:alert(1)") == "o/m"


# ------------------------------------------------------------ the card's benchmark table


@pytest.mark.parametrize(("case", "value"), HOSTILE, ids=[c for c, _ in HOSTILE])
def test_benchmark_cells_show_hostile_names_as_text(case, value):
    """Task, metric and tool version come from a results JSON: in the card's table they show
    as text (no HTML, link, image, emphasis, column break); a benchmark r1release does not
    know gets no link, whatever dataset the result names."""
    from r1release.card import benchmark_rows
    from r1release.evals import EvalResult

    results = [
        EvalResult(
            task=value, metric=value, value=0.5, tool="lighteval", source="r.json",
            tool_version=value, benchmark=value, dataset_id="evil/x",
        ),
        EvalResult(
            task="aime24", metric=f"[AIME 99%](https://evil){value}", value=0.5,
            tool="lighteval", source="r.json", benchmark="AIME 2024",
            dataset_id="HuggingFaceH4/aime_2024",
        ),
        EvalResult(
            task=value, metric="m", value=0.5, tool="lighteval", source="r.json",
            benchmark="AIME 2024", dataset_id="evil/x",  # a known name, a forged dataset
        ),
    ]  # fmt: skip
    table = ["| a | b | c | d | e | f | g |", "|---|---|---|---|---|---|---|"]
    for row in benchmark_rows(results):
        flat = " ".join(row.values())
        assert "\n" not in flat and "\r" not in flat
        table.append("| " + " | ".join(row.values()) + " |")
    check_markdown("\n".join(table))
    assert "evil/x" not in table[2] + table[4] and "AIME 2024" in table[4]
    assert "](https://huggingface.co/datasets/HuggingFaceH4/aime_2024)" in table[3]
    shown = html.unescape(benchmark_rows(results)[1]["metric"].replace("\\|", "|"))
    assert shown.startswith("[AIME 99%](https://evil)")  # shown as written, not a link

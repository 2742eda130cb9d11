"""Regenerate docs/reliability.md from the reliability tests' recorded outcomes.

    python tests/reliability_report.py                  # run the tests, write docs/reliability.md
    python tests/reliability_report.py -o FILE          # somewhere else
    python tests/reliability_report.py --records F.jsonl  # render records of an earlier run
    python tests/reliability_report.py -- -k fifo       # extra pytest arguments

The tests (tests/test_hostile.py, tests/test_secrets.py, tests/test_faults.py) record each
case through the ``record`` fixture of ``tests/reliability.py``; with
``R1RELEASE_RELIABILITY_RECORDS`` set, records are appended to that file as JSON lines. This
script runs pytest in a subprocess with it set, then renders one table per area.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from reliability import AREAS, RECORDS_ENV  # noqa: E402

TEST_FILES = (
    "tests/test_faults.py",
    "tests/test_preflight.py",
    "tests/test_hub_bounds.py",
    "tests/test_hostile.py",
    "tests/test_identifiers.py",
    "tests/test_robustness.py",
    "tests/test_card_template.py",
    "tests/test_escaping.py",
    "tests/test_forged_commands.py",
    "tests/test_secrets.py",
)
INTRO = {
    "Hub faults": "Failures injected by the loopback Hub (`hub.fail`): status codes, dropped "
    "connections, lost replies, requests held open, HTML error pages; and the preflight's "
    "refusals (no token, no network, read-only token, wrong owner, visibility).",
    "Concurrency": "Releases racing each other or a change on the Hub.",
    "Hostile input": "Broken, malicious or absurd `release.yaml`, checkpoint files and GitHub "
    "events, card templates, and strings that try to forge workflow commands "
    "(`tests/test_hostile.py`, `test_identifiers.py`, `test_robustness.py`, "
    "`test_card_template.py`, `test_escaping.py`, `test_forged_commands.py`). Expected: exit 1 "
    "(a finding) or 2 (usage/config), one error line, no traceback, no hang, nothing written, "
    "no write to the Hub, no workflow command r1release did not emit.",
    "Secrets": "A canary token in `HF_TOKEN`; every command and output format. Expected: the "
    "token nowhere in stdout, stderr, files, the step summary, outputs or the Hub's log (the "
    "runner masks `secrets.*` itself; only tokens it cannot know, the OIDC ones, get an "
    "`::add-mask::` line, on stderr).",
}


def run_tests(records: Path, extra: list[str]) -> tuple[int, str]:
    files = [f for f in TEST_FILES if (REPO / f).exists()]
    env = dict(os.environ) | {RECORDS_ENV: str(records)}
    # -m "": every case, the slow and e2e ones too (the default run leaves them out)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "", *files, *extra]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    summary = lines[-1].strip("= ") if lines else f"pytest exited {proc.returncode}"
    sys.stdout.write(proc.stdout[-3000:])
    return proc.returncode, summary


def load(records: Path) -> list[dict]:
    if not records.exists():
        return []
    return [json.loads(line) for line in records.read_text().splitlines() if line.strip()]


_TOKEN = re.compile(r"\bhf_[A-Za-z0-9_]{8,}")  # never publish anything shaped like a token
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def _cell(text: object) -> str:
    text = _TOKEN.sub("hf_***", str(text if text is not None else ""))
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def render(records: list[dict], summary: str, command: str) -> str:
    date = dt.date.today().isoformat()
    statuses = [r.get("status") for r in records]
    counts = ", ".join(
        f"{statuses.count(s)} {s}" for s in ("pass", "fail", "xfail") if s in statuses
    )
    out = [
        "# Reliability",
        "",
        f"Generated on {date} by `{command}` from the test results ({summary}): "
        f"{len(records)} recorded cases, {counts or 'none'}. Do not edit by hand.",
        "",
        "`xfail` marks a known bug whose test is a strict expected failure (the reason is in "
        "the test). A message is the line that shows the outcome (the error line, the finding, "
        "or what the test checked), cut at 100 characters; temporary paths show as `<tmp>`, the "
        "loopback Hub as `<hub>`.",
    ]
    areas = list(AREAS) + sorted({r["area"] for r in records} - set(AREAS))
    for area in areas:
        rows = [r for r in records if r["area"] == area]
        out += ["", f"## {area}", ""]
        if INTRO.get(area):
            out += [INTRO[area], ""]
        if not rows:
            out.append("No cases recorded in this run.")
            continue
        out += ["| case | injected | exit | message | result |", "|---|---|---|---|---|"]
        for r in rows:
            code = "" if r["exit_code"] is None else str(r["exit_code"])
            cells = [r["case"], r["injected"], code, r["message"], r.get("status") or "?"]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=REPO / "docs" / "reliability.md")
    parser.add_argument("--records", type=Path, help="render these JSON-lines records; run nothing")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    command = "python tests/reliability_report.py"
    if args.records is not None:
        records, summary, code = load(args.records), "recorded earlier", 0
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "records.jsonl"
            code, summary = run_tests(path, args.pytest_args)
            records = load(path)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(records, summary, command), encoding="utf-8")
    print(f"wrote {args.output} ({len(records)} cases; pytest: {summary})")
    return code


if __name__ == "__main__":
    sys.exit(main())

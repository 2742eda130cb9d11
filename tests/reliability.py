"""Recording reliability cases for docs/reliability.md.

A test that documents a reliability case (a Hub fault, a concurrent release, a hostile input,
a secret that must not leak) takes the ``record`` fixture and calls it once the case has been
observed::

    record = pytest.fixture(reliability.record)   # in conftest.py, or in the test module

    def test_commit_503(record, hub, workspace):
        hub.fail("POST", r"/commit/", status=503)
        result = r1release(hub, workspace, *ARGS)
        record("commit answers 503", "POST /commit/ -> 503", result, area="Hub faults")
        assert result.returncode == 0

``outcome`` is a ``subprocess.CompletedProcess``, a click ``Result`` or a string; the exit code
and a one-line message are kept: the last error line on stderr, else the first finding line,
else the first line of output (``message=...`` overrides it). Whether the test passed
is filled in when it ends: ``pass``, ``fail``, or ``xfail`` for a strict xfail (a known
bug). ``area`` defaults to
the test module's ``RELIABILITY_AREA``.

Records are kept in :data:`RECORDS` and, when ``R1RELEASE_RELIABILITY_RECORDS`` names a file,
appended to it as JSON lines: ``tests/reliability_report.py`` runs the tests with it set and
renders the Markdown report.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import pytest

RECORDS_ENV = "R1RELEASE_RELIABILITY_RECORDS"
AREAS = ("Hub faults", "Concurrency", "Hostile input", "Secrets")


@dataclass
class Record:
    area: str
    case: str
    injected: str
    exit_code: int | None
    message: str
    test: str  # the pytest node id
    status: str | None = None  # pass, fail, or xfail (a known bug); None until the test ends


RECORDS: list[Record] = []


_TMP = re.compile(r"/tmp/pytest-of-[^/\s]+/pytest-\d+/[^/\s]+")
_HUB = re.compile(r"http://127\.0\.0\.1:\d+")
_FINDING = re.compile(r"\(R\d{3}\)")


def describe(outcome: Any) -> tuple[int | None, str]:
    """(exit code, message) of ``outcome``: its last error line on stderr, else its first
    finding line, else its first line (never a ``::add-mask::`` line)."""
    if isinstance(outcome, str):
        return None, first_line(outcome)
    code = getattr(outcome, "returncode", None)
    if code is None:
        code = getattr(outcome, "exit_code", None)
    stderr = _text(getattr(outcome, "stderr", ""))
    stdout = _text(getattr(outcome, "stdout", ""))
    lines = [s for s in (stderr + "\n" + stdout).splitlines() if not s.startswith("::add-mask::")]
    errors = [s for s in stderr.splitlines() if s.lower().startswith(("error", "internal error"))]
    findings = [s for s in lines if _FINDING.search(s)]
    return code, first_line((errors[-1:] or findings[:1] or lines or [""])[0])


def _text(value: Any) -> str:
    try:
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
    except ValueError:  # a click Result whose stderr was not captured separately
        return ""


def first_line(text: str, limit: int = 100) -> str:
    """The first non-blank line, paths of pytest's temporary directories shown as ``<tmp>``
    and the loopback Hub as ``<hub>``, cut at ``limit`` characters."""
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    line = _HUB.sub("<hub>", _TMP.sub("<tmp>", line))
    return line if len(line) <= limit else line[: limit - 1] + "…"


class Recorder:
    """The ``record`` fixture's value: ``record(case, injected, outcome, area=None)``."""

    def __init__(self, nodeid: str, default_area: str | None) -> None:
        self.nodeid = nodeid
        self.default_area = default_area
        self.records: list[Record] = []

    def __call__(
        self,
        case: str,
        injected: str,
        outcome: Any,
        *,
        area: str | None = None,
        message: str | None = None,
    ) -> None:
        area = area or self.default_area
        if area is None:
            raise ValueError("pass area=..., or set RELIABILITY_AREA in the test module")
        code, found = describe(outcome)
        message = found if message is None else first_line(message)
        self.records.append(Record(area, case, injected, code, message, self.nodeid))

    def finish(self, status: str) -> None:
        path = os.environ.get(RECORDS_ENV)
        for entry in self.records:
            entry.status = status
            RECORDS.append(entry)
            if path:
                with open(path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(asdict(entry)) + "\n")


def record(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    """The ``record`` fixture: ``record = pytest.fixture(reliability.record)``."""
    session = request.session
    failed_before = session.testsfailed
    recorder = Recorder(request.node.nodeid, getattr(request.module, "RELIABILITY_AREA", None))
    yield recorder
    # The call phase has been reported (and counted) by the time fixtures are torn down; an
    # expected failure (a strict xfail marking a known bug) is not counted.
    if session.testsfailed != failed_before:
        status = "fail"
    elif request.node.get_closest_marker("xfail") is not None:
        status = "xfail"
    else:
        status = "pass"
    recorder.finish(status)

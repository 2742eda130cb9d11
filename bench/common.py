"""What the benchmarks share: running a command in a measured fresh process, the other load on
the (shared) machine, and small formatting helpers.

Checkpoints come from the test factory (``tests/factory.py``), imported here once; the
real-size layouts built on it are in ``bench/layouts.py``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import factory  # noqa: E402,F401  (tests/factory.py: tokenizers, templates, weights)

DATA = REPO / "bench" / ".data"
BIN = Path(sys.executable).parent
R1RELEASE = str(BIN / "r1release") if (BIN / "r1release").exists() else shutil.which("r1release")
NPROC = os.cpu_count() or 1
GB = 1e9


@dataclass
class Run:
    """A finished command: wall seconds, peak RSS and CPU (user + sys) of the process and the
    children it waited for, from ``wait4``; ``io`` is its ``/proc/self/io`` just before it
    exited (only for commands started through :data:`IO_LAUNCHER`)."""

    wall: float
    maxrss: int  # bytes
    cpu: float
    rc: int
    out: str
    err: str
    io: dict[str, int] = field(default_factory=dict)


# ru_maxrss of a child is at least the RSS its parent had when it forked (Linux carries the
# old memory map's high-water mark across exec, for fork and vfork alike), so a big
# benchmark process would inflate every figure. Each command is therefore started by this
# small wrapper process (about 10 MB), which times it and reads its rusage with wait4.
WRAPPER = r"""
import json, os, sys, time
start = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as fh:
    json.dump({"wall": wall, "maxrss": ru.ru_maxrss * 1024, "cpu": ru.ru_utime + ru.ru_stime,
               "user": ru.ru_utime, "sys": ru.ru_stime,
               "rc": os.waitstatus_to_exitcode(status)}, fh)
"""

# The command's own I/O counters can only be read from inside it, before it exits: this
# launcher runs a module (``-m NAME``) or a script in its own process with runpy, then
# writes /proc/self/io (summed by the kernel over all the process's threads, live or exited).
IO_LAUNCHER = r"""
import runpy, sys
out, target, args = sys.argv[1], sys.argv[2:], None
if target[0] == "-m":
    name, args = target[1], target[2:]
else:
    name, args = target[0], target[1:]
sys.argv = [name, *args]
code = 0
try:
    if target[0] == "-m":
        runpy.run_module(name, run_name="__main__", alter_sys=True)
    else:
        runpy.run_path(name, run_name="__main__")
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    if not isinstance(e.code, (int, type(None))):
        print(e.code, file=sys.stderr)
finally:
    with open("/proc/self/io") as src, open(out, "w") as dst:
        dst.write(src.read())
sys.stdout.flush()
sys.exit(code)
"""


def run_measured(
    cmd: list[str],
    *,
    stdin: str | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO,
    io: bool = False,
) -> Run:
    """Run ``cmd`` in a fresh process. With ``io``, ``cmd`` is ``[python, -m, module, ...]`` or
    ``[python, script, ...]`` and runs under :data:`IO_LAUNCHER`, which fills ``Run.io``."""
    with tempfile.TemporaryDirectory() as tmp:
        stats, io_file = Path(tmp, "stats.json"), Path(tmp, "io")
        if io:
            cmd = [cmd[0], "-c", IO_LAUNCHER, str(io_file), *cmd[1:]]
        with open(Path(tmp, "out"), "w+") as out, open(Path(tmp, "err"), "w+") as err:
            Path(tmp, "in").write_text(stdin or "")
            try:
                with open(Path(tmp, "in")) as inp:
                    proc = subprocess.run(
                        [sys.executable, "-S", "-c", WRAPPER, str(stats), *cmd],
                        stdin=inp,
                        stdout=out,
                        stderr=err,
                        cwd=cwd,
                        env=dict(env) if env is not None else None,
                        timeout=timeout,
                    )
            except subprocess.TimeoutExpired:
                return Run(float(timeout or 0), 0, 0.0, 124, "", "timed out")
            out.seek(0)
            err.seek(0)
            if proc.returncode != 0 and not stats.exists():
                raise SystemExit(f"wrapper failed for {cmd}: {err.read()}")
            doc = json.loads(stats.read_text())
            counters: dict[str, int] = {}
            if io and io_file.exists():
                for line in io_file.read_text().splitlines():
                    key, _, value = line.partition(":")
                    counters[key.strip()] = int(value)
            return Run(
                doc["wall"], doc["maxrss"], doc["cpu"], doc["rc"], out.read(), err.read(), counters
            )


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


class OtherLoad:
    """CPU time that processes outside this benchmark used during a phase.

    The machine may be shared (2 cores): busy time from /proc/stat minus the CPU time of this
    process and its waited-for descendants, as a share of all cores.
    """

    def __init__(self) -> None:
        self.busy, self.own, self.wall = _busy_seconds(), _own_cpu(), time.perf_counter()

    def share(self) -> float:
        wall = time.perf_counter() - self.wall
        other = (_busy_seconds() - self.busy) - (_own_cpu() - self.own)
        return max(other, 0.0) / (wall * NPROC)


def _busy_seconds() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        u = resource.getrusage(who)
        total += u.ru_utime + u.ru_stime
    return total


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB"


def read_all(paths: Iterable[Path]) -> None:
    """Read files once, so that every contender starts with them in the page cache."""
    buf = bytearray(8 << 20)
    for p in paths:
        with open(p, "rb", buffering=0) as fh:
            while fh.readinto(buf):
                pass


class Table:
    """The figures as a Markdown table: what, value, target, PASS/FAIL (never an assert)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def row(self, what: str, value: str, target: str = "", ok: bool | None = None) -> None:
        self.rows.append((what, value, target, "" if ok is None else ("PASS" if ok else "FAIL")))

    def render(self) -> str:
        lines = ["| figure | value | target | result |", "|---|---|---|---|"]
        lines += [f"| {w} | {v} | {t} | {r} |" for w, v, t, r in self.rows]
        return "\n".join(lines)

    @property
    def failed(self) -> list[tuple[str, str, str, str]]:
        return [r for r in self.rows if r[3] == "FAIL"]

    @property
    def passed(self) -> int:
        return sum(1 for r in self.rows if r[3] == "PASS")


def machine_line() -> str:
    import platform

    return (
        f"{platform.processor() or platform.machine()}, {NPROC} cores, "
        f"Python {platform.python_version()}"
    )

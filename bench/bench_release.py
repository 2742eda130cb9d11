#!/usr/bin/env python
"""Benchmark of ``r1release release --publish`` against ``hf upload`` on the loopback Hub.

Run from the repository root with the venv active::

    python bench/bench_release.py              # ~2 GB checkpoint, 3 rounds (a few minutes)
    python bench/bench_release.py --size 0.5   # a smaller checkpoint

The checkpoint is Qwen2.5-1.5B-Instruct's config.json with as many decoder layers as fit in
``--size`` GB (tied embeddings, bf16 random finite weights, sharded at ``--shard-size``), the
test factory's real Qwen2.5 tokenizer tokens and ChatML template: it passes every check,
so r1release uploads it without fixing anything. Its files are dated an hour back (the
digest cache trusts only files older than 2 s).

Each round starts a fresh loopback Hub (tests/hubserver.py, in this process) and runs,
interleaved (r1release first in odd rounds, hf first in even ones), with the page cache warm:

1. fresh: ``r1release release --publish`` with empty caches (digests and layouts: the
   first release of a new config on a runner), the same with only the layout cache warm (a
   new checkpoint of a config seen before), and ``hf upload REPO FOLDER`` to an empty repo;
2. unchanged re-release: the same release again (digest and layout caches warm), and the
   same ``hf upload`` again;
3. config-only change: config.json's ``transformers_version`` changed (what re-saving with
   a newer transformers does), then release of the next version, and ``hf upload``. That
   key does not reach the layout cache's key (layout_cache.NOT_LAYOUT), so the layout stays
   warm; an edit that changes a tensor (``vocab_size``) would pay the cold build again.

For each run: wall, client CPU (user + sys of the child from ``wait4``), bytes read
(``rchar`` of the child's ``/proc/self/io``, read by a launcher inside it just before it
exits; ``read_bytes`` is what came from the disk rather than the page cache) and bytes sent
(request bodies the loopback Hub received). Medians over the rounds; PASS/FAIL per target,
never an assertion.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    BIN,
    DATA,
    GB,
    REPO,
    OtherLoad,
    Run,
    Table,
    factory,
    log,
    machine_line,
    mb,
    median,
    read_all,
    run_measured,
)
from layouts import QWEN25_1_5B_INSTRUCT, QWEN_CASE, age, build_layout, random_bf16

from hubserver import HubServer, client_env  # tests/hubserver.py (common put tests/ on the path)

MODEL = "OpenR1-Bench"
TOKEN = "hf_bench_token"
OWNER = "org"
PYTHON = sys.executable


def bench_config(size_gb: float) -> dict[str, Any]:
    """Qwen2.5-1.5B-Instruct's config with as many layers as fit in ``size_gb`` (at least 1)."""
    config = dict(QWEN25_1_5B_INSTRUCT, num_hidden_layers=1)
    one = sum(math.prod(s) for s in factory.tensor_shapes(config).values()) * 2
    config["num_hidden_layers"] = 2
    two = sum(math.prod(s) for s in factory.tensor_shapes(config).values()) * 2
    layer = two - one
    config["num_hidden_layers"] = max(1, round((size_gb * GB - (one - layer)) / layer))
    return config


def write_release_yaml(work: Path, checkpoint: Path) -> None:
    """release.yaml as tests/helpers.write_release_yaml writes it, for this checkpoint."""
    (work / "release.yaml").write_text(
        "\n".join(
            [
                "version: 1",
                "models:",
                f"  - name: {MODEL}",
                f"    checkpoint: {checkpoint}",
                f"    repo_id: {OWNER}/{MODEL}",
                "    base_model: Qwen/Qwen2.5-1.5B-Instruct",
                "    dataset_name: open-r1/Mixture-of-Thoughts",
                "    license: apache-2.0",
            ]
        )
        + "\n"
    )


@dataclass
class Measure:
    wall: float
    cpu: float
    rchar: int
    read_bytes: int
    sent: int
    rc: int
    err: str


def measured(server: HubServer, cmd: list[str], env: dict[str, str], cwd: Path) -> Measure:
    before = server.bytes_received()
    run: Run = run_measured(cmd, env=env, cwd=cwd, io=True, timeout=900)
    sent = server.bytes_received() - before
    if run.rc != 0:
        log(f"  FAILED rc {run.rc}: {' '.join(cmd[2:])}\n{run.err[-2000:]}")
    return Measure(
        run.wall,
        run.cpu,
        run.io.get("rchar", -1),
        run.io.get("read_bytes", -1),
        sent,
        run.rc,
        (run.err + run.out).strip(),
    )


class Contenders:
    """The two commands against one loopback Hub, each in its own client home."""

    def __init__(self, server: HubServer, work: Path, checkpoint: Path, tag: str) -> None:
        self.server, self.work, self.checkpoint, self.tag = server, work, checkpoint, tag
        base = client_env(server, work / f"hf-home-{tag}", TOKEN)
        for name in ("CI", "GITHUB_ACTIONS"):
            base.pop(name, None)
        self.base = base

    def release(self, version: str, cache: Path, repo: str) -> Measure:
        doc = (self.work / "release.yaml").read_text()
        yaml = self.work / f"release-{repo}.yaml"
        yaml.write_text(doc.replace(f"repo_id: {OWNER}/{MODEL}", f"repo_id: {OWNER}/{repo}"))
        env = self.base | {"R1RELEASE_CACHE_DIR": str(cache)}
        cmd = [PYTHON, str(BIN / "r1release"), "--config", str(yaml), "release"]
        cmd += ["--model", MODEL, "--version", version, "--publish"]
        return measured(self.server, cmd, env, self.work)

    def hf_upload(self, repo: str) -> Measure:
        cmd = [PYTHON, str(BIN / "hf"), "upload", f"{OWNER}/{repo}"]
        cmd += [str(self.checkpoint)]
        return measured(self.server, cmd, self.base, self.work)


SCENARIOS = ("fresh", "fresh-layout-warm", "rerelease", "config")


def one_round(i: int, work: Path, checkpoint: Path) -> dict[str, dict[str, Measure]]:
    """A fresh Hub and fresh caches; every scenario, r1release and hf interleaved."""
    caches = work / f"caches-{i}"
    shutil.rmtree(caches, ignore_errors=True)
    cold, warm = caches / "cold", caches / "warm"
    out: dict[str, dict[str, Measure]] = {s: {} for s in SCENARIOS}
    r1_first = i % 2 == 0
    with HubServer() as server:
        c = Contenders(server, work, checkpoint, str(i))

        def pair(scenario: str, r1: Any, hf: Any) -> None:
            for who, fn in (
                (("r1release", r1), ("hf", hf)) if r1_first else (("hf", hf), ("r1release", r1))
            ):
                out[scenario][who] = fn()
                log(f"  round {i + 1} {scenario:18} {who:9} {fmt(out[scenario][who])}")

        def fresh_warm_layout() -> Measure:
            if (cold / "layouts").exists():  # digests stay empty
                shutil.copytree(cold / "layouts", warm / "layouts")
            return c.release("v1.0.0", warm, MODEL)

        # 1. fresh: hf to an empty repo; r1release with empty caches (its own repo), then
        # with the layout cache of that run but no digests (the repo of the later scenarios).
        pair("fresh", lambda: c.release("v1.0.0", cold, MODEL + "-cold"), lambda: c.hf_upload("hf"))
        out["fresh-layout-warm"]["r1release"] = m = fresh_warm_layout()
        log(f"  round {i + 1} {'fresh-layout-warm':18} r1release {fmt(m)}")
        # 2. unchanged re-release
        pair("rerelease", lambda: c.release("v1.0.0", warm, MODEL), lambda: c.hf_upload("hf"))
        # 3. config-only change
        config_file = checkpoint / "config.json"
        original = config_file.read_text()
        doc = json.loads(original)
        doc["transformers_version"] = "4.57.1"
        factory.write_json(config_file, doc, sort_keys=True)
        age(config_file)  # only config.json: utime on a weight file changes its ctime
        try:
            pair("config", lambda: c.release("v1.0.1", warm, MODEL), lambda: c.hf_upload("hf"))
        finally:
            config_file.write_text(original)
            age(config_file)
    shutil.rmtree(caches, ignore_errors=True)
    return out


def fmt(m: Measure) -> str:
    return (
        f"rc {m.rc} wall {m.wall:6.2f} s  cpu {m.cpu:6.2f} s  read {m.rchar / 1e6:8.1f} MB "
        f"(disk {m.read_bytes / 1e6:.1f} MB)  sent {m.sent / 1e6:8.1f} MB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=2.0, help="GB of weights (default 2)")
    parser.add_argument("--shard-size", type=float, default=1.0, help="GB per shard (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep bench/.data/release afterwards")
    args = parser.parse_args()
    started = time.perf_counter()
    work = DATA / "release"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        return _run(args, work, started)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            log(f"removed {work.relative_to(REPO)}")


def _run(args: argparse.Namespace, work: Path, started: float) -> int:
    import huggingface_hub

    checkpoint = work / "model"
    config = bench_config(args.size)
    log(f"writing the checkpoint: Qwen2.5-1.5B config, {config['num_hidden_layers']} layers")
    layout = build_layout(
        checkpoint,
        config,
        QWEN_CASE,
        max_shard=int(args.shard_size * GB),
        fill=random_bf16(0),
    )
    age(checkpoint)
    write_release_yaml(work, checkpoint)
    # The training repository: its own git commit, so the release's card and commit message
    # do not follow this repository's HEAD (which other work may move between two runs).
    git = ["git", "-C", str(work), "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    (work / ".gitignore").write_text("*\n!release.yaml\n!.gitignore\n")
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    subprocess.run([*git, "add", "release.yaml", ".gitignore"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench: release.yaml"], check=True)
    weights = layout["weight_bytes"]
    files = sorted(p for p in checkpoint.iterdir() if p.is_file())
    log(
        f"  {layout['shards']} shards, {layout['tensors']} tensors, {weights / GB:.2f} GB of "
        f"weights, {len(files)} files"
    )
    read_all(files)  # every contender starts from a warm page cache

    rounds: list[dict[str, dict[str, Measure]]] = []
    watch = OtherLoad()
    for i in range(args.rounds):
        log(f"round {i + 1}/{args.rounds}")
        rounds.append(one_round(i, work, checkpoint))
    other = watch.share()

    def med(scenario: str, who: str, key: str) -> float:
        return median(getattr(r[scenario][who], key) for r in rounds)

    def all_ok(scenario: str, who: str) -> bool:
        return all(r[scenario][who].rc == 0 for r in rounds)

    table = Table()
    row = table.row
    row("CPU used by other processes during the rounds", f"{other:.0%} of the cores")
    for scenario, label in (
        ("fresh", "fresh release (empty repo; r1release: digest and layout caches cold)"),
        ("fresh-layout-warm", "fresh release, r1release's layout cache warm (digests cold)"),
        ("rerelease", "unchanged re-release (r1release: caches warm; hf: same upload again)"),
        (
            "config",
            "config.json's transformers_version changed "
            "(r1release: digests and layout warm; next version)",
        ),
    ):
        for who in ("r1release", "hf"):
            if who not in rounds[0][scenario]:
                continue
            walls = [round(r[scenario][who].wall, 2) for r in rounds]
            name = "`r1release release --publish`" if who == "r1release" else "`hf upload`"
            row(
                f"{label}: {name}",
                f"wall {med(scenario, who, 'wall'):.2f} s {walls}, CPU "
                f"{med(scenario, who, 'cpu'):.2f} s, read {mb(med(scenario, who, 'rchar'))} "
                f"(disk {mb(med(scenario, who, 'read_bytes'))}), sent "
                f"{mb(med(scenario, who, 'sent'))}, exit "
                f"{sorted({r[scenario][who].rc for r in rounds})}",
            )

    def ratio(scenario: str, key: str, a: str = "fresh") -> float:
        return med(a, "r1release", key) / med(scenario, "hf", key)

    reads = med("fresh", "r1release", "rchar") / weights
    reads_warm = med("fresh-layout-warm", "r1release", "rchar") / weights
    hf_reads = med("fresh", "hf", "rchar") / weights
    row(
        "fresh: bytes read per weight byte, r1release (layout cold / warm)",
        f"{reads:.3f} / {reads_warm:.3f}",
        "<= 2.05",
        max(reads, reads_warm) <= 2.05,
    )
    row("fresh: bytes read per weight byte, hf upload", f"{hf_reads:.3f}", "(2.0)")
    for a, label in (("fresh", "layout cold"), ("fresh-layout-warm", "layout warm")):
        w = ratio("fresh", "wall", a)
        row(f"fresh wall, r1release / hf upload ({label})", f"{w:.2f}x", "<= 1.15x", w <= 1.15)
        c = ratio("fresh", "cpu", a)
        row(f"fresh client CPU, r1release / hf upload ({label})", f"{c:.2f}x", "<= 1.3x", c <= 1.3)
    rw = med("rerelease", "r1release", "wall") / med("rerelease", "hf", "wall")
    row("re-release wall, r1release / hf upload's no-op", f"{rw:.2f}x", "<= 1.5x", rw <= 1.5)
    re_read = max(r["rerelease"]["r1release"].rchar for r in rounds)
    from_cache = all("from the digest cache" in r["rerelease"]["r1release"].err for r in rounds)
    smallest = min(p.stat().st_size for p in files if p.suffix == ".safetensors")
    row(
        "re-release: weight bytes read by r1release (bound: all it read, imports and headers "
        "included; stderr says the digest cache served every shard)",
        f"<= {mb(re_read)} of {mb(weights)} ({re_read / weights:.2%}); digest cache: {from_cache}",
        "0 weight bytes",
        from_cache and re_read < smallest,
    )
    re_sent = max(r["rerelease"]["r1release"].sent for r in rounds)
    row("re-release: bytes r1release sent", f"{re_sent} B", "", None)
    cw = med("config", "r1release", "wall") / med("config", "hf", "wall")
    cc = med("config", "r1release", "cpu") / med("config", "hf", "cpu")
    row("config-only change: wall / CPU, r1release / hf upload", f"{cw:.2f}x / {cc:.2f}x")

    print()
    print(
        f"r1release release benchmark: {machine_line()}, huggingface_hub "
        f"{huggingface_hub.__version__} (LFS, Xet off), {weights / GB:.2f} GB of weights in "
        f"{layout['shards']} shards ({config['num_hidden_layers']} layers), {args.rounds} "
        "interleaved rounds (median)"
    )
    print()
    print(table.render())
    print()
    last = rounds[-1]
    for scenario in SCENARIOS:
        for who, m in last[scenario].items():
            tail = " | ".join(m.err.splitlines()[-3:])
            print(f"- last round, {scenario}, {who}: exit {m.rc}: {tail[:400]}")
    if other > 0.1:
        print(
            f"\nWARNING: other processes used {other:.0%} of the cores during the rounds; wall "
            "times are unreliable: rerun on an idle machine."
        )
    bad = [s for s in SCENARIOS for w in last[s] if not all_ok(s, w)]
    print(
        f"\n{table.passed} PASS, {len(table.failed)} FAIL; runs that failed: {bad or 'none'}; "
        f"benchmark took {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

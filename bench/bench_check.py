#!/usr/bin/env python
"""Benchmark of ``r1release check`` on real-size checkpoint layouts.

Run from the repository root with the venv active::

    python bench/bench_check.py            # the whole benchmark (about 3-5 minutes)
    python bench/bench_check.py --keep     # keep bench/.data/ afterwards

What it measures, in one run:

1. It builds checkpoints with the real tensor names and shapes of Qwen2.5-7B and of
   Llama-3.1-70B (bf16, sharded like transformers' ``save_pretrained`` with the historical
   ``max_shard_size="5GB"`` default, with ``model.safetensors.index.json``, config.json,
   generation_config.json, a tiny real tokenizer and a chat template from tests/factory.py).
   Their data sections are sparse (header, then the file is truncated to full size), so they
   use no disk. A tiny checkpoint from ``tests/factory.build_checkpoint`` is the reference.
2. Wall time and peak RSS of a plain ``r1release check PATH`` (a fresh process each time,
   median of several runs, peak RSS from ``wait4``), and the in-process time of
   ``r1release.checker.check`` after its imports ("work after imports").
3. The baseline: ``AutoModelForCausalLM.from_pretrained`` of the 7B layout on CPU.
4. ``r1release --help`` wall time.
5. ``--deep`` throughput against ``openssl dgst -sha256`` (one process per file, as many at
   once as cores) on ~2.8 GB of real random bf16 data in 4 shards, page cache warm, with
   planted NaN/Inf values whose exact counts the scan must report.

It prints a Markdown table of the figures and PASS/FAIL for the targets.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    DATA,
    GB,
    NPROC,
    R1RELEASE,
    REPO,
    OtherLoad,
    Run,
    Table,
    factory,
    log,
    mb,
    median,
    read_all,
    run_measured,
)
from layouts import (
    LLAMA31_70B_INSTRUCT,
    LLAMA_CASE,
    QWEN25_7B_INSTRUCT,
    QWEN_CASE,
    build_layout,
    data_offsets,
    split_shards,
    state_dict_shapes,
)

# ----------------------------------------------------------------------------- benchmarks

WORK_SNIPPET = r"""
import json, sys, time
t0 = time.perf_counter()
import r1release.checker, r1release.checkpoint
from transformers import PreTrainedTokenizerFast
t1 = time.perf_counter()
report = r1release.checker.check(sys.argv[1])
t2 = time.perf_counter()
again = r1release.checker.check(sys.argv[1])
t3 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "cold": t2 - t1, "warm": t3 - t2,
                  "errors": len(report.errors), "warnings": len(report.warnings),
                  "rules": len(report.rules_run),
                  "findings": [f.rule + ": " + f.message for f in report.findings]}))
"""

LOAD_SNIPPET = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import torch
from transformers import AutoModelForCausalLM
t1 = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16)
t2 = time.perf_counter()
rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
# transformers 5 may keep bf16 weights as views of the mmapped shards, so from_pretrained
# alone need not read them; a forward pass would. Touch one byte of every 4 KiB page.
touched = 0
with torch.no_grad():
    for p in model.parameters():
        flat = p.detach().reshape(-1).view(torch.uint8)
        touched += int(flat[::4096].sum())
t3 = time.perf_counter()
n = sum(p.numel() for p in model.parameters())
print(json.dumps({"imports": t1 - t0, "load": t2 - t1, "touch": t3 - t2, "params": n,
                  "rss_loaded": rss_loaded, "dtype": str(next(model.parameters()).dtype)}))
"""


def bench_plain(paths: dict[str, Path], reps: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    runs: dict[str, list[Run]] = {k: [] for k in paths}
    work: dict[str, list[dict[str, Any]]] = {k: [] for k in paths}
    for _ in range(reps):  # interleaved, so that drifts of the machine hit every layout alike
        for name, path in paths.items():
            runs[name].append(run_measured([R1RELEASE, "check", str(path)]))
            r = run_measured([sys.executable, "-c", WORK_SNIPPET, str(path)])
            if r.rc != 0:
                raise SystemExit(f"work snippet failed on {name}:\n{r.err}")
            work[name].append(json.loads(r.out))
    for name in paths:
        rs, ws = runs[name], work[name]
        results[name] = {
            "wall": median(r.wall for r in rs),
            "wall_all": [round(r.wall, 3) for r in rs],
            "maxrss": max(r.maxrss for r in rs),
            "rc": {r.rc for r in rs},
            "summary": rs[-1].out.strip().splitlines()[-1] if rs[-1].out.strip() else rs[-1].err,
            "imports": median(w["imports"] for w in ws),
            "cold": median(w["cold"] for w in ws),
            "warm": median(w["warm"] for w in ws),
            "findings": ws[-1]["findings"],
            "rules": ws[-1]["rules"],
        }
    return results


def bench_help(reps: int) -> tuple[float, list[float]]:
    walls = []
    for _ in range(reps):
        r = run_measured([R1RELEASE, "--help"])
        assert r.rc == 0, r.err
        walls.append(r.wall)
    return median(walls), walls


def bench_load(path: Path, expected_bytes: int) -> dict[str, Any]:
    avail = _mem_available()
    need = expected_bytes * 1.3
    if avail < need:
        return {"skipped": f"MemAvailable {avail / 2**30:.1f} GiB < {need / 2**30:.1f} GiB needed"}
    r = run_measured([sys.executable, "-c", LOAD_SNIPPET, str(path)], timeout=420)
    if r.rc != 0:
        return {"skipped": f"from_pretrained failed (rc {r.rc}): {r.err.strip()[-400:]}"}
    doc = json.loads(r.out.strip().splitlines()[-1])
    return {"wall": r.wall, "maxrss": r.maxrss, "cpu": r.cpu, **doc}


def _mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


# --- deep ---------------------------------------------------------------------------------

# Qwen2.5-7B's real dimensions with 4 decoder layers and tied embeddings: a config
# transformers builds as is (Qwen2ForCausalLM saves no lm_head.weight when tied), so the
# layout on disk is exactly what expected-tensors builds from config.json. ~2.95 GB of bf16.
DEEP_CONFIG = dict(QWEN25_7B_INSTRUCT, num_hidden_layers=4, tie_word_embeddings=True)
DEEP_SHARD = 750 * 10**6
NAN, POS_INF, NEG_INF, NEG_NAN = 0x7FC0, 0x7F80, 0xFF80, 0xFFC1
PLANTED = (
    "model.layers.1.mlp.down_proj.weight",
    "model.layers.2.self_attn.q_proj.weight",
    "model.layers.3.self_attn.k_proj.bias",
)


def deep_plan(
    shapes: dict[str, tuple[int, ...]], begins: dict[str, int]
) -> dict[str, dict[int, int]]:
    """Element index -> bf16 bit pattern to plant, per tensor.

    On the first and last element, on both sides of an 8 MiB chunk edge and of a 128 KiB
    block edge of the deep pass (both counted from the start of the file's data section,
    ``begins`` gives each tensor's offset there), and inside.
    """
    down, q, bias = PLANTED
    n_down, n_q = math.prod(shapes[down]), math.prod(shapes[q])
    chunk, block = 8 * 1024 * 1024, 128 * 1024
    start = begins[down]
    edge_chunk = ((start // chunk) + 2) * chunk  # a chunk edge inside the tensor
    edge_block = ((start // block) + 3) * block + 5 * block
    assert start < edge_block < edge_chunk < start + 2 * n_down
    i_chunk, i_block = (edge_chunk - start) // 2, (edge_block - start) // 2
    return {
        down: {
            0: NAN,
            i_block - 1: POS_INF,
            i_block: NEG_INF,
            i_chunk - 1: NEG_NAN,
            i_chunk: NAN,
            i_chunk + 12345: NAN,
            n_down // 2: 0x7FFF,  # NaN with every mantissa bit set
            n_down - 1: NEG_INF,
        },
        q: {n_q // 3: NAN, n_q - 2: POS_INF},
        bias: {7: NAN},
    }


def build_deep(root: Path) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """The deep checkpoint (real random finite bf16) with 11 planted NaN/Inf values; returns
    its layout and, per file, the count of non-finite values each tensor must report."""
    tensors = state_dict_shapes(DEEP_CONFIG)
    begins = data_offsets(split_shards(tensors, DEEP_SHARD))
    plan = deep_plan(dict(tensors), begins)
    rng = np.random.default_rng(1234)

    def fill(name: str, shape: tuple[int, ...]) -> np.ndarray:
        bits = np.frombuffer(rng.bytes(2 * math.prod(shape)), dtype="<u2").copy()
        bits &= 0xBFFF  # clear the exponent's top bit: every value is finite
        for index, value in plan.get(name, {}).items():
            bits[index] = value
        return bits

    layout = build_layout(root, DEEP_CONFIG, QWEN_CASE, max_shard=DEEP_SHARD, fill=fill)
    expected: dict[str, dict[str, int]] = {}
    for name, points in plan.items():
        expected.setdefault(layout["weight_map"][name], {})[name] = len(points)
    return layout, expected


def bench_deep(root: Path, expected: dict[str, dict[str, int]], reps: int) -> dict[str, Any]:
    import hashlib
    import resource
    from concurrent.futures import ThreadPoolExecutor

    from r1release.checkpoint import Checkpoint
    from r1release.deep import scan_checkpoint

    files = sorted((p for p in root.iterdir() if p.is_file()), key=lambda p: -p.stat().st_size)
    total = sum(p.stat().st_size for p in files)
    log(f"deep: warming the page cache ({total / GB:.2f} GB)")
    read_all(files)

    def openssl() -> tuple[float, float, dict[str, str]]:
        r = run_measured(
            ["xargs", "-P", str(NPROC), "-n", "1", "openssl", "dgst", "-sha256"],
            stdin="\n".join(str(p) for p in files) + "\n",
        )
        assert r.rc == 0, r.err
        digests = {}
        for line in r.out.splitlines():  # SHA2-256(/path)= hex
            left, _, hexd = line.rpartition("= ")
            digests[Path(left[left.index("(") + 1 : -1]).name] = hexd.strip()
        return r.wall, r.cpu, digests

    def cpu_self() -> float:
        u = resource.getrusage(resource.RUSAGE_SELF)
        return u.ru_utime + u.ru_stime

    def ours() -> tuple[float, float, Any]:
        c0, t0 = cpu_self(), time.perf_counter()
        scan = scan_checkpoint(Checkpoint(root), cache=False)  # measure reading, not the cache
        return time.perf_counter() - t0, cpu_self() - c0, scan

    def _hash_file(p: Path) -> str:
        sha, view = hashlib.sha256(), memoryview(bytearray(8 << 20))
        with open(p, "rb", buffering=0) as fh:
            while n := fh.readinto(view):
                sha.update(view[:n])
        return sha.hexdigest()

    def hashlib_only() -> tuple[float, float]:
        c0, t0 = cpu_self(), time.perf_counter()
        with ThreadPoolExecutor(NPROC) as pool:
            list(pool.map(_hash_file, files))
        return time.perf_counter() - t0, cpu_self() - c0

    res: dict[str, list[tuple[float, float]]] = {"openssl": [], "ours": [], "hashlib": []}
    ssl_digests: dict[str, str] = {}
    scan = None
    for i in range(reps):  # interleaved
        log(f"deep: round {i + 1}/{reps}")
        w, c, ssl_digests = openssl()
        res["openssl"].append((w, c))
        w, c, scan = ours()
        res["ours"].append((w, c))
        res["hashlib"].append(hashlib_only())
    assert scan is not None
    ours_digests = {d.path: d.sha256 for d in scan.digests}
    digests_match = ours_digests == ssl_digests
    found = {f: dict(v) for f, v in scan.nonfinite.items()}
    nan_ok = found == expected

    # The CLI end to end (imports, all rules, the deep pass, the report), fresh processes.
    # --no-cache: the digest cache is off, every byte is read (cold digests, warm page cache).
    # The layout cache (expected-tensors' model build) starts empty in its own directory:
    # the first run builds the model on the meta device (imports torch), the second finds it.
    with tempfile.TemporaryDirectory() as cache:
        env = os.environ | {"R1RELEASE_CACHE_DIR": cache}
        argv = [R1RELEASE, "check", "--deep", "--no-cache", "--format", "json", str(root)]
        cli = [run_measured(argv, env=env) for _ in range(2)]

    def cli_ok(run: Any) -> tuple[bool, list[tuple[str, str, str]]]:
        try:
            report = json.loads(run.out)
        except ValueError:
            return False, [("(no JSON)", "", run.err.strip()[-300:])]
        found = [(f["rule"], f.get("file") or "", f["message"]) for f in report["findings"]]
        ok = (
            run.rc == 1
            and {f[1] for f in found if f[0] == "finite-weights"} == set(expected)
            and all(f[0] == "finite-weights" for f in found)
            and {f["path"]: f["sha256"] for f in report["files"]} == ssl_digests
        )
        return ok, found

    checked = [cli_ok(r) for r in cli]

    def summary(key: str) -> dict[str, float]:
        walls = [w for w, _ in res[key]]
        cpus = [c for _, c in res[key]]
        return {
            "wall": median(walls),
            "walls": [round(w, 2) for w in walls],
            "gbps": total / median(walls) / GB,
            "cpu_per_gb": median(cpus) / (total / GB),
        }

    return {
        "bytes": total,
        "openssl": summary("openssl"),
        "ours": summary("ours"),
        "hashlib": summary("hashlib"),
        "digests_match": digests_match,
        "nan_ok": nan_ok,
        "found": found,
        "expected": expected,
        "cli": cli,
        "cli_ok": [ok for ok, _ in checked],
        "cli_findings": [found for _, found in checked],
    }


# ----------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="runs per plain-check figure")
    parser.add_argument("--deep-reps", type=int, default=5, help="rounds of the deep comparison")
    parser.add_argument("--skip-load", action="store_true", help="skip the transformers baseline")
    parser.add_argument("--skip-deep", action="store_true", help="skip the --deep comparison")
    parser.add_argument("--keep", action="store_true", help="keep bench/.data/ afterwards")
    args = parser.parse_args()
    if R1RELEASE is None:
        raise SystemExit("r1release is not installed in this environment")
    if not shutil.which("openssl") and not args.skip_deep:
        raise SystemExit("openssl not found")
    started = time.perf_counter()
    DATA.mkdir(parents=True, exist_ok=True)
    made: list[Path] = [DATA / "cache"]
    # r1release's caches (digests, layouts) go to a directory of this run, not the user's.
    os.environ["R1RELEASE_CACHE_DIR"] = str(DATA / "cache")
    try:
        return _run(args, made, started)
    finally:
        if not args.keep:
            for path in made:
                shutil.rmtree(path, ignore_errors=True)
            log("removed " + ", ".join(str(p.relative_to(REPO)) for p in made))


def _run(args: argparse.Namespace, made: list[Path], started: float) -> int:
    import platform

    import transformers

    # 1. checkpoints
    tiny = DATA / "tiny"
    if tiny.exists():
        shutil.rmtree(tiny)
    made.append(tiny)
    factory.build_checkpoint(tiny, QWEN_CASE)
    layouts: dict[str, dict[str, Any]] = {}
    paths = {"tiny": tiny}
    for key, config, case in (
        ("qwen2.5-7b", QWEN25_7B_INSTRUCT, QWEN_CASE),
        ("llama-3.1-70b", LLAMA31_70B_INSTRUCT, LLAMA_CASE),
    ):
        root = DATA / key
        made.append(root)
        log(f"building sparse {key} layout")
        layouts[key] = build_layout(root, config, case)
        paths[key] = root
        log(
            f"  {layouts[key]['shards']} shards, {layouts[key]['tensors']} tensors, "
            f"{layouts[key]['params'] / 1e9:.2f} B params, {layouts[key]['apparent'] / GB:.1f} GB "
            f"apparent, {layouts[key]['disk'] / 1e6:.1f} MB on disk"
        )
    assert layouts["qwen2.5-7b"]["shards"] == 4, layouts["qwen2.5-7b"]
    assert layouts["llama-3.1-70b"]["shards"] == 30, layouts["llama-3.1-70b"]

    # 2. plain check
    log(f"plain check: {args.reps} rounds over {', '.join(paths)}")
    watch = OtherLoad()
    plain = bench_plain(paths, args.reps)
    other_plain = watch.share()
    for name, r in plain.items():
        log(f"  {name}: wall {r['wall_all']}  rc {r['rc']}  findings {r['findings']}")

    # 4. --help, and the floor of the RSS figures (the wrapper's own RSS, see WRAPPER)
    help_wall, _ = bench_help(max(args.reps, 7))
    floor = run_measured(["true"]).maxrss

    # 3. transformers baseline
    if args.skip_load:
        load: dict[str, Any] = {"skipped": "--skip-load"}
    else:
        log("baseline: AutoModelForCausalLM.from_pretrained(qwen2.5-7b layout, bf16) on CPU")
        load = bench_load(paths["qwen2.5-7b"], layouts["qwen2.5-7b"]["apparent"])
        log(f"  {load}")
    if not args.keep:  # drop the sparse layouts (and the 15 GB of page cache the load made)
        for key in layouts:
            shutil.rmtree(DATA / key)

    # 5. deep
    deep: dict[str, Any] | None = None
    if not args.skip_deep:
        root = DATA / "deep"
        made.append(root)
        log("deep: writing ~2.95 GB of random bf16 (Qwen2.5-7B, 4 layers, tied embeddings)")
        deep_layout, expected = build_deep(root)
        watch = OtherLoad()
        deep = bench_deep(root, expected, args.deep_reps)
        deep["other"] = watch.share()
        deep["layout"] = deep_layout
        if not args.keep:
            shutil.rmtree(root)  # the only checkpoint that takes real disk space

    # ---------------------------------------------------------------- table
    table = Table()
    row = table.row

    t, q, ll = plain["tiny"], plain["qwen2.5-7b"], plain["llama-3.1-70b"]
    row(
        "CPU used by other processes during the plain-check runs", f"{other_plain:.0%} of the cores"
    )
    for name, label in (
        ("tiny", "tiny (factory, qwen2.5-7b-instruct tokens)"),
        (
            "qwen2.5-7b",
            f"Qwen2.5-7B layout ({layouts['qwen2.5-7b']['shards']} shards, "
            f"{layouts['qwen2.5-7b']['apparent'] / GB:.1f} GB)",
        ),
        (
            "llama-3.1-70b",
            f"Llama-3.1-70B layout ({layouts['llama-3.1-70b']['shards']} shards, "
            f"{layouts['llama-3.1-70b']['apparent'] / GB:.1f} GB)",
        ),
    ):
        r = plain[name]
        row(f"`check` wall, {label}", f"{r['wall']:.3f} s")
    ratio = ll["wall"] / t["wall"]
    row("`check` wall, 70B layout / tiny", f"{ratio:.2f}x", "<= 1.3x", ratio <= 1.3)
    ratio7 = q["wall"] / t["wall"]
    row("`check` wall, 7B layout / tiny", f"{ratio7:.2f}x")
    for name in plain:
        rss = plain[name]["maxrss"]
        row(f"`check` peak RSS, {name}", mb(rss), "< 200 MB", rss < 200e6)
    row("(peak RSS floor of the measuring wrapper: `true`)", mb(floor))
    for name in plain:
        row(
            f"imports (r1release.checker + PreTrainedTokenizerFast), {name}",
            f"{plain[name]['imports']:.3f} s",
        )
    for name in plain:
        c = plain[name]["cold"]
        row(
            f"work after imports: first `check()` in process, {name}",
            f"{c:.3f} s",
            "< 0.25 s",
            c < 0.25,
        )
    for name in plain:
        row(f"second `check()` in the same process, {name}", f"{plain[name]['warm']:.3f} s")
    row("`r1release --help` wall", f"{help_wall:.3f} s", "< 0.3 s", help_wall < 0.3)
    if "skipped" in load:
        row("transformers `from_pretrained` 7B layout", "skipped: " + load["skipped"])
    else:
        row(
            "transformers: process wall, `from_pretrained(7B layout, dtype=bf16)` + touch weights",
            f"{load['wall']:.1f} s (imports {load['imports']:.1f} s, from_pretrained "
            f"{load['load']:.1f} s, touching every weight page {load['touch']:.1f} s)",
        )
        row(
            "transformers: peak RSS after from_pretrained / after touching the weights",
            f"{load['rss_loaded'] / 2**30:.2f} GiB / {load['maxrss'] / 2**30:.1f} GiB",
        )
        row(
            "`check` 7B layout vs loading it: wall / peak RSS",
            f"{q['wall'] / load['wall'] * 100:.1f} % / {q['maxrss'] / load['maxrss'] * 100:.2f} %",
        )
    if deep is not None:
        o, u, h = deep["openssl"], deep["ours"], deep["hashlib"]
        row(
            "CPU used by other processes during the deep rounds",
            f"{deep['other']:.0%} of the cores",
        )
        size = f"{deep['bytes'] / GB:.2f} GB, {deep['layout']['shards']} shards"
        row(
            f"openssl dgst -sha256, xargs -P {NPROC} ({size})",
            f"{o['gbps']:.3f} GB/s ({o['wall']:.2f} s; {o['walls']})",
        )
        row(
            f"`scan_checkpoint` (sha256 + NaN/Inf scan), {NPROC} threads",
            f"{u['gbps']:.3f} GB/s ({u['wall']:.2f} s; {u['walls']})",
        )
        row(
            f"hashlib sha256 alone, {NPROC} threads",
            f"{h['gbps']:.3f} GB/s ({h['wall']:.2f} s; {h['walls']})",
        )
        dr = u["gbps"] / o["gbps"]
        row("deep / openssl throughput", f"{dr:.2f}x", ">= 0.8x", dr >= 0.8)
        row("deep / hashlib-alone throughput", f"{u['gbps'] / h['gbps']:.2f}x")
        row(
            "CPU s per GB: openssl / deep / hashlib",
            f"{o['cpu_per_gb']:.2f} / {u['cpu_per_gb']:.2f} / {h['cpu_per_gb']:.2f}",
        )
        row(
            "deep: sha256 equal to openssl's, every file",
            str(deep["digests_match"]),
            "equal",
            deep["digests_match"],
        )
        row(
            "deep: planted NaN/Inf found with exact counts",
            "; ".join(
                f"{n} ({c})" for f in sorted(deep["found"]) for n, c in deep["found"][f].items()
            ),
            "exact",
            deep["nan_ok"],
        )
        for run, ok, layout in zip(deep["cli"], deep["cli_ok"], ("cold", "warm"), strict=True):
            row(
                "`r1release check --deep --no-cache --format json` wall (fresh process, all "
                f"rules; digest cache off, layout cache {layout})",
                f"{run.wall:.2f} s ({deep['bytes'] / run.wall / GB:.3f} GB/s end to end), "
                f"CPU {run.cpu:.1f} s, peak RSS {mb(run.maxrss)}",
                "exit 1, only the planted finite-weights",
                ok,
            )

    print()
    print(
        f"r1release check benchmark: {platform.processor() or platform.machine()}, {NPROC} cores, "
        f"Python {platform.python_version()}, transformers {transformers.__version__}, "
        f"numpy {np.__version__}, {_openssl_version()}; {args.reps} runs per plain figure "
        f"(median), {args.deep_reps} deep rounds (median)"
    )
    print()
    print(table.render())
    print()
    for name in plain:
        print(
            f"- `check {name}`: exit {sorted(plain[name]['rc'])}, {plain[name]['rules']} rules, "
            f"findings: {plain[name]['findings'] or 'none'}"
        )
    if deep is not None:
        print(
            f"- deep layout: {deep['layout']['shards']} shards, {deep['layout']['tensors']} "
            f"tensors ({', '.join(sorted(deep['expected']))} hold the planted values)"
        )
        for run, found in zip(deep["cli"], deep["cli_findings"], strict=True):
            print(f"- deep CLI: exit {run.rc}, stderr {run.err.strip()!r}")
            print(f"  findings: {found}")
    busy = max(other_plain, deep["other"] if deep is not None else 0.0)
    if busy > 0.1:
        print(
            f"\nWARNING: other processes used up to {busy:.0%} of the cores during the timed "
            "phases; wall times and the deep/openssl ratio are unreliable: rerun on an idle "
            "machine."
        )
    print(
        f"\n{table.passed} PASS, {len(table.failed)} FAIL; "
        f"benchmark took {time.perf_counter() - started:.0f} s"
    )
    return 0


def _openssl_version() -> str:
    try:
        return (
            subprocess.run(["openssl", "version"], capture_output=True, text=True)
            .stdout.split(" (")[0]
            .strip()
        )
    except OSError:
        return "openssl ?"


if __name__ == "__main__":
    sys.exit(main())

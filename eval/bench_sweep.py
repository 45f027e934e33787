"""Sweep overhead: 4 small demo runs through ``textvae sweep`` against the same runs back to back.

Both sides run as fresh processes (imports included), one torch thread per run; the sides alternate
(back to back, sweep, back to back, ...) so that a change in the machine's load hits both. The sweep's
ideal is half the back-to-back time on 2 cores; overhead = sweep / (back to back / 2) - 1. The resident
memory of the sweep command's process tree (the command, Ray's daemons and idle workers; and apart,
the workers running points) and its CPU time are sampled every 0.2 s from /proc.

    python -m eval.bench_sweep --repeats 2 --train-limit 1000 --out eval/results/benchmarks/sweep.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from textvae.training.environment import describe_cpu

RUNS = ["vae", "kl-annealing"]
SEEDS = [1, 2]
SETTINGS = ["train.epochs=2", "eval.iw_samples=10", "eval.limit=200",
            "train.progress=false", "train.tensorboard=false"]

BACK_TO_BACK = """
import sys, torch
torch.set_num_threads(1)
from textvae import recipes
from textvae.training import train
for strategy in {runs}:
    for seed in {seeds}:
        train(recipes.resolve("demo", strategy, {settings}, seed), sys.argv[1] + f"/{{strategy}}/seed{{seed}}")
"""


def load() -> float:
    return os.getloadavg()[0]


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(pid))
    return children


def tree_usage(root: int, cpu: dict[int, float]) -> tuple[float, float]:
    """Resident memory (MB) of ``root``'s process tree, as (the command, Ray's daemons and idle workers;
    the workers running a point), from /proc; updates ``cpu`` with each process's CPU seconds so far."""
    children, todo, tree = _children(), [root], []
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    daemons = workers = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in tree:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                       if line.startswith("VmRSS:")) / 1024
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, StopIteration, IndexError):
            continue
        cpu[pid] = max(cpu.get(pid, 0.0), (int(fields[11]) + int(fields[12])) / tick)
        if cmd.startswith("ray::run_point"):
            workers += rss
        else:
            daemons += rss
    return daemons, workers


def timed(cmd: list[str]) -> tuple[float, float, float, float]:
    """Wall seconds, CPU seconds of the process tree (sampled every 0.2 s, so the last fraction of a
    second of each process is missed, on both sides), peak memory of the command + daemons and of the
    workers running points."""
    peak = [0.0, 0.0]
    cpu: dict[int, float] = {}
    done = threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def sample():
        while not done.wait(0.2):
            d, w = tree_usage(proc.pid, cpu)
            peak[0], peak[1] = max(peak[0], d), max(peak[1], w)

    thread = threading.Thread(target=sample)
    thread.start()
    status = proc.wait()
    seconds = time.perf_counter() - start
    done.set()
    thread.join()
    if status != 0:
        raise SystemExit(f"{cmd[:4]} failed with status {status}")
    return seconds, sum(cpu.values()), peak[0], peak[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train-limit", type=int, default=1000, help="training sentences per run")
    parser.add_argument("--out", type=Path)
    opts = parser.parse_args()
    env_note = f"CPU: {describe_cpu()}"
    SETTINGS.insert(0, f"data.train_limit={opts.train_limit}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    spec = tmp / "spec.toml"
    spec.write_text(f"datasets = [\"demo\"]\nstrategies = {json.dumps(RUNS)}\nseeds = {json.dumps(SEEDS)}\n"
                    f"set = {json.dumps(SETTINGS)}\n")
    script = BACK_TO_BACK.format(runs=RUNS, seeds=SEEDS, settings=SETTINGS)
    rows = []
    try:
        for i in range(opts.repeats):
            for side in ("back to back", "sweep"):
                out = tmp / f"{side.replace(' ', '_')}{i}"
                cmd = ([sys.executable, "-c", script, str(out)] if side == "back to back" else
                       [sys.executable, "-c", "from textvae.cli.main import app; app()", "sweep", str(spec),
                        "--out", str(out), "--cpus-per-run", "1", "--no-progress"])
                before = load()
                seconds, cpu, daemons, workers = timed(cmd)
                rows.append({"side": side, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
                             "load_before": before, "load_after": load(),
                             "ray_daemons_mb": round(daemons), "ray_workers_mb": round(workers)})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    b2b = statistics.median(r["seconds"] for r in rows if r["side"] == "back to back")
    sweep = statistics.median(r["seconds"] for r in rows if r["side"] == "sweep")
    lines = [f"# Sweep overhead ({len(RUNS) * len(SEEDS)} demo runs: {', '.join(RUNS)} x seeds {SEEDS}, "
             f"{' '.join(SETTINGS)}; {env_note})", "",
             "| repeat | side | wall (s) | CPU (s) | load avg before → after | command + Ray daemons, peak RSS (MB) "
             "| workers running points, peak RSS (MB) |",
             "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rows):
        lines.append(f"| {i // 2 + 1} | {r['side']} | {r['seconds']} | {r['cpu_seconds']} | "
                     f"{r['load_before']:.1f} → {r['load_after']:.1f} | "
                     + (f"{r['ray_daemons_mb']} | {r['ray_workers_mb']} |" if r["side"] == "sweep" else "– | – |"))
    b2b_cpu = statistics.median(r["cpu_seconds"] for r in rows if r["side"] == "back to back")
    sweep_cpu = statistics.median(r["cpu_seconds"] for r in rows if r["side"] == "sweep")
    lines += ["", f"Median wall: back to back {b2b:.1f} s, sweep {sweep:.1f} s: speed-up {b2b / sweep:.2f}x; "
              f"overhead against the 2-core ideal (back to back / 2 = {b2b / 2:.1f} s): {sweep / (b2b / 2) - 1:+.0%}.",
              f"Median CPU time: back to back {b2b_cpu:.1f} s, sweep {sweep_cpu:.1f} s "
              f"(Ray's own CPU cost: {sweep_cpu - b2b_cpu:+.1f} s, {sweep_cpu / b2b_cpu - 1:+.0%}).",
              f"Command: `python -m eval.bench_sweep --repeats {opts.repeats} --train-limit {opts.train_limit}`"]
    text = "\n".join(lines) + "\n"
    print(text)
    if opts.out:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(text)


if __name__ == "__main__":
    main()

"""CPU time and wall time of a shortened demo run with textvae's thread policy on and off, on the
machine as it is ("idle") and beside two busy processes this script starts.

    python -m eval.bench_threads                   # writes eval/results/benchmarks/threads.md (+ .json)
    python -m eval.bench_threads --repeats 3 --epochs 1 --train-limit 2000

The run: ``textvae recipe demo bn-vae`` with ``train.epochs``, ``data.train_limit``, ``eval.limit`` and
``eval.iw_samples`` cut down (the demo's data cache is warmed by one untimed run first).

- **policy on**: the ``textvae`` command as shipped (textvae.threads: OpenMP threads wait passively,
  ``OMP_WAIT_POLICY=PASSIVE`` set before torch loads; threads = the CPUs this process may use).
- **policy off**: the same command in a process that imports torch before textvae's CLI, so OpenMP
  starts with its default waiting (spin for a while, then sleep), as before the policy existed.

``OMP_NUM_THREADS``, ``OMP_WAIT_POLICY`` and ``KMP_BLOCKTIME`` are removed from both sides'
environment. Busy: two processes spinning in a Python loop, started for the busy block and killed
after it. The sides alternate (their order flips every repeat) so that drifts in the load of a shared
machine hit both. CPU time is the demo process's own user + system time (``os.wait4``); the load
average before each run is recorded, because other users' jobs are part of "idle" on a shared host.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from textvae.training.environment import describe_cpu

from .timing import spread

REPO = Path(__file__).resolve().parents[1]

SIDES = {"on": "from textvae.cli.main import app; app()",
         "off": "import torch; from textvae.cli.main import app; app()"}
CLEARED = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME", "MKL_NUM_THREADS")


def demo_args(args, out: Path) -> list[str]:
    return ["recipe", "demo", "bn-vae", "--out", str(out), "--no-progress",
            "--set", f"train.epochs={args.epochs}", "--set", f"data.train_limit={args.train_limit}",
            "--set", f"eval.limit={args.eval_limit}", "--set", f"eval.iw_samples={args.iw_samples}"]


def run_demo(side: str, args, work: Path, env: dict[str, str], n: int) -> dict[str, float]:
    out = work / f"run{n}"
    load = os.getloadavg()[0]
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", SIDES[side], *demo_args(args, out)], env=env, cwd=work,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode(errors="replace").strip()
    process.stderr.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"bench_threads: the demo run failed (exit {process.returncode}): "
                         f"{stderr.splitlines()[-1] if stderr else 'no output'}")
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": wall, "load": load}


def spinners(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def stop(processes: list[subprocess.Popen]) -> None:
    for p in processes:
        p.kill()
        p.wait()


def report(results: dict) -> str:
    runs = results["runs"]
    cell = {(load, side): [r for r in runs if r["load_kind"] == load and r["side"] == side]
            for load in ("idle", "busy") for side in SIDES}

    def median(load: str, side: str, key: str) -> float:
        return statistics.median(r[key] for r in cell[load, side])

    lines = [f"# Thread policy: CPU and wall time of a shortened demo run ({results['date']})", "",
             f"`{results['command']}`", "",
             f"CPU: {results['cpu']}. torch {results['torch']}, Python {results['python']}, {results['platform']}.",
             f"Run: `textvae {' '.join(results['demo_args'])}` (float32). {results['repeats']} repeats per cell, "
             f"sides alternating; busy = {results['busy']} spinning Python processes started by the script.",
             "Policy on: the `textvae` command as shipped (passive OpenMP waiting). Off: the same command in a "
             "process that loads torch before textvae's CLI (OpenMP's default: spin, then sleep). Both run as many "
             "threads as the CPUs available; OMP_NUM_THREADS, OMP_WAIT_POLICY and KMP_BLOCKTIME unset.",
             f"Load average (1 min) before each run: {min(r['load'] for r in runs):.1f}–"
             f"{max(r['load'] for r in runs):.1f}. The host is shared with other users' jobs, so \"idle\" "
             "means without this script's busy processes, not an idle machine.", "",
             "| load | policy | CPU s, median (range) | wall s, median (range) |", "|---|---|---:|---:|"]
    for (load, side), rs in cell.items():
        cpu, wall = (spread([r[key] for r in rs], "{:.1f}", "range") for key in ("cpu", "wall"))
        lines.append(f"| {load} | {side} | {cpu} | {wall} |")
    lines += ["", "| policy | CPU time, busy / idle (goal ≤ 1.2) | wall time, busy / idle |", "|---|---:|---:|"]
    for side in SIDES:
        lines.append(f"| {side} | {median('busy', side, 'cpu') / median('idle', side, 'cpu'):.2f} | "
                     f"{median('busy', side, 'wall') / median('idle', side, 'wall'):.2f} |")
    lines += ["", "Policy on / off, medians: " + "; ".join(
        f"{load}: CPU {median(load, 'on', 'cpu') / median(load, 'off', 'cpu'):.2f}, "
        f"wall {median(load, 'on', 'wall') / median(load, 'off', 'wall'):.2f}" for load in ("idle", "busy")) + "."]
    lines += ["", "Each run, in order:", "", "| # | load | policy | CPU s | wall s | load avg before |",
              "|---:|---|---|---:|---:|---:|"]
    for i, r in enumerate(runs, 1):
        lines.append(f"| {i} | {r['load_kind']} | {r['side']} | {r['cpu']:.1f} | {r['wall']:.1f} | {r['load']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--busy", type=int, default=2, help="spinning processes beside the busy runs")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-limit", type=int, default=1500)
    parser.add_argument("--eval-limit", type=int, default=200)
    parser.add_argument("--iw-samples", type=int, default=20)
    parser.add_argument("--out", default="eval/results/benchmarks/threads", help="writes OUT.md and OUT.json")
    args = parser.parse_args(argv)
    import torch

    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench_threads.") as work_dir:
        work = Path(work_dir)
        env["TEXTVAE_DATA"] = str(work / "data")
        run_demo("on", args, work, env, 0)  # untimed: builds the demo's data cache
        n = 1
        for repeat in range(args.repeats):
            for load_kind in ("idle", "busy"):
                busy = spinners(args.busy) if load_kind == "busy" else []
                try:
                    order = list(SIDES) if repeat % 2 == 0 else list(reversed(SIDES))
                    for side in order:
                        r = run_demo(side, args, work, env, n)
                        n += 1
                        runs.append({"load_kind": load_kind, "side": side, **r})
                        print(f"bench_threads: {load_kind} {side}: {r['cpu']:.1f} CPU s, {r['wall']:.1f} s wall, "
                              f"load {r['load']:.1f}", file=sys.stderr, flush=True)
                finally:
                    stop(busy)
    results = {"date": time.strftime("%Y-%m-%d %H:%M %Z"),
               "command": "python -m eval.bench_threads " + " ".join(argv if argv is not None else sys.argv[1:]),
               "cpu": describe_cpu(), "torch": torch.__version__, "python": platform.python_version(),
               "platform": platform.platform(), "demo_args": demo_args(args, Path("RUN")), "repeats": args.repeats,
               "busy": args.busy, "runs": runs}
    out = Path(args.out) if Path(args.out).is_absolute() else REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    text = report(results)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    print(text)
    return results


if __name__ == "__main__":
    main()

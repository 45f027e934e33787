"""One command that checks textvae's whole CUDA surface and takes its GPU figures, into one report.

    python -m eval.gpu_check                      # on a CUDA machine: full size, about 6-8 minutes on an H100
    python -m eval.gpu_check --toy                # tiny sizes, any machine (the default without CUDA)
    python -m eval.gpu_check --out eval/results/benchmarks/gpu_check   # writes gpu_check.md and gpu_check.json

Steps (each reports its own wall time; one that fails is a row of the report, not the end of it):

1. ``tests``: the test suite with ``--device cuda`` (tests marked ``cpu_only`` are skipped).
2. ``train``: a PTB-small and a paper-size model trained for a fixed sample of batches in float32,
   bf16 and fp16 (``train.amp``; a precision the device cannot run is a skipped row naming the
   reason textvae.capability's probe gives), with He et al.'s training step (re-implemented, eval/timing.py)
   timed in passes that alternate with textvae's: target tokens/s, the per-pass speed ratios, and
   the peak GPU memory of each precision measured alone.
3. ``iwnll``: the importance-weighted NLL (K = 500) of 1,000 test sentences at paper size, in passes
   alternating with He et al.'s one-sentence loop (eval/bench_eval.py) on the same model.
4. ``demo``: ``textvae recipe demo bn-vae`` end to end on the device and on the CPU (same seed), and
   on the CPU with the next seed; the device run's metrics are compared with the CPU run's, with
   the CPU seed-to-seed difference as the scale of training noise. On a CPU-only machine the "device"
   run is a CPU run and must match the other bit for bit.
5. ``deterministic``: ``train.deterministic`` twice on the device, the weights compared bitwise
   (last: the mode is process-wide).

Data: PTB from ``shared/data/ptb`` beside or inside the repository when present, else the embedded
demo corpus (``--toy`` always uses the demo corpus). The CPU demo runs go in the background from
the start, so that their minutes overlap the GPU steps.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from textvae.capability import amp_unavailable
from textvae.config import ModelConfig, RunConfig
from textvae.data import encode_texts, load_corpus, make_batches
from textvae.evaluation import iw_log_likelihood
from textvae.evaluation.importance import pass_limits
from textvae.evaluation.protocol import evaluation_mode
from textvae.models import build_model
from textvae.training import Trainer
from textvae.training.device import backend_settings, synchronize
from textvae.training.environment import machine
from textvae.types import Batch

from . import timing
from .timing import spread

REPO = Path(__file__).resolve().parents[1]

PRECISIONS = ("off", "bf16", "fp16")
TARGET_IWNLL_SPEEDUP = 20.0
TARGET_TRAIN_SPEEDUP = 1.5
DEMO_METRICS = ("nll", "elbo", "rec", "kl", "mi", "au", "ppl")


@dataclass
class Scale:
    """How big each step is: the full check, or a toy that runs anywhere in seconds."""

    sizes: dict[str, dict[str, int]]
    train_lines: int
    train_batches: int
    train_repeats: int
    iw_sentences: int
    iw_samples: int
    iw_rounds: int
    tests: list[str]
    test_timeout: int
    demo_overrides: list[str] = field(default_factory=list)


FULL = Scale(sizes=timing.SIZES, train_lines=10_000, train_batches=20, train_repeats=3, iw_sentences=1000,
             iw_samples=500, iw_rounds=2, tests=["tests"], test_timeout=300)
TOY = Scale(sizes={"paper": dict(embed_dim=16, enc_hidden=16, dec_hidden=16, latent_dim=4)},
            train_lines=300, train_batches=1, train_repeats=1, iw_sentences=8, iw_samples=5, iw_rounds=1,
            tests=["tests/test_precision.py::test_fp16_unscales_gradients_before_clipping"], test_timeout=120,
            demo_overrides=["train.epochs=1", "model.embed_dim=8", "model.enc_hidden=8", "model.dec_hidden=8",
                            "model.latent_dim=2", "eval.iw_samples=2"])
TOY_CORPUS_LINES = {"train": 48, "valid": 8, "test": 8}


def write_toy_corpus(root: Path) -> str:
    """The first lines of the demo corpus: the toy check's data, for training, IW-NLL and the demo runs."""
    corpus = load_corpus(RunConfig.from_dict({"data": {"corpus": "demo"}}).data)
    root.mkdir(parents=True)
    for split, n in TOY_CORPUS_LINES.items():
        (root / f"{split}.txt").write_text("\n".join(corpus.splits[split].texts[:n]) + "\n")
    return str(root)


def default_data() -> str:
    for candidate in (REPO / "shared" / "data" / "ptb", REPO.parent / "shared" / "data" / "ptb"):
        if (candidate / "train.txt").is_file():
            return str(candidate)
    return "demo"


# ---- step 1: the test suite on the device -----------------------------------------------------------

def repo_env(threads: int | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def start_tests(device: torch.device, scale: Scale, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--device", str(device), *scale.tests]
    return subprocess.Popen(command, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT, env=repo_env())


def finish_tests(process: subprocess.Popen, device: torch.device, scale: Scale, log: Path,
                 timeout: float) -> dict[str, Any]:
    try:
        process.wait(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    failures = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    summary = lines[-1] if lines else "no output"
    if process.returncode not in (0, 1):
        summary = f"pytest exit {process.returncode}: {summary}"
    return {"command": f"python -m pytest -q --device {device} {' '.join(scale.tests)}",
            "returncode": process.returncode, "summary": summary, "failures": failures[:30],
            "ok": process.returncode == 0}


# ---- step 2: training throughput and memory ---------------------------------------------------------

def training_spec(size: str, device: torch.device, amp: str, data: str, scale: Scale) -> timing.Spec:
    return timing.Spec(size, str(device), data, scale.train_lines, scale.train_batches, scale.train_repeats,
                            torch.get_num_threads(), amp=amp)


def make_step(name: str, size: str, device: torch.device, config: RunConfig, corpus, run_dir: str, args,
              scale: Scale) -> timing.Pass:
    """textvae's training pass at precision ``name``, or He et al.'s (``reference``, float32)."""
    if name == "reference":
        return timing.make_reference_pass(training_spec(size, device, "off", args.data, scale), config,
                                               len(corpus.vocab))
    spec = training_spec(size, device, name, args.data, scale)
    return timing.trainer_pass(timing.make_trainer(spec, "vae", corpus, run_dir))


def step_train(device: torch.device, scale: Scale, args) -> dict[str, Any]:
    """Each precision the device can run (textvae.capability's probe); the others are skipped rows."""
    skipped = {name: reason for name in PRECISIONS if (reason := amp_unavailable(name, device))}
    measured = [name for name in (*PRECISIONS, "reference") if name not in skipped]
    rows = []
    for size in scale.sizes:
        config = timing.bench_config(training_spec(size, device, "off", args.data, scale))
        corpus = load_corpus(config.data)
        batches = timing.sample_batches(corpus.splits["train"], config.data.batch_size, scale.train_batches)
        largest = max(make_batches(corpus.splits["train"], config.data.batch_size, "bucket"), key=Batch.n_targets)
        targets = sum(b.n_targets() for b in batches)
        with tempfile.TemporaryDirectory(prefix="gpu_check.") as run_dir:
            # GPU memory: each step alone, over the sample and the epoch's largest bucket.
            peaks = {}
            for name in measured if device.type == "cuda" else ():
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
                step = make_step(name, size, device, config, corpus, run_dir, args, scale)
                timing.run_pass(step, batches + [largest])
                peaks[name] = torch.cuda.max_memory_allocated(device) / 2**20
                del step
            # Speed: all four steps alive, passes alternating so that a drift in clock or load hits each.
            steps = {name: make_step(name, size, device, config, corpus, run_dir, args, scale) for name in measured}
            for step in steps.values():
                timing.run_pass(step, batches)
            seconds: dict[str, list[float]] = {name: [] for name in steps}
            for _ in range(scale.train_repeats):
                for name, step in steps.items():
                    seconds[name].append(timing.run_pass(step, batches))
            del steps
        for name in (*PRECISIONS, "reference"):
            if name in skipped:
                rows.append({"size": size, "code": name, "skipped": skipped[name]})
                continue
            times = seconds[name]
            rows.append({"size": size, "code": name, "tokens_per_s": [targets / s for s in times],
                         "vs_reference": [r / s for s, r in zip(times, seconds["reference"])],
                         "peak_mib": peaks.get(name), "batches": len(batches), "targets": targets,
                         "vocab": len(corpus.vocab)})
        if device.type == "cuda":
            torch.cuda.empty_cache()
    paper = next(r for r in rows if r["size"] == "paper" and r["code"] == "off")
    return {"rows": rows, "paper_speedup": statistics.median(paper["vs_reference"]),
            **({"skipped": {name: f"skipped: {reason}" for name, reason in skipped.items()}} if skipped else {}),
            "ok": all(math.isfinite(statistics.median(r["tokens_per_s"])) for r in rows if "skipped" not in r)}


# ---- step 3: IW-NLL at paper size against the reference loop ---------------------------------------

def step_iwnll(device: torch.device, scale: Scale, args) -> dict[str, Any]:
    corpus = load_corpus(RunConfig.from_dict({"data": {"corpus": args.data}}).data)
    test = encode_texts(corpus.vocab, corpus.splits["test"].texts[: scale.iw_sentences])
    batches = [b.to(device) for b in make_batches(test, batch_size=32, mode="padded")]
    n = len(test.ids)
    torch.manual_seed(0)
    config = RunConfig()
    config.model = ModelConfig(**scale.sizes["paper"])
    model = build_model(config, len(corpus.vocab)).to(device)
    ours, reference = [], []
    with evaluation_mode(model):
        limits = pass_limits(model, device, scale.iw_samples, None)
        for _ in range(scale.iw_rounds):
            for label, fn, times in (
                    ("textvae", lambda: iw_log_likelihood(model, batches, samples=scale.iw_samples, seed=0), ours),
                    ("reference", lambda: timing.reference_log_px(model, batches, scale.iw_samples, 0), reference)):
                synchronize(device)
                start = time.perf_counter()
                log_px = fn()
                synchronize(device)
                times.append((time.perf_counter() - start, log_px))
    ratios = [r[0] / o[0] for o, r in zip(ours, reference)]
    diff = reference[-1][1] - ours[-1][1]
    return {"sentences": n, "targets": test.n_targets(), "samples": scale.iw_samples, "vocab": len(corpus.vocab),
            "pass_rows": limits[0], "pass_tokens": limits[1],
            "textvae_sent_per_s": [n / t for t, _ in ours], "reference_sent_per_s": [n / t for t, _ in reference],
            "speedups": ratios, "speedup": statistics.median(ratios),
            "nll_textvae": -ours[-1][1].mean().item(), "nll_reference": -reference[-1][1].mean().item(),
            "nll_diff_se": diff.std().item() / math.sqrt(n) if n > 1 else float("nan"),
            "ok": bool(torch.isfinite(ours[-1][1]).all())}


# ---- step 4: the demo recipe on the device and on the CPU ---------------------------------------------

def demo_command(device: str, out: Path, seed: int, scale: Scale, corpus: str | None = None) -> list[str]:
    sets = [f"train.device={device}", "train.progress=false", *scale.demo_overrides]
    sets += [f"data.corpus={corpus}"] if corpus else []
    return [sys.executable, "-c", "from textvae.cli.main import app; app(prog_name='textvae')",
            "recipe", "demo", "bn-vae", "--out", str(out), "--seed", str(seed),
            *[part for s in sets for part in ("--set", s)]]


def start_demo(device: str, out: Path, seed: int, scale: Scale, threads: int | None,
               corpus: str | None) -> subprocess.Popen:
    out.parent.mkdir(parents=True, exist_ok=True)
    log = (out.parent / f"{out.name}.log").open("w")
    return subprocess.Popen(demo_command(device, out, seed, scale, corpus), cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, env=repo_env(threads))


def finish_demo(process: subprocess.Popen, out: Path, timeout: float) -> dict[str, Any]:
    try:
        process.wait(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return {"error": "timed out"}
    results = out / "results.json"
    if process.returncode != 0 or not results.is_file():
        log = (out.parent / f"{out.name}.log").read_text(errors="replace").strip().splitlines()
        return {"error": f"exit {process.returncode}: {log[-1] if log else 'no output'}"}
    return json.loads(results.read_text())


def compare_demo(device_run: dict, cpu_run: dict, cpu_other_seed: dict | None) -> dict[str, Any]:
    rows, ok = [], True
    for key in DEMO_METRICS:
        a, b = device_run.get(key), cpu_run.get(key)
        if a is None or b is None:
            continue
        noise = abs(cpu_other_seed[key] - b) if cpu_other_seed and key in cpu_other_seed else 0.0
        # Same seed on the same kind of device: identical. Otherwise within twice the seed-to-seed difference.
        within = a == b if cpu_other_seed is None else abs(a - b) <= 2 * noise
        ok &= within
        rows.append({"metric": key, "device": a, "cpu": b, "diff": a - b, "cpu_seed_diff": noise, "within": within})
    return {"rows": rows, "ok": ok}


def step_demo(device: torch.device, scale: Scale, demos: dict[str, subprocess.Popen], work: Path,
              deadline: float, corpus: str | None) -> dict[str, Any]:
    start = time.perf_counter()
    if "device" not in demos:
        demos["device"] = start_demo(str(device), work / "device", 1, scale, None, corpus)
    runs = {"device": finish_demo(demos["device"], work / "device", deadline + 120 - time.perf_counter())}
    device_seconds = time.perf_counter() - start
    runs.update({name: finish_demo(p, work / name, deadline + 180 - time.perf_counter())
                 for name, p in demos.items() if name != "device"})
    errors = {name: r["error"] for name, r in runs.items() if "error" in r}
    if errors:
        raise RuntimeError("; ".join(f"{k}: {v}" for k, v in errors.items()))
    comparison = compare_demo(runs["device"], runs["cpu"], runs.get("cpu_next_seed"))
    return {"command": "textvae " + " ".join(demo_command(str(device), Path("RUN"), 1, scale, corpus and "TOY")[3:]),
            "device_seconds": device_seconds, **runs, "comparison": comparison, "ok": comparison["ok"]}


# ---- step 5: deterministic mode ----------------------------------------------------------------------

def step_deterministic(device: torch.device, scale: Scale, args) -> dict[str, Any]:
    spec = training_spec(next(iter(scale.sizes)), device, "off", args.data, scale)
    config = timing.bench_config(spec)
    config.train.deterministic = True
    corpus = load_corpus(config.data)
    batches = timing.sample_batches(corpus.splits["train"], config.data.batch_size, max(scale.train_batches, 2))
    weights = []
    with tempfile.TemporaryDirectory(prefix="gpu_check.") as run_dir:
        for _ in range(2):
            trainer = Trainer(config, run_dir, corpus=corpus)
            trainer.run_epoch(batches)
            weights.append({k: v.detach().cpu() for k, v in trainer.model.state_dict().items()})
            del trainer
    differing = [k for k in weights[0] if not torch.equal(weights[0][k], weights[1][k])]
    return {"batches": len(batches), "tensors": len(weights[0]), "differing": differing, "ok": not differing,
            "backends": backend_settings()}


# ---- the report ------------------------------------------------------------------------------------

def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "NOT met")


def report(results: dict[str, Any]) -> str:
    info, toy, steps = results["machine"], results["toy"], results["steps"]
    lines = [f"# GPU check ({info['date']})", "",
             f"`{results['command']}`", "",
             f"Device **{info['device']}**" + (f": {info['gpu']} ({info['gpu_memory_gib']} GiB, compute "
                                                 f"{info['capability']}, CUDA {info['cuda']}, cuDNN {info['cudnn']}, "
                                                 f"bf16 {'yes' if info['bf16_supported'] else 'no'})"
                                                 if "gpu" in info else "") +
             f"; torch {info['torch']}, Python {info['python']}, {info['cpus']} CPUs, {info['platform']}.",
             f"CPU: {info['cpu']}.",
             f"Data: {results['data']}. Total wall time {results['seconds']:.0f} s.", ""]
    if toy:
        lines += ["**Toy size**: every step ran on tiny models and a few sentences to show that the script "
                  "works; none of its figures is a measurement of anything.", ""]
    lines += ["## Summary", "", "| check | result | target | |", "|---|---|---|---|"]
    t = steps.get("tests", {})
    if "summary" in t:
        lines.append(f"| test suite on {info['device']} | {t['summary']} | all pass | {verdict(t['ok'])} |")
    tr = steps.get("train", {})
    if "paper_speedup" in tr:
        ok = None if toy else tr["paper_speedup"] >= TARGET_TRAIN_SPEEDUP
        lines.append(f"| training tokens/s, paper size, float32, vs He et al. step | {tr['paper_speedup']:.2f}x | "
                     f"≥ {TARGET_TRAIN_SPEEDUP}x | {verdict(ok)} |")
    iw = steps.get("iwnll", {})
    if "speedup" in iw:
        ok = None if toy else iw["speedup"] >= TARGET_IWNLL_SPEEDUP
        lines.append(f"| IW-NLL (K={iw['samples']}) sentences/s, paper size, vs He et al. loop "
                     f"| {iw['speedup']:.1f}x | ≥ {TARGET_IWNLL_SPEEDUP:.0f}x | {verdict(ok)} |")
    demo = steps.get("demo", {})
    if "comparison" in demo:
        lines.append(f"| demo bn-vae: {info['device']} metrics vs CPU | see below | within noise | "
                     f"{verdict(demo['comparison']['ok'])} |")
    det = steps.get("deterministic", {})
    if "differing" in det:
        lines.append(f"| train.deterministic: two runs bitwise equal | {len(det['differing'])} of {det['tensors']} "
                     f"tensors differ | 0 | {verdict(det['ok'])} |")
    lines += ["", "| step | wall time | status |", "|---|---:|---|"]
    for name, step in steps.items():
        status = step.get("error", "ok" if step.get("ok") else "check failed")
        status += "".join(f"; {part} {reason}" for part, reason in step.get("skipped", {}).items())
        lines.append(f"| {name} | {step.get('seconds', 0):.1f} s | {status} |")
    if t.get("failures"):
        lines += ["", "## Test failures", ""] + [f"    {f}" for f in t["failures"]]
    if "rows" in tr:
        lines += ["", "## Training throughput", "",
                  f"{tr['rows'][0]['batches']} batches of the epoch's length mix per pass (batch 32, SGD, clip 5), "
                  f"median of {len(tr['rows'][0]['tokens_per_s'])} alternating passes (each pass in brackets); "
                  "peak memory of each precision measured alone.", "",
                  "| size | code | tokens/s | vs He et al. step (per pass) | peak GPU memory |",
                  "|---|---|---:|---|---:|"]
        names = {"off": "textvae float32", "bf16": "textvae bf16", "fp16": "textvae fp16 + scaler",
                 "reference": "He et al. step"}
        for r in tr["rows"]:
            if "skipped" in r:
                lines.append(f"| {r['size']} | {names[r['code']]} | skipped: {r['skipped']} | | |")
                continue
            peak = f"{r['peak_mib']:.0f} MiB" if r["peak_mib"] is not None else "—"
            lines.append(f"| {r['size']} | {names[r['code']]} | {spread(r['tokens_per_s'], '{:.0f}')} | "
                         f"{spread(r['vs_reference']) if r['code'] != 'reference' else ''} | {peak} |")
    if "speedup" in iw:
        lines += ["", "## IW-NLL", "",
                  f"{iw['sentences']} test sentences ({iw['targets']} targets), K = {iw['samples']}, paper-size model "
                  f"(random weights; vocabulary {iw['vocab']}); passes of at most {iw['pass_rows']} rows and "
                  f"{iw['pass_tokens']} tokens (sized from free memory on a GPU).", "",
                  f"- textvae: {spread(iw['textvae_sent_per_s'], '{:.1f}')} sentences/s",
                  f"- He et al. loop: {spread(iw['reference_sent_per_s'], '{:.2f}')} sentences/s",
                  f"- speed ratio per round: {spread(iw['speedups'], '{:.1f}')}",
                  f"- mean NLL: textvae {iw['nll_textvae']:.4f}, reference {iw['nll_reference']:.4f} "
                  f"(difference's standard error {iw['nll_diff_se']:.4f}; different samples, so they agree up to "
                  "Monte-Carlo noise)"]
    if "comparison" in demo:
        lines += ["", "## Demo recipe (bn-vae)", "",
                  f"`{demo['command']}` ({demo['device_seconds']:.0f} s on {info['device']}); the CPU runs in the "
                  "background. Noise scale: the CPU run with the next seed.", "",
                  "| metric | device | CPU (same seed) | difference | CPU seed-to-seed | within |",
                  "|---|---:|---:|---:|---:|---|"]
        for r in demo["comparison"]["rows"]:
            lines.append(f"| {r['metric']} | {r['device']:.4f} | {r['cpu']:.4f} | {r['diff']:+.4f} | "
                         f"{r['cpu_seed_diff']:.4f} | {'yes' if r['within'] else 'NO'} |")
    if "differing" in det:
        lines += ["", "## Deterministic mode", "",
                  f"Two runs of {det['batches']} batches with `train.deterministic = true`: "
                  + ("identical weights." if det["ok"] else f"differ in {', '.join(det['differing'][:10])}."),
                  "", "Backend settings: `" + json.dumps(det["backends"]) + "`"]
    errors = [(name, s["traceback"]) for name, s in steps.items() if "traceback" in s]
    for name, trace in errors:
        lines += ["", f"## Error in {name}", ""] + [f"    {line}" for line in trace.splitlines()]
    return "\n".join(lines) + "\n"


def run_step(name: str, fn: Callable[[], dict[str, Any]], steps: dict, deadline: float) -> None:
    if time.perf_counter() > deadline:
        steps[name] = {"error": "skipped: the time budget was spent", "seconds": 0.0}
        return
    start = time.perf_counter()
    try:
        steps[name] = fn()
    except Exception as e:  # noqa: BLE001 - one failing step is a row of the report
        steps[name] = {"error": f"{type(e).__name__}: {e}".splitlines()[0][:300], "traceback": traceback.format_exc()}
    steps[name]["seconds"] = time.perf_counter() - start
    print(f"gpu_check: {name} done in {steps[name]['seconds']:.1f} s"
          + (f" ({steps[name]['error']})" if "error" in steps[name] else ""), file=sys.stderr, flush=True)


def check_out(out: Path) -> None:
    """Refuse, before minutes of work, an --out whose report files could not be written."""
    problem = None
    for path in (out.with_suffix(".md"), out.with_suffix(".json")):
        if path.is_dir():
            problem = f"{path} is a folder"
    parent = next(p for p in out.parents if p.exists())
    if problem is None and not parent.is_dir():
        problem = f"{parent} is a file, not a folder"
    elif problem is None and not os.access(parent, os.W_OK | os.X_OK):
        problem = f"{parent} is not writable"
    if problem is None:  # permissions say little (root, /proc): make the folder and a file now
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"):
                pass
        except OSError as e:
            problem = f"cannot be written ({e.strerror or e})"
    if problem:
        print(f"gpu_check: --out {out}: {problem}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the check; eval.timing's model sizes are the scale's for its duration."""
    original_sizes = dict(timing.SIZES)
    try:
        return check(argv)
    finally:
        timing.SIZES.clear()
        timing.SIZES.update(original_sizes)


def check(argv: list[str] | None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--toy", action="store_true", help="tiny sizes (the default when CUDA is absent)")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--data", default=None,
                        help="corpus for training and IW-NLL (default: PTB if found, else demo)")
    parser.add_argument("--steps", nargs="+", default=["tests", "train", "iwnll", "demo", "deterministic"],
                        choices=["tests", "train", "iwnll", "demo", "deterministic"])
    parser.add_argument("--budget", type=float, default=480.0, help="seconds; steps not started by then are skipped")
    parser.add_argument("--cpu-threads", type=int, default=4, help="OMP_NUM_THREADS of each background CPU demo run")
    parser.add_argument("--out", default="eval/results/benchmarks/gpu_check", help="writes OUT.md and OUT.json")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    toy = args.toy or device.type != "cuda"
    scale = TOY if toy else FULL
    timing.SIZES.update(scale.sizes)
    start = time.perf_counter()
    deadline = start + args.budget
    out = Path(args.out)
    if not out.is_absolute():
        out = REPO / out
    check_out(out)
    steps: dict[str, dict[str, Any]] = {}
    # Processes that need no GPU start at once; on a CPU-only machine everything does (nothing to disturb).
    overlap = device.type == "cpu"
    with tempfile.TemporaryDirectory(prefix="gpu_check.") as work_dir:
        work = Path(work_dir)
        # The toy check must not need anything outside the repository: its data is the demo corpus's first lines.
        toy_corpus = write_toy_corpus(work / "toy_corpus") if toy else None
        args.data = args.data or toy_corpus or default_data()
        data_label = args.data if args.data != toy_corpus else "the demo corpus's first " + \
            "/".join(str(n) for n in TOY_CORPUS_LINES.values()) + " train/valid/test lines"
        demos: dict[str, subprocess.Popen] = {}
        tests = None
        if "demo" in args.steps:
            demos["cpu"] = start_demo("cpu", work / "cpu", 1, scale, args.cpu_threads, toy_corpus)
            if overlap:  # the "device" run is a CPU run too: with the same threads, it must match bit for bit
                demos["device"] = start_demo("cpu", work / "device", 1, scale, args.cpu_threads, toy_corpus)
            else:
                demos["cpu_next_seed"] = start_demo("cpu", work / "cpu_next_seed", 2, scale, args.cpu_threads,
                                                    toy_corpus)
        if "tests" in args.steps:
            tests = start_tests(device, scale, work / "tests.log")
            if not overlap:
                run_step("tests", lambda: finish_tests(tests, device, scale, work / "tests.log", scale.test_timeout),
                         steps, deadline)
        for name, fn in (("train", step_train), ("iwnll", step_iwnll)):
            if name in args.steps:
                run_step(name, lambda fn=fn: fn(device, scale, args), steps, deadline)
        if "demo" in args.steps:
            run_step("demo", lambda: step_demo(device, scale, demos, work, deadline, toy_corpus), steps, deadline + 60)
        if tests is not None and overlap:
            run_step("tests", lambda: finish_tests(tests, device, scale, work / "tests.log", scale.test_timeout),
                     steps, deadline + 60)
        for process in [*demos.values(), tests]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        if "deterministic" in args.steps:  # last: the mode is process-wide
            run_step("deterministic", lambda: step_deterministic(device, scale, args), steps, deadline + 60)
    command = "python -m eval.gpu_check" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    results = {"command": command, "machine": machine(device), "toy": toy, "data": data_label,
               "seconds": time.perf_counter() - start, "steps": steps}
    text = report(results)
    print(text)  # first: the report survives a failing write below
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(text)
        out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    except OSError as e:
        print(f"gpu_check: --out {out}: {e.strerror or e} (the report is above)", file=sys.stderr)
        raise SystemExit(2) from None
    return results


def failed_steps(results: dict[str, Any]) -> list[str]:
    """Steps that failed, were skipped, or whose check did not hold."""
    return [name for name, step in results["steps"].items()
            if "error" in step or step.get("ok") is False]


if __name__ == "__main__":
    failed = failed_steps(main())
    if failed:
        print(f"gpu_check: failed: {', '.join(failed)}", file=sys.stderr)
        raise SystemExit(1)

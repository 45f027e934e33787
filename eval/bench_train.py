"""Training throughput and peak memory (textvae issues 2 and 4).

    python -m eval.bench_train                          # PTB-small and paper size, CPU (+ CUDA if present)
    python -m eval.bench_train --quick                  # one short timing per config (a smoke check)
    python -m eval.bench_train --strategy all           # per-step overhead of every strategy over `vae`
    python -m eval.bench_train --strategy beta-vae free-bits --out eval/results/benchmarks/train_strategies

Each measurement runs the real training path, ``Trainer.run_epoch`` on the timed batches (timed
from its first update to its last by a callback), with the run config a user gets from the ``ptb``
recipe (SGD lr 1, clip 5, decoder dropout 0.5, batch 32, identical-length buckets) on the first
``--train-lines`` lines of PTB train; only the model sizes are set here. The timed batches are a
fixed stratified sample of one epoch's buckets (every k-th bucket in length order, then shuffled),
so their length mix is the epoch's.
One untimed pass over the sample and the epoch's largest bucket builds every shape's kernels and
reaches an epoch's memory peak; then the sample is timed ``--repeats`` times and the median is
reported. Throughput counts target tokens (words + ``</s>``, no padding) per second. Every config
runs in a fresh subprocess whose peak resident memory (``ru_maxrss``: everything the process
touched, torch itself and the corpus included) is the CPU peak; on CUDA the peak is
``torch.cuda.max_memory_allocated``. ``--amp`` adds rows with ``train.amp`` (``bf16`` when given
alone: matrix products and LSTM in bfloat16, softmax, loss and weights in float32; ``--amp bf16 fp16``
for both; ``fp16`` adds a gradient scaler and is meant for GPUs).
The load column is the 1-minute load average before and after the timed passes; the benchmark's
own threads are part of it (about 2 with ``--threads 2``).

``--reference`` adds He et al.'s training step (re-implemented: ``nn.LSTM``, full cross-entropy)
as a row of its own (its memory, its throughput in its own process) and, in every textvae
subprocess after textvae's memory peak is taken, times it again in passes that alternate with
textvae's on the same batches: the per-pair ratios do not drift with the machine's speed, which
moved by ±15% between identical runs on the shared development machine.

``--strategy`` names registered strategies (run with their default parameters) or recipe
strategies (``recipes/strategies/*.toml``; a name that is both is run as its recipe); ``all`` is
every one of them. Each is timed on the same batches as plain ``vae``, alternating the two in one
process (which of the two goes first swaps every repeat) so a change in machine load hits both;
the overhead is the median of the per-pair time ratios, shown with their range.
A recipe that swaps the decoder (``skip-vae``) shows it in the stack column. The target is 5 %
(issue 4), 10 % for Skip-VAE and MAE (issue 10).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from textvae import recipes
from textvae.config import RunConfig
from textvae.data import load_corpus, make_batches
from textvae.strategies import STRATEGIES
from textvae.sweeps.manifest import portable_command
from textvae.training.environment import load_average, machine
from textvae.types import Batch

from .timing import (
    SIZES,
    Pass,
    Spec,
    bench_config,
    make_reference_pass,
    make_trainer,
    run_pass,
    sample_batches,
    trainer_pass,
)

REPO = Path(__file__).resolve().parents[1]

# textvae issue 2: He et al.'s reference code on this 2-core machine (median of 3 runs), and the
# targets set from it (1.5x the throughput, at most 1 GiB peak memory).
REFERENCE_TOKENS_PER_S = {"ptb-small": 3411, "paper": 1476}
TARGET_TOKENS_PER_S = {"ptb-small": 5100, "paper": 2200}
TARGET_PEAK_MIB = 1024
MAX_STRATEGY_OVERHEAD = 0.05  # issue 4
# issue 10: methods that change the decoder or add batch-pairwise terms get a wider budget.
STRATEGY_OVERHEAD_TARGETS = {"skip-vae": 0.10, "mae": 0.10, "agg-vae": None, "sa-vae": None}
"""None: the method is expected to cost many times a VAE step (issue 10); the factor is reported, not judged."""


def measure_throughput(spec: Spec, run_dir: str) -> dict:
    config = bench_config(spec)
    corpus = load_corpus(config.data)
    if spec.reference:
        device = torch.device(spec.device)
        step = make_reference_pass(spec, config, len(corpus.vocab))
    else:
        trainer = make_trainer(spec, "vae", corpus, run_dir)
        device, step = trainer.device, trainer_pass(trainer)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    buckets = make_batches(corpus.splits["train"], config.data.batch_size, "bucket")
    batches = sample_batches(corpus.splits["train"], config.data.batch_size, spec.batches)
    targets = sum(b.n_targets() for b in batches)
    # The untimed pass builds every shape's kernels; the epoch's largest bucket makes the peak
    # memory an epoch's, not only the sample's.
    run_pass(step, batches + [max(buckets, key=Batch.n_targets)])
    load_before = load_average()
    seconds = [run_pass(step, batches) for _ in range(spec.repeats)]
    result = {
        "tokens_per_s": targets / statistics.median(seconds),
        "runs_tokens_per_s": [targets / s for s in seconds],
        "step_ms": 1000 * statistics.median(seconds) / len(batches),
        "targets": targets, "batches": len(batches), "vocab": len(corpus.vocab),
        "load": [load_before, load_average()],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if device.type == "cuda":
        result["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    if spec.paired and not spec.reference:
        reference = make_reference_pass(spec, config, len(corpus.vocab))
        run_pass(reference, batches)
        ratios = []
        for _ in range(spec.repeats):
            ours = run_pass(step, batches)
            ratios.append(run_pass(reference, batches) / ours)
        result["paired_speedups"] = ratios
    return result


def svi_shares(one_pass: Pass, batches: list[Batch]) -> dict[str, float]:
    """Share of an (untimed, profiled) pass spent in SA-VAE's SVI steps (forward) and in
    back-propagating through them, from the profiler's record of its autograd function."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        seconds = one_pass(batches)
    events = {e.key: e.cpu_time_total / 1e6 for e in profiled.key_averages()}
    forward = sum(t for k, t in events.items() if k.endswith("FiniteDifferenceSVI"))
    backward = sum(t for k, t in events.items() if k.endswith("FiniteDifferenceSVIBackward"))
    return {"svi_forward_share": forward / seconds, "svi_backward_share": backward / seconds}


def measure_overheads(spec: Spec, run_dir: str) -> dict:
    """Median per-step time of each strategy over ``vae`` on the same batches, timed alternately."""
    corpus = load_corpus(bench_config(spec).data)
    base = make_trainer(spec, "vae", corpus, run_dir)
    base_step = trainer_pass(base)
    warmed: set[int] = set()
    rows = {}
    for name in spec.strategies:
        # One failing strategy is a row of the table, not the end of it.
        try:
            config = bench_config(spec, name)
            trainer = make_trainer(spec, name, corpus, run_dir)
            step = trainer_pass(trainer)
            min_size = config.data.min_batch_size
            batches = sample_batches(corpus.splits["train"], config.data.batch_size, spec.batches, min_size)
            if min_size not in warmed:
                run_pass(base_step, batches)
                warmed.add(min_size)
            run_pass(step, batches)
            load_before = load_average()
            vae_s, strategy_s = [], []
            for repeat in range(spec.repeats):
                if repeat % 2:
                    strategy_s.append(run_pass(step, batches))
                vae_s.append(run_pass(base_step, batches))
                if not repeat % 2:
                    strategy_s.append(run_pass(step, batches))
            shares = svi_shares(step, batches) if "sa-vae" in config.strategies else {}
        except Exception as e:  # noqa: BLE001
            rows[name] = {"error": f"{type(e).__name__}: {e}".splitlines()[0]}
            continue
        ratios = [a / b for a, b in zip(strategy_s, vae_s)]
        rows[name] = {
            "source": "recipe" if name in recipes.strategies() else "registry",
            "stack": stack_label(config),
            "target": STRATEGY_OVERHEAD_TARGETS.get(name, MAX_STRATEGY_OVERHEAD),
            "vae_step_ms": 1000 * statistics.median(vae_s) / len(batches),
            "step_ms": 1000 * statistics.median(strategy_s) / len(batches),
            "overhead": statistics.median(ratios) - 1,
            "overhead_range": [min(ratios) - 1, max(ratios) - 1],
            "batches": len(batches), "load": [load_before, load_average()],
        }
        rows[name].update(shares)
        if config.procedure.get("name") == "aggressive":
            rows[name]["inner_steps_per_batch"] = trainer.procedure.log_scalars()["inner_steps_per_batch"]
        del trainer, step
    return {"strategies": rows}


def stack_label(config: RunConfig) -> list[str]:
    """The strategies a row runs, and the decoder and procedure when they are not the default ones."""
    if config.model.kind != "vae":
        return [config.model.kind]
    decoder = [] if config.model.decoder == "lstm" else [f"{config.model.decoder} decoder"]
    name = config.procedure.get("name", "default")
    procedure = [] if name == "default" else [f"{name} procedure"]
    return list(config.strategies) + decoder + procedure


def child(spec: Spec) -> None:
    torch.set_num_threads(spec.threads)
    with tempfile.TemporaryDirectory(prefix="bench_train.") as run_dir:
        result = measure_overheads(spec, run_dir) if spec.strategies else measure_throughput(spec, run_dir)
    print(json.dumps({"spec": asdict(spec), **result}))


def run_child(spec: Spec) -> dict:
    """Run ``spec`` in a fresh interpreter so its peak memory is its own."""
    env = dict(os.environ)
    if spec.onednn_cache is not None:
        env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(spec.onednn_cache)
    out = subprocess.run([sys.executable, "-m", "eval.bench_train", "--child", json.dumps(asdict(spec))],
                         capture_output=True, text=True, env=env, cwd=REPO)
    if out.returncode != 0:
        raise SystemExit(f"bench_train: {spec.size}/{spec.device} failed:\n{out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def all_strategy_names() -> list[str]:
    return list(dict.fromkeys(recipes.strategies() + STRATEGIES.names()))


def throughput_table(results: list[dict]) -> list[str]:
    measured_reference = {(r["spec"]["size"], r["spec"]["device"]): r["tokens_per_s"]
                          for r in results if r["spec"]["reference"]}
    lines = ["| config | device | code | tokens/s (median) | runs | ms/step | peak memory | vs He et al. step here "
             "| vs He et al. step, alternating passes (median; each) | vs issue's reference | issue 2 target "
             "| load 1-min |",
             "|---|---|---|---:|---|---:|---:|---:|---|---:|---|---|"]
    for r in results:
        spec = r["spec"]
        size, device, cpu = spec["size"], spec["device"], spec["device"] == "cpu"
        amp = {True: "bf16", False: "off"}.get(spec["amp"], spec["amp"])  # older result files hold booleans
        code = "He et al. step" if spec["reference"] else "textvae" + (f" amp ({amp})" if amp != "off" else "")
        if spec.get("onednn_cache") is not None:
            code += f", oneDNN cache {spec['onednn_cache']}"
        peak = r["peak_rss_mib"] if cpu else r["cuda_peak_mib"]
        memory = f"{peak:.0f} MiB {'RSS' if cpu else 'allocated'}"
        here = measured_reference.get((size, device))
        versus_here = f"{r['tokens_per_s'] / here:.2f}x" if here and not spec["reference"] else ""
        paired = r.get("paired_speedups")
        versus_paired = (f"{statistics.median(paired):.2f}x; " + ", ".join(f"{x:.2f}" for x in paired)
                         if paired else "")
        versus_issue, target = "", ""
        if cpu and spec["threads"] == 2:
            versus_issue = f"{r['tokens_per_s'] / REFERENCE_TOKENS_PER_S[size]:.2f}x of {REFERENCE_TOKENS_PER_S[size]}"
            if not spec["reference"]:
                ok = r["tokens_per_s"] >= TARGET_TOKENS_PER_S[size] and peak <= TARGET_PEAK_MIB
                target = f"≥{TARGET_TOKENS_PER_S[size]}, ≤{TARGET_PEAK_MIB} MiB: {'met' if ok else 'not met'}"
        runs = ", ".join(f"{t:.0f}" for t in r["runs_tokens_per_s"])
        load = "→".join(f"{x:.2f}" for x in r["load"])
        lines.append(f"| {size} | {device} | {code} | {r['tokens_per_s']:.0f} | {runs} | {r['step_ms']:.1f} | {memory} "
                     f"| {versus_here} | {versus_paired} | {versus_issue} | {target} | {load} |")
    return lines


def overhead_table(result: dict) -> list[str]:
    lines = ["| strategy | from | stack | vae ms/step | strategy ms/step | overhead | pair range | within target "
             "| load 1-min | notes |",
             "|---|---|---|---:|---:|---:|---|---|---|---|"]
    for name, r in result["strategies"].items():
        if "error" in r:
            lines.append(f"| {name} | | | | | | | error: {r['error']} | | |")
            continue
        target = r.get("target", MAX_STRATEGY_OVERHEAD)
        if target is None:
            ok = f"×{1 + r['overhead']:.1f} a vae step (no target)"
        else:
            ok = f"{'yes' if r['overhead'] <= target else 'NO'} (≤{100 * target:.0f}%)"
        load = "→".join(f"{x:.2f}" for x in r["load"])
        spread = " … ".join(f"{100 * x:+.0f}%" for x in r.get("overhead_range", [])) or "–"
        notes = []
        if "svi_forward_share" in r:
            notes.append(f"SVI steps {100 * r['svi_forward_share']:.0f}% of the step, back-propagation through "
                         f"them {100 * r['svi_backward_share']:.0f}%")
        if "inner_steps_per_batch" in r:
            notes.append(f"{r['inner_steps_per_batch']:.1f} encoder steps per batch (aggressive phase)")
        lines.append(f"| {name} | {r['source']} | {'+'.join(r['stack'])} | {r['vae_step_ms']:.1f} | "
                     f"{r['step_ms']:.1f} | {100 * r['overhead']:+.1f}% | {spread} | {ok} | {load} | "
                     f"{'; '.join(notes)} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="ptb",
                        help="corpus: a registered name (default ptb: textvae data prepare ptb --from DIR) or a "
                             "directory with train/valid/test.txt")
    parser.add_argument("--train-lines", type=int, default=10_000, help="first N lines of train (and its vocabulary)")
    parser.add_argument("--sizes", nargs="+", default=None, choices=list(SIZES),
                        help="default: both for throughput, ptb-small for --strategy")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], choices=["cpu", "cuda"],
                        help="cuda is skipped when absent")
    parser.add_argument("--strategy", nargs="+", default=None,
                        help="strategy or recipe names, or 'all': per-step overhead over plain vae")
    parser.add_argument("--amp", nargs="*", choices=["bf16", "fp16"], default=None,
                        help="also time train.amp: bf16 (the default when given alone) and/or fp16")
    parser.add_argument("--reference", action="store_true",
                        help="also time He et al.'s training step (re-implemented) on the same batches")
    parser.add_argument("--batches", type=int, default=None,
                        help="buckets in the timed sample (default 40, --strategy 10; --quick 8, 4)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed passes, median reported (default 3, --strategy 4 of each; --quick 1)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads on CPU")
    parser.add_argument("--onednn-cache", nargs="+", type=int, default=None, metavar="N",
                        help="also run textvae with ONEDNN_PRIMITIVE_CACHE_CAPACITY=N (memory against speed)")
    parser.add_argument("--quick", action="store_true", help="a small sample timed once: a smoke check, not a number")
    parser.add_argument("--out", default=None, help="write OUT.md and OUT.json (e.g. eval/results/benchmarks/train)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Spec(**json.loads(args.child)))
        return

    devices = [d for d in args.devices if d == "cpu" or torch.cuda.is_available()]
    strategies = None
    if args.strategy:
        strategies = all_strategy_names() if args.strategy == ["all"] else args.strategy
        unknown = [s for s in strategies if s not in all_strategy_names()]
        if unknown:
            raise SystemExit(f"bench_train: unknown strategy {unknown[0]!r}; known: {', '.join(all_strategy_names())}")
    sizes = args.sizes or (["ptb-small"] if strategies else list(SIZES))
    batches = args.batches or {(False, False): 40, (False, True): 10, (True, False): 8, (True, True): 4}[
        (args.quick, bool(strategies))]
    repeats = args.repeats or (1 if args.quick else 4 if strategies else 3)

    # Records name no machine path: absolute arguments are made relative, the corpus is its folder name.
    command = portable_command("python -m eval.bench_train " + shlex.join(sys.argv[1:]))
    info = machine()
    report = [f"# Training benchmark ({info['date']})", "",
              f"`{command}`", "",
              f"CPU: {info['cpu']}; {info.get('gpu', 'no GPU')}; torch {info['torch']}, "
              f"Python {info['python']}; {args.threads} torch threads on CPU; {info['platform']}.",
              f"First {args.train_lines} lines of {Path(args.data).name}; {batches} buckets per timed pass, "
              f"median of {repeats}; load 1-min before → after the timed passes.", ""]
    results: list[dict] = []
    for device in devices:
        for size in sizes:
            amps = [] if args.amp is None else args.amp or ["bf16"]
            variants = [dict(amp="off")] + [dict(amp=amp) for amp in amps]
            if not strategies:
                variants += [dict(v, onednn_cache=n) for n in args.onednn_cache or [] for v in list(variants)]
            if args.reference and not strategies:
                variants = [dict(v, paired=True) for v in variants] + [dict(amp="off", reference=True)]
            for variant in variants:
                spec = Spec(size, device, args.data, args.train_lines, batches, repeats, args.threads,
                            strategies=strategies or [], **variant)
                result = run_child(spec)
                results.append(result)
                if strategies:
                    amp = f" amp {spec.amp}" if spec.amp != "off" else ""
                    report += [f"## Strategy overheads over vae: {size}, {device}{amp}", ""]
                    report += overhead_table(result) + [""]
                print(json.dumps(result), file=sys.stderr, flush=True)
    if not strategies:
        report += throughput_table(results) + [""]
    text = "\n".join(report)
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(text)
        results = [{**r, "spec": {**r["spec"], "data": Path(r["spec"]["data"]).name}} for r in results]
        out.with_suffix(".json").write_text(json.dumps({"command": command, "machine": info, "results": results},
                                                       indent=2) + "\n")


if __name__ == "__main__":
    main()

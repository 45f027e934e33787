"""Throughput of the importance-weighted NLL: sentences per second on the first PTB test sentences.

    python -m eval.bench_eval                      # both sizes, K=100 and 500, CPU (+ CUDA if present)
    python -m eval.bench_eval --sizes ptb-small --samples 100 --reference --threads 2

Rates are given per wall-clock second and per CPU second of this process; on a shared machine
the latter (with ``--threads 1``) is the one that does not depend on other jobs.

``--reference`` also times a faithful re-implementation of He et al.'s ``calc_iwnll`` loop (one
sentence per batch, 100 samples per forward pass through nn.LSTM and a full cross-entropy, the
encoder re-run for every pass) on the same sentences and model, so the speed ratio and the
agreement of the estimates (up to Monte-Carlo noise) come from one run. ``--precision bfloat16``
adds the evaluator in bfloat16 autocast, compared with float32 on the same latent samples.

Models are randomly initialised (He et al. init) unless ``--run`` names a trained run folder (its
model replaces ``--sizes``); speed does not depend on the weights, but precision effects do:
check them on a trained model.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from textvae.config import DataConfig, ModelConfig, RunConfig
from textvae.data import encode_texts, load_corpus, make_batches
from textvae.evaluation import iw_log_likelihood
from textvae.evaluation.protocol import evaluation_mode
from textvae.models import build_model
from textvae.runs import load_run
from textvae.training.environment import describe_cpu, load_average

from .timing import SIZES, reference_log_px


@dataclass
class Timing:
    label: str
    seconds: float
    cpu_seconds: float  # this process's CPU time: robust to other jobs on a shared machine
    log_px: torch.Tensor  # [N] float64

    def row(self, n: int) -> str:
        return (f"{self.label:<28} {n / self.seconds:8.2f} sent/s wall  {n / self.cpu_seconds:8.2f} sent/CPU-s   "
                f"mean NLL {-self.log_px.mean().item():9.4f}")


def markdown(line: str) -> str:
    """A report line as Markdown: sections as headings, the fixed-width rows as code."""
    if line.startswith("--- "):
        return "\n## " + line[4:]
    return f"    {line}" if line.startswith(("textvae", "reference", "  ")) else line


def timed(label: str, fn) -> Timing:
    start, cpu_start = time.perf_counter(), time.process_time()
    log_px = fn()
    return Timing(label, time.perf_counter() - start, time.process_time() - cpu_start, log_px)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="ptb",
                        help="corpus: a registered name (default ptb: textvae data prepare ptb --from DIR) or a "
                             "directory with train/valid/test.txt")
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--run", default=None, help="a trained run folder to benchmark instead of --sizes")
    parser.add_argument("--samples", nargs="+", type=int, default=[100, 500])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], help="cuda is skipped when absent")
    parser.add_argument("--precision", nargs="+", default=["float32"], choices=["float32", "bfloat16"])
    parser.add_argument("--reference", action="store_true", help="also time He et al.'s one-sentence loop")
    parser.add_argument("--max-tokens", type=int, default=None,
                        help="token budget per pass (default: 200,000 on CPU, sized from free memory on a GPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None,
                        help="also write the report to OUT.md (e.g. eval/results/benchmarks/eval)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    report: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        report.append(line)

    command = "python -m eval.bench_eval " + " ".join(sys.argv[1:])
    say(f"# IW-NLL benchmark ({time.strftime('%Y-%m-%d %H:%M %Z')})")
    say("")
    say(f"`{command}`; torch {torch.__version__}, {os.cpu_count()} CPUs, "
        f"load 1-min {load_average():.2f} at the start")
    say("")
    say(f"CPU: {describe_cpu()}")
    say("")

    corpus = load_corpus(DataConfig(corpus=args.data))
    run = load_run(args.run) if args.run else None
    vocab = run.vocab if run else corpus.vocab
    test = encode_texts(vocab, corpus.splits["test"].texts[: args.sentences])
    batches = make_batches(test, batch_size=32, mode="padded")
    n = len(test.ids)
    say(f"{n} sentences, {test.n_targets()} targets (mean {test.n_targets() / n:.2f}), vocab {len(vocab)}, "
          f"threads {torch.get_num_threads()}")

    devices = [d for d in args.devices if d == "cpu" or torch.cuda.is_available()]
    for size in [args.run] if run else args.sizes:
        for device in devices:
            if run:
                model = run.model.to(device)
            else:
                torch.manual_seed(args.seed)
                config = RunConfig()
                config.model = ModelConfig(**SIZES[size])
                model = build_model(config, len(vocab)).to(device)
            on_device = [b.to(device) for b in batches]
            for samples in args.samples:
                dims = f"{model.decoder.embed.embedding_dim}/{model.decoder.hidden}"
                say(f"--- {size} ({dims}, z {model.latent_dim}), {device}, K={samples}")
                results = []
                with evaluation_mode(model):
                    for precision in args.precision:
                        results.append(timed(f"textvae {precision}", lambda: iw_log_likelihood(
                            model, on_device, samples=samples, max_tokens=args.max_tokens, seed=args.seed,
                            precision=precision)))
                    if args.reference:
                        results.append(timed("reference (He et al. loop)",
                                             lambda: reference_log_px(model, on_device, samples, args.seed)))
                for result in results:
                    say(result.row(n))
                base = results[0]
                for other in results[1:]:
                    diff = other.log_px - base.log_px
                    standard_error = diff.std().item() / math.sqrt(n)
                    say(f"  {other.label} vs {base.label}: {other.seconds / base.seconds:.2f}x the wall time, "
                          f"{other.cpu_seconds / base.cpu_seconds:.2f}x the CPU time, "
                          f"mean log p diff {diff.mean().item():+.5f} (sd/sqrt(n) {standard_error:.5f}, "
                          f"max |diff| {diff.abs().max().item():.5f})")
    say("")
    say(f"load 1-min {os.getloadavg()[0]:.2f} at the end")
    if args.out:
        out = Path(args.out).with_suffix(".md")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(markdown(line) for line in report) + "\n")


if __name__ == "__main__":
    main()

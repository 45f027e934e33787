"""Table-5-style generation table for several runs, published values side by side.

For every run folder: N sentences sampled from the prior with the strategy's generation rule
(``model.sample_latent``), decoded greedily unless ``--mode`` says otherwise; their PPL under an
LSTM-LM run trained on the same corpus (``textvae recipe DATASET lstm-lm``), Gram-2..4 against the
run's train split, entropy, Dist-1..3, self-BLEU; and the BLEU of greedy reconstructions of the first
``--reconstruct`` test sentences. Definitions: ``textvae.generation.metrics`` (each is named in the
table). Runs sharing a recipe name are averaged over seeds. Each run's measurement is saved as
RUN/generation/table5-<mode>-n<N>-seed<S>.json together with the samples.

    python eval/table5_generation.py runs/ptb/bn-vae/seed* runs/ptb/scale-vae-1.1/seed* \\
        --lm runs/ptb/lstm-lm/seed783435 --data-dir DATA -n 1000 --out eval/results/table5_ptb.md
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

PUBLISHED = Path(__file__).resolve().parent / "published" / "table5.toml"

# (our metric, scale, label, published metric): values are shown as metric * scale, like the slide.
ROWS = [
    ("lm-ppl", 1.0, "PPL (LSTM-LM)", "ppl"),
    ("gram-2", 100.0, "Gram-2 (%)", "gram-2"),
    ("gram-3", 100.0, "Gram-3 (%)", "gram-3"),
    ("gram-4", 100.0, "Gram-4 (%)", "gram-4"),
    ("ent-1", 1.0, "Entropy (ours: unigram, nats)", "entropy"),
    ("dist-1", 1e2, "Dist-1 (×1e-2)", "dist-1"),
    ("dist-2", 1e5, "Dist-2 (×1e-5)", "dist-2"),
    ("dist-3", 1e5, "Dist-3 (×1e-5)", "dist-3"),
    ("ent-4", 1.0, "Ent-4 (nats)", None),
    ("self-bleu", 1.0, "self-BLEU-4", None),
    ("rec-bleu", 1.0, "rec-BLEU-4 (test)", None),
    ("mean-length", 1.0, "mean length (words)", None),
]


def measure(run_dir: Path, opts: argparse.Namespace, lm) -> dict:
    from textvae.data import load_corpus
    from textvae.generation import DecodingConfig
    from textvae.generation.report import generation_report
    from textvae.probing.features import input_max_length
    from textvae.runs import load_run

    run = load_run(run_dir, device=opts.device)
    corpus = load_corpus(run.config.data, opts.data_dir)
    decoding = DecodingConfig(mode=opts.mode, temperature=opts.temperature, top_k=opts.top_k, top_p=opts.top_p,
                              beam_size=opts.beam_size)
    report = generation_report(run.model, run.vocab, opts.n, decoding, opts.seed, opts.batch_size,
                               train_texts=corpus.splits["train"].texts, lm=lm,
                               reconstruct=corpus.splits["test"].texts[: opts.reconstruct],
                               max_length=input_max_length(run.config))
    report["name"] = run.config.name
    report["run"] = str(run_dir)
    path = run_dir / "generation" / f"table5-{opts.mode}-n{opts.n}-seed{opts.seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def cell(values: list[float], scale: float) -> str:
    values = [v * scale for v in values if not math.isnan(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def render(reports: list[dict], opts: argparse.Namespace) -> str:
    spec = tomllib.loads(PUBLISHED.read_text())
    groups: dict[str, list[dict]] = defaultdict(list)
    for report in reports:
        groups[report["name"]].append(report)
    names = sorted(groups)
    header = ["metric"] + [f"{n} ({len(groups[n])} run{'s' if len(groups[n]) > 1 else ''})" for n in names] + \
             [f"published {row['label']} (Yahoo)" for row in spec["rows"]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, scale, label, pub_key in ROWS:
        ours = [cell([r["metrics"][key] for r in groups[n] if key in r["metrics"]], scale) for n in names]
        pub = [f"{row['yahoo'][spec['metrics'].index(pub_key)]:g}" if pub_key else "–" for row in spec["rows"]]
        lines.append("| " + " | ".join([label] + ours + pub) + " |")
    settings = reports[0]["settings"]
    lines.append("")
    lines.append(f"Ours: {settings['n']} prior samples per run, decoding {settings['decoding']}, seed {opts.seed}; "
                 f"reconstruction BLEU on the first {settings['reconstructed']} test sentences (greedy); "
                 "mean ± sample std over runs of the same recipe.")
    lines.append("Definitions: " + "; ".join(f"{k}: {v}" for k, v in reports[0]["definitions"].items()) + ".")
    lines.append(f"Published: {spec['source']}, models trained on Yahoo (scoring LM, decoding, sample count and "
                 "entropy order not stated): compare orderings between models, not values across corpora.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="VAE run folders")
    parser.add_argument("--lm", type=Path, help="LSTM-LM run folder trained on the same corpus (for PPL)")
    parser.add_argument("--data-dir", type=Path, help="data root holding the runs' corpus")
    parser.add_argument("-n", type=int, default=1000, help="sentences sampled per run")
    parser.add_argument("--mode", default="greedy", choices=["greedy", "sample", "beam"])
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--reconstruct", type=int, default=1000, help="test sentences to reconstruct")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    opts = parser.parse_args()

    import torch

    torch.set_num_threads(opts.threads)
    lm = None
    if opts.lm is not None:
        from textvae.runs import load_run

        lm_run = load_run(opts.lm, device=opts.device)
        lm = (lm_run.model, lm_run.vocab)
    reports = []
    for run_dir in opts.runs:
        report = measure(run_dir, opts, lm)
        reports.append(report)
        m = report["metrics"]
        print(f"{run_dir}: " + " ".join(f"{k} {m[k]:.4g}" for k in ("lm-ppl", "gram-2", "dist-1", "ent-1", "rec-bleu")
                                        if k in m), file=sys.stderr, flush=True)
    table = render(reports, opts)
    print(table)
    if opts.out is not None:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(table)


if __name__ == "__main__":
    main()

"""dpVAE Table 1 on text: each regulariser with the standard-normal and with the decoupled prior.

For every recipe pair in recipes/dpvae/ (regulariser x {N(0, I), decoupled}) this trains a small
LSTM VAE on the embedded short-Yelp ``demo`` corpus, evaluates its best checkpoint on the test split
(IW-NLL, KL, MI, AU through the evaluator) and measures, in the representation space:

* sKL = KL(q(z) || p(z)) + KL(p(z) || q(z)) by sampling (q: the test set's aggregate posterior);
* the leakage curve of dpVAE §5.1 (plot + numbers);
* generation quality of prior samples, low-posterior (LP) and high-posterior (HP) samples — the text
  counterpart of FID / FID(LP): Dist-2, Gram-3 against the training split, and the perplexity under
  an LSTM-LM trained on the same sentences. All sentences are greedy-decoded, so they differ only
  through their latents.

    python -m eval.dpvae_table --epochs 3 --train-limit 3000 --test-limit 500 --iw-samples 50

Writes table.md (tables + the command), table.json (every number, example sentences) and
leakage.png into --out (default eval/results/dpvae_table). Runs are kept under --runs-dir and
reused when their results.json exists (--retrain to train again).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
ROWS = [("VAE", "vae"), ("beta-VAE-H", "beta-vae-h"), ("beta-VAE-B", "beta-vae-b"),
        ("beta-TCVAE", "beta-tcvae"), ("FactorVAE", "factor-vae"), ("InfoVAE", "infovae")]
PRIORS = [("N(0, I)", ""), ("decoupled", "-dp")]
DATASET = "demo"


def resolve_config(recipe: str, overrides: list[str], seed: int):
    """defaults -> datasets/demo.toml -> recipes/dpvae/RECIPE.toml (its stack replaces the default) -> overrides."""
    from textvae import recipes

    return recipes.resolve(DATASET, f"dpvae/{recipe}", overrides, seed)


def study_overrides(opts: argparse.Namespace, strategies: dict) -> list[str]:
    out = [f"train.epochs={opts.epochs}", f"data.train_limit={opts.train_limit}", f"eval.limit={opts.test_limit}",
           f"eval.iw_samples={opts.iw_samples}", "train.progress=false"]
    if "beta-vae-b" in strategies:  # the capacity reaches c_max by the end of the shortened run
        out.append(f"strategies.beta-vae-b.anneal_epochs={opts.epochs}")
    return out


def continue_or_retrain(run_dir: Path, opts: argparse.Namespace) -> dict[str, bool]:
    """An interrupted run is resumed; ``--retrain`` replaces a run."""
    from textvae.rundir import RunDir

    return {"resume": RunDir(run_dir).is_run() and not opts.retrain, "overwrite": opts.retrain}


def train_run(recipe: str, opts: argparse.Namespace) -> tuple[Path, float]:

    base = resolve_config(recipe, [], opts.seed)
    config = resolve_config(recipe, study_overrides(opts, base.strategies), opts.seed)
    return train_or_reuse(config, opts.runs_dir / recipe, opts)


def train_language_model(opts: argparse.Namespace) -> tuple[Path, float]:
    """The LSTM-LM scoring generated sentences: the VAE decoder without z, same data and epochs."""
    from textvae import recipes

    config = recipes.resolve(DATASET, "lstm-lm", study_overrides(opts, {}), opts.seed)
    return train_or_reuse(config, opts.runs_dir / "lstm-lm", opts)


def train_or_reuse(config, run_dir: Path, opts: argparse.Namespace) -> tuple[Path, float]:
    """The run folder and its training seconds; a finished run is reused (NaN seconds) unless --retrain,
    an interrupted one continued."""
    from textvae.rundir import RunDir
    from textvae.training import train

    if RunDir(run_dir).is_finished() and not opts.retrain:
        return run_dir, math.nan
    start = time.perf_counter()
    train(config, run_dir, **continue_or_retrain(run_dir, opts))
    return run_dir, time.perf_counter() - start


def text_quality(texts: list[str], train_texts: list[str], lm) -> dict[str, float]:
    from textvae.generation.metrics import distinct_n, gram_n, lm_perplexity

    return {"dist-2": distinct_n(texts, 2), "gram-3": gram_n(texts, train_texts, 3),
            "lm-ppl": lm_perplexity(lm.model, lm.vocab, texts)["lm-ppl"],
            "mean-length": sum(len(t.split()) for t in texts) / len(texts)}


@torch.no_grad()
def analyse(run_dir: Path, lm, opts: argparse.Namespace) -> dict:
    from textvae.data import load_corpus, make_batches
    from textvae.generation import DecodingConfig, decode_latents, sample_texts
    from textvae.latent_metrics import (
        AggregatePosterior,
        high_posterior_latents,
        leakage_scores,
        leakage_table,
        low_posterior_latents,
        symmetric_kl,
    )
    from textvae.runs import load_run

    run = load_run(run_dir)
    model, vocab = run.model, run.vocab
    corpus = load_corpus(run.config.data)
    test = corpus.splits[run.config.eval.split].head(run.config.eval.limit)
    aggregate = AggregatePosterior.from_model(model, make_batches(test, 128, "padded"))
    gen = torch.Generator().manual_seed(opts.seed)
    out = json.loads((run_dir / "results.json").read_text())
    out["skl"] = symmetric_kl(model, aggregate, n_samples=opts.latent_samples, generator=gen)
    out["leakage"] = leakage_table(leakage_scores(model, aggregate, n_samples=opts.latent_samples, generator=gen))
    greedy = DecodingConfig(mode="greedy")
    lp_z, lp_log_q = low_posterior_latents(model, aggregate, opts.latent_samples, opts.extreme_samples, gen)
    hp_z, hp_log_base = high_posterior_latents(model, aggregate, opts.latent_samples, opts.extreme_samples, gen)
    texts = {
        "prior": sample_texts(model, vocab, opts.extreme_samples, greedy, seed=opts.seed),
        "lp": decode_latents(model, vocab, model.to_decoder_space(lp_z), greedy),
        "hp": decode_latents(model, vocab, model.to_decoder_space(hp_z), greedy),
    }
    train_texts = corpus.splits["train"].texts
    out["generation"] = {name: text_quality(t, train_texts, lm) for name, t in texts.items()}
    out["generation"]["lp"]["max-log-q"] = lp_log_q.max().item()
    out["generation"]["hp"]["max-log-base"] = hp_log_base.max().item()
    out["examples"] = {name: t[:5] for name, t in texts.items()}
    return out


def fmt(x, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def render(results: dict[str, dict], opts: argparse.Namespace, command: str, seconds: float) -> str:
    head = ("| regulariser | prior | NLL | KL | MI | AU | sKL | prior: LM-PPL | Dist-2 | Gram-3 | length "
            "| LP: LM-PPL | Dist-2 | Gram-3 | length | HP: LM-PPL | Dist-2 | Gram-3 | length |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for label, recipe in ROWS:
        for prior_label, suffix in PRIORS:
            if recipe + suffix not in results:
                continue
            r = results[recipe + suffix]
            cells = [label, prior_label, fmt(r["nll"]), fmt(r["kl"]), fmt(r["mi"]), fmt(r["au"]), fmt(r["skl"]["skl"])]
            for name in ("prior", "lp", "hp"):
                g = r["generation"][name]
                cells += [fmt(g["lm-ppl"], 1), fmt(g["dist-2"], 3), fmt(g["gram-3"], 3), fmt(g["mean-length"], 1)]
            lines.append("| " + " | ".join(cells) + " |")
    any_run = next(iter(results.values()))
    thresholds = [p["threshold"] for p in any_run["leakage"]]
    leak_head = "| model | " + " | ".join(f"{t:.1f}" for t in thresholds) + " |"
    leak_lines = [leak_head, "|" + "---|" * (len(thresholds) + 1)]
    for key, r in results.items():
        leak_lines.append(f"| {key} | " + " | ".join(
            fmt(p["score"], 1) + f" ({p['fraction']:.3f})" for p in r["leakage"]) + " |")
    return "\n".join([
        "# dpVAE Table 1 on text (short Yelp demo corpus)",
        "",
        f"Made by `{command}` in {seconds / 60:.1f} min ({torch.get_num_threads()} torch thread(s), "
        f"torch {torch.__version__}, Python {platform.python_version()}).",
        "",
        f"Each row trains one LSTM VAE (embedding 64, LSTMs 128, z 16, Adam lr 1e-3, seed {opts.seed}) for "
        f"{opts.epochs} epochs on the first {opts.train_limit} sentences of the demo train split, with the "
        "hyper-parameters of recipes/dpvae/<row>[-dp].toml (identical for both priors, untuned). NLL (IW, "
        f"K = {opts.iw_samples}), KL, MI and AU: evaluator on the best checkpoint, first {opts.test_limit} "
        "sentences of the demo test split, nats per sentence. sKL: KL(q||p) + KL(p||q) in the representation space, "
        f"{opts.latent_samples} samples each way, q = mixture of the test posteriors. Generation columns: "
        f"{opts.extreme_samples} greedy-decoded sentences from prior samples, from the LP latents (lowest "
        f"log q(z) among {opts.latent_samples} prior samples) and from the HP latents (lowest log N(f(z)) among "
        f"{opts.latent_samples} q(z) samples). LM-PPL: perplexity under an LSTM-LM trained on the same "
        "sentences (lower = more fluent by that LM, but generic sentences also score low); Dist-2: distinct "
        "bigrams / bigrams; Gram-3: share of generated trigrams found in the training sentences; length: "
        "mean words per sentence (greedy decoding stops at </s> or 100 words, so 100 means a loop). "
        "These are tiny runs on a shared CPU: compare the two priors within a row, not with the paper's images.",
        "",
        *lines,
        "",
        "## Leakage score (dpVAE §5.1)",
        "",
        "Mean of log q(z) - log N(f(z)) over the q(z) samples with log N(f(z)) < tau (f = identity for N(0, I), "
        "g for the decoupled prior); in brackets the share of samples in that region. Lower is better. "
        "Plot: leakage.png.",
        "",
        *leak_lines,
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "eval" / "results" / "dpvae_table")
    parser.add_argument("--runs-dir", type=Path, default=REPO / "runs" / "dpvae")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=3000)
    parser.add_argument("--test-limit", type=int, default=500)
    parser.add_argument("--iw-samples", type=int, default=50)
    parser.add_argument("--latent-samples", type=int, default=5000, help="samples for sKL, leakage, LP/HP candidates")
    parser.add_argument("--extreme-samples", type=int, default=500, help="sentences per generation set")
    parser.add_argument("--seed", type=int, default=783435)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", nargs="+", default=[r for _, r in ROWS], help="subset of regularisers")
    parser.add_argument("--retrain", action="store_true")
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    from textvae.latent_metrics import LeakagePoint, plot_leakage
    from textvae.runs import load_run

    start = time.perf_counter()
    lm_dir, lm_seconds = train_language_model(opts)
    lm = load_run(lm_dir)
    print(f"lstm-lm trained ({fmt(lm_seconds, 0)} s)", flush=True)
    results = {}
    for _, row in ROWS:
        if row not in opts.rows:
            continue
        for _, suffix in PRIORS:
            recipe = row + suffix
            run_dir, seconds = train_run(recipe, opts)
            results[recipe] = {"train_seconds": seconds, **analyse(run_dir, lm, opts)}
            r = results[recipe]
            print(f"{recipe:>16}: nll {r['nll']:.2f} kl {r['kl']:.2f} skl {r['skl']['skl']:.2f} "
                  f"prior ppl {r['generation']['prior']['lm-ppl']:.1f} lp ppl {r['generation']['lp']['lm-ppl']:.1f} "
                  f"({fmt(seconds, 0)} s)", flush=True)
    seconds = time.perf_counter() - start
    from textvae.sweeps.manifest import portable_command, portable_path

    # The record names no machine path: folders relative to the checkout.
    command = portable_command("python -m eval.dpvae_table " + " ".join(shlex.quote(a) for a in sys.argv[1:]), REPO)
    options = {k: portable_path(v, REPO) if isinstance(v, Path) else str(v) for k, v in vars(opts).items()}
    opts.out.mkdir(parents=True, exist_ok=True)
    (opts.out / "table.json").write_text(json.dumps(
        {"command": command, "seconds": seconds, "options": options,
         "runs": results}, indent=2) + "\n")
    curves = {key: [LeakagePoint(**p) for p in r["leakage"]] for key, r in results.items()}
    colours = {row: f"C{i}" for i, (_, row) in enumerate(ROWS)}
    styles = {row + suffix: {"color": colours[row], "linestyle": "--" if suffix else "-"}
              for _, row in ROWS for _, suffix in PRIORS}
    plot_leakage(curves, opts.out / "leakage.png", styles=styles,
                 title="Latent leakage, short-Yelp demo (dashed: decoupled prior)")
    (opts.out / "table.md").write_text(render(results, opts, command, seconds))
    print(f"done in {seconds / 60:.1f} min; wrote {opts.out}", flush=True)


if __name__ == "__main__":
    main()

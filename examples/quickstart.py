"""Train, evaluate, probe and plot a text VAE through the Python API, on the embedded demo corpus.

    python examples/quickstart.py [RUN_DIR] [KEY=VALUE ...]    # e.g. train.epochs=2 for a quicker look
"""

import logging
import sys
from pathlib import Path

from textvae import load_run, resolve, train
from textvae.probing import load_probe_data, probe_data_dir, run_probe
from textvae.report.plots import plot_training_curves

logging.basicConfig(level=logging.INFO, format="%(message)s")   # per-epoch summaries
out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/quickstart")
config = resolve("demo", "bn-vae", overrides=sys.argv[2:])      # recipe: demo corpus x BN-VAE
results = train(config, out)                                     # trains, then evaluates the best checkpoint on test
print({key: round(results[key], 3) for key in ("nll", "kl", "mi", "au")})
run = load_run(out)
subsets = (100, 1000)                                            # labeled training sentences per probe
probe = run_probe(run.model, run.vocab, load_probe_data(probe_data_dir("demo"), subsets), subsets)
print("probe accuracy (%):", probe["sklearn-logreg"]["accuracy"])
print("curves:", plot_training_curves([out], out / "training_curves.png"))

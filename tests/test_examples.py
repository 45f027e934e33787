"""The scripts under examples/ run as shipped (at toy size, through their command-line overrides)."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOY = ["model.embed_dim=8", "model.enc_hidden=8", "model.dec_hidden=8", "model.latent_dim=2", "train.epochs=1",
       "data.train_limit=200", "eval.iw_samples=2", "eval.limit=50", "train.progress=false"]


def test_quickstart_trains_evaluates_probes_and_plots(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(REPO / "examples" / "quickstart.py"), str(out), *TOY],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "epoch 1: valid elbo" in done.stderr
    assert "probe accuracy (%): {'100':" in done.stdout
    assert json.loads((out / "results.json").read_text())["epochs"] == 1
    assert (out / "training_curves.png").read_bytes().startswith(b"\x89PNG")

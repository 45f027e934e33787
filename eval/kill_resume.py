"""Kill ``textvae train`` with SIGKILL at random moments, ``--resume`` it, compare with an uninterrupted run.

Each trial starts the CLI on a tiny synthetic corpus, kills it after a random delay, resumes it
(killing again while a random draw says so), and checks that the folder ends equal to a straight
run's: same files, same metrics lines (minus wall-clock seconds), same results.json, no temp or lock
file. The tests inject crashes at exact points (tests/test_crash_points.py); this is the blind check.

    python -m eval.kill_resume --trials 8 --out eval/results/kill_resume/README.md
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from textvae.data.synthesize import SynthesisConfig, write_synthetic_corpus

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """name = "kill"
seed = 3
[data]
corpus = "{corpus}"
batch_size = 8
[model]
embed_dim = 16
enc_hidden = 32
dec_hidden = 32
latent_dim = 4
[train]
epochs = {epochs}
progress = false
[eval]
iw_samples = 5
"""


def textvae(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from textvae.cli.main import app; app()", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def view(run: Path) -> dict:
    metrics = [{k: v for k, v in json.loads(line).items() if k != "seconds"}
               for line in (run / "metrics.jsonl").read_text().splitlines()]
    # TensorBoard names its event files by time and process, so each attempt adds its own; their
    # scalars are metrics.jsonl's, compared below
    return {"files": sorted(str(p.relative_to(run)) for p in run.rglob("*")
                            if p.is_file() and not p.name.startswith("events.out.tfevents.")),
            "metrics": metrics, "results": json.loads((run / "results.json").read_text())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    opts = parser.parse_args()
    rng = random.Random(opts.seed)
    tmp = Path(tempfile.mkdtemp(prefix="kill-resume-"))
    env = {**os.environ, "TEXTVAE_DATA": str(tmp / "data"), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    corpus = write_synthetic_corpus(SynthesisConfig(seed=opts.seed, components=4, vocab_size=40, length=6, hidden=8,
                                                    embed=8, n_train=200, n_valid=40, n_test=40), tmp / "corpus")
    config = tmp / "kill.toml"
    config.write_text(CONFIG.format(corpus=corpus, epochs=opts.epochs))
    start = time.perf_counter()
    straight = textvae("train", str(config), "--out", str(tmp / "straight"), env=env)
    assert straight.wait() == 0, straight.stderr.read()
    full = time.perf_counter() - start
    reference = view(tmp / "straight")
    rows, equal = [], 0
    for trial in range(opts.trials):
        run = tmp / f"trial{trial}"
        args, kills, delays = ["train", str(config), "--out", str(run)], 0, []
        while True:
            proc = textvae(*args, env=env)
            delay = rng.uniform(0.3, full) if kills < 3 else None
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                delays.append(delay)
                # killed before config.json existed: start it again; after: resume it
                args = ["train", "--resume", str(run)] if (run / "config.json").is_file() else args
                continue
            if proc.returncode != 0:
                raise SystemExit(f"trial {trial}: exit {proc.returncode}: {proc.stderr.read()}")
            break
        same = view(run) == reference and not list(run.rglob("*.tmp")) and not (run / ".lock").exists()
        equal += same
        rows.append(f"| {trial} | {kills} | {', '.join(f'{d:.1f}' for d in delays) or '-'} | "
                    f"{'equal' if same else 'DIFFERENT'} |")
    lines = ["# SIGKILL + --resume against an uninterrupted run (eval/kill_resume.py)", "",
             f"{opts.trials} trials, {opts.epochs} epochs, straight run {full:.1f} s wall (CLI start included); "
             f"up to 3 kills per trial at uniform random delays.", "",
             "| trial | kills | kill after (s) | folder after resume |", "|---|---|---|---|", *rows, "",
             f"{equal}/{opts.trials} trials end equal to the uninterrupted run (files, metrics lines without "
             "seconds, results.json; no temp or lock file)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if opts.out:
        opts.out.write_text(text)


if __name__ == "__main__":
    main()

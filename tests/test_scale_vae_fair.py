"""eval/scale_vae_fair.py (the slides' Scale-VAE trends as tests of a reading) and the summary of
eval/scale_vae_trace.py, on run folders written here."""

from __future__ import annotations

import gzip
import json

from eval import scale_vae_fair as fair
from eval import scale_vae_trace as trace
from textvae import recipes
from textvae.rundir import RunDir


def run(root, recipe, seed, overrides=(), **results):
    config = recipes.resolve("demo", recipe, list(overrides), seed)
    folder = root / "runs" / recipe / "-".join(overrides).replace("/", "_") / f"seed{seed}"
    with RunDir(folder) as rundir:
        rundir.claim(fresh=True)
        rundir.write_config(config.to_dict())
        rundir.write_results({"split": "test", "limit": None, "n_sentences": 10, "n_targets": 50, "iw_samples": 100,
                              "mi_estimator": "whole-set", "kl": 1.0, "mi": 2.0, "au": 16, "kl_train": 1.0,
                              "best_epoch": 6, "epochs": 6, **results})


def des(value):
    return [f"strategies.scale-vae.des_std={value}"]


def test_trends_follow_the_measured_numbers(tmp_path):
    for seed in (1, 2):
        run(tmp_path, "scale-vae", seed, nll=42.0 + seed / 10)                     # des_std 0.7, f_epo 1
        run(tmp_path, "scale-vae", seed, des(1.3), nll=43.0 + seed / 10)           # worse at 1.3
        run(tmp_path, "scale-vae", seed, ["strategies.scale-vae.f_epo=3"], nll=42.1 + seed / 10)
        run(tmp_path, "scale-vae", seed, ["strategies.scale-vae.f_epo=5"], nll=42.0 + seed / 10)
        run(tmp_path, "kl-annealing@scale-vae", seed, nll=41.5, kl=0.0, mi=0.0, au=0)
        run(tmp_path, "bn-vae@scale-vae", seed, nll=42.5)
        run(tmp_path, "bn-vae", seed, nll=40.0)  # another optimiser: not a same-optimizer baseline
    use = {"nll": 42.1, "rec": 40.0, "kl": 4.0, "iw_gain": 1.9, "rec_posterior": 40.0, "rec_prior": 43.0,
           "latent_use": 3.0, "latent_use_samples": 10}
    (tmp_path / "runs" / "scale-vae" / "seed1" / "eval-latent-use.json").write_text(json.dumps(use))
    fair.main([str(tmp_path), "--out", str(tmp_path / "out")])
    out = json.loads((tmp_path / "out" / "trends.json").read_text())
    recipe = next(r for r in out["readings"] if r["reading"] == "recipe · adam · scaled-posterior")
    assert recipe["des_std"] == [0.7, 1.3] and recipe["seeds"] == 2
    assert [round(v, 2) for v in recipe["nll"]] == [42.15, 43.15]
    trend = next(t for t in out["trends"] if t["reading"] == recipe["reading"])
    assert trend["a"]["reproduced"] is False and "+1.00" in trend["a"]["figures"]
    assert trend["b"]["reproduced"] is False  # ahead of BN-VAE (42.65) but behind KL annealing (41.5)
    assert "kl-annealing − Scale-VAE = -0.65" in trend["b"]["figures"]
    assert trend["c"]["reproduced"] is True and trend["d"]["reproduced"] is True
    rows = {(r["row"], r["optimizer"]): r for r in out["same_optimizer"]}
    assert rows[("bn-vae", "sgd lr 1, clip 5 global")]["nll"] == 40.0
    assert rows[("bn-vae@scale-vae", "adam lr 0.001, clip 5 per-module")]["seeds"] == 2
    text = (tmp_path / "out" / "trends.md").read_text()
    assert "| recipe · adam · scaled-posterior |" in text
    assert "Demo corpus (10k short-Yelp sentences, 64/128/16 model), test IW-NLL with K = 100 on the 10 test" in text
    assert out["decomposition"] == [{"run": f"{tmp_path.name}/scale-vae/seed1", "budget": "6 epochs",
                                     "optimizer": "adam lr 0.001, clip 5 per-module", **use}]


def test_the_setting_line_names_the_corpus_subset_and_sizes_of_the_runs(tmp_path):
    config = recipes.resolve("ptb", "scale-vae", ["data.train_limit=3000", "eval.iw_samples=50"], 1)
    with RunDir(tmp_path / "seed1") as rundir:
        rundir.claim(fresh=True)
        rundir.write_config(config.to_dict())
        rundir.write_results({"split": "test", "limit": None, "n_sentences": 1000, "n_targets": 50, "nll": 1.0,
                              "kl": 1.0, "mi": 1.0, "au": 1, "iw_samples": 50, "best_epoch": 1, "epochs": 1})
    [record] = fair.read_records([tmp_path])
    assert fair.setting([record]) == ("PTB (first 3000 training sentences, 256/512/32 model), test IW-NLL with "
                                      "K = 50 on the 1000 test sentences")


def test_trace_summary_reads_each_epoch(tmp_path):
    updates = [{"epoch": e, "update": i, "f": 2.0 * e, "raw_std": 0.35, "scaled_std": 0.7, "kl": 1.0, "rec": 40.0,
                "grad_norm": [3.0, 4.0], **({"probe_scaled_std": 0.7 * e} if i == 1 else {})}
               for e in (1, 2) for i in (1, 2)]
    (tmp_path / "r.json.gz").write_bytes(gzip.compress(json.dumps({"status": "finished", "updates": updates}).encode()))
    text = trace.summarize(tmp_path)
    row = "| r | finished | 2 | 4 (4–4) | 0.7 (0.7–0.7) | 0.35 (0.35–0.35) | 1 (1–1) | 40 (40–40) | 7 | 1.4 → 1.4 |"
    assert row in text

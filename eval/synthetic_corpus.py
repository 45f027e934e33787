"""How learnable the synthetic corpus's component is from its words: a bag-of-words logistic regression
trained on the train split and scored on the test split (not a textvae run: no VAE involved).

    python eval/synthetic_corpus.py --seed 1 --grid --out eval/results/latent_clutter/corpus.json

Writes the corpus's figures (component count, ``bow_accuracy``, every synthesis setting) and, with
``--grid``, the same accuracy over the knobs that make z matter (generator weight scale x component
spacing, on a smaller corpus) that chose the defaults of ``textvae data synthesize``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from textvae.data.synthesize import SynthesisConfig, synthesize

PROBE = ("word counts (every token) + sklearn LogisticRegression(C=1, lbfgs, max_iter 2000), fitted on the "
         "train split, accuracy on the test split")
GRID = {"weight_scale": (1.0, 2.0, 3.0, 4.0), "spacing": (1.0, 2.0, 4.0)}
GRID_SIZE = {"n_train": 4000, "n_valid": 1, "n_test": 2000}


def bow_accuracy(config: SynthesisConfig) -> float:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    splits = synthesize(config)
    words = CountVectorizer(token_pattern=r"\S+")
    train = words.fit_transform(splits["train"][0])
    model = LogisticRegression(C=1.0, max_iter=2000).fit(train, splits["train"][1])
    return float(model.score(words.transform(splits["test"][0]), splits["test"][1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--grid", action="store_true", help="also measure the knob grid (a few CPU-minutes)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = SynthesisConfig(seed=args.seed)
    start = time.perf_counter()
    record = {"components": config.components, "chance": 1 / config.components, "bow_accuracy": bow_accuracy(config),
              "bow_probe": PROBE, "settings": asdict(config)}
    print(f"default corpus (seed {args.seed}): bag-of-words accuracy {record['bow_accuracy']:.3f}", flush=True)
    if args.grid:
        record["knobs"] = {"sizes": GRID_SIZE, "points": []}
        for scale in GRID["weight_scale"]:
            for spacing in GRID["spacing"]:
                accuracy = bow_accuracy(replace(config, weight_scale=scale, spacing=spacing, **GRID_SIZE))
                record["knobs"]["points"].append({"weight_scale": scale, "spacing": spacing, "bow_accuracy": accuracy})
                print(f"weight_scale {scale} spacing {spacing}: {accuracy:.3f}", flush=True)
    record["seconds"] = round(time.perf_counter() - start, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""How learnable the synthetic corpus's component is from its words: a bag-of-words logistic regression
trained on the train split and scored on the test split (not a textvae run: no VAE involved).

    python -m eval.synthetic_corpus --seed 1 --grid --out eval/results/latent_clutter/corpus.json

Writes the corpus's figures (component count, ``bow_accuracy``, the same probe on the first 1-3 tokens
under ``prefix_accuracy``, every synthesis setting) and, with
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
PREFIXES = (1, 2, 3)
PREFIX_PROBE = ("the same probe on the first k tokens only, each tagged with its position: how soon a "
                "left-to-right decoder can tell the component from the words it has read")


def probe_accuracy(splits: dict, features=lambda text: text) -> float:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    (train_texts, train_labels), (test_texts, test_labels) = splits["train"], splits["test"]
    words = CountVectorizer(token_pattern=r"\S+")
    train = words.fit_transform([features(t) for t in train_texts])
    model = LogisticRegression(C=1.0, max_iter=2000).fit(train, train_labels)
    return float(model.score(words.transform([features(t) for t in test_texts]), test_labels))


def bow_accuracy(config: SynthesisConfig) -> float:
    return probe_accuracy(synthesize(config))


def first_words(k: int):
    """The first ``k`` tokens, each tagged with its position: what a left-to-right decoder has read."""
    return lambda text: " ".join(f"{i}:{word}" for i, word in enumerate(text.split()[:k]))


def prefix_accuracies(splits: dict) -> dict[str, float]:
    return {str(k): probe_accuracy(splits, first_words(k)) for k in PREFIXES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--grid", action="store_true", help="also measure the knob grid (a few CPU-minutes)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = SynthesisConfig(seed=args.seed)
    start = time.perf_counter()
    splits = synthesize(config)
    record = {"components": config.components, "chance": 1 / config.components, "bow_accuracy": probe_accuracy(splits),
              "bow_probe": PROBE, "prefix_accuracy": prefix_accuracies(splits), "prefix_probe": PREFIX_PROBE,
              "settings": asdict(config)}
    print(f"default corpus (seed {args.seed}): bag-of-words accuracy {record['bow_accuracy']:.3f}; first "
          + ", ".join(f"{k}: {a:.3f}" for k, a in record["prefix_accuracy"].items()), flush=True)
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

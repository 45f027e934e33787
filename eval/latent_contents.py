"""What a synthetic-corpus run's latent space holds: the component, or the sentence's first words?

    python -m eval.latent_contents RUN [RUN ...] --data-dir DATA --out OUT

For every run folder (trained with ``eval.latent_clutter = true``, so it kept ``latents_test.json``, the
test posterior means in the space the decoder reads) this scores the same 15-nearest-neighbour
classifier as the clutter table on other targets than the component: the first word, the second word
and the last word of each test sentence, each beside the accuracy of always guessing its most frequent
value (plain shuffled folds for every target, so the component's figure can differ from the clutter
table's stratified one in the second decimal). A latent that encodes the first words of a sentence
separates the components only as far as those words tell the components apart. Writes
``contents.json`` and ``contents.md`` under ``--out`` (the study's: eval/results/latent_clutter/README.md).

The means are stored in batch order with each row's position in the test file (``index``). Records
written before the position was kept are read in file order, which holds where every sentence has the
same length (the synthetic corpus); the script checks that label by label and refuses otherwise.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from textvae.latent_metrics.clutter import knn_accuracy
from textvae.rundir import RunDir

TARGETS = ("component", "word 1", "word 2", "last word")


def contents(run: Path, data_dir: Path) -> dict:
    folder = RunDir(run)
    corpus = folder.read_config()["data"]["corpus"]
    lines = [line.rstrip("\n").split("\t") for line in (data_dir / corpus / "test.txt").open()]
    stored = folder.read_latents("test")
    if "index" in stored:
        lines = [lines[i] for i in stored["index"]]
    names = sorted({label for label, _ in lines})
    if [names.index(label) for label, _ in lines] != stored["labels"]:
        raise SystemExit(f"{run}/latents_test.json: its labels are not those of {corpus}/test.txt in this order "
                         "(a record without 'index', of sentences of different lengths?)")
    words = [text.split() for _, text in lines]
    targets = {"component": np.array(stored["labels"]), "word 1": np.array([w[0] for w in words]),
               "word 2": np.array([w[1] for w in words]), "last word": np.array([w[-1] for w in words])}
    means = np.asarray(stored["means"], dtype=np.float64)
    record = {"run": run.as_posix(), "corpus": corpus}
    for name, target in targets.items():
        # plain folds for every target: words have values too rare to stratify on
        record[name] = {"knn_accuracy": knn_accuracy(means, target, stratified=False),
                        "majority": Counter(target.tolist()).most_common(1)[0][1] / len(target)}
    return record


def table(records: list[dict]) -> str:
    head = "| run | corpus | " + " | ".join(f"{t}: 15-NN (majority)" for t in TARGETS) + " |"
    rows = [head, "|" + "---|" * (2 + len(TARGETS))]
    for r in records:
        cells = [f"{r[t]['knn_accuracy']:.3f} ({r[t]['majority']:.3f})" for t in TARGETS]
        rows.append(f"| `{r['run']}` | {r['corpus']} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    records = [contents(run, args.data_dir) for run in args.runs]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "contents.json").write_text(json.dumps(records, indent=2) + "\n")
    (args.out / "contents.md").write_text(table(records))
    print(table(records), end="")


if __name__ == "__main__":
    main()

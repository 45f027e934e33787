"""The Table-4 linear-probe protocol on short Yelp (docs/evaluation.md, "Linear probe").

Posterior means of the frozen encoder for the fixed labeled subsets ``train.{100,500,1000,2000,10000}.txt``
(seed 783435, not class-balanced), the full ``valid.txt`` and ``test.txt``; a linear classifier per
subset, selected on validation, scored by accuracy on the full test set. A folder without the
``train.N.txt`` files (the embedded ``demo`` corpus) gets its subsets drawn from its labeled
``train.txt`` with the same seed (:func:`draw_subsets`). Two classifiers, each named in the output:

* ``sgd-linear``: the reference's SGD-trained ``Linear`` layer (:mod:`textvae.probing.sgd`);
* ``sklearn-logreg``: standardised features + scikit-learn ``LogisticRegression``, C chosen from a
  log-spaced grid by validation log-loss.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..data import Vocab
from ..data.catalog import CATALOG, corpus_dir
from ..data.reader import read_lines
from ..errors import ArgumentError, ArgumentTypeError, ConfigError, DataError, check_int
from ..progress import Progress
from .features import encode_posteriors
from .sgd import SGDLinearProbe

SUBSETS = (100, 500, 1000, 2000, 10000)
SUBSET_SEED = 783435
PROBES = ("sgd-linear", "sklearn-logreg")
LOGREG_CS = tuple(float(c) for c in np.logspace(-3, 3, 7))

log = logging.getLogger(__name__)


@dataclass
class LabeledSet:
    texts: list[str]
    labels: list[str]

    @property
    def lengths(self) -> np.ndarray:
        return np.asarray([len(t.split()) + 2 for t in self.texts])


def find_probe_file(root: Path, name: str) -> Path:
    """``NAME.txt`` or ``<prefix>.NAME.txt`` (``short_yelp.train.100.txt`` in the published release)."""
    exact = root / f"{name}.txt"
    if exact.is_file():
        return exact
    matches = sorted(root.glob(f"*.{name}.txt"))
    if len(matches) == 1:
        return matches[0]
    raise DataError(f"{root}: no {name}.txt (or <prefix>.{name}.txt) for the linear probe")


def probe_data_dir(data: str, data_dir: str | Path | None = None) -> Path:
    """A catalog corpus name (looked up under the data root) or a directory path."""
    root = corpus_dir(data, data_dir) if data in CATALOG else Path(data).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: linear-probe data folder not found (--data NAME or a directory; --data-dir ROOT)")
    return root


def load_labeled(path: Path) -> LabeledSet:
    raw = read_lines(path, labeled=True)
    return LabeledSet(raw.texts, raw.labels)


def draw_subsets(train: LabeledSet, subsets: tuple[int, ...], where: Path,
                 seed: int = SUBSET_SEED) -> dict[str, LabeledSet]:
    """Nested labeled subsets: the first N sentences of one seeded shuffle of ``train``."""
    too_big = [n for n in subsets if n > len(train.texts)]
    if too_big:
        raise DataError(f"{where}: labeled subset of {too_big[0]} sentences asked for, but it has only "
                        f"{len(train.texts)} (--subsets)")
    order = list(range(len(train.texts)))
    random.Random(seed).shuffle(order)
    return {f"train.{n}": LabeledSet([train.texts[i] for i in order[:n]], [train.labels[i] for i in order[:n]])
            for n in subsets}


def check_subsets(subsets: object, name: str = "subsets") -> tuple[int, ...]:
    """Labeled subset sizes: a non-empty collection of integers >= 1."""
    if isinstance(subsets, (str, bytes)) or not hasattr(subsets, "__iter__"):
        raise ArgumentTypeError(f"{name}: expected a collection of subset sizes, got {subsets!r}")
    sizes = tuple(subsets)
    if not sizes:
        raise ArgumentError(f"{name}: no subset sizes given")
    for n in sizes:
        check_int(n, f"{name}: each size", 1)
    return sizes


def load_probe_data(root: Path, subsets: tuple[int, ...] = SUBSETS) -> dict[str, LabeledSet]:
    """The subsets' ``train.N.txt`` files, or, when a folder has none of them, subsets drawn from its
    labeled ``train.txt`` (:func:`draw_subsets`); then ``valid.txt`` and ``test.txt``."""
    subsets = check_subsets(subsets)
    shipped = {n: next(iter(sorted(root.glob(f"*train.{n}.txt"))), None) for n in subsets}
    full_train = root / "train.txt"
    if not any(shipped.values()) and full_train.is_file():
        data = draw_subsets(load_labeled(full_train), subsets, full_train)
    else:
        data = {f"train.{n}": load_labeled(find_probe_file(root, f"train.{n}")) for n in subsets}
    data["valid"] = load_labeled(find_probe_file(root, "valid"))
    data["test"] = load_labeled(find_probe_file(root, "test"))
    return data


def fit_logreg(x: np.ndarray, y: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray, classes: np.ndarray,
               cs: tuple[float, ...] = LOGREG_CS):
    best = None
    for c in cs:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(x, y)
        loss = log_loss(y_valid, clf.predict_proba(x_valid), labels=classes)
        if best is None or loss < best[0]:
            best = (loss, c, clf)
    return best


def run_probe(model: torch.nn.Module, vocab: Vocab, data: dict[str, LabeledSet], subsets: tuple[int, ...] = SUBSETS,
              probes: tuple[str, ...] = PROBES, seed: int = 0, batch_size: int = 256,
              max_length: int | None = None, progress: bool = True) -> dict[str, dict]:
    """Accuracy (%) per probe and subset size: ``{probe: {"accuracy": {"100": ..}, "selected": {..}}}``.

    Progress (:class:`textvae.progress.Progress`): the encoding of every set, then one line per fit."""
    unknown = [p for p in probes if p not in PROBES]
    if unknown:
        raise ConfigError(f"unknown probe {unknown[0]!r}; choose from {', '.join(PROBES)}")
    for n in subsets:
        labels = set(data[f"train.{n}"].labels)
        if len(labels) < 2:  # no classifier can be fitted
            raise DataError(f"the labeled subset of {n} sentences holds "
                            + (f"only the label {labels.pop()!r}" if labels else "no sentences")
                            + ": a classifier needs two labels (--subsets: use a larger size)")
    model.eval()
    label_names = sorted({label for s in data.values() for label in s.labels})
    label_id = {label: i for i, label in enumerate(label_names)}
    feats = {}
    with Progress("probe: posterior means", sum(len(s.texts) for s in data.values()), "sentence", log,
                  progress) as bar:
        for name, s in data.items():
            feats[name] = encode_posteriors(model, vocab, s.texts, batch_size, max_length).mu.numpy().astype(np.float64)
            bar.update(len(s.texts), note=name)
    ys = {name: np.asarray([label_id[label] for label in s.labels]) for name, s in data.items()}
    classes = np.arange(len(label_names))
    out: dict[str, dict] = {p: {"accuracy": {}, "selected": {}} for p in probes}
    with Progress("probe fits", len(subsets) * len(probes), "fit", log, progress, every=True) as bar:
        for n in subsets:
            key = f"train.{n}"
            x, y = feats[key], ys[key]
            for probe in probes:
                if probe == "sgd-linear":
                    clf = SGDLinearProbe(seed=seed).fit(x, y, data[key].lengths, feats["valid"], ys["valid"],
                                                        len(classes))
                    selected = {"valid_ce": clf.valid_loss_, "epochs": clf.epochs_}
                else:
                    loss, c, clf = fit_logreg(x, y, feats["valid"], ys["valid"], classes)
                    selected = {"valid_ce": float(loss), "C": c}
                accuracy = float((clf.predict(feats["test"]) == ys["test"]).mean() * 100)
                out[probe]["accuracy"][str(n)] = accuracy
                out[probe]["selected"][str(n)] = selected
                bar.update(note=f"{probe} on {n} sentences: {accuracy:.1f}%")
    return out

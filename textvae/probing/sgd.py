"""The reference linear probe (DU-VAE ``text_ss.py``, docs/evaluation.md, "Linear probe"), trained with SGD in torch.

``Linear(latent_dim, n_classes)`` with bias and cross-entropy; SGD lr 1.0, no momentum, gradient
clip 5, batches of at most 16 examples of identical sentence length (buckets of fewer than 2 are
skipped, as in the reference), bucket order shuffled each epoch; up to 100 epochs. The best
classifier is selected on validation cross-entropy; after 2 epochs without improvement the learning
rate halves and the best weights are reloaded; training stops after the 5th decay.

Deviation: the reference's output width is 10 for short Yelp (an unused over-size); here it is the
number of classes.
"""

from __future__ import annotations

import copy
import random
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class SGDProbeConfig:
    lr: float = 1.0
    batch_size: int = 16
    epochs: int = 100
    clip_grad: float = 5.0
    min_bucket: int = 2
    decay_after: int = 2
    lr_decay: float = 0.5
    max_decay: int = 5


def length_buckets(lengths: np.ndarray, batch_size: int, min_bucket: int) -> list[np.ndarray]:
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, n in enumerate(lengths.tolist()):
        by_length[n].append(i)
    buckets = []
    for n in sorted(by_length):
        rows = by_length[n]
        buckets.extend(np.asarray(rows[j : j + batch_size]) for j in range(0, len(rows), batch_size))
    return [b for b in buckets if len(b) >= min_bucket]


class SGDLinearProbe:
    """Fit on (features, labels, sentence lengths); predict class ids."""

    def __init__(self, config: SGDProbeConfig | None = None, seed: int = 0):
        self.config = config or SGDProbeConfig()
        self.seed = seed

    def fit(self, x: np.ndarray, y: np.ndarray, lengths: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray,
            n_classes: int) -> "SGDLinearProbe":
        cfg = self.config
        torch.manual_seed(self.seed)
        rng = random.Random(self.seed)
        self.linear = nn.Linear(x.shape[1], n_classes)
        xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
        xv, yv = torch.as_tensor(x_valid, dtype=torch.float32), torch.as_tensor(y_valid, dtype=torch.long)
        buckets = length_buckets(np.asarray(lengths), cfg.batch_size, cfg.min_bucket)
        lr = cfg.lr
        optimizer = torch.optim.SGD(self.linear.parameters(), lr=lr)
        best_loss, best_state, bad, decays = self._valid_loss(xv, yv), copy.deepcopy(self.linear.state_dict()), 0, 0
        self.epochs_ = 0
        for _ in range(cfg.epochs):
            rng.shuffle(buckets)
            for rows in buckets:
                index = torch.as_tensor(rows)
                loss = F.cross_entropy(self.linear(xt[index]), yt[index])
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.linear.parameters(), cfg.clip_grad)
                optimizer.step()
            self.epochs_ += 1
            loss = self._valid_loss(xv, yv)
            if loss < best_loss:
                best_loss, best_state, bad = loss, copy.deepcopy(self.linear.state_dict()), 0
                continue
            bad += 1
            if bad >= cfg.decay_after:
                decays += 1
                if decays >= cfg.max_decay:
                    break
                lr *= cfg.lr_decay
                bad = 0
                self.linear.load_state_dict(best_state)
                optimizer = torch.optim.SGD(self.linear.parameters(), lr=lr)
        self.linear.load_state_dict(best_state)
        self.valid_loss_ = best_loss
        return self

    @torch.no_grad()
    def _valid_loss(self, x: torch.Tensor, y: torch.Tensor) -> float:
        return float(F.cross_entropy(self.linear(x), y))

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.linear(torch.as_tensor(x, dtype=torch.float32)).argmax(-1).numpy()

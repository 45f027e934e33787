"""Small value types shared by the model, priors, strategies, trainer and evaluator."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


@dataclass
class Batch:
    """Sentences as ``<s> w1 .. wT </s>`` ids, right-padded with ``pad_id`` (0).

    ``lengths`` counts both boundary tokens, so a sentence predicts ``lengths - 1`` targets.
    """

    tokens: Tensor  # [B, L] long
    lengths: Tensor  # [B] long (on CPU as well as on the device of tokens)
    labels: Tensor | None = None
    index: Tensor | None = None  # positions of these sentences in their split

    @property
    def size(self) -> int:
        return self.tokens.size(0)

    @property
    def padded(self) -> bool:
        return bool((self.lengths != self.tokens.size(1)).any())

    @property
    def max_words(self) -> int:
        """Words of the longest sentence, boundary tokens left out (of every sentence in a bucket)."""
        return int(self.lengths.max()) - 2

    def n_targets(self) -> int:
        """Predicted tokens: words plus ``</s>``, never ``<s>`` and never padding."""
        return int((self.lengths - 1).sum())

    def pin_memory(self) -> "Batch":
        """The batch in page-locked host memory (needs CUDA): its copies to a GPU do not block."""
        return Batch(self.tokens.pin_memory(), self.lengths,
                     None if self.labels is None else self.labels.pin_memory(), self.index)

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(
            self.tokens.to(device, non_blocking=True),
            self.lengths,
            None if self.labels is None else self.labels.to(device, non_blocking=True),
            self.index,
        )


@dataclass
class Posterior:
    """Diagonal Gaussian q(z|x) = N(mu, exp(logvar))."""

    mu: Tensor  # [B, D]
    logvar: Tensor  # [B, D]

    @property
    def std(self) -> Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, n: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Reparameterised samples: [B, D] when ``n`` is None, else [B, n, D]."""
        shape = self.mu.shape if n is None else (self.mu.size(0), n, self.mu.size(1))
        eps = torch.randn(shape, device=self.mu.device, dtype=self.mu.dtype, generator=generator)
        if n is None:
            return self.mu + self.std * eps
        return self.mu.unsqueeze(1) + self.std.unsqueeze(1) * eps

    def log_prob(self, z: Tensor) -> Tensor:
        """log q(z|x) for z of shape [B, D] or [B, K, D]; returns [B] or [B, K]."""
        mu, logvar = self.mu, self.logvar
        if z.dim() == 3:
            mu, logvar = mu.unsqueeze(1), logvar.unsqueeze(1)
        return -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar + LOG_2PI).sum(-1)

    def entropy(self) -> Tensor:
        """Closed-form entropy per example, [B]."""
        return 0.5 * (1.0 + LOG_2PI + self.logvar).sum(-1)

    def kl_standard_normal(self) -> Tensor:
        """Per-dimension KL(q || N(0, I)), [B, D]."""
        return 0.5 * (self.mu.pow(2) + self.logvar.exp() - self.logvar - 1.0)

    def detach(self) -> "Posterior":
        return Posterior(self.mu.detach(), self.logvar.detach())


@dataclass
class StepContext:
    """Where training stands; schedules are pure functions of these numbers."""

    step: int = 0  # optimizer updates done before this one
    epoch: int = 0  # 0-based
    epoch_step: int = 0  # updates done in this epoch before this one
    epoch_updates: int = 1  # updates each epoch of the stage makes (the same every epoch)
    steps_per_epoch: float = 1.0  # nominal N_train / batch_size, as the reference code uses
    n_train: int = 1
    batch_size: int = 32
    total_steps: float = 1.0  # nominal steps over all epochs (cyclical schedules)
    training: bool = True
    kl_weight: float = 1.0  # the product of every strategy's factor, set by the stack before the forward pass
    stage: int = 0  # index into the stack's stages(); epoch and step count from the stage's start


@dataclass
class Stage:
    """One stage of a run: its own schedules, learning rate and early stopping."""

    name: str
    epochs: int | None = None
    """Epoch budget of the stage; None: ``train.epochs``."""


@dataclass
class LossTerms:
    """Unweighted per-sentence terms returned by the model.

    ``rec`` and ``kl`` are what the reported -ELBO means: ``rec + kl`` with weight 1, whatever the
    strategy. ``kl_dims`` holds the per-dimension KL when the prior has it in closed form.
    """

    rec: Tensor  # [B] reconstruction NLL summed over targets
    kl: Tensor  # [B]
    kl_dims: Tensor | None  # [B, D] or None
    posterior: Posterior | None  # the posterior the KL is computed on
    z: Tensor | None  # the posterior sample the KL is at, [B, D]; the decoder draws from decoder_posterior
    n_targets: int
    extras: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class Objective:
    """What the optimiser minimises: ``mean(rec) + kl_weight * mean(kl) + sum(w * extra)``.

    Strategies edit a fresh Objective built from :class:`LossTerms`; reported metrics never read it.
    """

    rec: Tensor  # [B]
    kl: Tensor  # [B]
    kl_weight: float
    extras: dict[str, tuple[float, Tensor]] = field(default_factory=dict)
    logs: dict[str, float] = field(default_factory=dict)

    def total(self) -> Tensor:
        loss = self.rec.mean() + self.kl_weight * self.kl.mean()
        for weight, term in self.extras.values():
            loss = loss + weight * term
        return loss


@dataclass
class OptimizerSpec:
    """How to build one group's optimiser; strategies return one for their auxiliary network."""

    kind: str = "sgd"  # "sgd" | "adam"
    lr: float = 1.0
    momentum: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    decays: bool = True
    """Halved (and rebuilt) with the main learning rate at each decay."""

    def build(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        if self.kind == "adam":
            return torch.optim.Adam(params, lr=self.lr, betas=self.betas)
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum)

"""The aggregate posterior q(z) = (1/N) sum_n q(z | x_n) of an evaluation set, in the prior's space."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..types import LOG_2PI, Batch


@dataclass
class AggregatePosterior:
    """An equal-weight mixture of the diagonal-Gaussian posteriors of N sentences."""

    mu: Tensor  # [N, D]
    logvar: Tensor  # [N, D]

    @classmethod
    @torch.no_grad()
    def from_model(cls, model, batches: list[Batch]) -> "AggregatePosterior":
        """Encode ``batches`` with the model's eval-form posterior (the one the evaluator uses)."""
        device = next(model.parameters()).device
        posteriors = [model.posterior(batch.to(device)) for batch in batches]
        return cls(torch.cat([p.mu for p in posteriors]), torch.cat([p.logvar for p in posteriors]))

    @property
    def size(self) -> int:
        return self.mu.size(0)

    @torch.no_grad()
    def log_prob(self, z: Tensor, chunk: int = 4096) -> Tensor:
        """log q(z) for z [S, D] -> [S], exact over all N components.

        The Gaussian exponent is expanded into matrix products in float64, so memory is O(S N)
        rather than O(S N D) and large |z| / small variances lose no precision.
        """
        precision = torch.exp(-self.logvar.double())  # [N, D]
        mu = self.mu.double()
        const = -0.5 * ((mu.pow(2) * precision).sum(-1) + self.logvar.double().sum(-1) + mu.size(1) * LOG_2PI)
        out = []
        for part in z.double().split(chunk):
            quad = part.pow(2) @ precision.T - 2.0 * part @ (mu * precision).T  # [s, N]
            out.append(torch.logsumexp(const - 0.5 * quad, dim=1) - math.log(self.size))
        return torch.cat(out).to(z.dtype)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws: a uniformly chosen sentence, then z ~ q(z | x) of that sentence."""
        index = torch.randint(self.size, (n,), device=self.mu.device, generator=generator)
        eps = torch.randn(n, self.mu.size(1), device=self.mu.device, dtype=self.mu.dtype, generator=generator)
        return self.mu[index] + torch.exp(0.5 * self.logvar[index]) * eps

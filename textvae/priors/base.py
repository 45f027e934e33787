"""The prior interface: p(z) as a module owned by the model, so its weights live in checkpoints.

A prior is a density over the decoder's latent space with a map to a standard-normal base space
(identity for N(0, I), the flow g for the decoupled prior). The evaluator needs only
:meth:`Prior.log_prob`; generation samples the base and maps it back with :meth:`Prior.from_base`.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from ..types import LOG_2PI, Posterior


def standard_normal_log_prob(z: Tensor) -> Tensor:
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


class Prior(nn.Module):
    has_analytic_kl: bool = False

    def __init__(self, config, latent_dim: int):
        super().__init__()
        self.config = config
        self.latent_dim = latent_dim

    def to_base(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Map z -> z0 ~ N(0, I); returns (z0, log|det dz0/dz|) with the logdet of shape z[..., 0]."""
        raise NotImplementedError

    def from_base(self, z0: Tensor) -> Tensor:
        """Inverse of :meth:`to_base`."""
        raise NotImplementedError

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) over the last dimension; any leading shape."""
        z0, logdet = self.to_base(z)
        return standard_normal_log_prob(z0) + logdet

    def sample(self, n: int, device: torch.device | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """n draws from p(z); on the prior's own device unless ``device`` is given."""
        if device is None:
            device = next(itertools.chain(self.parameters(), self.buffers()), torch.empty(0)).device
        z0 = torch.randn(n, self.latent_dim, device=device, generator=generator)
        return self.from_base(z0)

    def kl(self, posterior: Posterior, z: Tensor) -> tuple[Tensor, Tensor | None]:
        """KL(q(z|x) || p(z)) per example and, when closed form, per dimension.

        The default is the dpVAE estimator: -H[q] (closed form) - log p(z) at the posterior sample z.
        """
        return -posterior.entropy() - self.log_prob(z), None

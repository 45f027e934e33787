"""``factor-vae``: a discriminator estimates the total correlation of q(z), which the VAE is penalised
by (Kim & Mnih 2018); the discriminator has its own optimiser."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from ..config import ranged
from ..types import Batch, LossTerms, Objective, OptimizerSpec, StepContext
from .base import Strategy
from .registry import STRATEGIES


@dataclass
class FactorVAEConfig:
    gamma: float = ranged(10.0, ge=0)
    """Weight of the discriminator's total-correlation estimate in the VAE objective."""
    disc_hidden: int = ranged(1000, ge=1)
    disc_layers: int = ranged(5, ge=0)
    """Hidden layers of the discriminator MLP (Kim & Mnih: 5 x 1000, LeakyReLU 0.2)."""
    disc_lr: float = ranged(1e-4, gt=0)
    """Learning rate of the discriminator's own Adam optimiser (betas 0.5, 0.9 as Kim & Mnih)."""


def permute_dims(z: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Shuffle every latent dimension independently across the batch: samples of prod_d q(z_d)."""
    b, d = z.shape
    order = torch.argsort(torch.rand(b, d, device=z.device, generator=generator), dim=0)
    return torch.gather(z, 0, order)


def discriminator(latent_dim: int, hidden: int, layers: int) -> nn.Sequential:
    """Two logits per z: index 0 'drawn from q(z)', index 1 'drawn from prod_d q(z_d)'."""
    modules: list[nn.Module] = []
    width = latent_dim
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
        width = hidden
    modules.append(nn.Linear(width, 2))
    return nn.Sequential(*modules)


@STRATEGIES.register("factor-vae", config=FactorVAEConfig)
class FactorVAE(Strategy):
    """Adds gamma * TC(z), estimated by a permutation discriminator trained with its own optimiser (Kim & Mnih 2018)."""

    paper = "Kim & Mnih 2018, Disentangling by factorising"

    def __init__(self, config: FactorVAEConfig, latent_dim: int):
        super().__init__(config, latent_dim)
        self.discriminator = discriminator(latent_dim, config.disc_hidden, config.disc_layers)
        self.last_disc_loss = float("nan")

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters())

    def auxiliary_optimizer(self) -> OptimizerSpec:
        return OptimizerSpec(kind="adam", lr=self.config.disc_lr, betas=(0.5, 0.9), decays=False)

    def total_correlation(self, z: Tensor) -> Tensor:
        """Density-ratio estimate E[log D(z) / (1 - D(z))] with the discriminator held fixed."""
        # Detached weights: the VAE loss moves the encoder through z, never the discriminator.
        frozen = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        logits = functional_call(self.discriminator, frozen, (z,))
        return (logits[:, 0] - logits[:, 1]).mean()

    def adjust(self, objective: Objective, terms: LossTerms, batch: Batch, ctx: StepContext) -> None:
        tc = self.total_correlation(terms.z)
        objective.extras["tc"] = (self.config.gamma, tc)
        objective.logs["tc"] = float(tc.detach())

    def discriminator_loss(self, z: Tensor) -> Tensor:
        """Cross-entropy of telling z (class 0) from its dimension-wise permutation (class 1)."""
        joint = self.discriminator(z)
        marginals = self.discriminator(permute_dims(z))
        zeros = torch.zeros(z.size(0), dtype=torch.long, device=z.device)
        return 0.5 * (F.cross_entropy(joint, zeros) + F.cross_entropy(marginals, zeros + 1))

    def auxiliary_loss(self, terms: LossTerms, ctx: StepContext) -> Tensor | None:
        # The permuted samples come from the same batch (detached), not from a second batch as in
        # Kim & Mnih's Algorithm 2: the hook sees one batch, and permuting it already breaks the
        # dependence between dimensions.
        if terms.z is None or terms.z.size(0) < 2:
            return None
        # z may come out of a bfloat16 autocast region; the discriminator's own update runs outside it.
        z = terms.z.detach().to(self.discriminator[0].weight.dtype)
        loss = self.discriminator_loss(z)
        self.last_disc_loss = float(loss.detach())
        return loss

    def log_scalars(self) -> dict[str, float | list[float]]:
        return {"disc_loss": self.last_disc_loss}

"""The decoupled prior of dpVAE (Bhalodia et al. 2020): p(z) = N(g(z); 0, I) |det dg/dz|.

g maps the representation space z (where the encoder, the decoder and every regulariser live) to
the generation space z0 ~ N(0, I). It is a stack of RealNVP affine coupling blocks trained jointly
with the VAE; generation samples z0 and decodes g^{-1}(z0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import ranged
from .base import Prior
from .registry import PRIORS


@dataclass
class DecoupledConfig:
    blocks: int = ranged(6, ge=1)
    """Affine coupling blocks; consecutive blocks transform complementary halves of z."""
    hidden: int = ranged(64, ge=1)
    """Width of the hidden layers of each scale and translation network."""
    layers: int = ranged(2, ge=0)
    """Hidden layers per scale and translation network."""


def coupling_net(latent_dim: int, hidden: int, layers: int) -> nn.Sequential:
    modules: list[nn.Module] = []
    width = latent_dim
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.LeakyReLU()]
        width = hidden
    last = nn.Linear(width, latent_dim)
    # A zero last layer makes the block the identity at initialisation: the prior starts as N(0, I)
    # and the KL starts equal to the closed-form one, so training begins like a plain VAE.
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    modules.append(last)
    return nn.Sequential(*modules)


class AffineCoupling(nn.Module):
    """z0 = m*z + (1-m) * (z - t(m*z)) * exp(-s(m*z)); log|det dz0/dz| = -sum((1-m) * s)."""

    def __init__(self, mask: Tensor, hidden: int, layers: int):
        super().__init__()
        self.register_buffer("mask", mask)
        dim = mask.numel()
        self.scale = coupling_net(dim, hidden, layers)
        self.shift = coupling_net(dim, hidden, layers)

    def _scale_shift(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        free = 1.0 - self.mask
        # tanh bounds each block's log-scale to (-1, 1), so neither direction can overflow.
        return torch.tanh(self.scale(kept)) * free, self.shift(kept) * free

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        kept = z * self.mask
        s, t = self._scale_shift(kept)
        return kept + (1.0 - self.mask) * (z - t) * torch.exp(-s), -s.sum(-1)

    def inverse(self, z0: Tensor) -> Tensor:
        kept = z0 * self.mask
        s, t = self._scale_shift(kept)
        return kept + (1.0 - self.mask) * (z0 * torch.exp(s) + t)


def alternating_masks(latent_dim: int, blocks: int) -> list[Tensor]:
    first_half = (torch.arange(latent_dim) < latent_dim // 2).float()
    return [first_half if k % 2 == 0 else 1.0 - first_half for k in range(blocks)]


@PRIORS.register("decoupled", config=DecoupledConfig)
class DecoupledPrior(Prior):
    """dpVAE decoupled prior: RealNVP coupling blocks g: z -> z0 with z0 ~ N(0, I)."""

    has_analytic_kl = False

    def __init__(self, config: DecoupledConfig, latent_dim: int):
        super().__init__(config, latent_dim)
        self.blocks = nn.ModuleList(
            AffineCoupling(mask, config.hidden, config.layers) for mask in alternating_masks(latent_dim, config.blocks)
        )

    def to_base(self, z: Tensor) -> tuple[Tensor, Tensor]:
        logdet = torch.zeros(z.shape[:-1], device=z.device, dtype=z.dtype)
        for block in self.blocks:
            z, block_logdet = block(z)
            logdet = logdet + block_logdet
        return z, logdet

    def from_base(self, z0: Tensor) -> Tensor:
        for block in reversed(self.blocks):
            z0 = block.inverse(z0)
        return z0

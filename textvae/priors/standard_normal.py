"""The default prior p(z) = N(0, I) (``standard-normal``), with the closed-form KL."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..types import Posterior
from .base import Prior
from .registry import PRIORS


@dataclass
class StandardNormalConfig:
    pass


@PRIORS.register("standard-normal", config=StandardNormalConfig)
class StandardNormal(Prior):
    """p(z) = N(0, I), with the analytic per-dimension KL."""

    has_analytic_kl = True

    def to_base(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z, torch.zeros(z.shape[:-1], device=z.device, dtype=z.dtype)

    def from_base(self, z0: Tensor) -> Tensor:
        return z0

    def kl(self, posterior: Posterior, z: Tensor) -> tuple[Tensor, Tensor]:
        dims = posterior.kl_standard_normal()
        return dims.sum(-1), dims

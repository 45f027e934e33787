"""DU-VAE: diversity and uncertainty (Shen et al. 2021, IJCAI, "Regularizing Variational Autoencoder with
Diversity and Uncertainty Awareness"; DU ``modules/encoders/enc_lstm.py``, ``encoder.py``;
docs/methods/batchnorm.md). Hook: ``transform_posterior``.

1. BatchNorm on the posterior mean whose trainable scale w is used as gamma * w / RMS(w), so its
   root-mean-square is always gamma (direction learnable, norm fixed); learnable shift (init 0).
   The reference rescales ``w.data`` in place before each forward pass and takes the gradient on the
   rescaled weight; by default the rescaling here is part of the graph (``scale = "differentiable"``),
   which gives the same forward pass without mutating parameters in forward; ``scale = "in-place"``
   does what the reference does in training (docs/parity.md, lockstep).
2. A variance floor: var <- var_raw + delta_rate / (2 pi e), so each dimension's entropy is >= log(delta_rate) / 2.
3. Inverted dropout (drop fraction ``p_drop``) on the floor-free variance in training; dropped
   dimensions fall to the floor and pay more KL. The KL is computed on this variance in training;
   evaluation uses the deterministic posterior (no dropout, running BN statistics; the floor as below).

2 and 3 are gated, as in the reference, on the KL weight having reached 1; BN always applies (batches of
one pass through it unnormalised in training). In evaluation the DU code gates the floor on the weight
of the latest training step too (it reads one process-wide weight), so validation during the warm-up
scores the floor-free posterior; ``eval_floor = "always"`` floors every evaluation instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ranged
from ..errors import ConfigError
from ..types import Posterior, StepContext
from .base import Strategy
from .bn_vae import normalise_mean
from .registry import STRATEGIES


@dataclass
class DUVAEConfig:
    gamma: float = ranged(0.5, gt=0)
    """Root-mean-square of the BatchNorm scale (README Yelp setting 0.5; Table 1 Yahoo 0.6)."""
    p_drop: float = ranged(0.2, ge=0, lt=1)
    """Fraction of variance entries dropped (the paper's keep rate 0.8 = 1 - p_drop)."""
    delta_rate: float = ranged(1.0, ge=0)
    """alpha of the variance floor alpha / (2 pi e); 0 disables the floor."""
    scale: Literal["differentiable", "in-place"] = "differentiable"
    """How the scale keeps RMS gamma in training: ``differentiable`` uses gamma * w / RMS(w) in the graph
    (the gradient sees the renormalisation); ``in-place`` rescales w itself to RMS gamma before each
    training forward pass and uses it as the scale (the gradient acts on the rescaled w), as the DU
    code does. The forward pass is the same; the updates differ (docs/parity.md)."""
    eval_floor: Literal["after-warm-up", "always"] = "after-warm-up"
    """When evaluation adds the floor: ``after-warm-up`` only if the latest training step ran at KL
    weight 1 (the DU code); ``always`` in every evaluation."""

    def __post_init__(self) -> None:
        if self.p_drop > 0 and self.delta_rate == 0:
            # A dropped variance would be exactly 0: log-variance -inf.
            raise ConfigError("strategies.du-vae: p_drop > 0 needs a variance floor (delta_rate > 0)")


@STRATEGIES.register("du-vae", config=DUVAEConfig)
class DUVAE(Strategy):
    """DU-VAE: BN on the mean with a fixed-RMS scale, a variance floor, dropout on the variance (Shen et al. 2021)."""

    paper = "Shen et al. 2021, Regularizing Variational Autoencoder with Diversity and Uncertainty Awareness"

    def __init__(self, config: DUVAEConfig, latent_dim: int):
        super().__init__(config, latent_dim)
        self.stats = nn.BatchNorm1d(latent_dim, affine=False)
        self.weight = nn.Parameter(torch.full((latent_dim,), config.gamma))
        self.bias = nn.Parameter(torch.zeros(latent_dim))
        # Whether the latest training step ran at KL weight 1; saved with the model so that a later
        # evaluation of a checkpoint floors exactly when the run's evaluation did. True before any
        # training step, as the reference's evaluation-only mode sets the weight to 1.
        self.register_buffer("floor_on", torch.tensor(True))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints written before the buffer existed were always evaluated with the floor.
        state_dict.setdefault(prefix + "floor_on", torch.tensor(True))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def scale(self) -> Tensor:
        """The BatchNorm scale in use: the trainable weight renormalised to RMS gamma."""
        return self.config.gamma * self.weight / self.weight.pow(2).mean().sqrt()

    def transform_posterior(self, posterior: Posterior, ctx: StepContext) -> Posterior:
        training = self.training and ctx.training
        scale = self.scale()
        if training and self.config.scale == "in-place" and posterior.mu.size(0) > 1:
            with torch.no_grad():
                self.weight.copy_(scale)
            scale = self.weight
        mu = normalise_mean(self.stats, posterior.mu, scale, self.bias, training)
        if ctx.training:
            floored = ctx.kl_weight >= 1.0
            self.floor_on.fill_(floored)
        else:
            floored = self.config.eval_floor == "always" or bool(self.floor_on)
        if not floored:
            return Posterior(mu, posterior.logvar)
        var = posterior.logvar.exp()
        if training and self.config.p_drop > 0:
            var = F.dropout(var, self.config.p_drop, training=True)
        floor = self.config.delta_rate / (2 * math.pi * math.e)
        return Posterior(mu, torch.log(var + floor))

    def evaluation_note(self) -> str | None:
        if self.config.eval_floor == "always" or bool(self.floor_on) or self.config.delta_rate == 0:
            return None
        return "du-vae: scored without the variance floor (the last training step's KL weight was below 1)"

"""Free bits: no KL pressure below a threshold (Kingma et al. 2016; Li et al. 2019). Hook: ``adjust``.

Several methods share the name (docs/methods/kl-floors.md); ``mode`` picks one and ``threshold``
is in the unit the mode names:

=================  ==========================================================  ====================
mode               KL term the optimiser sees                                  reference
=================  ==========================================================  ====================
``per-dim``        per sentence and dimension, KL_{x,d} only where > threshold  LI/BN ``--fb 2``
                   (threshold in nats per dimension; LI's target_kl / nz)
``per-example``    per sentence, KL(x) only where > threshold (nats/sentence)   LI/BN ``--fb 1``
``batch``          all of the batch's KL only when its mean > threshold          LI ``--fb 3``
                   (nats per sentence, averaged over the batch)
``per-dim-batch``  per dimension, the batch-mean KL_d only where > threshold    Kingma et al. 2016
                   (nats per dimension, averaged over the batch)
=================  ==========================================================  ====================

Masking, as the reference code does, has the gradient of max(threshold, KL): zero for masked terms.
Only the Objective's ``kl`` is replaced; the logged and reported KL (``LossTerms.kl``) stays the full one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor

from ..config import ranged
from ..types import Batch, LossTerms, Objective, StepContext
from .base import Strategy
from .registry import STRATEGIES

PER_DIMENSION_MODES = ("per-dim", "per-dim-batch")


@dataclass
class FreeBitsConfig:
    mode: Literal["per-dim", "per-example", "batch", "per-dim-batch"] = "per-dim"
    threshold: float = ranged(0.1, ge=0)
    """Free nats, in the unit ``mode`` names (per-dim: nats per dimension per sentence)."""



def masked_kl(kl: Tensor, kl_dims: Tensor | None, mode: str, threshold: float) -> Tensor:
    """Per-sentence KL [B] with the terms at or below ``threshold`` removed (see the module table)."""
    if mode == "per-dim":
        return (kl_dims * (kl_dims > threshold)).sum(-1)
    if mode == "per-dim-batch":
        return (kl_dims * (kl_dims.mean(0) > threshold)).sum(-1)
    if mode == "per-example":
        return kl * (kl > threshold)
    return kl * (kl.mean() > threshold)


@STRATEGIES.register("free-bits", config=FreeBitsConfig)
class FreeBits(Strategy):
    """Free bits: the KL term is dropped wherever it is below a threshold (per-dim, per-example or batch;
    Li et al. 2019)."""

    paper = "Kingma et al. 2016 (IAF); per-dimension variant of Li et al. 2019 (EMNLP)"

    def __init__(self, config: FreeBitsConfig, latent_dim: int):
        super().__init__(config, latent_dim)
        # Instance attribute: the base class checks it in attach() against the prior.
        self.requires_analytic_kl = config.mode in PER_DIMENSION_MODES

    def adjust(self, objective: Objective, terms: LossTerms, batch: Batch, ctx: StepContext) -> None:
        objective.kl = masked_kl(terms.kl, terms.kl_dims, self.config.mode, self.config.threshold)

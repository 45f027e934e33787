"""Low- and high-posterior latents (dpVAE §4.1, after Rosca et al. 2018).

Low-posterior (LP): drawn from the prior, kept where the aggregate posterior is lowest — the
"pockets" generation samples but no training sentence occupies. High-posterior (HP): drawn from
the aggregate posterior, kept where the generation-space density N(f(z)) is lowest — the "leaks"
generation rarely reaches. Both are returned in the prior's space; decode them after
``model.to_decoder_space``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .aggregate import AggregatePosterior
from .leakage import generation_log_density


def _lowest(z: Tensor, score: Tensor, n_keep: int) -> tuple[Tensor, Tensor]:
    order = torch.argsort(score)[:n_keep]
    return z[order], score[order]


@torch.no_grad()
def low_posterior_latents(model, aggregate: AggregatePosterior, n_candidates: int, n_keep: int,
                          generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The n_keep of n_candidates prior samples with the lowest log q(z); returns (z, log q(z))."""
    z = model.prior.sample(n_candidates, device=aggregate.mu.device, generator=generator)
    return _lowest(z, aggregate.log_prob(z), n_keep)


@torch.no_grad()
def high_posterior_latents(model, aggregate: AggregatePosterior, n_candidates: int, n_keep: int,
                           generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The n_keep of n_candidates q(z) samples with the lowest log N(f(z)); returns (z, log N(f(z)))."""
    z = aggregate.sample(n_candidates, generator=generator)
    return _lowest(z, generation_log_density(model.prior, z), n_keep)

"""Symmetric KL between the aggregate posterior and the prior, estimated by sampling (dpVAE §5.1)."""

from __future__ import annotations

import torch

from .aggregate import AggregatePosterior


@torch.no_grad()
def symmetric_kl(model, aggregate: AggregatePosterior, n_samples: int = 5000,
                 generator: torch.Generator | None = None) -> dict[str, float]:
    """KL(q || p) + KL(p || q) in the representation space, each a Monte-Carlo mean over n_samples.

    q is the mixture of the evaluation set's posteriors (a sample's own component included, as in
    the whole-set MI estimator), p is the model's prior density ``model.log_prior``.
    """
    device = aggregate.mu.device
    from_q = aggregate.sample(n_samples, generator=generator)
    from_p = model.prior.sample(n_samples, device=device, generator=generator)
    kl_q_p = (aggregate.log_prob(from_q) - model.log_prior(from_q)).mean().item()
    kl_p_q = (model.log_prior(from_p) - aggregate.log_prob(from_p)).mean().item()
    return {"kl_q_p": kl_q_p, "kl_p_q": kl_p_q, "skl": kl_q_p + kl_p_q}

"""One pass over an evaluation set collecting everything that needs a single posterior per sentence:
the posteriors themselves (for MI and AU), the reported KL and, optionally, the single-sample
reconstruction term of the -ELBO."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..progress import Progress
from ..types import Posterior
from .protocol import LatentVariableModel, model_device, to_device

log = logging.getLogger(__name__)

KL_ANALYTIC = "analytic"
KL_MONTE_CARLO = "monte-carlo"


@dataclass
class PosteriorPass:
    posteriors: list[Posterior]  # per input batch, on the model's device
    kl: Tensor  # [N]
    kl_dims: Tensor | None  # [N, D] when the prior's KL is closed form
    kl_estimator: str
    rec: Tensor | None  # [N] -log p(x|z), one posterior sample each
    trained: list[Posterior] | None = None  # the posteriors the training KL is on, where they differ
    kl_trained: Tensor | None = None  # [N] their KL

    @property
    def n_sentences(self) -> int:
        return self.kl.numel()

    @property
    def mu(self) -> Tensor:
        return torch.cat([p.mu for p in self.posteriors])


def kl_divergence(model: LatentVariableModel, posterior: Posterior, generator: torch.Generator,
                  samples: int) -> tuple[Tensor, Tensor | None, str]:
    """KL(q(z|x) || p(z)) per sentence, per dimension when closed form, and how it was computed.

    Closed form when the model's ``prior.has_analytic_kl``; otherwise Monte Carlo
    -H[q] - mean_s log p(z_s) over ``samples`` posterior samples. No latent: 0.
    """
    if model.latent_dim == 0:
        return torch.zeros(posterior.mu.size(0), device=posterior.mu.device), None, KL_ANALYTIC
    prior = getattr(model, "prior", None)
    if prior is not None and prior.has_analytic_kl:
        kl, dims = prior.kl(posterior, posterior.mu)
        return kl, dims, KL_ANALYTIC
    z = posterior.sample(samples, generator=generator)
    return -posterior.entropy() - model.log_prior(z).mean(dim=1), None, KL_MONTE_CARLO


def posterior_pass(model: LatentVariableModel, batches: Iterable[Any], *, generator: torch.Generator,
                   reconstruct: bool, kl_samples: int, progress: bool = False,
                   what: str = "posterior pass") -> PosteriorPass:
    device = model_device(model)
    batches = list(batches)
    posteriors, kls, dims, recs = [], [], [], []
    estimator = KL_ANALYTIC
    # A model whose decoder sees another posterior than its training KL (Scale-VAE) also reports
    # the trained posterior's KL, MI and AU: ``decodes_other_posterior`` and ``trained_posterior``.
    other = getattr(model, "decodes_other_posterior", None)
    trained, kls_trained = ([], []) if callable(other) and other() else (None, None)
    with Progress(what, len(batches), "batch", log, progress) as bar:
        for batch in batches:
            batch = to_device(batch, device)
            posterior = model.posterior(batch)
            if trained is not None:
                raw = model.trained_posterior(batch)
                trained.append(raw)
                kls_trained.append(kl_divergence(model, raw, generator, kl_samples)[0].double().cpu())
            kl, kl_dims, estimator = kl_divergence(model, posterior, generator, kl_samples)
            kls.append(kl.double().cpu())
            if kl_dims is not None:
                dims.append(kl_dims.double().cpu())
            if reconstruct:
                z = posterior.sample(1, generator=generator)
                recs.append(-model.log_likelihood(batch, z).squeeze(1).double().cpu())
            posteriors.append(posterior)
            bar.update()
    if not posteriors:
        raise ValueError("no sentences to evaluate")
    return PosteriorPass(
        posteriors=posteriors,
        kl=torch.cat(kls),
        kl_dims=torch.cat(dims) if dims else None,
        kl_estimator=estimator,
        rec=torch.cat(recs) if reconstruct else None,
        trained=trained,
        kl_trained=None if kls_trained is None else torch.cat(kls_trained),
    )

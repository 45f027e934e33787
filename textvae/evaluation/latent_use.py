"""Where a model's NLL goes: the importance-weighted NLL split into reconstruction, KL and the gain
of importance sampling over the ELBO, and how much the decoder uses z: its reconstruction with z drawn
from the posterior against z drawn from the prior (docs/evaluation.md, "Where the NLL goes").

A decoder that ignores z reconstructs as well from a prior sample as from a posterior one
(``latent_use`` = 0); every nat of ``latent_use`` is information about the sentence that the
decoder reads from z. Both reconstructions are Monte-Carlo means over ``samples`` latents per
sentence, drawn with the same generator, so the difference is not one of estimators.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ..errors import ConfigError
from .protocol import (
    LatentVariableModel,
    evaluation_mode,
    make_generator,
    model_device,
    to_device,
)


def nll_decomposition(results: dict[str, Any]) -> dict[str, float]:
    """NLL = ``rec`` + ``kl`` − ``iw_gain`` from an evaluation's results (per-sentence nats):
    ``iw_gain`` = −ELBO − NLL is what importance sampling recovers of the bound's gap."""
    return {"rec": float(results["rec"]), "kl": float(results["kl"]),
            "iw_gain": float(results["elbo"]) - float(results["nll"])}


def latent_use(model: LatentVariableModel, batches: Iterable[Any], *, samples: int = 10,
               seed: int = 0) -> dict[str, float]:
    """Mean −log p(x|z) per sentence with z ~ q(z|x) (``rec_posterior``) and with z ~ p(z)
    (``rec_prior``), their difference ``latent_use`` and the number of ``samples`` per sentence.

    The model must have ``prior.from_base`` (a prior sampled from standard-normal noise, as every
    textvae prior). A model without latent (``latent_dim`` 0, the LSTM-LM) is scored once: both
    reconstructions are its exact NLL and ``latent_use`` is 0.
    """
    if samples < 1:
        raise ConfigError(f"latent_use: samples must be at least 1, got {samples}")
    dim = model.latent_dim
    prior = getattr(model, "prior", None)
    if dim > 0 and not callable(getattr(prior, "from_base", None)):
        raise ConfigError("latent_use needs a model whose prior can be sampled "
                          "(model.prior.from_base)")
    draws = samples if dim > 0 else 1
    device = model_device(model)
    generator = make_generator(seed, device)
    total_post = total_prior = 0.0
    n = 0
    with evaluation_mode(model):
        for batch in batches:
            batch = to_device(batch, device)
            post = model.posterior(batch)
            size = post.mu.size(0)
            eps = torch.randn(size, draws, dim, device=device, generator=generator)
            z_post = post.mu.unsqueeze(1) + post.std.unsqueeze(1) * eps
            noise = torch.randn(size, draws, dim, device=device, generator=generator)
            z_prior = prior.from_base(noise) if dim else z_post
            total_post -= model.log_likelihood(batch, z_post).double().mean(1).sum().item()
            total_prior -= model.log_likelihood(batch, z_prior).double().mean(1).sum().item()
            n += size
    n = max(n, 1)
    rec_post, rec_prior = total_post / n, total_prior / n
    return {"rec_posterior": rec_post, "rec_prior": rec_prior, "latent_use": rec_prior - rec_post,
            "samples": draws}

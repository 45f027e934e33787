"""The evaluator's entry points: the full test-set evaluation and the cheaper per-epoch validation."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..config import EvalConfig
from .importance import Precision, iw_log_likelihood
from .information import MIEstimator, active_units, check_estimator, mutual_information
from .posterior_pass import PosteriorPass, posterior_pass
from .protocol import CountTargets, LatentVariableModel, batch_targets, evaluation_mode, make_generator, model_device

KL_SAMPLES = 100
"""Posterior samples for the Monte-Carlo KL when the prior has no closed-form KL."""


def perplexity(nats_per_target: float) -> float:
    """exp of the per-token loss; inf (not OverflowError) for a diverged model's huge loss."""
    return math.exp(nats_per_target) if nats_per_target < 700 else (math.inf if nats_per_target > 0 else math.nan)


def evaluate(
    model: LatentVariableModel,
    batches: Iterable[Any],
    *,
    iw_samples: int = 500,
    max_tokens: int | None = None,
    mi_estimator: MIEstimator = "whole-set",
    au_threshold: float = 0.01,
    seed: int = 0,
    kl_samples: int = KL_SAMPLES,
    precision: Precision = "float32",
    count_targets: CountTargets = batch_targets,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate a latent-variable model on a set of sentences (per-sentence means, nats).

    Keys: ``nll`` (importance-weighted, ``iw_samples`` samples; exact for a model without latent),
    ``iw_ppl``, ``elbo`` (the -ELBO: ``rec`` with one posterior sample + ``kl``), ``rec``, ``kl``,
    ``kl_estimator``, ``ppl`` (from the -ELBO), ``kl_dims`` (mean KL per dimension, or None),
    ``mi`` and ``mi_estimator``, ``au``, ``au_threshold``, ``au_variances``, ``n_sentences``,
    ``n_targets``, ``iw_samples`` (the number used), ``seed``, ``precision``; ``evaluation_notes`` when a
    strategy changes what is scored (SA-VAE's refined posterior). A model whose decoder sees another
    posterior than its training KL (Scale-VAE) adds ``kl_train`` (the KL as trained),
    ``objective`` (``rec`` + ``kl_train``, the training loss at KL weight 1), ``mi_unscaled`` and
    ``au_unscaled`` (MI and AU of that trained posterior); ``kl``, ``mi`` and ``au`` are always those of
    the scored model (the model's ``posterior``).
    Perplexities divide by ``n_targets`` (words plus ``</s>``). Deterministic for a given seed,
    batching and ``max_tokens``. The model is put in eval mode and its mode restored afterwards.
    """
    check_estimator(mi_estimator)
    batches = list(batches)
    n_targets = sum(count_targets(b) for b in batches)
    with evaluation_mode(model):
        generator = make_generator(seed, model_device(model))
        stats = posterior_pass(model, batches, generator=generator, reconstruct=True, kl_samples=kl_samples,
                               progress=progress, what="posterior pass (KL, MI, AU)")
        result = _elbo_terms(stats, n_targets)
        result.update(_collapse_diagnostics(stats, mi_estimator, au_threshold, generator))
        log_px = iw_log_likelihood(model, batches, samples=iw_samples, max_tokens=max_tokens, generator=generator,
                                   count_targets=count_targets, precision=precision, progress=progress)
    nll_sum = -log_px.sum().item()
    strategy = getattr(model, "strategy", None)
    notes = strategy.evaluation_notes() if hasattr(strategy, "evaluation_notes") else []
    return {
        **({"evaluation_notes": notes} if notes else {}),
        "nll": nll_sum / stats.n_sentences,
        "iw_ppl": perplexity(nll_sum / n_targets),
        **result,
        "n_sentences": stats.n_sentences,
        "n_targets": n_targets,
        "iw_samples": iw_samples if model.latent_dim else 1,
        "seed": seed,
        "precision": precision,
    }


def evaluate_run_model(model: LatentVariableModel, batches: Iterable[Any], config: EvalConfig, *, seed: int,
                       progress: bool = False) -> tuple[dict[str, Any], Latents | None]:
    """:func:`evaluate` with the settings of a run's ``eval`` config section (and, for a model that
    decodes rescaled latents, the ``scale_reading`` it was scored under). With ``eval.latent_clutter``
    the results also score the labels from the posterior means, which come back second (else None)."""
    results = evaluate(model, batches, iw_samples=config.iw_samples, max_tokens=config.max_tokens,
                       mi_estimator=config.mi_estimator, au_threshold=config.au_threshold, seed=seed,
                       precision=config.precision, progress=progress)
    other = getattr(model, "decodes_other_posterior", None)
    if callable(other) and other():
        results["scale_reading"] = model.scale_reading
    if not config.latent_clutter:
        return results, None
    scores, latents = latent_clutter(model, batches, seed=seed)
    results.update(scores)
    return results, latents


@dataclass
class Latents:
    means: np.ndarray
    """Posterior means [N, D] in the space the decoder reads, in batch order."""
    labels: np.ndarray
    index: np.ndarray | None = None
    """Each row's position in its split file (batches reorder sentences by length)."""


def latent_clutter(model: LatentVariableModel, batches: Iterable[Any], *,
                   seed: int = 0) -> tuple[dict[str, Any], Latents]:
    """:func:`~textvae.latent_metrics.clutter.component_clutter` of the batches' labels from their
    posterior means in the space the decoder reads; returns the scores and the means."""
    from ..errors import DataError
    from ..latent_metrics.clutter import component_clutter

    to_decoder_space = getattr(model, "to_decoder_space", lambda z: z)
    means, labels, index = [], [], []
    with evaluation_mode(model), torch.inference_mode():
        for batch in batches:
            if batch.labels is None:
                raise DataError("eval.latent_clutter needs a labeled split (label<TAB>text lines)")
            means.append(to_decoder_space(model.posterior(batch).mu).float().cpu())
            labels.append(batch.labels.cpu())
            index.append(batch.index)
    positions = None if any(i is None for i in index) else torch.cat(index).numpy()
    latents = Latents(torch.cat(means).numpy(), torch.cat(labels).numpy(), positions)
    return component_clutter(latents.means, latents.labels, seed=seed), latents


def epoch_diagnostics(
    model: LatentVariableModel,
    batches: Iterable[Any],
    *,
    full: bool = True,
    mi_estimator: MIEstimator = "whole-set",
    au_threshold: float = 0.01,
    seed: int = 0,
    kl_samples: int = KL_SAMPLES,
    count_targets: CountTargets = batch_targets,
    progress: bool = False,
) -> dict[str, Any]:
    """Validation metrics for the training log, without importance sampling.

    Always ``rec``, ``kl``, ``elbo`` (the -ELBO, for model selection), ``ppl`` and ``kl_estimator``
    (plus ``kl_train`` and ``objective`` as in :func:`evaluate`);
    with ``full`` also the collapse diagnostics ``kl_dims`` (mean KL per dimension, or None when
    the prior's KL is not closed form), ``mi``, ``mi_estimator``, ``au``, ``au_threshold`` and
    ``au_variances``. The fixed ``seed`` gives every epoch the same noise, so epochs compare fairly.
    """
    check_estimator(mi_estimator)
    batches = list(batches)
    n_targets = sum(count_targets(b) for b in batches)
    with evaluation_mode(model):
        generator = make_generator(seed, model_device(model))
        stats = posterior_pass(model, batches, generator=generator, reconstruct=True, kl_samples=kl_samples,
                               progress=progress, what="validation")
        result = _elbo_terms(stats, n_targets)
        if full:
            result.update(_collapse_diagnostics(stats, mi_estimator, au_threshold, generator))
    return result


def _elbo_terms(stats: PosteriorPass, n_targets: int) -> dict[str, Any]:
    rec_sum, kl_sum = stats.rec.sum().item(), stats.kl.sum().item()
    n = stats.n_sentences
    out = {
        "elbo": (rec_sum + kl_sum) / n,
        "rec": rec_sum / n,
        "kl": kl_sum / n,
        "kl_estimator": stats.kl_estimator,
        "ppl": perplexity((rec_sum + kl_sum) / n_targets),
    }
    if stats.kl_trained is not None:
        out["kl_train"] = stats.kl_trained.sum().item() / n
        out["objective"] = out["rec"] + out["kl_train"]
    return out


def _collapse_diagnostics(stats: PosteriorPass, mi_estimator: MIEstimator, au_threshold: float,
                          generator: torch.Generator) -> dict[str, Any]:
    au, variances = active_units(stats.mu, au_threshold)
    out = {
        "kl_dims": None if stats.kl_dims is None else stats.kl_dims.mean(0).tolist(),
        "mi": mutual_information(stats.posteriors, mi_estimator, generator),
        "mi_estimator": mi_estimator,
        "au": au,
        "au_threshold": au_threshold,
        "au_variances": variances.tolist(),
    }
    if stats.trained is not None:
        out["mi_unscaled"] = mutual_information(stats.trained, mi_estimator, generator)
        out["au_unscaled"] = active_units(torch.cat([p.mu for p in stats.trained]), au_threshold)[0]
    return out

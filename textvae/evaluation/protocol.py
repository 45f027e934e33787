"""What the evaluator needs from a model, and the small helpers every pass shares.

The evaluator never looks inside a model: it asks for q(z|x), log p(x|z) and log p(z), all in
one latent space. ``batches`` are opaque objects handed back to the model unchanged; the
evaluator only counts their predicted tokens (for perplexities) through ``count_targets``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from ..types import Batch, Posterior


@runtime_checkable
class LatentVariableModel(Protocol):
    """p(x, z) = p(z) p(x|z) with a proposal q(z|x).

    * ``latent_dim``: size of z; 0 for a model without latent (its log w is log p(x), exact).
    * ``posterior(batch)``: the eval-form q(z|x) as a diagonal Gaussian, one row per sentence,
      expressed in the space where ``log_prior`` is a density (strategies that transform the
      posterior or rescale the latent do so inside this method).
    * ``log_likelihood(batch, z)``: log p(x|z) for z of shape [B, K, D]; returns [B, K] in float32
      or wider.
    * ``log_prior(z)``: log p(z) over the last dimension, any leading shape.

    An optional ``prior`` attribute with ``has_analytic_kl`` and ``kl(posterior, z)`` lets the
    reported KL be closed form; otherwise it is estimated by Monte Carlo from ``log_prior``.
    An optional ``pass_memory()`` (bytes per row, per row x target and per sentence x target of
    ``log_likelihood``, see :func:`~textvae.evaluation.importance.gpu_pass_limits`) sizes passes on
    a GPU; without it they are sized for a paper-size LSTM decoder.
    """

    latent_dim: int

    def posterior(self, batch: Any) -> Posterior: ...

    def log_likelihood(self, batch: Any, z: Tensor) -> Tensor: ...

    def log_prior(self, z: Tensor) -> Tensor: ...


CountTargets = Callable[[Any], int]


def batch_targets(batch: Batch) -> int:
    """Predicted tokens of a :class:`~textvae.types.Batch`: words plus ``</s>``, never ``<s>``."""
    return batch.n_targets()


def model_device(model: Any) -> torch.device:
    parameters = getattr(model, "parameters", None)
    first = next(iter(parameters()), None) if callable(parameters) else None
    return first.device if first is not None else torch.device("cpu")


def to_device(batch: Any, device: torch.device) -> Any:
    """Move :class:`Batch` objects to the model's device; other batch types are the model's business."""
    return batch.to(device) if isinstance(batch, Batch) and batch.tokens.device != device else batch


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


@contextmanager
def evaluation_mode(model: Any) -> Iterator[None]:
    """Eval mode (no dropout, BatchNorm running statistics) and no autograd; the mode is restored.

    ``inference_mode`` unless the model computes its posterior with gradients (SA-VAE's SVI refines
    q(z|x) at test time too): then ``no_grad``, inside which such a strategy enables gradients itself.
    """
    was_training = getattr(model, "training", None)
    if was_training is not None:
        model.eval()
    strategy = getattr(model, "strategy", None)
    no_autograd = torch.no_grad() if getattr(strategy, "needs_grad_in_eval", False) else torch.inference_mode()
    try:
        with no_autograd:
            yield
    finally:
        if was_training:
            model.train()

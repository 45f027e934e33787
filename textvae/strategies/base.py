"""The strategy interface: every anti-collapse method is one subclass plus a registry entry.

A strategy is an ``nn.Module`` (so BatchNorm layers, buffers and schedule state land in checkpoints)
that overrides any of the hooks below; the model and the trainer call the whole stack in order.

==========================  =====================================================================
hook                        used for
==========================  =====================================================================
``attach(model)``           check compatibility with the model/prior; gets ``self.model``
``on_fit_start(ctx)``       load pretrained weights, reset modules (encoder pretraining)
``kl_weight(ctx)``          a multiplicative factor on the KL weight (annealing, cyclical, beta)
``transform_posterior``     change q(z|x) itself (BN-VAE, DU-VAE, delta-VAE); the KL uses it
``decoder_posterior``       the distribution the decoder's z is drawn from (Scale-VAE)
``to_prior_space`` /
``from_prior_space``        the elementwise affine map between decoder space and prior space that
                            makes the generative model consistent (Scale-VAE's f); evaluation and
                            generation use it
``adjust(objective, ...)``  reweight or replace objective terms, add extra terms (free bits, MMD)
``after_step(terms, ctx)``  bookkeeping or auxiliary optimiser steps after the VAE update
``on_epoch_start/end``      epoch-level state (Scale-VAE's averaged factor)
``train_step``              replace the default update (at most one per stack)
``log_scalars()``           values for the metrics log
==========================  =====================================================================

Hooks see :class:`~textvae.types.StepContext`; ``ctx.training`` is False in evaluation, where
every strategy must act deterministically (its "eval form").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor, nn

from ..types import Batch, LossTerms, Objective, Posterior, StepContext

if TYPE_CHECKING:
    from ..models.vae import TextVAE


class Strategy(nn.Module):
    paper: str = ""
    requires_analytic_kl: bool = False
    registry_name: str = ""

    def __init__(self, config, latent_dim: int):
        super().__init__()
        self.config = config
        self.latent_dim = latent_dim

    @property
    def model(self) -> "TextVAE":
        return self.__dict__["_model"]

    def attach(self, model: "TextVAE") -> None:
        # Stored outside nn.Module's registry: the model owns the strategy, not the reverse.
        self.__dict__["_model"] = model
        if self.requires_analytic_kl and not model.prior.has_analytic_kl:
            from ..errors import ConfigError

            raise ConfigError(
                f"strategies.{self.registry_name}: needs a prior with a closed-form per-dimension KL; "
                f"prior '{model.prior.registry_name}' has none"
            )

    def on_fit_start(self, ctx: StepContext) -> None:
        pass

    def kl_weight(self, ctx: StepContext) -> float:
        return 1.0

    def transform_posterior(self, posterior: Posterior, ctx: StepContext) -> Posterior:
        return posterior

    def decoder_posterior(self, posterior: Posterior, ctx: StepContext) -> Posterior:
        return posterior

    def prior_space_scale(self) -> Tensor | None:
        """Per-dimension a with z_decoder = a * z_prior, or None for the identity."""
        return None

    def adjust(self, objective: Objective, terms: LossTerms, batch: Batch, ctx: StepContext) -> None:
        pass

    def after_step(self, terms: LossTerms, ctx: StepContext) -> None:
        pass

    def on_epoch_start(self, ctx: StepContext) -> None:
        pass

    def on_epoch_end(self, ctx: StepContext) -> None:
        pass

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        """Parameters this strategy optimises itself (a discriminator); the VAE optimiser skips them."""
        return []

    has_train_step: bool = False

    def train_step(self, trainer, batch: Batch, ctx: StepContext) -> LossTerms:
        raise NotImplementedError

    def log_scalars(self) -> dict[str, float | list[float]]:
        return {}


class StrategyStack(nn.Module):
    """The ordered strategies of a run, called as one."""

    def __init__(self, strategies: list[Strategy]):
        super().__init__()
        self.items = nn.ModuleList(strategies)
        steppers = [s.registry_name for s in strategies if s.has_train_step]
        if len(steppers) > 1:
            from ..errors import ConfigError

            raise ConfigError(f"strategies {steppers} each replace the training step; use one of them")

    def __iter__(self):
        return iter(self.items)

    @property
    def names(self) -> list[str]:
        return [s.registry_name for s in self.items]

    def attach(self, model) -> None:
        for s in self.items:
            s.attach(model)

    def on_fit_start(self, ctx: StepContext) -> None:
        for s in self.items:
            s.on_fit_start(ctx)

    def kl_weight(self, ctx: StepContext) -> float:
        if not ctx.training:
            return 1.0
        w = 1.0
        for s in self.items:
            w *= s.kl_weight(ctx)
        return w

    def transform_posterior(self, posterior: Posterior, ctx: StepContext) -> Posterior:
        for s in self.items:
            posterior = s.transform_posterior(posterior, ctx)
        return posterior

    def decoder_posterior(self, posterior: Posterior, ctx: StepContext) -> Posterior:
        for s in self.items:
            posterior = s.decoder_posterior(posterior, ctx)
        return posterior

    def prior_space_scale(self) -> Tensor | None:
        scale = None
        for s in self.items:
            a = s.prior_space_scale()
            if a is not None:
                scale = a if scale is None else scale * a
        return scale

    def objective(self, terms: LossTerms, batch: Batch, ctx: StepContext) -> Objective:
        objective = Objective(rec=terms.rec, kl=terms.kl, kl_weight=ctx.kl_weight)
        for s in self.items:
            s.adjust(objective, terms, batch, ctx)
        return objective

    def after_step(self, terms: LossTerms, ctx: StepContext) -> None:
        for s in self.items:
            s.after_step(terms, ctx)

    def on_epoch_start(self, ctx: StepContext) -> None:
        for s in self.items:
            s.on_epoch_start(ctx)

    def on_epoch_end(self, ctx: StepContext) -> None:
        for s in self.items:
            s.on_epoch_end(ctx)

    def train_step_owner(self) -> Strategy | None:
        return next((s for s in self.items if s.has_train_step), None)

    def log_scalars(self) -> dict[str, float | list[float]]:
        out: dict[str, float | list[float]] = {}
        for s in self.items:
            for key, value in s.log_scalars().items():
                out[f"{s.registry_name}/{key}"] = value
        return out


"""The strategy interface: every anti-collapse method is one subclass plus a registry entry.

A strategy is an ``nn.Module`` (so BatchNorm layers, buffers and schedule state land in checkpoints)
that overrides any of the hooks below; the model and the trainer call the whole stack in order.

==========================  =====================================================================
hook                        used for
==========================  =====================================================================
``attach(model)``           check compatibility with the model/prior; gets ``self.model``
``on_fit_start(ctx)``       load pretrained weights, reset modules (encoder pretraining)
``kl_weight(ctx)``          this strategy's factor on the KL weight (annealing, cyclical, beta);
                            the stack multiplies the factors into ``ctx.kl_weight`` (1 in evaluation)
``transform_posterior``     change q(z|x) itself (BN-VAE, DU-VAE, delta-VAE); the KL uses it
``refine_posterior``        change q(z|x) with the batch in hand (SA-VAE's per-sentence SVI); runs
                            after ``transform_posterior``, in training and in evaluation
``decoder_posterior``       the distribution the decoder's z is drawn from (Scale-VAE)
``prior_space_scale`` /
``prior_space_shift``       the elementwise affine map z_decoder = a * z_prior + b between decoder
                            space and prior space that makes the generative model consistent
                            (Scale-VAE's f); evaluation and generation use it
``adjust(objective, ...)``  reweight or replace objective terms, add extra terms (free bits, MMD)
``after_step(terms, ctx)``  bookkeeping after the VAE update
``auxiliary_parameters()``  a network trained on its own loss (FactorVAE's discriminator), with
``auxiliary_optimizer()``,  the optimiser it asks for; the trainer owns, checkpoints and steps that
``auxiliary_loss(...)``     optimiser after every VAE update
``on_epoch_start/end``      epoch-level state (Scale-VAE's averaged factor)
``epoch_sample_size()`` /   a fixed random sample of that many training sentences (the same every
``on_epoch_sample``         epoch), handed over in batches just before ``on_epoch_end`` with the
                            model in evaluation mode, to measure it as it stands at the epoch's end
                            (Scale-VAE's ``sample-std``)
``on_validation``           after each epoch's validation, with its metrics (mode switches)
``selection_loss``          the validation number best.pt and the decays go by (default: -ELBO)
``stages()`` /              a run in several stages (encoder pretraining, then the VAE); the trainer
``on_stage_start``          restarts schedules and early stopping at each stage
``log_scalars()``           values for the metrics log
==========================  =====================================================================

How a batch becomes updates is not a strategy's business but a procedure's
(:mod:`textvae.procedures`).

Hooks see :class:`~textvae.types.StepContext`; ``ctx.training`` is False in evaluation, where
every strategy must act deterministically (its "eval form").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from torch import Tensor, nn

from ..types import Batch, LossTerms, Objective, Posterior, Stage, StepContext

if TYPE_CHECKING:
    from ..models.vae import TextVAE


class Strategy(nn.Module):
    paper: str = ""
    requires_analytic_kl: bool = False
    registry_name: str = ""
    needs_grad_in_eval: bool = False
    """True when the eval-form posterior is computed with gradients (SA-VAE's SVI): the evaluator then
    runs this model under ``no_grad`` instead of the faster ``inference_mode``."""

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
        """This strategy's factor on the KL weight; ``ctx.kl_weight`` is the product over the stack."""
        return 1.0

    def transform_posterior(self, posterior: Posterior, ctx: StepContext) -> Posterior:
        return posterior

    def refine_posterior(self, posterior: Posterior, batch: Batch, ctx: StepContext) -> Posterior:
        return posterior

    def decoder_posterior(self, posterior: Posterior, ctx: StepContext) -> Posterior:
        return posterior

    def prior_space_scale(self) -> Tensor | None:
        """Per-dimension a with z_decoder = a * z_prior + b, or None for the identity."""
        return None

    def prior_space_shift(self) -> Tensor | None:
        """Per-dimension b with z_decoder = a * z_prior + b, or None for zero."""
        return None

    def adjust(self, objective: Objective, terms: LossTerms, batch: Batch, ctx: StepContext) -> None:
        pass

    def after_step(self, terms: LossTerms, ctx: StepContext) -> None:
        pass

    def on_epoch_start(self, ctx: StepContext) -> None:
        pass

    def on_epoch_end(self, ctx: StepContext) -> None:
        pass

    def epoch_sample_size(self) -> int:
        """Training sentences :meth:`on_epoch_sample` wants at each epoch's end (0: none)."""
        return 0

    def on_epoch_sample(self, batches: list[Batch], ctx: StepContext) -> None:
        pass

    def on_validation(self, metrics: dict, ctx: StepContext) -> None:
        pass

    def evaluation_note(self) -> str | None:
        """How this strategy changes what the evaluator scores, for results.json (None: it does not)."""
        return None

    def selection_loss(self, metrics: dict, ctx: StepContext) -> float | None:
        """Replace the validation -ELBO as the model-selection criterion (None: keep it)."""
        return None

    def stages(self) -> list[Stage] | None:
        """The run's stages when this strategy needs more than one (at most one strategy per stack)."""
        return None

    def on_stage_start(self, stage: int, ctx: StepContext) -> None:
        pass

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        """Parameters trained on :meth:`auxiliary_loss` (a discriminator); the VAE's groups skip them."""
        return []

    def auxiliary_optimizer(self):
        """The :class:`~textvae.training.optim.OptimizerSpec` for :meth:`auxiliary_parameters`."""
        raise NotImplementedError(f"strategy {self.registry_name} has auxiliary parameters but no optimiser")

    def auxiliary_loss(self, terms: LossTerms, ctx: StepContext) -> Tensor | None:
        """The loss the auxiliary network is updated on after each VAE update (None: skip this step)."""
        return None

    def log_scalars(self) -> dict[str, float | list[float]]:
        return {}


class StrategyStack(nn.Module):
    """The ordered strategies of a run, called as one."""

    def __init__(self, strategies: list[Strategy]):
        super().__init__()
        self.items = nn.ModuleList(strategies)
        staged = [s.registry_name for s in strategies if s.stages() is not None]
        if len(staged) > 1:
            from ..errors import ConfigError

            raise ConfigError(f"strategies {staged} each split the run into stages; use one of them")

    @property
    def needs_grad_in_eval(self) -> bool:
        return any(s.needs_grad_in_eval for s in self.items)

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

    def refine_posterior(self, posterior: Posterior, batch: Batch, ctx: StepContext) -> Posterior:
        for s in self.items:
            posterior = s.refine_posterior(posterior, batch, ctx)
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

    def prior_space_shift(self) -> Tensor | None:
        """The composed shift: each later map a2 * (a1 z + b1) + b2 scales the earlier shifts."""
        shift = None
        for s in self.items:
            a, b = s.prior_space_scale(), s.prior_space_shift()
            if shift is not None and a is not None:
                shift = shift * a
            if b is not None:
                shift = b if shift is None else shift + b
        return shift

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

    def hand_out_epoch_samples(self, draw: Callable[[int], list[Batch]], ctx: StepContext) -> None:
        """Call :meth:`Strategy.on_epoch_sample` of each strategy that asks for a sample; ``draw(n)``
        batches the trainer's fixed sample of n training sentences, so nothing is encoded for a stack
        that asks for none."""
        for s in self.items:
            n = s.epoch_sample_size()
            if n > 0:
                s.on_epoch_sample(draw(n), ctx)

    def on_validation(self, metrics: dict, ctx: StepContext) -> None:
        for s in self.items:
            s.on_validation(metrics, ctx)

    def evaluation_notes(self) -> list[str]:
        return [note for s in self.items if (note := s.evaluation_note())]

    def selection_loss(self, metrics: dict, ctx: StepContext) -> float:
        for s in self.items:
            loss = s.selection_loss(metrics, ctx)
            if loss is not None:
                return loss
        return metrics["elbo"]

    def stages(self) -> list[Stage]:
        for s in self.items:
            stages = s.stages()
            if stages is not None:
                return stages
        return [Stage("train")]

    def on_stage_start(self, stage: int, ctx: StepContext) -> None:
        for s in self.items:
            s.on_stage_start(stage, ctx)

    def log_scalars(self) -> dict[str, float | list[float]]:
        out: dict[str, float | list[float]] = {}
        for s in self.items:
            for key, value in s.log_scalars().items():
                out[f"{s.registry_name}/{key}"] = value
        return out


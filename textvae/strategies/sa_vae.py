"""SA-VAE: semi-amortised inference (Kim et al. 2018, "Semi-Amortized Variational Autoencoders").

The encoder's q0 = N(mu0, sigma0^2) is only a starting point: ``svi_steps`` steps of gradient descent
with momentum on the batch's -ELBO (the mean over its sentences of rec + beta * KL, beta the current
KL weight in training and 1 in evaluation) move (mu, log sigma^2) to q_K. The decoder trains on
z ~ q_K, the KL is KL(q_K || p), and evaluation (IW-NLL proposal, KL, MI, AU) refines the posterior
the same way. Each SVI gradient is clipped to norm ``max_grad_norm`` (mean and log-variance
separately), and the clip coefficient is a constant for back-propagation.

How the encoder learns (``encoder_grad``):

* ``unrolled`` (the reference code's default): the loss is back-propagated through the SVI steps to
  mu0 and log sigma0^2 and, through them, to the encoder; the decoder also receives the gradient of
  the SVI path. ``hvp`` picks how the Hessian-vector products of that backward pass are computed:
  ``finite-difference`` (the reference: (g(x + r v) - g(x)) / r with r = ``fd_eps``, one extra
  gradient evaluation per step, SVI states stored) or ``autograd`` (exact, through a
  double-backward graph of all steps: more memory).
* ``kl-to-refined``: the SVI steps start from a detached q0 and the encoder is trained by
  KL(q0 || stop-gradient(q_K)) alone, the reference's ``train_n2n 0, train_kl 1`` mode.

See docs/methods/sa-vae.md for the choices the paper leaves open and the defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ..config import ranged
from ..types import Batch, LossTerms, Objective, Posterior, StepContext
from .base import Strategy
from .registry import STRATEGIES


@dataclass
class SAVAEConfig:
    svi_steps: int = ranged(20, ge=1)
    svi_lr: float = ranged(1.0, gt=0)
    momentum: float = ranged(0.5, ge=0, lt=1)
    max_grad_norm: float = ranged(5.0, ge=0)
    """Clip of each SVI gradient (0: none)."""
    encoder_grad: Literal["unrolled", "kl-to-refined"] = "unrolled"
    hvp: Literal["finite-difference", "autograd"] = "finite-difference"
    fd_eps: float = ranged(1e-5, gt=0)
    refine_in_eval: bool = True
    """Evaluate with the refined posterior (False: the encoder's q0, to measure what SVI adds)."""
    eval_seed: int = 0
    """Seed of the SVI noise in evaluation, so that evaluating twice gives the same numbers."""


LossFn = Callable[[Tensor, Tensor, int], Tensor]
"""(mu, logvar, step) -> the batch's -ELBO for that SVI step, with that step's fixed noise."""


def clip_coefficient(grad: Tensor, max_norm: float) -> Tensor:
    """The factor clip_grad_norm would scale ``grad`` by, as a constant (1 when no clipping)."""
    if max_norm <= 0:
        return torch.ones((), dtype=grad.dtype, device=grad.device)
    return (max_norm / (grad.detach().norm() + 1e-6)).clamp(max=1.0)


def svi(loss_fn: LossFn, mu: Tensor, logvar: Tensor, config: SAVAEConfig, create_graph: bool = False,
        trace: list | None = None) -> tuple[Tensor, Tensor]:
    """Run the SVI steps from (mu, logvar); differentiable through all steps when ``create_graph``.

    ``trace`` (a list) receives ([mu_k, logvar_k], [clip coefficients]) of every step, for the
    finite-difference backward pass.
    """
    x = [mu, logvar]
    velocity = [torch.zeros_like(mu), torch.zeros_like(logvar)]
    for k in range(config.svi_steps):
        if not create_graph:
            x = [t.detach().requires_grad_(True) for t in x]
        grads = torch.autograd.grad(loss_fn(x[0], x[1], k), x, create_graph=create_graph)
        coefficients = [clip_coefficient(g, config.max_grad_norm) for g in grads]
        if trace is not None:
            trace.append(([t.detach() for t in x], coefficients))
        velocity = [config.momentum * v - c * g for v, c, g in zip(velocity, coefficients, grads)]
        x = [t + config.svi_lr * v for t, v in zip(x, velocity)]
    return x[0], x[1]


class _FiniteDifferenceSVI(torch.autograd.Function):
    """SVI forward; backward through the steps with finite-difference Hessian-vector products.

    Inputs after the first three are the decoder's parameters: they receive the SVI path's
    gradient (minus the sum of the mixed second derivatives times the adjoint), as the reference does.
    """

    @staticmethod
    def forward(ctx, runner: "_Runner", mu: Tensor, logvar: Tensor, *params: Tensor):
        trace: list = []
        with torch.enable_grad():
            mu_k, logvar_k = svi(runner.loss_fn, mu.detach(), logvar.detach(), runner.config, trace=trace)
        ctx.runner, ctx.trace, ctx.n_params = runner, trace, len(params)
        return mu_k.detach(), logvar_k.detach()

    @staticmethod
    def backward(ctx, grad_mu: Tensor, grad_logvar: Tensor):
        runner, config = ctx.runner, ctx.runner.config
        params = runner.params
        adjoint = [grad_mu, grad_logvar]  # dL/dx_{k+1}
        velocity_adjoint = [torch.zeros_like(grad_mu), torch.zeros_like(grad_logvar)]
        param_grads = [torch.zeros_like(p) for p in params]
        r = config.fd_eps
        for k in reversed(range(config.svi_steps)):
            (x_k, coefficients) = ctx.trace[k]
            velocity_adjoint = [p + config.svi_lr * a for p, a in zip(velocity_adjoint, adjoint)]
            # v_k = m v_{k-1} - c_k * g(x_k): the adjoint picks up -J^T (c * p), J the Jacobian of g in
            # (mu, logvar) and in the parameters; J^T w is the change of the gradient along w.
            direction = [c * p for c, p in zip(coefficients, velocity_adjoint)]
            with torch.enable_grad():
                base = runner.gradients(x_k, k)
                shifted = runner.gradients([x + r * w for x, w in zip(x_k, direction)], k)
            n = len(x_k)
            adjoint = [a - (s - b) / r for a, s, b in zip(adjoint, shifted[:n], base[:n])]
            for i, (s, b) in enumerate(zip(shifted[n:], base[n:])):
                if s is not None:
                    param_grads[i] -= (s - b) / r
            velocity_adjoint = [config.momentum * p for p in velocity_adjoint]
        return (None, adjoint[0], adjoint[1], *param_grads)


class _Runner:
    """The batch's SVI objective with each step's noise (and dropout masks) reproducible."""

    def __init__(self, strategy: "SAVAE", batch: Batch, beta: float, generator: torch.Generator | None):
        self.strategy, self.batch, self.beta = strategy, batch, beta
        self.config = strategy.config
        self.params = [p for p in strategy.model.decoder.parameters() if p.requires_grad]
        self.generator = generator
        self.rng_states: dict[int, tuple] = {}

    def _rng(self, k: int):
        """Fork the global RNG at step ``k``'s first use and replay it later (dropout, noise)."""
        if k not in self.rng_states:
            cuda = self.batch.tokens.device.type == "cuda"
            self.rng_states[k] = (torch.get_rng_state(), torch.cuda.get_rng_state() if cuda else None)
            return None
        return self.rng_states[k]

    def loss_fn(self, mu: Tensor, logvar: Tensor, k: int) -> Tensor:
        replay = self._rng(k)
        devices = [self.batch.tokens.device] if self.batch.tokens.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=replay is not None):
            if replay is not None:
                torch.set_rng_state(replay[0])
                if replay[1] is not None:
                    torch.cuda.set_rng_state(replay[1])
            eps = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=self.generator)
            posterior = Posterior(mu, logvar)
            z = mu + posterior.std * eps
            model = self.strategy.model
            rec = model.decoder.nll(self.batch.tokens, self.batch.lengths, z)
            kl, _ = model.prior.kl(posterior, z)
            return (rec + self.beta * kl).mean()

    def gradients(self, x: list[Tensor], k: int) -> list[Tensor]:
        """Gradients of step ``k``'s loss (same noise and dropout) w.r.t. (mu, logvar) and the parameters."""
        x = [t.detach().requires_grad_(True) for t in x]
        return list(torch.autograd.grad(self.loss_fn(x[0], x[1], k), x + self.params, allow_unused=True))


@STRATEGIES.register("sa-vae", config=SAVAEConfig)
class SAVAE(Strategy):
    """SA-VAE: the encoder's posterior refined by SVI steps per batch, in training and evaluation (Kim et al. 2018)."""

    paper = "Kim et al. 2018, Semi-Amortized Variational Autoencoders"
    requires_analytic_kl = True
    needs_grad_in_eval = True

    def __init__(self, config: SAVAEConfig, latent_dim: int):
        super().__init__(config, latent_dim)
        self._initial: Posterior | None = None
        self.last_gain = float("nan")

    def evaluation_note(self) -> str | None:
        c = self.config
        if not c.refine_in_eval:
            return "sa-vae: scored with the encoder's posterior q0 (refine_in_eval = false)"
        return (f"sa-vae: the posterior (IW-NLL proposal, KL, MI, AU) is q0 refined by {c.svi_steps} SVI steps "
                f"(lr {c.svi_lr}, momentum {c.momentum})")

    def refine_posterior(self, posterior: Posterior, batch: Batch, ctx: StepContext) -> Posterior:
        c = self.config
        if not ctx.training:
            if not c.refine_in_eval:
                return posterior
            generator = torch.Generator(device=posterior.mu.device).manual_seed(c.eval_seed)
            runner = _Runner(self, batch, 1.0, generator)
            with torch.enable_grad():
                mu, logvar = svi(runner.loss_fn, posterior.mu.detach(), posterior.logvar.detach(), c)
            return Posterior(mu.detach(), logvar.detach())
        runner = _Runner(self, batch, ctx.kl_weight, None)
        if c.encoder_grad == "kl-to-refined":
            self._initial = posterior
            with torch.enable_grad():
                mu, logvar = svi(runner.loss_fn, posterior.mu.detach(), posterior.logvar.detach(), c)
            return Posterior(mu.detach(), logvar.detach())
        if c.hvp == "autograd":
            decoder = self.model.decoder
            decoder.differentiable_twice = True
            try:
                mu, logvar = svi(runner.loss_fn, posterior.mu, posterior.logvar, c, create_graph=True)
            finally:
                decoder.differentiable_twice = False
        else:
            mu, logvar = _FiniteDifferenceSVI.apply(runner, posterior.mu, posterior.logvar, *runner.params)
        return Posterior(mu, logvar)

    def adjust(self, objective: Objective, terms: LossTerms, batch: Batch, ctx: StepContext) -> None:
        if self._initial is None or not ctx.training:
            return
        q0, qk = self._initial, terms.posterior.detach()
        kl = 0.5 * (qk.logvar - q0.logvar + (q0.logvar.exp() + (q0.mu - qk.mu) ** 2) / qk.logvar.exp() - 1).sum(-1)
        objective.extras["kl_to_refined"] = (1.0, kl.mean())
        objective.logs["kl_to_refined"] = float(kl.detach().mean())
        self._initial = None

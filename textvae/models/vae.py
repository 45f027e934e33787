"""The LSTM language VAE (He et al. 2019) and the LSTM-LM baseline.

Both implement the evaluator's latent-variable protocol (see :mod:`textvae.evaluation`):
``posterior(batch)``, ``log_likelihood(batch, z)`` and ``log_prior(z)``, all in the prior's space.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..initialization import init_he2019
from ..priors import Prior
from ..strategies import StrategyStack
from ..types import Batch, LossTerms, Posterior, StepContext
from .decoder import LSTMDecoder
from .encoder import LSTMEncoder
from .registry import DECODERS

EVAL_CONTEXT = StepContext(training=False)


def freeze_last_word(decoder: nn.Module, config: ModelConfig) -> None:
    """``model.dec_freeze_last_word``: the embedding's ``padding_idx`` zeroes that row's gradient in
    every backward pass. Set after construction, so the row keeps its initial values (as in the
    reference programs, which initialise every row afterwards) instead of being zeroed."""
    if config.dec_freeze_last_word:
        decoder.embed.padding_idx = decoder.embed.num_embeddings - 1


class TextVAE(nn.Module):
    """Encoder, decoder, prior and strategy stack. ``forward`` returns unweighted loss terms."""

    def __init__(self, config: ModelConfig, vocab_size: int, prior: Prior, strategy: StrategyStack,
                 scale_reading: str = "scaled-posterior"):
        super().__init__()
        self.config = config
        self.scale_reading = scale_reading
        """Which generative model a strategy's decoder-space map defines (``eval.scale_reading``):
        ``scaled-prior`` maps through it, ``scaled-posterior`` scores the decoder-space latent under p(z)."""
        self.latent_dim = config.latent_dim
        self.encoder = LSTMEncoder(vocab_size, config.embed_dim, config.enc_hidden, config.latent_dim)
        self.decoder = DECODERS.entry(config.decoder, "model.decoder").cls(
            vocab_size, config.embed_dim, config.dec_hidden, config.latent_dim,
            config.dec_dropout_in, config.dec_dropout_out, word_dropout=config.dec_word_dropout)
        freeze_last_word(self.decoder, config)
        if (config.encoder_init or config.init) == "he2019":
            init_he2019(self.encoder)
        if config.init == "he2019":
            init_he2019(self.decoder)
        self.prior = prior
        self.strategy = strategy
        strategy.attach(self)

    def forward(self, batch: Batch, ctx: StepContext) -> LossTerms:
        posterior = self.strategy.refine_posterior(self.strategy.transform_posterior(self.encoder(batch), ctx),
                                                   batch, ctx)
        decoder_posterior = self.strategy.decoder_posterior(posterior, ctx)
        eps = torch.randn_like(posterior.mu)
        z_kl = posterior.mu + posterior.std * eps
        z = decoder_posterior.mu + decoder_posterior.std * eps
        rec = self.decoder.nll(batch.tokens, batch.lengths, z)
        kl, kl_dims = self.prior.kl(posterior, z_kl)
        return LossTerms(rec=rec, kl=kl, kl_dims=kl_dims, posterior=posterior, z=z_kl,
                         n_targets=batch.n_targets())

    # ---- evaluator protocol: everything in the prior's space -------------------------------
    def latent_map(self) -> tuple[Tensor, Tensor | None] | None:
        """(a, b) with z_decoder = a * z_prior + b under the scored reading, or None for the identity."""
        scale = self.strategy.prior_space_scale()
        if scale is None or self.scale_reading == "scaled-posterior":
            return None
        return scale, self.strategy.prior_space_shift()

    def posterior(self, batch: Batch) -> Posterior:
        """Eval-form q(z|x) in the prior's space: the distribution the decoder's z comes from, mapped
        back through :meth:`latent_map` (Scale-VAE, ``scaled-prior``: N(mu, sigma^2 / f^2))."""
        post = self.strategy.decoder_posterior(self.trained_posterior(batch), EVAL_CONTEXT)
        mapping = self.latent_map()
        if mapping is None:
            return post
        scale, shift = mapping
        mu = post.mu if shift is None else post.mu - shift
        return Posterior(mu / scale, post.logvar - 2 * torch.log(scale))

    def trained_posterior(self, batch: Batch) -> Posterior:
        """Eval-form q(z|x) the training KL is computed on (Scale-VAE: the unscaled N(mu, sigma^2))."""
        post = self.strategy.transform_posterior(self.encoder(batch), EVAL_CONTEXT)
        return self.strategy.refine_posterior(post, batch, EVAL_CONTEXT)

    def decodes_other_posterior(self) -> bool:
        """Whether the decoder sees another posterior than the KL's, so the evaluator reports both."""
        return self.strategy.prior_space_scale() is not None

    def to_decoder_space(self, z: Tensor) -> Tensor:
        mapping = self.latent_map()
        if mapping is None:
            return z
        scale, shift = mapping
        return z * scale if shift is None else z * scale + shift

    def log_likelihood(self, batch: Batch, z: Tensor) -> Tensor:
        """log p(x | z) for prior-space z [B, K, D] -> [B, K]."""
        return self.decoder.log_likelihood(batch, self.to_decoder_space(z))

    def log_prior(self, z: Tensor) -> Tensor:
        return self.prior.log_prob(z)

    def pass_memory(self) -> dict[str, int]:
        return self.decoder.pass_memory()

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Latents for generation, in decoder space (Scale-VAE: f * z with z ~ p(z))."""
        device = next(self.parameters()).device
        z0 = torch.randn(n, self.latent_dim, device=device, generator=generator)
        return self.to_decoder_space(self.prior.from_base(z0))


class LSTMLanguageModel(nn.Module):
    """The LSTM-LM baseline: the VAE decoder without z. Its NLL is exact; KL is zero by definition."""

    latent_dim = 0

    def __init__(self, config: ModelConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.decoder = LSTMDecoder(vocab_size, config.embed_dim, config.dec_hidden, 0,
                                   config.dec_dropout_in, config.dec_dropout_out, config.dec_word_dropout)
        freeze_last_word(self.decoder, config)
        if config.init == "he2019":
            init_he2019(self.decoder)
        self.strategy = StrategyStack([])

    def forward(self, batch: Batch, ctx: StepContext) -> LossTerms:
        rec = self.decoder.nll(batch.tokens, batch.lengths, None)
        zero = torch.zeros_like(rec)
        return LossTerms(rec=rec, kl=zero, kl_dims=None, posterior=None, z=None, n_targets=batch.n_targets())

    def posterior(self, batch: Batch) -> Posterior:
        empty = torch.zeros(batch.size, 0, device=batch.tokens.device)
        return Posterior(empty, empty)

    def log_likelihood(self, batch: Batch, z: Tensor) -> Tensor:
        return self.decoder.log_likelihood(batch, z)

    def log_prior(self, z: Tensor) -> Tensor:
        return torch.zeros(z.shape[:-1], device=z.device)

    def pass_memory(self) -> dict[str, int]:
        return self.decoder.pass_memory()

"""Skip-VAE's decoder (Dieng et al. 2019, "Avoiding Latent Variable Collapse with Generative Skip
Models", AISTATS): the vocabulary projection reads [h_t ; z], so z reaches every word's
distribution through a path the LSTM cannot bypass. See docs/methods/skip-vae.md."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .decoder import LSTMDecoder
from .registry import DECODERS, DecoderParams


@DECODERS.register("skip", config=DecoderParams)
class SkipLSTMDecoder(LSTMDecoder):
    """Skip-VAE decoder: z concatenated to the LSTM output before the vocabulary projection (Dieng et al. 2019).

    z also enters as in the ``lstm`` decoder (every input embedding and the initial state). The
    decoder has one LSTM layer, so "z at every layer's input" is that first layer's input. Output
    dropout applies to h_t only, as in the reference code: z is never dropped.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden: int, latent_dim: int,
                 dropout_in: float, dropout_out: float, word_dropout: float = 0.0):
        if latent_dim < 1:
            raise ConfigError(f"model.decoder 'skip' needs a latent variable; model.latent_dim is {latent_dim}")
        super().__init__(vocab_size, embed_dim, hidden, latent_dim, dropout_in, dropout_out, word_dropout)
        self.out = nn.Linear(hidden + latent_dim, vocab_size, bias=False)

    def output_features(self, hidden: Tensor, z: Tensor | None) -> Tensor:
        if hidden.dim() == 3:
            z = z.unsqueeze(1).expand(-1, hidden.size(1), -1)
        return torch.cat([hidden, z.to(hidden.dtype)], dim=-1)

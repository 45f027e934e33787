"""The LSTM encoder q(z | x) of He et al. (2019): the last hidden state mapped to (mu, logvar)."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ..types import Batch, Posterior


class LSTMEncoder(nn.Module):
    """He et al. 2019: own embedding, 1-layer LSTM, last hidden state -> bias-free linear -> (mu, logvar)."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden: int, latent_dim: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=None)
        self.lstm = nn.LSTM(embed_dim, hidden, batch_first=True)
        self.to_posterior = nn.Linear(hidden, 2 * latent_dim, bias=False)

    def forward(self, batch: Batch) -> Posterior:
        emb = self.embed(batch.tokens)
        if batch.padded:
            packed = pack_padded_sequence(emb, batch.lengths.cpu(), batch_first=True, enforce_sorted=False)
            _, (h, _) = self.lstm(packed)
        else:
            _, (h, _) = self.lstm(emb)
        mu, logvar = self.to_posterior(h[-1]).chunk(2, dim=-1)
        return Posterior(mu, logvar)

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..types import Batch


class LSTMDecoder(nn.Module):
    """He et al. 2019 decoder: z is concatenated to every input embedding and sets c0 = Wz, h0 = tanh(c0).

    With ``latent_dim == 0`` it is the LSTM language model (zero initial state, no z input).
    Predicts ``w1 .. wT </s>`` from ``<s> w1 .. wT``; ``<s>`` is never a target.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden: int, latent_dim: int,
                 dropout_in: float, dropout_out: float):
        super().__init__()
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.dropout_in = nn.Dropout(dropout_in)
        self.dropout_out = nn.Dropout(dropout_out)
        self.lstm = nn.LSTM(embed_dim + latent_dim, hidden, batch_first=True)
        self.init_cell = nn.Linear(latent_dim, hidden, bias=False) if latent_dim else None
        self.out = nn.Linear(hidden, vocab_size, bias=False)

    def initial_state(self, z: Tensor | None) -> tuple[Tensor, Tensor] | None:
        if z is None or self.init_cell is None:
            return None
        c0 = self.init_cell(z).unsqueeze(0)
        return torch.tanh(c0), c0

    def hidden_states(self, inputs: Tensor, z: Tensor | None, state=None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Run the LSTM over input ids [N, T] with latent z [N, D]; returns outputs [N, T, H] and state."""
        emb = self.dropout_in(self.embed(inputs))
        if z is not None and self.latent_dim:
            emb = torch.cat([emb, z.unsqueeze(1).expand(-1, emb.size(1), -1)], dim=-1)
            if state is None:
                state = self.initial_state(z)
        out, state = self.lstm(emb, state)
        return self.dropout_out(out), state

    def logits(self, hidden: Tensor) -> Tensor:
        return self.out(hidden)

    def nll(self, tokens: Tensor, lengths: Tensor, z: Tensor | None) -> Tensor:
        """Per-sentence NLL [N] of ``tokens`` [N, L] (boundaries included) given z [N, D]."""
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        hidden, _ = self.hidden_states(inputs, z)
        n, t = targets.shape
        if bool((lengths == tokens.size(1)).all()):
            logits = self.out(hidden.reshape(n * t, -1))
            return F.cross_entropy(logits, targets.reshape(-1), reduction="none").view(n, t).sum(1)
        # Only real positions go through the vocabulary projection: padding costs nothing.
        mask = torch.arange(t, device=tokens.device).unsqueeze(0) < (lengths.to(tokens.device) - 1).unsqueeze(1)
        logits = self.out(hidden[mask])
        token_nll = F.cross_entropy(logits, targets[mask], reduction="none")
        rows = torch.arange(n, device=tokens.device).unsqueeze(1).expand(n, t)[mask]
        return torch.zeros(n, device=tokens.device, dtype=token_nll.dtype).index_add_(0, rows, token_nll)

    def log_likelihood(self, batch: Batch, z: Tensor) -> Tensor:
        """log p(x | z_k) for z [B, K, D]; returns [B, K]."""
        b, k = z.shape[:2]
        tokens = batch.tokens.repeat_interleave(k, dim=0)
        lengths = batch.lengths.repeat_interleave(k, dim=0)
        zs = z.reshape(b * k, -1) if self.latent_dim else None
        return -self.nll(tokens, lengths, zs).view(b, k)

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
        """log p(x | z_k) for z [B, K, D]; returns [B, K] in float32.

        In eval mode this is the evaluator's inner loop and takes :func:`_scan_log_likelihood`.
        """
        b, k = z.shape[:2]
        if not self.training:
            return _scan_log_likelihood(self, batch.tokens, batch.lengths, z)
        tokens = batch.tokens.repeat_interleave(k, dim=0)
        lengths = batch.lengths.repeat_interleave(k, dim=0)
        zs = z.reshape(b * k, -1) if self.latent_dim else None
        return -self.nll(tokens, lengths, zs).view(b, k)


def _scan_log_likelihood(decoder: LSTMDecoder, tokens: Tensor, lengths: Tensor, z: Tensor) -> Tensor:
    """Eval-mode log p(x | z_k), [B, K], without the work the training path repeats per sample.

    Each sentence's embeddings and their share of the LSTM input projection are computed once for
    its K samples, z's share once per sample (not per step), and sentences run longest first so
    step t only touches rows still inside their sentence: no padding work and no [N, T, V] logits.
    Under autocast only the matrix products drop precision; the state and log-probabilities
    (target logit in float32, normaliser from float32 logits) stay float32.
    """
    b, k = z.shape[:2]
    steps = lengths.to(tokens.device) - 1
    order = torch.argsort(steps, descending=True, stable=True)
    steps, tokens = steps[order], tokens[order]
    t_max = int(steps[0])
    lstm, e = decoder.lstm, decoder.embed.embedding_dim
    x_gates = F.linear(decoder.embed(tokens[:, :t_max]), lstm.weight_ih_l0[:, :e],
                       lstm.bias_ih_l0 + lstm.bias_hh_l0).float()
    targets = tokens[:, 1 : t_max + 1].repeat_interleave(k, dim=0)
    if decoder.latent_dim:
        zs = z[order].reshape(b * k, -1)
        z_gates = F.linear(zs, lstm.weight_ih_l0[:, e:]).float()
        c = decoder.init_cell(zs).float()
        h = torch.tanh(c)
    else:
        z_gates = None
        h = c = x_gates.new_zeros(b * k, decoder.hidden)
    running = (steps.unsqueeze(0) > torch.arange(t_max, device=steps.device).unsqueeze(1)).sum(1).tolist()
    log_p = x_gates.new_zeros(b * k)
    w_out = decoder.out.weight
    for t, sentences in enumerate(running):
        rows = sentences * k
        h, c = h[:rows], c[:rows]
        gates = F.linear(h, lstm.weight_hh_l0).float().view(sentences, k, -1) + x_gates[:sentences, t].unsqueeze(1)
        gates = gates.view(rows, -1) if z_gates is None else gates.view(rows, -1) + z_gates[:rows]
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        target_logit = (h * w_out[targets[:rows, t]]).sum(1)
        log_p[:rows] += target_logit - torch.logsumexp(F.linear(h, w_out).float(), dim=1)
    out = torch.empty_like(log_p).view(b, k)
    out[order] = log_p.view(b, k)
    return out

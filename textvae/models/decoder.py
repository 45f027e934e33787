"""The LSTM decoder p(x | z) of He et al. (2019) and its building blocks.

:class:`LSTMDecoder` (registered as ``lstm``; variants subclass it, see ``skip_decoder.py``) reads z
at every step and through its initial state; :class:`UniformMaskDropout` is its dropout. Below them,
the numerics the decoder's paths share: the evaluator's step-by-step scan, the vocabulary terms
deferred across a scan, and :class:`ProjectedNLL`, the memory-saving projection + cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..types import Batch
from .registry import DECODERS, DecoderParams


@DECODERS.register("lstm", config=DecoderParams)
class LSTMDecoder(nn.Module):
    """He et al. 2019 decoder: z is concatenated to every input embedding and sets c0 = Wz, h0 = tanh(c0).

    With ``latent_dim == 0`` it is the LSTM language model (zero initial state, no z input).
    Predicts ``w1 .. wT </s>`` from ``<s> w1 .. wT``; ``<s>`` is never a target.
    Variants (``model.decoder``) change what the vocabulary projection reads through
    :meth:`output_features`, which every path (training, the evaluator's scan, decoding) calls.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden: int, latent_dim: int,
                 dropout_in: float, dropout_out: float, word_dropout: float = 0.0):
        super().__init__()
        self.differentiable_twice = False
        """Compute the NLL with ops autograd can differentiate twice (slower, more memory)."""
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.dropout_in = UniformMaskDropout(dropout_in)
        self.dropout_out = UniformMaskDropout(dropout_out)
        self.word_dropout = word_dropout
        self.lstm = nn.LSTM(embed_dim + latent_dim, hidden, batch_first=True)
        self.init_cell = nn.Linear(latent_dim, hidden, bias=False) if latent_dim else None
        self.out = nn.Linear(hidden, vocab_size, bias=False)

    def initial_state(self, z: Tensor | None) -> tuple[Tensor, Tensor] | None:
        if z is None or self.init_cell is None:
            return None
        c0 = self.init_cell(z).unsqueeze(0)
        return torch.tanh(c0), c0

    def hidden_states(self, inputs: Tensor, z: Tensor | None, state=None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Run the LSTM over input ids [N, T] with latent z [N, D]; returns the vocabulary projection's
        inputs [N, T, F] (:meth:`output_features` of the LSTM outputs) and the LSTM state."""
        emb = self.dropout_in(self.embed(inputs))
        if self.training and self.word_dropout > 0:
            # Hide whole words, unscaled: a hidden word must read as "unknown", not as a louder
            # version of some other word. Position 0 is <s> on every path that trains.
            keep = torch.rand(emb.shape[:2], device=emb.device) >= self.word_dropout
            keep[:, 0] = True
            emb = emb * keep.unsqueeze(-1)
        if z is not None and self.latent_dim:
            emb = torch.cat([emb, z.unsqueeze(1).expand(-1, emb.size(1), -1)], dim=-1)
            if state is None:
                state = self.initial_state(z)
        out, state = self.lstm(emb, state)
        return self.output_features(self.dropout_out(out), z), state

    def output_features(self, hidden: Tensor, z: Tensor | None) -> Tensor:
        """What the vocabulary projection reads, from LSTM outputs [N, H] or [N, T, H] and z [N, D]."""
        return hidden

    def logits(self, hidden: Tensor) -> Tensor:
        return self.out(hidden)

    def token_nll(self, hidden: Tensor, targets: Tensor) -> Tensor:
        """-log p(target | h) for hidden states [M, H] and targets [M]; returns [M] in float32."""
        if not isinstance(self.out, nn.Linear) or self.out.bias is not None or self.differentiable_twice:
            # An output layer swapped in from outside: stay consistent with ``logits``. Callers that
            # differentiate gradients (SA-VAE's exact SVI backward) need autograd's own ops:
            # ProjectedNLL's backward is not itself differentiable.
            return F.cross_entropy(at_least_float32(self.logits(hidden)), targets, reduction="none")
        return ProjectedNLL.apply(hidden, self.out.weight, targets)

    def nll(self, tokens: Tensor, lengths: Tensor, z: Tensor | None) -> Tensor:
        """Per-sentence NLL [N] of ``tokens`` [N, L] (boundaries included) given z [N, D]."""
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        hidden, _ = self.hidden_states(inputs, z)
        n, t = targets.shape
        if bool((lengths == tokens.size(1)).all()):
            return self.token_nll(hidden.reshape(n * t, -1), targets.reshape(-1)).view(n, t).sum(1)
        # Only real positions go through the vocabulary projection: padding costs nothing.
        mask = torch.arange(t, device=tokens.device).unsqueeze(0) < (lengths.to(tokens.device) - 1).unsqueeze(1)
        token_nll = self.token_nll(hidden[mask], targets[mask])
        rows = torch.arange(n, device=tokens.device).unsqueeze(1).expand(n, t)[mask]
        return torch.zeros(n, device=tokens.device, dtype=token_nll.dtype).index_add_(0, rows, token_nll)

    def pass_memory(self) -> dict[str, int]:
        """Bytes an eval-mode pass (:func:`_scan_log_likelihood`) holds per sentence x sample row (a
        step's logits and their softmax in float32, the LSTM state and gates), per row x target (the
        repeated targets) and per sentence x target (input projections shared by its samples)."""
        vocab, hidden = self.out.weight.shape
        return {"row": 4 * (2 * vocab + 16 * hidden), "target": 8, "sentence_target": 4 * 8 * hidden}

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


class UniformMaskDropout(nn.Dropout):
    """``nn.Dropout`` with the CPU keep-mask drawn as ``uniform >= p``: the same Bernoulli(1 - p) mask
    and 1 / (1 - p) scale, at about a third of the cost of the CPU ``bernoulli_`` kernel."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or x.device.type != "cpu" or not 0 < self.p < 1:
            return super().forward(x)
        keep = torch.rand(x.shape, device=x.device) >= self.p
        return x * keep * (1.0 / (1.0 - self.p))


def at_least_float32(x: Tensor) -> Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def column_nll(logits_t: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """-log softmax(logits)[target] for transposed logits [V, M] and targets [M].

    Overwrites ``logits_t`` with ``exp(logits - max)`` (what the softmax gradient needs) and returns
    the NLL [M] with the column sums of that buffer [M].
    """
    target_logit = logits_t.gather(0, targets.unsqueeze(0)).squeeze(0)
    shift = logits_t.amax(0)
    total = logits_t.sub_(shift).exp_().sum(0)
    return shift + total.log() - target_logit, total


class ProjectedNLL(torch.autograd.Function):
    """``cross_entropy(hidden @ weight.T, targets, reduction="none")``, computed on the logits' transpose.

    The logits are built as ``weight @ hidden.T`` ([V, M]): with a vocabulary much wider than the
    hidden size, MKL runs that product faster than ``hidden @ weight.T`` on this project's AVX-512
    CPUs, and the two backward products are as fast in this layout. ``exp(logits - max)`` is formed in
    place in a [V, M] buffer of at least float32 and saved, so forward holds one such buffer where
    ``F.cross_entropy`` holds two (logits, log-softmax), and backward allocates one where it allocates
    two. Under autocast the three products run in the autocast dtype and the softmax in float32.
    """

    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, targets: Tensor) -> Tensor:
        device = hidden.device.type
        ctx.autocast_dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
        unnormalised_t = at_least_float32(weight @ hidden.t())
        nll, total = column_nll(unnormalised_t, targets)
        ctx.save_for_backward(hidden, weight, targets, unnormalised_t, total)
        return nll

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        hidden, weight, targets, unnormalised_t, total = ctx.saved_tensors
        # softmax * grad in one pass over [V, M]: the normalisation rides on the per-column factor
        grad = grad.to(total.dtype)
        d_logits_t = unnormalised_t * (grad / total)
        d_logits_t.scatter_add_(0, targets.unsqueeze(0), -grad.unsqueeze(0))
        if ctx.autocast_dtype is not None:
            # Cast once here: autocast would cast [V, M] and the weight again for each product
            # (its cache holds only forward-pass casts of leaves).
            d_logits_t, weight, hidden = (x.to(ctx.autocast_dtype) for x in (d_logits_t, weight, hidden))
        grad_hidden = d_logits_t.t() @ weight if ctx.needs_input_grad[0] else None
        grad_weight = d_logits_t @ hidden if ctx.needs_input_grad[1] else None
        return grad_hidden, grad_weight, None


def _scan_log_likelihood(decoder: LSTMDecoder, tokens: Tensor, lengths: Tensor, z: Tensor) -> Tensor:
    """Eval-mode log p(x | z_k), [B, K], without the work the training path repeats per sample.

    Each sentence's embeddings and their share of the LSTM input projection are computed once for
    its K samples, z's share once per sample (not per step), and sentences run longest first so
    step t only touches rows still inside their sentence: no padding work and no [N, T, V] logits.
    Under autocast only the matrix products drop precision; the state and the sums stay float32.
    The weights are cast once per call and h once per step (autocast would cast h twice per step
    and the weights on every product when it cannot cache them, as under inference mode).
    """
    b, k = z.shape[:2]
    device = tokens.device.type
    low = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
    matmul_dtype = low or decoder.out.weight.dtype
    steps = lengths.to(tokens.device) - 1
    order = torch.argsort(steps, descending=True, stable=True)
    steps, tokens = steps[order], tokens[order]
    t_max = int(steps[0])
    lstm, e, hidden = decoder.lstm, decoder.embed.embedding_dim, decoder.hidden
    # Gate rows reordered from PyTorch's (i, f, g, o) to (i, f, o, g): one sigmoid over a
    # contiguous three quarters of each row instead of three strided ones.
    gate_order = torch.cat([torch.arange(0, 2 * hidden, device=tokens.device),
                            torch.arange(3 * hidden, 4 * hidden, device=tokens.device),
                            torch.arange(2 * hidden, 3 * hidden, device=tokens.device)])
    w_ih, w_hh = lstm.weight_ih_l0[gate_order], lstm.weight_hh_l0[gate_order]
    bias = (lstm.bias_ih_l0 + lstm.bias_hh_l0)[gate_order]
    x_gates = F.linear(decoder.embed(tokens[:, :t_max]), w_ih[:, :e], bias).float()
    targets = tokens[:, 1 : t_max + 1].repeat_interleave(k, dim=0)
    if decoder.latent_dim:
        zs = z[order].reshape(b * k, -1)
        z_gates = F.linear(zs, w_ih[:, e:]).float()
        c = decoder.init_cell(zs).float()
        h = torch.tanh(c)
    else:
        zs = z_gates = None
        h = c = x_gates.new_zeros(b * k, hidden)
    with torch.autocast(device, enabled=False):
        w_hh, w_out = w_hh.to(matmul_dtype), decoder.out.weight.to(matmul_dtype)
        h = h.to(matmul_dtype)
        zs = None if zs is None else zs.to(matmul_dtype)
        running = (steps.unsqueeze(0) > torch.arange(t_max, device=steps.device).unsqueeze(1)).sum(1).tolist()
        log_p = x_gates.new_zeros(b * k)
        vocabulary = _DeferredVocabularyTerms(w_out, log_p)
        for t, sentences in enumerate(running):
            rows = sentences * k
            h, c = h[:rows], c[:rows]
            recurrent = F.linear(h, w_hh)
            if z_gates is None:
                gates = recurrent.float()
            elif recurrent.dtype == z_gates.dtype:
                gates = recurrent.add_(z_gates[:rows])
            else:  # the sum promotes to float32: no separate upcast of the product
                gates = torch.add(z_gates[:rows], recurrent)
            gates.view(sentences, k, -1).add_(x_gates[:sentences, t].unsqueeze(1))
            gates[:, : 3 * hidden].sigmoid_()
            i, f, o, g = gates.chunk(4, dim=1)
            c = torch.addcmul(f * c, i, g.tanh_())
            h = (o * torch.tanh(c)).to(matmul_dtype)
            vocabulary.add(decoder.output_features(h, None if zs is None else zs[:rows]), targets[:rows, t])
        vocabulary.flush()
    out = torch.empty_like(log_p).view(b, k)
    out[order] = log_p.view(b, k)
    return out


class _DeferredVocabularyTerms:
    """Adds log p(target | h) of each step's rows into ``log_p``.

    Low precision scores every step as it comes (row-major logits and the fused softmax of
    :func:`_target_log_probs`). In float32 the hidden states of consecutive steps are pooled into
    products of at least ``POOLED_ROWS`` rows in the ``weight @ h.T`` layout with an in-place
    log-sum-exp (:func:`column_nll`, as :class:`ProjectedNLL` does): MKL runs that product faster
    than per-step ``h @ weight.T`` products (PTB-small evaluator: +10% sentences/s, median of 6
    alternating runs).
    """

    POOLED_ROWS = 2048

    def __init__(self, weight: Tensor, log_p: Tensor):
        self.weight, self.log_p = weight, log_p
        self.pooled = weight.dtype in (torch.float32, torch.float64)
        self.hidden: list[Tensor] = []
        self.targets: list[Tensor] = []

    def add(self, hidden: Tensor, targets: Tensor) -> None:
        if not self.pooled:
            self.log_p[: len(hidden)] += _target_log_probs(F.linear(hidden, self.weight), targets.unsqueeze(1))
            return
        self.hidden.append(hidden)
        self.targets.append(targets)
        if sum(len(h) for h in self.hidden) >= self.POOLED_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.hidden:
            return
        rows = torch.cat([torch.arange(len(h), device=h.device) for h in self.hidden])
        hidden, targets = torch.cat(self.hidden), torch.cat(self.targets)
        self.hidden, self.targets = [], []
        nll, _ = column_nll(self.weight @ hidden.t(), targets)
        self.log_p.index_add_(0, rows, -nll.to(self.log_p.dtype))


def _target_log_probs(logits: Tensor, targets: Tensor) -> Tensor:
    """log softmax(logits)[target] in float32, for logits [N, V] and targets [N, 1].

    Low-precision logits (autocast) go through the fused softmax in their own dtype: its outputs
    keep about 3 significant digits of every probability, i.e. 0.002 nats of log-probability,
    where a low-precision log-softmax would round log p = -8 to the nearest 1/32 and a float32 one
    would first copy the logits. Probabilities below the dtype's smallest normal number are
    recomputed in float32.
    """
    if logits.dtype in (torch.float32, torch.float64):
        return F.log_softmax(logits, dim=1).gather(1, targets).squeeze(1).float()
    probs = torch.softmax(logits, dim=1).gather(1, targets).squeeze(1).float()
    log_probs = probs.log()
    lost = probs < torch.finfo(logits.dtype).tiny
    if lost.any():
        log_probs[lost] = F.log_softmax(logits[lost].float(), dim=1).gather(1, targets[lost]).squeeze(1)
    return log_probs

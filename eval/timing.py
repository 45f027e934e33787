"""Timing machinery the benchmarks share (eval/bench_train.py, eval/bench_eval.py, eval/gpu_check.py):
the model sizes and run config of the training benchmark, a stratified sample of an epoch's batches,
timed passes of textvae's training path (``Trainer.run_epoch`` timed by a callback) and of He et
al.'s step and IW-NLL loop re-implemented on the same batches, and the median-with-spread cells of
the reports."""

from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from textvae import recipes
from textvae.config import RunConfig
from textvae.data import Corpus, Split, make_batches
from textvae.evaluation.protocol import make_generator
from textvae.training import Callback, Trainer
from textvae.training.device import synchronize
from textvae.types import Batch

SIZES = {
    "ptb-small": dict(embed_dim=256, enc_hidden=512, dec_hidden=512, latent_dim=32),
    "paper": dict(embed_dim=512, enc_hidden=1024, dec_hidden=1024, latent_dim=32),
}


@dataclass
class Spec:
    """One subprocess's work: a throughput measurement, or strategy overheads over ``vae``."""

    size: str
    device: str
    data: str
    train_lines: int
    batches: int
    repeats: int
    threads: int
    amp: str = "off"
    strategies: list[str] = field(default_factory=list)
    reference: bool = False
    onednn_cache: int | None = None
    paired: bool = False
    """Also time He et al.'s step in this process, alternating passes with textvae's (after textvae's
    peak memory is taken), so that the speed ratio does not drift with the machine's load."""
    """ONEDNN_PRIMITIVE_CACHE_CAPACITY for the subprocess; None keeps oneDNN's default (1024)."""


def bench_config(spec: Spec, strategy: str = "vae") -> RunConfig:
    """The ``ptb`` recipe for ``strategy`` (a recipe, else a registered strategy with defaults) at ``spec.size``."""
    registered = strategy not in recipes.strategies()
    d = recipes.resolve_dict("ptb", "vae" if registered else strategy)
    if registered:
        d["strategies"] = {strategy: {}}
    d["model"].update(SIZES[spec.size])
    d["data"].update(corpus=spec.data, train_limit=spec.train_lines)
    d["train"].update(device=spec.device, amp=spec.amp, progress=False)
    return RunConfig.from_dict(d, where=f"bench {spec.size}/{strategy}")


def sample_batches(split: Split, batch_size: int, n: int, min_size: int = 1) -> list[Batch]:
    """Every k-th bucket of one epoch in length order (its length mix), in a fixed shuffled order."""
    buckets = [b for b in make_batches(split, batch_size, "bucket") if b.size >= min_size]
    step = max(len(buckets) / n, 1.0)
    picked = [buckets[int(step * i + step / 2)] for i in range(min(n, len(buckets)))]
    random.Random(0).shuffle(picked)
    return picked


Pass = Callable[[list[Batch]], float]
"""One timed pass of a training step over batches -> its seconds."""


def run_pass(one_pass: Pass, batches: list[Batch]) -> float:
    """Seconds for one pass over ``batches``."""
    return one_pass(batches)


def step_pass(step: Callable[[Batch], None], device: torch.device) -> Pass:
    """A pass that calls ``step`` on each batch (He et al.'s step)."""

    def one_pass(batches: list[Batch]) -> float:
        synchronize(device)
        start = time.perf_counter()
        for batch in batches:
            step(batch)
        synchronize(device)
        return time.perf_counter() - start

    return one_pass


class PassTimer(Callback):
    """Seconds from an epoch's start to its last update, the device synchronised at both ends."""

    seconds = float("nan")

    def on_epoch_begin(self, trainer: Trainer) -> None:
        synchronize(trainer.device)
        self.start = time.perf_counter()

    def on_update_end(self, trainer: Trainer, update) -> None:
        if update.index == trainer.ctx.epoch_updates - 1:
            synchronize(trainer.device)
            self.seconds = time.perf_counter() - self.start


def trainer_pass(trainer: Trainer) -> Pass:
    """textvae's training path on the given batches: ``Trainer.run_epoch(batches)``, timed by the
    trainer's :class:`PassTimer` from its first update to its last (the epoch-end work aside)."""
    timer = next(c for c in trainer.callbacks if isinstance(c, PassTimer))

    def one_pass(batches: list[Batch]) -> float:
        trainer.run_epoch(batches)
        return timer.seconds

    return one_pass


def make_trainer(spec: Spec, strategy: str, corpus: Corpus, run_dir: str) -> Trainer:
    return Trainer(bench_config(spec, strategy), run_dir, corpus=corpus, callbacks=[PassTimer()])


class ReferenceVAE(nn.Module):
    """He et al.'s (2019) LSTM VAE as their code writes it (vae-lagging-encoder: ``LSTMEncoder``,
    ``LSTMDecoder``, ``VAE.loss`` with one sample): the point of comparison of issue 2, timed here
    on the same batches, machine and moment as textvae."""

    def __init__(self, vocab_size: int, embed_dim: int, enc_hidden: int, dec_hidden: int, latent_dim: int,
                 dropout: float = 0.5):
        super().__init__()
        self.enc_embed = nn.Embedding(vocab_size, embed_dim)
        self.enc_lstm = nn.LSTM(embed_dim, enc_hidden, batch_first=True)
        self.enc_linear = nn.Linear(enc_hidden, 2 * latent_dim, bias=False)
        self.dec_embed = nn.Embedding(vocab_size, embed_dim, padding_idx=-1)
        self.dropout_in, self.dropout_out = nn.Dropout(dropout), nn.Dropout(dropout)
        self.trans_linear = nn.Linear(latent_dim, dec_hidden, bias=False)
        self.dec_lstm = nn.LSTM(embed_dim + latent_dim, dec_hidden, batch_first=True)
        self.pred_linear = nn.Linear(dec_hidden, vocab_size, bias=False)
        for name, param in self.named_parameters():
            nn.init.uniform_(param, *((-0.1, 0.1) if "embed" in name else (-0.01, 0.01)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        _, (last_state, _) = self.enc_lstm(self.enc_embed(x))
        mu, logvar = self.enc_linear(last_state).chunk(2, -1)
        mu, logvar = mu.squeeze(0), logvar.squeeze(0)
        std = logvar.mul(0.5).exp()
        z = mu.unsqueeze(1) + torch.zeros_like(std.unsqueeze(1)).normal_() * std.unsqueeze(1)  # [B, 1, D]
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(dim=1)
        src, tgt = x[:, :-1], x[:, 1:]
        embed = self.dropout_in(self.dec_embed(src))
        embed = torch.cat((embed, z.expand(x.size(0), src.size(1), z.size(2))), -1)
        c_init = self.trans_linear(z.view(x.size(0), -1)).unsqueeze(0)
        output, _ = self.dec_lstm(embed, (torch.tanh(c_init), c_init))
        logits = self.pred_linear(self.dropout_out(output))
        rec = F.cross_entropy(logits.view(-1, logits.size(2)), tgt.contiguous().view(-1), reduction="none")
        rec = rec.view(x.size(0), 1, -1).sum(-1).mean(dim=1)
        return rec + kl, rec, kl


def reference_step(model: ReferenceVAE, clip: float) -> Callable[[Batch], None]:
    """He et al.'s ``text.py`` loop body: SGD lr 1 on encoder and decoder, clip, running loss sums."""
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0)
    totals = [0.0, 0.0]

    def step(batch: Batch) -> None:
        loss, rec, kl = model(batch.tokens.to(next(model.parameters()).device))
        optimizer.zero_grad()
        loss.mean(dim=-1).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        totals[0] += rec.sum().item()
        totals[1] += kl.sum().item()

    return step


def make_reference_pass(spec: Spec, config: RunConfig, vocab_size: int) -> Pass:
    torch.manual_seed(config.seed)
    device = torch.device(spec.device)
    model = ReferenceVAE(vocab_size, *(SIZES[spec.size][k] for k in
                                       ("embed_dim", "enc_hidden", "dec_hidden", "latent_dim"))).to(device)
    return step_pass(reference_step(model, config.train.clip_grad), device)


REFERENCE_SAMPLES_PER_PASS = 100
"""Samples per encoder pass of He et al.'s IW-NLL loop."""


def reference_log_px(model, batches: list[Batch], samples: int, seed: int) -> torch.Tensor:
    """He et al. ``nll_iw`` with batch size 1: per pass, encode, sample 100 z, score them."""
    generator = make_generator(seed, next(model.parameters()).device)
    out = []
    for batch in batches:
        for row in range(batch.size):
            length = int(batch.lengths[row])
            sentence = Batch(batch.tokens[row : row + 1, :length], batch.lengths[row : row + 1])
            log_w = []
            for _ in range(math.ceil(samples / REFERENCE_SAMPLES_PER_PASS)):
                posterior = model.posterior(sentence)  # with the strategy's transform (BN-VAE, ...)
                z = posterior.sample(REFERENCE_SAMPLES_PER_PASS, generator=generator)  # [1, ns, D]
                tokens = sentence.tokens.expand(REFERENCE_SAMPLES_PER_PASS, -1)
                lengths = sentence.lengths.expand(REFERENCE_SAMPLES_PER_PASS)
                z_decoder = model.to_decoder_space(z[0]) if hasattr(model, "to_decoder_space") else z[0]
                log_lik = -model.decoder.nll(tokens, lengths, z_decoder).unsqueeze(0)
                log_w.append(log_lik + model.log_prior(z) - posterior.log_prob(z))
            out.append(torch.logsumexp(torch.cat(log_w, dim=1)[:, :samples], dim=1) - math.log(samples))
    return torch.cat(out).double().cpu()


def spread(values: list[float], fmt: str = "{:.2f}", show: str = "each") -> str:
    """A report cell: the median, then ``show`` in brackets: ``each`` value, their ``range``
    (min–max) or ``iqr`` (the quartiles)."""
    cell = fmt.format(statistics.median(values))
    if show == "each":
        return f"{cell} ({', '.join(fmt.format(v) for v in values)})"
    if show == "range":
        return f"{cell} ({fmt.format(min(values))}–{fmt.format(max(values))})"
    q = statistics.quantiles(values, n=4)
    return f"{cell} (IQR {fmt.format(q[0])}-{fmt.format(q[2])})"

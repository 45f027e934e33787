"""Run a reference program's first training epoch under lockstep instrumentation.

    python eval/lockstep_reference.py OUT DUMP_STEPS SCRIPT [ARGS...]

runs ``SCRIPT ARGS`` (from the working directory, as ``python SCRIPT ARGS`` would) with run-time
patches of the program's own objects, none of its files:

- the posterior sample is its mean (reparameterisation noise 0; eval/lockstep.py zeroes textvae's too);
- before its first training update the model's state dict is saved (``OUT/initial.pt``); an update
  starts at the encoder's first training forward pass after the previous clip (programs that compute
  their loss themselves, as bn-vae's ``--fb 2``, are followed too; their KL weight is not seen);
- every training update is logged to ``OUT/steps.jsonl``: step, KL weight, learning rate, the batch's
  mean reconstruction and KL, and per module (encoder, decoder, all) the gradient norm before and
  after clipping;
- before the updates listed in DUMP_STEPS (comma-separated, 1-based) and the update after each, the
  full training state is saved (``OUT/state_K.pt``: the state dict with the batch-norm statistics,
  the batch, the KL weight, the optimisers' learning rates and states);
- so is the state around every update whose batch gives the decoder the vocabulary's last word
  (listed in ``OUT/last_word_steps.txt``): the program's decoder embedding has ``padding_idx=-1``;
- when it stops, the model's state dict is saved (``OUT/final.pt``): a later program of a two-stage
  row (``--load_path``) starts from it;
- each ``numpy.random.permutation`` it draws is logged to ``OUT/orders.jsonl`` (and handed back
  unchanged), so textvae can follow the same batch order.

The program stops at its first evaluation-mode loss call after training began (the end of epoch 1).
Decoder dropout is switched off through the config module eval/lockstep.py writes. A language model
(bn-vae's ``LSTM_LM``: no encoder, no KL) is followed through its ``reconstruct_error``; its KL is
logged as 0 and its modules count as the decoder.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy
import torch


class Recorder:
    def __init__(self, out: Path, dump: set[int]):
        self.out, self.dump = out, dump
        self.model = None
        self.optimizers: list[torch.optim.Optimizer] = []
        self.step = 0
        self.pending: dict | None = None
        self.last_word: int | None = None
        self.in_step = False
        self.vae = None
        self.kl_weight: float | None = None
        """The KL weight of the loss call in progress (None: the program computes its loss itself)."""
        self.language_model = False

    def state(self, step: int, batch, kl_weight: float) -> None:
        torch.save(
            {
                "state": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                "batch": batch,
                "kl_weight": kl_weight,
                "step": step,
                "lr": [o.param_groups[0]["lr"] for o in self.optimizers[-2:]],
                "optimizers": [o.state_dict() for o in self.optimizers[-2:]],
            },
            self.out / f"state_{step}.pt",
        )

    def on_step_start(self, model, x, kl_weight: float | None) -> None:
        """A training forward pass: the first since the last clip starts an update, and the state before
        it is the state the update starts from (later passes of the same update are ignored)."""
        if self.in_step:
            return
        self.in_step = True
        if self.model is None:
            self.model = model
            self.language_model = not hasattr(model, "encoder")
            torch.save(model.state_dict(), self.out / "initial.pt")
        self.step += 1
        if self.last_word is None:
            self.last_word = getattr(model, "decoder", model).embed.weight.size(0) - 1
        if isinstance(x, torch.Tensor) and bool((x[:, :-1] == self.last_word).any()):
            # the decoder reads the vocabulary's last word, whose embedding the program's
            # padding_idx=-1 freezes: a re-synchronised update here shows that difference
            self.dump.add(self.step)
            with open(self.out / "last_word_steps.txt", "a") as f:
                f.write(f"{self.step}\n")
        if self.step in self.dump or self.step - 1 in self.dump:
            self.state(self.step, x, float("nan") if kl_weight is None else float(kl_weight))
        self.pending = {
            "step": self.step,
            "kl_weight": None if kl_weight is None else float(kl_weight),
            "lr": self.optimizers[-1].param_groups[0]["lr"] if self.optimizers else None,
        }

    def norms(self, params) -> dict:
        names = {id(p): n for n, p in self.model.named_parameters()}
        found: dict[str, float] = {}
        for p in params:
            if p.grad is not None:
                module = names.get(id(p), "?").split(".")[0]
                if self.language_model:  # its modules are textvae's decoder
                    module = "decoder"
                found[module] = found.get(module, 0.0) + float(
                    p.grad.detach().double().pow(2).sum()
                )
        found["all"] = sum(found.values())
        return {k: v**0.5 for k, v in found.items()}

    def on_clip(self, params, clip) -> float:
        params = list(params)
        before = self.norms(params)
        total = clip(params)
        self.pending.update({"grad_before": before, "grad_after": self.norms(params)})
        self.in_step = False
        with open(self.out / "steps.jsonl", "a") as f:
            f.write(json.dumps(self.pending) + "\n")
        return total

    def stop(self) -> None:
        """The end of the epoch: keep the model (a later program may load it) and end the program."""
        torch.save(self.model.state_dict(), self.out / "final.pt")
        raise SystemExit(0)


def main() -> None:
    if len(sys.argv) < 4:
        raise SystemExit(__doc__.strip().splitlines()[2].strip())
    out, dump, script, args = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
    out.mkdir(parents=True, exist_ok=True)
    for name in ("steps.jsonl", "orders.jsonl", "last_word_steps.txt"):
        (out / name).write_text("")
    rec = Recorder(out, {int(s) for s in dump.split(",") if s})
    sys.path.insert(0, str(Path(script).resolve().parent))

    draw = numpy.random.permutation

    def recorded(x):
        order = draw(x)
        with open(out / "orders.jsonl", "a") as f:
            f.write(json.dumps({"n": len(order), "order": [int(i) for i in order]}) + "\n")
        return order

    numpy.random.permutation = recorded

    import modules  # the program's package, from its own folder

    def mean_only(self, mu, logvar, nsamples=1):
        return mu.unsqueeze(1).expand(mu.size(0), nsamples, mu.size(1))

    for cls in vars(modules).values():
        if isinstance(cls, type) and hasattr(cls, "reparameterize"):
            cls.reparameterize = mean_only
    vae_loss, vae_init = modules.VAE.loss, modules.VAE.__init__

    def loss(self, x, kl_weight, *rest, **kw):
        if not (self.training and torch.is_grad_enabled()) and rec.model is not None:
            rec.stop()  # the end of epoch 1: its first evaluation
        rec.kl_weight = kl_weight
        try:
            return vae_loss(self, x, kl_weight, *rest, **kw)
        finally:
            rec.kl_weight = None

    def init(self, encoder, decoder, *rest, **kw):
        vae_init(self, encoder, decoder, *rest, **kw)

        forward = type(encoder).forward
        if not getattr(
            forward, "lockstep", False
        ):  # the class's forward: some programs call it directly

            def encoder_forward(enc, x, *a, **k):
                training = enc.training and torch.is_grad_enabled()
                if training:
                    rec.on_step_start(rec.vae, x, rec.kl_weight)
                out = forward(enc, x, *a, **k)
                if training and rec.pending is not None and "kl" not in rec.pending:
                    mu, logvar = out[0], out[1]
                    rec.pending["kl"] = float(
                        (0.5 * (mu.pow(2) + logvar.exp() - logvar - 1)).sum(-1).mean()
                    )
                return out

            encoder_forward.lockstep = True
            type(encoder).forward = encoder_forward
        rec.vae = self
        reconstruct = type(decoder).reconstruct_error
        if not getattr(reconstruct, "lockstep", False):

            def reconstruct_error(dec, *a, **k):
                out = reconstruct(dec, *a, **k)
                if (
                    dec.training
                    and torch.is_grad_enabled()
                    and rec.pending is not None
                    and "rec" not in rec.pending
                ):
                    rec.pending["rec"] = float(out.detach().mean(dim=1).mean())
                return out

            reconstruct_error.lockstep = True
            type(decoder).reconstruct_error = reconstruct_error

    modules.VAE.loss, modules.VAE.__init__ = loss, init

    language_model = getattr(modules, "LSTM_LM", None)
    if language_model is not None:
        lm_reconstruct = language_model.reconstruct_error

        def lm_reconstruct_error(lm, x, *a, **k):
            if not (lm.training and torch.is_grad_enabled()):
                if rec.model is not None:
                    rec.stop()  # the end of epoch 1: its first evaluation
                return lm_reconstruct(lm, x, *a, **k)
            rec.on_step_start(lm, x, None)
            out = lm_reconstruct(lm, x, *a, **k)
            if rec.pending is not None and "rec" not in rec.pending:
                rec.pending.update(rec=float(out.detach().mean()), kl=0.0)
            return out

        language_model.reconstruct_error = lm_reconstruct_error
    clip = torch.nn.utils.clip_grad_norm_
    torch.nn.utils.clip_grad_norm_ = lambda params, max_norm, *a, **k: rec.on_clip(
        params, lambda ps: clip(ps, max_norm, *a, **k)
    )
    sgd_init = torch.optim.SGD.__init__

    def sgd_recorded(self, *a, **k):
        sgd_init(self, *a, **k)
        rec.optimizers.append(self)

    torch.optim.SGD.__init__ = sgd_recorded
    sys.argv = [script, *args]
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    if rec.step in rec.dump and rec.model is not None:
        rec.state(rec.step + 1, None, float("nan"))  # the state after the epoch's last update


if __name__ == "__main__":
    main()

"""The training loop of He et al. (2019): SGD, clip 5, per-epoch validation -ELBO, best/last
checkpoints, halve the learning rate and reload the best checkpoint after ``decay_epoch`` bad epochs
(from ``load_best_epoch`` on), stop after ``max_decay`` decays or ``epochs``.

Everything a resumed run needs is in ``checkpoints/last.pt``, the metrics records included; the
per-epoch batch order is a pure function of (seed, epoch), so an interrupted run resumed from its last
checkpoint continues exactly. The run folder's files and their guarantees belong to :mod:`textvae.rundir`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..capability import require_amp, require_eval_precision
from ..config import RunConfig
from ..data import Corpus, Split, load_corpus, make_batches
from ..data.schedule import load_schedule
from ..errors import CheckpointError, DataError, TrainingDiverged
from ..evaluation.evaluate import perplexity
from ..evaluation.protocol import evaluation_mode
from ..models import build_model
from ..procedures import build_procedure
from ..progress import Progress, counted, format_duration
from ..resolution import resolve_config
from ..rundir import RunDir
from ..types import Batch, LossTerms, Objective, StepContext
from .checkpoint import CHECKPOINT_FORMAT, RESUME_KEYS, check_compatible, load_checkpoint, load_model_state
from .device import set_deterministic, staged
from .environment import environment, pick_device
from .optim import OptimizerGroups
from .precision import Precision
from .tracking import Embedding, Tracker, open_tracker
from .resume import config_changes, describe_changes, flatten

log = logging.getLogger(__name__)
"""Per-epoch summary lines and progress (INFO); the CLI prints them, the Python API leaves them to the
caller's logging."""


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed, all stages together
    step: int = 0
    stage: int = 0
    stage_epoch: int = 0  # epochs completed in the current stage: the schedules' clock
    stage_step: int = 0
    lr: float = 1.0
    best_loss: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    decays: int = 0
    finished: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """The loop around a training procedure; procedures see it through the narrow
    :class:`~textvae.procedures.TrainingLoop` view (compute, backward_step, groups, random_batch,
    valid_batches, model, ctx)."""

    def __init__(self, config: RunConfig, run_dir: str | Path, data_dir: str | Path | None = None,
                 corpus: Corpus | None = None):
        self.config = config
        self.run = RunDir(run_dir)
        self.run_dir = self.run.path
        self.changes: dict[str, Any] = {}
        """Config keys a resume changed; recorded in the next epoch's metrics record."""
        self.tracker: Tracker = Tracker()
        self.device = pick_device(config.train.device)
        # before any file is written: a run that cannot compute as configured is refused, not degraded
        require_amp(config.train.amp, self.device)
        require_eval_precision(config.eval.precision, self.device)
        set_deterministic(config.train.deterministic)
        self.precision = Precision(config.train.amp, self.device)
        self.corpus = corpus if corpus is not None else load_corpus(config.data, data_dir)
        if config.eval.latent_clutter and self.corpus.splits[config.eval.split].labels is None:
            # Refused before training, not after it: the score needs the evaluated split's labels.
            raise DataError(f"eval.latent_clutter needs a labeled {config.eval.split} split (label<TAB>text lines) "
                            f"in corpus '{config.data.corpus}'")
        seed_everything(config.seed)
        self.model = build_model(config, len(self.corpus.vocab)).to(self.device)
        self.procedure = build_procedure(config.procedure)
        self.procedure.check(self.model, "procedure")
        self.stages = self.model.strategy.stages()
        if config.data.batch_schedule:
            # a schedule that misses this seed, an epoch of any stage or the split's batch count fails now,
            # not mid-run
            epoch_batches(config, self.corpus.splits["train"], self.epoch_budget - 1)
        self.state = TrainState(lr=config.train.lr)
        self.groups = OptimizerGroups(self.model, config.train, self.state.lr)
        train = self.corpus.splits["train"]
        bs = config.data.batch_size
        self.ctx = StepContext(steps_per_epoch=len(train) / bs, n_train=len(train), batch_size=bs,
                               total_steps=config.train.epochs * len(train) / bs)
        self.valid_batches = [b.to(self.device) for b in self._eval_batches("valid")]
        self._epoch_batches: list[Batch] = []
        self._draws = random.Random()
        self._objective_logs: dict[str, list[float]] = {}
        self._samples: dict[int, list[Batch]] = {}

    # ---- paths --------------------------------------------------------------------------------
    @property
    def ckpt_dir(self) -> Path:
        return self.run.checkpoints

    def _eval_batches(self, split: str, limit: int | None = None) -> list[Batch]:
        d = self.config.data
        return make_batches(self.corpus.splits[split].head(limit), d.batch_size, d.batching)

    # ---- checkpoints ----------------------------------------------------------------------------
    def _checkpoint(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "vocab_size": len(self.corpus.vocab),
            "model": self.model.state_dict(),
            "optimizers": self.groups.state_dict(),
            "procedure": self.procedure.state_dict(),
            "precision": self.precision.state_dict(),
            "state": {k: v for k, v in vars(self.state).items() if k != "history"},
            "rng": rng_state(),
            "log": self.state.history,  # the metrics log is rebuilt from this on resume (crash-proof)
        }

    def save(self, name: str) -> None:
        self.run.save_checkpoint(name, self._checkpoint())

    def resume(self, new_lr: float | None = None) -> None:
        """Continue from ``last.pt``; ``new_lr`` replaces the (possibly decayed) learning rate."""
        path = self.run.checkpoint("last")
        if not path.is_file() and not self.run.read_metrics(strict=False):
            return  # killed before its first epoch ended: nothing to continue, start over
        ckpt = load_checkpoint(path, self.device, require=RESUME_KEYS)
        check_compatible(ckpt["config"], self.config, path)
        if ckpt["format"] < CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path}: written by an older textvae (checkpoint format {ckpt['format']}); "
                                  "it evaluates, but training cannot resume from it")
        if ckpt["vocab_size"] != len(self.corpus.vocab):
            raise CheckpointError(f"{path}: checkpoint has a vocabulary of {ckpt['vocab_size']} words, "
                                  f"the corpus {len(self.corpus.vocab)}")
        load_model_state(self.model, ckpt["model"], path)
        fields = {f.name for f in dataclasses.fields(TrainState)}
        state = ckpt["state"]
        if not isinstance(state, dict) or not set(state) <= fields:
            unknown = sorted(set(state) - fields) if isinstance(state, dict) else type(state).__name__
            raise CheckpointError(f"{path}: damaged checkpoint: 'state' is not a training state ({unknown})")
        self.state = TrainState(**state)
        if "log" in ckpt:
            self.state.history = list(ckpt["log"])
        else:  # written before checkpoints carried the log: keep the file's complete lines up to this epoch
            self.state.history = [r for r in self.run.read_metrics(strict=False) if r.get("epoch", 0) <= self.state.epoch]
        if new_lr is not None:
            self.state.lr = new_lr
        self.ctx.stage = self.state.stage
        self.groups = OptimizerGroups(self.model, self.config.train, self.state.lr)
        self.groups.load_state_dict(ckpt["optimizers"], str(path))
        # load_state_dict restores the saved hyper-parameters; the config's (maybe changed) ones win
        fresh = OptimizerGroups(self.model, self.config.train, self.state.lr)
        for name in self.groups.main:
            for group, new in zip(self.groups[name].optimizer.param_groups, fresh[name].optimizer.param_groups):
                group.update({k: new[k] for k in ("lr", "momentum") if k in new})
        self.procedure.load_state_dict(ckpt["procedure"])
        self.precision.load_state_dict(ckpt.get("precision", {}))
        set_rng_state(ckpt["rng"])
        self.run.rewrite_metrics(self.state.history)

    def _reload_best(self) -> None:
        path = self.ckpt_dir / "best.pt"
        load_model_state(self.model, load_checkpoint(path, self.device)["model"], path)

    # ---- what procedures use ------------------------------------------------------------------
    def compute(self, batch: Batch) -> tuple[LossTerms, Objective]:
        """Forward pass at the current KL weight: the unweighted terms and the strategies' objective."""
        with self.precision.autocast():
            terms = self.model(batch, self.ctx)
            objective = self.model.strategy.objective(terms, batch, self.ctx)
        for key, value in objective.logs.items():
            self._objective_logs.setdefault(key, []).append(value)
        return terms, objective

    def backward_step(self, loss: torch.Tensor, groups) -> None:
        """Check, backpropagate, clip (``train.clip_scope``) and step the named optimiser groups.

        Gradients are freed right after the update, not before the next forward: last step's
        gradients would otherwise sit in memory beside this step's activations (paper size:
        1,014 -> 961 MB peak).
        """
        t = self.config.train
        self.check_finite(loss)
        self.precision.backward(loss)
        if t.clip_grad > 0:
            self.precision.unscale(self.groups.optimizers(dict.fromkeys([*self.groups.main, *groups])))
            scopes = [self.groups.main] if t.clip_scope == "global" else [[g] for g in self.groups.main]
            for scope in scopes:
                torch.nn.utils.clip_grad_norm_(self.groups.parameters(scope), t.clip_grad)
        self.precision.step(self.groups.optimizers(groups), lambda: self.groups.step(groups))
        self.groups.zero_grad(self.groups.main)

    def random_batch(self) -> Batch:
        """A uniformly drawn batch of this epoch's training batches (reproducible from seed and epoch)."""
        return self._epoch_batches[self._draws.randrange(len(self._epoch_batches))].to(self.device)

    def training_sample(self, n: int) -> list[Batch]:
        """Batches of n training sentences drawn once from the seed: the same sentences every epoch and
        on resume, so an estimate made from them changes only because the model does."""
        if n not in self._samples:
            train = self.corpus.splits["train"]
            chosen = sorted(random.Random(f"{self.config.seed}:epoch-sample").sample(range(len(train)),
                                                                                   min(n, len(train))))
            subset = Split([train.texts[i] for i in chosen], [train.ids[i] for i in chosen])
            d = self.config.data
            self._samples[n] = [b.to(self.device) for b in make_batches(subset, d.batch_size, d.batching)]
        return self._samples[n]

    def epoch_batches(self, epoch: int) -> list[Batch]:
        return epoch_batches(self.config, self.corpus.splits["train"], epoch)

    # ---- the loop ---------------------------------------------------------------------------------
    def train_step(self, batch: Batch) -> LossTerms:
        ctx = self.ctx
        ctx.kl_weight = self.model.strategy.kl_weight(ctx)
        self.model.train()
        terms = self.procedure.step(self, batch)
        self._auxiliary_steps(terms)
        return terms

    def _auxiliary_steps(self, terms: LossTerms) -> None:
        for strategy in self.model.strategy:
            name = f"auxiliary/{strategy.registry_name}"
            if name not in self.groups:
                continue
            loss = strategy.auxiliary_loss(terms, self.ctx)
            if loss is None:
                continue
            loss.backward()
            self.groups.step([name])
            self.groups.zero_grad([name])

    def check_finite(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            self.diverged(f"loss is {loss.item()} at epoch {self.state.epoch + 1}, step {self.state.step}")

    def diverged(self, what: str) -> None:
        """Stop, naming ``last.pt``: only epochs whose training and validation were finite write it."""
        last = self.run.checkpoint("last")
        good = self.state.history[-1]["epoch"] if self.state.history else 0
        kept = (f"last good checkpoint kept: {last} (epoch {good}); resume it with a lower train.lr"
                if last.exists() else "no checkpoint had been written yet")
        raise TrainingDiverged(f"training diverged: {what}; {kept}")

    def run_epoch(self, after_update: Callable[[int, Batch], None] | None = None) -> dict[str, float]:
        """One training epoch; ``after_update(i, batch)`` is called after the i-th update (diagnostics
        that score the model mid-epoch, such as eval/last_step.py --retrace)."""
        cfg = self.config
        epoch = self.state.epoch
        self.ctx.epoch, self.ctx.training = self.state.stage_epoch, True
        batches = staged(self.epoch_batches(epoch), self.device)
        self._epoch_batches = batches
        self.ctx.epoch_updates = len(batches)
        self._draws = random.Random(f"{cfg.seed}:{epoch}")
        self._objective_logs = {}
        self.model.strategy.on_epoch_start(self.ctx)
        totals = {"rec": 0.0, "kl": 0.0, "n": 0, "targets": 0}
        previous = self.state.history[-1].get("seconds") if self.state.history else None
        with Progress(f"training epoch {epoch + 1}/{self.epoch_budget}", len(batches), "batch", log,
                      cfg.train.progress, expected=previous) as bar:
            for i, batch in enumerate(batches):
                batch = batch.to(self.device)
                self.ctx.step, self.ctx.epoch_step = self.state.stage_step, i
                terms = self.train_step(batch)
                self.model.strategy.after_step(terms, self.ctx)
                self.state.step += 1
                self.state.stage_step += 1
                if after_update is not None:
                    after_update(i, batch)
                rec, kl = float(terms.rec.detach().sum()), float(terms.kl.detach().sum())
                totals["rec"] += rec
                totals["kl"] += kl
                self.tracker.step(self.state.step, {"rec": rec / batch.size, "kl": kl / batch.size,
                                                    "elbo": (rec + kl) / batch.size, "kl_weight": self.ctx.kl_weight})
                totals["n"] += batch.size
                totals["targets"] += batch.n_targets()
                bar.update(rec=f"{totals['rec'] / totals['n']:.2f}", kl=f"{totals['kl'] / totals['n']:.2f}",
                           w=f"{self.ctx.kl_weight:.2f}")
        self.ctx.training = False
        with evaluation_mode(self.model):
            self.model.strategy.on_epoch_sample(self.training_sample, self.ctx)
        self.model.strategy.on_epoch_end(self.ctx)
        n = max(totals["n"], 1)
        rec, kl = totals["rec"] / n, totals["kl"] / n
        nats_per_target = (totals["rec"] + totals["kl"]) / max(totals["targets"], 1)
        return {"rec": rec, "kl": kl, "elbo": rec + kl,
                "ppl": perplexity(nats_per_target),
                "kl_weight": self.ctx.kl_weight}

    def validate(self) -> dict[str, Any]:
        from ..evaluation import epoch_diagnostics

        return epoch_diagnostics(self.model, self.valid_batches, full=self.config.train.diagnostics,
                                 progress=self.config.train.progress)

    @property
    def epoch_budget(self) -> int:
        """Epochs of all stages together at most (early stopping may end the run sooner)."""
        return sum(stage.epochs or self.config.train.epochs for stage in self.stages)

    @property
    def done(self) -> bool:
        """Every stage has run to its budget or to its last learning-rate decay."""
        return self.state.stage == len(self.stages) - 1 and self._stage_done()

    def _stage_done(self) -> bool:
        budget = self.stages[self.state.stage].epochs or self.config.train.epochs
        return self.state.finished or self.state.stage_epoch >= budget

    def _start_stage(self, stage: int) -> None:
        """Begin ``stage`` from the previous stage's best model with fresh schedules and optimisers.

        The previous stage's best checkpoint is kept as ``<stage name>-best.pt`` and ``best.pt`` is
        cleared, so the new stage's decays can never reload the old stage's model. Idempotent, so a
        run killed before the new stage's first checkpoint repeats it identically on resume.
        """
        previous = self.stages[stage - 1].name
        kept = self.ckpt_dir / f"{previous}-best.pt"
        best = self.ckpt_dir / "best.pt"
        if not kept.exists() and best.exists():
            best.replace(kept)
        best.unlink(missing_ok=True)
        if kept.exists():
            load_model_state(self.model, load_checkpoint(kept, self.device)["model"], kept)
        s = self.state
        s.stage, s.stage_epoch, s.stage_step = stage, 0, 0
        s.lr, s.best_loss, s.best_epoch, s.bad_epochs, s.decays, s.finished = \
            self.config.train.lr, math.inf, -1, 0, 0, False
        self.ctx.stage, self.ctx.epoch, self.ctx.step = stage, 0, 0
        self.model.strategy.on_stage_start(stage, self.ctx)
        self.groups = OptimizerGroups(self.model, self.config.train, s.lr)

    def _time_left(self, seconds: float) -> str:
        """`` (epoch time; ETA for the epochs the budget still allows)`` for the per-epoch line."""
        left = 0 if self.done else self.epoch_budget - self.state.epoch
        timed = [r["seconds"] for r in self.state.history if isinstance(r.get("seconds"), (int, float))]
        text = f" ({format_duration(seconds)}"
        if left and timed:
            text += f"; at most {counted(left, 'more epoch')}, ETA {format_duration(sum(timed) / len(timed) * left)}"
        return text + ")"

    def fit(self, stop_after: int | None = None) -> TrainState:
        """Train until done; ``stop_after`` ends this call after that many epochs (a simulated crash)."""
        self.tracker = open_tracker(self.config.train.tensorboard, self.run.path, self.state.step)
        try:
            return self._fit(stop_after)
        finally:
            self.tracker.close()
            self.tracker = Tracker()

    def _fit(self, stop_after: int | None) -> TrainState:
        cfg = self.config
        if self.state.epoch == 0:
            self.model.strategy.on_fit_start(self.ctx)
            self.run.rewrite_metrics([])
        epochs_this_call = 0
        while not self.done:
            if self._stage_done():
                self._start_stage(self.state.stage + 1)
            start = time.perf_counter()
            train_metrics = self.run_epoch()
            valid = self.validate()
            if not all(math.isfinite(m[k]) for m in (train_metrics, valid) for k in ("rec", "kl", "elbo")):
                bad = next(f"{name} {k} is {m[k]}" for name, m in (("training", train_metrics), ("validation", valid))
                           for k in ("rec", "kl", "elbo") if not math.isfinite(m[k]))
                self.run.append_metrics({"epoch": self.state.epoch + 1, "step": self.state.step, "lr": self.state.lr,
                                         "train": train_metrics, "valid": valid, "diverged": True})
                self.diverged(f"{bad} after epoch {self.state.epoch + 1}")
            self.model.strategy.on_validation(valid, self.ctx)
            self.procedure.on_validation(self, valid)
            self.state.epoch += 1
            self.state.stage_epoch += 1
            selection = self.model.strategy.selection_loss(valid, self.ctx)
            improved = selection < self.state.best_loss
            if improved:
                self.state.best_loss, self.state.best_epoch, self.state.bad_epochs = selection, self.state.epoch, 0
            else:
                self.state.bad_epochs += 1
            record = {"epoch": self.state.epoch, "step": self.state.step, "lr": self.state.lr,
                      "seconds": round(time.perf_counter() - start, 3), "train": train_metrics, "valid": valid,
                      "strategy": self.model.strategy.log_scalars(), "best": improved}
            if len(self.stages) > 1:
                record["stage"] = self.stages[self.state.stage].name
            if selection != valid["elbo"]:
                record["selection_loss"] = selection
            if self._objective_logs:
                record["objective"] = {k: sum(v) / len(v) for k, v in self._objective_logs.items()}
            procedure_logs = self.procedure.log_scalars()
            if procedure_logs:
                record["procedure"] = procedure_logs
            if self.changes:
                record["changed"], self.changes = self.changes, {}
            if improved:
                self.save("best")
            if (not improved and self.state.bad_epochs >= cfg.train.decay_epoch
                    and self.state.stage_epoch >= cfg.train.load_best_epoch):
                self.state.decays += 1
                self.state.lr *= cfg.train.lr_decay
                self.state.bad_epochs = 0
                self._reload_best()
                self.groups.rebuild_decayed(self.model, cfg.train, self.state.lr)
                record["decay"] = {"count": self.state.decays, "lr": self.state.lr}
                self.state.finished = self.state.decays >= cfg.train.max_decay
            self.state.history.append(record)
            self.save("last")  # carries the record: a crash before the append below loses nothing
            self.run.append_metrics(record)
            self.tracker.epoch(record)
            log.info(f"epoch {self.state.epoch}: valid elbo {valid['elbo']:.3f} rec {valid['rec']:.3f} "
                     f"kl {valid['kl']:.3f}" + (f" mi {valid['mi']:.3f} au {valid['au']}" if "mi" in valid else "")
                     + self._time_left(record["seconds"]))
            epochs_this_call += 1
            if stop_after is not None and epochs_this_call >= stop_after and not self.done:
                break
        return self.state


def epoch_batches(config: RunConfig, train: Split, epoch: int) -> list[Batch]:
    """The training batches of ``epoch`` (0-based) in the order they are trained: a pure function of
    the config, so a resumed run, or a diagnosis of a finished one, sees the same ones."""
    d = config.data
    order = None
    if d.batch_schedule:
        schedule = load_schedule(d.batch_schedule)
        order = schedule.order(config.seed, epoch)
    try:
        batches = make_batches(train, d.batch_size, d.batching, shuffle=True, seed=config.seed * 1000 + epoch,
                               split_mode=d.batch_split, split_seed=config.seed, bucket_order=d.bucket_order,
                               order=order)
    except DataError as e:
        raise DataError(f"batch schedule {d.batch_schedule}: {e}") from None
    return [b for b in batches if b.size >= d.min_batch_size]


@torch.no_grad()
def training_kl(model: torch.nn.Module, batches: list[Batch]) -> float:
    """Mean KL per sentence as the training objective defines it (eval mode, weight 1).

    It equals the evaluator's KL for models whose decoder and KL see the same posterior; for the
    others (Scale-VAE) the evaluator reports the trained KL itself as ``kl_train``.
    """
    was_training = model.training
    model.eval()
    ctx = StepContext(training=False)
    total = sum(float(model(b, ctx).kl.sum()) for b in batches)
    model.train(was_training)
    return total / max(sum(b.size for b in batches), 1)


def train(config: RunConfig, run_dir: str | Path, data_dir: str | Path | None = None, resume: bool = False,
          stop_after: int | None = None, evaluate_test: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Train a run into ``run_dir`` and evaluate its best checkpoint on the test split.

    Writes config.json, env.json, vocab.txt, metrics.jsonl, checkpoints/{best,last}.pt and results.json
    (:mod:`textvae.rundir`), holding the folder's lock throughout. A fresh run into a folder that holds
    a run is refused unless ``overwrite`` (the old run is then deleted). ``resume`` continues the run
    in ``run_dir``; ``config`` may differ from the saved one only in keys that can change mid-run
    (``train.lr``, ``train.epochs``, ...), which are then applied and recorded.
    Returns the test results (empty when ``stop_after`` interrupted the run).
    """
    config = resolve_config(config)  # unknown strategies and bad parameters fail before any work
    run = RunDir(run_dir)
    changes: dict[str, Any] = {}
    if resume:
        run.require_run()
        changes = config_changes(RunConfig.load(run.config).to_dict(), config.to_dict(), run.config)
    else:
        run.check_claim(fresh=True, overwrite=overwrite)
    trainer = Trainer(config, run.path, data_dir)
    run.claim(fresh=not resume, overwrite=overwrite)
    trainer.run = run
    try:
        if resume:
            if not run.vocab.is_file():  # killed while the run was being set up
                run.write_vocab(trainer.corpus.vocab)
            if not run.env.is_file():
                run.write_env(environment(trainer.device))
            trainer.resume(new_lr=config.train.lr if "train.lr" in changes else None)
            done = trainer.state.stage_epoch
            if "train.epochs" in changes and not trainer.stages[trainer.state.stage].epochs and done > config.train.epochs:
                raise CheckpointError(f"{run.path}: train.epochs={config.train.epochs} but the run has already "
                                      f"trained {done} epochs")
            if changes:
                run.write_config(config.to_dict())
                trainer.changes = describe_changes(changes)
            if not trainer.done:
                run.remove_results()
        else:
            run.write_config(config.to_dict())
            run.write_vocab(trainer.corpus.vocab)
            run.write_env(environment(trainer.device))
        return _fit_and_evaluate(trainer, stop_after, evaluate_test)
    finally:
        run.release()


def _fit_and_evaluate(trainer: Trainer, stop_after: int | None, evaluate_test: bool) -> dict[str, Any]:
    config = trainer.config
    state = trainer.fit(stop_after=stop_after)
    if not trainer.done or not evaluate_test:
        return {}
    from ..evaluation import evaluate_run_model

    trainer._reload_best()
    test_batches = [b.to(trainer.device) for b in trainer._eval_batches(config.eval.split, config.eval.limit)]
    results, latents = evaluate_run_model(trainer.model, test_batches, config.eval, seed=config.seed,
                                          progress=config.train.progress)
    if "kl_train" not in results:
        results["kl_train"] = training_kl(trainer.model, test_batches)
    results["strategy"] = trainer.model.strategy.log_scalars()
    results.update({"split": config.eval.split, "limit": config.eval.limit, "best_epoch": state.best_epoch,
                    "epochs": state.epoch})
    if latents is not None:
        trainer.run.write_latents(config.eval.split, latents.means, latents.labels, latents.index)
    trainer.run.write_results(results)
    tracker = open_tracker(config.train.tensorboard, trainer.run.path, state.step)
    try:
        embedding = posterior_embedding(trainer.model, test_batches, trainer.corpus.splits[config.eval.split]) \
            if tracker.active else None
        tracker.test(state.step, results, flatten(config.to_dict()), embedding)
    finally:
        tracker.close()
    return results


@torch.no_grad()
def posterior_embedding(model: torch.nn.Module, batches: list[Batch], split: Split) -> Embedding | None:
    """The posterior means of the evaluated sentences in split order, with their texts and labels
    (None for a language model, which has no posterior)."""
    if not model.latent_dim:
        return None
    with evaluation_mode(model):
        means = torch.cat([model.posterior(b).mu.float().cpu() for b in batches])
    order = torch.cat([b.index.cpu() for b in batches])
    perm = torch.argsort(order)  # batches come by sentence length; the projector lists split order
    rows = order[perm].tolist()
    return Embedding(means[perm], [split.texts[i] for i in rows],
                     None if split.labels is None else [split.labels[i] for i in rows])

"""The training loop of He et al. (2019): SGD, clip 5, per-epoch validation -ELBO, best/last
checkpoints, halve the learning rate and reload the best checkpoint after ``decay_epoch`` bad epochs
(from ``load_best_epoch`` on), stop after ``max_decay`` decays or ``epochs``.

Everything a resumed run needs is in ``checkpoints/last.pt``, the metrics records included; the
per-epoch batch order is a pure function of (seed, epoch), so an interrupted run resumed from its last
checkpoint continues exactly. The run folder's files and their guarantees belong to :mod:`textvae.rundir`.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

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
from ..resolution import resolve_config
from ..rundir import RunDir
from ..types import Batch, LossTerms, Objective, StepContext
from .callbacks import Callback, Update, trainer_callbacks
from .checkpoint import CHECKPOINT_FORMAT, RESUME_KEYS, check_compatible, load_checkpoint, load_model_state
from .device import set_deterministic, staged
from .environment import environment, pick_device
from .optim import OptimizerGroups
from .precision import Precision
from .resume import config_changes, describe_changes


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
    valid_batches, model, ctx).

    ``callbacks`` run after the trainer's own and the config's ``train.callbacks``
    (:mod:`textvae.training.callbacks`); one stops training by setting ``should_stop``.
    """

    def __init__(self, config: RunConfig, run_dir: str | Path | RunDir, data_dir: str | Path | None = None,
                 corpus: Corpus | None = None, callbacks: Iterable[Callback] = ()):
        self.config = config
        self.run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.changes: dict[str, Any] = {}
        """Config keys a resume changed; recorded in the next epoch's metrics record."""
        self.callbacks = trainer_callbacks(config, callbacks)
        self.should_stop = False
        """Set by a callback: training ends once the epoch in progress is committed."""
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
        self.valid_batches = [b.to(self.device) for b in self.eval_batches("valid")]
        self._epoch_batches: list[Batch] = []
        self._draws = random.Random()
        self._objective_logs: dict[str, list[float]] = {}
        self._samples: dict[int, list[Batch]] = {}

    def eval_batches(self, split: str, limit: int | None = None) -> list[Batch]:
        """The batches of ``split`` (its first ``limit`` sentences) as validation and test see them."""
        d = self.config.data
        return make_batches(self.corpus.splits[split].head(limit), d.batch_size, d.batching)

    # ---- checkpoints ----------------------------------------------------------------------------
    def checkpoint_state(self) -> dict[str, Any]:
        """What ``checkpoints/NAME.pt`` holds: everything a resumed run needs."""
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
        self.run.save_checkpoint(name, self.checkpoint_state())

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
            self.state.history = [r for r in self.run.read_metrics(strict=False)
                                  if r.get("epoch", 0) <= self.state.epoch]
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

    def load_best(self) -> None:
        """The model of ``best.pt`` (of the current stage)."""
        path = self.run.checkpoint("best")
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
        self.callbacks.on_after_backward(self, list(groups))
        if t.clip_grad > 0:
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

    def diverged(self, what: str, record: dict[str, Any] | None = None) -> None:
        """Stop, naming ``last.pt``: only epochs whose training and validation were finite write it.
        ``record``: the diverged epoch's metrics record, which :class:`~.callbacks.MetricsLog` keeps."""
        last = self.run.checkpoint("last")
        good = self.state.history[-1]["epoch"] if self.state.history else 0
        kept = (f"last good checkpoint kept: {last} (epoch {good}); resume it with a lower train.lr"
                if last.exists() else "no checkpoint had been written yet")
        raise TrainingDiverged(f"training diverged: {what}; {kept}", record)

    def run_epoch(self, batches: list[Batch] | None = None) -> dict[str, float]:
        """One training epoch: its updates, then the strategies' end-of-epoch work; returns the epoch's
        training figures. ``batches`` replaces the epoch's own (benchmarks time a fixed sample)."""
        cfg = self.config
        epoch = self.state.epoch
        self.ctx.epoch, self.ctx.training = self.state.stage_epoch, True
        batches = staged(self.epoch_batches(epoch) if batches is None else batches, self.device)
        self._epoch_batches = batches
        self.ctx.epoch_updates = len(batches)
        self._draws = random.Random(f"{cfg.seed}:{epoch}")
        self._objective_logs = {}
        self.model.strategy.on_epoch_start(self.ctx)
        self.callbacks.on_epoch_begin(self)
        totals = {"rec": 0.0, "kl": 0.0, "n": 0, "targets": 0}
        for i, batch in enumerate(batches):
            batch = batch.to(self.device)
            self.ctx.step, self.ctx.epoch_step = self.state.stage_step, i
            terms = self.train_step(batch)
            self.model.strategy.after_step(terms, self.ctx)
            self.state.step += 1
            self.state.stage_step += 1
            rec, kl = float(terms.rec.detach().sum()), float(terms.kl.detach().sum())
            totals["rec"] += rec
            totals["kl"] += kl
            totals["n"] += batch.size
            totals["targets"] += batch.n_targets()
            scalars = {"rec": rec / batch.size, "kl": kl / batch.size, "elbo": (rec + kl) / batch.size,
                       "kl_weight": self.ctx.kl_weight}
            self.callbacks.on_update_end(self, Update(i, batch, terms, scalars))
        self.ctx.training = False
        with evaluation_mode(self.model):
            self.model.strategy.hand_out_epoch_samples(self.training_sample, self.ctx)
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
        kept = self.run.stage_checkpoint(previous)
        best = self.run.checkpoint("best")
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

    def fit(self) -> TrainState:
        """Train until every stage is done or a callback sets :attr:`should_stop`."""
        self.should_stop = False
        try:
            self.callbacks.on_train_begin(self)
            if self.state.epoch == 0:
                self.model.strategy.on_fit_start(self.ctx)
            while not self.done and not self.should_stop:
                self._train_epoch()
        except BaseException as error:
            self.callbacks.on_exception(self, error)
            raise
        self.callbacks.on_train_end(self)
        return self.state

    def _train_epoch(self) -> None:
        """Train, validate, select, decay and commit one epoch."""
        if self._stage_done():
            self._start_stage(self.state.stage + 1)
        start = time.perf_counter()
        train_metrics = self.run_epoch()
        self.callbacks.on_validation_begin(self)
        valid = self.validate()
        self._check_epoch_finite(train_metrics, valid)
        self.callbacks.on_validation_end(self, valid)
        self.model.strategy.on_validation(valid, self.ctx)
        self.procedure.on_validation(self, valid)
        self.state.epoch += 1
        self.state.stage_epoch += 1
        selection, improved = self._select_model(valid)
        record = self._epoch_record(time.perf_counter() - start, train_metrics, valid, selection, improved)
        if improved:
            self.save("best")
        if not improved:
            self._decay_if_stalled(record)
        self._commit_epoch(record)

    def _check_epoch_finite(self, train_metrics: dict[str, float], valid: dict[str, Any]) -> None:
        bad = [f"{name} {k} is {m[k]}" for name, m in (("training", train_metrics), ("validation", valid))
               for k in ("rec", "kl", "elbo") if not math.isfinite(m[k])]
        if bad:
            record = {"epoch": self.state.epoch + 1, "step": self.state.step, "lr": self.state.lr,
                      "train": train_metrics, "valid": valid, "diverged": True}
            self.diverged(f"{bad[0]} after epoch {self.state.epoch + 1}", record)

    def _select_model(self, valid: dict[str, Any]) -> tuple[float, bool]:
        """The strategy's selection loss of this epoch and whether it is the best so far."""
        selection = self.model.strategy.selection_loss(valid, self.ctx)
        improved = selection < self.state.best_loss
        if improved:
            self.state.best_loss, self.state.best_epoch, self.state.bad_epochs = selection, self.state.epoch, 0
        else:
            self.state.bad_epochs += 1
        return selection, improved

    def _epoch_record(self, seconds: float, train_metrics: dict[str, float], valid: dict[str, Any],
                      selection: float, improved: bool) -> dict[str, Any]:
        """The epoch's line of metrics.jsonl (a decay adds ``decay`` to it)."""
        record = {"epoch": self.state.epoch, "step": self.state.step, "lr": self.state.lr,
                  "seconds": round(seconds, 3), "train": train_metrics, "valid": valid,
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
        return record

    def _decay_if_stalled(self, record: dict[str, Any]) -> None:
        """After ``decay_epoch`` bad epochs (from ``load_best_epoch`` on): reload the best model, multiply
        the learning rate by ``lr_decay``, and finish the stage after ``max_decay`` decays."""
        t, s = self.config.train, self.state
        if s.bad_epochs < t.decay_epoch or s.stage_epoch < t.load_best_epoch:
            return
        s.decays += 1
        s.lr *= t.lr_decay
        s.bad_epochs = 0
        self.load_best()
        self.groups.rebuild_decayed(self.model, t, s.lr)
        record["decay"] = {"count": s.decays, "lr": s.lr}
        s.finished = s.decays >= t.max_decay

    def _commit_epoch(self, record: dict[str, Any]) -> None:
        self.state.history.append(record)
        self.save("last")  # carries the record: a crash before the metrics log's append loses nothing
        self.callbacks.on_epoch_end(self, record)


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
          evaluate_test: bool = True, overwrite: bool = False, callbacks: Iterable[Callback] = ()) -> dict[str, Any]:
    """Train a run into ``run_dir`` and evaluate its best checkpoint on the test split.

    Writes config.json, env.json, vocab.txt, metrics.jsonl, checkpoints/{best,last}.pt and results.json
    (:mod:`textvae.rundir`), holding the folder's lock throughout. A fresh run into a folder that holds
    a run is refused unless ``overwrite`` (the old run is then deleted). ``resume`` continues the run
    in ``run_dir``; ``config`` may differ from the saved one only in keys that can change mid-run
    (``train.lr``, ``train.epochs``, ...), which are then applied and recorded. ``callbacks``:
    :class:`~textvae.training.Callback` instances (:mod:`textvae.training.callbacks`).
    Returns the test results (empty when a callback stopped the run before it was done).
    """
    config = resolve_config(config)  # unknown strategies and bad parameters fail before any work
    run = RunDir(run_dir)
    changes: dict[str, Any] = {}
    if resume:
        run.require_run()
        changes = config_changes(RunConfig.load(run.config).to_dict(), config.to_dict(), run.config)
    else:
        run.check_claim(fresh=True, overwrite=overwrite)
    trainer = Trainer(config, run, data_dir, callbacks=callbacks)
    run.claim(fresh=not resume, overwrite=overwrite)
    try:
        if resume:
            if not run.vocab.is_file():  # killed while the run was being set up
                run.write_vocab(trainer.corpus.vocab)
            if not run.env.is_file():
                run.write_env(environment(trainer.device))
            trainer.resume(new_lr=config.train.lr if "train.lr" in changes else None)
            done = trainer.state.stage_epoch
            stage_sets_its_epochs = bool(trainer.stages[trainer.state.stage].epochs)
            if "train.epochs" in changes and not stage_sets_its_epochs and done > config.train.epochs:
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
        return _fit_and_evaluate(trainer, evaluate_test)
    finally:
        run.release()


def _fit_and_evaluate(trainer: Trainer, evaluate_test: bool) -> dict[str, Any]:
    config = trainer.config
    state = trainer.fit()
    if not trainer.done or not evaluate_test:
        return {}
    from ..evaluation import evaluate_run_model

    trainer.load_best()
    test_batches = [b.to(trainer.device) for b in trainer.eval_batches(config.eval.split, config.eval.limit)]
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
    trainer.callbacks.on_test_end(trainer, results, test_batches)
    return results

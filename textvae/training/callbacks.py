"""Callbacks: code that runs at named points of the training loop without being part of it.

A callback subclasses :class:`Callback` and overrides the events it needs; each gets the
:class:`~textvae.training.Trainer` (its ``config``, ``state``, ``model``, ``run``, ``ctx``, ...) and
the event's data. In the order they happen::

    on_train_begin                 fit() starts (fresh or resumed; trainer.state says which epoch)
      on_epoch_begin               before the epoch's first update
        on_after_backward          gradients computed, before clipping and the optimiser step
        on_update_end              after each update of the epoch (an :class:`Update`)
      on_validation_begin          after the epoch's last update
      on_validation_end            the validation metrics (finite: a diverged epoch raises instead)
      on_epoch_end                 the epoch's record, once last.pt and metrics.jsonl hold it
    on_train_end                   fit() ends: every stage done, or a callback asked to stop
    on_exception                   fit() raises (divergence, Ctrl-C, ...), before the error propagates
    on_test_end                    the test results, once results.json holds them (:func:`train` only)

**Stopping.** A callback stops training by setting ``trainer.should_stop = True``. The loop checks it
after each ``on_epoch_end``: the epoch in progress is finished and committed first, so a stopped run
resumes exactly (``textvae train --resume``). :class:`StopAfter` is the built-in example.

**Order.** The trainer's own callbacks run first — :class:`MetricsLog` (metrics.jsonl),
:class:`ProgressLog` (bars and per-epoch lines), :class:`TensorBoardLog` (with ``train.tensorboard``)
— then those named in ``train.callbacks`` (``"package.module:ClassName"``, built without arguments),
then those passed to :class:`~textvae.training.Trainer` or :func:`~textvae.training.train`.

A callback observes: changing the model, the optimisers or the random state from one makes the run
differ from the run its config describes (docs/extending.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

import torch

from ..data import Split
from ..errors import ArgumentTypeError, ConfigError, TrainingDiverged
from ..evaluation.protocol import evaluation_mode
from ..progress import Progress, counted, format_duration
from ..registry import import_object
from ..types import Batch, LossTerms
from .tracking import Embedding, Tracker, open_tracker

if TYPE_CHECKING:
    from .trainer import Trainer

log = logging.getLogger(__name__)
"""Training progress and the per-epoch summary lines (INFO); the CLI prints them, the Python API leaves
them to the caller's logging."""


@dataclass
class Update:
    """One optimiser update, as :meth:`Callback.on_update_end` gets it."""

    index: int
    """0-based position of the update in its epoch."""
    batch: Batch
    terms: LossTerms
    """The batch's unweighted loss terms (per sentence, as the model returned them)."""
    scalars: dict[str, float]
    """``rec``, ``kl``, ``elbo`` (nats per sentence of the batch) and ``kl_weight``."""


class Callback:
    """Base class: every event does nothing."""

    def on_train_begin(self, trainer: Trainer) -> None:
        pass

    def on_epoch_begin(self, trainer: Trainer) -> None:
        pass

    def on_after_backward(self, trainer: Trainer, groups: list[str]) -> None:
        """``groups``: the optimiser groups about to be stepped (``trainer.groups.parameters(groups)``).
        Also called for a procedure's inner steps (Agg-VAE's encoder-only updates). Gradients are
        unscaled here when ``train.clip_grad`` > 0 or ``train.amp`` is not ``fp16``."""

    def on_update_end(self, trainer: Trainer, update: Update) -> None:
        pass

    def on_validation_begin(self, trainer: Trainer) -> None:
        pass

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """``record``: the epoch's line of metrics.jsonl (epoch, step, lr, train, valid, ...)."""

    def on_train_end(self, trainer: Trainer) -> None:
        pass

    def on_exception(self, trainer: Trainer, error: BaseException) -> None:
        pass

    def on_test_end(self, trainer: Trainer, results: dict[str, Any], batches: list[Batch]) -> None:
        """``batches``: the evaluated split's batches on the trainer's device."""


class CallbackList:
    """Calls an event on every callback in order: ``callbacks.on_epoch_end(trainer, record)``."""

    def __init__(self, callbacks: Iterable[Callback]):
        self.callbacks = list(callbacks)

    def __iter__(self):
        return iter(self.callbacks)

    def __getattr__(self, event: str):
        if not event.startswith("on_"):
            raise AttributeError(event)

        def call(*args: Any) -> None:
            for callback in self.callbacks:
                getattr(callback, event)(*args)

        return call


class MetricsLog(Callback):
    """metrics.jsonl: emptied when a run starts, one record appended per committed epoch, and the
    record of an epoch whose figures were not finite (``"diverged": true``) before training stops."""

    def on_train_begin(self, trainer: Trainer) -> None:
        if trainer.state.epoch == 0:
            trainer.run.rewrite_metrics([])

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        trainer.run.append_metrics(record)

    def on_exception(self, trainer: Trainer, error: BaseException) -> None:
        if isinstance(error, TrainingDiverged) and error.record is not None:
            trainer.run.append_metrics(error.record)


class ProgressLog(Callback):
    """A bar (on a terminal) or log lines for each training epoch, and the per-epoch summary line."""

    bar: Progress | None = None

    def on_epoch_begin(self, trainer: Trainer) -> None:
        history = trainer.state.history
        self.bar = Progress(f"training epoch {trainer.state.epoch + 1}/{trainer.epoch_budget}",
                            trainer.ctx.epoch_updates, "batch", log, trainer.config.train.progress,
                            expected=history[-1].get("seconds") if history else None).__enter__()
        self.totals = {"rec": 0.0, "kl": 0.0, "n": 0}

    def on_update_end(self, trainer: Trainer, update: Update) -> None:
        t, n = self.totals, update.batch.size
        t["rec"] += update.scalars["rec"] * n  # the trainer's figures: no second read from the device
        t["kl"] += update.scalars["kl"] * n
        t["n"] += n
        self.bar.update(rec=f"{t['rec'] / t['n']:.2f}", kl=f"{t['kl'] / t['n']:.2f}", w=f"{trainer.ctx.kl_weight:.2f}")

    def on_validation_begin(self, trainer: Trainer) -> None:
        self.bar.__exit__(None, None, None)
        self.bar = None

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        valid = record["valid"]
        log.info(f"epoch {record['epoch']}: valid elbo {valid['elbo']:.3f} rec {valid['rec']:.3f} "
                 f"kl {valid['kl']:.3f}" + (f" mi {valid['mi']:.3f} au {valid['au']}" if "mi" in valid else "")
                 + time_left(trainer, record["seconds"]))

    def on_exception(self, trainer: Trainer, error: BaseException) -> None:
        if self.bar is not None:
            self.bar.__exit__(type(error), error, None)  # closes the bar without a "done" line
            self.bar = None


def time_left(trainer: Trainer, seconds: float) -> str:
    """`` (epoch time; ETA for the epochs the budget still allows)`` for the per-epoch line."""
    left = 0 if trainer.done else trainer.epoch_budget - trainer.state.epoch
    timed = [r["seconds"] for r in trainer.state.history if isinstance(r.get("seconds"), (int, float))]
    text = f" ({format_duration(seconds)}"
    if left and timed:
        text += f"; at most {counted(left, 'more epoch')}, ETA {format_duration(sum(timed) / len(timed) * left)}"
    return text + ")"


class TensorBoardLog(Callback):
    """TensorBoard event files in the run folder (:mod:`textvae.training.tracking`): step scalars with
    each committed epoch, and the test scalars, hyper-parameters and posterior embedding."""

    tracker: Tracker = Tracker()

    def on_train_begin(self, trainer: Trainer) -> None:
        self.tracker = open_tracker(True, trainer.run.path, trainer.state.step)

    def on_update_end(self, trainer: Trainer, update: Update) -> None:
        self.tracker.step(trainer.state.step, update.scalars)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self.tracker.epoch(record)

    def on_train_end(self, trainer: Trainer) -> None:
        self.tracker.close()
        self.tracker = Tracker()

    def on_exception(self, trainer: Trainer, error: BaseException) -> None:
        self.on_train_end(trainer)  # steps of an epoch that was not committed are dropped

    def on_test_end(self, trainer: Trainer, results: dict[str, Any], batches: list[Batch]) -> None:
        from .resume import flatten

        config, step = trainer.config, trainer.state.step
        tracker = open_tracker(True, trainer.run.path, step)
        try:
            embedding = posterior_embedding(trainer.model, batches, trainer.corpus.splits[config.eval.split]) \
                if tracker.active else None
            tracker.test(step, results, flatten(config.to_dict()), embedding)
        finally:
            tracker.close()


class StopAfter(Callback):
    """Stop after ``epochs`` epochs of this call to ``fit()`` (a run interrupted on purpose, e.g. to
    continue it with other settings; tests use it as a crash that left a resumable folder)."""

    def __init__(self, epochs: int):
        if epochs < 1:
            raise ValueError(f"StopAfter: epochs must be >= 1, got {epochs}")
        self.epochs = epochs

    def on_train_begin(self, trainer: Trainer) -> None:
        self.seen = 0

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self.seen += 1
        if self.seen >= self.epochs:
            trainer.should_stop = True


def named_callbacks(names: Iterable[str], where: str = "config") -> list[Callback]:
    """Instances of the classes ``train.callbacks`` names (``"package.module:ClassName"``)."""
    callbacks = []
    for name in names:
        cls = import_object(name, where=f"{where}: train.callbacks")
        if not (isinstance(cls, type) and issubclass(cls, Callback)):
            raise ConfigError(f"{where}: train.callbacks: '{name}' is not a textvae.training.Callback subclass")
        callbacks.append(cls())
    return callbacks


def trainer_callbacks(config, extra: Iterable[Callback] = (), where: str = "config") -> CallbackList:
    """The trainer's own callbacks, then the config's, then ``extra`` (see the module docstring)."""
    own: list[Callback] = [MetricsLog(), ProgressLog()]
    if config.train.tensorboard:
        own.append(TensorBoardLog())
    for callback in extra:
        if not isinstance(callback, Callback):
            raise ArgumentTypeError(f"callbacks: {callback!r} is not a textvae.training.Callback")
    return CallbackList([*own, *named_callbacks(config.train.callbacks, where), *extra])


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

"""Experiment tracking: TensorBoard event files beside ``metrics.jsonl``.

The :class:`~textvae.training.callbacks.TensorBoardLog` callback calls :meth:`Tracker.step` after
every optimiser step and :meth:`Tracker.epoch` after every epoch's record is logged;
:func:`open_tracker` returns a TensorBoard writer when
``train.tensorboard`` is on and the ``tensorboard`` package is installed, else a tracker that does
nothing. Scalars: ``step/*`` (the batch's reconstruction and KL per sentence, their sum, the KL
weight), ``train/*`` and ``valid/*`` (the epoch record: -ELBO, KL, MI, AU, ...), ``strategy/*`` (a
strategy's own scalars, e.g. Scale-VAE's f), ``objective/*``, ``procedure/*`` and ``lr``, all against
the global step. Step scalars are written when their epoch is committed.

Once the test results are written (:meth:`Tracker.test`, at the last step): ``test/*`` scalars (NLL,
-ELBO, KL, MI, AU, ...), the hyper-parameters (the resolved config, flattened) with the test metrics
for TensorBoard's HPARAMS tab, written into the run's own event files, and the test posterior means
as an embedding for the PROJECTOR tab, with each sentence's label (where the corpus has labels) and text.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class Tracker:
    """Tracks nothing: the tracker of runs without TensorBoard."""

    def step(self, step: int, scalars: dict[str, float]) -> None:
        pass

    active = False
    """Whether anything is written: the caller computes the test embedding only then."""

    def epoch(self, record: dict[str, Any]) -> None:
        pass

    def test(self, step: int, results: dict[str, Any], config: dict[str, Any],
             embedding: "Embedding | None" = None) -> None:
        pass

    def close(self) -> None:
        pass


# results.json numbers that describe the evaluation, not the model: no ``test/*`` scalar.
SETTING_RESULTS = ("seed", "iw_samples", "au_threshold", "limit", "n_sentences", "n_targets")
# The metrics the HPARAMS tab shows beside the hyper-parameters (those present and finite).
HPARAM_METRICS = ("nll", "elbo", "rec", "kl", "mi", "au", "iw_ppl", "kl_train", "best_epoch")


@dataclass
class Embedding:
    """Test posterior means, one row per sentence, with the sentence's label (None: unlabelled corpus)."""

    means: Any  # [N, latent_dim] tensor
    texts: list[str]
    labels: list[str] | None


def hparam_values(config: dict[str, Any]) -> dict[str, Any]:
    """The flattened config as the HPARAMS tab takes it: numbers, strings and booleans."""
    out = {}
    for key, value in config.items():
        if isinstance(value, (bool, int, float, str)):
            out[key] = value
        else:  # None, lists: shown as text
            out[key] = json.dumps(value)
    return out


def _scalars(prefix: str, values: dict[str, Any]):
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # lists (per-dimension KL) and names (the MI estimator) are in metrics.jsonl
        if math.isfinite(value):
            yield f"{prefix}/{key}", float(value)


class TensorBoardTracker(Tracker):
    """Writes an epoch's step scalars with its epoch scalars once the epoch is committed (checkpoint and
    metrics.jsonl written), so the event files, like the metrics log, hold exactly the finished epochs
    and a run that fails mid-epoch leaves its folder as it was."""

    def __init__(self, log_dir: Path, purge_step: int | None = None):
        self.log_dir = log_dir
        self.purge_step = purge_step
        self.writer = None
        self.pending: list[tuple[str, float, int]] = []

    def step(self, step: int, scalars: dict[str, float]) -> None:
        self.pending += [(tag, value, step) for tag, value in _scalars("step", scalars)]

    def epoch(self, record: dict[str, Any]) -> None:
        self._open()
        for tag, value, step in self.pending:
            self.writer.add_scalar(tag, value, step)
        self.pending = []
        step = record["step"]
        for section in ("train", "valid", "strategy", "objective", "procedure"):
            for tag, value in _scalars(section, record.get(section) or {}):
                self.writer.add_scalar(tag, value, step)
        self.writer.add_scalar("lr", record["lr"], step)
        self.writer.flush()

    active = True

    def _open(self) -> None:
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step: a resumed run drops what a killed predecessor logged after the checkpoint.
            self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=self.purge_step, flush_secs=30)

    def test(self, step: int, results: dict[str, Any], config: dict[str, Any],
             embedding: Embedding | None = None) -> None:
        from torch.utils.tensorboard.summary import hparams

        self._open()
        measured = {k: v for k, v in results.items() if k not in SETTING_RESULTS}
        for tag, value in _scalars("test", measured):
            self.writer.add_scalar(tag, value, step)
        metrics = dict(_scalars("test", {k: results[k] for k in HPARAM_METRICS if k in results}))
        # Into this writer's own event file (add_hparams would open a second run in a sub-folder); the
        # HPARAMS tab reads the metric values from the test/* scalars above.
        for summary in hparams(hparam_values(config), metrics):
            self.writer.file_writer.add_summary(summary, step)
        if embedding is not None:
            texts = [" ".join(t.split())[:200] for t in embedding.texts]  # one TSV cell each
            if embedding.labels is not None:
                metadata, header = [[label, text] for label, text in zip(embedding.labels, texts)], ["label", "text"]
            else:
                metadata, header = texts, None
            self.writer.add_embedding(embedding.means, metadata=metadata, metadata_header=header, global_step=step,
                                      tag="test_posterior_mean")
        self.writer.flush()

    def close(self) -> None:
        self.pending = []  # steps of an epoch that did not finish
        if self.writer is not None:
            self.writer.close()


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def open_tracker(enabled: bool, run_dir: Path, step: int) -> Tracker:
    """A TensorBoard tracker writing into ``run_dir`` (``step``: the step training continues from)."""
    if not enabled or not tensorboard_available():
        return Tracker()
    # Events up to ``step`` are the checkpoint's; later ones are from an attempt that was killed.
    return TensorBoardTracker(Path(run_dir), purge_step=step + 1 if step else None)

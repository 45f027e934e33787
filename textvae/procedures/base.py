"""The training-procedure interface: how one training batch becomes parameter updates.

A procedure is one file plus a registry entry (``procedure.name`` in a run config). The trainer
hands it a :class:`TrainingLoop`, a narrow view of itself, and never needs editing per method:

===========================  ====================================================================
``loop.compute(batch)``      forward pass (autocast, current KL weight) -> (LossTerms, Objective);
                             the objective's logs reach ``metrics.jsonl``
``loop.backward_step(loss,   zero the gradients, check the loss is finite, backward, clip, and
groups)``                    step only the named optimiser groups
``loop.groups``              :class:`~textvae.training.optim.OptimizerGroups` (``main`` lists the
                             VAE's groups: encoder, decoder, prior)
``loop.random_batch()``      a uniformly drawn training batch (reproducible: a function of seed
                             and step)
``loop.valid_batches``       the validation batches, on the model's device
``loop.model``, ``loop.ctx`` the model and the current :class:`~textvae.types.StepContext`
===========================  ====================================================================

Procedure state (a mode flag, a previous metric) lives in :meth:`Procedure.state_dict`, which the
trainer checkpoints, so a resumed run continues exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from torch import Tensor

from ..types import Batch, LossTerms, Objective, StepContext

if TYPE_CHECKING:
    from ..training.optim import OptimizerGroups


class TrainingLoop(Protocol):
    model: Any
    ctx: StepContext
    groups: "OptimizerGroups"
    valid_batches: list[Batch]

    def compute(self, batch: Batch) -> tuple[LossTerms, Objective]: ...

    def backward_step(self, loss: Tensor, groups: Sequence[str]) -> None: ...

    def random_batch(self) -> Batch: ...


class Procedure:
    registry_name: str = ""
    paper: str = ""

    def __init__(self, config):
        self.config = config

    def check(self, model, where: str) -> None:
        """Refuse models this procedure cannot train (a ConfigError naming the keys)."""

    def step(self, loop: TrainingLoop, batch: Batch) -> LossTerms:
        raise NotImplementedError

    def on_validation(self, loop: TrainingLoop, metrics: dict[str, Any]) -> None:
        """After each epoch's validation, before the checkpoints are written."""

    def log_scalars(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

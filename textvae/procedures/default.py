"""The default training procedure: one joint update of every model part per batch."""

from __future__ import annotations

from dataclasses import dataclass

from ..types import Batch, LossTerms
from .base import Procedure, TrainingLoop
from .registry import PROCEDURES


@dataclass
class DefaultConfig:
    pass


@PROCEDURES.register("default", config=DefaultConfig)
class Default(Procedure):
    """One joint update of encoder, decoder and prior per batch."""

    def step(self, loop: TrainingLoop, batch: Batch) -> LossTerms:
        terms, objective = loop.compute(batch)
        loop.backward_step(objective.total(), loop.groups.main)
        return terms

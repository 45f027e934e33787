"""Training procedures: how a batch becomes parameter updates. Each registers itself on import."""

from . import aggressive, default  # noqa: F401
from .base import Procedure, TrainingLoop
from .registry import PROCEDURES


def build_procedure(spec: dict, where: str = "config") -> Procedure:
    params = dict(spec)
    name = params.pop("name", "default")
    return PROCEDURES.build(name, params, where=where)


__all__ = ["PROCEDURES", "Procedure", "TrainingLoop", "build_procedure"]

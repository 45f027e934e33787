"""Training: the :class:`Trainer` loop, :func:`train` (a run folder from a config), callbacks and
checkpoints."""

from .callbacks import Callback, StopAfter, Update
from .checkpoint import load_checkpoint, save_atomic
from .trainer import Trainer, train

__all__ = ["Callback", "StopAfter", "Trainer", "Update", "load_checkpoint", "save_atomic", "train"]

from .checkpoint import load_checkpoint, save_atomic
from .trainer import Trainer, train

__all__ = ["Trainer", "load_checkpoint", "save_atomic", "train"]

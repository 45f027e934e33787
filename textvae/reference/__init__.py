"""What textvae knows about the research programs its recipes follow (He et al. 2019's
vae-lagging-encoder and its descendants bn-vae, DU-VAE and Li et al.'s vae-pretraining-encoder):
how their saved models' tensors map onto textvae's models (:mod:`.state_dicts`), how to read what
they print (:mod:`.logs`), and how to turn one of their saved models into a run folder
(:mod:`.importing`, behind ``textvae import``). No code of those programs is part of textvae."""

from .logs import parse_log, read_final_test, read_training_curve
from .state_dicts import PROGRAMS, reference_to_textvae

__all__ = [
    "PROGRAMS",
    "parse_log",
    "read_final_test",
    "read_training_curve",
    "reference_to_textvae",
]

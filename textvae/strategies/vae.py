"""``vae``: the plain ELBO, the baseline every other strategy changes."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Strategy
from .registry import STRATEGIES


@dataclass
class VAEConfig:
    pass


@STRATEGIES.register("vae", config=VAEConfig)
class PlainVAE(Strategy):
    """The plain ELBO: reconstruction + KL with weight 1 (Kingma & Welling 2014; Bowman et al. 2016)."""

    paper = "Bowman et al. 2016, Generating Sentences from a Continuous Space"

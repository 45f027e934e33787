"""scikit-learn adapter: a trained text VAE as a transformer, and a linear-probe pipeline."""

from .encoder import TextVAEEncoder
from .probe import linear_probe

__all__ = ["TextVAEEncoder", "linear_probe"]

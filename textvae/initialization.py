"""Weight initialisations shared by the models and the strategies that re-initialise them."""

from __future__ import annotations

from torch import nn


def init_he2019(module: nn.Module) -> None:
    """U(-0.01, 0.01) for every weight, U(-0.1, 0.1) for embeddings (He et al. 2019)."""
    for name, param in module.named_parameters():
        if "embed" in name:
            nn.init.uniform_(param, -0.1, 0.1)
        else:
            nn.init.uniform_(param, -0.01, 0.01)

"""Named optimiser groups: encoder, decoder, prior and each strategy's auxiliary network.

The trainer builds the groups from the config, checkpoints them by name, and rebuilds the main
groups at every learning-rate decay. Procedures step any subset of them (Agg-VAE updates the encoder
alone, then the decoder alone); with the same learning rate everywhere, stepping every group is the
same update as one optimiser over all parameters (SGD and Adam are per-parameter), so a run that
never splits its steps trains exactly as with a single optimiser.

============  ===========================================================================
group         parameters
============  ===========================================================================
``encoder``   the inference network and every strategy parameter that is not auxiliary
              (BN-VAE's BatchNorm, δ-VAE's offsets: they shape q(z|x))
``decoder``   the generative network p(x|z)
``prior``     a learned prior (the decoupled flow); own Adam when ``train.prior_optimizer = "adam"``
``auxiliary/<strategy>``
              a strategy's own network with the optimiser it declares (FactorVAE's discriminator);
              never clipped with the VAE, never decayed
============  ===========================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ..types import OptimizerSpec

MAIN_GROUPS = ("encoder", "decoder", "prior")


@dataclass
class OptimizerGroup:
    name: str
    params: list[nn.Parameter]
    spec: OptimizerSpec
    optimizer: torch.optim.Optimizer = field(init=False)

    def __post_init__(self) -> None:
        self.optimizer = self.spec.build(self.params)


def _unique(params: Iterable[nn.Parameter], taken: set[int]) -> list[nn.Parameter]:
    out = []
    for p in params:
        if p.requires_grad and id(p) not in taken:
            taken.add(id(p))
            out.append(p)
    return out


def partition(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Every trainable parameter of ``model`` in exactly one group (empty groups left out)."""
    taken: set[int] = set()
    groups: dict[str, list[nn.Parameter]] = {}
    for strategy in getattr(model, "strategy", []):
        aux = _unique(strategy.auxiliary_parameters(), taken)
        if aux:
            groups[f"auxiliary/{strategy.registry_name}"] = aux
    decoder = getattr(model, "decoder", None)
    prior = getattr(model, "prior", None)
    groups["decoder"] = _unique(decoder.parameters() if decoder is not None else [], taken)
    groups["prior"] = _unique(prior.parameters() if prior is not None else [], taken)
    groups["encoder"] = _unique(model.parameters(), taken)
    return {name: params for name, params in groups.items() if params}


class OptimizerGroups:
    """The run's optimisers by group name; see the module docstring."""

    def __init__(self, model: nn.Module, train_config: Any, lr: float):
        self.groups: dict[str, OptimizerGroup] = {}
        t = train_config
        main = OptimizerSpec(kind=t.optimizer, lr=lr, momentum=t.momentum)
        strategies = {s.registry_name: s for s in getattr(model, "strategy", [])}
        for name, params in partition(model).items():
            if name.startswith("auxiliary/"):
                spec = strategies[name.split("/", 1)[1]].auxiliary_optimizer()
            elif name == "prior" and t.prior_optimizer == "adam":
                spec = OptimizerSpec(kind="adam", lr=t.prior_lr * lr / t.lr)
            else:
                spec = main
            self.groups[name] = OptimizerGroup(name, params, spec)

    def __iter__(self) -> Iterator[OptimizerGroup]:
        return iter(self.groups.values())

    def __getitem__(self, name: str) -> OptimizerGroup:
        return self.groups[name]

    def __contains__(self, name: str) -> bool:
        return name in self.groups

    @property
    def main(self) -> list[str]:
        """The VAE's own groups (clipped together, decayed together)."""
        return [name for name in MAIN_GROUPS if name in self.groups]

    def parameters(self, names: Iterable[str]) -> list[nn.Parameter]:
        return [p for name in names if name in self.groups for p in self.groups[name].params]

    def optimizers(self, names: Iterable[str]) -> list[torch.optim.Optimizer]:
        return [self.groups[name].optimizer for name in names if name in self.groups]

    def zero_grad(self, names: Iterable[str] | None = None) -> None:
        for name in (self.groups if names is None else names):
            if name in self.groups:
                self.groups[name].optimizer.zero_grad(set_to_none=True)

    def step(self, names: Iterable[str]) -> None:
        for name in names:
            if name in self.groups:
                self.groups[name].optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return {name: group.optimizer.state_dict() for name, group in self.groups.items()}

    def load_state_dict(self, state: dict[str, Any], where: str) -> None:
        if not isinstance(state, dict) or set(state) != set(self.groups):
            found = sorted(state) if isinstance(state, dict) else "an older list format"
            raise CheckpointError(f"{where}: checkpoint has optimiser groups {found}, the run needs "
                                  f"{sorted(self.groups)}")
        for name, group in self.groups.items():
            group.optimizer.load_state_dict(state[name])

    def rebuild_decayed(self, model: nn.Module, train_config: Any, lr: float) -> None:
        """Fresh optimisers (state dropped, as He et al.) at the new rate; auxiliary groups keep theirs."""
        fresh = OptimizerGroups(model, train_config, lr)
        for name, group in fresh.groups.items():
            if group.spec.decays and not name.startswith("auxiliary/"):
                self.groups[name] = group

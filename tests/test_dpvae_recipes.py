"""recipes/dpvae: every regulariser with and without the decoupled prior, otherwise identical."""

from __future__ import annotations

from pathlib import Path

import pytest

from textvae.config import RunConfig, read_mapping

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "dpvae"
REGULARISERS = ["vae", "beta-vae-h", "beta-vae-b", "beta-tcvae", "factor-vae", "infovae"]


def test_one_pair_per_regulariser():
    assert sorted(p.stem for p in RECIPES.glob("*.toml")) == sorted(
        name + suffix for name in REGULARISERS for suffix in ("", "-dp"))


@pytest.mark.parametrize("name", REGULARISERS)
def test_pair_differs_only_in_the_prior(name):
    plain, decoupled = (RunConfig.from_dict(read_mapping(RECIPES / f"{name}{s}.toml")) for s in ("", "-dp"))
    assert plain.prior == {"name": "standard-normal"}
    assert decoupled.prior["name"] == "decoupled"
    assert plain.strategies == decoupled.strategies
    plain_dict, decoupled_dict = plain.to_dict(), decoupled.to_dict()
    plain_dict.pop("prior"), decoupled_dict.pop("prior")
    assert plain_dict == decoupled_dict

import json

import pytest

from textvae import recipes, resolution
from textvae.config import RunConfig
from textvae.errors import ConfigError
from textvae.resolution import apply_overrides


def test_defaults_round_trip():
    cfg = RunConfig()
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "d, message",
    [
        ({"modle": {}}, "unknown key 'modle' (did you mean 'model'?)"),
        ({"model": {"latent_dimm": 3}}, "unknown key 'model.latent_dimm' (did you mean 'latent_dim'?)"),
        ({"model": {"latent_dim": 3.5}}, "key 'model.latent_dim' expects int, got 3.5"),
        ({"train": {"amp": "yes"}}, "key 'train.amp' must be one of 'off' | 'bf16' | 'fp16', got 'yes'"),
        ({"data": {"batching": "buckets"}}, "must be one of 'bucket' | 'padded'"),
        ({"strategies": {"scale-vea": {}}}, "unknown strategy 'scale-vea'"),
        ({"strategies": {"beta-vae": {"bta": 1.0}}}, "unknown key 'strategies.beta-vae.bta' (did you mean 'beta'?)"),
        ({"prior": {"name": "standard-normal", "depth": 2}}, "unknown key 'prior.depth'"),
        ({"strategies": {}}, "'strategies' is empty"),
        ({"train": {"callbacks": ["a.b:C", 0]}}, "key 'train.callbacks[1]' expects str, got 0"),
        ({"train": {"callbacks": "a.b:C"}}, "key 'train.callbacks' expects list, got 'a.b:C'"),
    ],
)
def test_bad_keys_and_types_are_named(d, message):
    with pytest.raises(ConfigError, match=None) as err:
        resolution.from_dict(d, where="x.toml")
    assert message in str(err.value)
    assert str(err.value).startswith("x.toml")
    assert "\n" not in str(err.value)


def test_ints_widen_to_floats_but_bools_do_not():
    assert RunConfig.from_dict({"train": {"lr": 1}}).train.lr == 1.0
    with pytest.raises(ConfigError):
        RunConfig.from_dict({"train": {"lr": True}})


def test_strategy_shorthand_override_targets_the_owner():
    d = {"strategies": {"kl-annealing": {"kl_start": 0.1}, "beta-vae": {"beta": 0.4}}}
    out = apply_overrides(d, ["strategy.beta=0.8", "strategies.kl-annealing.warm_up=3", "train.epochs=2"])
    assert out["strategies"]["beta-vae"]["beta"] == 0.8
    assert out["strategies"]["kl-annealing"] == {"kl_start": 0.1, "warm_up": 3}
    assert out["train"]["epochs"] == 2
    with pytest.raises(ConfigError, match="no strategy in the stack"):
        apply_overrides(d, ["strategy.gamma=1"])


def test_recipe_layers_replace_the_stack_and_apply_dataset_overrides():
    cfg = recipes.resolve("demo", "kl-annealing")
    assert list(cfg.strategies) == ["kl-annealing"]
    assert cfg.strategies["kl-annealing"].kl_start == 0.1 and cfg.strategies["kl-annealing"].warm_up == 3
    assert cfg.to_dict()["strategies"] == {"kl-annealing": {"kl_start": 0.1, "warm_up": 3.0}}
    assert cfg.data.corpus == "demo"
    assert cfg.name == "demo/kl-annealing"
    ptb = recipes.resolve("ptb", "beta-vae", ["strategy.beta=0.2"], seed=5)
    assert (ptb.model.embed_dim, ptb.model.enc_hidden, ptb.model.latent_dim) == (256, 512, 32)
    assert ptb.to_dict()["strategies"] == {"beta-vae": {"beta": 0.2, "selection": "weighted"}} and ptb.seed == 5


def test_every_recipe_resolves():
    for dataset in recipes.datasets():
        for strategy in recipes.strategies():
            recipes.resolve(dataset, strategy)


def test_unknown_recipe_names_suggest():
    with pytest.raises(ConfigError, match="did you mean 'kl-annealing'"):
        recipes.resolve("demo", "kl-anealing")
    with pytest.raises(ConfigError, match="did you mean 'yahoo'"):
        recipes.resolve("yaho", "vae")


def test_prior_layer_composes_with_any_strategy():
    cfg = recipes.resolve("demo", "scale-vae", prior="decoupled")
    assert cfg.prior["name"] == "decoupled" and cfg.train.prior_optimizer == "adam"
    assert "scale-vae" in cfg.strategies
    with pytest.raises(ConfigError, match="unknown prior 'decoupeld'"):
        recipes.resolve("demo", "vae", prior="decoupeld")


def test_grouped_recipes_resolve_by_path():
    cfg = recipes.resolve("demo", "dpvae/factor-vae-dp")
    assert cfg.prior["name"] == "decoupled" and "factor-vae" in cfg.strategies
    with pytest.raises(ConfigError, match="unknown recipe strategy 'dpvae/nope'"):
        recipes.resolve("demo", "dpvae/nope")


def test_saved_run_configs_drop_retired_keys_but_user_configs_refuse_them(tmp_path):
    saved = RunConfig().to_dict()
    saved["eval"]["batch_size"] = 128  # written by textvae before the key was retired
    path = tmp_path / "config.json"
    path.write_text(json.dumps(saved))
    assert RunConfig.load(path).to_dict() == RunConfig().to_dict()
    with pytest.raises(ConfigError, match="unknown key 'eval.batch_size'"):
        RunConfig.from_dict(saved)
    saved["eval"]["batch_sise"] = 1  # anything not retired is still an error in a saved config
    path.write_text(json.dumps(saved))
    with pytest.raises(ConfigError, match="eval.batch_sise"):
        RunConfig.load(path)

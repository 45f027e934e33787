"""Training protocols (recipes/protocols/): a strategy recipe trained as another method's recipe is
(``bn-vae@scale-vae``), and the report naming each row's optimiser where rows differ."""

import pytest
from test_report import fake_run, invoke

from textvae import recipes
from textvae.config import read_mapping
from textvae.errors import ConfigError
from textvae.training.resume import flatten

SCALE_VAE_RECIPES = ("scale-vae", "scale-vae-0.9", "scale-vae-1.1", "scale-vae-star")


def flat(dataset, strategy):
    return flatten(recipes.resolve(dataset, strategy).to_dict())


@pytest.mark.parametrize("dataset", ["demo", "ptb", "yelp"])
def test_the_scale_vae_protocol_is_what_the_scale_vae_recipes_train_with(dataset):
    protocol = read_mapping(recipes.RECIPES_DIR / "protocols" / "scale-vae.toml")["train"]
    for strategy in SCALE_VAE_RECIPES:
        config = flat(dataset, strategy)
        assert {k: config[f"train.{k}"] for k in protocol} == protocol, strategy


@pytest.mark.parametrize("strategy", ["kl-annealing", "bn-vae", "du-vae", "lstm-lm"])
def test_a_protocol_changes_only_train_keys_and_the_name(strategy):
    own, trained_alike = flat("demo", strategy), flat("demo", f"{strategy}@scale-vae")
    scale_vae = flat("demo", "scale-vae")
    changed = {k for k in own if own[k] != trained_alike[k]}
    assert "name" in changed and trained_alike["name"] == f"demo/{strategy}@scale-vae"
    assert all(k.startswith("train.") for k in changed - {"name"})
    train = [k for k in scale_vae if k.startswith("train.") and k != "train.epochs"]
    assert {k: trained_alike[k] for k in train} == {k: scale_vae[k] for k in train}
    # the method stays the strategy's own
    assert {k: v for k, v in trained_alike.items() if k.startswith("strategies.")} == \
        {k: v for k, v in own.items() if k.startswith("strategies.")}


def test_a_dataset_layer_of_the_strategy_still_applies_under_a_protocol():
    gamma = "strategies.du-vae.gamma"
    assert flat("yelp", "du-vae@scale-vae")[gamma] == flat("yelp", "du-vae")[gamma]


def test_protocols_are_not_listed_as_strategies():
    assert "protocols/scale-vae" not in recipes.strategies()
    assert recipes.protocols() == ["he2019", "scale-vae"]


@pytest.mark.parametrize("name, message", [
    ("bn-vae@nope", "unknown recipe protocol 'nope'; available: he2019, scale-vae"),
    ("bn-vae@../x", "recipe protocol '../x': not a recipe name"),
    ("nope@scale-vae", "unknown recipe strategy 'nope'"),
])
def test_bad_protocol_names_are_one_line_errors(name, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        recipes.resolve("demo", name)


def test_a_protocol_that_sets_more_than_train_keys_is_refused(tmp_path, monkeypatch):
    for folder in ("datasets", "strategies", "protocols"):
        (tmp_path / folder).mkdir()
    (tmp_path / "datasets" / "demo.toml").write_text('[data]\ncorpus = "demo"\n')
    (tmp_path / "strategies" / "vae.toml").write_text("[strategies.vae]\n")
    (tmp_path / "protocols" / "odd.toml").write_text("[train]\nlr = 0.1\n[model]\nlatent_dim = 4\n")
    monkeypatch.setattr(recipes, "RECIPES_DIR", tmp_path)
    with pytest.raises(ConfigError, match=r"odd\.toml: a protocol sets only \[train\] keys \(found model, train\)"):
        recipes.resolve("demo", "vae@odd")


def test_the_report_names_each_rows_optimiser_when_they_differ(tmp_path):
    fake_run(tmp_path, "bn-vae", 1, nll=100.0, kl=5.0, mi=4.0, au=32)
    fake_run(tmp_path, "bn-vae@scale-vae", 1, overrides=['train.optimizer="adam"', "train.lr=0.001",
                                                          'train.clip_scope="per-module"'],
             nll=101.0, kl=4.0, mi=3.0, au=32)
    result = invoke(tmp_path, "--column", "yahoo")
    assert result.exit_code == 0, result.output
    assert "| model | seeds | optimizer | NLL |" in result.output
    assert "| BN-VAE (0.6) | 1 | sgd lr 1, clip 5 global | 100.00 |" in result.output
    # the protocol's row keeps the published values of its strategy beside it
    assert "| BN-VAE (0.6) @scale-vae | 1 | adam lr 0.001, clip 5 per-module | 101.00 |" in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("| BN-VAE (0.6) @scale-vae")]
    assert lines[0].split("|")[-5:-1] == result.output.split("| BN-VAE (0.6) | ")[1].splitlines()[0].split("|")[-5:-1]


def test_rows_of_one_optimiser_get_no_optimiser_column(tmp_path):
    fake_run(tmp_path, "bn-vae", 1, nll=100.0, kl=5.0, mi=4.0, au=32)
    fake_run(tmp_path, "vae", 1, nll=101.0, kl=0.0, mi=0.0, au=0)
    result = invoke(tmp_path)
    assert result.exit_code == 0, result.output
    assert "optimizer" not in result.output


def test_the_he2019_protocol_is_the_defaults_train_section():
    protocol = read_mapping(recipes.RECIPES_DIR / "protocols" / "he2019.toml")["train"]
    config = flat("demo", "vae")
    assert {k: config[f"train.{k}"] for k in protocol} == protocol
    trained_alike = flat("demo", "scale-vae@he2019")
    assert {k: trained_alike[f"train.{k}"] for k in protocol} == protocol
    assert trained_alike["strategies.scale-vae.f_bar"] == flat("demo", "scale-vae")["strategies.scale-vae.f_bar"]

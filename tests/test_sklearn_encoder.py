import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks
from sklearn.utils._testing import SkipTest
from tiny_vae import save_run

from textvae.data import load_corpus
from textvae.errors import ConfigError
from textvae.runs import load_run
from textvae.sklearn import TextVAEEncoder, linear_probe
from textvae.types import Batch

MODEL = {"embed_dim": 16, "enc_hidden": 16, "dec_hidden": 16, "latent_dim": 4, "init": "pytorch"}


@pytest.fixture
def run_dir(make_config, tiny_corpus, tmp_path):
    return save_run(make_config(tiny_corpus, model=MODEL), tmp_path / "run")


@pytest.fixture
def labeled(make_config, tiny_corpus):
    split = load_corpus(make_config(tiny_corpus).data).splits["train"]
    return split.texts, np.asarray([int(label) for label in split.labels])


def posterior_mean(run_dir, words):
    run = load_run(run_dir)
    ids = run.vocab.encode_words(words)
    batch = Batch(torch.tensor([ids]), torch.tensor([len(ids)]))
    with torch.no_grad():
        return run.model.posterior(batch).mu[0].double().numpy()


def test_transform_returns_posterior_means(run_dir, labeled):
    texts, _ = labeled
    enc = TextVAEEncoder(run_dir=str(run_dir))
    assert enc.fit(texts) is enc
    x = enc.transform(texts)
    assert x.shape == (len(texts), 4) and x.dtype == np.float64
    np.testing.assert_allclose(x[5], posterior_mean(run_dir, texts[5].split()), rtol=1e-5, atol=1e-6)
    # one text at a time equals the batched (padded, reordered) result
    np.testing.assert_allclose(enc.transform(texts[5:6])[0], x[5], rtol=1e-5, atol=1e-6)
    assert list(enc.get_feature_names_out()) == ["mu0", "mu1", "mu2", "mu3"]


def test_feature_kinds(run_dir, labeled):
    texts = labeled[0][:10]
    mean = TextVAEEncoder(run_dir=run_dir).fit(texts).transform(texts)
    both = TextVAEEncoder(run_dir=run_dir, features="mean+logvar").fit(texts)
    assert both.transform(texts).shape == (10, 8)
    np.testing.assert_allclose(both.transform(texts)[:, :4], mean)
    assert list(both.get_feature_names_out())[3:5] == ["mu3", "logvar0"]
    sampler = TextVAEEncoder(run_dir=run_dir, features="sample", random_state=3).fit(texts)
    a = sampler.transform(texts)
    np.testing.assert_array_equal(a, sampler.transform(texts))
    assert not np.allclose(a, mean)
    assert sampler.__sklearn_tags__().non_deterministic is False
    assert TextVAEEncoder(features="sample").__sklearn_tags__().non_deterministic is True


def test_bad_input_has_defined_behaviour(run_dir):
    enc = TextVAEEncoder(run_dir=run_dir).fit(["the food"])
    # empty and blank strings are the empty sentence <s> </s>
    empty = posterior_mean(run_dir, [])
    np.testing.assert_allclose(enc.transform(["", "   \t "]), [empty, empty], rtol=1e-5, atol=1e-6)
    # out-of-vocabulary words are <unk>
    np.testing.assert_allclose(enc.transform(["the zzzqx"])[0], posterior_mean(run_dir, ["the", "<unk>"]),
                               rtol=1e-5, atol=1e-6)
    # over-long texts keep their first max_length words (default 200)
    long_text = " ".join(["food"] * 150 + ["good"] * 150)
    np.testing.assert_allclose(enc.transform([long_text])[0], posterior_mean(run_dir, ["food"] * 150 + ["good"] * 50),
                               rtol=1e-5, atol=1e-6)
    short = TextVAEEncoder(run_dir=run_dir, max_length=3).fit(["x"])
    np.testing.assert_allclose(short.transform(["the food was good"])[0],
                               posterior_mean(run_dir, "the food was".split()), rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="position 1"):
        enc.transform(["fine", 3])
    with pytest.raises(TypeError, match="single str"):
        enc.transform("the food")
    with pytest.raises(TypeError, match="collection of strings"):
        enc.transform(5)
    with pytest.raises(ValueError, match="1-D"):
        enc.transform(np.array([["a", "b"]]))
    assert enc.transform(np.array(["the food", "good"], dtype=object)).shape == (2, 4)
    assert enc.transform([]).shape == (0, 4)


def test_errors_before_and_during_fit(run_dir, make_config, tiny_corpus, tmp_path):
    with pytest.raises(NotFittedError):
        TextVAEEncoder(run_dir=run_dir).transform(["x"])
    with pytest.raises(ConfigError, match="run_dir"):
        TextVAEEncoder().fit(["x"])
    with pytest.raises(ConfigError, match="features must be one of"):
        TextVAEEncoder(run_dir=run_dir, features="median").fit(["x"])
    with pytest.raises(ConfigError, match="DATASET/STRATEGY"):
        TextVAEEncoder(recipe="demo").fit(["x", "y"])
    lm = save_run(make_config(tiny_corpus, model={**MODEL, "kind": "lstm-lm"}), tmp_path / "lm")
    with pytest.raises(ConfigError, match="without a latent"):
        TextVAEEncoder(run_dir=lm).fit(["x"])


def test_clone_and_pickle(run_dir, labeled):
    texts = labeled[0][:8]
    enc = TextVAEEncoder(run_dir=run_dir, features="mean+logvar", batch_size=3)
    twin = clone(enc)
    assert twin.get_params() == enc.get_params() and not hasattr(twin, "model_")
    enc.fit(texts)
    restored = pickle.loads(pickle.dumps(enc))
    np.testing.assert_array_equal(restored.transform(texts), enc.transform(texts))
    assert restored.get_params() == enc.get_params()
    assert pickle.loads(pickle.dumps(TextVAEEncoder(run_dir=run_dir))).get_params()["run_dir"] == run_dir
    assert enc.set_params(batch_size=5) is enc and enc.batch_size == 5


def test_pipeline_grid_search_and_cross_validation(run_dir, labeled):
    texts, y = labeled
    pipe = Pipeline([("vae", TextVAEEncoder(run_dir=run_dir)), ("clf", LogisticRegression())])
    scores = cross_val_score(pipe, texts, y, cv=3)
    assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))
    search = GridSearchCV(pipe, {"clf__C": [0.1, 10.0], "vae__features": ["mean", "mean+logvar"]}, cv=2)
    search.fit(texts, y)
    assert set(search.best_params_) == {"clf__C", "vae__features"}
    assert search.predict(texts[:3]).shape == (3,)


def test_linear_probe_builds_the_pipeline(run_dir, labeled):
    texts, y = labeled
    probe = linear_probe(run_dir, C=0.5, scale=True, features="mean+logvar")
    assert [name for name, _ in probe.steps] == ["vae", "scale", "clf"]
    assert probe.named_steps["clf"].C == 0.5 and probe.named_steps["vae"].features == "mean+logvar"
    assert probe.fit(texts, y).score(texts, y) >= 0.5
    enc = TextVAEEncoder(run_dir=run_dir)
    assert linear_probe(encoder=enc).named_steps["vae"] is enc
    with pytest.raises(TypeError, match="either encoder"):
        linear_probe(run_dir, encoder=enc)


# scikit-learn's common checks feed 2-D numeric arrays; a text transformer declares
# two_d_array=False, for which check_estimator runs none of them (scikit-learn#12491). These are the
# API checks that do not need numeric input.
TEXT_APPLICABLE_CHECKS = [
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_no_attributes_set_in_init",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
]


@pytest.mark.parametrize("check", TEXT_APPLICABLE_CHECKS)
def test_scikit_learn_api_checks(check):
    estimator = TextVAEEncoder()
    try:
        getattr(estimator_checks, check)(type(estimator).__name__, estimator)
    except SkipTest as e:  # a check that declares itself not applicable
        pytest.skip(str(e))


def test_check_estimator_knows_the_input_is_text():
    tags = TextVAEEncoder().__sklearn_tags__()
    assert tags.input_tags.string and tags.input_tags.one_d_array and not tags.input_tags.two_d_array
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator_checks.check_estimator(TextVAEEncoder())
    assert any("requires input" in str(w.message) for w in caught)


def test_fit_trains_a_recipe_on_the_given_texts(labeled, tmp_path):
    texts, y = labeled
    overrides = ("model.embed_dim=16", "model.enc_hidden=16", "model.dec_hidden=16", "model.latent_dim=3",
                 "train.epochs=1", "data.batch_size=8")
    enc = TextVAEEncoder(recipe="demo/vae", overrides=overrides, random_state=0, run_dir=tmp_path / "trained")
    x = enc.fit(texts + ["", "   "]).transform(texts)
    assert x.shape == (len(texts), 3)
    assert enc.config_.model.latent_dim == 3 and enc.config_.seed == 0
    saved = enc.vocab_.itos
    assert set(saved[4:]) == {w for t in texts for w in t.split()}  # vocabulary of the fit texts
    assert (tmp_path / "trained" / "checkpoints" / "best.pt").is_file()
    reloaded = TextVAEEncoder(run_dir=tmp_path / "trained").fit([])
    np.testing.assert_allclose(reloaded.transform(texts), x, rtol=1e-6)
    in_memory = TextVAEEncoder(recipe="demo/vae", overrides=overrides, random_state=0).fit(texts)
    np.testing.assert_allclose(in_memory.transform(texts), x, rtol=1e-6)
    with pytest.raises(ConfigError, match="at least 2 non-empty"):
        TextVAEEncoder(recipe="demo/vae", overrides=overrides).fit(["only one", ""])

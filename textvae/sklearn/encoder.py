"""``TextVAEEncoder``: a trained text VAE as a scikit-learn transformer (texts -> latent features).

Follows scikit-learn's estimator rules: ``__init__`` only stores its arguments, ``fit`` does the
work (load a run folder, or train a recipe on the texts it is given) and sets trailing-underscore
attributes, ``transform`` maps a list of strings to an ``(n, n_features)`` float64 array.

Input handling (see :mod:`textvae.probing.features`): the run's own tokenizer (whitespace words for
word vocabularies, out-of-vocabulary words -> ``<unk>``); texts longer than ``max_length`` tokens keep
their first ``max_length``; ``""`` is the empty sentence; a non-string element raises ``TypeError``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..config import RunConfig
from ..data import Vocab
from ..errors import ConfigError
from ..models import build_model
from ..probing.features import as_text_list, encode_posteriors, input_max_length

FEATURES = ("mean", "sample", "mean+logvar")


class TextVAEEncoder(TransformerMixin, BaseEstimator):
    """Encode texts with a trained text VAE.

    Parameters
    ----------
    run_dir : folder of a trained run to load; with ``recipe``, the folder to train into (new or empty:
        ``fit`` never replaces a run already there).
    checkpoint : ``best``, ``last`` or a path to a ``.pt`` file of ``run_dir``.
    recipe : ``"DATASET/STRATEGY"`` (e.g. ``"demo/vae"``): ``fit`` trains this recipe's model on the
        texts passed to ``fit`` (90% train, the last 10% validation) instead of loading a run.
    overrides : ``key=value`` config overrides for ``recipe`` (``textvae recipe --set`` syntax).
    features : ``mean`` (posterior mean, the linear-probe protocol), ``sample`` (one posterior
        sample per text, seeded by ``random_state``) or ``mean+logvar`` (both, 2 x latent_dim columns).
    max_length : tokens kept per text; None uses the run's ``data.max_length``, else 200.
    batch_size : texts per encoder forward pass.
    device : torch device, e.g. ``cpu`` or ``cuda``.
    random_state : seed for ``features="sample"`` and for recipe training.
    """

    def __init__(self, run_dir: str | Path | None = None, checkpoint: str = "best", recipe: str | None = None,
                 overrides: tuple[str, ...] = (), features: str = "mean", max_length: int | None = None,
                 batch_size: int = 256, device: str = "cpu", random_state: int | None = None):
        self.run_dir = run_dir
        self.checkpoint = checkpoint
        self.recipe = recipe
        self.overrides = overrides
        self.features = features
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    # ---- fitting ---------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "TextVAEEncoder":
        texts = as_text_list(X)
        self._validate_params()
        if self.recipe is not None:
            self._train_recipe(texts)
        else:
            self._load(Path(self.run_dir))
        return self

    def _validate_params(self) -> None:
        if self.features not in FEATURES:
            raise ConfigError(f"TextVAEEncoder: features must be one of {', '.join(FEATURES)}, got {self.features!r}")
        if self.run_dir is None and self.recipe is None:
            raise ConfigError("TextVAEEncoder: give run_dir (a trained run) or recipe (train on the fit texts)")
        if self.max_length is not None and self.max_length < 1:
            raise ConfigError(f"TextVAEEncoder: max_length must be >= 1, got {self.max_length}")
        if self.batch_size < 1:
            raise ConfigError(f"TextVAEEncoder: batch_size must be >= 1, got {self.batch_size}")

    def _load(self, run_dir: Path) -> None:
        from ..runs import load_run

        run = load_run(run_dir, self.checkpoint, self.device)
        self._set_model(run.model, run.vocab, run.config)

    def _train_recipe(self, texts: list[str]) -> None:
        from ..recipes import resolve
        from ..training import train

        dataset, sep, strategy = self.recipe.partition("/")
        if not sep:
            raise ConfigError(f"TextVAEEncoder: recipe must be 'DATASET/STRATEGY', got {self.recipe!r}")
        with tempfile.TemporaryDirectory(prefix="textvae-fit-") as tmp:
            corpus = write_corpus(texts, Path(tmp) / "corpus")
            d = resolve(dataset, strategy, list(self.overrides), seed=self.random_state).to_dict()
            d["data"].update(corpus=str(corpus), vocab_file=None)
            d["train"].update(device=self.device, progress=False)
            config = RunConfig.from_dict(d, where=f"recipe {self.recipe}")
            run_dir = Path(self.run_dir) if self.run_dir is not None else Path(tmp) / "run"
            train(config, run_dir, evaluate_test=False)
            self._load(run_dir)

    def _set_model(self, model: torch.nn.Module, vocab: Vocab, config: RunConfig) -> None:
        if not model.latent_dim:
            raise ConfigError("TextVAEEncoder: the run is a language model without a latent variable")
        self.model_ = model.eval()
        self.vocab_ = vocab
        self.config_ = config
        self.latent_dim_ = int(model.latent_dim)
        self.max_length_ = self.max_length or input_max_length(config)

    # ---- transforming ----------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        texts = as_text_list(X)
        post = encode_posteriors(self.model_, self.vocab_, texts, self.batch_size, self.max_length_)
        if self.features == "mean":
            out = post.mu
        elif self.features == "mean+logvar":
            out = torch.cat([post.mu, post.logvar], dim=1)
        else:
            generator = None if self.random_state is None else torch.Generator().manual_seed(self.random_state)
            out = post.sample(generator=generator)
        return out.double().numpy()

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "model_")
        dims = range(self.latent_dim_)
        if self.features == "mean":
            names = [f"mu{d}" for d in dims]
        elif self.features == "sample":
            names = [f"z{d}" for d in dims]
        else:
            names = [f"mu{d}" for d in dims] + [f"logvar{d}" for d in dims]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        tags.non_deterministic = self.features == "sample" and self.random_state is None
        tags.transformer_tags.preserves_dtype = []
        return tags

    # ---- pickling: weights, config and vocabulary, never torch module objects ----------------------
    # Unpickling still runs any code a crafted pickle holds, as for every pickle: trust only your own.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        model = state.pop("model_", None)
        if model is not None:
            state["_model_state"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            state["config_"] = self.config_.to_dict()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        model_state = state.pop("_model_state", None)
        self.__dict__.update(state)
        if model_state is not None:
            self.config_ = RunConfig.from_dict(state["config_"], where="pickled TextVAEEncoder")
            model = build_model(self.config_, len(self.vocab_))
            model.load_state_dict(model_state)
            self.model_ = model.to(self.device).eval()


def write_corpus(texts: list[str], root: Path, valid_fraction: float = 0.1) -> Path:
    """Write texts as a train/valid/test corpus folder; empty texts are left out (nothing to learn).

    The last ``valid_fraction`` of the texts (at least one) is the validation split; the test file
    repeats it only because a corpus folder must have one (recipe training never evaluates it).
    """
    lines = [" ".join(t.split()) for t in texts if t.strip()]
    if len(lines) < 2:
        raise ConfigError(f"TextVAEEncoder: training needs at least 2 non-empty texts, got {len(lines)}")
    n_valid = max(1, int(len(lines) * valid_fraction))
    root.mkdir(parents=True)
    splits = {"train": lines[:-n_valid], "valid": lines[-n_valid:], "test": lines[-n_valid:]}
    for name, rows in splits.items():
        (root / f"{name}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root

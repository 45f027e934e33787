"""textvae: LSTM text VAEs with swappable anti-collapse strategies and a trustworthy evaluator.

The public API is importable from here; submodules load on first use so the CLI starts quickly.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "RunConfig": "textvae.config",
    "resolve": "textvae.recipes",
    "train": "textvae.training",
    "load_run": "textvae.runs",
    "evaluate": "textvae.evaluation",
    "build_model": "textvae.models",
    "load_corpus": "textvae.data",
    "make_batches": "textvae.data",
    "STRATEGIES": "textvae.strategies",
    "Strategy": "textvae.strategies",
    "PRIORS": "textvae.priors",
    "TextVAEEncoder": "textvae.sklearn",
    "linear_probe": "textvae.sklearn",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'textvae' has no attribute {name!r}")

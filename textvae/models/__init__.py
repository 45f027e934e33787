"""The models: the LSTM encoder and decoders, the text VAE and LSTM language model, and
:func:`build_model`, which builds the one a run config describes."""

# ruff: noqa: I001 - the import order is the decoders' registration order
from .decoder import LSTMDecoder
from .registry import DECODERS
from .skip_decoder import SkipLSTMDecoder
from .encoder import LSTMEncoder
from .factory import build_model
from .vae import LSTMLanguageModel, TextVAE

__all__ = ["DECODERS", "LSTMDecoder", "SkipLSTMDecoder", "LSTMEncoder", "LSTMLanguageModel", "TextVAE", "build_model"]

from .decoder import LSTMDecoder
from .registry import DECODERS
from .skip_decoder import SkipLSTMDecoder
from .encoder import LSTMEncoder
from .factory import build_model
from .vae import LSTMLanguageModel, TextVAE

__all__ = ["DECODERS", "LSTMDecoder", "SkipLSTMDecoder", "LSTMEncoder", "LSTMLanguageModel", "TextVAE", "build_model"]

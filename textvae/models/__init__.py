from .decoder import LSTMDecoder
from .encoder import LSTMEncoder
from .factory import build_model
from .vae import LSTMLanguageModel, TextVAE

__all__ = ["LSTMDecoder", "LSTMEncoder", "LSTMLanguageModel", "TextVAE", "build_model"]

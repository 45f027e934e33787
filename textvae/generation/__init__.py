"""Decoding (greedy, sampling, beam), prior samples, reconstructions, interpolations and their metrics."""

from .decoding import DecodingConfig, decode
from .sentences import decode_latents, interpolate_texts, reconstruct_texts, sample_texts

__all__ = ["DecodingConfig", "decode", "decode_latents", "interpolate_texts", "reconstruct_texts", "sample_texts"]

"""Decoder variants by name (``model.decoder``): one module per variant registers itself here.

A variant is an :class:`~textvae.models.decoder.LSTMDecoder` subclass built with the same
arguments (``word_dropout`` by keyword); what it changes must go through the decoder's own hooks
(``output_features``), so the evaluator's scan, decoding and beam search stay correct for it.
Third-party packages can add variants through the ``textvae.decoders`` entry-point group.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import Registry

DECODERS = Registry("decoder", "textvae.decoders")


@dataclass
class DecoderParams:
    """Decoder variants take their sizes from ``[model]``; none has parameters of its own yet."""

"""``model.dec_freeze_last_word``: the reference programs' decoders never update the embedding of the
vocabulary's last word; the option reproduces that, for both the VAE and the LSTM-LM, and is off by
default."""

from __future__ import annotations

import pytest
import torch
from test_evaluation_lstm import VOCAB, make_batch

from textvae.config import ModelConfig, RunConfig
from textvae.models import build_model
from textvae.types import StepContext


def gradient_of_embeddings(kind: str, freeze: bool) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    config = RunConfig()
    config.model = ModelConfig(kind=kind, embed_dim=8, enc_hidden=8, dec_hidden=12, latent_dim=4,
                               dec_freeze_last_word=freeze)
    model = build_model(config, VOCAB).train()
    batch = make_batch([6, 9, 4])
    batch.tokens[0, 2] = VOCAB - 1  # the last word is among the decoder's inputs
    terms = model(batch, StepContext())
    terms.rec.sum().backward()
    return model.decoder.embed.weight.grad, model.decoder.embed.weight.detach()


@pytest.mark.parametrize("kind", ["vae", "lstm-lm"])
def test_only_the_last_words_embedding_is_frozen(kind):
    free, _ = gradient_of_embeddings(kind, freeze=False)
    frozen, weight = gradient_of_embeddings(kind, freeze=True)
    assert free[VOCAB - 1].abs().sum() > 0
    assert torch.all(frozen[VOCAB - 1] == 0)
    torch.testing.assert_close(frozen[: VOCAB - 1], free[: VOCAB - 1])
    assert weight[VOCAB - 1].abs().sum() > 0  # the row keeps its initial values; it is not zeroed


def test_off_by_default():
    assert ModelConfig().dec_freeze_last_word is False

"""train.amp on CPU: the training step runs under bfloat16 autocast, weights and loss stay float32."""

from __future__ import annotations

import pytest
import torch

from textvae.data import make_batches
from textvae.training import Trainer


@pytest.mark.amp("bf16")
def test_amp_autocasts_the_cpu_training_step(tiny_corpus, make_config, tmp_path):
    config = make_config(tiny_corpus, train={"device": "cpu", "amp": "bf16"})
    trainer = Trainer(config, tmp_path / "run")
    seen = []
    trainer.model.decoder.lstm.register_forward_hook(lambda module, inputs, output: seen.append(output[0].dtype))
    batch = make_batches(trainer.corpus.splits["train"], 8, "bucket")[0]
    before = trainer.model.decoder.out.weight.detach().clone()
    terms = trainer.train_step(batch)
    assert seen == [torch.bfloat16]
    assert terms.rec.dtype == torch.float32 and torch.isfinite(terms.rec).all()
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert not torch.equal(before, trainer.model.decoder.out.weight)

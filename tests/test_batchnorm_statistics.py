"""BN-VAE and DU-VAE evaluate with running statistics of the posterior means; those must be exactly what
``nn.BatchNorm1d`` holds after seeing the optimiser steps' batches, and nothing else may move them
(validation, MI/AU, the epoch-end sample hook, test evaluation, checkpoint reloads)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from textvae.evaluation import evaluate_run_model
from textvae.training import Trainer


def batchnorm_of(model) -> nn.BatchNorm1d:
    return next(m for m in model.strategy.modules() if isinstance(m, nn.BatchNorm1d))


def snapshot(bn: nn.BatchNorm1d) -> list[torch.Tensor]:
    return [bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()]


@pytest.mark.parametrize("strategies", [
    {"kl-annealing": {"kl_start": 0.0, "warm_up": 1}, "bn-vae": {"gamma": 0.6}},
    {"kl-annealing": {"kl_start": 0.0, "warm_up": 1}, "du-vae": {"gamma": 0.6, "p_drop": 0.2, "delta_rate": 1.0}},
], ids=["bn-vae", "du-vae"])
def test_running_statistics_are_those_of_the_training_batches_only(tiny_corpus, make_config, tmp_path, strategies):
    config = make_config(tiny_corpus, strategies, train={"epochs": 3, "tensorboard": False},
                         model={"encoder_init": "pytorch"}, data={"batch_size": 4})
    trainer = Trainer(config, tmp_path / "run")
    trainer.run.claim(fresh=True)
    trainer.run.write_config(config.to_dict())

    step_means: list[torch.Tensor] = []
    in_step = False

    def record(module, inputs, output):
        if in_step:
            step_means.append(output.mu.detach().clone())

    trainer.model.encoder.register_forward_hook(record)
    train_step, validate = trainer.train_step, trainer.validate

    def recorded_step(batch):
        nonlocal in_step
        in_step = True
        try:
            return train_step(batch)
        finally:
            in_step = False

    def checked_validate():
        before = snapshot(batchnorm_of(trainer.model))
        metrics = validate()  # MI, AU and the validation ELBO
        after = snapshot(batchnorm_of(trainer.model))
        assert all(torch.equal(a, b) for a, b in zip(before, after)), "validation moved the running statistics"
        return metrics

    trainer.train_step, trainer.validate = recorded_step, checked_validate
    trainer.fit()
    model = trainer.model
    # The last epoch is the best or not: compare against the model as it ends training.
    stored = batchnorm_of(model)
    reference = nn.BatchNorm1d(stored.num_features, affine=False)
    reference.train()
    for mu in step_means:
        if mu.size(0) > 1:  # a batch of one passes through unnormalised and updates nothing
            reference(mu)
    assert len(step_means) > 10
    assert int(stored.num_batches_tracked) == int(reference.num_batches_tracked)
    torch.testing.assert_close(stored.running_mean, reference.running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stored.running_var, reference.running_var, rtol=1e-5, atol=1e-6)

    before = snapshot(stored)
    evaluate_run_model(model, trainer.valid_batches, config.eval, seed=0)
    with torch.no_grad():
        model.train()  # even a stray forward pass in train mode outside a training step must not update them
        model.posterior(next(b for b in trainer.valid_batches if b.size > 1))
        model.eval()
    after = snapshot(stored)
    assert all(torch.equal(a, b) for a, b in zip(before, after)), "evaluation moved the running statistics"

"""IW-NLL passes on a GPU are sized from its free memory (the figure is faked here), not a CPU constant."""

from __future__ import annotations

import pytest
import torch

from textvae.config import ModelConfig, RunConfig
from textvae.evaluation import importance
from textvae.evaluation.importance import CPU_ROWS_PER_PASS, GPU_MAX_ROWS, gpu_pass_limits, pass_limits
from textvae.models import build_model

GiB = 2**30


def paper_size_memory() -> dict[str, int]:
    config = RunConfig()
    config.model = ModelConfig(embed_dim=512, enc_hidden=1024, dec_hidden=1024, latent_dim=32)
    return build_model(config, 10_000).pass_memory()


def test_rows_and_tokens_grow_with_free_memory_up_to_the_row_cap():
    memory = paper_size_memory()
    assert memory["row"] == 4 * (2 * 10_000 + 16 * 1024)
    small, large, huge = (gpu_pass_limits(free, memory, samples=500) for free in (2 * GiB, 16 * GiB, 1024 * GiB))
    # 16 GiB free: 4 GiB for rows at 145,536 bytes each.
    assert large[0] == 4 * GiB // memory["row"] == 29_511
    assert small[0] < large[0] < huge[0] == GPU_MAX_ROWS
    assert small[1] < large[1] < huge[1]
    # A pass at the chosen size stays inside half the free memory.
    rows, tokens = large
    per_token = memory["target"] + memory["sentence_target"] / 500
    assert rows * memory["row"] + tokens * per_token <= 0.5 * 16 * GiB


def test_little_free_memory_still_gets_the_cpu_row_count_and_max_tokens_caps():
    memory = paper_size_memory()
    assert gpu_pass_limits(1_000_000, memory, samples=500)[0] == CPU_ROWS_PER_PASS
    assert gpu_pass_limits(16 * GiB, memory, samples=500, max_tokens=1000)[1] == 1000


def test_one_sample_per_sentence_pays_the_shared_projections_alone():
    memory = paper_size_memory()
    assert gpu_pass_limits(16 * GiB, memory, samples=1)[1] < gpu_pass_limits(16 * GiB, memory, samples=500)[1] / 100


def test_cuda_devices_read_free_memory_and_cpu_keeps_its_tuned_sizes(monkeypatch):
    model = build_model(RunConfig.from_dict({"model": {"embed_dim": 8, "enc_hidden": 8, "dec_hidden": 8,
                                                       "latent_dim": 2}}), 50)
    assert pass_limits(model, torch.device("cpu"), 500, None) == (CPU_ROWS_PER_PASS, 200_000)
    assert pass_limits(model, torch.device("cpu"), 500, 77) == (CPU_ROWS_PER_PASS, 77)
    monkeypatch.setattr(importance, "gpu_free_bytes", lambda device: 8 * GiB)
    assert pass_limits(model, torch.device("cuda"), 500, None) == gpu_pass_limits(8 * GiB, model.pass_memory(), 500)


@pytest.mark.parametrize("kind", ["vae", "lstm-lm"])
def test_pass_memory_is_declared_by_both_model_kinds(kind):
    model = build_model(RunConfig.from_dict({"model": {"kind": kind, "embed_dim": 8, "enc_hidden": 8,
                                                       "dec_hidden": 8, "latent_dim": 2}}), 50)
    assert model.pass_memory() == {"row": 4 * (2 * 50 + 16 * 8), "target": 8, "sentence_target": 4 * 8 * 8}

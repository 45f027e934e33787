"""eval/bench_train.py: batch sampling, strategy resolution, and one tiny measurement end to end."""

from __future__ import annotations

import statistics
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from eval import bench_train, timing
from textvae.config import DataConfig
from textvae.data import load_corpus
from textvae.data.corpus import Split


@pytest.fixture(scope="module")
def bench():
    return bench_train


@pytest.fixture
def tiny_sizes(bench, monkeypatch):
    monkeypatch.setitem(bench.SIZES, "ptb-small", dict(embed_dim=8, enc_hidden=8, dec_hidden=8, latent_dim=2))


def spec_for(bench, corpus: Path, **kwargs):
    fields = dict(size="ptb-small", device="cpu", data=str(corpus), train_lines=60, batches=4, repeats=2, threads=1)
    return bench.Spec(**{**fields, **kwargs})


def test_sample_follows_the_epochs_length_mix(bench):
    # 10 sentences of each length 3..12 words: 10 buckets of 10 with batch size 10.
    ids = [[1] + [5] * n + [2] for n in range(3, 13) for _ in range(10)]
    split = Split([""] * len(ids), ids)
    sample = bench.sample_batches(split, batch_size=10, n=5)
    assert sorted(b.tokens.size(1) - 2 for b in sample) == [4, 6, 8, 10, 12]
    assert [b.tokens.size(1) for b in sample] == [b.tokens.size(1) for b in bench.sample_batches(split, 10, 5)]
    assert all(b.size >= 6 for b in bench.sample_batches(split, batch_size=6, n=20, min_size=6))


def test_strategy_names_resolve_to_recipes_first_then_registry(bench, tiny_corpus, monkeypatch):
    spec = spec_for(bench, tiny_corpus)
    assert bench.bench_config(spec, "beta-vae").strategies == {
        "beta-vae": {"beta": 0.4, "selection": "weighted"}}  # the recipe's
    config = bench.bench_config(spec, "vae")
    assert (config.model.embed_dim, config.data.train_limit, config.train.clip_grad) == (256, 60, 5.0)
    assert "vae" in bench.all_strategy_names() and "lstm-lm" in bench.all_strategy_names()
    monkeypatch.setattr(bench.recipes, "strategies", lambda: ["vae"])
    assert bench.bench_config(spec, "beta-vae").strategies == {"beta-vae": {}}  # registry default


def test_throughput_counts_targets_of_the_timed_batches(bench, tiny_sizes, tiny_corpus, tmp_path):
    result = bench.measure_throughput(spec_for(bench, tiny_corpus), str(tmp_path / "run"))
    train = load_corpus(DataConfig(corpus=str(tiny_corpus), train_limit=60)).splits["train"]
    expected = sum(b.n_targets() for b in bench.sample_batches(train, 32, 4))
    assert result["targets"] == expected
    assert len(result["runs_tokens_per_s"]) == 2 and result["tokens_per_s"] > 0
    assert result["peak_rss_mib"] > 0


def test_overheads_compare_each_strategy_with_vae(bench, tiny_sizes, tiny_corpus, tmp_path):
    spec = spec_for(bench, tiny_corpus, strategies=["vae", "kl-annealing", "lstm-lm"])
    rows = bench.measure_overheads(spec, str(tmp_path / "run"))["strategies"]
    assert set(rows) == {"vae", "kl-annealing", "lstm-lm"}
    assert rows["kl-annealing"]["source"] == "recipe" and rows["kl-annealing"]["stack"] == ["kl-annealing"]
    assert all(r["step_ms"] > 0 and r["vae_step_ms"] > 0 for r in rows.values())
    assert all(r["overhead_range"][0] <= r["overhead"] <= r["overhead_range"][1] for r in rows.values())
    table = "\n".join(bench.overhead_table({"strategies": rows}))
    assert "| kl-annealing | recipe | kl-annealing |" in table


def test_overheads_of_a_decoder_variant_and_mae_have_their_own_target(bench, tiny_sizes, tiny_corpus, tmp_path):
    spec = spec_for(bench, tiny_corpus, strategies=["skip-vae", "mae"])
    rows = bench.measure_overheads(spec, str(tmp_path / "run"))["strategies"]
    assert rows["skip-vae"]["stack"] == ["kl-annealing", "skip decoder"]
    assert rows["mae"]["stack"] == ["kl-annealing", "mae"]
    assert rows["mae"]["target"] == rows["skip-vae"]["target"] == 0.10
    table = "\n".join(bench.overhead_table({"strategies": rows}))
    assert "| skip-vae | recipe | kl-annealing+skip decoder |" in table and "(≤10%)" in table


def test_child_process_reports_json(bench, tiny_corpus):
    result = bench.run_child(spec_for(bench, tiny_corpus, batches=2, repeats=1))
    assert result["spec"]["size"] == "ptb-small" and result["batches"] == 2 and result["peak_rss_mib"] > 100


def test_reference_step_computes_the_same_loss_as_textvae(bench, tiny_sizes, tiny_corpus, tmp_path):
    spec = spec_for(bench, tiny_corpus)
    trainer = bench.make_trainer(spec, "vae", load_corpus(bench.bench_config(spec).data), str(tmp_path / "run"))
    model = trainer.model.eval()
    reference = timing.ReferenceVAE(len(trainer.corpus.vocab), 8, 8, 8, 2, dropout=0.0)
    pairs = {"enc_embed": model.encoder.embed, "enc_lstm": model.encoder.lstm, "enc_linear": model.encoder.to_posterior,
             "dec_embed": model.decoder.embed, "trans_linear": model.decoder.init_cell,
             "dec_lstm": model.decoder.lstm, "pred_linear": model.decoder.out}
    for name, module in pairs.items():
        getattr(reference, name).load_state_dict(module.state_dict())
    batch = bench.sample_batches(trainer.corpus.splits["train"], 32, 1)[0]
    torch.manual_seed(3)
    loss, rec, kl = reference(batch.tokens)
    torch.manual_seed(3)
    terms = model(batch, trainer.ctx)
    torch.testing.assert_close(rec, terms.rec)
    torch.testing.assert_close(kl, terms.kl)
    result = bench.measure_throughput(spec_for(bench, tiny_corpus, reference=True, repeats=1), str(tmp_path / "ref"))
    assert result["tokens_per_s"] > 0


def test_paired_runs_time_the_reference_in_alternation_after_the_memory_peak(bench, tiny_sizes, tiny_corpus, tmp_path):
    spec = spec_for(bench, tiny_corpus, paired=True, repeats=3)
    result = bench.measure_throughput(spec, str(tmp_path / "run"))
    assert len(result["paired_speedups"]) == 3 and all(x > 0 for x in result["paired_speedups"])
    row = bench.throughput_table([{"spec": asdict(spec), **result}])[-1]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[8].startswith(f"{statistics.median(result['paired_speedups']):.2f}x; ")
    assert "paired_speedups" not in bench.measure_throughput(spec_for(bench, tiny_corpus, repeats=1),
                                                             str(tmp_path / "plain"))


def test_report_cells_give_the_median_and_the_spread_asked_for():
    values = [3.0, 1.0, 2.0, 10.0]
    assert timing.spread(values) == "2.50 (3.00, 1.00, 2.00, 10.00)"
    assert timing.spread(values, "{:.1f}", "range") == "2.5 (1.0–10.0)"
    assert timing.spread(values, "{:.1f}", "iqr") == "2.5 (IQR 1.2-8.2)"

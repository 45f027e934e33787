"""``textvae import``: reference-format state dicts (built here, no reference code) become run folders
that ``textvae eval`` scores; a missing, extra or mis-shaped tensor is one line and writes nothing."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import write_corpus
from typer.testing import CliRunner

from textvae.cli.main import app
from textvae.config import RunConfig
from textvae.reference.state_dicts import textvae_to_reference_name

runner = CliRunner()
E, H, Z = 16, 16, 4


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def first_appearance_vocab(path):
    words = ["<pad>", "<s>", "</s>", "<unk>"]
    for line in path.read_text().splitlines():
        for w in line.split():
            if w not in words:
                words.append(w)
    return words


def lstm(prefix, n_in, n_hidden, g):
    return {
        f"{prefix}.weight_ih_l0": torch.randn(4 * n_hidden, n_in, generator=g),
        f"{prefix}.weight_hh_l0": torch.randn(4 * n_hidden, n_hidden, generator=g),
        f"{prefix}.bias_ih_l0": torch.randn(4 * n_hidden, generator=g),
        f"{prefix}.bias_hh_l0": torch.randn(4 * n_hidden, generator=g),
    }


def reference_vae(vocab_size, batch_norm=False, seed=0):
    """The tensor names and shapes of He et al.'s LSTM VAE (and its descendants')."""
    g = torch.Generator().manual_seed(seed)
    state = {
        "encoder.embed.weight": torch.randn(vocab_size, E, generator=g),
        **lstm("encoder.lstm", E, H, g),
        "encoder.linear.weight": torch.randn(2 * Z, H, generator=g),
        "decoder.embed.weight": torch.randn(vocab_size, E, generator=g),
        "decoder.trans_linear.weight": torch.randn(H, Z, generator=g),
        **lstm("decoder.lstm", E + Z, H, g),
        "decoder.pred_linear.weight": torch.randn(vocab_size, H, generator=g),
        "decoder.loss.weight": torch.ones(vocab_size),
    }
    if batch_norm:
        state.update(
            {
                "encoder.mu_bn.weight": torch.full((Z,), 0.6),
                "encoder.mu_bn.bias": torch.randn(Z, generator=g),
                "encoder.mu_bn.running_mean": torch.randn(Z, generator=g),
                "encoder.mu_bn.running_var": torch.rand(Z, generator=g) + 0.5,
                "encoder.mu_bn.num_batches_tracked": torch.tensor(7),
            }
        )
    return state


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "ptb_like", labeled=False)


def save(tmp_path, state, args):
    torch.save(state, tmp_path / "model.pt")
    (tmp_path / "args.json").write_text(json.dumps(args))
    return tmp_path / "model.pt", tmp_path / "args.json"


def test_a_he2019_model_becomes_a_run_that_textvae_eval_scores(tmp_path, corpus):
    vocab = first_appearance_vocab(corpus / "train.txt")
    state = reference_vae(len(vocab))
    model, args = save(
        tmp_path,
        state,
        {
            "seed": 101,
            "train_data": str(corpus / "train.txt"),
            "kl_start": 0.1,
            "warm_up": 10,
            "iw_nsamples": 5,
            "batch_size": 8,
            "unused": "x",
        },
    )
    run = tmp_path / "run"
    result = invoke("import", model, "--from", "he2019", "--args", args, "--out", run)
    assert result.exit_code == 0, result.output
    config = RunConfig.load(run / "config.json")
    assert config.name == "ptb/kl-annealing" and config.seed == 101 and config.eval.iw_samples == 5
    assert (config.model.embed_dim, config.model.enc_hidden, config.model.latent_dim) == (E, H, Z)
    assert (run / "vocab.txt").read_text().split("\n")[: len(vocab)] == vocab
    weights = torch.load(run / "checkpoints" / "best.pt", weights_only=True)["model"]
    assert torch.equal(weights["decoder.out.weight"], state["decoder.pred_linear.weight"])
    assert torch.equal(weights["encoder.to_posterior.weight"], state["encoder.linear.weight"])
    provenance = json.loads((run / "env.json").read_text())["imported_from"]
    assert (
        provenance["program"] == "jxhe/vae-lagging-encoder"
        and provenance["recipe"] == "kl-annealing"
    )
    assert "unused" not in provenance["args"]
    scored = invoke("eval", run, "--limit", "6", "--iw-samples", "3", "--no-progress")
    assert scored.exit_code == 0, scored.output
    assert json.loads((run / "eval_test.json").read_text())["n_sentences"] == 6


def test_a_bn_vae_model_keeps_its_batch_norm_and_evaluate_finishes_the_run(tmp_path, corpus):
    vocab = first_appearance_vocab(corpus / "train.txt")
    state = reference_vae(len(vocab), batch_norm=True)
    model, _ = save(tmp_path, state, {})
    run = tmp_path / "run"
    result = invoke(
        "import",
        model,
        "--from",
        "bn-vae",
        "--corpus",
        corpus,
        "--out",
        run,
        "--evaluate",
        "--limit",
        "4",
        "--set",
        "eval.iw_samples=2",
    )
    assert result.exit_code == 0, result.output
    config = RunConfig.load(run / "config.json")
    assert config.name == "ptb/bn-vae" and config.strategies["bn-vae"]["gamma"] == pytest.approx(
        0.6
    )
    assert config.eval.limit == 4  # the scored subset is recorded where a trained run records it
    weights = torch.load(run / "checkpoints" / "best.pt", weights_only=True)["model"]
    [shift] = [k for k in weights if k.endswith(".shift")]
    assert torch.equal(weights[shift], state["encoder.mu_bn.bias"])
    [mean] = [k for k in weights if k.endswith("stats.running_mean")]
    assert torch.equal(weights[mean], state["encoder.mu_bn.running_mean"])
    assert json.loads((run / "results.json").read_text())["n_sentences"] == 4
    assert textvae_to_reference_name(shift, list(state), "bn-vae") == "encoder.mu_bn.bias"


@pytest.mark.parametrize(
    "args, option, floored, source",
    [
        ({"kl_start": 0, "warm_up": 10, "epochs": 2}, [], False, "args"),  # ended inside the warm-up
        ({"kl_start": 0, "warm_up": 10, "epochs": 12}, [], True, "args"),
        ({"kl_start": 1.0, "epochs": 2}, [], True, "args"),
        ({}, [], True, "unknown"),  # as the program's own --eval of a saved model
        ({"kl_start": 0, "warm_up": 10, "epochs": 12}, ["--final-kl-weight", "0.4"], False, "--final"),
    ],
)
def test_a_du_vae_model_is_scored_with_the_variance_floor_its_program_used(
    tmp_path, corpus, args, option, floored, source
):
    vocab = first_appearance_vocab(corpus / "train.txt")
    model, args_file = save(tmp_path, reference_vae(len(vocab), batch_norm=True), {"gamma": 0.6, **args})
    run = tmp_path / "run"
    result = invoke("import", model, "--from", "du-vae", "--args", args_file, "--corpus", corpus, "--out", run, *option)
    assert result.exit_code == 0, result.output
    weights = torch.load(run / "checkpoints" / "best.pt", weights_only=True)["model"]
    [flag] = [v for k, v in weights.items() if k.endswith(".floor_on")]
    assert bool(flag) is floored
    evaluation = json.loads((run / "env.json").read_text())["imported_from"]["evaluation"]
    assert evaluation["variance_floor"] is floored and evaluation["final_kl_weight_from"].startswith(source)


def test_a_final_kl_weight_outside_zero_to_one_is_refused(tmp_path, corpus):
    vocab = first_appearance_vocab(corpus / "train.txt")
    model, _ = save(tmp_path, reference_vae(len(vocab), batch_norm=True), {})
    result = invoke("import", model, "--from", "du-vae", "--corpus", corpus, "--out", tmp_path / "run",
                    "--final-kl-weight", "1.5")
    assert result.exit_code != 0 and "--final-kl-weight" in result.output
    assert not (tmp_path / "run").exists()


def test_a_language_model_without_encoder_imports_as_lstm_lm(tmp_path, corpus):
    vocab = first_appearance_vocab(corpus / "train.txt")
    g = torch.Generator().manual_seed(1)
    state = {
        "embed.weight": torch.randn(len(vocab), E, generator=g),
        **lstm("lstm", E, H, g),
        "pred_linear.weight": torch.randn(len(vocab), H, generator=g),
        "loss.weight": torch.ones(len(vocab)),
    }
    model, _ = save(tmp_path, state, {})
    result = invoke(
        "import", model, "--from", "bn-vae", "--corpus", corpus, "--out", tmp_path / "run"
    )
    assert result.exit_code == 0, result.output
    assert RunConfig.load(tmp_path / "run" / "config.json").model.kind == "lstm-lm"


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda s: s.pop("decoder.trans_linear.weight"), "decoder.trans_linear.weight"),
        (lambda s: s.__setitem__("encoder.extra.weight", torch.zeros(3)), "encoder.extra.weight"),
        (
            lambda s: s.__setitem__("encoder.linear.weight", torch.zeros(2 * Z + 1, H)),
            "encoder.linear.weight",
        ),
        (
            lambda s: s.__setitem__("decoder.lstm.bias_hh_l0", torch.zeros(5)),
            "decoder.lstm.bias_hh_l0",
        ),
    ],
)
def test_a_missing_extra_or_misshaped_tensor_is_one_line_and_writes_nothing(
    tmp_path, corpus, change, named
):
    vocab = first_appearance_vocab(corpus / "train.txt")
    state = reference_vae(len(vocab))
    change(state)
    model, _ = save(tmp_path, state, {})
    run = tmp_path / "run"
    result = invoke("import", model, "--from", "he2019", "--corpus", corpus, "--out", run)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and named in result.output, result.output
    assert not run.exists()


def test_a_model_of_another_vocabulary_or_a_foreign_batch_norm_is_refused(tmp_path, corpus):
    vocab = first_appearance_vocab(corpus / "train.txt")
    model, _ = save(tmp_path, reference_vae(len(vocab) + 1), {})
    result = invoke(
        "import", model, "--from", "he2019", "--corpus", corpus, "--out", tmp_path / "a"
    )
    assert (
        result.exit_code == 2
        and "decoder.embed.weight" in result.output
        and "vocabulary" in result.output
    )
    model, _ = save(tmp_path, reference_vae(len(vocab), batch_norm=True), {})
    result = invoke(
        "import", model, "--from", "he2019", "--corpus", corpus, "--out", tmp_path / "b"
    )
    assert result.exit_code == 2 and "encoder.mu_bn.weight" in result.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_batch_norm_the_program_built_but_never_applied_is_left_out(tmp_path, corpus):
    # bn-vae's text_anneal_fb.py builds mu_bn in every encoder and fills its weight with --gamma (0: off)
    vocab = first_appearance_vocab(corpus / "train.txt")
    state = reference_vae(len(vocab), batch_norm=True)
    state["encoder.mu_bn.weight"] = torch.zeros(Z)
    model, args = save(
        tmp_path, state, {"fb": 2, "kl_start": 0, "train_data": str(corpus / "train.txt")}
    )
    result = invoke("import", model, "--from", "bn-vae", "--args", args, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert RunConfig.load(tmp_path / "run" / "config.json").name == "ptb/free-bits"

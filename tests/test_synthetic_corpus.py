"""The labeled synthetic corpus: deterministic per seed, its component learnable from the words
(and from the first words alone), and ``textvae data synthesize``."""

from __future__ import annotations

import json

import pytest

from textvae.data.synthesize import SynthesisConfig, synthesize, write_synthetic_corpus
from textvae.errors import DataError


# ---- synthetic corpus ------------------------------------------------------------------------------------
def small_synthesis(seed: int) -> SynthesisConfig:
    return SynthesisConfig(seed=seed, components=4, vocab_size=30, length=5, hidden=8, embed=8,
                           n_train=40, n_valid=10, n_test=10)


def test_synthetic_corpus_is_deterministic_labeled_and_depends_on_the_seed(tmp_path):
    a, b, c = synthesize(small_synthesis(3)), synthesize(small_synthesis(3)), synthesize(small_synthesis(4))
    assert a == b and a != c
    texts, labels = a["train"]
    assert len(texts) == 40 and set(labels) <= set(range(4)) and len(set(labels)) > 1
    assert all(len(t.split()) == 5 for t in texts)
    folder = write_synthetic_corpus(small_synthesis(3), tmp_path / "syn")
    first = (folder / "train.txt").read_text().splitlines()[0]
    assert first == f"c{labels[0]}\t{texts[0]}"
    assert json.loads((folder / "synthesis.json").read_text())["seed"] == 3
    with pytest.raises(DataError, match="not empty"):
        write_synthetic_corpus(small_synthesis(3), folder)


def test_weight_scale_and_spacing_make_the_component_learnable_from_the_words():
    """The knobs the defaults were chosen by (eval/synthetic_corpus.py): weights of std 1 on close
    components leave the component barely readable from a bag of words; the defaults make it plain."""
    from eval import synthetic_corpus as probe

    def bow_accuracy(**knobs) -> float:
        return probe.bow_accuracy(SynthesisConfig(seed=1, components=4, vocab_size=200, hidden=32, embed=32,
                                                  n_train=600, n_valid=1, n_test=300, **knobs))

    weak, default = bow_accuracy(weight_scale=0.5, spacing=0.5), bow_accuracy()
    assert default > 0.9 and weak < default - 0.2, (weak, default)


def test_data_synthesize_cli(tmp_path):
    from typer.testing import CliRunner

    from textvae.cli.main import app

    result = CliRunner().invoke(app, ["data", "synthesize", str(tmp_path / "s"), "--components", "3",
                                      "--vocab-size", "20", "--length", "4", "--n-train", "12", "--n-valid", "3",
                                      "--n-test", "3", "--seed", "5"])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "s" / "valid.txt").read_text().splitlines()
    assert len(lines) == 3 and all(line.split("\t")[0] in {"c0", "c1", "c2"} for line in lines)


def test_a_decoder_can_tell_the_component_from_the_first_words():
    """Why a VAE need not put the component into z on this corpus (eval/results/latent_clutter/README.md):
    the first tokens alone already give it away to a left-to-right reader."""
    from eval import synthetic_corpus as corpus
    assert corpus.first_words(2)("w5 w7 w9") == "0:w5 1:w7"
    config = SynthesisConfig(seed=1, components=4, vocab_size=200, hidden=32, embed=32, n_train=600, n_valid=1,
                             n_test=300)
    prefix = corpus.prefix_accuracies(synthesize(config))
    assert list(prefix) == ["1", "2", "3"]
    assert prefix["1"] > 0.7 and prefix["3"] > 0.9, prefix

"""Data options users reach for: table column names, hub split names, lower-casing, sentencepiece
vocabulary size, plot formats."""

from __future__ import annotations

import json
import logging

import pytest

from textvae.config import DataConfig
from textvae.data import load_corpus
from textvae.data.subword import train_sentencepiece
from textvae.errors import ConfigError, DataError


def hub_dataset_on_disk(folder):
    """A DatasetDict saved with ``save_to_disk``, with the column and split names of a typical hub dataset."""
    import datasets

    def table(rows):
        return datasets.Dataset.from_dict({"sentence": [r[0] for r in rows], "sentiment": [r[1] for r in rows]})

    datasets.DatasetDict({
        "training": table([("The food was good", 1), ("slow service", 0), ("nice place", 1)]),
        "dev": table([("good food", 1)]),
        "eval": table([("bad place", 0)]),
    }).save_to_disk(str(folder))
    return folder


def test_hf_dataset_with_its_own_column_and_split_names(tmp_path):
    folder = hub_dataset_on_disk(tmp_path / "hub")
    config = DataConfig(corpus=f"hf:{folder}", text_column="sentence", label_column="sentiment",
                        train_split="training", test_split="eval")
    corpus = load_corpus(config, tmp_path / "root")
    assert corpus.splits["train"].texts == ["The food was good", "slow service", "nice place"]
    assert corpus.splits["train"].labels == ["1", "0", "1"]
    assert corpus.splits["valid"].texts == ["good food"]  # valid_split None: validation, valid or dev
    assert corpus.splits["test"].labels == ["0"]
    with pytest.raises(DataError,
                       match="no 'train' split for train \\(it has training, dev, eval; set data.train_split\\)"):
        load_corpus(DataConfig(corpus=f"hf:{folder}", text_column="sentence"), tmp_path / "root")
    with pytest.raises(DataError, match="no 'text' column \\(columns: sentence, sentiment; set data.text_column\\)"):
        load_corpus(DataConfig(corpus=f"hf:{folder}", train_split="training", test_split="eval"), tmp_path / "root")
    unlabeled = load_corpus(DataConfig(corpus=f"hf:{folder}", text_column="sentence", train_split="training",
                                       valid_split="eval", test_split="eval"), tmp_path / "root")
    assert unlabeled.splits["train"].labels is None and unlabeled.splits["valid"].texts == ["bad place"]


def test_csv_and_jsonl_splits_with_other_column_names(tmp_path):
    root = tmp_path / "tables"
    root.mkdir()
    (root / "train.csv").write_text("id,review,stars\n1,the food,5\n2,\"slow, slow service\",1\n")
    (root / "valid.jsonl").write_text(json.dumps({"review": "good food", "stars": 4}) + "\n")
    (root / "test.jsonl").write_text(json.dumps({"review": "bad", "stars": 1}) + "\n")
    corpus = load_corpus(DataConfig(corpus=str(root), text_column="review", label_column="stars"), tmp_path / "r")
    assert corpus.splits["train"].texts == ["the food", "slow, slow service"]
    assert corpus.splits["train"].labels == ["5", "1"] and corpus.splits["valid"].labels == ["4"]
    with pytest.raises(DataError, match="train.csv: no 'text' column"):
        load_corpus(DataConfig(corpus=str(root)), tmp_path / "r")


def test_lowercase_applies_to_the_vocabulary_and_every_later_text(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    for split in ("train", "valid", "test"):
        (root / f"{split}.txt").write_text("The Food was GOOD\nthe food\n")
    cased = load_corpus(DataConfig(corpus=str(root)), tmp_path / "r")
    lower = load_corpus(DataConfig(corpus=str(root), lowercase=True), tmp_path / "r")
    assert "The" in cased.vocab.stoi and "The" not in lower.vocab.stoi and "good" in lower.vocab.stoi
    assert lower.vocab.encode("THE FOOD") == lower.vocab.encode("the food")
    assert lower.vocab.unk_id not in lower.splits["train"].ids[0]
    again = load_corpus(DataConfig(corpus=str(root), lowercase=True), tmp_path / "r")  # from the cache
    assert again.vocab.lowercase and again.splits["train"].ids == lower.splits["train"].ids


def test_lowercase_travels_with_the_run_folder(tmp_path):
    from tiny_vae import save_run

    from textvae.config import RunConfig
    from textvae.runs import load_run

    root = tmp_path / "corpus"
    root.mkdir()
    for split in ("train", "valid", "test"):
        (root / f"{split}.txt").write_text("the food was good\nslow service\n")
    config = RunConfig.from_dict({"data": {"corpus": str(root), "lowercase": True},
                                  "model": {"embed_dim": 4, "enc_hidden": 4, "dec_hidden": 4, "latent_dim": 2}})
    run = load_run(save_run(config, tmp_path / "run"))
    assert run.vocab.encode("The FOOD") == run.vocab.encode("the food")


def test_sentencepiece_warns_when_the_vocabulary_size_is_not_reached(caplog):
    texts = ["the food was good", "slow service", "nice place", "bad food and slow staff"] * 5
    with caplog.at_level(logging.WARNING, logger="textvae"):
        vocab = train_sentencepiece(texts, vocab_size=1000)
    assert len(vocab) < 1000
    assert [r.getMessage() for r in caplog.records] == [
        f"data.sp_vocab_size = 1000: the training split yields only {len(vocab)} sentencepiece pieces; "
        f"the vocabulary has {len(vocab)}"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="textvae"):
        train_sentencepiece(texts, vocab_size=len(vocab))
    assert caplog.records == []


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_plot_format_follows_the_file_suffix(tmp_path, suffix, magic):
    from textvae.report.plots import plot_training_curves

    run = tmp_path / "run"
    run.mkdir()
    record = {"epoch": 1, "valid": {"kl": 1.0, "mi": 0.5, "au": 2, "elbo": 40.0, "mi_estimator": "whole-set"}}
    (run / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    out = plot_training_curves([run], tmp_path / f"curves{suffix}")
    assert out.read_bytes().startswith(magic)
    with pytest.raises(ConfigError, match="--out .*curves.bmpx: the file suffix names the plot format; use one of "):
        plot_training_curves([run], tmp_path / "curves.bmpx")

"""``textvae data list|prepare|download`` and bad data through ``textvae recipe``: one-line errors, exit 2."""

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from textvae.cli.main import app
from textvae.data import CATALOG

runner = CliRunner()
SPLITS = {"train": "1\tthe food was good\n0\tslow service\n", "valid": "1\tnice place\n", "test": "0\tbad staff\n"}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def write_corpus(folder: Path, prefix: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, text in SPLITS.items():
        (folder / f"{prefix}{split}.txt").write_text(text)
    return folder


def test_list_shows_each_corpus_with_presence_and_path(tmp_path):
    write_corpus(tmp_path / "root" / "yelp")
    result = invoke("data", "list", "--data-dir", tmp_path / "root")
    assert result.exit_code == 0, result.output
    assert f"data root: {tmp_path / 'root'}" in result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[1::2]}
    assert list(lines) == ["demo", "ptb", "yahoo", "yelp", "short-yelp", "synthetic"]
    assert "present" in lines["yelp"] and str(tmp_path / "root" / "yelp") in lines["yelp"]
    assert "missing" in lines["ptb"] and "present" in lines["demo"]
    assert "Penn Treebank" in result.output


def test_list_uses_textvae_data(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTVAE_DATA", str(tmp_path))
    result = invoke("data", "list")
    assert f"data root: {tmp_path}" in result.output


def test_prepare_then_train_data_is_loadable(tmp_path, monkeypatch):
    monkeypatch.setitem(CATALOG, "yelp", dataclasses.replace(
        CATALOG["yelp"], sha256={"valid.txt": hashlib.sha256(SPLITS["valid"].encode()).hexdigest()}))
    source = write_corpus(tmp_path / "src", prefix="yelp.")
    result = invoke("data", "prepare", "yelp", "--from", source, "--data-dir", tmp_path / "root")
    assert result.exit_code == 0, result.output
    assert f"yelp: ready in {tmp_path / 'root' / 'yelp'}" in result.output
    assert f"valid.txt  verified  <- {source / 'yelp.valid.txt'}" in result.output
    assert "train.txt  no published sha256" in result.output
    assert_one_line_error(invoke("data", "prepare", "yelp", "--from", source, "--data-dir", tmp_path / "root"),
                          "already prepared", "--force")
    (source / "yelp.valid.txt").write_text("1\tanother valid split\n")
    assert_one_line_error(invoke("data", "prepare", "yelp", "--from", source, "--data-dir", tmp_path / "root",
                                 "--force"), "yelp.valid.txt: sha256", "is not the published yelp valid.txt")
    result = invoke("data", "prepare", "yelp", "--from", source, "--data-dir", tmp_path / "root", "--force",
                    "--no-verify")
    assert result.exit_code == 0 and "not verified (--no-verify)" in result.output


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["prepare", "ptbb", "--from", "."], ["unknown corpus 'ptbb'", "did you mean 'ptb'"]),
        (["prepare", "demo", "--from", "."], ["ships with textvae"]),
        (["download", "yahoo"], ["no direct download", "drive.google.com", "textvae data prepare yahoo --from"]),
        (["download", "short-yelp"], ["no direct download", "textvae data prepare short-yelp --from"]),
    ],
)
def test_data_command_errors(tmp_path, args, fragments):
    assert_one_line_error(invoke("data", *args, "--data-dir", tmp_path), *fragments)


def test_prepare_bad_source_files(tmp_path):
    source = write_corpus(tmp_path / "src")
    (source / "train.txt").write_text("1\tgood food\nno label\n")
    assert_one_line_error(invoke("data", "prepare", "yelp", "--from", source, "--data-dir", tmp_path / "root"),
                          f"{source / 'train.txt'}:2:", "no 'label<TAB>text' label")
    (source / "train.txt").unlink()
    assert_one_line_error(invoke("data", "prepare", "yelp", "--from", source, "--data-dir", tmp_path / "root"),
                          "no train split")
    assert not (tmp_path / "root" / "yelp").exists()


def test_download_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setitem(CATALOG, "yelp", dataclasses.replace(
        CATALOG["yelp"], downloads=(dataclasses.replace(CATALOG["ptb"].downloads[0], url="http://127.0.0.1:9/x.tgz"),)))
    assert_one_line_error(invoke("data", "download", "yelp", "--data-dir", tmp_path),
                          "http://127.0.0.1:9/x.tgz: download failed")


def recipe(corpus: Path, tmp_path: Path, *extra):
    return invoke("recipe", "demo", "kl-annealing", "--set", f"data.corpus={json.dumps(str(corpus))}",
                  "--data-dir", tmp_path / "root", "--out", tmp_path / "run", *extra)


@pytest.mark.parametrize(
    "file, content, fragments",
    [
        ("valid.txt", None, ["no valid split"]),
        ("valid.txt", b"", ["valid.txt: file is empty"]),
        ("test.txt", b"0\tgood\n1\tbad \xff food\n", ["test.txt:2: line is not valid UTF-8"]),
        ("train.txt", b"1\tgood food\nno label\n", ["train.txt:2: labeled file", "no 'label<TAB>text' label"]),
        ("valid.txt", b"good food\n", ["valid.txt: unlabeled, but the train split"]),
    ],
)
def test_bad_data_through_recipe(tmp_path, file, content, fragments):
    corpus = write_corpus(tmp_path / "corpus")
    if content is None:
        (corpus / file).unlink()
    else:
        (corpus / file).write_bytes(content)
    assert_one_line_error(recipe(corpus, tmp_path), *fragments)
    assert not (tmp_path / "run").exists()


def test_missing_registered_corpus_through_recipe(tmp_path):
    result = invoke("recipe", "ptb", "kl-annealing", "--data-dir", tmp_path, "--out", tmp_path / "run")
    assert_one_line_error(result, f"corpus 'ptb' is not in {tmp_path}", "textvae data download ptb")


def test_bad_sentencepiece_vocab_file_through_recipe(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    (tmp_path / "words.txt").write_text("<pad>\n<s>\n</s>\n<unk>\nfood\n")
    result = recipe(corpus, tmp_path, "--set", "data.tokenizer=sentencepiece",
                    "--set", f"data.vocab_file={json.dumps(str(tmp_path / 'words.txt'))}")
    assert_one_line_error(result, "words.txt: a word vocabulary, but data.tokenizer is 'sentencepiece'")

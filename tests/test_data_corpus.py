"""Loading corpora: directories, registered names, hf: datasets, the datasets-backed cache, sentencepiece."""

import json
from pathlib import Path

import pytest

from textvae.config import DataConfig
from textvae.data import CATALOG, Vocab, load_corpus, load_corpus_dir, loading, resolve_data_root
from textvae.data.vocab import TOKENIZER_FILE
from textvae.errors import DataError

TRAIN = ["1\tthe food was good", "0\tslow service", "1\tnice place", "0\tbad food and slow staff"]
VALID = ["1\tgood staff", "0\tawful place"]
TEST = ["0\tbad service", "1\tthe place was nice"]


def write_corpus(root: Path, train=TRAIN, valid=VALID, test=TEST, prefix: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split, lines in (("train", train), ("valid", valid), ("test", test)):
        (root / f"{prefix}{split}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def corpus_dir(tmp_path) -> Path:
    return write_corpus(tmp_path / "corpus")


def test_directory_corpus_builds_vocab_from_train(corpus_dir, tmp_path):
    corpus = load_corpus(DataConfig(corpus=str(corpus_dir)), tmp_path / "root")
    assert corpus.name == "corpus" and corpus.root == corpus_dir
    assert corpus.vocab.itos[4:8] == ["the", "food", "was", "good"]
    valid = corpus.splits["valid"]
    assert valid.texts == ["good staff", "awful place"] and valid.labels == ["1", "0"]
    assert valid.ids[1] == [1, corpus.vocab.unk_id, corpus.vocab.stoi["place"], 2]
    assert corpus.label_set == ["0", "1"]


def test_split_head(corpus_dir):
    train = load_corpus_dir(corpus_dir, DataConfig()).splits["train"]
    assert train.head(None) is train
    head = train.head(2)
    assert (head.texts, head.ids, head.labels) == (train.texts[:2], train.ids[:2], train.labels[:2])


def test_published_prefixed_names_vocab_file_limits(tmp_path):
    root = write_corpus(tmp_path / "c", prefix="yelp.")
    (root / "vocab.txt").write_text("<pad>\n<s>\n</s>\n<unk>\nfood\nslow\n")
    corpus = load_corpus(DataConfig(corpus=str(root), train_limit=2, max_length=1), tmp_path / "root")
    assert len(corpus.vocab) == 6, "a vocab.txt in the corpus folder is used"
    assert len(corpus.splits["train"]) == 2
    assert corpus.splits["train"].ids[1] == [1, corpus.vocab.stoi["slow"], 2]


def test_missing_registered_corpus_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError) as err:
        load_corpus(DataConfig(corpus="ptb"), tmp_path)
    message = str(err.value)
    assert message.startswith(f"corpus 'ptb' is not in {tmp_path}: get it with: ")
    assert "textvae data download ptb" in message and "textvae data prepare ptb --from DIR" in message
    with pytest.raises(DataError, match="no direct download URL"):
        load_corpus(DataConfig(corpus="yahoo"), tmp_path)


def test_registered_corpus_is_read_from_the_data_root(tmp_path, monkeypatch):
    write_corpus(tmp_path / "root" / "yelp")
    monkeypatch.setenv("TEXTVAE_DATA", str(tmp_path / "root"))
    assert resolve_data_root() == tmp_path / "root"
    assert resolve_data_root(tmp_path / "other") == tmp_path / "other"
    corpus = load_corpus(DataConfig(corpus="yelp"))
    assert corpus.name == "yelp" and len(corpus.splits["test"]) == 2
    assert CATALOG["demo"].embedded


def test_unregistered_corpus_folder_is_found_under_the_data_root_by_name(tmp_path, monkeypatch):
    write_corpus(tmp_path / "root" / "synthetic-mog")
    monkeypatch.chdir(tmp_path)  # no folder of that name here: the data root's is used
    corpus = load_corpus(DataConfig(corpus="synthetic-mog"), tmp_path / "root")
    assert corpus.name == "synthetic-mog" and len(corpus.splits["train"]) == 4
    with pytest.raises(DataError, match="unknown corpus 'synthetic-mog'"):
        load_corpus(DataConfig(corpus="synthetic-mog"), tmp_path / "elsewhere")


def test_unknown_corpus_name_suggests(tmp_path):
    with pytest.raises(DataError, match="unknown corpus 'ptbb' \\(did you mean 'ptb'\\?\\)"):
        load_corpus(DataConfig(corpus="ptbb"), tmp_path)


@pytest.mark.parametrize(
    "files, message",
    [
        ({"train.txt": None}, "no train split"),
        ({"train.csv": "text\nthe food\n"}, "several files could be the train split: train.csv, train.txt"),
        ({"valid.txt": "good staff\n"}, "valid.txt: unlabeled, but the train split"),
        ({"test.txt": ""}, "test.txt: file is empty"),
    ],
)
def test_bad_corpus_directories(corpus_dir, tmp_path, files, message):
    for name, content in files.items():
        if content is None:
            (corpus_dir / name).unlink()
        else:
            (corpus_dir / name).write_text(content)
    with pytest.raises(DataError, match=message):
        load_corpus(DataConfig(corpus=str(corpus_dir)), tmp_path / "root")


def test_table_splits(tmp_path):
    root = tmp_path / "tables"
    root.mkdir()
    (root / "train.csv").write_text("text,label\nthe food,1\nslow service,0\n")
    (root / "valid.jsonl").write_text(json.dumps({"text": "good food", "label": 1}) + "\n")
    (root / "test.json").write_text(json.dumps([{"text": "bad", "label": 0}]))
    corpus = load_corpus(DataConfig(corpus=str(root)), tmp_path / "root")
    assert corpus.splits["valid"].texts == ["good food"] and corpus.splits["valid"].labels == ["1"]
    assert corpus.splits["test"].labels == ["0"]


def count_builds(monkeypatch) -> list:
    calls = []
    real = loading.encode_corpus
    monkeypatch.setattr(loading, "encode_corpus", lambda *a: calls.append(1) or real(*a))
    return calls


def test_second_load_comes_from_the_cache(corpus_dir, tmp_path, monkeypatch):
    builds = count_builds(monkeypatch)
    config = DataConfig(corpus=str(corpus_dir))
    first = load_corpus(config, tmp_path / "root")
    entries = list((tmp_path / "root" / "cache").glob("corpus-*"))
    assert len(entries) == 1 and (entries[0] / "splits").is_dir() and (entries[0] / "vocab.txt").is_file()
    second = load_corpus(config, tmp_path / "root")
    assert len(builds) == 1
    assert second.vocab == first.vocab
    for split in ("train", "valid", "test"):
        assert second.splits[split] == first.splits[split]
    # Changing a file's content or an encoding setting makes a new entry.
    (corpus_dir / "test.txt").write_text("0\tbad food\n")
    assert load_corpus(config, tmp_path / "root").splits["test"].texts == ["bad food"]
    load_corpus(DataConfig(corpus=str(corpus_dir), max_length=2), tmp_path / "root")
    assert len(builds) == 3


def test_unwritable_cache_is_skipped(corpus_dir, tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "cache").write_text("a file where the cache folder should be")
    corpus = load_corpus(DataConfig(corpus=str(corpus_dir)), tmp_path / "root")
    assert len(corpus.splits["train"]) == 4


def test_load_corpus_dir_without_cache_dir_writes_nothing(corpus_dir):
    before = sorted(corpus_dir.parent.rglob("*"))
    corpus = load_corpus_dir(corpus_dir, DataConfig())
    assert len(corpus.splits["train"]) == 4 and sorted(corpus_dir.parent.rglob("*")) == before


def test_sentencepiece_corpus_cache_and_run_folder(corpus_dir, tmp_path, monkeypatch):
    builds = count_builds(monkeypatch)
    config = DataConfig(corpus=str(corpus_dir), tokenizer="sentencepiece", sp_vocab_size=40)
    corpus = load_corpus(config, tmp_path / "root")
    vocab = corpus.vocab
    assert vocab.tokenizer == "sentencepiece" and len(vocab) <= 40
    assert corpus.splits["train"].ids[0] == vocab.encode("the food was good")
    [entry] = (tmp_path / "root" / "cache").glob("corpus-*")
    assert (entry / TOKENIZER_FILE).read_bytes() == vocab.sp_model
    assert load_corpus(config, tmp_path / "root").vocab == vocab and len(builds) == 1
    # What the trainer does: the run folder can re-tokenize raw text without the corpus.
    run = tmp_path / "run"
    run.mkdir()
    vocab.save(run / "vocab.txt")
    assert Vocab.load(run / "vocab.txt").encode("nice food") == vocab.encode("nice food")
    # A run's vocab.txt (with tokenizer.model beside it) can be reused as data.vocab_file.
    reused = load_corpus(DataConfig(corpus=str(corpus_dir), tokenizer="sentencepiece",
                                    vocab_file=str(run / "vocab.txt")), tmp_path / "root")
    assert reused.vocab == vocab


def test_vocab_file_must_match_the_tokenizer(corpus_dir, tmp_path):
    Vocab.build([["food"]]).save(tmp_path / "words.txt")
    with pytest.raises(DataError, match="a word vocabulary, but data.tokenizer is 'sentencepiece'"):
        load_corpus(DataConfig(corpus=str(corpus_dir), tokenizer="sentencepiece",
                               vocab_file=str(tmp_path / "words.txt")), tmp_path / "root")


def test_shipped_word_vocab_is_ignored_by_sentencepiece(corpus_dir, tmp_path):
    (corpus_dir / "vocab.txt").write_text("<pad>\n<s>\n</s>\n<unk>\nfood\n")
    corpus = load_corpus(DataConfig(corpus=str(corpus_dir), tokenizer="sentencepiece", sp_vocab_size=40),
                         tmp_path / "root")
    assert corpus.vocab.tokenizer == "sentencepiece"


def test_hf_corpus_from_a_local_dataset_folder(tmp_path, monkeypatch):
    folder = tmp_path / "hubdata"
    folder.mkdir()
    (folder / "train.csv").write_text("text,label\nthe food,1\nslow service,0\nnice place,1\n")
    (folder / "validation.csv").write_text("text,label\ngood food,1\n")
    (folder / "test.csv").write_text("text,label\nbad place,0\n")
    builds = count_builds(monkeypatch)
    config = DataConfig(corpus=f"hf:{folder}", train_limit=2)
    corpus = load_corpus(config, tmp_path / "root")
    assert corpus.name == f"hf:{folder}"
    assert corpus.splits["train"].texts == ["the food", "slow service"]
    assert corpus.splits["valid"].texts == ["good food"] and corpus.splits["valid"].labels == ["1"]
    assert load_corpus(config, tmp_path / "root").vocab == corpus.vocab and len(builds) == 1


def test_hf_corpus_errors_are_one_line(tmp_path, monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'someone/corpus' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match="data.corpus 'hf:someone/corpus': cannot load the dataset: Couldn't reach"):
        load_corpus(DataConfig(corpus="hf:someone/corpus"), tmp_path)

    def no_test_split(name, config_name=None, cache_dir=None):
        assert (name, config_name) == ("someone/corpus", "small")
        table = datasets.Dataset.from_dict({"text": ["a b"]})
        return datasets.DatasetDict({"train": table, "validation": table})

    monkeypatch.setattr(datasets, "load_dataset", no_test_split)
    with pytest.raises(DataError, match="no 'test' split for test \\(it has train, validation; set data.test_split\\)"):
        load_corpus(DataConfig(corpus="hf:someone/corpus:small"), tmp_path)

    def empty_test_split(name, config_name=None, cache_dir=None):
        table = datasets.Dataset.from_dict({"text": ["a b"], "label": [1]})
        empty = datasets.Dataset.from_dict({"text": [], "label": []})
        return datasets.DatasetDict({"train": table, "dev": table, "test": empty})

    monkeypatch.setattr(datasets, "load_dataset", empty_test_split)
    with pytest.raises(DataError, match="^hf:someone/corpus\\[test\\]: no examples$"):
        load_corpus(DataConfig(corpus="hf:someone/corpus"), tmp_path)


def test_a_sentencepiece_run_folder_reloads_its_tokenizer(corpus_dir, tmp_path):
    from textvae.config import RunConfig
    from textvae.runs import load_run
    from textvae.training import train

    config = RunConfig.from_dict({
        "data": {"corpus": str(corpus_dir), "tokenizer": "sentencepiece", "sp_vocab_size": 40, "batch_size": 2},
        "model": {"embed_dim": 4, "enc_hidden": 4, "dec_hidden": 4, "latent_dim": 2},
        "train": {"epochs": 1, "progress": False, "diagnostics": False},
    })
    train(config, tmp_path / "run", data_dir=tmp_path / "root", evaluate_test=False)
    assert (tmp_path / "run" / TOKENIZER_FILE).is_file()
    run = load_run(tmp_path / "run", checkpoint="last")
    corpus = load_corpus(config.data, tmp_path / "root")
    assert run.vocab == corpus.vocab and run.vocab.tokenizer == "sentencepiece"
    assert run.vocab.encode("nice staff") == corpus.vocab.encode("nice staff")


def test_a_damaged_cache_entry_is_rebuilt(corpus_dir, tmp_path, monkeypatch):
    builds = count_builds(monkeypatch)
    config = DataConfig(corpus=str(corpus_dir))
    first = load_corpus(config, tmp_path / "root")
    [entry] = (tmp_path / "root" / "cache").glob("corpus-*")
    for arrow in (entry / "splits").rglob("*.arrow"):
        arrow.write_bytes(b"not arrow")
    assert load_corpus(config, tmp_path / "root").splits["train"] == first.splits["train"]
    assert load_corpus(config, tmp_path / "root").vocab == first.vocab
    assert len(builds) == 2

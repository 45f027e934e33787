"""Vocab: word and sentencepiece tokenizers, and saving/loading them into a run folder."""

import pickle

import pytest

from textvae.data import Vocab, encode_texts
from textvae.data.subword import train_sentencepiece
from textvae.data.vocab import TOKENIZER_FILE
from textvae.errors import ConfigError, DataError

TEXTS = ["the food was good", "the staff was friendly", "slow service and bad food", "nice place i love it",
         "awful food , hate it", "great staff and great food"] * 5


def test_word_vocab_order_specials_and_unknowns():
    vocab = Vocab.build(t.split() for t in ["b a", "a c"])
    assert vocab.itos == ["<pad>", "<s>", "</s>", "<unk>", "b", "a", "c"]
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    assert vocab.encode("a zzz c") == [1, 5, 3, 6, 2]
    assert vocab.decode([1, 5, 3, 6, 2, 4, 0]) == "a <unk> c"
    assert vocab.tokenizer == "word"


def test_word_vocab_file_round_trip_and_specials_added(tmp_path):
    vocab = Vocab.build([["x", "y"]])
    vocab.save(tmp_path / "vocab.txt")
    assert Vocab.load(tmp_path / "vocab.txt") == vocab
    assert not (tmp_path / TOKENIZER_FILE).exists()
    (tmp_path / "other.txt").write_bytes(b"<unk>\r\nfoo\t12\r\nbar\r\n")
    assert Vocab.load(tmp_path / "other.txt").itos == ["<pad>", "<s>", "</s>", "<unk>", "foo", "bar"]


@pytest.mark.parametrize("content, message", [(None, "vocabulary file not found"), (b"a\nb\n", "no '<unk>' entry"),
                                              (b"<unk>\n\xff\n", ":2: line is not valid UTF-8")])
def test_bad_vocab_files(tmp_path, content, message):
    path = tmp_path / "vocab.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        Vocab.load(path)
    assert str(path) in str(err.value)


@pytest.fixture(scope="module")
def sp_vocab() -> Vocab:
    return train_sentencepiece(TEXTS, vocab_size=60)


def test_sentencepiece_ids_match_specials_and_round_trip(sp_vocab):
    assert sp_vocab.tokenizer == "sentencepiece"
    assert sp_vocab.itos[:4] == ["<pad>", "<s>", "</s>", "<unk>"]
    assert 4 < len(sp_vocab) <= 60
    ids = sp_vocab.encode("the food was good")
    assert ids[0] == sp_vocab.bos_id and ids[-1] == sp_vocab.eos_id
    assert sp_vocab.unk_id not in ids
    assert sp_vocab.decode(ids) == "the food was good"
    # Characters never seen in training become <unk>, not an error.
    assert sp_vocab.unk_id in sp_vocab.encode("the food 漢")


def test_too_small_sentencepiece_vocabulary_is_a_config_error():
    with pytest.raises(ConfigError, match="data.sp_vocab_size = 8: sentencepiece training failed: Vocabulary size is "
                                          "smaller than required_chars"):
        train_sentencepiece(TEXTS, vocab_size=8)


def test_sentencepiece_training_is_deterministic(sp_vocab):
    assert train_sentencepiece(TEXTS, vocab_size=60) == sp_vocab


def test_sentencepiece_saves_its_model_into_the_run_folder(sp_vocab, tmp_path):
    sp_vocab.save(tmp_path / "vocab.txt")
    assert (tmp_path / TOKENIZER_FILE).read_bytes() == sp_vocab.sp_model
    loaded = Vocab.load(tmp_path / "vocab.txt")
    assert loaded == sp_vocab and loaded.tokenizer == "sentencepiece"
    assert loaded.encode("great staff, nice place") == sp_vocab.encode("great staff, nice place")


def test_vocab_txt_must_match_the_model_beside_it(sp_vocab, tmp_path):
    sp_vocab.save(tmp_path / "vocab.txt")
    Vocab.build([["a"]]).save(tmp_path / "vocab.txt")  # a stale word vocab over the sentencepiece one
    with pytest.raises(DataError, match=f"does not list the pieces of {TOKENIZER_FILE}"):
        Vocab.load(tmp_path / "vocab.txt")


def test_vocab_pickles_with_its_tokenizer(sp_vocab):
    clone = pickle.loads(pickle.dumps(sp_vocab))
    assert clone == sp_vocab and clone.encode("the food") == sp_vocab.encode("the food")


def test_encode_texts_truncates_tokens_of_either_tokenizer(sp_vocab):
    words = Vocab.build(t.split() for t in TEXTS)
    split = encode_texts(words, ["the food was good"], max_length=2)
    assert split.ids == [[1, words.stoi["the"], words.stoi["food"], 2]]
    pieces = sp_vocab.tokenize("slow service and bad food")
    split = encode_texts(sp_vocab, ["slow service and bad food"], max_length=3)
    assert split.ids[0] == sp_vocab.encode_words(pieces[:3])

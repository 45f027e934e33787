"""One definition of a line for every reader (issue 30): a line ends at '\\n' only, so U+2028,
U+2029, U+0085, a form feed or a lone '\\r' inside a sentence never make two examples of one."""

from __future__ import annotations

import pytest
from tiny_vae import save_run
from typer.testing import CliRunner

from textvae.cli.main import app
from textvae.data.reader import read_lines, split_lines
from textvae.data.vocab import Vocab

SEPARATORS = ["\u2028", "\u2029", "\u0085", "\x0c", "\x1c", "\r"]


@pytest.mark.parametrize("sep", SEPARATORS, ids=[f"U+{ord(s):04X}" for s in SEPARATORS])
def test_every_reader_sees_the_same_lines(tmp_path, sep):
    text = f"the food{sep}was good\r\nslow service\n"
    assert split_lines(text) == [f"the food{sep}was good", "slow service"]
    path = tmp_path / "train.txt"
    path.write_text(text, newline="")
    assert len(read_lines(path).texts) == 2
    vocab = tmp_path / "vocab.txt"
    vocab.write_text(f"<pad>\n<s>\n</s>\n<unk>\na{sep}b\nc\r\n", newline="")
    assert Vocab.load(vocab).itos[-2:] == [f"a{sep}b", "c"]


def test_reconstruct_reads_its_input_as_training_reads_a_split(make_config, tiny_corpus, tmp_path):
    model = {"embed_dim": 16, "enc_hidden": 16, "dec_hidden": 16, "latent_dim": 4}
    run = save_run(make_config(tiny_corpus, model=model), tmp_path / "run")
    inputs = tmp_path / "in.txt"
    inputs.write_text("the food was\u2028good\nslow\u0085service\r\n", newline="")
    result = CliRunner().invoke(
        app, ["reconstruct", str(run), "--input", str(inputs), "--max-length", "5"]
    )
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.split("\n") if line]
    assert [row.split("\t")[0] for row in rows] == ["the food was\u2028good", "slow\u0085service"]


def test_split_lines_of_nothing_and_of_a_final_newline():
    assert split_lines("") == [] and split_lines("a") == ["a"] and split_lines("a\n\n") == ["a", ""]

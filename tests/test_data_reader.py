"""Strict reading of split files: every bad input is one line naming the file and the line (or row)."""

import json
from pathlib import Path

import pytest

from textvae.data.reader import read_lines
from textvae.data.splits import read_split
from textvae.errors import DataError


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def test_plain_and_labeled_lines(tmp_path):
    raw = read_lines(write(tmp_path / "a.txt", " the food \r\ngood  place\n"))
    assert raw.texts == ["the food", "good  place"] and raw.labels is None
    raw = read_lines(write(tmp_path / "b.txt", "1\tthe food\n0\tbad place\n"))
    assert raw.texts == ["the food", "bad place"] and raw.labels == ["1", "0"]
    assert read_lines(tmp_path / "b.txt", limit=1).texts == ["the food"]


@pytest.mark.parametrize(
    "content, where, message",
    [
        (None, "", "file not found"),
        (b"", "", "file is empty"),
        (b"\n \n", "", "file is empty"),
        (b"good food\nbad \xff place\n", ":2", "line is not valid UTF-8 (byte 4)"),
        (b"1\tgood food\nno label here\n", ":2", "no 'label<TAB>text' label"),
        (b"1\tgood food\n\tno label\n", ":2", "no 'label<TAB>text' label"),
        (b"good food\n   \nbad food\n", ":2", "empty example"),
    ],
)
def test_bad_text_files(tmp_path, content, where, message):
    path = tmp_path / "valid.txt"
    if content is not None:
        write(path, content)
    with pytest.raises(DataError) as err:
        read_split(path)
    assert str(err.value).startswith(f"{path}{where}: ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_csv_and_jsonl_tables(tmp_path):
    csv = write(tmp_path / "train.csv",
                '\ufefftext,label,extra\r\nthe food,1,x\r\n"good, fine  place",0,y\r\n123,1,z\r\n')
    raw = read_split(csv, cache_dir=tmp_path / "hf")
    assert raw.texts == ["the food", "good, fine place", "123"] and raw.labels == ["1", "0", "1"]
    lines = [json.dumps({"text": t}) for t in ("the food", "bad place")]
    raw = read_split(write(tmp_path / "valid.jsonl", "\n".join(lines) + "\n"), cache_dir=tmp_path / "hf")
    assert raw.texts == ["the food", "bad place"] and raw.labels is None
    assert read_split(csv, limit=2, cache_dir=tmp_path / "hf").texts == ["the food", "good, fine place"]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("t.csv", "text,label\ngood,1\nbad,\n", ": row 2: labeled table, but this row has no label"),
        ("t.csv", "text,label\ngood,1\n ,0\n", ": row 2: empty example"),
        ("t.csv", "sentence,label\ngood,1\n", ": no 'text' column (columns: sentence, label; set data.text_column)"),
        ("t.csv", b"text\ngood\nbad \xff\n", ":3: line is not valid UTF-8"),
        ("t.jsonl", '{"text": "good", "label": 1}\n{"text": "bad"}\n',
         ": row 2: labeled table, but this row has no label"),
        ("t.jsonl", '{"text": "good"}\nnot json\n', ": cannot be read as JSON"),
        ("t.jsonl", "", ": file is empty"),
        ("t.json", "[]", ": cannot be read as JSON"),
        ("t.csv", "text,label\n\n", ": no examples after the header row"),
    ],
)
def test_bad_tables(tmp_path, name, content, message):
    path = write(tmp_path / name, content)
    with pytest.raises(DataError) as err:
        read_split(path, cache_dir=tmp_path / "hf")
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)
    assert "\n" not in str(err.value)

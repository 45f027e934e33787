"""prepare/download: normalised names, deterministic synthetic split, sha256 checks, atomic results.

Downloads come from an HTTP server on 127.0.0.1 started here, never from the internet.
"""

import dataclasses
import functools
import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from textvae.config import DataConfig
from textvae.data import CATALOG, load_corpus
from textvae.data.catalog import Download
from textvae.data.download import download_corpus
from textvae.data.prepare import prepare_corpus
from textvae.errors import DataError

SPLITS = {"train": b"the food was good\nslow service\n", "valid": b"nice place\n", "test": b"bad staff\n"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def published(name: str, monkeypatch, **changes):
    """Register corpus ``name`` with test checksums/URLs (the real entries point at the real release)."""
    info = dataclasses.replace(CATALOG[name], **changes)
    monkeypatch.setitem(CATALOG, name, info)
    return info


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def test_prepare_normalises_published_names_and_verifies(tmp_path, monkeypatch):
    published("ptb", monkeypatch, sha256={f"{s}.txt": sha(d) for s, d in SPLITS.items()})
    source = write_files(tmp_path / "src", {f"ptb.{s}.txt": d for s, d in SPLITS.items()})
    target, files = prepare_corpus("ptb", source, tmp_path / "root")
    assert target == tmp_path / "root" / "ptb"
    assert sorted(p.name for p in target.iterdir()) == ["test.txt", "train.txt", "valid.txt"]
    assert (target / "train.txt").read_bytes() == SPLITS["train"]
    assert {f.name: f.check for f in files} == {"train.txt": "verified", "valid.txt": "verified",
                                                "test.txt": "verified"}
    assert [p.name for p in (tmp_path / "root").iterdir()] == ["ptb"], "no staging folder is left behind"
    corpus = load_corpus(DataConfig(corpus="ptb"), tmp_path / "root")
    assert corpus.splits["valid"].texts == ["nice place"]


def test_prepare_copies_the_vocab_file_and_reports_unknown_checksums(tmp_path, monkeypatch):
    published("short-yelp", monkeypatch, sha256={})
    labeled = {f"short_yelp.{s}.txt": b"".join(b"1\t" + line + b"\n" for line in d.splitlines())
               for s, d in SPLITS.items()}
    source = write_files(tmp_path / "src", {**labeled, "vocab.txt": b"<pad>\n<s>\n</s>\n<unk>\nfood\n"})
    target, files = prepare_corpus("short-yelp", source, tmp_path / "root")
    assert (target / "vocab.txt").is_file()
    assert {f.check for f in files} == {"no published sha256"}
    corpus = load_corpus(DataConfig(corpus="short-yelp"), tmp_path / "root")
    assert len(corpus.vocab) == 5 and corpus.splits["train"].labels == ["1", "1"]


def test_prepare_copies_the_probe_subsets_when_present(tmp_path, monkeypatch):
    published("short-yelp", monkeypatch, sha256={})
    labeled = {f"{s}.txt": b"1\tgood food\n" for s in SPLITS}
    source = write_files(tmp_path / "src", {**labeled, "short_yelp.train.100.txt": b"0\tbad place\n",
                                            "train.500.txt": b"1\tnice\n"})
    target, _ = prepare_corpus("short-yelp", source, tmp_path / "root")
    assert (target / "train.100.txt").read_bytes() == b"0\tbad place\n"
    assert (target / "train.500.txt").is_file() and not (target / "train.1000.txt").exists()
    (source / "train.2000.txt").write_text("1\tgood\n\tno label\n")
    with pytest.raises(DataError, match="train.2000.txt:2"):
        prepare_corpus("short-yelp", source, tmp_path / "root2")


def test_sha256_mismatch_names_the_file_unless_no_verify(tmp_path, monkeypatch):
    published("ptb", monkeypatch, sha256={"valid.txt": sha(b"the published valid split\n")})
    source = write_files(tmp_path / "src", {f"{s}.txt": d for s, d in SPLITS.items()})
    with pytest.raises(DataError) as err:
        prepare_corpus("ptb", source, tmp_path / "root")
    assert str(err.value).startswith(
        f"{source / 'valid.txt'}: sha256 {sha(SPLITS['valid'])} is not the published ptb valid.txt")
    assert "--no-verify" in str(err.value)
    assert not (tmp_path / "root" / "ptb").exists()
    _, files = prepare_corpus("ptb", source, tmp_path / "root", verify=False)
    assert {f.name: f.check for f in files}["valid.txt"] == "not verified (--no-verify)"


def test_prepare_checks_lines_and_refuses_to_overwrite(tmp_path):
    source = write_files(tmp_path / "src", {**{f"{s}.txt": d for s, d in SPLITS.items()}, "test.txt": b"ok\n\xff\n"})
    with pytest.raises(DataError, match=f"{source / 'test.txt'}:2: line is not valid UTF-8"):
        prepare_corpus("yelp", source, tmp_path / "root")
    assert not (tmp_path / "root" / "yelp").exists()
    (source / "test.txt").write_bytes(SPLITS["test"])
    prepare_corpus("yelp", source, tmp_path / "root")
    with pytest.raises(DataError, match="already prepared \\(use --force to replace it\\)"):
        prepare_corpus("yelp", source, tmp_path / "root")
    (source / "test.txt").write_bytes(b"new test\n")
    prepare_corpus("yelp", source, tmp_path / "root", force=True)
    assert (tmp_path / "root" / "yelp" / "test.txt").read_bytes() == b"new test\n"


def test_prepare_rejects_unknown_and_embedded_corpora(tmp_path):
    with pytest.raises(DataError, match="unknown corpus 'ptbb' \\(did you mean 'ptb'\\?\\)"):
        prepare_corpus("ptbb", tmp_path, tmp_path / "root")
    with pytest.raises(DataError, match="ships with textvae"):
        prepare_corpus("demo", tmp_path, tmp_path / "root")
    with pytest.raises(DataError, match="source folder not found"):
        prepare_corpus("ptb", tmp_path / "nowhere", tmp_path / "root")


SYNTHETIC = b"".join(f"{i % 1000} {i % 7} {i % 13} \n".encode() for i in range(10_000))


def test_synthetic_is_split_8k_1k_1k_in_file_order(tmp_path, monkeypatch):
    published("synthetic", monkeypatch, sha256={"synthetic_data.txt": sha(SYNTHETIC)})
    source = write_files(tmp_path / "src", {"synthetic_data.txt": SYNTHETIC})
    target, files = prepare_corpus("synthetic", source, tmp_path / "root")
    lines = SYNTHETIC.decode().splitlines(keepends=True)
    assert (target / "train.txt").read_text() == "".join(lines[:8000])
    assert (target / "valid.txt").read_text() == "".join(lines[8000:9000])
    assert (target / "test.txt").read_text() == "".join(lines[9000:])
    assert [(f.name, f.check) for f in files] == [("synthetic_data.txt", "verified")]
    corpus = load_corpus(DataConfig(corpus="synthetic"), tmp_path / "root")
    assert [len(corpus.splits[s]) for s in ("train", "valid", "test")] == [8000, 1000, 1000]


def test_synthetic_with_the_wrong_line_count_is_an_error(tmp_path):
    source = write_files(tmp_path / "src", {"synthetic_data.txt": b"1 2 3\n" * 10})
    with pytest.raises(DataError, match="10 lines; the released file has 10000 \\(split 8000/1000/1000\\)"):
        prepare_corpus("synthetic", source, tmp_path / "root", verify=False)


# ---- download ---------------------------------------------------------------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """(folder served, base URL) of an HTTP server on 127.0.0.1."""
    folder = tmp_path / "www"
    folder.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def make_tgz(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def ptb_release(monkeypatch, url: str, **changes):
    """The real PTB entry's archive members, fetched from ``url``."""
    members = CATALOG["ptb"].downloads[0].members
    return published("ptb", monkeypatch, downloads=(Download(url, members=members),),
                     sha256={f"{s}.txt": sha(d) for s, d in SPLITS.items()}, **changes)


def test_download_tgz_with_the_real_ptb_member_names(server, tmp_path, monkeypatch):
    folder, base = server
    # Mikolov's simple-examples.tgz stores its members as ./simple-examples/data/ptb.*.txt
    make_tgz(folder / "simple-examples.tgz", {f"./simple-examples/data/ptb.{s}.txt": d for s, d in SPLITS.items()}
             | {"./simple-examples/data/ptb.char.train.txt": b"t h e\n"})
    ptb_release(monkeypatch, f"{base}/simple-examples.tgz")
    log = []
    target, files = download_corpus("ptb", tmp_path / "root", log=log.append)
    assert log == [f"downloading {base}/simple-examples.tgz"]
    assert {p.name: p.read_bytes() for p in target.iterdir()} == {f"{s}.txt": d for s, d in SPLITS.items()}
    assert {f.check for f in files} == {"verified"}
    assert [p.name for p in (tmp_path / "root").iterdir()] == ["ptb"], "temporary files are gone"


def test_download_zip_and_plain_files(server, tmp_path, monkeypatch):
    folder, base = server
    with zipfile.ZipFile(folder / "release.zip", "w") as z:
        for s in ("train", "valid"):
            z.writestr(f"data/{s}.txt", SPLITS[s])
    (folder / "test.txt").write_bytes(SPLITS["test"])
    published("yelp", monkeypatch, downloads=(
        Download(f"{base}/release.zip", members={"data/train.txt": "train.txt", "data/valid.txt": "valid.txt"}),
        Download(f"{base}/test.txt", save_as="test.txt"),
    ))
    target, files = download_corpus("yelp", tmp_path / "root")
    assert (target / "test.txt").read_bytes() == SPLITS["test"]
    assert (target / "valid.txt").read_bytes() == SPLITS["valid"]
    assert {f.check for f in files} == {"no published sha256"}


def test_download_synthetic_plain_file_is_split(server, tmp_path, monkeypatch):
    folder, base = server
    (folder / "synthetic_data.txt").write_bytes(SYNTHETIC)
    published("synthetic", monkeypatch, sha256={"synthetic_data.txt": sha(SYNTHETIC)},
              downloads=(Download(f"{base}/synthetic_data.txt", save_as="synthetic_data.txt"),))
    target, _ = download_corpus("synthetic", tmp_path / "root")
    assert len((target / "train.txt").read_text().splitlines()) == 8000


def test_download_failures_leave_nothing_behind(server, tmp_path, monkeypatch):
    folder, base = server
    root = tmp_path / "root"
    ptb_release(monkeypatch, f"{base}/missing.tgz")
    with pytest.raises(DataError, match=f"{base}/missing.tgz: download failed: HTTP 404"):
        download_corpus("ptb", root)
    make_tgz(folder / "wrong.tgz", {"simple-examples/data/ptb.train.txt": b"x\n"})
    ptb_release(monkeypatch, f"{base}/wrong.tgz")
    with pytest.raises(DataError, match="the archive has no member 'simple-examples/data/ptb.valid.txt'"):
        download_corpus("ptb", root)
    (folder / "page.tgz").write_text("<html>a web page, not an archive</html>")
    ptb_release(monkeypatch, f"{base}/page.tgz")
    with pytest.raises(DataError, match="not a .zip or .tar\\(.gz\\) archive"):
        download_corpus("ptb", root)
    corrupted = {f"simple-examples/data/ptb.{s}.txt": d.upper() for s, d in SPLITS.items()}
    make_tgz(folder / "corrupted.tgz", corrupted)
    ptb_release(monkeypatch, f"{base}/corrupted.tgz")
    with pytest.raises(DataError, match="sha256 .* is not the published ptb train.txt"):
        download_corpus("ptb", root)
    assert list(root.iterdir()) == []


def test_download_unreachable_host_and_no_url(tmp_path, monkeypatch):
    ptb_release(monkeypatch, "http://127.0.0.1:9/simple-examples.tgz")  # port 9: nothing listens
    with pytest.raises(DataError, match="download failed"):
        download_corpus("ptb", tmp_path / "root")
    with pytest.raises(DataError, match="corpus 'yahoo' has no direct download: .*drive.google.com"):
        download_corpus("yahoo", tmp_path / "root")


def test_catalog_download_sources():
    ptb = CATALOG["ptb"].downloads[0]
    assert ptb.url == "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"
    assert ptb.members == {f"simple-examples/data/ptb.{s}.txt": f"{s}.txt" for s in ("train", "valid", "test")}
    assert CATALOG["synthetic"].downloads[0].save_as == "synthetic_data.txt"
    for name in ("yahoo", "yelp", "short-yelp"):
        assert not CATALOG[name].downloads and "textvae data prepare" in CATALOG[name].obtain

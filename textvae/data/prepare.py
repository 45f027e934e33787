"""``textvae data prepare``: copy a user's corpus files into the data root under normalised names.

The source folder may use the published names (``ptb.train.txt``, ``yahoo.valid.txt``, ...);
the corpus folder gets ``train/valid/test.EXT`` (and ``vocab.txt`` where the corpus has one).
A corpus released as one file (synthetic) is cut into its splits in file order. Each split is read
with the strict reader first, so a bad line is reported before anything is copied, and files with a
published sha256 are verified. The corpus folder appears atomically: it is assembled in a
temporary folder beside it and renamed into place.

``--force`` replaces a corpus folder only when it holds nothing but what ``prepare`` writes (the
split files, the vocabulary, the corpus's released and extra files); a folder holding anything else
(a user's file, a ``.git``) is refused, naming it, before anything is read or copied.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, suggest
from ..rundir import describe_entries
from .cache import CACHE_DIR
from .catalog import CATALOG, CorpusInfo, resolve_data_root
from .corpus import SPLITS, find_split_file
from .files import file_digest, temp_dir
from .reader import SPLIT_SUFFIXES, read_lines, read_text, split_lines
from .splits import read_split
from .vocab import Vocab


@dataclass
class PreparedFile:
    name: str
    source: Path
    check: str
    """``verified``, ``no published sha256`` or ``not verified (--no-verify)``."""


def registered(name: str) -> CorpusInfo:
    if name not in CATALOG:
        raise DataError(f"unknown corpus '{name}'" + suggest(name, CATALOG) + f"; registered: {', '.join(CATALOG)}")
    info = CATALOG[name]
    if info.embedded:
        raise DataError(f"corpus '{name}' ships with textvae ({info.obtain}); there is nothing to prepare")
    return info


def prepare_corpus(name: str, source: Path, data_dir: str | Path | None = None, verify: bool = True,
                   force: bool = False) -> tuple[Path, list[PreparedFile]]:
    """Copy corpus ``name`` from ``source`` into ``<data root>/name``; returns the folder and what was copied."""
    info = registered(name)
    source = Path(source)
    if not source.is_dir():
        raise DataError(f"{source}: source folder not found")
    root = resolve_data_root(data_dir)
    target = root / name
    check_replaceable(info, target, force)
    files = source_files(info, source)
    if verify:
        check_sha256(info, files)
    for dest, path in files.items():  # bad lines are reported in the user's own files, before copying
        if dest == info.vocab_file:
            Vocab.load(path)
        elif dest == info.split_file or dest in info.extra_files:
            read_lines(path)
        else:
            read_split(path, cache_dir=root / CACHE_DIR / "datasets")
    staging = temp_dir(root, name)
    try:
        for dest, path in files.items():
            shutil.copyfile(path, staging / dest)
        if info.split_file is not None:
            cut_splits(files[info.split_file], info.split_sizes, staging)
        check_replaceable(info, target, force)  # again: the folder may have changed while we read
        if target.is_symlink():  # replace the link, never the folder it points to
            target.unlink()
        old = None
        if target.exists():  # moved aside first: a failed rename below puts it back, nothing lost
            old = temp_dir(root, f"{name}.old")
            target.rename(old / name)
        try:
            staging.rename(target)
        except BaseException:
            if old is not None:
                (old / name).rename(target)
            raise
        if old is not None:
            shutil.rmtree(old)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, [PreparedFile(dest, path, check_status(info, dest, verify)) for dest, path in files.items()]


def corpus_files(info: CorpusInfo) -> set[str]:
    """The names ``prepare`` writes into corpus ``info``'s folder."""
    names = {f"{split}{suffix}" for split in SPLITS for suffix in SPLIT_SUFFIXES}
    names.update(n for n in (info.vocab_file, info.split_file) if n)
    return names | set(info.extra_files)


def check_replaceable(info: CorpusInfo, target: Path, force: bool) -> None:
    """A corpus folder may be replaced (with ``force``) only when it holds nothing but corpus files."""
    if not target.exists() and not target.is_symlink():
        return
    if not force:
        raise DataError(f"{target}: corpus '{info.name}' is already prepared (use --force to replace it)")
    if target.is_symlink():
        return  # the link is replaced, never what it points to
    if not target.is_dir():
        raise DataError(f"{target}: exists and is not a folder; nothing was replaced")
    allowed = corpus_files(info)
    foreign = sorted(p.name + ("/" if p.is_dir() else "") for p in target.iterdir()
                     if p.name not in allowed or p.is_dir() or p.is_symlink())
    if foreign:
        raise DataError(f"{target}: holds {describe_entries(foreign)}, which textvae does not write into a corpus "
                        f"folder; nothing was replaced: move them out, or prepare into another --data-dir")


def check_status(info: CorpusInfo, dest: str, verify: bool) -> str:
    if dest not in info.sha256:
        return "no published sha256"
    return "verified" if verify else "not verified (--no-verify)"


def source_files(info: CorpusInfo, source: Path) -> dict[str, Path]:
    """File name in the corpus folder -> the user's file."""
    if info.split_file is not None:
        path = source / info.split_file
        if not path.is_file():
            raise DataError(f"{source}: no {info.split_file} (corpus '{info.name}' is released as that one file)")
        return {info.split_file: path}
    files = {}
    for split in SPLITS:
        path = find_split_file(source, split)
        files[f"{split}{path.suffix}"] = path
    if info.vocab_file is not None and (source / info.vocab_file).is_file():
        files[info.vocab_file] = source / info.vocab_file
    for extra in info.extra_files:
        matches = [source / extra] + sorted(source.glob(f"*.{extra}"))
        found = next((m for m in matches if m.is_file()), None)
        if found is not None:
            files[extra] = found
    return files


def check_sha256(info: CorpusInfo, files: dict[str, Path]) -> None:
    for dest, path in files.items():
        expected = info.sha256.get(dest)
        if expected is None:
            continue
        actual = file_digest(path)
        if actual != expected:
            raise DataError(f"{path}: sha256 {actual} is not the published {info.name} {dest} ({expected}); "
                            f"pass --no-verify to use this copy anyway")


def cut_splits(path: Path, sizes: tuple[int, int, int], folder: Path) -> None:
    """Write the first ``sizes[0]`` lines to train.txt, the next ``sizes[1]`` to valid.txt, the rest to test.txt."""
    lines = split_lines(read_text(path))
    if len(lines) != sum(sizes):
        raise DataError(f"{path}: {len(lines)} lines; the released file has {sum(sizes)} "
                        f"(split {'/'.join(map(str, sizes))})")
    start = 0
    for split, size in zip(SPLITS, sizes):
        (folder / f"{split}.txt").write_text("\n".join(lines[start:start + size]) + "\n", encoding="utf-8")
        start += size

"""``textvae data download``: fetch a corpus from its original public release, then prepare it.

Each :class:`~textvae.data.catalog.Download` of the corpus is streamed to a ``.part`` file in a
temporary folder inside the data root; plain files are then renamed to their name, archives
(``.zip``, ``.tar.gz``/``.tgz``) have their listed members extracted. The folder then goes through
:func:`~textvae.data.prepare.prepare_corpus` (name normalisation, sha256 check, atomic move), so
nothing appears under the data root unless every file arrived and verified.
"""

from __future__ import annotations

import http.client
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..errors import DataError
from .catalog import Download, resolve_data_root
from .files import temp_dir
from .prepare import PreparedFile, check_replaceable, prepare_corpus, registered

TIMEOUT_S = 60


def download_corpus(name: str, data_dir: str | Path | None = None, verify: bool = True, force: bool = False,
                    log: Callable[[str], None] = lambda message: None) -> tuple[Path, list[PreparedFile]]:
    info = registered(name)
    if not info.downloads:
        raise DataError(f"corpus '{name}' has no direct download: {info.obtain}")
    root = resolve_data_root(data_dir)
    check_replaceable(info, root / name, force)  # before minutes of downloading
    staging = temp_dir(root, f"{name}.download")
    try:
        for download in info.downloads:
            log(f"downloading {download.url}")
            fetch_into(download, staging)
        return prepare_corpus(name, staging, root, verify=verify, force=force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_into(download: Download, folder: Path) -> None:
    part = folder / (PurePosixPath(urllib.parse.urlparse(download.url).path).name + ".part")
    fetch(download.url, part)
    if download.save_as is not None:
        part.rename(folder / download.save_as)
    else:
        extract_members(part, download.members, folder, download.url)
        part.unlink()


def fetch(url: str, dest: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, dest.open("wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except urllib.error.HTTPError as e:
        raise DataError(f"{url}: download failed: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise DataError(f"{url}: download failed: {e.reason}") from None
    except (http.client.HTTPException, OSError) as e:
        raise DataError(f"{url}: download failed: {e}") from None


def extract_members(archive: Path, members: dict[str, str], folder: Path, url: str) -> None:
    """Copy each archive member (path inside the archive, ``./`` ignored) to ``folder/<name>``."""
    wanted = {PurePosixPath(member).as_posix(): name for member, name in members.items()}
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                found = {PurePosixPath(n).as_posix(): n for n in z.namelist()}
                check_members(wanted, found, url)
                for member, name in wanted.items():
                    with z.open(found[member]) as src:
                        write(src, folder / name)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                found = {PurePosixPath(m.name).as_posix(): m for m in t.getmembers() if m.isfile()}
                check_members(wanted, found, url)
                for member, name in wanted.items():
                    with t.extractfile(found[member]) as src:
                        write(src, folder / name)
        else:
            raise DataError(f"{url}: not a .zip or .tar(.gz) archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
        raise DataError(f"{url}: damaged archive: {e}") from None


def check_members(wanted: dict[str, str], found: dict, url: str) -> None:
    for member in wanted:
        if member not in found:
            raise DataError(f"{url}: the archive has no member '{member}'")


def write(src: BinaryIO, dest: Path) -> None:
    with dest.open("wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)

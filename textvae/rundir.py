"""The run folder: its file layout, how each file is written and read, and who may write it.

This module owns the format of a run folder; every other part of textvae (trainer, ``eval``,
``probe``, ``generate``, ``report``, ``plot``, sweeps) goes through it instead of joining paths::

    RUN/
      config.json            the resolved RunConfig (rewritten when ``--resume --set`` changes a key)
      env.json               what the run ran on
      vocab.txt              the vocabulary (+ tokenizer.model for sentencepiece)
      metrics.jsonl          one JSON object per finished epoch
      checkpoints/best.pt    best validation -ELBO
      checkpoints/last.pt    the last epoch whose training and validation were finite (resume point)
      checkpoints/STAGE-best.pt  a multi-stage run's best model of an earlier stage
      results.json           test results; its presence means the run is finished
      eval_SPLIT.json        ``textvae eval`` records (+ eval_SPLIT.latents.json with eval.latent_clutter)
      latents_SPLIT.json     posterior means and labels of an evaluated split (``eval.latent_clutter``)
      probe/DATA.json        ``textvae probe`` records
      generation/NAME.json   ``textvae generate --metrics`` records
      .lock                  present while a process trains into the folder
      events.out.tfevents.*, projector_config.pbtxt, STEP/test_posterior_mean/   TensorBoard
      NAME.*.tmp, .vocab.*.tmp   a writer's temp files (gone once the write is complete)

A folder is a run only when its config.json is a textvae run config: it parses, validates, and
carries the run-folder format (``"format": 1``; a config.json written before the marker existed
counts when it holds every section of a run config and another run file lies beside it). Every
entry a run writes is matched by :func:`run_entry_kind`; whatever else a run folder holds is the
user's, and nothing textvae does ever deletes it.

Guarantees (see docs/runs.md):

- **One writer.** :meth:`RunDir.claim` takes an OS lock (``fcntl.flock``) on ``.lock``, which holds
  the owner's pid, host and start time. A second writer gets :class:`~textvae.errors.RunFolderError`
  naming the folder and the owner. The kernel drops the lock when its owner dies, so the lock of a
  killed run is stale and the next claim takes it over.
- **No silent overwrite.** A fresh run into a folder that holds a run is refused (resume it, or pass
  ``overwrite=True`` to delete the old run first); a non-empty folder that is not a run is always refused.
  A run that failed before its first checkpoint (no checkpoint, no logged epoch) has nothing to lose:
  a fresh run replaces it, so re-running the failed command just works.
- **Deletion confined to the layout.** Replacing a run (``overwrite``, or a run without progress)
  removes only the run's own entries; a folder that also holds anything else (a user's file, a
  ``.git``) is refused, naming what is there, and nothing is touched.
- **Atomic files.** JSON and checkpoints are written to ``NAME.*.tmp`` beside the target, fsynced and
  renamed over it; readers never see half a file. JSON never holds bare ``NaN``/``Infinity``:
  non-finite numbers are written as ``null``.
- **Crash-proof metrics log.** Each epoch's record is stored inside ``last.pt`` (with all earlier ones)
  before it is appended to ``metrics.jsonl``. On resume the log is rewritten from the checkpoint, so a
  crash between the checkpoint and the append, or half-way through the append, loses nothing; orphan
  ``*.tmp`` files are removed. Readers skip a torn last line (one without its newline).

Public API: :class:`RunDir` (paths, ``claim``/``release``, writers for the owner, readers for anyone),
:func:`find_runs`, :func:`default_run_dir`, :func:`write_json`, :func:`atomic_write`, :func:`json_safe`.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from .config import RUN_FORMAT, RunConfig
from .errors import ConfigError, RunFolderError
from .formats import check_format

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, pid liveness only
    fcntl = None

CONFIG = "config.json"
ENV = "env.json"
VOCAB = "vocab.txt"
METRICS = "metrics.jsonl"
RESULTS = "results.json"
CHECKPOINTS = "checkpoints"
LOCK = ".lock"
TEMP_SUFFIX = ".tmp"
CHECKPOINT_NAMES = ("best", "last")
TOKENIZER = "tokenizer.model"
PROBE_DIR = "probe"
GENERATION_DIR = "generation"
PROJECTOR = "projector_config.pbtxt"
PROJECTOR_TAG = "test_posterior_mean"
VOCAB_STAGING = ".vocab"
RUN_SECTIONS = ("name", "seed", "data", "model", "prior", "strategies", "train", "eval")
"""The top-level keys every textvae has written into a run's config.json."""
RUN_FILES = (CONFIG, ENV, VOCAB, METRICS, RESULTS, TOKENIZER, LOCK, PROJECTOR)
_RUN_FILE_PATTERNS = (re.compile(r"eval_[^/]+\.json"), re.compile(r"latents_[^/]+\.json"),
                      re.compile(r"events\.out\.tfevents\.[^/]+"))
RESULTS_FORMAT = 1
"""results.json's ``format``; a file without it is format 1, one of a later format (a newer textvae's)
is refused rather than misread."""
LATENTS_FORMAT = 1
"""latents_SPLIT.json's ``format``, read the same way."""
RESULT_NUMBERS = ("nll", "iw_ppl", "elbo", "rec", "kl", "ppl", "mi", "au", "au_threshold", "kl_train",
                  "n_sentences", "n_targets", "iw_samples", "seed", "limit", "best_epoch", "epochs")
"""results.json keys that hold a number (or null: a non-finite number, or ``limit`` unset)."""


# ---- atomic, strict JSON ------------------------------------------------------------------------
def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN or Infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(json_safe(value), indent=indent, allow_nan=False)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None] | bytes | str) -> None:
    """Write ``path`` through ``NAME.*.tmp`` in the same folder, fsync, rename over the target.

    ``write`` is the content or a function writing to the open binary file. A failure (full disk
    included) leaves the old file as it was and no temp file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(write):
                write(f)
            else:
                f.write(write.encode("utf-8") if isinstance(write, str) else write)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    """Atomically write ``value`` as indented strict JSON (non-finite numbers as null)."""
    atomic_write(path, dumps(value, indent=2) + "\n")


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise RunFolderError(f"{path}: no such file")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise RunFolderError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None


# ---- the layout ---------------------------------------------------------------------------------
def _is_temp_of(name: str, targets: Iterable[str] | Callable[[str], bool]) -> bool:
    """``name`` is a temp file a writer of this module made for one of ``targets``: ``TARGET.RANDOM.tmp``
    (:func:`atomic_write`) or ``.vocab.RANDOM.tmp`` (:meth:`RunDir.write_vocab`)."""
    if not name.endswith(TEMP_SUFFIX):
        return False
    base = name[: -len(TEMP_SUFFIX)].rpartition(".")[0]
    if base == VOCAB_STAGING:
        return True
    return base in targets if not callable(targets) else targets(base)


def _is_run_file(name: str) -> bool:
    return name in RUN_FILES or any(p.fullmatch(name) for p in _RUN_FILE_PATTERNS)


def run_entry_kind(path: Path, top: Path) -> str | None:
    """Why textvae wrote ``path`` (an entry of run folder ``top`` or below), or None when it did not:
    ``"file"`` (a run file), ``"temp"`` (a writer's temp file), ``"folder"`` (a folder of run files).

    Symbolic links are never the run's: a run writes none, and deleting through one could reach outside."""
    rel = path.relative_to(top).parts
    if path.is_symlink():
        return None
    is_dir, name = path.is_dir(), rel[-1]
    if len(rel) == 1:
        if name.endswith(TEMP_SUFFIX) and _is_temp_of(name, _is_run_file):
            return "temp"
        if name in (CHECKPOINTS, PROBE_DIR, GENERATION_DIR) or name.isdigit():
            return "folder" if is_dir else None
        return "file" if _is_run_file(name) and not is_dir else None
    first = rel[0]
    if first == CHECKPOINTS and len(rel) == 2 and not is_dir:
        if name.endswith(".pt"):
            return "file"
        return "temp" if _is_temp_of(name, lambda base: base.endswith(".pt")) else None
    if first in (PROBE_DIR, GENERATION_DIR) and len(rel) == 2 and not is_dir:
        if name.endswith(".json"):
            return "file"
        return "temp" if _is_temp_of(name, lambda base: base.endswith(".json")) else None
    if first.isdigit():  # TensorBoard's projector: STEP/test_posterior_mean/{tensors,metadata}.tsv
        if len(rel) == 2 and name == PROJECTOR_TAG:
            return "folder" if is_dir else None
        return "file" if len(rel) == 3 and rel[1] == PROJECTOR_TAG and not is_dir else None
    return None


def foreign_entries(top: Path) -> list[str]:
    """What ``top`` holds that no run writes (relative paths, folders with a trailing ``/``; a folder
    of the run's is looked into), sorted."""
    found = []

    def visit(folder: Path) -> None:
        for p in sorted(folder.iterdir()):
            kind = run_entry_kind(p, top)
            if kind is None:
                folder = p.is_dir() and not p.is_symlink()
                found.append(p.relative_to(top).as_posix() + ("/" if folder else ""))
            elif kind == "folder":
                visit(p)

    if top.is_dir():
        visit(top)
    return found


def describe_entries(names: list[str], limit: int = 4) -> str:
    """``a, b, c and 2 more`` for one-line messages."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def is_newer_format(version: Any) -> bool:
    """A config.json ``format`` written by a newer textvae than this one."""
    return isinstance(version, int) and not isinstance(version, bool) and version > RUN_FORMAT


# ---- the folder ---------------------------------------------------------------------------------
class RunDir:
    """One run folder. Reading needs nothing. A writer calls :meth:`claim` first, which keeps every
    other claimer out (``train`` does; the writers themselves do not check, so a bare ``Trainer`` in a
    test or benchmark can write a scratch folder)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # paths
    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def env(self) -> Path:
        return self.path / ENV

    @property
    def vocab(self) -> Path:
        return self.path / VOCAB

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def results(self) -> Path:
        return self.path / RESULTS

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK

    def checkpoint(self, name: str) -> Path:
        """``best``, ``last`` or another checkpoint of the run by name (``STAGE-best``) -> its file;
        a ``.pt`` path is taken as given."""
        if isinstance(name, (str, os.PathLike)):
            name = os.fspath(name)
            if name.endswith(".pt"):
                return Path(name)
            path = self.checkpoints / f"{name}.pt"
            if name in CHECKPOINT_NAMES or ("/" not in name and "\\" not in name and path.is_file()):
                return path
        names = sorted(p.stem for p in self.checkpoints.glob("*.pt")) if self.checkpoints.is_dir() else []
        raise RunFolderError("checkpoint must be 'best', 'last' or a .pt path"
                             + (f" (this run has: {', '.join(names)})" if names else "") + f", got {name!r}")

    def stage_checkpoint(self, stage: str) -> Path:
        """Where a multi-stage run keeps the best model of its earlier stage ``stage`` (``STAGE-best.pt``),
        written or not: :meth:`checkpoint` resolves such a name only once the file exists."""
        return self.checkpoints / f"{stage}-best.pt"

    def eval_record(self, split: str) -> Path:
        return self.path / f"eval_{split}.json"

    def latents_record(self, split: str) -> Path:
        return self.path / f"latents_{split}.json"

    def probe_record(self, data: str) -> Path:
        return self.path / "probe" / f"{data}.json"

    def generation_record(self, name: str) -> Path:
        return self.path / "generation" / f"{name}.json"

    # state
    def is_run(self) -> bool:
        """The folder holds a run (finished or not): its config.json is a textvae run config."""
        return self.run_config_problem() is None

    def run_config_problem(self) -> str | None:
        """Why the folder is not a textvae run, or None when it is one: its config.json must parse,
        be a run config (:meth:`RunConfig.from_saved`) and carry the run-folder ``format``. A
        config.json without ``format`` (written before the marker existed) counts when it holds every
        section a run's config has and another run file lies beside it."""
        if not self.config.is_file():
            return f"no {CONFIG}"
        try:
            saved = read_json(self.config)
        except RunFolderError:
            return f"its {CONFIG} is not JSON"
        if not isinstance(saved, dict):
            return f"its {CONFIG} is not a JSON object"
        if is_newer_format(saved.get("format")):
            return None  # a run of a later format: recognised here, refused by claim
        if "format" not in saved:
            beside = (ENV, VOCAB, METRICS, RESULTS, CHECKPOINTS)
            others = [n for n in beside if (self.path / n).exists()]
            if not all(k in saved for k in RUN_SECTIONS) or not others:
                return f"its {CONFIG} carries no run-folder 'format'"
        try:
            RunConfig.from_saved(saved, where=str(self.config))
        except ConfigError as e:
            reason = str(e).removeprefix(str(self.config) + ": ")
            return f"its {CONFIG} is not a textvae run config ({reason})"
        return None

    def newer_format(self) -> bool:
        """The folder holds a run written by a newer textvae (config.json's ``format`` > RUN_FORMAT)."""
        try:
            version = read_json(self.config).get("format", 1)
        except (RunFolderError, AttributeError):
            return False
        return is_newer_format(version)

    def foreign_entries(self) -> list[str]:
        """What the folder holds that a run does not write (:func:`foreign_entries`)."""
        return foreign_entries(self.path)

    def is_finished(self) -> bool:
        return self.results.is_file()

    def has_progress(self) -> bool:
        """The run has trained something: results, a checkpoint or a logged epoch. A run that stopped
        while being set up or during its first epoch has none, and a fresh run may replace it."""
        return (self.is_finished() or (self.checkpoints.is_dir() and any(self.checkpoints.glob("*.pt")))
                or bool(self.read_metrics(strict=False)))

    def describe(self) -> str:
        """'a finished run' / 'an unfinished run (N epochs)' for messages."""
        if self.is_finished():
            return "a finished run"
        return f"an unfinished run ({len(self.read_metrics(strict=False))} epochs logged)"

    # reading
    def require_run(self, strict: bool = False) -> None:
        """The folder has a config.json to read (``strict``: it holds a run, :meth:`is_run`, as a
        writer needs; readers fail later, naming the key, on a config.json that is not one)."""
        if not self.path.is_dir():
            raise RunFolderError(f"{self.path}: not a textvae run folder (no such folder)")
        if not self.config.is_file():
            raise RunFolderError(f"{self.path}: not a textvae run folder (no {CONFIG})")
        problem = self.run_config_problem() if strict else None
        if problem:
            raise RunFolderError(f"{self.path}: not a textvae run folder ({problem})")

    def read_config(self) -> dict[str, Any]:
        """config.json as a dict (``RunConfig.load(run.config)`` for the typed config)."""
        self.require_run()
        return read_json(self.config)

    def read_results(self) -> dict[str, Any]:
        if not self.is_finished():
            raise RunFolderError(f"{self.path}: no {RESULTS} (is the run finished?)")
        return check_results(read_json(self.results), self.results)

    def read_metrics(self, strict: bool = True) -> list[dict[str, Any]]:
        """The per-epoch records. A last line without its newline is a torn append (the writer was
        killed; resume repairs it) and is skipped; any other invalid line is an error naming it.
        ``strict=False`` returns [] instead of raising when the log is missing or damaged."""
        path = self.metrics
        if not path.is_file():
            if strict:
                raise RunFolderError(f"{path}: no such file (is {self.path} a textvae run folder?)")
            return []
        text = path.read_bytes().decode("utf-8", errors="replace")
        lines = text.split("\n")
        torn = lines.pop()  # '' when the file ends with a newline
        records = []
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                if strict:
                    raise RunFolderError(f"{path}:{lineno}: invalid JSON: {e.msg}") from None
                return records
            problem = metrics_record_problem(record)
            if problem:
                if strict:
                    raise RunFolderError(f"{path}:{lineno}: {problem}")
                return records
            records.append(record)
        if torn.strip():
            try:
                records.append(json.loads(torn))
            except json.JSONDecodeError:
                pass
        return records

    # ownership
    def claim(self, fresh: bool, overwrite: bool = False) -> None:
        """Become the folder's only writer.

        ``fresh``: start a new run; refused when the folder holds a run with progress (unless
        ``overwrite``: then the old run is deleted, after the lock is held) or is a non-empty folder that
        is not a run. A run without progress (it failed before its first checkpoint) is replaced, so that
        the same command can simply be run again.
        Not ``fresh``: continue the run; the folder must hold one. Orphan temp files are removed.
        Replacing a run removes only what a run writes; a folder that also holds anything else is
        refused, naming it. Nothing is created or changed before every check has passed.
        """
        self.check_claim(fresh, overwrite)
        self.path.mkdir(parents=True, exist_ok=True)
        self._acquire()
        try:
            self.check_claim(fresh, overwrite)  # again under the lock: another writer may have started a run
            if fresh and self.is_run():
                self._clear()
            self.remove_temp_files()
        except BaseException:
            self.release()
            raise

    def check_claim(self, fresh: bool, overwrite: bool = False) -> None:
        """The checks of :meth:`claim`, without taking the folder (to fail before expensive work)."""
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"{self.path}: exists and is not a folder")
        if not fresh:
            self.require_run(strict=True)
            self._refuse_newer_format()
            return
        if not self.path.is_dir():
            return
        entries = sorted(p.name + ("/" if p.is_dir() and not p.is_symlink() else "")
                         for p in self.path.iterdir() if p.name != LOCK)
        if not entries:
            return
        problem = self.run_config_problem()
        if problem:
            raise RunFolderError(f"{self.path}: folder is not empty and holds no textvae run ({problem}; it "
                                 f"holds {describe_entries(entries)}); choose an empty or new folder")
        self._refuse_newer_format()
        if self.has_progress() and not overwrite:
            raise RunFolderError(f"{self.path}: holds {self.describe()}; continue it with --resume, or pass "
                                 "--overwrite to delete it and start afresh")
        foreign = self.foreign_entries()
        if foreign:
            raise RunFolderError(f"{self.path}: holds {self.describe()} and also {describe_entries(foreign)}, "
                                 "which a run does not write; nothing was deleted: move them out of the folder, "
                                 "or choose another one")

    def _refuse_newer_format(self) -> None:
        if self.newer_format():
            raise RunFolderError(f"{self.config}: written by a newer textvae (run format "
                                 f"{read_json(self.config)['format']}; this textvae writes up to {RUN_FORMAT}): "
                                 "upgrade textvae to continue or replace it")

    def release(self) -> None:
        """Give the folder up (the lock file is removed while still held, so no writer sees a gap)."""
        if self._lock_fd is None:
            return
        try:
            self.lock_file.unlink(missing_ok=True)
        finally:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def owned(self) -> bool:
        return self._lock_fd is not None

    def __enter__(self) -> "RunDir":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def owner(self) -> str:
        """Who holds (or last held) the lock, for messages."""
        try:
            info = json.loads(self.lock_file.read_text())
            return f"pid {info['pid']} on {info['host']} since {info['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def _acquire(self) -> None:
        while True:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                elif self._held_by_live_process():  # pragma: no cover
                    raise BlockingIOError
            except BlockingIOError:
                os.close(fd)
                raise RunFolderError(f"{self.path}: another process is writing this run folder "
                                     f"({self.owner()}); wait for it or stop it") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.lock_file).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the previous owner removed the file after we opened it: lock the new one
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._lock_fd = fd

    def _held_by_live_process(self) -> bool:  # pragma: no cover - only without fcntl
        try:
            info = json.loads(self.lock_file.read_text())
            if info.get("host") != socket.gethostname():
                return True
            os.kill(int(info["pid"]), 0)
        except ProcessLookupError:
            return False
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return True

    def _clear(self) -> None:
        """Delete the old run's entries except the lock we hold (``overwrite``, or a run without
        progress). Only run entries: :meth:`check_claim` has refused a folder holding anything else,
        and an entry that appeared since is left alone all the same."""
        for p in sorted(self.path.iterdir()):
            if p.name != LOCK:
                self._remove_run_entry(p)

    def _remove_run_entry(self, path: Path) -> None:
        """Delete ``path`` if a run wrote it: a temp folder whole (a writer's own), a run folder
        entry by entry (what a user put inside stays, and so does the folder)."""
        kind = run_entry_kind(path, self.path)
        if kind is None:
            return
        if kind == "folder":
            for p in sorted(path.iterdir()):
                self._remove_run_entry(p)
            if not any(path.iterdir()):
                path.rmdir()
        elif path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()

    def remove_temp_files(self) -> list[Path]:
        """Delete the temp files a killed writer left in the folder and its checkpoints/ (only names
        this module's writers make: ``RUNFILE.RANDOM.tmp``, ``.vocab.RANDOM.tmp``)."""
        removed = []
        for folder in (self.path, self.checkpoints):
            if folder.is_dir() and not folder.is_symlink():
                for p in sorted(folder.glob(f"*{TEMP_SUFFIX}")):
                    if run_entry_kind(p, self.path) == "temp":
                        self._remove_run_entry(p)
                        removed.append(p)
        return removed

    # writing (by the owner)
    def write_config(self, config: dict[str, Any]) -> None:
        """config.json: the config with the run-folder ``format`` that marks the folder as a run."""
        rest = {k: v for k, v in config.items() if k != "format"}
        write_json(self.config, {"format": RUN_FORMAT, **rest})

    def write_vocab(self, vocab: Any) -> None:
        """``vocab.save`` into a temp folder, then each file renamed into place, ``vocab.txt`` last
        (it marks the vocabulary complete: a sentencepiece ``tokenizer.model`` is in place first)."""
        staging = Path(tempfile.mkdtemp(prefix=".vocab.", suffix=TEMP_SUFFIX, dir=self.path))
        try:
            vocab.save(staging / VOCAB)
            for p in sorted(staging.iterdir(), key=lambda p: p.name == VOCAB):
                os.replace(p, self.path / p.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def write_env(self, env: dict[str, Any]) -> None:
        write_json(self.env, env)

    def write_results(self, results: dict[str, Any]) -> None:
        write_json(self.results, {"format": RESULTS_FORMAT, **results})

    def write_latents(self, split: str, means: Any, labels: Any, index: Any = None) -> None:
        """The posterior means [N, D] of ``split``'s evaluated sentences (in the space the decoder reads)
        with their labels [N] and their positions in the split file [N], for plots of the latent space
        (``textvae report --table clutter --figure``) and studies of what the means hold."""
        write_latents(self.latents_record(split), split, means, labels, index)

    def read_latents(self, split: str) -> dict[str, Any]:
        """``{"means": [[...], ...], "labels": [...], "index": [...]}`` as written by :meth:`write_latents`
        (``index`` absent in records written before it was kept)."""
        path = self.latents_record(split)
        if not path.is_file():
            raise RunFolderError(f"{self.path}: no {path.name} (evaluate the run with eval.latent_clutter = true)")
        latents = read_json(path)
        if not isinstance(latents, dict):
            raise RunFolderError(f"{path}: expected a JSON object, got {type(latents).__name__}")
        check_format(latents.get("format", 1), LATENTS_FORMAT, path, "latents", RunFolderError)
        means, labels = latents.get("means"), latents.get("labels")
        if not isinstance(means, list) or not isinstance(labels, list) or len(means) != len(labels):
            raise RunFolderError(f"{path}: 'means' and 'labels' must be lists of the same length")
        index = latents.get("index")
        if index is not None and (not isinstance(index, list) or len(index) != len(means)):
            raise RunFolderError(f"{path}: 'index' must be a list as long as 'means'")
        return latents

    def remove_results(self) -> None:
        """The run continues past its end (``--resume --set train.epochs=...``): it is no longer finished."""
        self.results.unlink(missing_ok=True)

    def save_checkpoint(self, name: str, state: dict[str, Any]) -> None:
        """Atomically write ``checkpoints/NAME.pt`` (``state`` should carry the metrics records)."""
        import torch

        atomic_write(self.checkpoint(name), lambda f: torch.save(state, f))

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one epoch's record as one line (one write call, fsynced)."""
        line = (dumps(record) + "\n").encode("utf-8")
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.metrics, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)

    def rewrite_metrics(self, records: Iterable[dict[str, Any]]) -> None:
        """Replace the log atomically (a fresh run: empty; a resume: the checkpoint's records)."""
        atomic_write(self.metrics, "".join(dumps(r) + "\n" for r in records))


def metrics_record_problem(record: Any) -> str | None:
    """What makes a metrics.jsonl record unreadable, or None."""
    if not isinstance(record, dict):
        return f"expected a JSON object per line, got {type(record).__name__}"
    epoch = record.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int):
        return f"'epoch' must be an integer, got {epoch!r}"
    for key in ("train", "valid"):
        if not isinstance(record.get(key, {}), dict):
            return f"'{key}' must be a JSON object of metrics, got {record[key]!r}"
    return None


def write_latents(path: Path, split: str, means: Any, labels: Any, index: Any = None) -> None:
    """A latents record (:meth:`RunDir.write_latents`) at ``path``."""
    record = {"format": LATENTS_FORMAT, "split": split, "means": [[float(x) for x in row] for row in means],
              "labels": [int(x) for x in labels]}
    if index is not None:
        record["index"] = [int(x) for x in index]
    write_json(path, record)


def check_results(results: Any, path: Path) -> dict[str, Any]:
    """A results.json this textvae can read: a table, of a known format, its numbers numbers."""
    if not isinstance(results, dict):
        raise RunFolderError(f"{path}: expected a JSON object of results, got {type(results).__name__}")
    check_format(results.get("format", 1), RESULTS_FORMAT, path, "results", RunFolderError)
    for key in RESULT_NUMBERS:
        value = results.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise RunFolderError(f"{path}: key '{key}' must be a number, got {value!r}")
    return results


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


RUNS_ROOT = Path("runs")


def default_run_dir(*parts: str) -> Path:
    """``runs/PART/...``: the default folder of a run named by recipe or config name. A part that is
    absolute or has a ``..``/empty segment would put the run elsewhere and is refused."""
    for part in parts:
        segments = str(part).replace("\\", "/").split("/")
        if not part or os.path.isabs(part) or any(seg in ("", ".", "..") for seg in segments):
            raise RunFolderError(f"run name {part!r} would leave {RUNS_ROOT}/ (no '..', '.', empty or absolute "
                                 "parts); pass --out for another folder")
    return RUNS_ROOT.joinpath(*parts)


def find_runs(paths: Iterable[str | Path], finished: bool = True) -> list[RunDir]:
    """Run folders given directly, or found below the given folders (sorted, each once).

    ``finished``: only runs with results.json; else every folder with a config.json.
    """
    marker = RESULTS if finished else CONFIG
    found: dict[Path, RunDir] = {}
    for path in map(Path, paths):
        if (path / marker).is_file():
            found.setdefault(path, RunDir(path))
            continue
        for p in sorted(path.rglob(marker)):
            found.setdefault(p.parent, RunDir(p.parent))
    return list(found.values())

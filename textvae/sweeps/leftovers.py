"""Local Ray instances a sweep owns: recorded while they live, ended by the next sweep if their owner was killed.

A ``kill -9`` of a sweep gives it no chance to stop the Ray processes it started (the dashboard and
runtime-env agents outlive it). Each owned instance therefore lives in its own temp folder and has a
state file in a per-user folder (``$XDG_STATE_HOME/textvae/ray`` or ``~/.local/state/textvae/ray``)
naming the owning process and that folder. A sweep starting later ends the processes of every
recorded instance whose owner is gone: processes of this user whose command line or open files lie in
that temp folder. Ray processes of other users, of ``ray start`` and of live sweeps are never touched.

Process discovery reads ``/proc``; where there is none (macOS) leftovers are only reported by Ray.
A state file is only trusted with a folder the sweep made (:data:`TEMP_PREFIX`); one naming any other
folder (damaged, or written by hand) is removed, and the folder and its processes are left alone.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import time
from pathlib import Path

from ..rundir import write_json

log = logging.getLogger(__name__)

PROC = Path("/proc")
TERM_GRACE_SECONDS = 5.0  # Ray's agents ignore SIGTERM; they get SIGKILL after this
TEMP_PREFIX = "textvae-ray-"
"""The name of every Ray temp folder a sweep makes starts so (:mod:`textvae.sweeps.cluster`)."""


def is_sweep_temp_dir(path: Path) -> bool:
    """A folder a sweep made for its Ray instance: only such a folder is ever deleted."""
    return path.name.startswith(TEMP_PREFIX) and path.is_absolute() and not path.is_symlink()


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "textvae" / "ray"


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot): a pid plus this names one process,
    even after the pid is reused. ``None`` when there is no such live process."""
    if not PROC.is_dir():  # no /proc: liveness only
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return 0
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
    if fields[0] in ("Z", "X"):  # a zombie has ended; only its exit status is left
        return None
    return int(fields[19])


def record(temp_dir: Path) -> Path:
    """Write the state file of an instance this process is about to start in ``temp_dir``."""
    pid = os.getpid()
    path = state_dir() / f"{pid}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"pid": pid, "start_time": start_time(pid), "temp_dir": str(temp_dir)})
    return path


def processes_in(temp_dir: Path) -> list[int]:
    """This user's live processes (other than this one) whose command line or open files lie in ``temp_dir``."""
    if not PROC.is_dir():
        return []
    prefix = str(temp_dir).rstrip(os.sep) + os.sep
    uid, me, found = os.getuid(), os.getpid(), []
    for entry in os.scandir(PROC):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            if prefix.encode() in (PROC / entry.name / "cmdline").read_bytes() or any(
                    os.readlink(fd.path).startswith(prefix) for fd in os.scandir(PROC / entry.name / "fd")):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def end_processes_in(temp_dir: Path, grace: float = TERM_GRACE_SECONDS) -> int:
    """SIGTERM the processes found in ``temp_dir``, SIGKILL those still there after ``grace`` seconds;
    returns how many there were."""
    pids = processes_in(temp_dir)
    started = {pid: start_time(pid) for pid in pids}
    if grace > 0:
        _signal_all(started, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(start_time(p) == t for p, t in started.items()):
        time.sleep(0.1)
    _signal_all(started, signal.SIGKILL)
    return len(pids)


def _signal_all(started: dict[int, int | None], sig: int) -> None:
    for pid, started_at in started.items():
        if started_at is not None and start_time(pid) == started_at:  # still the process we found
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def remove(state_file: Path, temp_dir: Path) -> None:
    """End what is left of one instance: its processes, its temp folder, its state file."""
    if is_sweep_temp_dir(temp_dir):
        end_processes_in(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
    state_file.unlink(missing_ok=True)


def clean_up_after_dead_sweeps() -> int:
    """End the instances recorded by sweeps that no longer run; returns how many processes were ended."""
    folder = state_dir()
    if not folder.is_dir():
        return 0
    ended = 0
    for path in sorted(folder.glob("*.json")):
        try:
            state = json.loads(path.read_text())
            pid, started_at, temp_dir = int(state["pid"]), state["start_time"], Path(state["temp_dir"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours to understand: leave it
        if start_time(pid) == started_at:
            continue  # its sweep still runs
        if not is_sweep_temp_dir(temp_dir):
            log.warning(f"{path}: names {temp_dir}, not a sweep's Ray folder; left alone, state file removed")
            path.unlink(missing_ok=True)
            continue
        # Their owner was killed: nothing is waiting for them to finish cleanly.
        count = end_processes_in(temp_dir, grace=0)
        shutil.rmtree(temp_dir, ignore_errors=True)
        path.unlink(missing_ok=True)
        if count:
            log.warning(f"ended {count} Ray processes left by a sweep that was killed (pid {pid}, {temp_dir})")
        ended += count
    return ended

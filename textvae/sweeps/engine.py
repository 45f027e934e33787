"""Run a sweep's points as Ray tasks, keeping the manifest and the status line.

Each point is one task (``num_cpus``/``num_gpus`` per run). Ray retries a task whose worker died
(``kill -9``, out of memory, a lost node) up to :data:`MAX_RETRIES` times; the retry resumes the run
from its last checkpoint. Errors raised by the point itself are not retried: they are returned by
:func:`~textvae.sweeps.point.run_point` as one line. Points already finished are not submitted.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import ConfigError, TextVAEError
from ..rundir import RunDir
from .cluster import ray_for_sweep
from .leftovers import clean_up_after_dead_sweeps
from .manifest import Entry, Manifest
from .point import config_differences, one_line, point_action, run_point
from .progress import ProgressLine, estimate_eta
from .spec import Point, SweepSpec

MAX_RETRIES = 3
RAY_LOG = "ray.log"  # what Ray prints while it starts, connects and stops


def already_finished(point: Point, run_dir: Path, spec: SweepSpec) -> bool:
    """Finished with the same config (and its probe recorded when the sweep asks for one)."""
    from ..probing.record import has_record, record_path

    run = RunDir(run_dir)
    if not run.is_finished() or config_differences(run.read_config(), point.config):
        return False
    probe = spec.probe
    if probe is None or point.config["model"]["kind"] == "lstm-lm":  # a language model is not probed
        return True
    return has_record(record_path(run_dir, probe.data), tuple(probe.subsets), tuple(probe.probes), probe.seed)


def check_point_folders(points: list[Point], sweep_dir: Path) -> None:
    """Every point's folder is one its run may write (:func:`point_action`), before anything starts:
    a point folder holding another config's run or a user's files stops the sweep in one line."""
    for point in points:
        try:
            point_action(point.config, point.run_dir(sweep_dir))
        except TextVAEError as e:
            raise ConfigError(f"sweep point {point.id}: {e}") from None


def run_sweep(spec: SweepSpec, points: list[Point], sweep_dir: Path, data_dir: Path | None = None,
              address: str | None = None, progress: bool = True, command: str = "",
              cpus: int | None = None) -> Manifest:
    """Run every point not yet finished; returns the manifest (also in ``SWEEP/manifest.json``).
    ``cpus`` caps the CPUs of the local Ray instance the sweep starts (:func:`ray_for_sweep`)."""
    if cpus is not None and cpus < spec.cpus_per_run:
        raise ConfigError(f"--cpus {cpus} is less than the {spec.cpus_per_run:g} CPUs of one run (--cpus-per-run): "
                          "no run could start")
    if cpus is not None and address is not None:
        raise ConfigError("--cpus sets the CPUs of the sweep's own local Ray instance; a cluster joined with "
                          "--address has its own")
    start = time.perf_counter()
    sweep_dir = Path(sweep_dir).resolve()
    check_point_folders(points, sweep_dir)
    clean_up_after_dead_sweeps()
    entries = [Entry(p.id, str(p.run_dir(sweep_dir))) for p in points]
    manifest = Manifest(sweep_dir, spec.to_dict(), entries, command)
    todo = []
    for point, entry in zip(points, entries):
        if already_finished(point, Path(entry.run_dir), spec):
            entry.status, entry.skipped = "finished", True
        else:
            todo.append(point)
    manifest.save()
    if todo:
        try:
            _run_on_ray(spec, todo, manifest, sweep_dir, data_dir, address, progress, cpus)
        finally:
            manifest.wall_seconds = round(time.perf_counter() - start, 1)
            manifest.save()
    else:
        manifest.wall_seconds = round(time.perf_counter() - start, 1)
        manifest.save()
    return manifest


def _run_on_ray(spec: SweepSpec, todo: list[Point], manifest: Manifest, sweep_dir: Path, data_dir: Path | None,
                address: str | None, progress: bool, cpus: int | None) -> None:
    with ray_for_sweep(address, sweep_dir / RAY_LOG, cpus) as ray:
        _schedule(ray, spec, todo, manifest, sweep_dir, data_dir, progress)


def _schedule(ray: Any, spec: SweepSpec, todo: list[Point], manifest: Manifest, sweep_dir: Path,
              data_dir: Path | None, progress: bool) -> None:
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        # After ray.init, which installs a SIGTERM handler that exits: a scheduler's or `kill`'s stop
        # should end the sweep like Ctrl-C, with the manifest saying which points were interrupted.
        previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    line = ProgressLine(enabled=progress)
    try:
        resources = ray.cluster_resources()
        gpus = spec.gpus_per_run if spec.gpus_per_run is not None else (1.0 if resources.get("GPU", 0) else 0.0)
        slots = int(resources.get("CPU", 1) // spec.cpus_per_run)
        if gpus:
            slots = min(slots, int(resources.get("GPU", 0) // gpus))
        manifest.concurrent_runs = slots
        task = ray.remote(run_point).options(num_cpus=spec.cpus_per_run, num_gpus=gpus, max_retries=MAX_RETRIES,
                                             retry_exceptions=False)
        probe = None if spec.probe is None else asdict(spec.probe)
        data = None if data_dir is None else str(Path(data_dir).resolve())
        refs = {}
        epochs = {p.id: p.config["train"]["epochs"] for p in todo}
        for point in todo:
            entry = manifest.entries[point.id]
            refs[task.remote(asdict(point), entry.run_dir, data, max(1, int(spec.cpus_per_run)), probe,
                             str(sweep_dir / "errors" / f"{point.id.replace('/', '__')}.txt"))] = entry
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=2.0, fetch_local=True)
            for ref in ready:
                entry = refs.pop(ref)
                try:
                    outcome: dict[str, Any] = ray.get(ref)
                except ray.exceptions.RayError as e:  # the worker died on every attempt
                    outcome = {"status": "failed", "error": f"worker lost {MAX_RETRIES + 1} times: {one_line(e)}"}
                entry.status = outcome["status"] if outcome["status"] == "failed" else "finished"
                entry.skipped = outcome["status"] == "skipped"
                entry.error = outcome.get("error")
                entry.seconds = outcome.get("seconds")
                entry.resumed_from_epoch = outcome.get("resumed_from_epoch")
            _refresh(manifest, list(refs.values()), epochs, slots, line)
            manifest.save()
    except KeyboardInterrupt:
        manifest.mark_stopped()
        raise
    finally:
        line.close()
        if main_thread:
            signal.signal(signal.SIGTERM, previous_handler)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _refresh(manifest: Manifest, waiting: list[Entry], epochs: dict[str, int], slots: int,
             line: ProgressLine) -> None:
    """Mark points whose run folder is locked as running; update the status line and ETA."""
    fractions, epoch_seconds, at_epoch = [], [], {}
    for entry in waiting:
        run = RunDir(entry.run_dir)
        entry.status = "running" if run.lock_file.exists() else "pending"
        if entry.status == "running":
            records = run.read_metrics(strict=False)
            entry.epoch = len(records)
            at_epoch[entry.id] = f"{entry.epoch}/{epochs[entry.id]}"
            fractions.append(len(records) / max(epochs[entry.id], 1))
            epoch_seconds += [r["seconds"] for r in records if isinstance(r.get("seconds"), (int, float))]
    done = [e for e in manifest.entries.values() if e.status == "finished"]
    run_seconds = [e.seconds for e in done if not e.skipped and e.seconds]
    counts = manifest.counts()
    longest = max((epochs[e.id] for e in waiting), default=0)
    eta = estimate_eta(run_seconds, fractions, counts["pending"], slots, epoch_seconds, longest)
    line.update(counts["finished"], counts["running"], counts["failed"], counts["pending"], eta, at_epoch)

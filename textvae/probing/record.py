"""The probe record of a run folder (``RUN/probe/DATA.json``): what ``textvae probe`` and sweeps write
and ``textvae report --table table4`` reads."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .protocol import PROBES, SUBSETS


def record_path(run_dir: str | Path, data: str) -> Path:
    from ..rundir import RunDir

    return RunDir(run_dir).probe_record(Path(data).name)


def check_probe_record(record: Any, path: Path) -> dict[str, Any]:
    """A probe record a report can read: ``{"probes": {probe: {"accuracy": {size: number}}}}``."""
    from ..errors import RunFolderError

    probes = record.get("probes") if isinstance(record, dict) else None
    if not isinstance(probes, dict) or not all(isinstance(p, dict) and isinstance(p.get("accuracy"), dict)
                                               for p in probes.values()):
        raise RunFolderError(f"{path}: not a probe record (expected {{\"probes\": {{PROBE: {{\"accuracy\": ...}}}}}})")
    for name, probe in probes.items():
        for size, value in probe["accuracy"].items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise RunFolderError(f"{path}: probes.{name}.accuracy.{size} must be a number, got {value!r}")
    return record


def has_record(path: Path, subsets: tuple[int, ...], probes: tuple[str, ...], seed: int) -> bool:
    """A saved record covers these probes and subset sizes with this seed."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    done = record.get("probes", {})
    return record.get("seed") == seed and all(
        {str(n) for n in subsets} <= set(done.get(p, {}).get("accuracy", {})) for p in probes)


def probe_record(run_dir: str | Path, data: str, data_dir: str | Path | None = None,
                 subsets: tuple[int, ...] = SUBSETS, probes: tuple[str, ...] = PROBES, seed: int = 0,
                 checkpoint: str = "best", device: str = "cpu") -> dict[str, Any]:
    """Probe the run's frozen encoder: ``{"name", "checkpoint", "data", "seed", "probes": {probe: {"accuracy": ..}}}``.

    The record names no machine path, so it stays true when the run folder moves: ``checkpoint`` is
    relative to the run folder, ``data`` the probe corpus's folder name."""
    from ..runs import load_run
    from .features import input_max_length
    from .protocol import load_probe_data, probe_data_dir, run_probe

    root = probe_data_dir(data, data_dir)
    run = load_run(run_dir, checkpoint, device)
    result = run_probe(run.model, run.vocab, load_probe_data(root, subsets), subsets, probes, seed,
                       max_length=input_max_length(run.config))
    checkpoint_file = Path(os.path.relpath(run.checkpoint, run_dir)).as_posix()
    return {"name": run.config.name, "checkpoint": checkpoint_file, "data": Path(root).name,
            "seed": seed, "features": "posterior mean (frozen encoder)", "metric": "test accuracy (%)",
            "probes": result}


def write_probe_record(run_dir: str | Path, data: str, data_dir: str | Path | None = None,
                       subsets: tuple[int, ...] = SUBSETS, probes: tuple[str, ...] = PROBES, seed: int = 0,
                       skip_existing: bool = False, out: Path | None = None) -> dict[str, Any]:
    """Probe and save the record (``skip_existing``: keep a record already there with these settings)."""
    path = Path(out) if out is not None else record_path(run_dir, data)
    if skip_existing and has_record(path, subsets, probes, seed):
        return json.loads(path.read_text())
    from ..rundir import write_json

    record = probe_record(run_dir, data, data_dir, subsets, probes, seed)
    write_json(path, record)
    return record

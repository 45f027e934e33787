"""Run one sweep point in its run folder: skip it when finished, resume it when interrupted.

This is what a Ray worker executes; it is plain Python so that it can be tested without Ray. A
failure of the point itself (bad data, a diverged model, a bug) is returned as one line and never
raised: the other points go on. A killed worker raises nothing here; Ray retries the task, and the
retry resumes from ``checkpoints/last.pt``.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

from ..errors import ConfigError, TextVAEError


def config_differences(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """``key (saved -> wanted)`` for every result-relevant key in which two configs differ."""
    from ..config import EXECUTION_KEYS
    from ..training.checkpoint import normalized
    from ..training.resume import flatten

    a, b = flatten(normalized(saved)), flatten(normalized(wanted))
    return [f"{k} ({a.get(k)!r} -> {b.get(k)!r})" for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and k not in EXECUTION_KEYS]


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    message = text[0] if text else ""
    return message if isinstance(error, TextVAEError) else f"{type(error).__name__}: {message}"


def run_point(point: dict[str, Any], run_dir: str, data_dir: str | None = None, threads: int = 1,
              probe: dict[str, Any] | None = None, error_file: str | None = None) -> dict[str, Any]:
    """Train (or resume, or skip) one point; then its probe when asked and not yet recorded.

    Returns ``{"status": "finished" | "skipped" | "failed", "error": str | None, "seconds": float,
    "resumed_from_epoch": int | None}``.
    """
    start = time.perf_counter()
    outcome: dict[str, Any] = {"status": "failed", "error": None, "resumed_from_epoch": None}
    try:
        import torch

        torch.set_num_threads(max(1, int(threads)))
        outcome.update(_train_point(point, Path(run_dir), data_dir))
        # A language model has no encoder to probe.
        if probe is not None and point["config"]["model"]["kind"] != "lstm-lm":
            _probe_point(Path(run_dir), probe, data_dir)
    except Exception as e:  # noqa: BLE001 - a point's failure must not stop the sweep
        outcome.update(status="failed", error=one_line(e))
        if error_file is not None and not isinstance(e, TextVAEError):
            Path(error_file).parent.mkdir(parents=True, exist_ok=True)
            Path(error_file).write_text(traceback.format_exc())
    outcome["seconds"] = round(time.perf_counter() - start, 2)
    return outcome


def point_action(config: dict[str, Any], run_dir: Path) -> str:
    """What running a point into ``run_dir`` does: ``train`` (a new run), ``skip`` (finished), ``resume``
    (interrupted after a checkpoint) or ``replace`` (killed before its first checkpoint: nothing to keep).
    A folder the point may not write (another config's run, a folder that is not a run, a run beside a
    user's files) raises, naming it; the sweep asks this of every point before any starts."""
    from ..rundir import RunDir

    run = RunDir(run_dir)
    if not run.is_run():
        run.check_claim(fresh=True)
        return "train"
    differences = config_differences(run.read_config(), config)
    if differences:
        raise ConfigError(f"{run_dir}: holds a run of another config: {', '.join(differences)}; "
                          "give the sweep another --out, or delete the folder")
    if run.is_finished():
        return "skip"
    if run.checkpoint("last").is_file():
        return "resume"
    run.check_claim(fresh=True, overwrite=True)
    return "replace"


def _train_point(point: dict[str, Any], run_dir: Path, data_dir: str | None) -> dict[str, Any]:
    from ..config import RunConfig
    from ..rundir import RunDir
    from ..training import train

    config = RunConfig.from_dict(point["config"], where=point["id"])
    action = point_action(config.to_dict(), run_dir)
    if action == "skip":
        return {"status": "skipped"}
    if action == "resume":
        epochs = len(RunDir(run_dir).read_metrics(strict=False))
        train(config, run_dir, data_dir=data_dir, resume=True)
        return {"status": "finished", "resumed_from_epoch": epochs}
    train(config, run_dir, data_dir=data_dir, overwrite=action == "replace")
    return {"status": "finished"}


def _probe_point(run_dir: Path, probe: dict[str, Any], data_dir: str | None) -> None:
    from ..probing import write_probe_record

    write_probe_record(run_dir, probe["data"], data_dir, tuple(probe["subsets"]), tuple(probe["probes"]),
                       probe["seed"], skip_existing=True)

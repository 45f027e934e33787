"""Sweep status: the epoch of each running point, on the status line and in the manifest; after a stop,
points that never began are "pending", those whose run had begun "interrupted"."""

from __future__ import annotations

import io
import sys
import types
from pathlib import Path

from textvae.config import RunConfig
from textvae.rundir import RunDir
from textvae.sweeps import engine
from textvae.sweeps.manifest import Entry, Manifest
from textvae.sweeps.progress import ProgressLine
from textvae.sweeps.spec import Point, SweepSpec


def begun_run(path: Path, epochs: int, keep_lock: bool) -> RunDir:
    """A run folder as a worker leaves it after ``epochs`` epochs: config, metrics, lock while it runs."""
    run = RunDir(path)
    run.claim(fresh=True)
    run.write_config(RunConfig().to_dict())
    for epoch in range(1, epochs + 1):
        run.append_metrics({"epoch": epoch, "step": epoch * 10, "lr": 1.0, "seconds": 5.0, "valid": {}})
    if not keep_lock:
        run.release()
    return run


def test_status_line_names_each_running_points_epoch():
    stream = io.StringIO()
    line = ProgressLine(stream=stream)
    line.update(0, 2, 0, 1, None, {"demo/vae/seed1": "1/6", "demo/bn-vae/seed1": "0/6"})
    line.update(0, 2, 0, 1, None, {"demo/vae/seed1": "1/6", "demo/bn-vae/seed1": "0/6"})  # unchanged
    line.update(0, 2, 0, 1, None, {"demo/vae/seed1": "2/6", "demo/bn-vae/seed1": "0/6"})  # an epoch ended
    assert stream.getvalue().splitlines() == [
        "sweep: 0 done, 2 running, 0 failed, 1 left, ETA ? | demo/vae/seed1 epoch 1/6, demo/bn-vae/seed1 epoch 0/6",
        "sweep: 0 done, 2 running, 0 failed, 1 left, ETA ? | demo/vae/seed1 epoch 2/6, demo/bn-vae/seed1 epoch 0/6"]
    many = io.StringIO()
    ProgressLine(stream=many).update(0, 6, 0, 0, None, {f"p{i}": "1/6" for i in range(6)})
    assert many.getvalue().rstrip().endswith("p3 epoch 1/6, +2 more")


def test_refresh_records_the_epoch_of_running_points(tmp_path):
    begun_run(tmp_path / "a", epochs=2, keep_lock=True)
    entries = [Entry("a", str(tmp_path / "a")), Entry("b", str(tmp_path / "b"))]
    manifest = Manifest(tmp_path, {}, entries)
    stream = io.StringIO()
    engine._refresh(manifest, entries, {"a": 6, "b": 6}, slots=1, line=ProgressLine(stream=stream))
    assert (entries[0].status, entries[0].epoch) == ("running", 2)
    assert (entries[1].status, entries[1].epoch) == ("pending", None)
    assert "| a epoch 2/6" in stream.getvalue()
    manifest.save()
    points = {p["id"]: p for p in Manifest.read(tmp_path)["points"]}
    assert points["a"]["epoch"] == 2 and points["a"]["status"] == "running"


def test_a_stopped_sweep_marks_only_begun_points_interrupted(tmp_path, monkeypatch):
    """SIGTERM (like Ctrl-C) ends the wait for Ray with KeyboardInterrupt; Ray itself is faked here."""
    begun_run(tmp_path / "runs" / "begun", epochs=1, keep_lock=False)

    class Task:
        def options(self, **_):
            return self

        def remote(self, *args):
            return object()

    def wait(*_, **__):
        raise KeyboardInterrupt  # what the sweep's SIGTERM handler raises

    fake = types.SimpleNamespace(is_initialized=lambda: True, cluster_resources=lambda: {"CPU": 2.0},
                                 remote=lambda fn: Task(), wait=wait,
                                 exceptions=types.SimpleNamespace(RayError=RuntimeError))
    monkeypatch.setitem(sys.modules, "ray", fake)
    config = RunConfig().to_dict()
    points = [Point(name, "demo", "vae", 1, [], config) for name in ("begun", "never", "never2")]
    monkeypatch.setattr(engine, "already_finished", lambda *a: False)
    spec = SweepSpec(datasets=["demo"], strategies=["vae"])
    try:
        engine.run_sweep(spec, points, tmp_path, progress=False)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the stop was swallowed")
    status = {p["id"]: (p["status"], p["epoch"]) for p in Manifest.read(tmp_path)["points"]}
    assert status == {"begun": ("interrupted", 1), "never": ("pending", None), "never2": ("pending", None)}
    assert Manifest.read(tmp_path)["counts"]["pending"] == 2

"""Training curves: validation KL, MI, AU and -ELBO against epoch, from runs' metrics.jsonl."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..errors import ConfigError, RunFolderError  # noqa: E402
from ..rundir import RunDir  # noqa: E402

PANELS = (("kl", "KL (nats)"), ("mi", "MI (nats)"), ("au", "active units"), ("elbo", "-ELBO (nats)"))


def read_metrics(run_dir: Path) -> list[dict]:
    """The per-epoch records of a run (:meth:`textvae.rundir.RunDir.read_metrics`), at least one."""
    run = RunDir(run_dir)
    records = run.read_metrics()
    if not records:
        raise RunFolderError(f"{run.metrics}: no epochs logged yet")
    return records


def run_labels(run_dirs: list[Path]) -> list[str]:
    """The shortest trailing path parts that tell the runs apart (``bn-vae/seed101``)."""
    parts = [Path(r).resolve().parts for r in run_dirs]
    for depth in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels) and (depth > 1 or len(labels) == 1):
            return labels
    return [str(r) for r in run_dirs]


def plot_formats() -> list[str]:
    """File suffixes matplotlib can write (png, pdf, svg, eps, jpg, ...)."""
    fig = plt.figure()
    try:
        return sorted(fig.canvas.get_supported_filetypes())
    finally:
        plt.close(fig)


def check_plot_file(out: Path) -> None:
    suffix = Path(out).suffix.lstrip(".").lower()
    if suffix not in plot_formats():
        raise ConfigError(f"--out {out}: the file suffix names the plot format; use one of "
                          f"{', '.join(plot_formats())}")


def plot_training_curves(run_dirs: list[Path], out: Path) -> Path:
    """One panel per validation metric (KL, MI, AU, -ELBO), one line per run; writes ``out`` in the
    format its suffix names (``.png``, ``.pdf``, ``.svg``, ...: :func:`plot_formats`).

    Runs logged without the collapse diagnostics (``train.diagnostics = false``) have no MI/AU
    lines; the MI estimator of each run is named in its legend entry.
    """
    check_plot_file(out)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.4))
    drawn = set()
    for run_dir, name in zip(run_dirs, run_labels(run_dirs)):
        records = read_metrics(run_dir)
        estimator = next((r["valid"]["mi_estimator"] for r in records if "mi_estimator" in r.get("valid", {})), None)
        label = name if estimator is None else f"{name} (MI {estimator})"
        for ax, (key, _) in zip(axes, PANELS):
            points = [(r["epoch"], math.nan if r["valid"][key] is None else r["valid"][key])
                      for r in records if key in r.get("valid", {})]  # null: a non-finite value
            if points:
                epochs, values = zip(*points)
                ax.plot(epochs, values, marker="o", markersize=3, label=label)
                drawn.add(key)
    for ax, (key, title) in zip(axes, PANELS):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if key not in drawn:
            ax.text(0.5, 0.5, "not logged\n(train.diagnostics = false)", ha="center", va="center",
                    transform=ax.transAxes, color="gray")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize="small", frameon=False)
    fig.tight_layout(rect=(0, 0.06 + 0.05 * ((len(labels) - 1) // 3), 1, 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out

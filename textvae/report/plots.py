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


def check_plot_file(out: Path, option: str = "--out") -> None:
    suffix = Path(out).suffix.lstrip(".").lower()
    if suffix not in plot_formats():
        raise ConfigError(f"{option} {out}: the file suffix names the plot format; use one of "
                          f"{', '.join(plot_formats())}")


def plot_training_curves(run_dirs: list[Path], out: Path) -> Path:
    """One panel per validation metric (KL, MI, AU, -ELBO), one line per run; writes ``out`` in the
    format its suffix names (``.png``, ``.pdf``, ``.svg``, ...: :func:`plot_formats`).

    Runs logged without the collapse diagnostics (``train.diagnostics = false``) have no MI/AU
    lines; the MI estimator of each run is named in its legend entry.
    """
    check_plot_file(out)
    fig = training_curves_figure(run_dirs)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def training_curves_figure(run_dirs: list[Path]):
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.4))
    drawn = set()
    epochs_seen: set[int] = set()
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
                epochs_seen.update(epochs)
    for ax, (key, title) in zip(axes, PANELS):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        integer_epoch_axis(ax, epochs_seen)
        ax.grid(alpha=0.3)
        if key not in drawn:
            ax.text(0.5, 0.5, "not logged\n(train.diagnostics = false)", ha="center", va="center",
                    transform=ax.transAxes, color="gray")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize="small", frameon=False)
    fig.tight_layout(rect=(0, 0.06 + 0.05 * ((len(labels) - 1) // 3), 1, 1))
    return fig


def integer_epoch_axis(ax, epochs: set[int]) -> None:
    """Whole-epoch ticks only. Over fewer than three epochs matplotlib's automatic limits span less
    than one unit and the integer locator falls back to fractional ticks, so the limits are widened."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if epochs and max(epochs) - min(epochs) < 2:
        ax.set_xlim(min(epochs) - 1, max(epochs) + 1)


MARKERS = "osD^vP*Xh<>p"
OFFSET_POINTS = 7.0
"""Horizontal distance (in points) between markers drawn at the same place."""


def _style(i: int) -> dict:
    """Colour and marker of the i-th row: 14 rows of a Table 1 must not share a colour and shape. Hollow
    markers with some transparency, so that rows at the same place (the collapsed ones at MI = 0) show."""
    color = plt.cm.tab20(i % 20)
    return {"color": color, "marker": MARKERS[i % len(MARKERS)], "markerfacecolor": "none",
            "markeredgecolor": color, "markeredgewidth": 1.5, "markersize": 7, "alpha": 0.85}


def _errorbar_rows(rows, get_x, get_y):
    from .records import Stat

    for row in rows:
        xs = [v for v in (get_x(r) for r in row.runs) if v is not None]
        ys = [v for v in (get_y(r) for r in row.runs) if v is not None]
        if xs and ys:
            yield row, Stat.of(xs), Stat.of(ys)


def overlap_offsets(points: list[tuple[float, float]], tolerance: float = 0.01) -> list[float]:
    """A horizontal offset (in points) per point: points within ``tolerance`` of the axes' ranges of
    each other are spread side by side, centred on their place; the others stay put."""
    if not points:
        return []
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    span_x, span_y = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    groups: list[list[int]] = []
    for i, (x, y) in enumerate(points):
        for group in groups:
            gx, gy = points[group[0]]
            if abs(x - gx) <= tolerance * span_x and abs(y - gy) <= tolerance * span_y:
                group.append(i)
                break
        else:
            groups.append([i])
    offsets = [0.0] * len(points)
    for group in groups:
        for j, i in enumerate(group):
            offsets[i] = (j - (len(group) - 1) / 2) * OFFSET_POINTS
    return offsets


def row_labels(rows, spec) -> list[str]:
    """One label per row, the tables' (:func:`textvae.report.tables._label`): the published label where
    there is one."""
    from .tables import _label

    return [_label(row, spec) for row in rows]


def plot_nll_mi(records, out: Path, merge: tuple[str, ...] = ()) -> Path:
    """Table 1 as a figure: test NLL against MI per row, error bars = sample std over seeds."""
    return _save(nll_mi_figure(records, merge), out)


def nll_mi_figure(records, merge: tuple[str, ...] = ()):
    from matplotlib.transforms import offset_copy

    from .records import group_rows
    from .tables import _order, load_published

    spec = load_published("table1")
    rows = _order(group_rows(records, merge), spec)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    get = lambda key: (lambda r: r.results.get(key))  # noqa: E731
    drawn = list(_errorbar_rows(rows, get("mi"), get("nll")))
    labels = row_labels([row for row, _, _ in drawn], spec)
    offsets = overlap_offsets([(mi.mean, nll.mean) for _, mi, nll in drawn])
    for i, ((row, mi, nll), label, dx) in enumerate(zip(drawn, labels, offsets)):
        shift = offset_copy(ax.transData, fig=fig, x=dx, y=0.0, units="points")
        ax.errorbar(mi.mean, nll.mean, xerr=mi.std, yerr=nll.std, linestyle="none", capsize=3,
                    label=label, transform=shift, **_style(i))
        # Artists drawn through an offset transform are left out of autoscaling.
        ax.update_datalim([(mi.mean - mi.std, nll.mean - nll.std), (mi.mean + mi.std, nll.mean + nll.std)])
    ax.autoscale_view()
    ax.set_xlabel("MI (nats)")
    ax.set_ylabel("test NLL (nats)")
    ax.grid(alpha=0.3)
    corpora = ", ".join(sorted({r.corpus for r in rows}))
    ax.set_title(f"NLL against MI ({corpora}); bars: std over seeds")
    if any(offsets):
        ax.annotate("markers at the same place are drawn side by side", (0.01, 0.01),
                    xycoords="axes fraction", fontsize="x-small", color="gray")
    ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    return fig


def plot_probe_curves(records, out: Path, merge: tuple[str, ...] = ()) -> Path:
    """Table 4 as a figure: probe accuracy against labelled-subset size, one panel per probe."""
    return _save(probe_curves_figure(records, merge), out)


def probe_curves_figure(records, merge: tuple[str, ...] = ()):
    from matplotlib.transforms import offset_copy

    from .records import Stat, group_rows
    from .tables import _order, _probe_rows, load_published

    spec = load_published("table4")
    rows = _order(group_rows(_probe_rows(records), merge), spec)
    labels = row_labels(rows, spec)
    probes = sorted({p for row in rows for r in row.runs for rec in r.probes.values() for p in rec["probes"]})
    fig, axes = plt.subplots(1, len(probes), figsize=(6 * len(probes), 4.5), squeeze=False)
    for ax, probe in zip(axes[0], probes):
        for i, (row, label) in enumerate(zip(rows, labels)):
            points = {}
            for r in row.runs:
                for rec in r.probes.values():
                    for n, acc in rec["probes"].get(probe, {}).get("accuracy", {}).items():
                        points.setdefault(int(n), []).append(acc)
            if points:
                sizes = sorted(points)
                stats = [Stat.of(points[n]) for n in sizes]
                # Rows side by side at each subset size: equal accuracies would hide each other.
                dx = (i - (len(rows) - 1) / 2) * OFFSET_POINTS / 2
                shift = offset_copy(ax.transData, fig=fig, x=dx, y=0.0, units="points")
                ax.errorbar(sizes, [s.mean for s in stats], yerr=[s.std for s in stats], capsize=3,
                            label=label, transform=shift, **_style(i))
                ax.update_datalim([(n, s.mean + sign * s.std) for n, s in zip(sizes, stats) for sign in (-1, 1)])
        ax.autoscale_view()
        ax.set_xscale("log")
        ax.set_xlabel("labelled training sentences")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(probe)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    return fig


def plot_clutter_means(records, out: Path, merge: tuple[str, ...] = ()) -> Path:
    """The clutter table as a figure: each row's test posterior means (first seed; the first two latent
    dimensions) coloured by label, one panel per row, one line of panels per strategy."""
    return _save(clutter_means_figure(records, merge), out)


def clutter_means_figure(records, merge: tuple[str, ...] = ()):
    from .records import group_rows
    from .tables import _order, clutter_runs

    scored = clutter_runs(records)
    if not scored:
        raise ConfigError("--figure: no latent-clutter results (knn_accuracy in results.json) in these runs")
    rows = _order(group_rows(scored, merge), None)
    strategies = list(dict.fromkeys(row.strategy for row in rows))
    ncols = max(sum(row.strategy == s for row in rows) for s in strategies)
    fig, axes = plt.subplots(len(strategies), ncols, figsize=(3.2 * ncols, 3.2 * len(strategies)), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    used = {s: 0 for s in strategies}
    cmap = plt.get_cmap("tab20")
    for row in rows:
        line = strategies.index(row.strategy)
        ax = axes[line][used[row.strategy]]
        used[row.strategy] += 1
        run = min(row.runs, key=lambda r: r.config.get("seed", 0))
        latents = RunDir(run.run_dir).read_latents(run.results.get("split", "test"))
        means, labels = latents["means"], latents["labels"]
        if not means or len(means[0]) < 1:
            raise RunFolderError(f"{run.run_dir}: its latents record holds no means")
        xs = [m[0] for m in means]
        ys = [m[1] if len(m) > 1 else 0.0 for m in means]
        ax.set_visible(True)
        ax.scatter(xs, ys, c=[cmap(label % 20) for label in labels], s=3, alpha=0.6, linewidths=0)
        ax.set_title(f"{row.label(row.strategy)}\nseed {run.config.get('seed')}: 15-NN "
                     f"{run.results['knn_accuracy']:.2f}", fontsize="small")
        ax.tick_params(labelsize="x-small")
        ax.locator_params(nbins=4)  # a collapsed posterior's means span ~1e-4: long tick labels would collide
    fig.suptitle("Test posterior means, coloured by label", fontsize="medium")
    return fig


def _save(fig, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out


FIGURES = {"table1": plot_nll_mi, "table4": plot_probe_curves, "clutter": plot_clutter_means}

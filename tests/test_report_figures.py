"""Report figures: one label per row (the published label where there is one), points at the same place
stay visible, and a short training curve has whole-epoch ticks."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from test_report_identity import recipe_run

from textvae.report.plots import nll_mi_figure, overlap_offsets, probe_curves_figure, training_curves_figure
from textvae.report.records import read_records
from textvae.rundir import RunDir

PROBE = {"sgd-linear": {"accuracy": {"100": 60.0, "1000": 70.0}}}


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def marker_positions(ax):
    """Display coordinates of each row's marker (the data line of its error-bar container)."""
    return [tuple(c.lines[0].get_transform().transform(c.lines[0].get_xydata())[0]) for c in ax.containers]


def test_table1_figure_labels_each_row_once_and_spreads_points_at_the_same_place(tmp_path):
    for strategy in ("vae", "kl-annealing", "scale-vae-0.9"):
        recipe_run(tmp_path, strategy, 1, nll=40.0, kl=0.0, mi=0.0, au=0)  # all collapsed: one place
    recipe_run(tmp_path, "bn-vae", 1, nll=38.0, kl=6.0, mi=3.0, au=16)
    fig = nll_mi_figure(read_records([tmp_path]))
    ax = fig.axes[0]
    labels = legend_texts(ax)
    assert labels == ["VAE", "BN-VAE (0.6)", "Scale-VAE (0.9, 1 | 0.9, 7)", "KL annealing"]
    assert not {"kl-annealing", "scale-vae-0.9", "bn-vae", "vae"} & set(labels)
    fig.canvas.draw()
    positions = marker_positions(ax)
    collapsed = [p for p, label in zip(positions, labels) if label != "BN-VAE (0.6)"]
    assert len({round(x, 1) for x, _ in collapsed}) == 3  # side by side, not on top of each other
    assert len({round(y, 1) for _, y in collapsed}) == 1  # the NLL axis is not moved
    assert all(c.lines[0].get_markerfacecolor() == "none" for c in ax.containers)  # hollow: overlaps show
    plt.close(fig)


def test_overlap_offsets_spread_only_coinciding_points():
    assert overlap_offsets([(0.0, 40.0), (0.0, 40.0), (3.0, 38.0)]) == [-3.5, 3.5, 0.0]
    assert overlap_offsets([(0.0, 40.0), (3.0, 38.0)]) == [0.0, 0.0]
    assert overlap_offsets([]) == []


def test_probe_figure_uses_published_labels_for_every_row(tmp_path):
    for strategy in ("kl-annealing", "bn-vae", "scale-vae-0.9"):
        run = recipe_run(tmp_path, strategy, 1, nll=40.0, kl=1.0, mi=1.0, au=2)
        from textvae.rundir import write_json
        write_json(RunDir(run).probe_record("short-yelp"), {"name": strategy, "seed": 0, "probes": PROBE})
    fig = probe_curves_figure(read_records([tmp_path]))
    labels = legend_texts(fig.axes[-1])
    # Table 4 has no Scale-VAE 0.9 row: its Table 1 label, never the recipe name.
    assert labels == ["BN-VAE (0.6)", "KL annealing", "Scale-VAE (0.9, 1 | 0.9, 7)"]
    fig.canvas.draw()
    xs = [x for x, _ in marker_positions(fig.axes[0])]
    assert len(set(np.round(xs, 1))) == 3  # equal accuracies side by side
    plt.close(fig)


def test_a_one_epoch_curve_has_whole_epoch_ticks(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.append_metrics({"epoch": 1, "step": 10, "lr": 1.0, "valid": {"kl": 0.5, "mi": 0.2, "au": 1, "elbo": 40.0}})
    fig = training_curves_figure([run.path])
    fig.canvas.draw()
    for ax in fig.axes:
        assert isinstance(ax.xaxis.get_major_locator(), MaxNLocator)
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert 1 in ticks
    plt.close(fig)

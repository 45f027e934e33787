"""Paper tables from run records: mean ± std over seeds, the published values side by side.

Table 1: NLL / KL / MI / AU (``results.json``); Table 3: the same over a hyper-parameter grid (the
config keys in which a recipe's rows differ); Table 4: linear-probe accuracy by labelled-subset
size (``probe/*.json``); Table 5: generation metrics (``generation/*.json``). Each builder returns a
:class:`Table`, rendered by :mod:`textvae.report.render`.
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import ConfigError, suggest
from ..resources import shipped_dir
from .deviations import deviation_notes, mi_cap_note
from .records import Row, RunRecord, Stat, group_rows, shared_settings

PUBLISHED_DIR = shipped_dir("published")
TABLES = ("table1", "table3", "table4", "table5", "clutter")
PUBLISHED_TABLES = ("table1", "table4", "table5")


@dataclass
class Column:
    title: str
    digits: int = 2


@dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[list[Any]]
    """Cells: a :class:`Stat` (ours), a float (published; NaN = not reported), a str or None."""
    notes: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=None)
def load_published(name: str) -> dict:
    path = PUBLISHED_DIR / f"{name}.toml"
    if not path.is_file():
        available = sorted(p.stem for p in PUBLISHED_DIR.glob("*.toml"))
        raise ConfigError(f"no published table '{name}' in {PUBLISHED_DIR}" + suggest(name, available)
                          + f" (available: {', '.join(available)})")
    return tomllib.loads(path.read_text())


def published_columns(spec: dict) -> list[str]:
    return sorted({k for row in spec["rows"] for k, v in row.items() if isinstance(v, list)})


def check_column(spec: dict, column: str | None, table: str) -> str | None:
    if column is None:
        return None
    available = published_columns(spec)
    if column not in available:
        raise ConfigError(f"--column {column!r}: {table} has no such published column"
                          + suggest(column, available) + f" (available: {', '.join(available)})")
    return column


def _order(rows: list[Row], spec: dict | None) -> list[Row]:
    order = [r["recipe"] for r in spec["rows"]] if spec else []
    return sorted(rows, key=lambda r: (r.corpus, order.index(r.strategy) if r.strategy in order else len(order),
                                       r.strategy, sorted(map(str, r.distinct.items()))))


# Labels of recipes without a published row, so that a table or figure never mixes paper labels
# with recipe names.
OWN_LABELS = {"kl-annealing": "KL annealing", "beta-vae-b": "β-VAE (B)", "beta-tcvae": "β-TCVAE",
              "factor-vae": "FactorVAE", "infovae-mmd": "InfoVAE (MMD)", "pretrain-fb": "pretrain + FB",
              "scale-vae-slides": "Scale-VAE (slides' f)"}


def published_label(strategy: str, spec: dict | None = None) -> str:
    """The row's label in ``spec``, else in the first published table that has the recipe, else ours."""
    for table in ([spec] if spec else []) + [load_published(name) for name in PUBLISHED_TABLES]:
        for row in table["rows"]:
            if row["recipe"] == strategy:
                return row["label"]
    return OWN_LABELS.get(strategy, strategy)


def _label(row: Row, spec: dict | None) -> str:
    base = published_label(row.strategy, spec)
    if row.setting("prior.name") not in (None, "standard-normal"):
        base += f" + {row.setting('prior.name')} prior"
    if row.protocol is not None:
        base += f" @{row.protocol}"
    return row.label(base)


def _optimizer_column(rows: list[Row]) -> bool:
    """Rows trained with different optimisers name theirs in a column: an NLL gap between them
    may be the optimiser's, not the method's."""
    return len({row.optimizer() for row in rows}) > 1


def _settings_note(rows: list[Row]) -> str:
    shared = shared_settings(rows)
    parts = []
    if "data.corpus" in shared:
        parts.append(f"corpus {shared['data.corpus']}")
    else:
        parts.append("corpora: " + ", ".join(sorted({r.corpus for r in rows})) + " (one column each row)")
    if "train.epochs" in shared:
        trained = sorted({r.results.get("epochs") for row in rows for r in row.runs} - {None})
        parts.append(f"{shared['train.epochs']} epochs"
                     + (f" (trained {trained[0]}–{trained[-1]}: early stop)" if trained and trained[0] != trained[-1]
                        or trained and trained[0] != shared["train.epochs"] else ""))
    if shared.get("data.train_limit") is not None:
        parts.append(f"first {shared['data.train_limit']} training sentences")
    if "eval.split" in shared:
        limit = shared.get("eval.limit")
        parts.append(f"{shared['eval.split']} split" + (f", first {limit} sentences" if limit else ", all sentences"))
    if "eval.iw_samples" in shared:
        parts.append(f"NLL importance-weighted with K = {shared['eval.iw_samples']}")
    if "eval.mi_estimator" in shared:
        parts.append(f"MI estimator: {shared['eval.mi_estimator']}")
    if "eval.au_threshold" in shared:
        parts.append(f"AU threshold {shared['eval.au_threshold']}")
    return "Ours: " + "; ".join(parts) + ". Settings that differ between rows are named in the row label."


def _notes(rows: list[Row], spec: dict | None, column: str | None, mi: bool = False) -> list[str]:
    """The settings note, every setting that differs from the recipes or the published protocol, and
    (for tables with MI) the log N cap."""
    from .. import recipes

    labels = [_label(row, spec) for row in rows]
    notes = [_settings_note(rows)]
    notes += deviation_notes(rows, labels, column if column in recipes.datasets() else None)
    if mi:
        published = {r["recipe"]: r for r in spec["rows"]} if spec else {}
        index = spec["metrics"].index("mi") if spec and "mi" in spec["metrics"] else None
        pub_mi = {i: published.get(row.strategy, {}).get(column, [None] * (index + 1))[index]
                  for i, row in enumerate(rows)} if index is not None and column else {}
        pub_mi = {i: v for i, v in pub_mi.items() if v is not None and not math.isnan(v)}
        warning = mi_cap_note(rows, labels, pub_mi)
        if warning:
            notes.append(warning)
    return notes


def _corpus_column(rows: list[Row]) -> bool:
    return len({r.corpus for r in rows}) > 1


def _result(metric: str) -> Callable[[RunRecord], float | None]:
    def get(record: RunRecord) -> float | None:
        value = record.results.get(metric)
        return None if value is None else float(value)
    return get


EXTRA_COLUMNS = {"kl_train": "KL (training objective)"}


def table1(records: list[RunRecord], column: str | None = None, merge: tuple[str, ...] = ()) -> Table:
    """NLL, KL, MI, AU per row; a KL-of-the-training-objective column where it differs from the evaluator's
    (Scale-VAE); the best epoch (a best epoch equal to the last means -ELBO was still improving)."""
    spec = load_published("table1")
    column = check_column(spec, column, "table1") or published_columns(spec)[0]
    metrics = spec["metrics"]
    rows = _order(group_rows(records, merge), spec)
    extras = [k for k in EXTRA_COLUMNS if any(
        r.results.get(k) is not None and abs(r.results[k] - r.results.get("kl", r.results[k])) > 1e-3
        for row in rows for r in row.runs)]
    corpus = _corpus_column(rows)
    optimizer = _optimizer_column(rows)
    columns = ([Column("model")] + ([Column("corpus")] if corpus else []) + [Column("seeds")]
               + ([Column("optimizer")] if optimizer else [])
               + [Column(m.upper(), 1 if m == "au" else 2) for m in metrics]
               + [Column(EXTRA_COLUMNS[k]) for k in extras] + [Column("best epoch", 1)])
    published = {r["recipe"]: r for r in spec["rows"]}
    columns += [Column(f"published {m.upper()} ({column})") for m in metrics]
    body = []
    for row in rows:
        cells: list[Any] = [_label(row, spec)] + ([row.corpus] if corpus else []) + [str(row.seeds)]
        cells += [row.optimizer()] if optimizer else []
        cells += [row.stat(_result(m)) for m in metrics + extras]
        cells.append(row.stat(_result("best_epoch")))
        cells += published.get(row.strategy, {}).get(column, [None] * len(metrics))
        body.append(cells)
    notes = [*_notes(rows, spec, column, mi=True), "Mean ± sample std over seeds.",
             f"Published: {spec['source']}, {column} column (the paper's corpus and budget: compare orderings)."]
    return Table("Table 1: density estimation and collapse diagnostics", columns, body, notes)


def table3(records: list[RunRecord], column: str | None = None, merge: tuple[str, ...] = ()) -> Table:
    """A hyper-parameter grid: one row per setting of the config keys in which a recipe's runs differ."""
    if column is not None:
        raise ConfigError("--column: no published Table 3 values are shipped; omit --column")
    rows = _order(group_rows(records, merge), None)
    grid_keys = sorted({k for row in rows for k in row.distinct})
    if not grid_keys:
        raise ConfigError("table3 needs runs of one recipe that differ in a config key (a sweep with a [grid])")
    corpus = _corpus_column(rows)
    optimizer = _optimizer_column(rows)
    columns = ([Column("recipe")] + ([Column("corpus")] if corpus else []) + [Column(k) for k in grid_keys]
               + [Column("seeds")] + ([Column("optimizer")] if optimizer else [])
               + [Column(m.upper(), 1 if m == "au" else 2) for m in ("nll", "kl", "mi", "au")])
    body = []
    for row in rows:
        cells: list[Any] = [row.recipe.split("/")[-1]] + ([row.corpus] if corpus else [])
        cells += [str(row.distinct.get(k, row.setting(k))) for k in grid_keys] + [str(row.seeds)]
        cells += [row.optimizer()] if optimizer else []
        cells += [row.stat(_result(m)) for m in ("nll", "kl", "mi", "au")]
        body.append(cells)
    return Table("Table 3: hyper-parameter grid", columns, body,
                 [*_notes(rows, None, None, mi=True), "Mean ± sample std over seeds."])


def _probe_rows(records: list[RunRecord]) -> list[RunRecord]:
    probed = [r for r in records if r.probes]
    if not probed:
        raise ConfigError("no probe records (RUN/probe/*.json) in these runs; run `textvae probe RUN` or a sweep "
                          "with a [probe] table first")
    return probed


def table4(records: list[RunRecord], column: str | None = None, merge: tuple[str, ...] = ()) -> Table:
    """Linear-probe test accuracy (%) per labelled-subset size, one row per (model, probe data, probe)."""
    spec = load_published("table4")
    column = check_column(spec, column, "table4") or published_columns(spec)[0]
    rows = _order(group_rows(_probe_rows(records), merge), spec)
    sizes = sorted({n for row in rows for r in row.runs for p in r.probes.values()
                    for probe in p["probes"].values() for n in probe["accuracy"]}, key=int)
    datas = sorted({d for row in rows for r in row.runs for d in r.probes})
    published = {r["recipe"]: r for r in spec["rows"]}
    corpus = _corpus_column(rows)
    columns = ([Column("model")] + ([Column("corpus")] if corpus else []) + [Column("probe data"), Column("probe"),
               Column("runs")] + [Column(n, 1) for n in sizes]
              + [Column(f"published {n} ({column})", 1) for n in sizes])
    body = []
    for row in rows:
        for data in datas:
            probes = sorted({p for r in row.runs for p in r.probes.get(data, {}).get("probes", {})})
            for probe in probes:
                def acc(record: RunRecord, n: str, data=data, probe=probe) -> float | None:
                    return record.probes.get(data, {}).get("probes", {}).get(probe, {}).get("accuracy", {}).get(n)
                n_runs = sum(1 for r in row.runs if probe in r.probes.get(data, {}).get("probes", {}))
                pub_row = published.get(row.strategy, {}).get(column)
                pub = [pub_row[spec["metrics"].index(n)] if pub_row and n in spec["metrics"] else None for n in sizes]
                body.append([_label(row, spec)] + ([row.corpus] if corpus else []) + [data, probe, str(n_runs)]
                            + [row.stat(lambda r, n=n: acc(r, n)) for n in sizes] + pub)
    notes = [*_notes(rows, spec, column),
             "Test accuracy (%) on the probe data's full test set, mean ± sample std over seeds; sgd-linear: "
             "the reference's SGD linear layer selected on validation loss; sklearn-logreg: standardised "
             "features + logistic regression, C selected on validation log-loss.",
             f"Published: {spec['source']}, {column} column."]
    return Table("Table 4: linear probe on frozen posterior means", columns, body, notes)


# (our metric, scale, title, published metric): shown as metric * scale, like the paper.
TABLE5_METRICS = [
    ("lm-ppl", 1.0, "PPL (LSTM-LM)", "ppl"),
    ("gram-2", 100.0, "Gram-2 (%)", "gram-2"),
    ("gram-3", 100.0, "Gram-3 (%)", "gram-3"),
    ("gram-4", 100.0, "Gram-4 (%)", "gram-4"),
    ("ent-1", 1.0, "Entropy (unigram, nats)", "entropy"),
    ("dist-1", 1e2, "Dist-1 (×1e-2)", "dist-1"),
    ("dist-2", 1e5, "Dist-2 (×1e-5)", "dist-2"),
    ("dist-3", 1e5, "Dist-3 (×1e-5)", "dist-3"),
    ("self-bleu", 1.0, "self-BLEU-4", None),
    ("rec-bleu", 1.0, "rec-BLEU-4", None),
]


def table5(records: list[RunRecord], column: str | None = None, merge: tuple[str, ...] = ()) -> Table:
    """Generation metrics per model and generation setting; the published rows follow ours."""
    spec = load_published("table5")
    column = check_column(spec, column, "table5") or published_columns(spec)[0]
    generated = [r for r in records if r.generations]
    if not generated:
        raise ConfigError("no generation records (RUN/generation/*.json) in these runs; run "
                          "`textvae generate RUN --metrics` first")
    rows = _order(group_rows(generated, merge), spec)
    present = [m for m in TABLE5_METRICS if any(m[0] in g.get("metrics", {}) for row in rows for r in row.runs
                                                for g in r.generations.values())]
    columns = [Column("model"), Column("generation"), Column("runs")] + [Column(m[2]) for m in present]
    body = []
    for row in rows:
        for name in sorted({g for r in row.runs for g in r.generations}):
            runs = [r for r in row.runs if name in r.generations]
            settings = {repr(r.generations[name].get("settings")) for r in runs}
            if len(settings) > 1:
                raise ConfigError(f"refusing to average {row.recipe}: its generation records '{name}' were made "
                                  "with different settings")
            cells: list[Any] = [_label(row, spec), name, str(len(runs))]
            for key, scale, _, _ in present:
                values = [r.generations[name]["metrics"].get(key) for r in runs]
                values = [v * scale for v in values if v is not None and not math.isnan(v)]
                cells.append(Stat.of(values) if values else None)
            body.append(cells)
    for pub in spec["rows"]:
        cells = [f"{pub['label']} (published, {column})", "–", "–"]
        cells += [pub[column][spec["metrics"].index(p)] if p else None for _, _, _, p in present]
        body.append(cells)
    notes = [*_notes(rows, spec, column), "Mean ± sample std over seeds; each record's sampling settings are in "
             "RUN/generation/NAME.json.", f"Published: {spec['source']} ({column}): compare orderings between models."]
    return Table("Table 5: generation", columns, body, notes)


CLUTTER_METRICS = (("knn_accuracy", "15-NN accuracy", 3), ("silhouette", "silhouette", 3), ("nll", "NLL", 2),
                   ("kl", "KL", 2), ("au", "AU", 1))


def clutter_runs(records: list[RunRecord]) -> list[RunRecord]:
    """The runs the clutter table, its records and its figure are made of: those scored with
    ``eval.latent_clutter``."""
    return [r for r in records if r.results.get("knn_accuracy") is not None]


def clutter(records: list[RunRecord], column: str | None = None, merge: tuple[str, ...] = ()) -> Table:
    """How well each row's test posterior means separate the corpus's labels (``eval.latent_clutter``):
    k-NN accuracy and silhouette beside NLL, KL and AU; rows differ in recipe and config (e.g.
    ``data.batch_split``), named in the row label."""
    if column is not None:
        raise ConfigError("--column: no published clutter values are shipped; omit --column")
    scored = clutter_runs(records)
    if not scored:
        raise ConfigError("no latent-clutter results (knn_accuracy in results.json) in these runs; train them "
                          "with --set eval.latent_clutter=true on a labeled corpus")
    rows = _order(group_rows(scored, merge), None)
    corpus = _corpus_column(rows)
    columns = ([Column("model")] + ([Column("corpus")] if corpus else []) + [Column("seeds")]
               + [Column(title, digits) for _, title, digits in CLUTTER_METRICS])
    body = []
    for row in rows:
        cells: list[Any] = [row.label(row.strategy)] + ([row.corpus] if corpus else []) + [str(row.seeds)]
        cells += [row.stat(_result(key)) for key, _, _ in CLUTTER_METRICS]
        body.append(cells)
    neighbours = sorted({r.results.get("knn_neighbours") for r in scored} - {None})
    folds = sorted({r.results.get("knn_folds") for r in scored} - {None})
    notes = [_settings_note(rows),
             f"k-NN accuracy: {'/'.join(map(str, neighbours))}-nearest-neighbour classifier of the label from the "
             f"test posterior means (in the space the decoder reads), {'/'.join(map(str, folds))}-fold "
             "cross-validated; silhouette of the label groups; mean ± sample std over seeds."]
    return Table("Latent clutter: label separation of the test posterior means", columns, body, notes)


BUILDERS = {"table1": table1, "table3": table3, "table4": table4, "table5": table5, "clutter": clutter}

RECORD_METRICS = {"table1": ("nll", "kl", "mi", "au", "kl_train", "best_epoch"),
                  "table3": ("nll", "kl", "mi", "au", "best_epoch"),
                  "clutter": ("knn_accuracy", "silhouette", "nll", "kl", "mi", "au", "best_epoch")}
"""The results.json values a per-run record of each table holds (tables read from results.json only)."""


def check_records_table(name: str) -> None:
    """``--records`` names a table whose values come from results.json."""
    if name not in RECORD_METRICS:
        raise ConfigError(f"--records: no per-run records for {name} (available for: {', '.join(RECORD_METRICS)})")


def run_records(name: str, records: list[RunRecord], merge: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One record per run of the table's rows, in row order: the run folder, corpus, recipe, strategy, seed,
    the settings that set its row apart, and its values of the table's metrics (``--records``)."""
    check_records_table(name)
    if name == "clutter":
        records = clutter_runs(records)
    spec = load_published("table1") if name == "table1" else None
    out = []
    for row in _order(group_rows(records, merge), spec):
        for run in sorted(row.runs, key=lambda r: r.config.get("seed", 0)):
            out.append({"run": run.run_dir, "corpus": row.corpus, "recipe": row.recipe, "strategy": row.strategy,
                        "seed": run.config.get("seed"), **row.distinct,
                        **{m: run.results.get(m) for m in RECORD_METRICS[name]}})
    return out


def build_table(name: str, records: list[RunRecord], column: str | None = None, merge: tuple[str, ...] = ()) -> Table:
    if name not in BUILDERS:
        raise ConfigError(f"--table {name!r}: unknown table" + suggest(name, TABLES)
                          + f" (available: {', '.join(TABLES)})")
    return BUILDERS[name](records, column, merge)

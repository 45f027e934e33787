"""Run Table-1 rows beside the research code behind them, on the same data, model, optimiser, seeds and budget.

The reference programs are not part of textvae: pass the folders of your own clones with ``--reference``
(``NAME=PATH``; the names are the ``REFERENCES`` keys). Each reference run works in a scratch copy of its
clone, where the runner writes a config module for the parity corpus and applies the compatibility
patches listed in ``PATCHES`` (printed in parity.md); nothing of the clone is changed and nothing of it
is copied into the results. The textvae side runs through ``textvae sweep`` on a spec the runner writes.

    python -m eval.parity --ptb PATH/ptb --reference lagging=~/src/vae-lagging-encoder \\
        --reference bn-vae=~/src/bn-vae --reference du-vae=~/src/DU-VAE --work runs/parity

writes ``eval/results/parity/parity.json`` (one record per row) and ``parity.md``. Re-running skips reference
runs whose log is complete and sweep points that finished. ``--render`` re-renders from parity.json.
See docs/parity.md for the protocol and the verdict rule.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from textvae.errors import TextVAEError
from textvae.reference.logs import parse_log, read_training_curve
from textvae.reference.verdict import MARGINS, MAX_SEEDS, paired_verdict, row_verdict, unpaired_verdict
from textvae.training.environment import machine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "eval" / "results" / "parity"
TEXTVAE = [sys.executable, "-c", "from textvae.cli.main import app; app()"]
"""The textvae command line of the Python running this script."""


@dataclass(frozen=True)
class Reference:
    repo: str
    """owner/name of the public repository."""
    seed_arg: str
    """How the program takes its seed: ``seed`` (--seed N) or ``taskid`` (--taskid index into its seed list)."""
    seed_list: tuple[int, ...] = ()


REFERENCES = {
    "lagging": Reference("jxhe/vae-lagging-encoder", "taskid", (783435, 101, 202, 303, 404, 505, 606, 707, 808, 909)),
    "bn-vae": Reference("valdersoul/bn-vae", "seed"),
    "du-vae": Reference("SmilesDZgk/DU-VAE", "taskid", (783435, 101, 202, 303, 404, 505, 606, 707, 808, 909)),
    "pretraining": Reference("bohanli/vae-pretraining-encoder", "seed"),
}

# Run-time compatibility patches, applied to the scratch copy only: (reference, file, old, new, why).
PATCHES = [
    ("bn-vae", "utils.py", ".cuda()", "", "CPU: the MI helper moves tensors to CUDA unconditionally"),
    ("du-vae", "utils.py", ".cuda()", "", "CPU: unconditional CUDA transfers"),
    ("lagging", "modules/utils.py", ".cuda()", "", "CPU: unconditional CUDA transfers"),
    ("pretraining", "utils.py", ".cuda()", "", "CPU: the MI helper moves tensors to CUDA unconditionally"),
    ("bn-vae", "lm.py", 'scripts_to_save=["text_cyc_anneal.py"]', "scripts_to_save=None",
     "the language model script copies a file the repository does not ship into its log folder"),
]


@dataclass(frozen=True)
class Row:
    label: str
    """The published row label."""
    recipe: str
    """textvae recipe strategy."""
    reference: str
    script: str
    args: tuple[str, ...]
    pretrain: tuple[str, tuple[str, ...]] | None = None
    """(script, args) of a program run first; the row's program starts from its saved best model
    (``--load_path``), as Li et al.'s two-stage recipe runs."""
    language_model: bool = False
    """No latent variable: the program reports an exact NLL and no KL, MI or AU (and takes no IW samples)."""


ROWS = {
    "vae": Row("VAE", "vae", "lagging", "text.py", ("--kl_start", "1.0", "--warm_up", "10")),
    "kl-annealing": Row("VAE + annealing", "kl-annealing", "lagging", "text.py",
                        ("--kl_start", "0.1", "--warm_up", "10")),
    "agg-vae": Row("Agg-VAE", "agg-vae", "lagging", "text.py",
                   ("--aggressive", "1", "--kl_start", "1.0", "--warm_up", "10")),
    "beta-vae": Row("β-VAE (0.4)", "beta-vae", "pretraining", "text_beta.py", ("--beta", "0.4")),
    "free-bits": Row("Free-Bits (0.1)", "free-bits", "bn-vae", "text_anneal_fb.py",
                     ("--fb", "2", "--target_kl", "3.2", "--kl_start", "0", "--warm_up", "10")),
    "cyclical": Row("cyclical", "cyclical", "bn-vae", "text_anneal_fb.py",
                    ("--cycle", "10", "--fb", "0", "--kl_start", "0.1", "--warm_up", "5")),
    "delta-vae": Row("δ-VAE (0.1)", "delta-vae", "bn-vae", "text_anneal_fb.py",
                     ("--fb", "3", "--delta", "0.1", "--kl_start", "0", "--warm_up", "10")),
    "bn-vae": Row("BN-VAE (0.6)", "bn-vae", "bn-vae", "text_anneal_fb.py",
                  ("--gamma", "0.6", "--fb", "0", "--kl_start", "0", "--warm_up", "10")),
    "du-vae": Row("DU-VAE (0.6, 0.8)", "du-vae", "du-vae", "text.py",
                  ("--gamma", "0.6", "--p_drop", "0.2", "--delta_rate", "1", "--kl_start", "0", "--warm_up", "10")),
    "pretrain-fb": Row("pretraining + FB (8)", "pretrain-fb", "pretraining", "text_anneal_fb.py",
                       ("--reset_dec", "--kl_start", "0", "--warm_up", "10", "--target_kl", "8", "--fb", "2",
                        "--lr", "0.5"),
                       pretrain=("text_beta.py", ("--beta", "0", "--lr", "0.5"))),
    "lstm-lm": Row("LSTM-LM", "lstm-lm", "bn-vae", "lm.py", (), language_model=True),
}

# ---- the corpus -------------------------------------------------------------------------------------------
def make_corpus(ptb: Path, dest: Path, train: int, valid: int, test: int) -> dict:
    """The first N lines of each PTB split, as plain text files both sides read."""
    dest.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for split, n in (("train", train), ("valid", valid), ("test", test)):
        src = ptb / f"{split}.txt"
        if not src.is_file():
            raise SystemExit(f"--ptb {ptb}: no {split}.txt")
        lines = src.read_text().splitlines()[:n]
        text, out = "\n".join(lines) + "\n", dest / f"{split}.txt"
        if not out.is_file() or out.read_text() != text:  # another invocation may be reading it
            out.write_text(text)
        sizes[split] = len(lines)
    return sizes


# ---- the reference side -----------------------------------------------------------------------------------
def prepare_reference(clone: Path, name: str, scratch: Path) -> list[str]:
    """A scratch copy of the clone with the compatibility patches applied; returns the patches applied."""
    marker = scratch / ".parity-source"
    if scratch.exists() and (not marker.is_file() or marker.read_text() != str(clone)):
        shutil.rmtree(scratch)  # a copy of another clone (the row changed its reference): its log is not this row's
    if not scratch.exists():
        shutil.copytree(clone, scratch, ignore=shutil.ignore_patterns(".git", "__pycache__"))
        marker.write_text(str(clone))
    applied = []
    for ref, rel, old, new, why in PATCHES:
        path = scratch / rel
        if ref != name or not path.is_file():
            continue
        text = path.read_text()
        if old in text:
            path.write_text(text.replace(old, new))
        applied.append(f"{REFERENCES[name].repo} {rel}: {old!r} -> {new!r} ({why})")
    return applied


def write_reference_config(scratch: Path, corpus: Path, model: dict, epochs: int) -> None:
    params = {"enc_type": "lstm", "dec_type": "lstm", "nz": model["latent_dim"], "ni": model["embed_dim"],
              "enc_nh": model["enc_hidden"], "dec_nh": model["dec_hidden"], "log_niter": 50,
              "dec_dropout_in": model["dec_dropout_in"], "dec_dropout_out": model["dec_dropout_out"],
              "batch_size": 32, "epochs": epochs, "test_nepoch": 5, "label": False, "vocab_file": None,
              "train_data": str(corpus / "train.txt"), "val_data": str(corpus / "valid.txt"),
              "test_data": str(corpus / "test.txt")}
    (scratch / "config" / "config_parity.py").write_text(f"params = {params!r}\n")


def programs(row: Row) -> str:
    """The row's programs in the order they run, as the records name them."""
    return f"{row.pretrain[0]} → {row.script}" if row.pretrain else row.script


def program_command(row: Row, script: str, args: tuple[str, ...], seed: int, iw_samples: int, exp_dir: Path,
                    orders: Path) -> list[str]:
    """One program of the row under eval/record_orders.py, which logs the permutations it draws to ``orders``."""
    ref = REFERENCES[row.reference]
    cmd = [sys.executable, str(ROOT / "eval" / "record_orders.py"), str(orders), script, "--dataset", "parity",
           *([] if row.language_model else ["--iw_nsamples", str(iw_samples)]), *args]
    if ref.seed_arg == "seed":
        cmd += ["--seed", str(seed), "--exp_dir", str(exp_dir)]
    else:
        if seed not in ref.seed_list:
            raise SystemExit(f"--seeds: {ref.repo} takes its seed from a fixed list {list(ref.seed_list)}; "
                             f"{seed} is not in it")
        cmd += ["--taskid", str(ref.seed_list.index(seed))]
    return cmd


def reference_steps(row: Row, seed: int, iw_samples: int, scratch: Path) -> list[dict]:
    """The programs of one reference run in the order they run: ``cmd``, ``log`` and ``orders`` each.
    The last one is the row's program, whose log holds the run's figures."""
    steps = []
    if row.pretrain is not None:
        script, args = row.pretrain
        steps.append({"cmd": program_command(row, script, args, seed, iw_samples, scratch / "exp_pretrain",
                                             scratch / "orders_pretrain.jsonl"),
                      "log": str(scratch / "pretrain.log"), "orders": str(scratch / "orders_pretrain.jsonl")})
    load = ("--load_path", str(scratch / "exp_pretrain" / "model.pt")) if row.pretrain is not None else ()
    steps.append({"cmd": program_command(row, row.script, (*row.args, *load), seed, iw_samples, scratch / "exp",
                                         scratch / "orders.jsonl"),
                  "log": str(scratch / "parity.log"), "orders": str(scratch / "orders.jsonl")})
    return steps


def parse_reference_log(text: str, language_model: bool = False) -> dict:
    """Per-epoch training means of the program's own progress reports, and its final test figures
    (textvae.reference.logs, the one reader of these logs)."""
    return parse_log(text, language_model)


def parse_reference_run(job: dict) -> dict:
    """The run's figures from its last program's log, with the training curves of every program it ran
    (a pretraining program's epochs first), or {} when the last log is incomplete."""
    parsed = parse_reference_log(Path(job["steps"][-1]["log"]).read_text(), job.get("language_model", False))
    if parsed and len(job["steps"]) > 1:
        earlier = [read_training_curve(Path(s["log"]).read_text()) for s in job["steps"][:-1]]
        curve = [e for part in earlier for e in part] + parsed["train"]
        parsed["train"] = [{**e, "epoch": i + 1} for i, e in enumerate(curve)]
    return parsed


def finished_reference(job: dict) -> dict:
    """The figures of a complete earlier log of this job (with its recorded batch orders), else {}."""
    complete = all(Path(s["log"]).is_file() and Path(s["orders"]).is_file() for s in job["steps"])
    return parse_reference_run(job) if complete else {}


def training_buckets(corpus: Path, recipe: str) -> list[int | None]:
    """Sentence lengths (words) of textvae's training buckets on the parity corpus, in the order they are
    cut before any shuffle: the reference programs' ``create_data_batch`` list, position for position.
    None marks a bucket the recipe skips as too small (as its program does)."""
    from textvae import recipes
    from textvae.data import cut_batches, load_corpus

    config = recipes.resolve("ptb", recipe, [f"data.corpus={json.dumps(str(corpus))}", 'data.bucket_order="argsort"'])
    train = load_corpus(config.data).splits["train"]
    cut = cut_batches(train, config.data.batch_size, "bucket", bucket_order="argsort")
    return [b.max_words if b.size >= config.data.min_batch_size else None for b in cut]


def reference_orders(job: dict, buckets: int, epochs: int) -> list[list[int]]:
    """The training-bucket order of each epoch of a finished reference run, its programs in turn: their
    permutations of ``buckets`` items, one per epoch (no other split of the parity corpus has that many
    batches)."""
    orders = []
    for step in job["steps"]:
        calls = [json.loads(line) for line in Path(step["orders"]).read_text().splitlines() if line.strip()]
        found = [c["order"] for c in calls if c["n"] == buckets]
        if len(found) != epochs:
            raise SystemExit(f"{step['orders']}: {len(found)} permutations of {buckets} training buckets, expected "
                             f"one per epoch ({epochs}); the program does not shuffle its buckets the way "
                             f"eval/parity.py expects")
        orders += found
    return orders


def scalar_numpy_sort() -> dict[str, str]:
    """The environment that makes numpy sort with its scalar introsort, as the numpy of the published runs
    did: numpy >= 1.25 sorts with SIMD kernels whose order of equal keys depends on the CPU, which would
    group the program's same-length sentences into other buckets than textvae's ``bucket_order =
    "argsort"`` (docs/data.md). Switching off numpy's optional CPU features leaves torch untouched."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # numpy < 2: its sorts of this size are the scalar introsort
        return {}
    found = [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]
    return {"NPY_DISABLE_CPU_FEATURES": " ".join(found)} if found else {}


def run_reference(job: dict) -> dict:
    finished = finished_reference(job)
    if finished:
        return finished
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           **scalar_numpy_sort(), "PARITY_TORCH_SEED_OFFSET": str(job.get("torch_seed_offset", 0))}
    start = time.perf_counter()
    for step in job["steps"]:
        log = Path(step["log"])
        with open(log, "w") as out:
            rc = subprocess.call(step["cmd"], cwd=job["cwd"], stdout=out, stderr=subprocess.STDOUT, env=env)
        if rc != 0:
            tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
            return {"error": f"{log.name}: exit {rc}: {tail[0][:300]}",
                    "seconds": round(time.perf_counter() - start, 1)}
    seconds = round(time.perf_counter() - start, 1)
    parsed = parse_reference_run(job)
    if not parsed:
        return {"error": f"{Path(job['steps'][-1]['log']).name}: no final test figures", "seconds": seconds}
    return {**parsed, "seconds": seconds}


def run_references(jobs: list[dict], parallel: int) -> list[dict]:
    """Reference programs are not textvae runs: Ray runs them as tasks, one CPU each."""
    import ray

    # Ray starts its workers 15 niceness steps down (to keep its daemons responsive): the programs would
    # then get only the CPU nothing else wants, as textvae sweep's workers would (textvae.sweeps.cluster)
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(address="local", num_cpus=parallel, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1)(run_reference)
        return ray.get([task.remote(j) for j in jobs])
    finally:
        ray.shutdown()


# ---- the textvae side -------------------------------------------------------------------------------------
def sweep_spec(row: str, seeds: list[int], corpus: Path, epochs: int, iw_samples: int, test: int,
               schedule: Path | None, default_pipeline: bool = False, extra: tuple[str, ...] = ()) -> str:
    # the reference programs' buckets (docs/data.md), and with a schedule their order, so both sides
    # train on the same batches in the same order
    sets = [f"data.corpus={json.dumps(str(corpus))}", f"train.epochs={epochs}", f"eval.iw_samples={iw_samples}",
            f"eval.limit={test}", "train.progress=false", "train.tensorboard=false"]
    if not default_pipeline:  # default: the recipe's own buckets and shuffle, what a user's run gets
        sets.append('data.bucket_order="argsort"')
    if schedule is not None:
        sets.append(f"data.batch_schedule={json.dumps(str(schedule))}")
    sets += extra
    return (f"datasets = [\"ptb\"]\nstrategies = {json.dumps([ROWS[row].recipe])}\n"
            f"seeds = {json.dumps(seeds)}\nset = {json.dumps(sets)}\n")


def last_buckets(run: Path, epoch: int, n: int = 6) -> list[int]:
    """Sentence lengths (words) of the last ``n`` buckets the run trained on: with SGD at lr 1 they
    move a short run's final figures by several nats (docs/parity.md)."""
    from textvae.config import RunConfig
    from textvae.data import load_corpus
    from textvae.rundir import RunDir
    from textvae.training.trainer import epoch_batches

    config = RunConfig.load(RunDir(run).config)
    if config.data.batching != "bucket":
        return []
    batches = epoch_batches(config, load_corpus(config.data).splits["train"], epoch - 1)
    return [b.max_words for b in batches[-n:]]


def read_textvae_run(run: Path) -> dict:
    results = json.loads((run / "results.json").read_text())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {"iw_nll": results["nll"], "kl": results["kl"], "mi": results["mi"], "au": results["au"],
            "last_buckets_words": last_buckets(run, records[-1]["epoch"]),
            "train": [{"epoch": r["epoch"], "elbo": r["train"]["elbo"], "kl": r["train"]["kl"]} for r in records],
            "valid": [{"elbo": r["valid"]["elbo"], "kl": r["valid"]["kl"], "mi": r["valid"].get("mi")}
                      for r in records]}


# ---- the reference's model under textvae's evaluator ------------------------------------------------------
def reference_model_file(job: dict) -> Path | None:
    """The model a finished reference run saved (its best validation checkpoint, which it evaluated)."""
    found = [p for p in Path(job["cwd"]).rglob("*.pt") if p.name == "model.pt" or p.parent.parent.name == "models"]
    if len(found) > 1:
        raise SystemExit(f"cross-evaluation: {job['cwd']} holds several saved models: {found}")
    return found[0] if found else None


def program_args(row: Row, job: dict, corpus: Path, iw_samples: int, epochs: int) -> dict:
    """What ``textvae import --args`` reads of one reference run: its seed, sizes, corpus and the row's
    options (``--name value`` pairs; a bare ``--flag`` is true)."""
    args: dict = {"seed": job["seed"], "iw_nsamples": iw_samples, "batch_size": 32, "epochs": epochs,
                  "train_data": str(corpus / "train.txt")}
    items = list(row.args)
    for i, item in enumerate(items):
        if not item.startswith("--"):
            continue
        value = items[i + 1] if i + 1 < len(items) and not items[i + 1].startswith("--") else "true"
        try:
            args[item[2:]] = json.loads(value)
        except json.JSONDecodeError:
            args[item[2:]] = value
    return args


def cross_evaluate(job: dict, row: Row, corpus: Path, iw_samples: int, epochs: int, lines: list[int],
                   work: Path) -> dict:
    """The reference run's saved model imported as a textvae run folder (``textvae import``: the package's
    state-dict mapping) and scored by textvae's evaluator on the first N test lines for each N of
    ``lines``: ``{"iw_nll", "elbo", "kl", "mi", "au"}`` on the most lines, ``"by_lines"`` for each N, or
    ``{"error": ...}``. Cached in WORK/cross/ by run."""
    from textvae.reference.importing import import_reference, score_imported
    from textvae.reference.state_dicts import PROGRAMS

    name = Path(job["cwd"]).name
    cached = work / "cross" / f"{job['row']}-{name}.json"
    if cached.is_file():
        found = json.loads(cached.read_text())
        if sorted(map(int, found.get("by_lines", {}))) == sorted(set(lines)) or "error" in found:
            return found
    model = reference_model_file(job)
    if model is None:
        return {"error": "no saved reference model"}
    out = work / "imported" / job["row"] / name
    args = work / "imported" / job["row"] / f"{name}.args.json"
    try:
        if not (out / "config.json").is_file():
            args.parent.mkdir(parents=True, exist_ok=True)
            args.write_text(json.dumps(program_args(row, job, corpus, iw_samples, epochs)) + "\n")
            # textvae import names a program by its repository's entry in PROGRAMS
            program = next(name for name, repo in PROGRAMS.items() if repo == REFERENCES[row.reference].repo)
            import_reference(program, model, out, args, corpus, row.recipe)
        by_lines = {}
        for n in sorted(set(lines)):
            figures = score_imported(out, limit=n)
            by_lines[str(n)] = {"iw_nll": figures["nll"], "elbo": figures["elbo"], "rec": figures["rec"],
                                "kl": figures["kl"], "mi": figures["mi"], "au": figures["au"]}
    except TextVAEError as e:
        return {"error": f"cross-evaluation: {e}"}
    found = {**by_lines[str(max(lines))], "lines": max(lines), "by_lines": by_lines}
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(found) + "\n")
    return found


# ---- comparison -------------------------------------------------------------------------------------------
def summary(runs: list[dict], key: str) -> dict:
    values = [r[key] for r in runs]
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def seeds_wanted(metric: dict) -> str:
    """What a "not shown" metric lacks: the seeds its observed spread would need, or a second seed when
    one seed gives no interval."""
    if metric["diff_ci90"] is None:
        return "needs a second seed (one gives no interval)"
    return f"needs {metric['seeds_needed'] or '>' + str(MAX_SEEDS)} seeds"


def judge(record: dict, language_model: bool = False, paired: bool = True) -> dict:
    """The record with its verdict (textvae.reference.verdict, docs/parity.md): per metric the paired
    differences textvae − reference over the seeds both sides finished, their mean, 90 % and 95 %
    intervals and verdict against the fixed margin; the row's verdict, and beside it the IW-NLL's
    ``margin`` and ``diff_ci90``."""
    ref = {r["seed"]: r for r in record["reference"]["runs"]}
    ours = {r["seed"]: r for r in record["textvae"]["runs"]}
    seeds = [s for s in record["seeds"] if s in ref and s in ours]
    if not paired:
        keys = ("iw_nll",) if language_model or record.get("recipe") == "lstm-lm" else tuple(MARGINS)
        metrics = {k: unpaired_verdict([float(r[k]) for r in ours.values()], [float(r[k]) for r in ref.values()],
                                       MARGINS[k]) for k in keys}
        return {**record, "verdict": row_verdict(metrics), "paired_seeds": [], "metrics": metrics,
                "margin": MARGINS["iw_nll"], "diff_ci90": metrics["iw_nll"]["diff_ci90"], "explanation": "unpaired"}
    if not seeds:
        return {**record, "verdict": "not run", "paired_seeds": [],
                "explanation": "; ".join(record["reference"].get("errors", [])) or "missing runs"}
    keys = ("iw_nll",) if language_model or record.get("recipe") == "lstm-lm" else tuple(MARGINS)
    metrics = {k: paired_verdict([float(ours[s][k]) - float(ref[s][k]) for s in seeds], MARGINS[k]) for k in keys}
    unshown = [f"{k} {seeds_wanted(m)}" for k, m in metrics.items() if m["verdict"] == "not shown"]
    differing = [k for k, m in metrics.items() if m["verdict"] == "differs"]
    why = "; ".join(([f"differs on {', '.join(differing)}"] if differing else [])
                    + ([f"not shown: {', '.join(unshown)}"] if unshown else []))
    return {**record, "verdict": row_verdict(metrics), "paired_seeds": seeds, "metrics": metrics,
            "margin": MARGINS["iw_nll"], "diff_ci90": metrics["iw_nll"]["diff_ci90"],
            "explanation": why}


def test_lines(meta: dict) -> str:
    found = re.search(r"/ (\d+) test lines", meta["corpus"])
    return found[1] if found else "the"


def scoring_note(meta: dict) -> list[str]:
    own = meta.get("reference_test_lines")
    if own is not None and str(own) != test_lines(meta):
        return [f"All figures are scored on the first {test_lines(meta)} PTB test lines by textvae's evaluator, "
                "the reference's models imported (`textvae import`); each program scored its own model on the "
                f"first {own} lines, set beside textvae's figures on those lines at the end."]
    return [f"All figures are scored on the first {test_lines(meta)} PTB test lines. MI: the reference "
            "programs' per-batch estimator against textvae's `eval.mi_estimator` (the recipes' whole-set "
            "estimator), so an MI difference may be the estimators'."]


def verdict_table(records: list[dict]) -> list[str]:
    """Per row and metric: seeds, mean paired difference, its 90 % interval and the verdict."""
    names = {"iw_nll": "IW-NLL", "kl": "KL", "mi": "MI", "au": "AU"}
    lines = ["| row | seeds | " + " | ".join(f"{n}: Δ [90 % CI] (±margin) verdict" for n in names.values())
             + " | row verdict |", "|---|---|" + "---|" * len(names) + "---|"]
    for rec in records:
        cells = []
        for key in names:
            m = rec.get("metrics", {}).get(key)
            if m is None:
                cells.append("—")
                continue
            ci = "[{:+.2f}, {:+.2f}]".format(*m["diff_ci90"]) if m["diff_ci90"] else "—"
            need = f", {seeds_wanted(m)}" if m["verdict"] == "not shown" else ""
            cells.append(f"{m['mean']:+.2f} {ci} (±{m['margin']:g}) {m['verdict']}{need}")
        lines.append(f"| {rec['row']} | {len(rec.get('paired_seeds', []))} | " + " | ".join(cells)
                     + f" | **{rec['verdict']}** |")
    return lines


BATCH_ORDER_TEXT = {
    "reference": "Batch order: textvae trains on the reference's buckets in each reference run's own order "
                 "(recorded from that run; `data.batch_schedule`).",
    "seeded": "Batch order: the reference's buckets, in textvae's shuffle of each seed.",
    "default": "Batch order: textvae's recipe as a user runs it (its own bucket contents and shuffle); the two "
               "sides are not paired, so the verdict compares the two sets of seeds (Welch).",
}


def render(records: list[dict], meta: dict) -> str:
    lines = ["# Parity: textvae beside the reference code", "",
             f"Corpus: {meta['corpus']}. Model: {meta['model']}. Budget: {meta['epochs']} epochs, SGD lr 1, clip 5, "
             f"batch 32; IW-NLL with K = {meta['iw_samples']} on the test lines. Seeds: {meta['seeds']}. "
             f"Machine: {meta['machine']}. "
             + (f"Wall time: {meta['wall_minutes']} min." if meta["wall_minutes"] is not None
                else "Merged from the invocations below (`--merge`)." if meta.get("merged_from")
                else "Collected from earlier invocations (`--collect`): no wall time."), "",
             *([BATCH_ORDER_TEXT[meta.get("batch_order", "seeded")], ""]  # records before the option were seeded
               if not meta.get("merged_from") else []),
             *merged_sources(meta.get("merged_from", [])),
             "Verdict rule (docs/parity.md): paired differences textvae − reference (same seed, same batch order), "
             "margins fixed in advance: ±1 nat IW-NLL, ±0.5 nat KL and MI, ±3 AU. `equivalent`: the 90 % interval "
             "of the mean difference lies inside the margin (two one-sided tests); `differs`: the 95 % interval "
             "excludes 0 and the mean is outside the margin; else `not shown`, with the seeds the observed spread "
             "would need. A row is `equivalent` when every metric is, `differs` when one does.",
             "", *(scoring_note(meta)), "",
             *verdict_table(records), "",
             "| row | reference | side | IW-NLL | KL | MI | AU | train −ELBO / KL per epoch | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for rec in records:
        for side in ("reference", "textvae"):
            runs = rec[side]["runs"]
            if not runs:
                cells = ["—"] * 5
            else:
                def cell(key: str, fmt: str = ".2f") -> str:
                    s = summary(runs, key)
                    return f"{s['mean']:{fmt}} ± {s['sd']:{fmt}}"
                per_epoch = " · ".join(
                    f"{statistics.fmean(r['train'][e]['elbo'] for r in runs):.1f} / "
                    f"{statistics.fmean(r['train'][e]['kl'] for r in runs):.2f}"
                    for e in range(min(len(r["train"]) for r in runs)))
                cells = [cell("iw_nll"), cell("kl"), cell("mi"), cell("au", ".1f"), per_epoch]
            reference = rec["reference"]
            ref_name = reference["repo"] + " " + reference["script"] if side == "reference" else "textvae sweep"
            why = rec["explanation"]
            # the explanation of a verdict may begin with it ("not shown: iw_nll needs 7 seeds")
            explained = why if why.startswith(rec["verdict"]) else rec["verdict"] + (f": {why}" if why else "")
            verdict_cell = explained if side == "textvae" else ""
            lines.append(f"| {rec['row'] if side == 'reference' else ''} | {ref_name} | {side} | " + " | ".join(cells)
                         + f" | {verdict_cell} |")
    lines += ["", "Per seed. With SGD at lr 1 a short run's final figures depend on the lengths of the last buckets it "
              "trained on (one update on four-word sentences cost textvae's BN-VAE 8.4 nats of validation "
              "reconstruction; "
              "docs/parity.md); each side's last six are listed.", "",
              "| row | seed | reference IW-NLL / KL | textvae IW-NLL / KL | reference's last buckets (words) | "
              "textvae's last buckets (words) |",
              "|---|---|---|---|---|---|"]
    for rec in records:
        ref_runs = {r.get("seed"): r for r in rec["reference"]["runs"]}
        ours = {r.get("seed"): r for r in rec["textvae"]["runs"]}
        for seed in rec["seeds"]:
            r, o = ref_runs.get(seed), ours.get(seed)
            lines.append(f"| {rec['row']} | {seed} | " + (f"{r['iw_nll']:.2f} / {r['kl']:.2f}" if r else "—") + " | "
                         + (f"{o['iw_nll']:.2f} / {o['kl']:.2f}" if o else "—") + " | "
                         + (", ".join(map(str, r.get("last_buckets_words", []))) if r else "") + " | "
                         + (", ".join(map(str, o.get("last_buckets_words", []))) if o else "") + " |")
    crossed = [(rec["row"], r) for rec in records for r in rec["reference"]["runs"] if "textvae_eval" in r]
    if crossed:
        lines += ["", "The reference's own saved model scored by textvae's evaluator (`--cross-eval`): where the two "
                  "evaluators agree, a gap in the table above comes from training, not from evaluation.", "",
                  "| row | seed | reference evaluator: IW-NLL / KL | textvae evaluator: IW-NLL / KL | Δ IW-NLL |",
                  "|---|---|---|---|---|"]
        for row, r in crossed:
            t = r["textvae_eval"]
            # the program's own figures, and textvae's on the same test lines
            own = r.get("own", r)
            if "error" not in t and "own" in r:
                t = t["by_lines"][str(r["own"]["lines"])]
            if "error" in t:
                lines.append(f"| {row} | {r['seed']} | {own['iw_nll']:.2f} / {own['kl']:.2f} | {t['error']} | |")
            else:
                lines.append(f"| {row} | {r['seed']} | {own['iw_nll']:.2f} / {own['kl']:.2f} | {t['iw_nll']:.2f} / "
                             f"{t['kl']:.2f} | {t['iw_nll'] - own['iw_nll']:+.2f} |")
    errors = [(rec["row"], e) for rec in records for e in rec["reference"].get("errors", [])]
    if errors:
        lines += ["", "Reference runs without results:", ""] + [f"- {row}: {e}" for row, e in errors]
    lines += ["", "Compatibility patches applied to the scratch copies (never to the clones):", ""]
    lines += [f"- {p}" for p in meta["patches"]] or ["- none"]
    if "batch_order" in meta:
        lines += ["", "Each program runs under `eval/record_orders.py`, which logs every `numpy.random.permutation` it "
                  "draws and passes it on unchanged; its training buckets' permutations are the batch schedule of "
                  "textvae's run of the same seed."]
    lines += ["", "Reference training figures are the means of the program's own progress reports within each epoch "
              "(its iteration-0 report, one batch, left out); textvae's are epoch means from metrics.jsonl.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ptb", type=Path, help="folder with PTB train.txt, valid.txt, test.txt")
    p.add_argument("--reference", action="append", default=[], metavar="NAME=PATH",
                   help=f"a reference clone; NAME one of {', '.join(REFERENCES)}")
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    p.add_argument("--seeds", type=int, nargs="+", default=[783435, 101, 202],
                   help="three by default: one unlucky final update moves a seed by several nats (docs/parity.md)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-lines", type=int, default=10000)
    p.add_argument("--valid-lines", type=int, default=1000)
    p.add_argument("--test-lines", type=int, default=200)
    p.add_argument("--iw-samples", type=int, default=100)
    p.add_argument("--reference-test-lines", type=int, metavar="N",
                   help="the reference programs score their own model on the first N test lines only (their "
                        "IW-NLL takes one sentence at a time: on 1,000 lines it costs as much as training); "
                        "both sides are then compared on textvae's evaluator over --test-lines (implies "
                        "--cross-eval, which also scores each reference model on the N lines)")
    p.add_argument("--jobs", type=int, default=2, help="runs at once (one CPU thread each)")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "parity", help="scratch copies, logs, run folders")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--render", action="store_true",
                   help="run nothing: re-judge the records of parity.json (the verdict rule of docs/parity.md) "
                        "and re-render parity.md")
    p.add_argument("--cross-eval", action="store_true",
                   help="also evaluate each finished reference run's saved model with textvae's evaluator (through "
                        "textvae import)")
    p.add_argument("--batch-order", choices=["reference", "seeded", "default"], default="reference",
                   help="reference: textvae trains on each reference run's own order of the buckets (recorded from "
                        "its run); seeded: on textvae's shuffle of the seed; default: the recipe as a user runs it "
                        "(its own bucket contents and shuffle; judged unpaired) (docs/parity.md)")
    p.add_argument("--textvae-set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for every textvae run (e.g. data.bucket_order=\"random\" for the "
                        "bucket-order A/B); give --label too")
    p.add_argument("--label", default="", help="name of the textvae sweep folder (textvae-LABEL), so runs of "
                   "another --textvae-set or --batch-order do not share it")
    p.add_argument("--merge", type=Path, nargs="+", metavar="DIR",
                   help="run nothing: combine the parity.json of earlier --out folders into --out (a row found in "
                        "several: the last folder's)")
    p.add_argument("--reference-torch-seed-offset", type=int, default=0, metavar="N",
                   help="the reference programs seed torch with seed + N (numpy, hence the batch order, keeps the "
                        "seed): with --reference-only, the reference's second run of each seed for the noise floor "
                        "(eval/side_ab.py)")
    p.add_argument("--reference-only", action="store_true", help="run the reference programs only")
    p.add_argument("--collect", action="store_true",
                   help="run nothing: record what earlier invocations finished (unfinished runs count as not run)")
    a = p.parse_args(argv)

    if a.render:
        data = json.loads((a.out / "parity.json").read_text())
        paired = data["meta"].get("batch_order") != "default"
        data["rows"] = [judge(r, paired=paired) if r["verdict"] != "not run" else r for r in data["rows"]]
        (a.out / "parity.json").write_text(json.dumps(data, indent=1) + "\n")
        (a.out / "parity.md").write_text(render(data["rows"], data["meta"]))
        return
    if a.merge:
        data = merge(a.merge)
        data["rows"] = [judge(r) if r["verdict"] != "not run" else r for r in data["rows"]]
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "parity.json").write_text(json.dumps(data, indent=1) + "\n")
        (a.out / "parity.md").write_text(render(data["rows"], data["meta"]))
        return
    clones = {}
    for item in a.reference:
        name, _, path = item.partition("=")
        if name not in REFERENCES or not path:
            raise SystemExit(f"--reference {item!r}: expected NAME=PATH with NAME one of {', '.join(REFERENCES)}")
        if not Path(path).expanduser().is_dir():
            raise SystemExit(f"--reference {item!r}: {path} is not a folder")
        clones[name] = Path(path).expanduser().resolve()
    if a.ptb is None:
        raise SystemExit("--ptb: the folder of the PTB release is required")
    for row in a.rows:
        if ROWS[row].reference not in clones:
            raise SystemExit(f"--rows {row}: needs --reference {ROWS[row].reference}=PATH (a clone of "
                             f"{REFERENCES[ROWS[row].reference].repo})")

    started = time.time()
    work = a.work.resolve()
    corpus = work / "corpus"
    sizes = make_corpus(a.ptb, corpus, a.train_lines, a.valid_lines, a.test_lines)
    own_lines = a.reference_test_lines or sizes["test"]
    if not 0 < own_lines <= sizes["test"]:
        raise SystemExit(f"--reference-test-lines {own_lines}: between 1 and --test-lines ({sizes['test']})")
    short = own_lines < sizes["test"]
    # the reference programs' corpus: the same training and validation files, the test file cut to its N lines
    ref_corpus = work / f"corpus-test{own_lines}" if short else corpus
    if short:
        make_corpus(a.ptb, ref_corpus, a.train_lines, a.valid_lines, own_lines)
        a.cross_eval = True
    from textvae import recipes
    from textvae.data.schedule import write_schedule

    model = recipes.resolve("ptb", "vae").model
    model_d = {k: getattr(model, k) for k in ("embed_dim", "enc_hidden", "dec_hidden", "latent_dim",
                                              "dec_dropout_in", "dec_dropout_out")}

    jobs, patches = [], set()
    for row_name in a.rows:
        row = ROWS[row_name]
        for seed in a.seeds:
            scratch = work / "reference" / row_name / (f"seed{seed}" + (f"-torch{a.reference_torch_seed_offset}"
                                                                      if a.reference_torch_seed_offset else "")
                                                         + (f"-test{own_lines}" if short else ""))
            patches.update(prepare_reference(clones[row.reference], row.reference, scratch))
            write_reference_config(scratch, ref_corpus, model_d, a.epochs)
            steps = reference_steps(row, seed, a.iw_samples, scratch)
            jobs.append({"row": row_name, "seed": seed, "cwd": str(scratch), "steps": steps,
                         "language_model": row.language_model,
                         "torch_seed_offset": a.reference_torch_seed_offset})
    records = []
    # row by row, its reference runs and then its textvae runs: an invocation stopped part-way leaves
    # complete pairs for the rows it reached
    for row_name in a.rows:
        row = ROWS[row_name]
        row_jobs = [j for j in jobs if j["row"] == row_name]
        if a.collect:
            found = [finished_reference(j) or {"error": "not finished"} for j in row_jobs]
        else:
            print(f"reference {row_name}: {len(row_jobs)} runs", flush=True)
            found = run_references(row_jobs, a.jobs)
        buckets = training_buckets(corpus, row.recipe)
        ref_runs, errors, orders = [], [], {}
        for job, res in zip(row_jobs, found):
            if "error" in res:
                errors.append(f"seed {job['seed']}: {res['error']}")
                continue
            orders[job["seed"]] = reference_orders(job, len(buckets), a.epochs)
            trained = [buckets[i] for i in orders[job["seed"]][-1] if buckets[i] is not None]
            ref_runs.append({"seed": job["seed"], **res, "last_buckets_words": trained[-6:]})
        schedule = None
        if a.batch_order == "reference" and orders:
            # one file per seed set: an invocation for other seeds never rewrites a file that an earlier run's
            # config names, so that run still resumes
            schedule = work / "schedules" / f"{row_name}-{'-'.join(map(str, sorted(orders)))}.json"
            schedule.parent.mkdir(parents=True, exist_ok=True)
            write_schedule(schedule, len(buckets), orders, f"{REFERENCES[row.reference].repo} {programs(row)}: "
                           f"its numpy.random.permutation of the {len(buckets)} training buckets, one per epoch")
        sweep_dir = work / ("textvae" + (f"-{a.label}" if a.label else "")) / row_name
        seeds = [seed for seed in a.seeds if a.batch_order != "reference" or seed in orders]
        if not a.collect and seeds and not a.reference_only:
            spec = work / f"textvae{'-' + a.label if a.label else ''}_{row_name}.toml"
            spec.write_text(sweep_spec(row_name, seeds, corpus, a.epochs, a.iw_samples, a.test_lines, schedule,
                                       a.batch_order == "default", tuple(a.textvae_set)))
            print(f"textvae: textvae sweep {spec}", flush=True)
            # --cpus: the textvae side runs as many programs at once as the reference side (--jobs)
            subprocess.run([*TEXTVAE, "sweep", str(spec), "--out", str(sweep_dir), "--cpus-per-run", "1",
                            "--cpus", str(a.jobs), "--no-progress"], check=False)
        ours = []
        for seed in a.seeds:
            run = sweep_dir / "runs" / "ptb" / row.recipe / f"seed{seed}"
            if (run / "results.json").is_file():
                ours.append({"seed": seed, **read_textvae_run(run)})
        if a.cross_eval:
            for i, ref_run in enumerate(ref_runs):
                job = next(j for j in row_jobs if j["seed"] == ref_run["seed"])
                ref_run["textvae_eval"] = cross_evaluate(job, row, corpus, a.iw_samples, a.epochs,
                                                         [own_lines, sizes["test"]], work)
                if short and "error" not in ref_run["textvae_eval"]:
                    # compared on textvae's evaluator over every test line; the program's own figures
                    # (its N lines) are kept beside textvae's on the same lines
                    own = {k: ref_run[k] for k in ("iw_nll", "kl", "mi", "au", "rec") if k in ref_run}
                    ref_runs[i] = {**ref_run, **{k: ref_run["textvae_eval"][k] for k in own},
                                   "own": {**own, "lines": own_lines}}
                elif short:
                    errors.append(f"seed {ref_run['seed']}: {ref_run['textvae_eval']['error']}")
            if short:
                ref_runs = [r for r in ref_runs if "own" in r]
        if len(ref_runs) == len(a.seeds) and len(ours) == len(a.seeds):
            v, why = "", ""
        else:
            v, why = "not run", "; ".join(errors) or "missing runs"
        records.append({"row": row.label, "recipe": row.recipe, "seeds": a.seeds,
                        "reference": {"repo": REFERENCES[row.reference].repo, "script": programs(row),
                                      "args": list(row.args), "runs": ref_runs, "errors": errors,
                                      **({"pretrain_args": list(row.pretrain[1])} if row.pretrain else {})},
                        "textvae": {"recipe": row.recipe, "runs": ours}, "verdict": v, "explanation": why})
        if v != "not run":
            records[-1] = judge(records[-1], row.language_model, paired=a.batch_order != "default")
    meta = {"corpus": f"PTB, first {sizes['train']} train / {sizes['valid']} valid / {sizes['test']} test lines",
            "model": f"emb {model.embed_dim}, LSTM {model.enc_hidden}/{model.dec_hidden}, z {model.latent_dim}",
            "epochs": a.epochs, "iw_samples": a.iw_samples, "seeds": a.seeds, "patches": sorted(patches),
            "batch_order": a.batch_order, "reference_torch_seed_offset": a.reference_torch_seed_offset,
            "reference_test_lines": own_lines,
            "machine": machine()["cpu"],
            "wall_minutes": (earlier_wall_minutes(a.out, records) if a.collect
                             else round((time.time() - started) / 60, 1))}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "parity.json").write_text(json.dumps({"meta": meta, "rows": records}, indent=1) + "\n")
    (a.out / "parity.md").write_text(render(records, meta))
    print((a.out / "parity.md").read_text())


def merge(folders: list[Path]) -> dict:
    """One parity.json from those of several invocations on the same corpus, model and budget; a row found
    in several folders is taken from the last. Each record keeps the folder it came from."""
    rows: dict[str, dict] = {}
    meta, sources, patches = None, [], set()
    for folder in folders:
        path = folder / "parity.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise SystemExit(f"--merge {folder}: cannot read {path.name} ({e})") from None
        m = data["meta"]
        for key in ("corpus", "model", "epochs", "iw_samples") if meta is not None else ():
            if m[key] != meta[key]:
                raise SystemExit(f"--merge {folder}: its {key} ({m[key]}) differs from {sources[0]['folder']}'s "
                                 f"({meta[key]})")
        meta = meta or m
        patches.update(m["patches"])
        sources.append({"folder": folder.name, "rows": [r["row"] for r in data["rows"]], "seeds": m["seeds"],
                        "batch_order": m.get("batch_order", "seeded"), "wall_minutes": m.get("wall_minutes"),
                        "machine": m["machine"]})
        for record in data["rows"]:
            rows[record["row"]] = {**record, "source": folder.name}
    assert meta is not None
    seeds = list(dict.fromkeys(s for r in rows.values() for s in r["seeds"]))
    merged = {**meta, "seeds": seeds, "wall_minutes": None, "merged_from": sources, "patches": sorted(patches)}
    merged.pop("batch_order", None)
    return {"meta": merged, "rows": list(rows.values())}


def merged_sources(sources: list[dict]) -> list[str]:
    if not sources:
        return []
    lines = ["| invocation | rows | seeds | batch order | wall time |", "|---|---|---|---|---|"]
    for s in sources:
        wall = f"{s['wall_minutes']} min" if s["wall_minutes"] is not None else "—"
        lines.append(f"| `{s['folder']}` | {', '.join(s['rows'])} | {', '.join(map(str, s['seeds']))} | "
                     f"{s['batch_order']} | {wall} |")
    return lines + [""]


def earlier_wall_minutes(out: Path, records: list[dict]) -> float | None:
    """A re-collection keeps the wall time of the invocation that ran the same rows and seeds."""
    try:
        earlier = json.loads((out / "parity.json").read_text())
    except (OSError, ValueError):
        return None
    same = [(r["row"], r["seeds"]) for r in earlier.get("rows", [])] == [(r["row"], r["seeds"]) for r in records]
    return earlier.get("meta", {}).get("wall_minutes") if same else None


if __name__ == "__main__":
    main()

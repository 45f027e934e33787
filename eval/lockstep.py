"""Lockstep parity: textvae and a reference program from the same initial weights, on the same
batches, with the same (zero) noise, compared update by update over one epoch.

    python -m eval.lockstep --ptb PATH/ptb --reference bn-vae=~/src/bn-vae --rows bn-vae \\
        --train-lines 2000 --work runs/lockstep

Per row: the reference program runs its first epoch under eval/lockstep_reference.py (run-time
patches of its own objects in a scratch copy: posterior sample = mean, decoder dropout 0 through its
config module, initial weights, per-update log, full training state before ≥ 10 updates spread over
the epoch and after each). textvae's recipe of the row is built with decoder dropout 0, the reference's
buckets in the reference run's order (``data.batch_schedule``) and zero reparameterisation noise, and:

- **re-synchronised steps**: at each dumped update, the reference's exact state is loaded into
  textvae (textvae.reference.state_dicts), textvae's batch at that position is checked to hold the
  reference's token ids, one update is taken (``Trainer.train_step``), and the loss terms, the KL
  weight, the gradient norm per module before and after clipping and each tensor's update are
  compared with the reference's (relative differences; acceptance 1e-5);
- **free-running curves**: from the reference's initial weights textvae trains the epoch on its own;
  the first update where any of the per-update figures (reconstruction, KL, KL weight, learning rate,
  gradient norm) differs by more than 1e-3 relative, beside the same for textvae against itself with
  two (and three, four) torch threads instead of one (``--self-check``).

Writes ``OUT/lockstep.json`` (``{"rows": [...]}``), ``OUT/lockstep.md`` and both sides' per-update
curves by row in ``OUT/lockstep_curves.json.gz`` (gzip: they are most of the bytes); a row whose reference log
and textvae comparison exist is not run again (``--render`` only re-renders). See docs/parity.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from eval import parity  # corpus, scratch copies, rows, numpy's scalar sort
from textvae import recipes
from textvae.data.schedule import write_schedule
from textvae.reference.state_dicts import reference_to_textvae, textvae_only
from textvae.training.callbacks import Callback
from textvae.training.environment import machine

ROOT = Path(__file__).resolve().parent.parent

RESULTS = ROOT / "eval" / "results" / "parity"
ACCEPT = 1e-5
"""Re-synchronised updates: relative agreement required (float32 sums in another order differ by ~1e-7)."""
PARTED = 1e-3
"""Free-running curves: the relative difference at which two runs count as parted."""
SELF_THREADS = (2, 3, 4)
"""``--self-check``: textvae on one thread against itself on each of these thread counts. A thread count
changes the order of floating-point sums, as another program's code does; each is one draw of how soon
such a rounding-sized difference grows past PARTED. (Perturbing every initial weight by 1e-7 instead
parts the runs within 4 updates: the KL of a near-collapsed posterior, ~1e-5 nats, is a cancellation
residue that a perturbation of every log-variance weight moves by 1e-3 of itself at once, while the
two programs start bit-identical.)"""
ROWS = ("kl-annealing", "bn-vae", "du-vae", "vae", "beta-vae", "free-bits", "cyclical", "delta-vae", "lstm-lm",
        "pretrain-fb")
"""Rows in the order they are worth running (Agg-VAE's inner loop draws batches with numpy's generator,
which no batch schedule follows)."""
CURVE_KEYS = ("rec", "kl", "kl_weight", "lr", "grad")


@dataclass(frozen=True)
class Part:
    """One program of a row, run in lockstep against one stage of textvae's run of the row's recipe."""

    name: str
    """'' for a one-program row, else the stage's name (textvae's ``Stage.name``)."""
    stage: int
    script: str
    args: tuple[str, ...]
    loads: str = ""
    """The name of the earlier part whose final model the program starts from (``--load_path``)."""


def parts(row: parity.Row) -> list[Part]:
    """A row's programs in the order they run: a two-program row (encoder pretraining, then the VAE from
    its model) is compared stage by stage, each stage from the reference's own state at its start."""
    if row.pretrain is None:
        return [Part("", 0, row.script, row.args)]
    script, args = row.pretrain
    return [Part("pretrain", 0, script, args), Part("vae", 1, row.script, row.args, loads="pretrain")]


def rel(a: float, b: float) -> float:
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(b), 1e-12)


# ---- the reference side -----------------------------------------------------------------------------
def dump_steps(updates: int, n: int) -> list[int]:
    """``n`` updates (1-based) spread evenly over an epoch of ``updates``, the last one excluded (its
    successor state is the epoch's end)."""
    n = min(n, updates - 1)
    return sorted({1 + round(i * (updates - 2) / max(n - 1, 1)) for i in range(n)})


def run_reference(
    row: parity.Row, part: Part, clone: Path, corpus: Path, seed: int, steps: list[int], out: Path, model: dict,
    load: Path | None = None,
) -> None:
    if (out / "done.json").is_file():
        return
    scratch = out / "scratch"
    parity.prepare_reference(clone, row.reference, scratch)
    parity.write_reference_config(
        scratch, corpus, {**model, "dec_dropout_in": 0.0, "dec_dropout_out": 0.0}, 1
    )
    args = (*part.args, "--load_path", str(load)) if load is not None else part.args
    cmd = parity.program_command(row, part.script, args, seed, 100, scratch / "exp", out / "orders.jsonl")
    cmd = [
        sys.executable,
        str(ROOT / "eval" / "lockstep_reference.py"),
        str(out),
        ",".join(map(str, steps)),
        *cmd[3:],
    ]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        **parity.scalar_numpy_sort(),
    }
    with open(out / "reference.log", "w") as log:
        rc = subprocess.call(cmd, cwd=scratch, stdout=log, stderr=subprocess.STDOUT, env=env)
    if rc != 0:
        raise SystemExit(f"{part.script} exit {rc}; see {out / 'reference.log'}")
    (out / "done.json").write_text(json.dumps({"steps": steps, "cmd": cmd}) + "\n")


def reference_curve(out: Path) -> list[dict]:
    return [
        json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines() if line.strip()
    ]


# ---- the textvae side -------------------------------------------------------------------------------------
@contextlib.contextmanager
def zero_noise():
    """textvae's reparameterisation draws ``torch.randn_like``; zero it, as the reference's sample is
    patched to its mean."""
    draw = torch.randn_like
    torch.randn_like = lambda t, *a, **k: torch.zeros_like(t, *a, **k)
    try:
        yield
    finally:
        torch.randn_like = draw


class GradNorms:
    """Records, at every clip, the gradient norm per reference module before and after clipping."""

    def __init__(self, model: torch.nn.Module):
        self.names = {id(p): n for n, p in model.named_parameters()}
        self.records: list[dict] = []
        self.clip = torch.nn.utils.clip_grad_norm_

    def norms(self, params: list) -> dict:
        found: dict[str, float] = {}
        for p in params:
            if p.grad is not None:
                module = self.names[id(p)].split(".")[0]
                module = (
                    "encoder" if module == "strategy" else module
                )  # BN on the mean: the reference's encoder
                found[module] = found.get(module, 0.0) + float(
                    p.grad.detach().double().pow(2).sum()
                )
        found["all"] = sum(found.values())
        return {k: math.sqrt(v) for k, v in found.items()}

    def __call__(self, params, max_norm, *a, **k):
        params = list(params)
        before = self.norms(params)
        total = self.clip(params, max_norm, *a, **k)
        self.records.append({"grad_before": before, "grad_after": self.norms(params)})
        return total

    def __enter__(self):
        torch.nn.utils.clip_grad_norm_ = self
        return self

    def __exit__(self, *exc):
        torch.nn.utils.clip_grad_norm_ = self.clip


class StepLog(Callback):
    """A trainer callback keeping each update's figures (``Update.scalars``)."""

    def __init__(self):
        self.records: list[dict] = []

    def on_update_end(self, trainer, update) -> None:
        self.records.append(dict(update.scalars))


def textvae_config(row: parity.Row, corpus: Path, schedule: Path, seed: int, overrides: list[str]):
    sets = [
        f"data.corpus={json.dumps(str(corpus))}",
        'data.bucket_order="argsort"',
        f"data.batch_schedule={json.dumps(str(schedule))}",
        "model.dec_dropout_in=0.0",
        "model.dec_dropout_out=0.0",
        "train.epochs=1",
        "train.progress=false",
        "train.tensorboard=false",
        'train.device="cpu"',
        *overrides,
    ]
    return recipes.resolve("ptb", row.recipe, sets, seed=seed)


def trainer_from(config, initial: dict, run: Path, callbacks: tuple = (), stage: int = 0):
    """textvae's trainer of ``config`` at the start of ``stage``, holding the reference's weights."""
    from textvae.training.trainer import Trainer

    trainer = Trainer(config, run, callbacks=callbacks)
    if stage:
        trainer._start_stage(stage)  # the stage's optimisers, schedules and strategy hooks
    state = reference_to_textvae(
        initial,
        trainer.model.state_dict(),
        config_recipe(config),
        keep=textvae_only(config_recipe(config)),
    )
    trainer.model.load_state_dict(state)
    return trainer


def config_recipe(config) -> str:
    return config.name.split("/")[-1]


def free_run(config, initial: dict, run: Path, threads: int, stage: int = 0) -> list[dict]:
    """One epoch of textvae from the reference's initial weights; per update its figures."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        log = StepLog()
        trainer = trainer_from(config, initial, run, callbacks=(log,), stage=stage)
        with zero_noise(), GradNorms(trainer.model) as grads:
            trainer.run_epoch()
    finally:
        torch.set_num_threads(previous)
    return [
        {
            "step": i + 1,
            "rec": r["rec"],
            "kl": r["kl"],
            "kl_weight": r["kl_weight"],
            "lr": trainer.state.lr,
            **g,
        }
        for i, (r, g) in enumerate(zip(log.records, grads.records))
    ]


def first_parting(a: list[dict], b: list[dict]) -> tuple[int | None, str]:
    """The first update at which any curve figure of ``a`` differs from ``b``'s by more than PARTED."""
    for x, y in zip(a, b):
        for key in CURVE_KEYS:
            u, v = (
                (x["grad_before"]["all"], y["grad_before"]["all"])
                if key == "grad"
                else (x[key], y[key])
            )
            if u is None or v is None:
                continue
            if rel(u, v) > PARTED:
                return x["step"], key
    return None, ""


def resync(
    config, initial: dict, out: Path, steps: list[int], run: Path, ref_curve: list[dict], stage: int = 0
) -> list[dict]:
    """Per dumped update: load the reference's state, take textvae's update, compare."""
    recipe = config_recipe(config)
    trainer = trainer_from(config, initial, run, stage=stage)
    batches = trainer.epoch_batches(0)
    ctx = trainer.ctx
    ctx.epoch, ctx.training, ctx.epoch_updates = 0, True, len(batches)
    trainer.model.strategy.on_epoch_start(ctx)
    by_step = {r["step"]: r for r in ref_curve}
    found = []
    for k in steps:
        before = torch.load(out / f"state_{k}.pt", weights_only=False)
        after = torch.load(out / f"state_{k + 1}.pt", weights_only=False)
        keep = textvae_only(recipe)
        start = reference_to_textvae(before["state"], trainer.model.state_dict(), recipe, keep=keep)
        trainer.model.load_state_dict(start)
        target = reference_to_textvae(after["state"], trainer.model.state_dict(), recipe, keep=keep)
        batch = batches[k - 1]
        same_batch = torch.equal(batch.tokens, before["batch"])
        ctx.step = ctx.epoch_step = k - 1
        with zero_noise(), GradNorms(trainer.model) as grads:
            terms = trainer.train_step(batch)
        mine = trainer.model.state_dict()
        params, updates = {}, {}
        for name, old in start.items():
            if not old.is_floating_point():
                continue
            want = target[name] - old
            diff = float((mine[name] - target[name]).double().norm())
            params[name] = (
                0.0 if diff == 0 else diff / max(float(target[name].double().norm()), 1e-12)
            )
            # an update read as new − old carries float32 rounding of the parameters (2^-24 relative each)
            beyond = diff - 2.0**-23 * float(target[name].double().norm())
            updates[name] = max(beyond, 0.0) / max(float(want.double().norm()), 1e-12)
        ref = by_step[k]
        ours = {
            "rec": float(terms.rec.detach().mean()),
            "kl": float(terms.kl.detach().mean()),
            "kl_weight": ctx.kl_weight,
            "lr": trainer.state.lr,
        }
        # a program that computes its loss itself does not show its KL weight (None)
        figures = {
            key: rel(value, ref[key]) for key, value in ours.items() if ref.get(key) is not None
        }
        for when in ("grad_before", "grad_after"):
            for module, value in ref[when].items():
                figures[f"{when}.{module}"] = rel(grads.records[-1][when].get(module, 0.0), value)
        worst_param, worst_update = max(params, key=params.get), max(updates, key=updates.get)
        found.append(
            {
                "step": k,
                "same_batch": same_batch,
                "figures": figures,
                "max_rel_figures": max(figures.values()),
                "max_rel_param": params[worst_param],
                "worst_param": worst_param,
                "max_rel_update": updates[worst_update],
                "worst_update": worst_update,
                "params_over_accept": sorted(n for n, v in params.items() if v > ACCEPT),
                "updates_over_accept": sorted(n for n, v in updates.items() if v > ACCEPT),
            }
        )
        print(
            f"  step {k}: figures {max(figures.values()):.2e}, parameters {params[worst_param]:.2e} "
            f"({worst_param}), update beyond rounding {updates[worst_update]:.2e} ({worst_update}), "
            f"batch {'same' if same_batch else 'DIFFERENT'}",
            flush=True,
        )
    return found


# ---- one row ----------------------------------------------------------------------------------------------
def run_row(
    name: str,
    part: Part,
    clone: Path,
    corpus: Path,
    seed: int,
    work: Path,
    n_dumps: int,
    self_check: bool,
    overrides: list[str],
    label: str,
) -> dict:
    row = parity.ROWS[name]
    base, label = label, (f"{label}-{part.name}" if part.name else label)
    out = work / label
    out.mkdir(parents=True, exist_ok=True)
    model = recipes.resolve("ptb", row.recipe).model
    model_d = {
        k: getattr(model, k) for k in ("embed_dim", "enc_hidden", "dec_hidden", "latent_dim")
    }
    buckets = parity.training_buckets(corpus, row.recipe)
    updates = sum(b is not None for b in buckets)
    steps = dump_steps(updates, n_dumps)
    print(f"{label}: reference {part.script}, {updates} updates, states at {steps}", flush=True)
    load = None
    if part.loads:
        load = work / f"{base}-{part.loads}" / "final.pt"
        if not load.is_file():
            raise SystemExit(f"{label}: {load} missing: the reference's {part.loads} program did not finish")
    run_reference(row, part, clone, corpus, seed, steps, out, model_d, load)
    orders = [
        json.loads(line)["order"]
        for line in (out / "orders.jsonl").read_text().splitlines()
        if line.strip() and json.loads(line)["n"] == len(buckets)
    ]
    schedule = out / "schedule.json"
    write_schedule(
        schedule,
        len(buckets),
        # a two-stage recipe checks that the schedule covers both stages' epochs; each part runs one
        {seed: orders[:1] * len(parts(row))},
        f"{parity.REFERENCES[row.reference].repo} {part.script} epoch 1 (eval/lockstep.py)",
    )
    config = textvae_config(row, corpus, schedule, seed, overrides)
    initial = torch.load(out / "initial.pt", weights_only=False)
    ref_curve = reference_curve(out)
    last_word = out / "last_word_steps.txt"
    last_word_steps = [int(x) for x in last_word.read_text().split()] if last_word.is_file() else []
    steps = sorted({*steps, *(k for k in last_word_steps if (out / f"state_{k + 1}.pt").is_file())})
    resynced = resync(config, initial, out, steps, work / "textvae" / label / "resync", ref_curve, part.stage)
    ours = free_run(config, initial, work / "textvae" / label / "free", threads=1, stage=part.stage)
    first, what = first_parting(ours, ref_curve)
    record = {
        "row": row.label + (f", stage {part.stage + 1} ({part.name}, {part.script})" if part.name else ""),
        "recipe": row.recipe,
        **({"stage": part.name} if part.name else {}),
        "seed": seed,
        "overrides": overrides,
        "updates": updates,
        "reference_updates": len(ref_curve),
        "last_word_steps": last_word_steps,
        "resync_steps": [r["step"] for r in resynced],
        "max_rel_diff_resync": max(max(r["max_rel_figures"], r["max_rel_param"]) for r in resynced),
        "max_rel_figures_resync": max(r["max_rel_figures"] for r in resynced),
        "max_rel_param_resync": max(r["max_rel_param"] for r in resynced),
        "max_rel_update_resync": max(r["max_rel_update"] for r in resynced),
        "resync_accepted": all(
            max(r["max_rel_figures"], r["max_rel_param"]) <= ACCEPT for r in resynced
        ),
        "same_batches": all(r["same_batch"] for r in resynced),
        "first_step_over_1e-3": first,
        "first_parting_figure": what,
        "self_first_step_over_1e-3": None,
        "resync": resynced,
        "curves": {"reference": ref_curve, "textvae": ours},
    }
    if self_check:
        record["self_first_steps_by_threads"] = {}
        for threads in SELF_THREADS:
            again = free_run(config, initial, work / "textvae" / label / f"free{threads}", threads, part.stage)
            step, figure = first_parting(again, ours)
            record["self_first_steps_by_threads"][str(threads)] = step
            if threads == 2:  # the figure of the records before the other thread counts were run
                record["self_first_step_over_1e-3"], record["self_parting_figure"] = step, figure
    return record


def except_last_word(record: dict) -> float:
    """The largest relative difference (figures, updated parameters) over the re-synchronised updates
    that do not feed the decoder the vocabulary's last word."""
    last = set(record.get("last_word_steps", []))
    return max(
        (
            max(s["max_rel_figures"], s["max_rel_param"])
            for s in record["resync"]
            if s["step"] not in last
        ),
        default=0.0,
    )


def accepted(record: dict) -> str:
    """'yes', or 'no' naming the updates over the acceptance, the last-word ones apart."""
    last = set(record.get("last_word_steps", []))
    over = [
        s["step"]
        for s in record["resync"]
        if max(s["max_rel_figures"], s["max_rel_param"]) > ACCEPT
    ]
    if not over:
        return "yes"
    other = [k for k in over if k not in last]
    return ("no: " + ", ".join(map(str, other)) if other else "no") + (
        f" (last-word update {', '.join(str(k) for k in over if k in last)})"
        if set(over) & last
        else ""
    )


def self_range(record: dict) -> str:
    """The earliest–latest update at which textvae parted from itself over the thread counts."""
    steps = list(record.get("self_first_steps_by_threads", {}).values())
    if not steps:
        return "not run"
    parted = sorted(k for k in steps if k is not None)
    if not parted:
        return "none"
    span = f"{parted[0]}–{parted[-1]}" if parted[0] != parted[-1] else f"{parted[0]}"
    return span + (f" ({len(steps) - len(parted)} of {len(steps)} never)" if len(parted) < len(steps) else "")


def curve_key(record: dict) -> str:
    """A row's key in lockstep_curves.json.gz: its recipe (and stage) and overrides."""
    recipe = record["recipe"] + (f":{record['stage']}" if record.get("stage") else "")
    return " ".join([recipe, *record["overrides"]])


def render(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Lockstep: textvae and the reference code update by update",
        "",
        f"{meta['corpus']}; seed {meta['seed']}; one epoch; decoder dropout 0, reparameterisation noise 0 "
        "on both sides; the reference's initial weights and batch order (eval/lockstep.py, docs/parity.md).",
        "",
        "Re-synchronised: at each listed update the reference's exact state is loaded into textvae and one "
        f"update taken on the same batch; the largest relative difference over the loss terms, KL weight, "
        f"learning rate, gradient norms per module before/after clipping (figures) and each tensor after the update "
        f"(updated parameters, and the update itself beyond the float32 rounding of new − old); accepted "
        f"at {ACCEPT:g} on the figures and the updated parameters. Free-running: the first update "
        f"where reconstruction, KL, KL weight, learning rate or gradient norm differ by more than "
        f"{PARTED:g} relative, textvae against the "
        "reference and (self) textvae on 1 against 2 threads, and against each of "
        f"{', '.join(map(str, SELF_THREADS))} threads (earliest–latest). 'Last-word' updates feed the "
        "decoder the "
        "vocabulary's last word, whose embedding the reference freezes (padding_idx=-1).",
        "",
        "| row | options | updates | re-synchronised updates | max rel. diff: figures / updated parameters / "
        "update beyond float32 rounding | the same apart from last-word updates | accepted | first update > "
        f"1e-3 vs reference | vs itself (1 vs 2 threads) | vs itself (1 vs {'/'.join(map(str, SELF_THREADS))} "
        "threads) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        worst = max(r["resync"], key=lambda s: s["max_rel_update"])
        self_part = r["self_first_step_over_1e-3"]
        lines.append(
            f"| {r['row']} | {' '.join(r['overrides']) or 'recipe'} | {r['updates']} | {len(r['resync_steps'])} "
            f"({r['resync_steps'][0]}–{r['resync_steps'][-1]}) | {r['max_rel_figures_resync']:.1e} / "
            f"{r['max_rel_param_resync']:.1e} / {r['max_rel_update_resync']:.1e} (`{worst['worst_update']}`) | "
            f"{except_last_word(r):.1e} | {accepted(r)} | "
            f"{r['first_step_over_1e-3'] or 'none'}"
            + (f" ({r['first_parting_figure']})" if r["first_parting_figure"] else "")
            + " | "
            + (
                "not run"
                if self_part is None and "self_parting_figure" not in r
                else f"{self_part or 'none'}"
                + (f" ({r['self_parting_figure']})" if r.get("self_parting_figure") else "")
            )
            + f" | {self_range(r)} |"
        )
    lines += [
        "",
        "Tensors whose update (beyond float32 rounding) differed by more than the acceptance at some "
        "re-synchronised update:",
        "",
    ]
    for r in rows:
        over = sorted({n for s in r["resync"] for n in s["updates_over_accept"]})
        lines.append(
            f"- {r['row']} ({' '.join(r['overrides']) or 'recipe'}): "
            + (", ".join(f"`{n}`" for n in over) or "none")
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ptb", type=Path)
    p.add_argument("--reference", action="append", default=[], metavar="NAME=PATH")
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    p.add_argument("--seed", type=int, default=101)
    p.add_argument("--train-lines", type=int, default=2000)
    p.add_argument(
        "--dumps",
        type=int,
        default=12,
        help="re-synchronised updates per row (spread over the epoch)",
    )
    p.add_argument(
        "--self-check", action="store_true",
        help=f"also textvae against itself on {', '.join(map(str, SELF_THREADS))} threads"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a textvae config override for every row (e.g. an option reproducing the reference)",
    )
    p.add_argument(
        "--label", default="", help="suffix of the rows' work folders and records (with --set)"
    )
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "lockstep")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--render", action="store_true")
    a = p.parse_args(argv)
    path = a.out / "lockstep.json"
    data = json.loads(path.read_text()) if path.is_file() else {"meta": {}, "rows": []}
    # both sides' per-update curves, by row label, apart from the table (they are most of the bytes)
    curves_path = a.out / "lockstep_curves.json.gz"
    curves = json.loads(gzip.decompress(curves_path.read_bytes())) if curves_path.is_file() else {}
    for r in data["rows"]:
        if "curves" in r:
            curves[curve_key(r)] = r.pop("curves")
    if not a.render:
        clones = dict(item.split("=", 1) for item in a.reference)
        if a.ptb is None:
            raise SystemExit("--ptb: the folder of the PTB release is required")
        work = a.work.resolve()
        corpus = work / "corpus"
        sizes = parity.make_corpus(a.ptb, corpus, a.train_lines, 200, 50)
        data["meta"] = {
            "corpus": f"PTB, first {sizes['train']} train lines",
            "seed": a.seed,
            "machine": machine()["cpu"],
        }
        for name in a.rows:
            ref = parity.ROWS[name].reference
            if ref not in clones:
                raise SystemExit(f"--rows {name}: needs --reference {ref}=PATH")
            label = name + (f"+{a.label}" if a.label else "")
            for part in parts(parity.ROWS[name]):
                record = run_row(
                    name,
                    part,
                    Path(clones[ref]).expanduser().resolve(),
                    corpus,
                    a.seed,
                    work,
                    a.dumps,
                    a.self_check,
                    a.overrides,
                    label,
                )
                data["rows"] = [r for r in data["rows"] if curve_key(r) != curve_key(record)]
                curves[curve_key(record)] = record.pop("curves")
                data["rows"].append(record)
                a.out.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(data, indent=1) + "\n")
                # mtime 0: the same curves give the same bytes, so a re-run changes no committed file
                curves_path.write_bytes(gzip.compress((json.dumps(curves) + "\n").encode(), mtime=0))
                (a.out / "lockstep.md").write_text(render(data["rows"], data["meta"]))
    (a.out / "lockstep.md").write_text(render(data["rows"], data["meta"]))
    print((a.out / "lockstep.md").read_text())


if __name__ == "__main__":
    main()

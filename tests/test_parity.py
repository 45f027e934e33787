"""eval/parity.py: reading a reference program's log, the run-time patches, the spec it hands to
``textvae sweep``, the verdict rule and the rendered table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from eval import agg_vae_side_by_side, side_ab
from eval import parity as parity_script
from textvae.errors import CheckpointError
from textvae.reference.state_dicts import reference_to_textvae, textvae_only
from textvae.sweeps.spec import expand, load_spec

# The shape of the reference programs' stdout (He et al.'s trainer and its descendants).
LOG = """\
Namespace(dataset='parity', seed=101)
epoch: 0, iter: 0, avg_loss: 300.0000, kl: 90.0000, recon: 210.0000,time 2.00s, kl_weight 0.0003
epoch: 0, iter: 31, avg_loss: 200.0000, kl: 12.0000, recon: 188.0000,time 9.00s, kl_weight 0.0100
epoch: 0, iter: 62, avg_loss: 180.0000, kl: 10.0000, mi: 0.0559, recon: 170.0000,au 0, time elapsed 19.00s
kl weight 0.0300
VAL --- avg_loss: 170.0000, kl: 9.5000, mi: 2.5000, recon: 160.5000, nll: 170.0000, ppl: 900.0000
30 active units
epoch: 1, iter: 93, avg_loss: 170.0000, kl/H(z|x): 9.0000, recon: 161.0000,time elapsed 29.00s
kl weight 0.0600
VAL --- avg_loss: 165.0000, kl: 9.0000, mi: 2.6000, recon: 156.0000, nll: 165.0000, ppl: 800.0000
31 active units
TEST --- avg_loss: 166.0000, kl: 8.5000, mi: 2.7000, recon: 157.5000, nll: 166.0000, ppl: 810.0000
29 active units
iw nll computing 0%
iw nll: 160.2500, iw ppl: 700.0000
"""


@pytest.fixture(scope="module")
def parity():
    return parity_script


def test_reads_the_final_test_figures_and_per_epoch_training_means(parity):
    parsed = parity.parse_reference_log(LOG)
    assert (parsed["iw_nll"], parsed["kl"], parsed["mi"], parsed["au"]) == (160.25, 8.5, 2.7, 29)
    # the iteration-0 report (one batch) is left out of epoch 1's mean
    assert parsed["train"] == [{"epoch": 1, "elbo": 190.0, "kl": 11.0}, {"epoch": 2, "elbo": 170.0, "kl": 9.0}]
    assert [v["kl"] for v in parsed["valid"]] == [9.5, 9.0]


def test_an_unfinished_log_reads_as_nothing(parity):
    assert parity.parse_reference_log(LOG.split("TEST ---")[0]) == {}


def test_patches_touch_the_scratch_copy_only(parity, tmp_path):
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "utils.py").write_text("x = t.cuda()\n")
    (clone / ".git").mkdir()
    scratch = tmp_path / "scratch"
    applied = parity.prepare_reference(clone, "bn-vae", scratch)
    assert (clone / "utils.py").read_text() == "x = t.cuda()\n"
    assert (scratch / "utils.py").read_text() == "x = t\n"
    assert not (scratch / ".git").exists()
    assert applied and "valdersoul/bn-vae utils.py" in applied[0]


def test_reference_config_and_command(parity, tmp_path):
    (tmp_path / "config").mkdir()
    model = {"latent_dim": 32, "embed_dim": 256, "enc_hidden": 512, "dec_hidden": 512,
             "dec_dropout_in": 0.5, "dec_dropout_out": 0.5}
    parity.write_reference_config(tmp_path, tmp_path / "corpus", model, 2)
    namespace: dict = {}
    exec((tmp_path / "config" / "config_parity.py").read_text(), namespace)
    params = namespace["params"]
    assert (params["nz"], params["enc_nh"], params["epochs"], params["dec_dropout_in"]) == (32, 512, 2, 0.5)
    assert params["train_data"].endswith("corpus/train.txt")
    [step] = parity.reference_steps(parity.ROWS["bn-vae"], 101, 100, tmp_path)
    by_seed = step["cmd"]
    assert by_seed[by_seed.index("--seed") + 1] == "101" and by_seed[by_seed.index("--iw_nsamples") + 1] == "100"
    # the program runs under the recorder of its permutations
    assert by_seed[1].endswith("eval/record_orders.py") and by_seed[2:4] == [step["orders"], "text_anneal_fb.py"]
    [step] = parity.reference_steps(parity.ROWS["du-vae"], 101, 100, tmp_path)
    assert step["cmd"][step["cmd"].index("--taskid") + 1] == "1"
    with pytest.raises(SystemExit, match="fixed list"):
        parity.reference_steps(parity.ROWS["du-vae"], 7, 100, tmp_path)
    # the language model takes no IW samples (it has no latent to sample)
    [step] = parity.reference_steps(parity.ROWS["lstm-lm"], 101, 100, tmp_path)
    assert "--iw_nsamples" not in step["cmd"] and step["cmd"][3] == "lm.py"


def test_a_two_stage_row_runs_its_pretraining_program_first(parity, tmp_path):
    pretrain, main = parity.reference_steps(parity.ROWS["pretrain-fb"], 101, 100, tmp_path)
    assert pretrain["cmd"][3] == "text_beta.py" and "--beta" in pretrain["cmd"]
    exp = pretrain["cmd"][pretrain["cmd"].index("--exp_dir") + 1]
    # the row's program starts from the model the first one saved, and each logs its own orders
    assert main["cmd"][3] == "text_anneal_fb.py" and "--reset_dec" in main["cmd"]
    assert main["cmd"][main["cmd"].index("--load_path") + 1] == str(tmp_path / exp / "model.pt")
    assert len({pretrain["orders"], main["orders"], pretrain["log"], main["log"]}) == 4


# text_beta.py reports its weighted objective as avg_loss (at beta 0: the reconstruction alone)
TWO_STAGE_PRETRAIN_LOG = """\
epoch: 0, iter: 50, avg_loss: 90.0000, kl: 30.0000, recon: 90.0000,time 9.00s, kl_weight 0.0000
epoch: 1, iter: 100, avg_loss: 60.0000, kl: 40.0000, recon: 60.0000,time 19.00s, kl_weight 0.0000
TEST --- avg_loss: 99.0000, kl: 41.0000, mi: 8.0000, recon: 58.0000, nll: 99.0000, ppl: 90.0000
32 active units
iw nll: 130.0000, iw ppl: 700.0000
"""


def test_a_two_stage_run_reads_the_last_program_and_both_curves(parity, tmp_path):
    steps = parity.reference_steps(parity.ROWS["pretrain-fb"], 101, 100, tmp_path)
    Path(steps[0]["log"]).write_text(TWO_STAGE_PRETRAIN_LOG)
    Path(steps[1]["log"]).write_text(LOG)
    job = {"steps": steps}
    assert parity.finished_reference(job) == {}  # no recorded orders yet: not a finished run
    for s in steps:
        Path(s["orders"]).write_text("")
    parsed = parity.finished_reference(job)
    assert parsed["iw_nll"] == 160.25  # the figures are the row's program's, not the autoencoder's
    # the −ELBO is recon + KL on every program, whatever its avg_loss weighs
    assert [(e["epoch"], e["elbo"]) for e in parsed["train"]] == [(1, 120.0), (2, 100.0), (3, 190.0), (4, 170.0)]


LM_LOG = """Train data: 10000 samples
epoch: 0, iter: 0, avg_loss: 400.0000, time elapsed 1.00s
epoch: 0, iter: 50, avg_loss: 250.0000, time elapsed 9.00s
epoch: 0, iter: 100, avg_loss: 200.0000, time elapsed 19.00s
avg_loss: 150.0000, nll: 150.0000, ppl: 700.0000
test | epoch: 0, nll: 150.0000, ppl: 700.0000
avg_loss: 145.0000, nll: 145.0000, ppl: 600.0000
valid | epoch: 0, nll: 145.0000, ppl: 600.0000
update best loss
epoch: 1, iter: 150, avg_loss: 140.0000, time elapsed 29.00s
avg_loss: 138.0000, nll: 138.0000, ppl: 500.0000
valid | epoch: 1, nll: 138.0000, ppl: 500.0000
update best loss
valid | best_loss: 138.0000, nll: 138.0000, ppl: 500.0000
avg_loss: 139.5000, nll: 139.5000, ppl: 520.0000
test | nll: 139.5000, ppl: 520.0000
"""


def test_reads_the_language_models_exact_nll(parity):
    parsed = parity.parse_reference_log(LM_LOG, language_model=True)
    # the final test line (best model), not the epoch-0 one; no latent, so no KL, MI or AU
    assert (parsed["iw_nll"], parsed["kl"], parsed["mi"], parsed["au"]) == (139.5, 0.0, 0.0, 0)
    # its progress reports are running means over the epoch: the last one of each epoch is the epoch's
    assert [e["elbo"] for e in parsed["train"]] == [200.0, 140.0]
    assert [v["elbo"] for v in parsed["valid"]] == [145.0, 138.0]
    assert parity.parse_reference_log(LM_LOG.split("valid | best")[0], language_model=True) == {}


def test_the_textvae_side_is_a_valid_sweep_spec(parity, tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(parity.sweep_spec("bn-vae", [783435, 101], tmp_path / "corpus", 2, 100, 200, None))
    points = expand(load_spec(path))
    assert len(points) == 2 and {p.strategy for p in points} == {"bn-vae"}
    assert points[0].config["data"]["batch_schedule"] == "" and points[0].config["data"]["bucket_order"] == "argsort"
    path.write_text(parity.sweep_spec("bn-vae", [783435], tmp_path / "corpus", 2, 100, 200, tmp_path / "s.json"))
    assert expand(load_spec(path))[0].config["data"]["batch_schedule"] == str(tmp_path / "s.json")


def test_the_reference_order_is_its_permutation_of_the_training_buckets(parity, tmp_path):
    orders = tmp_path / "orders.jsonl"
    calls = [{"n": 5, "order": [4, 3, 2, 1, 0]}, {"n": 2, "order": [1, 0]}, {"n": 5, "order": [0, 2, 4, 1, 3]}]
    orders.write_text("".join(json.dumps(c) + "\n" for c in calls))
    job = {"steps": [{"orders": str(orders)}]}
    assert parity.reference_orders(job, 5, 2) == [[4, 3, 2, 1, 0], [0, 2, 4, 1, 3]]
    with pytest.raises(SystemExit, match="1 permutations of 2 training buckets, expected one per epoch"):
        parity.reference_orders(job, 2, 2)
    # a two-program run trains on its first program's epochs, then on the second's
    first = tmp_path / "first.jsonl"
    first.write_text(json.dumps({"n": 5, "order": [1, 0, 2, 3, 4]}) + "\n"
                     + json.dumps({"n": 5, "order": [0, 1, 2, 4, 3]}) + "\n")
    two = {"steps": [{"orders": str(first)}, {"orders": str(orders)}]}
    assert parity.reference_orders(two, 5, 2) == [[1, 0, 2, 3, 4], [0, 1, 2, 4, 3], [4, 3, 2, 1, 0], [0, 2, 4, 1, 3]]


def test_the_recorder_passes_the_draws_on_unchanged(tmp_path):
    import subprocess
    import sys


    script = tmp_path / "program.py"
    script.write_text("import sys\nimport numpy as np\nnp.random.seed(3)\n"
                      "print(sys.argv[1:], np.random.permutation(6).tolist(),"
                      " np.random.permutation(np.arange(3)).tolist(),"
                      " np.random.rand())\n")
    plain = subprocess.run([sys.executable, str(script), "--x", "1"], capture_output=True, text=True, check=True)
    log = tmp_path / "orders.jsonl"
    recorder = Path(parity_script.__file__).with_name("record_orders.py")
    recorded = subprocess.run([sys.executable, str(recorder), str(log), str(script), "--x", "1"],
                              capture_output=True, text=True, check=True, cwd=tmp_path)
    assert recorded.stdout == plain.stdout
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["n"] for c in calls] == [6, 3] and str(calls[0]["order"]) in plain.stdout


def run(iw: float, kl: float) -> dict:
    return {"iw_nll": iw, "kl": kl, "mi": 1.0, "au": 3, "train": [{"epoch": 1, "elbo": 150.0, "kl": 5.0}]}


def test_a_record_is_judged_on_its_paired_differences(parity):
    def record(ref, ours):
        return {"row": "r", "recipe": "bn-vae", "seeds": [1, 2, 3], "reference": {"runs": ref, "errors": []},
                "textvae": {"runs": ours}}
    reference = [{**run(140.0 + s, 8.0), "seed": s} for s in (1, 2, 3)]
    # textvae 2 nats behind on every seed, the seeds themselves 1 nat apart: the pairs see it
    judged = parity.judge(record(reference, [{**run(142.0 + s + 0.1 * (s % 2), 8.0), "seed": s} for s in (1, 2, 3)]))
    assert judged["verdict"] == "differs" and judged["metrics"]["iw_nll"]["verdict"] == "differs"
    assert judged["margin"] == 1.0 and judged["diff_ci90"][0] > 1 and "differs on iw_nll" in judged["explanation"]
    same = parity.judge(record(reference, [{**run(140.0 + s + 0.01 * s, 8.0), "seed": s} for s in (1, 2, 3)]))
    assert same["verdict"] == "equivalent" and same["paired_seeds"] == [1, 2, 3]
    # δ-VAE's KL is the committed rate on every seed: the reference prints 3.2000, textvae holds 3.200016
    fixed = parity.judge(record([{**r, "kl": 3.2} for r in reference],
                                [{**r, "kl": 3.2000160217285156, "iw_nll": r["iw_nll"] + 0.01 * r["seed"]}
                                 for r in reference]))
    assert fixed["metrics"]["kl"]["verdict"] == "equivalent"
    one = parity.judge(record(reference, reference[:1]))
    assert one["metrics"]["iw_nll"]["verdict"] == "not shown"
    assert "iw_nll needs a second seed" in one["explanation"] and ">1000" not in one["explanation"]
    assert parity.judge(record(reference, []))["verdict"] == "not run"


def test_render_names_every_row_and_the_patches(parity):
    record = {"row": "BN-VAE (0.6)", "recipe": "bn-vae", "seeds": [1, 2], "verdict": "agrees", "explanation": "",
              "reference": {"repo": "valdersoul/bn-vae", "script": "text_anneal_fb.py", "args": [],
                            "runs": [run(140.0, 8.0), run(141.0, 9.0)], "errors": []},
              "textvae": {"recipe": "bn-vae", "runs": [run(140.5, 8.5), run(140.7, 8.7)]}}
    meta = {"corpus": "PTB", "model": "m", "epochs": 2, "iw_samples": 100, "seeds": [1, 2],
            "patches": ["valdersoul/bn-vae utils.py: '.cuda()' -> ''"], "machine": "cpu", "wall_minutes": 1.0}
    text = parity.render([record], meta)
    assert "| BN-VAE (0.6) | valdersoul/bn-vae text_anneal_fb.py | reference | 140.50 ± 0.71 |" in text
    assert "| agrees |" in text and "utils.py: '.cuda()'" in text and "textvae's evaluator" not in text
    record["reference"]["runs"][0] = {**run(140.0, 8.0), "seed": 1, "textvae_eval": {"iw_nll": 140.25, "kl": 8.0}}
    record["reference"]["runs"][1] = {**run(141.0, 9.0), "seed": 2,
                                      "textvae_eval": {"error": "no saved reference model"}}
    text = parity.render([record], meta)
    assert "| BN-VAE (0.6) | 1 | 140.00 / 8.00 | 140.25 / 8.00 | +0.25 |" in text
    assert "| BN-VAE (0.6) | 2 | 141.00 / 9.00 | no saved reference model | |" in text
    record["textvae"]["runs"] = [{**run(140.5, 8.5), "seed": 1, "last_buckets_words": [3, 25, 2]}]
    record["reference"]["runs"][0]["last_buckets_words"] = [3, 25, 2]
    text = parity.render([record], meta)
    assert "| BN-VAE (0.6) | 1 | 140.00 / 8.00 | 140.50 / 8.50 | 3, 25, 2 | 3, 25, 2 |" in text
    assert "| BN-VAE (0.6) | 2 | 141.00 / 9.00 | — |  |  |" in text
    assert "in textvae's shuffle of each seed" in text  # a record from before batch orders were replayed
    assert "each reference run's own order" in parity.render([record], {**meta, "batch_order": "reference"})


def test_a_scratch_copy_of_another_clone_is_replaced(parity, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for clone, text in ((first, "first"), (second, "second")):
        clone.mkdir()
        (clone / "text.py").write_text(text)
    scratch = tmp_path / "scratch"
    parity.prepare_reference(first, "lagging", scratch)
    (scratch / "parity.log").write_text("a log of the first program")
    parity.prepare_reference(first, "lagging", scratch)
    assert (scratch / "parity.log").is_file()  # the same clone: the finished log is kept
    parity.prepare_reference(second, "lagging", scratch)
    assert (scratch / "text.py").read_text() == "second" and not (scratch / "parity.log").exists()


def _tiny_model(recipe: str):
    from textvae import recipes
    from textvae.models import build_model

    config = recipes.resolve("ptb", recipe)
    config.model.embed_dim, config.model.enc_hidden, config.model.dec_hidden, config.model.latent_dim = 4, 5, 6, 3
    return build_model(config, 11)


def _as_reference(state: dict, recipe: str) -> dict:
    """The state dict a reference program of He et al.'s family would save for the same weights."""
    back = {"encoder.to_posterior.weight": "encoder.linear.weight", "decoder.init_cell.weight":
            "decoder.trans_linear.weight", "decoder.out.weight": "decoder.pred_linear.weight"}
    bn = {"bn-vae": {"scale": "weight", "shift": "bias"},
          "du-vae": {"weight": "weight", "bias": "bias"}}.get(recipe, {})
    out = {}
    for key, tensor in state.items():
        if key.startswith("strategy."):
            suffix = key.split(".", 3)[-1]
            if suffix == "floor_on":
                continue  # DU-VAE's switch is a process-wide flag in the reference, not a tensor
            part = bn.get(suffix, suffix.removeprefix("stats."))
            out[f"encoder.mu_bn.{part}"] = tensor
        else:
            out[back.get(key, key)] = tensor
    out["decoder.loss.weight"] = torch.ones(11)
    return out


@pytest.mark.parametrize("recipe", ["vae", "bn-vae", "du-vae"])
def test_a_reference_models_weights_land_on_textvaes_parameters(recipe):
    source, target = _tiny_model(recipe), _tiny_model(recipe)
    with torch.no_grad():
        for tensor in source.state_dict().values():
            if tensor.is_floating_point():
                tensor.uniform_(-1, 1)
    reference = _as_reference(source.state_dict(), recipe)
    state = reference_to_textvae(reference, target.state_dict(), recipe, keep=textvae_only(recipe))
    target.load_state_dict(state)
    for key, tensor in source.state_dict().items():
        if not key.endswith("floor_on"):
            assert torch.equal(target.state_dict()[key], tensor), key
    if recipe != "du-vae":  # only DU-VAE has an entry the reference does not save
        with pytest.raises(CheckpointError, match="missing tensor"):
            reference_to_textvae({k: v for k, v in reference.items() if "mu_bn" not in k and "trans" not in k},
                                 target.state_dict(), recipe)


def test_a_reference_tensor_without_a_place_stops_the_cross_evaluation():
    target = _tiny_model("vae").state_dict()
    reference = _as_reference(target, "vae")
    with pytest.raises(CheckpointError, match="encoder.extra.weight: no counterpart"):
        reference_to_textvae({**reference, "encoder.extra.weight": torch.ones(2)}, target, "vae")
    reference["decoder.pred_linear.weight"] = torch.ones(3, 3)
    with pytest.raises(CheckpointError, match=r"decoder.pred_linear.weight: shape \(3, 3\), textvae's decoder.out"):
        reference_to_textvae(reference, target, "vae")
    with pytest.raises(CheckpointError, match="encoder.mu_bn.weight: no place"):  # a VAE has no BatchNorm
        reference_to_textvae({"encoder.mu_bn.weight": torch.ones(3)}, target, "vae")


def test_a_textvae_run_is_read_with_the_lengths_of_its_last_buckets(parity, tiny_corpus, make_config, tmp_path):
    from textvae.data import load_corpus
    from textvae.training import train
    from textvae.training.trainer import epoch_batches

    config = make_config(tiny_corpus, data={"batch_size": 4, "bucket_order": "argsort"}, train={"epochs": 2})
    run = tmp_path / "run"
    train(config, run)
    record = parity.read_textvae_run(run)
    assert [e["epoch"] for e in record["train"]] == [1, 2] and len(record["valid"]) == 2
    last = epoch_batches(config, load_corpus(config.data).splits["train"], 1)
    assert record["last_buckets_words"] == [b.max_words for b in last[-6:]]
    assert record["last_buckets_words"] != [b.max_words for b in epoch_batches(
        config, load_corpus(config.data).splits["train"], 0)[-6:]]


def test_a_recollection_keeps_the_wall_time_of_the_same_rows(parity, tmp_path):
    records = [{"row": "BN-VAE (0.6)", "seeds": [1, 2]}]
    (tmp_path / "parity.json").write_text(json.dumps({"meta": {"wall_minutes": 30.6}, "rows": records}))
    assert parity.earlier_wall_minutes(tmp_path, records) == 30.6
    assert parity.earlier_wall_minutes(tmp_path, [{"row": "BN-VAE (0.6)", "seeds": [1]}]) is None
    assert parity.earlier_wall_minutes(tmp_path / "nothing", records) is None


def test_reference_programs_sort_their_buckets_as_textvae_does(parity):
    """numpy's SIMD argsort groups equal lengths by CPU; the reference runs with the scalar kernel."""
    import random
    import subprocess
    import sys

    from textvae.data.introsort import argsort_order

    lengths = [random.Random(2).randrange(3, 40) for _ in range(5000)]
    script = "import json, sys, numpy\nprint(json.dumps(numpy.argsort(numpy.array(json.load(sys.stdin))).tolist()))"
    env = {**os.environ, **parity.scalar_numpy_sort()}
    out = subprocess.run([sys.executable, "-c", script], input=json.dumps(lengths), capture_output=True, text=True,
                         env=env, check=True).stdout
    assert json.loads(out) == argsort_order(lengths)


def test_merging_invocations_keeps_each_rows_latest_folder(parity, tmp_path):
    def invocation(name, rows, seeds, corpus="PTB", order="reference"):
        folder = tmp_path / name
        folder.mkdir()
        meta = {"corpus": corpus, "model": "m", "epochs": 2, "iw_samples": 100, "seeds": seeds, "batch_order": order,
                "patches": [f"patch of {name}"], "machine": "cpu", "wall_minutes": 10.0}
        records = [{"row": r, "recipe": r, "seeds": seeds, "verdict": "agrees", "explanation": "",
                    "reference": {"repo": "o/n", "script": "s.py", "args": [],
                                  "runs": [{**run(140.0, 8.0), "seed": s} for s in seeds],
                                  "errors": []},
                    "textvae": {"recipe": r, "runs": [{**run(140.2 + s / 100, 8.1), "seed": s} for s in seeds]}}
                   for r in rows]
        (folder / "parity.json").write_text(json.dumps({"meta": meta, "rows": records}))
        return folder

    old = invocation("old", ["VAE", "BN-VAE"], [1, 2, 3], order="seeded")
    new = invocation("new", ["BN-VAE", "LSTM-LM"], [1, 2])
    merged = parity.merge([old, new])
    assert [(r["row"], r["source"], r["seeds"]) for r in merged["rows"]] == [
        ("VAE", "old", [1, 2, 3]), ("BN-VAE", "new", [1, 2]), ("LSTM-LM", "new", [1, 2])]
    assert merged["meta"]["seeds"] == [1, 2, 3] and merged["meta"]["patches"] == ["patch of new", "patch of old"]
    text = parity.render(merged["rows"], merged["meta"])
    assert "| `old` | VAE, BN-VAE | 1, 2, 3 | seeded | 10.0 min |" in text and "Merged from" in text
    other = invocation("other", ["VAE"], [1], corpus="Yelp")
    with pytest.raises(SystemExit, match="--merge .*other: its corpus \\(Yelp\\) differs from old's"):
        parity.merge([old, other])
    parity.main(["--merge", str(old), str(new), "--out", str(tmp_path / "all")])
    judged = {**merged, "rows": [parity.judge(r) for r in merged["rows"]]}  # merged records are re-judged
    assert json.loads((tmp_path / "all" / "parity.json").read_text()) == judged
    assert judged["rows"][0]["verdict"] == "equivalent"  # +0.21..0.23 nats on three seeds

def test_one_reader_serves_both_scripts_and_reads_a_diverged_log(parity):
    from textvae.reference.logs import parse_log

    diverged = (LOG.replace("H(z|x): 9.0000, recon: 161.0000", "H(z|x): nan, recon: inf")
                .replace("iw nll: 160.2500", "iw nll: -inf"))
    parsed = parse_log(diverged)
    assert parsed["iw_nll"] == float("-inf") and parsed["train"][1]["kl"] != parsed["train"][1]["kl"]  # nan
    assert parity.parse_reference_log(LOG)["iw_nll"] == 160.25
    agg = agg_vae_side_by_side
    assert agg.parse_peer_log(LOG).nll == 160.25 and agg.parse_peer_log(diverged).nll == float("-inf")


def test_one_side_is_judged_against_itself_across_two_invocations(tmp_path):
    def out(name, reference_shift, textvae_shift, reference_only=False):
        folder = tmp_path / name
        folder.mkdir()
        row = {"row": "BN-VAE"}
        for side, shift in (("reference", reference_shift), ("textvae", textvae_shift)):
            if side == "textvae" and reference_only:
                continue
            row[side] = {"runs": [{**run(140.0 + s + shift * (1 + 0.01 * s), 8.0), "seed": s} for s in (1, 2, 3, 4)]}
        (folder / "parity.json").write_text(json.dumps({"rows": [row]}))
        return folder

    paired = out("paired", 0.0, 0.0)
    [noise] = side_ab.compare(paired, out("noise", 0.1, 0.0, reference_only=True), "reference")
    assert noise["seeds"] == [1, 2, 3, 4] and noise["metrics"]["iw_nll"]["verdict"] == "equivalent"
    assert abs(noise["metrics"]["iw_nll"]["mean"] - 0.1025) < 1e-9
    assert noise["parity"]["iw_nll"]["mean"] == 0.0 and [s["seed"] for s in noise["per_seed"]] == [1, 2, 3, 4]
    [option] = side_ab.compare(paired, out("option", 0.0, 3.0), "textvae")
    iw_nll = option["metrics"]["iw_nll"]
    assert iw_nll["verdict"] == "differs" and abs(iw_nll["mean"] - 3.075) < 1e-9
    assert side_ab.compare(paired, out("noise2", 0.1, 0.0, reference_only=True), "textvae") == []
    side_ab.main([str(paired), str(tmp_path / "option"), "--side", "textvae", "--title", "an option",
                  "--out", str(tmp_path / "ab")])
    record = json.loads((tmp_path / "ab" / "ab.json").read_text())
    assert record["side"] == "textvae" and record["first"] == "paired" and "/" not in record["second"]
    text = (tmp_path / "ab" / "ab.md").read_text()
    assert text.startswith("# an option") and "| BN-VAE | 4 | +3.08 [" in text
    assert "| beside it: textvae − reference, same seeds | | +0.00 [" in text
    assert "| BN-VAE | 1 | 141.00 / 8.00 | 144.03" in text


def test_a_torch_seed_offset_moves_torch_not_numpy(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text("import numpy, torch\nnumpy.random.seed(3)\ntorch.manual_seed(3)\n"
                      "print(numpy.random.permutation(5).tolist(), float(torch.rand(1)))\n")
    cmd = [sys.executable, str(Path(__file__).resolve().parents[1] / "eval" / "record_orders.py"),
           str(tmp_path / "o.jsonl"), str(script)]
    plain = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split("]")
    moved = subprocess.run(cmd, capture_output=True, text=True, check=True,
                           env={**os.environ, "PARITY_TORCH_SEED_OFFSET": "1"}).stdout.split("]")
    assert plain[0] == moved[0] and plain[1] != moved[1]


def test_the_default_pipeline_spec_leaves_buckets_and_order_to_the_recipe(parity, tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(parity.sweep_spec("bn-vae", [101], tmp_path / "corpus", 2, 100, 1000, None, True,
                                      ('data.bucket_order="random"',)))
    [point] = expand(load_spec(path))
    text = path.read_text()
    assert 'data.bucket_order="argsort"' not in text and 'data.bucket_order=\\"random\\"' in text
    assert point is not None


def test_cross_evaluation_imports_the_reference_model_and_scores_it_on_each_line_count(parity, tmp_path):
    from conftest import write_corpus

    from textvae import recipes
    from textvae.data import load_corpus
    from textvae.models import build_model

    corpus = write_corpus(tmp_path / "corpus", labeled=False)
    config = recipes.resolve("ptb", "kl-annealing", [f"data.corpus={json.dumps(str(corpus))}"])
    config.model.embed_dim, config.model.enc_hidden, config.model.dec_hidden, config.model.latent_dim = 4, 5, 6, 3
    vocab = len(load_corpus(config.data).vocab)
    reference = _as_reference(build_model(config, vocab).state_dict(), "kl-annealing")
    reference["decoder.loss.weight"] = torch.ones(vocab)
    job = {"row": "kl-annealing", "seed": 783435, "cwd": str(tmp_path / "scratch" / "seed783435-test5")}
    (tmp_path / "scratch" / "seed783435-test5" / "models" / "parity").mkdir(parents=True)
    torch.save(reference, tmp_path / "scratch" / "seed783435-test5" / "models" / "parity" / "m.pt")
    row = parity.ROWS["kl-annealing"]
    assert parity.program_args(row, job, corpus, 3, 2) == {
        "seed": 783435, "iw_nsamples": 3, "batch_size": 32, "epochs": 2, "train_data": str(corpus / "train.txt"),
        "kl_start": 0.1, "warm_up": 10}
    work = tmp_path / "work"
    found = parity.cross_evaluate(job, row, corpus, 3, 2, [5, 20], work)
    assert set(found["by_lines"]) == {"5", "20"} and found["lines"] == 20
    assert found["iw_nll"] == found["by_lines"]["20"]["iw_nll"] != found["by_lines"]["5"]["iw_nll"]
    imported = work / "imported" / "kl-annealing" / "seed783435-test5"
    assert json.loads((imported / "env.json").read_text())["imported_from"]["recipe"] == "kl-annealing"
    # cached: a second call reads the record, even with the model gone
    (tmp_path / "scratch" / "seed783435-test5" / "models" / "parity" / "m.pt").unlink()
    assert parity.cross_evaluate(job, row, corpus, 3, 2, [5, 20], work) == found
    # a model with a tensor of the wrong size is one error, nothing scored
    job2 = {**job, "seed": 101, "cwd": str(tmp_path / "scratch2" / "seed101")}
    (tmp_path / "scratch2" / "seed101" / "models" / "parity").mkdir(parents=True)
    torch.save({**reference, "decoder.pred_linear.weight": torch.ones(2, 2)},
               tmp_path / "scratch2" / "seed101" / "models" / "parity" / "m.pt")
    assert "decoder.pred_linear.weight" in parity.cross_evaluate(job2, row, corpus, 3, 2, [5], work)["error"]


def test_a_reference_scored_on_fewer_lines_is_shown_beside_textvaes_figures_on_those_lines(parity):
    own = {"iw_nll": 139.0, "kl": 8.0, "mi": 1.0, "au": 5, "rec": 135.0, "lines": 200}
    ref = {**run(140.0, 8.1), "seed": 1, "own": own,
           "textvae_eval": {"iw_nll": 140.0, "kl": 8.1, "by_lines": {"200": {"iw_nll": 139.1, "kl": 8.0},
                                                                    "1000": {"iw_nll": 140.0, "kl": 8.1}}}}
    record = {"row": "BN-VAE (0.6)", "recipe": "bn-vae", "seeds": [1], "verdict": "not shown", "explanation": "",
              "reference": {"repo": "valdersoul/bn-vae", "script": "text_anneal_fb.py", "args": [], "runs": [ref],
                            "errors": []},
              "textvae": {"recipe": "bn-vae", "runs": [{**run(140.5, 8.5), "seed": 1}]}}
    meta = {"corpus": "PTB, first 10 train / 10 valid / 1000 test lines", "model": "m", "epochs": 2,
            "iw_samples": 100, "seeds": [1], "patches": [], "machine": "cpu", "wall_minutes": 1.0,
            "reference_test_lines": 200}
    text = parity.render([record], meta)
    assert "scored on the first 1000 PTB test lines by textvae's evaluator" in text
    assert "| BN-VAE (0.6) | 1 | 139.00 / 8.00 | 139.10 / 8.00 | +0.10 |" in text
    assert "MI: the reference programs' per-batch estimator" in parity.render(
        [record], {**meta, "reference_test_lines": 1000})


def test_reference_programs_run_at_the_commands_own_priority(parity, monkeypatch):
    import sys
    import types

    seen = {}

    def init(**kw):
        seen["niceness"] = os.environ.get("RAY_worker_niceness")

    fake = types.SimpleNamespace(init=init, shutdown=lambda: None, get=lambda refs: [r() for r in refs],
                                 remote=lambda **kw: (lambda f: types.SimpleNamespace(
                                     remote=lambda job: (lambda: f(job)))))
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.delenv("RAY_worker_niceness", raising=False)
    monkeypatch.setattr(parity, "run_reference", lambda job: {"ran": job})
    assert parity.run_references([1, 2], 2) == [{"ran": 1}, {"ran": 2}]
    assert seen["niceness"] == "0"


def test_a_verdict_is_named_once_beside_its_explanation(parity):
    record = {"row": "VAE", "recipe": "vae", "seeds": [1], "verdict": "not shown",
              "explanation": "not shown: iw_nll needs 7 seeds",
              "reference": {"repo": "r", "script": "s", "args": [], "runs": [{**run(1.0, 0.1), "seed": 1}],
                            "errors": []},
              "textvae": {"recipe": "vae", "runs": [{**run(1.5, 0.1), "seed": 1}]}}
    meta = {"corpus": "PTB", "model": "m", "epochs": 2, "iw_samples": 100, "seeds": [1], "patches": [],
            "machine": "cpu", "wall_minutes": 1.0}
    text = parity.render([record], meta)
    assert "| not shown: iw_nll needs 7 seeds |" in text and "not shown: not shown" not in text
    record["verdict"], record["explanation"] = "differs", "on iw_nll"
    assert "| differs: on iw_nll |" in parity.render([record], meta)

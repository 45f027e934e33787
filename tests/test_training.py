import json
import math
import os

import pytest
import torch

from textvae.errors import CheckpointError, ConfigError, TrainingDiverged
from textvae.runs import load_run
from textvae.training import StopAfter, Trainer, train
from textvae.training.checkpoint import save_atomic


def metrics(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("seconds")
    return lines


def test_run_folder_contract(tiny_corpus, make_config, tmp_path):
    run = tmp_path / "run"
    results = train(make_config(tiny_corpus, {"kl-annealing": {"kl_start": 0.1, "warm_up": 2}}), run)
    for name in ("config.json", "env.json", "vocab.txt", "metrics.jsonl", "results.json",
                 "checkpoints/best.pt", "checkpoints/last.pt"):
        assert (run / name).is_file(), name
    for key in ("nll", "elbo", "rec", "kl", "mi", "au", "ppl", "kl_train"):
        assert key in results and math.isfinite(results[key]), key
    assert results["kl_train"] == pytest.approx(results["kl"], rel=1e-4, abs=1e-6)
    assert json.loads((run / "results.json").read_text())["nll"] == results["nll"]
    log = metrics(run)
    assert [r["epoch"] for r in log] == [1, 2]
    for key in ("rec", "kl", "elbo", "mi", "au", "kl_dims"):
        assert key in log[-1]["valid"], key
    assert log[0]["train"]["kl_weight"] < 1.0
    env = json.loads((run / "env.json").read_text())
    assert env["torch"] == torch.__version__
    assert env["onednn_primitive_cache_capacity"] == os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY")
    # the machine: CPU and its ISA, what the precision probe found, threads, library versions
    assert env["cpu"]["model"] and env["cpu"]["cpus_available"] >= 1 and env["torch_threads"] == torch.get_num_threads()
    assert env["cpu"]["isa"] is None or set(env["cpu"]["isa"]) <= {"avx2", "avx512f", "avx512_bf16", "avx512_fp16",
                                                                    "amx_tile", "amx_bf16"}
    assert set(env["precision"]) == {"train.amp=bf16", "train.amp=fp16", "eval.precision=bfloat16"}
    assert all(p["runs"] == (p["reason"] is None) for p in env["precision"].values())
    assert set(env["versions"]) == {"torch", "numpy", "scikit-learn", "sentencepiece", "ray"}
    assert env["versions"]["torch"] == torch.__version__


def test_resume_continues_exactly(tiny_corpus, make_config, tmp_path):
    cfg = make_config(tiny_corpus, {"kl-annealing": {"kl_start": 0.1, "warm_up": 1}})
    straight = train(cfg, tmp_path / "straight")
    assert train(cfg, tmp_path / "crashed", callbacks=[StopAfter(1)]) == {}
    assert not (tmp_path / "crashed" / "results.json").exists()
    resumed = train(cfg, tmp_path / "crashed", resume=True)
    assert metrics(tmp_path / "straight") == metrics(tmp_path / "crashed")
    assert straight == resumed


def test_resume_rejects_an_incompatible_config(tiny_corpus, make_config, tmp_path):
    cfg = make_config(tiny_corpus)
    train(cfg, tmp_path / "run", callbacks=[StopAfter(1)])
    other = make_config(tiny_corpus, model={"latent_dim": 8})
    with pytest.raises(ConfigError, match=r"--resume cannot change model.latent_dim \(4 -> 8\)"):
        train(other, tmp_path / "run", resume=True)


def test_runs_saved_before_a_config_key_existed_still_load(tiny_corpus, make_config, tmp_path):
    run = tmp_path / "run"
    train(make_config(tiny_corpus, {"kl-annealing": {}}), run, callbacks=[StopAfter(1)])
    config = json.loads((run / "config.json").read_text())
    del config["model"]["encoder_init"]  # as written by an older textvae
    config["strategies"]["kl-annealing"] = {}
    (run / "config.json").write_text(json.dumps(config))
    assert load_run(run, "last").config.model.encoder_init is None


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_corpus, make_config, tmp_path, monkeypatch):
    cfg = make_config(tiny_corpus)
    run = tmp_path / "run"
    train(cfg, run, callbacks=[StopAfter(1)])
    before = (run / "checkpoints" / "last.pt").read_bytes()
    original = Trainer.train_step

    def poisoned(self, batch):
        self.model.decoder.out.weight.data.fill_(float("nan"))
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", poisoned)
    with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 2.*last good checkpoint kept"):
        train(cfg, run, resume=True)
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
    assert load_run(run, "last").model is not None


def test_atomic_save_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_atomic({"a": torch.ones(2)}, path)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError):
        save_atomic({"a": torch.zeros(2)}, path)
    assert torch.load(path, weights_only=True)["a"].tolist() == [1.0, 1.0]
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_corrupt_checkpoint_is_a_one_line_error(tiny_corpus, make_config, tmp_path):
    run = tmp_path / "run"
    train(make_config(tiny_corpus), run, callbacks=[StopAfter(1)])
    (run / "checkpoints" / "best.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="best.pt: not a readable textvae checkpoint") as err:
        load_run(run)
    assert "\n" not in str(err.value)


def test_lr_decays_and_reloads_best(tiny_corpus, make_config, tmp_path, monkeypatch):
    cfg = make_config(tiny_corpus, train={"epochs": 8, "decay_epoch": 2, "load_best_epoch": 3, "max_decay": 2})
    scores = iter([10.0, 11.0, 12.0, 13.0, 9.0, 9.5, 9.6, 9.7])
    reloads = []
    monkeypatch.setattr(Trainer, "validate", lambda self: {"elbo": next(scores), "rec": 0.0, "kl": 0.0})
    original = Trainer.load_best
    monkeypatch.setattr(Trainer, "load_best", lambda self: (reloads.append(self.state.epoch), original(self)))
    train(cfg, tmp_path / "run", evaluate_test=False)
    log = metrics(tmp_path / "run")
    # epochs 2, 3 are bad but the decay waits for epoch >= 3; epoch 6, 7 are bad -> second decay -> stop
    assert [r.get("decay") for r in log] == [None, None, {"count": 1, "lr": 0.5}, None, None, None,
                                             {"count": 2, "lr": 0.25}]
    assert reloads == [3, 7]
    assert [r["best"] for r in log] == [True, False, False, False, True, False, False]


def test_lstm_lm_trains_and_reports_zero_kl(tiny_corpus, make_config, tmp_path):
    results = train(make_config(tiny_corpus, model={"kind": "lstm-lm"}), tmp_path / "lm")
    assert results["kl"] == 0.0 and results["au"] == 0
    assert results["nll"] == pytest.approx(results["elbo"], rel=1e-5)


def test_learned_prior_gets_its_own_adam_and_resumes_exactly(tiny_corpus, make_config, tmp_path):
    cfg = make_config(tiny_corpus, {"kl-annealing": {"warm_up": 1}}, prior={"name": "decoupled", "blocks": 2},
                      train={"prior_optimizer": "adam", "prior_lr": 1e-3})
    trainer = Trainer(cfg, tmp_path / "probe")
    flow = trainer.groups["prior"].optimizer
    assert isinstance(flow, torch.optim.Adam) and flow.param_groups[0]["lr"] == 1e-3
    assert {id(p) for g in flow.param_groups for p in g["params"]} == {id(p) for p in trainer.model.prior.parameters()}
    straight = train(cfg, tmp_path / "straight")
    train(cfg, tmp_path / "crashed", callbacks=[StopAfter(1)])
    assert train(cfg, tmp_path / "crashed", resume=True) == straight

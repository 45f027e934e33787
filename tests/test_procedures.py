"""Training procedures: the default joint step, Agg-VAE's aggressive loop, optimiser groups."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from textvae import resolution
from textvae.config import RunConfig
from textvae.errors import ConfigError
from textvae.procedures import aggressive as aggressive_module
from textvae.procedures import build_procedure
from textvae.training import StopAfter, Trainer, train
from textvae.types import LossTerms, Objective, StepContext


def metrics(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("seconds")
    return lines


class ScriptedLoop:
    """A TrainingLoop whose losses per word come from a script; records which groups each update stepped."""

    def __init__(self, losses_per_word):
        self.losses = iter(losses_per_word)
        self.ctx = StepContext(kl_weight=1.0)
        self.groups = SimpleNamespace(main=["encoder", "decoder"])
        self.updates: list[list[str]] = []
        self.batch = SimpleNamespace(n_targets=lambda: 10)

    def compute(self, batch):
        loss = torch.tensor([next(self.losses, 1.0) * 10.0])
        terms = LossTerms(rec=loss, kl=torch.zeros(1), kl_dims=None, posterior=None, z=None, n_targets=10)
        return terms, Objective(rec=terms.rec, kl=terms.kl, kl_weight=1.0)

    def backward_step(self, loss, groups):
        self.updates.append(list(groups))

    def random_batch(self):
        return self.batch


def encoder_updates(losses, **config):
    procedure = build_procedure({"name": "aggressive", **config})
    loop = ScriptedLoop(losses)
    procedure.step(loop, loop.batch)
    assert loop.updates[-1] == ["decoder"], "the batch ends with one decoder-only update"
    assert all(u == ["encoder"] for u in loop.updates[:-1])
    return len(loop.updates) - 1


def test_inner_loop_runs_to_the_cap_while_the_loss_keeps_falling():
    assert encoder_updates([10 - 0.01 * i for i in range(200)]) == 99
    assert encoder_updates([10 - 0.01 * i for i in range(200)], max_inner_steps=40) == 40


def test_inner_loop_stops_at_the_first_window_whose_loss_rose():
    falling = [5.0] * 15 + [4.0] * 15
    assert encoder_updates(falling + [4.5] * 15 + [1.0] * 100) == 45
    # equal windows do not stop it; the first window only has the sentinel to beat
    assert encoder_updates([4.0] * 30 + [4.5] * 15) == 45
    assert encoder_updates([2e4] * 15) == 15, "a first window above the sentinel stops at once"
    assert encoder_updates([3.0, 1.0] * 3 + [5.0] * 100, window=3) == 9  # 7/3, then 5/3, then 5: rose


def test_aggressive_mode_ends_for_good_after_the_first_mi_drop(monkeypatch):
    scripted = iter([0.5, 0.9, 0.8, 2.0])
    monkeypatch.setattr(aggressive_module, "posterior_pass", lambda *a, **k: SimpleNamespace(posteriors=[]))
    monkeypatch.setattr(aggressive_module, "mutual_information", lambda *a, **k: next(scripted))
    procedure = build_procedure({"name": "aggressive"})
    loop = SimpleNamespace(model=torch.nn.Linear(1, 1), valid_batches=[])
    modes = []
    for _ in range(4):
        procedure.on_validation(loop, {})
        modes.append(procedure.aggressive)
    assert modes == [True, True, False, False]
    scripted_loop = ScriptedLoop([1.0] * 10)
    procedure.step(scripted_loop, scripted_loop.batch)
    assert scripted_loop.updates == [["encoder", "decoder"]], "after the switch-off: one joint update"


def test_aggressive_training_resumes_exactly_and_logs_its_state(tiny_corpus, make_config, tmp_path):
    cfg = make_config(tiny_corpus, {"kl-annealing": {"kl_start": 0.1, "warm_up": 1}},
                      procedure={"name": "aggressive", "max_inner_steps": 4, "window": 2}, eval={"iw_samples": 2})
    straight = train(cfg, tmp_path / "straight")
    train(cfg, tmp_path / "crashed", callbacks=[StopAfter(1)])
    assert train(cfg, tmp_path / "crashed", resume=True) == straight
    logged = metrics(tmp_path / "straight")
    assert logged == metrics(tmp_path / "crashed")
    assert {"aggressive", "mi", "inner_steps_per_batch"} <= set(logged[0]["procedure"])
    assert 1 <= logged[0]["procedure"]["inner_steps_per_batch"] <= 4


def test_aggressive_inner_updates_leave_the_decoder_alone(tiny_corpus, make_config, tmp_path):
    cfg = make_config(tiny_corpus, procedure={"name": "aggressive", "max_inner_steps": 3, "window": 5})
    trainer = Trainer(cfg, tmp_path / "run")
    stepped = []
    original = trainer.groups.step
    trainer.groups.step = lambda names: (stepped.append(list(names)), original(names))[1]
    batch = trainer.eval_batches("train")[0]
    trainer._epoch_batches = [batch]
    decoder = [p.detach().clone() for p in trainer.model.decoder.parameters()]
    encoder = [p.detach().clone() for p in trainer.model.encoder.parameters()]
    trainer.procedure.step(trainer, batch)
    assert stepped == [["encoder"]] * 3 + [["decoder"]]
    assert any(not torch.equal(a, b) for a, b in zip(encoder, trainer.model.encoder.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(decoder, trainer.model.decoder.parameters()))


def test_optimiser_groups_survive_resume_and_learning_rate_decay(tiny_corpus, make_config, tmp_path):
    # Momentum gives the optimisers state to lose; decays from the first bad epoch on.
    cfg = make_config(tiny_corpus, train={"epochs": 4, "momentum": 0.9, "lr": 0.5, "decay_epoch": 1,
                                          "load_best_epoch": 1, "max_decay": 5},
                      eval={"iw_samples": 2})
    straight = train(cfg, tmp_path / "straight")
    for stop in (1, 2):
        run = tmp_path / f"crashed{stop}"
        train(cfg, run, callbacks=[StopAfter(stop)])
        assert train(cfg, run, resume=True) == straight
        assert metrics(run) == metrics(tmp_path / "straight")
    decays = [r for r in metrics(tmp_path / "straight") if "decay" in r]
    assert decays, "the schedule decayed at least once"
    trainer = Trainer(cfg, tmp_path / "straight")
    trainer.resume()
    assert set(trainer.groups.state_dict()) == {"encoder", "decoder"}
    for name in ("encoder", "decoder"):
        assert trainer.groups[name].optimizer.param_groups[0]["lr"] == pytest.approx(trainer.state.lr)
    assert trainer.state.lr == pytest.approx(0.5 * 0.5 ** trainer.state.decays)


def test_per_module_clipping_clips_encoder_and_decoder_separately(tiny_corpus, make_config, tmp_path):
    def stepped_norms(clip, scope):
        torch.manual_seed(0)
        trainer = Trainer(make_config(tiny_corpus, train={"clip_grad": clip, "clip_scope": scope}), tmp_path / scope)
        trainer.ctx.kl_weight = 1.0
        _, objective = trainer.compute(trainer.eval_batches("train")[0])
        captured = {}
        trainer.groups.step = lambda names: captured.update(
            {g: torch.norm(torch.stack([p.grad.norm() for p in trainer.groups[g].params if p.grad is not None]))
             for g in ("encoder", "decoder")})
        trainer.backward_step(objective.total(), trainer.groups.main)
        return captured

    raw = stepped_norms(0.0, "global")
    clip = float(min(raw.values())) / 2
    scale = lambda norm: min(1.0, clip / (float(norm) + 1e-6))  # noqa: E731 - torch's clip_grad_norm_ rule
    separate = stepped_norms(clip, "per-module")
    for group in ("encoder", "decoder"):
        assert float(separate[group]) == pytest.approx(float(raw[group]) * scale(raw[group]), rel=1e-4)
    joint = stepped_norms(clip, "global")
    factor = scale(torch.hypot(raw["encoder"], raw["decoder"]))
    for group in ("encoder", "decoder"):
        assert float(joint[group]) == pytest.approx(float(raw[group]) * factor, rel=1e-4)
    assert factor != pytest.approx(scale(raw["encoder"]), rel=1e-2), "the two scopes must differ here"


def test_objective_logs_reach_the_metrics_log(tiny_corpus, make_config, tmp_path):
    cfg = make_config(tiny_corpus, {"factor-vae": {"disc_hidden": 8, "disc_layers": 1}}, train={"epochs": 1},
                      eval={"iw_samples": 2})
    train(cfg, tmp_path / "run")
    record = metrics(tmp_path / "run")[0]
    assert "tc" in record["objective"] and isinstance(record["objective"]["tc"], float)


def test_procedure_config_errors_name_the_key(tiny_corpus):
    base = {"data": {"corpus": str(tiny_corpus)}}
    with pytest.raises(ConfigError, match=r"unknown procedure 'agressive'.*aggressive"):
        resolution.from_dict({**base, "procedure": {"name": "agressive"}})
    with pytest.raises(ConfigError, match=r"unknown key 'procedure.windw'"):
        resolution.from_dict({**base, "procedure": {"name": "aggressive", "windw": 3}})
    with pytest.raises(ConfigError, match=r"procedure.name 'aggressive'.*lstm-lm"):
        RunConfig.from_dict({**base, "model": {"kind": "lstm-lm"}, "procedure": {"name": "aggressive"}})
    with pytest.raises(ConfigError, match=r"procedure.name must be one procedure name"):
        RunConfig.from_dict({**base, "procedure": {"name": ["aggressive", "default"]}})
    with pytest.raises(ConfigError, match=r"key 'procedure.window' must be >= 1, got 0"):
        resolution.from_dict({**base, "procedure": {"name": "aggressive", "window": 0}})

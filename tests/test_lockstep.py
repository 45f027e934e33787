"""eval/lockstep_reference.py on a stand-in program written here (no reference code), and the pure
parts of eval/lockstep.py (dump placement, parting step, acceptance, rendering)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from eval import lockstep as lockstep_script

ROOT = Path(__file__).resolve().parents[1]

MODULES = '''
import torch
from torch import nn

class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.linear = nn.Embedding(9, 4), nn.Linear(4, 4)
    def forward(self, x):
        return self.linear(self.embed(x).mean(1)).chunk(2, -1)
    def reparameterize(self, mu, logvar, nsamples=1):
        eps = torch.randn(mu.size(0), nsamples, mu.size(1))
        return mu.unsqueeze(1) + eps * (0.5 * logvar).exp().unsqueeze(1)
    def encode(self, x, nsamples):
        mu, logvar = self.forward(x)  # called directly, as the programs do
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)
        return self.reparameterize(mu, logvar, nsamples), kl

class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.out = nn.Embedding(9, 2, padding_idx=-1), nn.Linear(2, 9)
    def reconstruct_error(self, x, z):
        h = self.embed(x[:, :-1]).mean(1, keepdim=True) + z.mean(-1, keepdim=True)
        return nn.functional.cross_entropy(self.out(h).expand(-1, z.size(1), -1).reshape(-1, 9),
                                           x[:, -1].repeat_interleave(z.size(1)), reduction="none"
                                           ).view(x.size(0), -1)

class VAE(nn.Module):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
    def loss(self, x, kl_weight, nsamples=1):
        z, kl = self.encoder.encode(x, nsamples)
        rec = self.decoder.reconstruct_error(x, z).mean(1)
        return rec + kl_weight * kl, rec, kl
'''

PROGRAM = '''
import os
import numpy as np, torch
from modules import VAE, Encoder, Decoder
torch.manual_seed(0); np.random.seed(0)
vae = VAE(Encoder(), Decoder())
enc = torch.optim.SGD(vae.encoder.parameters(), lr=1.0)
dec = torch.optim.SGD(vae.decoder.parameters(), lr=1.0)
batches = [torch.randint(0, 9, (3, 5)) for _ in range(5)]
batches[3][0, 1] = 8  # the last word, read by the decoder
torch.manual_seed(int.from_bytes(os.urandom(4), "little"))  # posterior noise differs from run to run
vae.train()
for step, i in enumerate(np.random.permutation(len(batches))):
    enc.zero_grad(); dec.zero_grad()
    loss, rec, kl = vae.loss(batches[i], 0.1 * (step + 1))
    loss.mean().backward()
    torch.nn.utils.clip_grad_norm_(vae.parameters(), 5.0)
    enc.step(); dec.step()
vae.eval()
vae.loss(batches[0], 1.0)
raise SystemExit("evaluation reached: the runner should have stopped the program")
'''


def run_program(tmp_path: Path, dump: str) -> Path:
    (tmp_path / "prog" / "modules").mkdir(parents=True)
    (tmp_path / "prog" / "modules" / "__init__.py").write_text(MODULES)
    (tmp_path / "prog" / "prog.py").write_text(PROGRAM)
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(ROOT / "eval" / "lockstep_reference.py"), str(out), dump, "prog.py"],
                   cwd=tmp_path / "prog", check=True, capture_output=True, text=True)
    return out


def test_the_runner_logs_every_update_saves_states_and_stops_at_evaluation(tmp_path):
    out = run_program(tmp_path, "2")
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2, 3, 4, 5]
    assert [round(s["kl_weight"], 6) for s in steps] == [0.1, 0.2, 0.3, 0.4, 0.5] and steps[0]["lr"] == 1.0
    assert {"rec", "kl", "grad_before", "grad_after"} <= set(steps[0])
    assert set(steps[0]["grad_before"]) == {"encoder", "decoder", "all"}
    initial = torch.load(out / "initial.pt", weights_only=True)
    two, three = (torch.load(out / f"state_{k}.pt", weights_only=False) for k in (2, 3))
    assert two["kl_weight"] == 0.2 and two["batch"].shape == (3, 5)
    assert not torch.equal(two["state"]["encoder.linear.weight"], three["state"]["encoder.linear.weight"])
    assert not torch.equal(initial["encoder.linear.weight"], two["state"]["encoder.linear.weight"])
    # the update whose batch feeds the decoder the last word is saved with its successor
    last = [int(k) for k in (out / "last_word_steps.txt").read_text().split()]
    assert last and all((out / f"state_{k}.pt").is_file() and (out / f"state_{k + 1}.pt").is_file()
                        for k in last)
    # the posterior sample is the mean: a second run, with other noise, logs the same figures
    again = run_program(tmp_path / "again", "2")
    assert (again / "steps.jsonl").read_text() == (out / "steps.jsonl").read_text()


def test_dumps_parting_and_acceptance():
    lockstep = lockstep_script
    steps = lockstep.dump_steps(90, 12)
    assert len(steps) == 12 and steps[0] == 1 and steps[-1] == 89
    curve = [{"step": k, "rec": 100.0, "kl": 5.0, "kl_weight": 0.1, "lr": 1.0, "grad_before": {"all": 2.0}}
             for k in (1, 2, 3)]
    moved = [dict(c) for c in curve]
    moved[2] = {**moved[2], "kl": 5.01}
    assert lockstep.first_parting(moved, curve) == (3, "kl")
    assert lockstep.first_parting(curve, curve) == (None, "")
    record = {"last_word_steps": [5], "resync": [
        {"step": 1, "max_rel_figures": 1e-7, "max_rel_param": 2e-7},
        {"step": 5, "max_rel_figures": 1e-5, "max_rel_param": 2e-4}]}
    assert lockstep.except_last_word(record) == 2e-7
    assert lockstep.accepted(record) == "no (last-word update 5)"
    record["resync"][0]["max_rel_param"] = 1e-3
    assert lockstep.accepted(record).startswith("no: 1")


LM_MODULES = MODULES + '''

class LSTM_LM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.pred_linear = nn.Embedding(9, 2, padding_idx=-1), nn.Linear(2, 9)
    def reconstruct_error(self, x):
        h = self.embed(x[:, :-1])
        return nn.functional.cross_entropy(self.pred_linear(h).reshape(-1, 9), x[:, 1:].reshape(-1),
                                           reduction="none").view(x.size(0), -1).sum(-1)
'''

LM_PROGRAM = '''
import numpy as np, torch
from torch import optim
from modules import LSTM_LM
torch.manual_seed(0); np.random.seed(0)
lm = LSTM_LM()
opt = optim.SGD(lm.parameters(), lr=1.0)
batches = [torch.randint(0, 9, (3, 5)) for _ in range(4)]
lm.train()
for i in np.random.permutation(len(batches)):
    opt.zero_grad()
    lm.reconstruct_error(batches[i]).mean().backward()
    torch.nn.utils.clip_grad_norm_(lm.parameters(), 5.0)
    opt.step()
lm.eval()
with torch.no_grad():
    lm.reconstruct_error(batches[0])
raise SystemExit("evaluation reached: the runner should have stopped the program")
'''


def test_the_runner_follows_a_language_model_and_keeps_its_final_model(tmp_path):
    (tmp_path / "prog" / "modules").mkdir(parents=True)
    (tmp_path / "prog" / "modules" / "__init__.py").write_text(LM_MODULES)
    (tmp_path / "prog" / "lm.py").write_text(LM_PROGRAM)
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(ROOT / "eval" / "lockstep_reference.py"), str(out), "2", "lm.py"],
                   cwd=tmp_path / "prog", check=True, capture_output=True, text=True)
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2, 3, 4]
    assert all(s["kl"] == 0.0 and s["kl_weight"] is None and s["rec"] > 0 for s in steps)
    # the language model's modules are textvae's decoder
    assert set(steps[0]["grad_before"]) == {"decoder", "all"}
    assert torch.load(out / "state_2.pt", weights_only=False)["batch"].shape == (3, 5)
    final = torch.load(out / "final.pt", weights_only=True)
    initial = torch.load(out / "initial.pt", weights_only=True)
    assert set(final) == {"embed.weight", "pred_linear.weight", "pred_linear.bias"}
    assert not torch.equal(final["pred_linear.weight"], initial["pred_linear.weight"])


def test_a_two_program_row_runs_stage_by_stage():
    from eval import parity

    one = lockstep_script.parts(parity.ROWS["bn-vae"])
    assert [(p.name, p.stage, p.script, p.loads) for p in one] == [("", 0, "text_anneal_fb.py", "")]
    two = lockstep_script.parts(parity.ROWS["pretrain-fb"])
    assert [(p.name, p.stage, p.script, p.loads) for p in two] == [
        ("pretrain", 0, "text_beta.py", ""), ("vae", 1, "text_anneal_fb.py", "pretrain")]
    assert lockstep_script.curve_key({"recipe": "pretrain-fb", "stage": "vae", "overrides": ["a=1"]}) == \
        "pretrain-fb:vae a=1"


def test_self_parting_range_over_thread_counts():
    record = {"self_first_steps_by_threads": {"2": 30, "3": 24, "4": None}}
    assert lockstep_script.self_range(record) == "24–30 (1 of 3 never)"
    assert lockstep_script.self_range({"self_first_steps_by_threads": {"2": None}}) == "none"
    assert lockstep_script.self_range({"self_first_steps_by_threads": {"2": 7, "3": 7}}) == "7"
    assert lockstep_script.self_range({}) == "not run"

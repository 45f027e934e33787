"""eval/last_step.py: one more update from a finished run, measured on the validation split."""

from __future__ import annotations

import hashlib
import json

from eval import last_step as last_step_script
from textvae.data import load_corpus
from textvae.training import train
from textvae.training.trainer import epoch_batches


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_one_step_per_bucket_from_the_last_checkpoint_leaves_the_run_alone(tiny_corpus, make_config, tmp_path):
    last_step = last_step_script
    config = make_config(tiny_corpus, data={"batch_size": 4, "bucket_order": "argsort"}, train={"epochs": 2})
    run = tmp_path / "run"
    train(config, run, evaluate_test=False)
    before = digest(run)
    out = tmp_path / "out" / "last_step"
    last_step.main([str(run), "--words", "2", "3", "99", "--per-length", "2", "--retrace", "3", "--out", str(out)])
    assert digest(run) == before
    record = json.loads(out.with_suffix(".json").read_text())["runs"][0]
    assert record["epoch"] == 2 and record["seed"] == 1 and record["strategies"] == ["vae"]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert abs(record["valid"]["rec"] - metrics[-1]["valid"]["rec"]) < 1e-6  # the run's own last figure
    # the listed tail is what the run trained on last, in its order
    trained = epoch_batches(config, load_corpus(config.data).splits["train"], 1)
    assert record["last_buckets_words"] == [b.max_words for b in trained[-6:]]
    steps = {s["words"]: s for s in record["one_step"]}
    assert steps[99]["buckets"] == 0 and steps[99]["changes"] == []
    for words in (2, 3):
        assert 1 <= steps[words]["buckets"] <= 2
        assert all(c["rec"] != 0.0 for c in steps[words]["changes"])  # a step at lr 1 moves the model
    # trained again, the run passes through its own final state: the last retraced score is its last figure
    trace = record["retrace"]
    assert [t["update"] for t in trace] == [len(trained) - 2, len(trained) - 1, len(trained)]
    assert [t["words"] for t in trace] == [b.max_words for b in trained[-3:]]
    assert abs(trace[-1]["valid_rec"] - metrics[-1]["valid"]["rec"]) < 1e-6
    text = out.with_suffix(".md").read_text()
    assert "| run | epoch | valid rec |" in text and "| update | bucket (words × sentences) |" in text

"""Batch schedules (data.batch_schedule): a run trains on a recorded order of its batches."""

from __future__ import annotations

import json

import pytest

from textvae.config import RunConfig
from textvae.data import cut_batches, load_corpus, make_batches
from textvae.data.schedule import FORMAT, load_schedule, write_schedule
from textvae.errors import ConfigError, DataError
from textvae.training import train
from textvae.training.trainer import epoch_batches


def rows(batches) -> list[list[int]]:
    return [b.index.tolist() for b in batches]


def cut(split, config) -> list:
    """The training batches before any shuffle: the list a schedule's positions refer to."""
    return cut_batches(split, config.data.batch_size, config.data.batching, bucket_order=config.data.bucket_order)


def test_an_order_replaces_the_seeded_shuffle_of_the_same_batches(tiny_corpus, make_config):
    config = make_config(tiny_corpus, data={"batch_size": 4, "bucket_order": "argsort"})
    split = load_corpus(config.data).splits["train"]
    listed = cut(split, config)
    order = list(reversed(range(len(listed))))
    assert rows(make_batches(split, 4, shuffle=True, bucket_order="argsort", order=order)) == rows(listed[::-1])
    # the seeded shuffle draws an order of the same batches
    shuffled = make_batches(split, 4, shuffle=True, seed=7, bucket_order="argsort")
    assert sorted(rows(shuffled)) == sorted(rows(listed)) and rows(shuffled) != rows(listed)
    with pytest.raises(DataError, match=f"lists 3 batches; the training split is cut into {len(listed)}"):
        make_batches(split, 4, shuffle=True, bucket_order="argsort", order=[0, 1, 2])
    with pytest.raises(ValueError, match="cut the same way every epoch"):
        make_batches(split, 4, "padded", shuffle=True, order=order)
    with pytest.raises(ValueError, match="cut the same way every epoch"):
        cut_batches(split, 4, "padded")
    # the list as cut is the one an identity order gives
    assert rows(make_batches(split, 4, shuffle=True, bucket_order="argsort", order=list(range(len(listed))))) == \
        rows(listed)


def schedule_of(config, split, orders_by_seed) -> dict:
    return {"format": FORMAT, "source": "test", "batches": len(cut(split, config)), "seeds": orders_by_seed}


def valid_figures(run) -> list[dict]:
    return [json.loads(line)["valid"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_run_on_the_schedule_of_its_own_shuffle_is_the_same_run(tiny_corpus, make_config, tmp_path):
    config = make_config(tiny_corpus, data={"batch_size": 4, "bucket_order": "argsort"})
    split = load_corpus(config.data).splits["train"]
    position = {tuple(r): i for i, r in enumerate(rows(cut(split, config)))}
    own = [[position[tuple(r)] for r in rows(epoch_batches(config, split, e))] for e in range(2)]
    path = tmp_path / "schedule.json"
    write_schedule(path, len(position), {1: own, 5: own}, "textvae's own shuffle of seed 1")
    scheduled = RunConfig.from_dict({**config.to_dict(), "data": {**config.to_dict()["data"],
                                                                  "batch_schedule": str(path)}})
    for e in range(2):
        assert rows(epoch_batches(scheduled, split, e)) == rows(epoch_batches(config, split, e))
    train(config, tmp_path / "seeded", evaluate_test=False)
    train(scheduled, tmp_path / "scheduled", evaluate_test=False)
    seeded, same = (valid_figures(tmp_path / name) for name in ("seeded", "scheduled"))
    assert seeded == same
    # another order of the same batches trains another model
    reversed_orders = [o[::-1] for o in own]
    write_schedule(path, len(position), {1: reversed_orders}, "reversed")
    train(scheduled, tmp_path / "reversed", evaluate_test=False)
    assert valid_figures(tmp_path / "reversed")[-1] != seeded[-1]


def test_a_schedule_that_cannot_serve_the_run_stops_it_before_training(tiny_corpus, make_config, tmp_path):
    config = make_config(tiny_corpus, data={"batch_size": 4, "bucket_order": "argsort"}, train={"epochs": 2})
    split = load_corpus(config.data).splits["train"]
    n = len(cut(split, config))
    path = tmp_path / "schedule.json"

    def run_with(schedule: dict, name: str):
        path.write_text(json.dumps(schedule))
        data = {**config.to_dict()["data"], "batch_schedule": str(path)}
        train(RunConfig.from_dict({**config.to_dict(), "data": data}), tmp_path / name)

    with pytest.raises(DataError, match=r"no orders for seed 1 \(it has seeds 2\)"):
        run_with(schedule_of(config, split, {"2": [list(range(n))] * 2}), "a")
    with pytest.raises(DataError, match="has orders for 1 epochs; epoch 2 has none"):
        run_with(schedule_of(config, split, {"1": [list(range(n))]}), "b")
    with pytest.raises(DataError, match=f"lists {n + 1} batches; the training split is cut into {n}"):
        run_with({**schedule_of(config, split, {"1": [list(range(n + 1))] * 2}), "batches": n + 1}, "c")
    for name in "abc":
        assert not (tmp_path / name / "metrics.jsonl").exists()


def test_a_two_stage_run_follows_the_schedule_through_both_stages(tiny_corpus, make_config, tmp_path):
    """Encoder pretraining trains train.epochs per stage: its schedule lists the epochs of both stages, as
    the two programs of the reference recipe draw them, and a schedule for one stage only is refused."""
    stack = {"encoder-pretraining": {}, "kl-annealing": {"kl_start": 0.0, "warm_up": 1},
             "free-bits": {"mode": "per-dim", "threshold": 0.1}}
    config = make_config(tiny_corpus, stack, data={"batch_size": 4, "bucket_order": "argsort"},
                         train={"epochs": 1})
    split = load_corpus(config.data).splits["train"]
    n = len(cut(split, config))
    orders = [list(range(n)), list(reversed(range(n)))]
    path = tmp_path / "schedule.json"
    scheduled = RunConfig.from_dict({**config.to_dict(), "data": {**config.to_dict()["data"],
                                                                  "batch_schedule": str(path)}})
    write_schedule(path, n, {1: orders[:1]}, "one stage")
    with pytest.raises(DataError, match="has orders for 1 epochs; epoch 2 has none"):
        train(scheduled, tmp_path / "short")
    assert not (tmp_path / "short" / "metrics.jsonl").exists()
    write_schedule(path, n, {1: orders}, "both stages")
    train(scheduled, tmp_path / "run", evaluate_test=False)
    stages = [json.loads(line)["stage"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert stages == ["pretrain", "vae"]
    listed = rows(cut(split, config))
    assert rows(epoch_batches(scheduled, split, 1)) == listed[::-1]  # the vae stage's epoch is the schedule's 2nd


@pytest.mark.parametrize("content, message", [
    (None, "data.batch_schedule: no such file"),
    ("{not json", "not a readable JSON file"),
    ({"format": "other"}, "key 'format' must be"),
    ({"format": FORMAT, "batches": 0, "seeds": {}}, "key 'batches' must be a positive integer"),
    ({"format": FORMAT, "batches": 3, "seeds": {}}, "key 'seeds' must map seeds"),
    ({"format": FORMAT, "batches": 3, "seeds": {"x": [[0, 1, 2]]}}, "seeds key 'x' is not an integer"),
    ({"format": FORMAT, "batches": 3, "seeds": {"4": []}}, r"seeds.4 must list one order per epoch"),
    ({"format": FORMAT, "batches": 3, "seeds": {"4": [[0, 1, 2], [0, 0, 2]]}},
     r"seeds.4\[1\] is not an order of the 3 batches"),
])
def test_a_bad_schedule_file_is_one_line_naming_the_file_and_key(tmp_path, content, message):
    path = tmp_path / "schedule.json"
    if content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(DataError, match=message) as error:
        load_schedule(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_schedule_needs_batches_that_are_the_same_every_epoch(tiny_corpus, make_config):
    with pytest.raises(ConfigError, match="data.batch_schedule"):
        make_config(tiny_corpus, data={"batching": "padded", "batch_schedule": "s.json"})
    make_config(tiny_corpus, data={"batching": "padded", "batch_split": "fixed", "batch_schedule": "s.json"})

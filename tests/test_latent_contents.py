"""eval/latent_contents.py: which of a sentence's properties the stored test posterior means separate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eval import latent_contents


def fake_run(tmp_path, labels_in_file_order=True, shuffled_with_index=False):
    """Means that encode the first word exactly; the first word tells the component only half the time."""
    rng = np.random.default_rng(0)
    first = rng.integers(0, 4, 400)
    component = np.where(rng.random(400) < 0.5, first, rng.integers(0, 4, 400))
    lines = [f"c{c}\tw{f} w{rng.integers(9)} w{rng.integers(9)}" for c, f in zip(component, first)]
    (tmp_path / "data" / "toy").mkdir(parents=True)
    (tmp_path / "data" / "toy" / "test.txt").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"data": {"corpus": "toy"}}))
    means = np.stack([first * 10.0, np.zeros(400)], 1) + rng.normal(0, 0.1, (400, 2))
    labels = component.tolist() if labels_in_file_order else component[::-1].tolist()
    record = {"means": means.tolist(), "labels": labels}
    if shuffled_with_index:  # rows in another order than the file's, as batches leave them, with their positions
        order = rng.permutation(400)
        record = {"means": means[order].tolist(), "labels": component[order].tolist(), "index": order.tolist()}
    (run / "latents_test.json").write_text(json.dumps(record))
    return run


def test_a_latent_of_the_first_word_is_read_as_that(tmp_path):
    script = latent_contents
    record = script.contents(fake_run(tmp_path), tmp_path / "data")
    assert record["word 1"]["knn_accuracy"] == 1.0
    assert 0.45 < record["component"]["knn_accuracy"] < 0.8
    assert record["word 2"]["knn_accuracy"] < 0.3
    assert "run` | toy | 0." in script.table([record])


def test_rows_in_batch_order_are_matched_to_their_sentences_by_index(tmp_path):
    script = latent_contents
    contents = script.contents(fake_run(tmp_path, shuffled_with_index=True), tmp_path / "data")
    assert contents["word 1"]["knn_accuracy"] == 1.0


def test_means_out_of_file_order_are_refused(tmp_path):
    script = latent_contents
    with pytest.raises(SystemExit, match="not those of"):
        script.contents(fake_run(tmp_path, labels_in_file_order=False), tmp_path / "data")

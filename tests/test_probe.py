import numpy as np
import pytest
from tiny_vae import save_run

from textvae.errors import ConfigError, DataError
from textvae.probing import SGDLinearProbe, load_probe_data, probe_data_dir, run_probe
from textvae.probing.protocol import fit_logreg
from textvae.probing.sgd import length_buckets
from textvae.runs import load_run

MODEL = {"embed_dim": 16, "enc_hidden": 16, "dec_hidden": 16, "latent_dim": 4, "init": "pytorch"}


def separable(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 3)) + np.outer(2 * y - 1, [2.0, 0.0, -1.0])
    return x, y


def test_length_buckets_group_identical_lengths_and_skip_singletons():
    lengths = np.array([3, 5, 3, 3, 4, 5, 3, 7])
    buckets = length_buckets(lengths, batch_size=3, min_bucket=2)
    assert [sorted(b.tolist()) for b in buckets] == [[0, 2, 3], [1, 5]]  # the 4th "3" and "4", "7" alone


def test_sgd_probe_learns_a_separable_problem_and_selects_on_validation():
    x, y = separable(400, 0)
    xv, yv = separable(200, 1)
    xt, yt = separable(400, 2)
    lengths = np.repeat([4, 5, 6, 7], 100)
    probe = SGDLinearProbe(seed=0).fit(x, y, lengths, xv, yv, n_classes=2)
    assert (probe.predict(xt) == yt).mean() > 0.95
    assert probe.valid_loss_ < 0.2 and 1 <= probe.epochs_ <= 100
    again = SGDLinearProbe(seed=0).fit(x, y, lengths, xv, yv, n_classes=2)
    np.testing.assert_array_equal(again.predict(xt), probe.predict(xt))


def test_logistic_regression_probe_picks_c_by_validation_log_loss():
    x, y = separable(200, 3)
    xv, yv = separable(200, 4)
    loss, c, clf = fit_logreg(x, y, xv, yv, np.array([0, 1]), cs=(1e-4, 1.0))
    assert c == 1.0 and loss < 0.3
    assert (clf.predict(xv) == yv).mean() > 0.9


def write_probe_files(root, prefix=""):
    rng = np.random.default_rng(0)
    words = "the food was good bad great awful staff".split()
    root.mkdir()

    def lines(n):
        out = []
        for _ in range(n):
            sent = rng.choice(words, size=rng.integers(2, 6))
            out.append(f"{int('good' in sent or 'great' in sent)}\t{' '.join(sent)}")
        return "\n".join(out) + "\n"

    for name, n in (("train.10", 10), ("train.30", 30), ("valid", 40), ("test", 40)):
        (root / f"{prefix}{name}.txt").write_text(lines(n))
    return root


def test_run_probe_reports_both_probes_per_subset(make_config, tiny_corpus, tmp_path):
    run = load_run(save_run(make_config(tiny_corpus, model=MODEL), tmp_path / "run"))
    data = load_probe_data(write_probe_files(tmp_path / "probe"), subsets=(10, 30))
    out = run_probe(run.model, run.vocab, data, subsets=(10, 30), seed=0)
    assert set(out) == {"sgd-linear", "sklearn-logreg"}
    for probe in out.values():
        assert set(probe["accuracy"]) == {"10", "30"}
        assert all(0.0 <= a <= 100.0 for a in probe["accuracy"].values())
        # accuracy on 40 test sentences is a multiple of 2.5%
        assert all(float(a / 2.5).is_integer() for a in probe["accuracy"].values())
    assert "C" in out["sklearn-logreg"]["selected"]["10"]
    assert out == run_probe(run.model, run.vocab, data, subsets=(10, 30), seed=0)
    with pytest.raises(ConfigError, match="unknown probe"):
        run_probe(run.model, run.vocab, data, subsets=(10,), probes=("mlp",))


def test_probe_files_with_the_published_prefix_and_missing_ones(tmp_path):
    root = write_probe_files(tmp_path / "sy", prefix="short_yelp.")
    data = load_probe_data(root, subsets=(10,))
    assert set(data) == {"train.10", "valid", "test"} and len(data["train.10"].texts) == 10
    with pytest.raises(DataError, match="train.100.txt"):
        load_probe_data(root, subsets=(100,))
    assert probe_data_dir(str(root)) == root
    with pytest.raises(DataError, match="not found"):
        probe_data_dir(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="not found"):
        probe_data_dir("short-yelp", data_dir=tmp_path)


def test_subsets_are_drawn_from_a_labeled_train_file_when_none_ship(tmp_path):
    root = write_probe_files(tmp_path / "corpus")
    (root / "train.10.txt").rename(root / "train.txt")
    (root / "train.30.txt").unlink()
    data = load_probe_data(root, subsets=(3, 6))
    full = (root / "train.txt").read_text().splitlines()
    small, big = data["train.3"], data["train.6"]
    assert (len(small.texts), len(big.texts)) == (3, 6)
    assert small.texts == big.texts[:3]  # nested: one seeded shuffle, its first N
    assert {f"{label}\t{text}" for label, text in zip(big.labels, big.texts)} <= set(full)
    assert load_probe_data(root, subsets=(3, 6)) == data  # seeded
    assert data["train.6"].texts != [line.split("\t")[1] for line in full[:6]]  # shuffled, not the head
    with pytest.raises(DataError, match="subset of 11 sentences asked for, but it has only 10"):
        load_probe_data(root, subsets=(11,))

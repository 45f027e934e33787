"""Nothing textvae does deletes what it did not write: every place that deletes or replaces, each
tried on a folder that also holds a user's file and a ``.git``, which must survive byte for byte.

The places: a run's replacement (``--overwrite``, a run without progress) and its temp-file clean-up
(:mod:`textvae.rundir`), the trainer's stage switch (``checkpoints/best.pt``), sweep points,
``data prepare``/``download --force``, ``data synthesize --force``, the corpus cache, and the Ray
folders of killed sweeps.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from textvae.cli.main import app
from textvae.config import RunConfig
from textvae.errors import ConfigError, DataError, RunFolderError, TextVAEError
from textvae.rundir import RunDir, foreign_entries
from textvae.training import StopAfter, train


def plant(folder: Path) -> None:
    """A user's file and a git repository in ``folder``."""
    (folder / ".git" / "objects").mkdir(parents=True, exist_ok=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / ".git" / "objects" / "ab12").write_bytes(b"\x78\x9c\x00binary")
    (folder / "notes.txt").write_bytes(b"my notes\r\n\xe2\x80\xa8 second\n")


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry below ``folder``: a file's bytes, None for a folder."""
    return {
        p.relative_to(folder).as_posix(): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


def planted(folder: Path) -> dict[str, bytes | None]:
    return {k: v for k, v in snapshot(folder).items() if k == "notes.txt" or k.startswith(".git")}


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


# ---- run folders -------------------------------------------------------------------------------
NOT_RUN_CONFIGS = {
    "empty object": "{}",
    "an app's settings": '{"my": "app settings"}',
    "a list": "[1]",
    "not JSON": "port = 8080\n",
    "a full run config without the format, alone": json.dumps(RunConfig().to_dict()),
}


@pytest.mark.parametrize("text", NOT_RUN_CONFIGS.values(), ids=NOT_RUN_CONFIGS.keys())
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_config_json_that_is_no_run_config_makes_no_run(
    tiny_corpus, make_config, tmp_path, text, overwrite
):
    folder = tmp_path / "proj"
    (folder / "data").mkdir(parents=True)
    (folder / "config.json").write_text(text)
    (folder / "data" / "keep.txt").write_text("x")
    plant(folder)
    before = snapshot(folder)
    assert not RunDir(folder).is_run()
    with pytest.raises(
        RunFolderError,
        match=r"folder is not empty and holds no textvae run \(.*it holds "
        r"\.git/, config\.json, data/, notes\.txt\)",
    ):
        train(make_config(tiny_corpus), folder, overwrite=overwrite)
    assert snapshot(folder) == before


def test_out_dot_in_a_git_checkout_is_refused_in_one_line(tmp_path, monkeypatch):
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "config.json").write_text('{"my": "app settings"}')
    (proj / "src" / "app.py").write_text("print(1)\n")
    (proj / "README.md").write_text("# my project\n")
    plant(proj)
    before = snapshot(proj)
    monkeypatch.chdir(proj)
    for extra in ([], ["--overwrite"]):
        result = CliRunner().invoke(
            app,
            [
                "recipe",
                "demo",
                "vae",
                "--set",
                "train.epochs=1",
                "--set",
                "data.train_limit=300",
                "--out",
                ".",
                *extra,
            ],
        )
        assert result.exit_code == 2
        assert "holds no textvae run" in one_error_line(result.output)
    assert snapshot(proj) == before


def test_overwrite_removes_the_run_and_refuses_a_folder_with_anything_else(
    tiny_corpus, make_config, tmp_path
):
    cfg = make_config(tiny_corpus, train={"epochs": 1, "tensorboard": True})
    run = tmp_path / "run"
    train(cfg, run)
    assert (
        foreign_entries(run) == []
    )  # every entry a run writes (TensorBoard's included) is the run's
    plant(run)
    (run / "checkpoints" / "mine.txt").write_text("kept beside the checkpoints")
    before = snapshot(run)
    with pytest.raises(
        RunFolderError,
        match=r"holds a finished run and also \.git/, checkpoints/mine\.txt, "
        r"notes\.txt, which a run does not write; nothing was deleted",
    ):
        train(cfg, run, overwrite=True)
    assert snapshot(run) == before
    (run / "checkpoints" / "mine.txt").unlink()
    (run / "notes.txt").unlink()
    import shutil

    shutil.rmtree(run / ".git")
    train(
        RunConfig.from_dict({**cfg.to_dict(), "seed": 5}), run, overwrite=True, evaluate_test=False
    )
    assert RunConfig.load(run / "config.json").seed == 5 and not RunDir(run).is_finished()


def test_a_run_without_progress_is_replaced_only_when_nothing_else_is_there(
    tiny_corpus, make_config, tmp_path
):
    cfg = make_config(tiny_corpus, train={"epochs": 1})
    run = tmp_path / "run"
    train(cfg, run, evaluate_test=False)
    import shutil

    shutil.rmtree(run / "checkpoints")  # as a run killed during its first epoch leaves it
    (run / "metrics.jsonl").write_text("")
    plant(run)
    before = snapshot(run)
    with pytest.raises(
        RunFolderError,
        match=r"holds an unfinished run \(0 epochs logged\) and also \.git/, "
        r"notes\.txt",
    ):
        train(cfg, run)
    assert snapshot(run) == before
    (run / "notes.txt").unlink()
    shutil.rmtree(run / ".git")
    train(cfg, run, evaluate_test=False)  # the same command again: replaced
    assert RunDir(run).has_progress()


def test_runs_written_before_the_format_marker_are_still_runs(tiny_corpus, make_config, tmp_path):
    cfg = make_config(tiny_corpus, train={"epochs": 2})
    run = tmp_path / "run"
    train(cfg, run, callbacks=[StopAfter(1)])
    saved = json.loads((run / "config.json").read_text())
    assert saved["format"] == 1
    del saved["format"]  # as the previous textvae wrote it
    (run / "config.json").write_text(json.dumps(saved))
    assert RunDir(run).is_run()
    assert train(cfg, run, resume=True)["epochs"] == 2
    assert (
        json.loads((run / "config.json").read_text()).get("format") is None
    )  # resume with no change: as it was
    train(cfg, run, overwrite=True, evaluate_test=False)
    assert json.loads((run / "config.json").read_text())["format"] == 1


def test_a_run_of_a_newer_format_is_read_but_never_replaced(tiny_corpus, make_config, tmp_path):
    cfg = make_config(tiny_corpus, train={"epochs": 1})
    run = tmp_path / "run"
    train(cfg, run, evaluate_test=False)
    saved = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**saved, "format": 2}))
    before = snapshot(run)
    for kwargs in ({"overwrite": True}, {"resume": True}):
        with pytest.raises(TextVAEError, match="written by a newer textvae"):
            train(cfg, run, **kwargs)
    assert snapshot(run) == before


def test_a_resume_removes_only_its_own_temp_files(tiny_corpus, make_config, tmp_path):
    cfg = make_config(tiny_corpus, train={"epochs": 2})
    run = tmp_path / "run"
    train(cfg, run, callbacks=[StopAfter(1)])
    plant(run)
    mine = {"draft.tmp": b"mine", "checkpoints/mine.tmp": b"mine too", "results.tmp": b"and this"}
    ours = [
        "config.json.a1b2c3d4.tmp",
        "checkpoints/last.pt.x7y8z9.tmp",
        ".vocab.k3j4h5.tmp/vocab.txt",
    ]
    for name, data in mine.items():
        (run / name).write_bytes(data)
    for name in ours:
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_bytes(b"half")
    before = planted(run)
    train(cfg, run, resume=True)
    assert planted(run) == before
    assert all((run / name).read_bytes() == data for name, data in mine.items())
    assert not any(
        (run / name.split("/")[0] if name.startswith(".vocab") else run / name).exists()
        for name in ours
    )


def test_the_stage_switch_touches_only_its_checkpoints(tiny_corpus, make_config, tmp_path):
    stack = {
        "encoder-pretraining": {"pretrain_epochs": 1},
        "kl-annealing": {"kl_start": 0.0, "warm_up": 1},
    }
    cfg = make_config(tiny_corpus, stack, train={"epochs": 2}, eval={"iw_samples": 2})
    run = tmp_path / "run"
    train(
        cfg, run, callbacks=[StopAfter(1)]
    )  # stage 1 done; resuming switches to stage 2 (best.pt moved aside)
    plant(run)
    (run / "checkpoints" / "mine.txt").write_text("mine")
    before = planted(run)
    train(cfg, run, resume=True)
    assert planted(run) == before and (run / "checkpoints" / "mine.txt").read_text() == "mine"
    assert (run / "checkpoints" / "pretrain-best.pt").is_file()


# ---- sweeps ------------------------------------------------------------------------------------
def test_a_sweep_point_folder_with_a_users_files_stops_the_sweep_before_it_starts(
    tiny_corpus, make_config, tmp_path
):
    from textvae.sweeps.engine import check_point_folders
    from textvae.sweeps.point import run_point
    from textvae.sweeps.spec import Point

    config = make_config(tiny_corpus, train={"epochs": 1}).to_dict()
    point = Point("demo/vae/seed1", "demo", "vae", 1, [], config)
    folder = point.run_dir(tmp_path / "sweep")
    RunDir(folder).write_config(config)  # the point's run, killed before its first checkpoint
    plant(folder)
    before = snapshot(folder)
    with pytest.raises(
        ConfigError, match=r"sweep point demo/vae/seed1: .* and also \.git/, notes\.txt"
    ):
        check_point_folders([point], tmp_path / "sweep")
    outcome = run_point({"id": point.id, "config": config}, str(folder))
    assert outcome["status"] == "failed" and "which a run does not write" in outcome["error"]
    assert "\n" not in outcome["error"] and snapshot(folder) == before


def test_a_dead_sweeps_state_file_never_deletes_a_folder_the_sweep_did_not_make(
    tmp_path, monkeypatch
):
    from textvae.rundir import write_json
    from textvae.sweeps import leftovers

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    folder = tmp_path / "home"
    folder.mkdir()
    plant(folder)
    before = snapshot(folder)
    state = leftovers.state_dir() / "1.json"
    state.parent.mkdir(parents=True)
    write_json(state, {"pid": 2**22 + 12345, "start_time": 1, "temp_dir": str(folder)})
    assert leftovers.clean_up_after_dead_sweeps() == 0
    assert snapshot(folder) == before and not state.exists()
    leftovers.remove(leftovers.state_dir() / "2.json", folder)
    assert snapshot(folder) == before


# ---- data --------------------------------------------------------------------------------------
SPLIT_TEXT = {"train": b"a b c\nd e\n", "valid": b"a b\n", "test": b"c d\n"}


def test_prepare_force_replaces_only_a_corpus_folder(tmp_path):
    from textvae.data.prepare import prepare_corpus

    source = tmp_path / "src"
    source.mkdir()
    for split, data in SPLIT_TEXT.items():
        (source / f"{split}.txt").write_bytes(data)
    root = tmp_path / "root"
    prepare_corpus("yelp", source, root)
    plant(root / "yelp")
    before = snapshot(root / "yelp")
    with pytest.raises(
        DataError,
        match=r"yelp: holds \.git/, notes\.txt, which textvae does not write into a "
        r"corpus folder; nothing was replaced",
    ):
        prepare_corpus("yelp", source, root, force=True)
    assert snapshot(root / "yelp") == before
    result = CliRunner().invoke(
        app, ["data", "prepare", "yelp", "--from", str(source), "--data-dir", str(root), "--force"]
    )
    assert result.exit_code == 2 and "nothing was replaced" in one_error_line(result.output)
    assert snapshot(root / "yelp") == before
    (root / "yelp" / "notes.txt").unlink()
    import shutil

    shutil.rmtree(root / "yelp" / ".git")
    (source / "test.txt").write_bytes(b"new test\n")
    prepare_corpus("yelp", source, root, force=True)
    assert (root / "yelp" / "test.txt").read_bytes() == b"new test\n"
    assert [p.name for p in root.iterdir() if p.name.endswith(".tmp")] == []  # no temp folder left


def test_download_force_checks_the_folder_before_downloading(tmp_path, monkeypatch):
    from textvae.data import download

    def no_network(*args):
        raise AssertionError("downloaded before checking the folder")

    monkeypatch.setattr(download, "fetch_into", no_network)
    folder = tmp_path / "root" / "ptb"
    folder.mkdir(parents=True)
    plant(folder)
    before = snapshot(folder)
    with pytest.raises(DataError, match=r"holds \.git/, notes\.txt"):
        download.download_corpus("ptb", tmp_path / "root", force=True)
    assert snapshot(folder) == before


def test_synthesize_force_replaces_only_its_own_files(tmp_path):
    folder = tmp_path / "syn"
    small = [
        "--n-train",
        "4",
        "--n-valid",
        "2",
        "--n-test",
        "2",
        "--length",
        "3",
        "--vocab-size",
        "20",
    ]
    assert CliRunner().invoke(app, ["data", "synthesize", str(folder), *small]).exit_code == 0
    result = CliRunner().invoke(
        app, ["data", "synthesize", str(folder), "--seed", "1", "--force", *small]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((folder / "synthesis.json").read_text())["seed"] == 1
    plant(folder)
    before = snapshot(folder)
    result = CliRunner().invoke(
        app, ["data", "synthesize", str(folder), "--seed", "2", "--force", *small]
    )
    assert result.exit_code == 2 and "holds .git/, notes.txt" in one_error_line(result.output)
    assert snapshot(folder) == before


def test_a_damaged_cache_entry_is_deleted_only_when_it_is_only_an_entry(tmp_path):
    from textvae.data.cache import cached
    from textvae.data.vocab import Vocab

    built = []

    def build():
        built.append(1)
        return Vocab.build([["a", "b"]]), {}

    entry = tmp_path / "cache" / "demo-0123"
    entry.mkdir(parents=True)
    (entry / "vocab.txt").write_text("no unk here\n")  # damaged: load fails
    plant(entry)
    before = snapshot(entry)
    cached(entry, build)
    assert built and snapshot(entry) == before
    (entry / "notes.txt").unlink()
    import shutil

    shutil.rmtree(entry / ".git")
    cached(entry, build)  # only an entry now: rebuilt in place
    assert len(built) == 2 and (entry / "splits").is_dir()

"""The wheel carries what a user of an installed textvae needs: recipes, the demo corpus, published values."""

import subprocess
import sys
import zipfile

import pytest

from textvae.resources import REPOSITORY

pytest.importorskip("hatchling")


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPOSITORY), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out)], check=True, capture_output=True)
    (wheel,) = out.glob("textvae-*.whl")
    site = out / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    return site


def test_the_wheel_bundles_every_shipped_folder(unpacked_wheel):
    bundled = unpacked_wheel / "textvae" / "_bundled"
    for folder in ("recipes", "data/demo", "published"):
        shipped = {p.relative_to(REPOSITORY / folder) for p in (REPOSITORY / folder).rglob("*") if p.is_file()}
        target = bundled / folder
        assert shipped and shipped == {p.relative_to(target) for p in target.rglob("*") if p.is_file()}, folder


def test_an_installed_textvae_finds_its_recipes_and_demo_corpus_outside_the_checkout(unpacked_wheel, tmp_path):
    script = ("import sys; from textvae.cli.main import app; sys.argv = ['textvae', 'recipe', 'demo', 'bn-vae', "
              "'--dry-run']; app()")
    probe = ("import textvae.resources as r, textvae.recipes as rec, textvae.data.catalog as c, "
             "textvae.report.tables as t;"
             "print(r.__file__); print(rec.RECIPES_DIR); print(c.corpus_dir('demo')); print(t.PUBLISHED_DIR)")
    env = {"PYTHONPATH": str(unpacked_wheel), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    paths = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    assert all(p.startswith(str(unpacked_wheel)) for p in paths), paths
    assert (REPOSITORY / "recipes").is_dir()  # the checkout's copy exists, yet the wheel's is the one used
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert '"name": "demo/bn-vae"' in result.stdout and '"bn-vae"' in result.stdout
    listing = subprocess.run([sys.executable, "-c", script.replace("'recipe', 'demo', 'bn-vae', '--dry-run'",
                                                                     "'data', 'list'")],
                             cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    demo = next(line for line in listing.splitlines() if line.split()[:1] == ["demo"])
    assert "present" in demo and str(unpacked_wheel) in demo

"""The package works installed: a wheel, installed (not editable) into a fresh environment, trains and
generates from a directory outside the checkout, with the configuration it ships."""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from commands import assert_clean_error, run
from compose_train import REPO_ROOT, TRAIN_OVERRIDES

IGNORED = shutil.ignore_patterns(".venv", ".git", "outputs", "build", "dist", "*.egg-info", "__pycache__",
                                 ".pytest_cache", "tests", "benchmarks", "experiments")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed; its dependencies come from this environment (a .pth
    file names our site-packages, which the new venv does not treat as a site dir, so the editable
    install of the checkout stays out of it)."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    shutil.copytree(REPO_ROOT, source, symlinks=True, ignore=IGNORED)  # builds leave nothing in the checkout
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "dist"),
         str(source)], timeout=300)
    wheel = next((root / "dist").glob("minimind-*.whl"))
    env = root / "env"
    run([sys.executable, "-m", "venv", str(env)], timeout=300)
    run([str(env / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], timeout=300)
    purelib = run([str(env / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    (Path(purelib.stdout.strip()) / "minimind-test-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return env


def test_the_wheel_ships_the_configuration(installed):
    wheel = next(installed.parent.glob("dist/minimind-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for config in ("train.yaml", "model/small.yaml", "experiment/quickstart.yaml", "sweep/size.yaml",
                   "trainer/default.yaml", "generate.yaml", "serve.yaml"):
        assert f"minimind/conf/{config}" in names, config
    assert "minimind/serve/static/index.html" in names  # the chat page
    assert "minimind/eval_tasks/minimind_stdlib_docs.yaml" in names  # the lm_eval task a fresh install runs


@pytest.mark.slow
def test_installed_commands_train_and_generate_outside_the_checkout(installed, tiny_corpus, tiny_tokenizer_dir,
                                                                    tmp_path):
    bin_dir = installed / "bin"
    where = run([str(bin_dir / "python"), "-c", "import minimind; print(minimind.__file__)"], cwd=tmp_path)
    assert str(installed) in where.stdout and str(REPO_ROOT) not in where.stdout  # the installed copy, not the checkout

    run_dir = tmp_path / "run"
    args = [a for a in TRAIN_OVERRIDES if not a.startswith(("trainer.max_steps", "trainer.val_check_interval"))]
    run([str(bin_dir / "minimind-train"), *args, "trainer.max_steps=2", "trainer.val_check_interval=2",
         f"data.path={tiny_corpus}", f"data.tokenizer={tiny_tokenizer_dir}", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, timeout=300)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 2

    generated = run([str(bin_dir / "minimind-generate"), f"ckpt={run_dir}", "prompt=Story 1. the red",
                     "temperature=0", "max_new_tokens=8"], cwd=tmp_path, timeout=300)
    assert generated.stdout.startswith("Story 1. the red") and len(generated.stdout) > len("Story 1. the red")

    refused = run([str(bin_dir / "minimind-train"), *args, "optimizer.lr=-1", f"hydra.run.dir={tmp_path / 'bad'}"],
                  cwd=tmp_path, check=False, timeout=300)
    assert_clean_error(refused, "optimizer.lr=-1 must be a positive number")
    listed = run([str(bin_dir / "minimind-train"), "--help"], cwd=tmp_path)
    assert "experiment: quickstart" in listed.stdout and "sweep:" in listed.stdout


def test_every_console_script_is_installed(installed):
    for tool in ("train", "generate", "evaluate", "export", "inspect", "serve", "compare", "train-tokenizer"):
        assert (installed / "bin" / f"minimind-{tool}").is_file(), tool
    proc = subprocess.run([str(installed / "bin" / "minimind-compare"), "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "report.md" in proc.stdout

"""Sweeps end to end on CPU: real `python train.py -m` runs, failures, resumption, the report."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from compose_train import REPO_ROOT
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from minimind.paths import CONF_DIR, CONF_PACKAGE
from minimind.sweeps.resolvers import register

SWEEPS = sorted(p.stem for p in (CONF_DIR / "sweep").glob("*.yaml"))


def launch(args, module=None, env=None):
    command = [sys.executable, *(["-m", module] if module else ["train.py"]), *args]
    return subprocess.Popen(command, cwd=REPO_ROOT, start_new_session=True, text=True, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def run(args, module=None, timeout=600, env=None):
    process = launch(args, module, env)
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-4000:]
    return output


def summary(run_dir):
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.parametrize("sweep", SWEEPS)
@pytest.mark.parametrize("scale", ["gpu", "cpu"])
def test_every_sweep_composes_at_both_scales(sweep, scale):
    register()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
        overrides = [f"sweep={sweep}"] + (["experiment=quickstart"] if scale == "cpu" else [])
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    assert cfg.scale == scale and cfg.sweep_name == sweep
    params = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True)
    assert params and all(str(v) for v in params.values())
    assert cfg.tokens == cfg.sweep_grid[scale].tokens  # one token budget for every job of the sweep
    if "data.batch_size" not in params:  # one batch size too, unless the sweep varies it
        assert cfg.data.batch_size == cfg.sweep_grid[scale].batch_size
    if sweep == "size":
        grid = {k: str(v).split(",") for k, v in params.items()}
        assert "4" in grid["model.num_hidden_layers"] and "4" in grid["model.num_attention_heads"]  # the guide's 4/4
        if scale == "gpu":  # the study guide's hidden_size=256
            assert "256" in grid["model.hidden_size"]
        else:  # narrower on a CPU, to train far enough; three widths: a trend, not a pair
            assert len(grid["model.hidden_size"]) >= 3


@pytest.mark.slow
def test_two_job_sweep_with_one_failure_and_its_report(tiny_run, tmp_path):
    sweep_dir = tmp_path / "sweep"
    # kv heads 3 cannot divide 4 query heads: that job fails, the other must still complete.
    run(["-m", *tiny_run, "model.num_key_value_heads=2,3", f"hydra.sweep.dir={sweep_dir}", "sweep_name=demo"])
    ok, failed = summary(sweep_dir / "0"), summary(sweep_dir / "1")
    assert ok["status"] == "completed" and ok["val_loss"] > 0
    assert failed["status"] == "failed" and "num_key_value_heads=3" in failed["error"]
    for job in ("0", "1"):
        assert f"model.num_key_value_heads={2 if job == '0' else 3}" in summary(sweep_dir / job)["overrides"]
    group = OmegaConf.load(sweep_dir / "0" / "config.yaml").group
    assert group.startswith("demo-") and group.endswith(sweep_dir.name)  # one wandb group per sweep

    output = run([str(sweep_dir)], module="minimind.compare")
    assert "completed" in output and "failed" in output
    report = (sweep_dir / "report.md").read_text()
    assert "num_key_value_heads=3" in report and "Failures" in report
    assert len(list(sweep_dir.glob("*.png"))) >= 3


@pytest.mark.slow
def test_resumed_sweep_skips_completed_jobs_and_continues_interrupted_ones(tiny_run, tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", *[o for o in tiny_run if not o.startswith("tokens=")], "tokens=20480",  # 80 steps
            "callbacks.model_checkpoint.every_n_train_steps=10", "model.hidden_size=32,64",
            f"hydra.sweep.dir={sweep_dir}"]
    process = launch(args)
    second_checkpoint = sweep_dir / "1" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not second_checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert summary(sweep_dir / "0")["status"] == "completed"
    assert summary(sweep_dir / "1")["status"] == "running"  # killed mid-training
    first_finished = summary(sweep_dir / "0")["finished_at"]

    output = run(args)
    assert "already completed; not rerunning it" in output
    assert "continuing from its last checkpoint" in output
    assert summary(sweep_dir / "0")["finished_at"] == first_finished
    resumed = summary(sweep_dir / "1")
    assert resumed["status"] == "completed" and resumed["steps"] == 80


@pytest.mark.slow
def test_optuna_study_continues_where_it_stopped(tiny_run, tmp_path):
    import optuna

    searched = [o for o in tiny_run if not o.startswith("optimizer.lr")]
    args = ["-m", "sweep=optuna", *searched, "tokens=2560", "hydra.sweeper.n_trials=1",
            f"paths.log_dir={tmp_path}", f"hydra.sweep.dir={tmp_path / 'first'}"]
    run(args)
    run(args[:-1] + [f"hydra.sweep.dir={tmp_path / 'second'}"])
    study = optuna.load_study(study_name="minimind-lr-warmup-gpu", storage=f"sqlite:///{tmp_path}/optuna-studies.db")
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 2  # one trial per invocation: the second continued the study
    assert all(1e-4 <= t.params["optimizer.lr"] <= 1e-2 for t in finished)


@pytest.mark.slow
def test_size_sweep_with_seeds_reports_spread_and_verdicts(tiny_run, tmp_path):
    """`sweep=size experiment=quickstart seed=1,2` (shrunk to tiny models): every configuration runs once per
    seed, each with its seed, and the comparison groups them."""
    sweep_dir = tmp_path / "sweep"
    run(["-m", "sweep=size", "experiment=quickstart", *tiny_run, "model.num_hidden_layers=1,2", "seed=1,2",
         f"hydra.sweep.dir={sweep_dir}"])
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(jobs) == 4
    seen = set()
    for job in jobs:
        cfg = OmegaConf.load(job / "config.yaml")
        assert summary(job)["status"] == "completed" and cfg.sweep_name == "size"
        assert cfg.data.seed == cfg.seed  # the seed reaches data shuffling (init: tests/training/test_seed.py)
        seen.add((cfg.model.num_hidden_layers, cfg.seed))
    assert seen == {(1, 1), (1, 2), (2, 1), (2, 2)}

    output = run([str(sweep_dir)], module="minimind.compare")
    assert "Configurations: mean ± std over seeds" in output
    report = (sweep_dir / "report.md").read_text()
    assert "## Configurations" in report and "## Which differences are real?" in report
    rows = [line for line in report.split("## Configurations")[1].split("\n## ")[0].splitlines()
            if "num_hidden_layers=" in line]
    assert len(rows) == 2 and all("| 2 |" in row and " ± " in row for row in rows)
    for layers in (1, 2):  # the two seeds of one configuration trained differently
        losses = {summary(job)["val_loss"] for job in jobs
                  if OmegaConf.load(job / "config.yaml").model.num_hidden_layers == layers}
        assert len(losses) == 2


@pytest.mark.slow
def test_failing_and_killed_multi_process_jobs_fail_alone(tiny_run, tmp_path):
    """Three jobs of two DDP ranks each, run one after another by the same launcher process: the
    first raises a CUDA error that breaks the process it runs in, the second is SIGKILLed (as the
    out-of-memory killer does), the third must still complete, with both its ranks."""
    sweep_dir = tmp_path / "sweep"
    args = ["-m", *[o for o in tiny_run if not o.startswith(("trainer=", "tokens="))], "trainer=ddp_cpu",
            "tokens=5120", "trainer.val_check_interval=5", "callbacks.samples=null",
            "+callbacks.poison._target_=poison.Poison", "+callbacks.poison.mode=cuda_error,kill,none",
            f"hydra.sweep.dir={sweep_dir}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "tests" / "sweeps"),
                                                         os.environ.get("PYTHONPATH", "")])}
    run(args, env=env)
    broken, killed, ok = (summary(sweep_dir / str(job)) for job in range(3))
    assert broken["status"] == "failed" and "CUDA error: an illegal memory access" in broken["error"]
    assert killed["status"] == "failed" and "killed by SIGKILL" in killed["error"]
    assert ok["status"] == "completed" and ok["world_size"] == 2 and ok["steps"] == 10, ok["error"]
    assert not list(sweep_dir.glob("*/.sweep_job.yaml"))
    # No rank outlives its job: the killed job's second rank went with it.
    leftovers = [p for p in Path("/proc").glob("[0-9]*") if str(sweep_dir) in _cmdline(p)]
    assert not leftovers, [_cmdline(p) for p in leftovers]


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.slow
def test_a_job_refused_by_the_launcher_records_why(tiny_run, tmp_path):
    sweep_dir = tmp_path / "sweep"
    run(["-m", *tiny_run, "model.hidden_size=32", "device_pool.kind=tpu", f"hydra.sweep.dir={sweep_dir}"])
    refused = summary(sweep_dir / "0")
    assert refused["status"] == "failed" and "device_pool.kind='tpu' is unknown" in refused["error"]

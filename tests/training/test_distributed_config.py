"""Multi-GPU and SLURM settings read from the real config: what the strategy is given, how
SLURM's allocation becomes devices and one run dir per job, and the refusals that name the fix."""

import json

import pytest
from hydra.utils import instantiate

from commands import run_main
from minimind import train as train_app
from minimind.errors import ConfigurationError
from minimind.sweeps.resolvers import run_id, slurm_tasks_per_node, tasks_per_node_counts
from minimind.training.preflight import check_training_config


@pytest.mark.parametrize("enabled", [True, False])
def test_fsdp_checkpoints_blocks_through_its_policy_when_asked(compose_cfg, enabled):
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    from minimind.model.transformer import MiniMindBlock

    cfg = compose_cfg(["trainer=fsdp", f"activation_checkpointing={str(enabled).lower()}"])
    policy = instantiate(cfg.trainer.strategy.activation_checkpointing_policy)
    if enabled:
        assert isinstance(policy, ModuleWrapPolicy) and policy._module_classes == {MiniMindBlock}
    else:
        assert policy is None


def test_checkpointing_under_an_fsdp_strategy_without_the_policy_is_refused(compose_cfg):
    cfg = compose_cfg(["trainer=fsdp", "activation_checkpointing=true",
                       "~trainer.strategy.activation_checkpointing_policy"])
    with pytest.raises(ConfigurationError, match="has no activation_checkpointing_policy: use trainer=fsdp"):
        check_training_config(cfg)


@pytest.mark.parametrize("env, expected", [
    ({"SLURM_NTASKS_PER_NODE": "4", "SLURM_TASKS_PER_NODE": "4(x2)"}, 4),
    ({"SLURM_TASKS_PER_NODE": "8(x2)"}, 8),  # --ntasks=16 --nodes=2: no SLURM_NTASKS_PER_NODE
    ({"SLURM_STEP_TASKS_PER_NODE": "2", "SLURM_TASKS_PER_NODE": "8"}, 2),  # srun --ntasks-per-node=2 in an 8-task job
    ({}, 1),
])
def test_tasks_per_node_from_slurms_environment(env, expected):
    assert slurm_tasks_per_node(env) == expected


def test_slurms_compressed_counts():
    assert tasks_per_node_counts("4(x2),3") == [4, 4, 3]
    assert tasks_per_node_counts("") == [] and tasks_per_node_counts("garbage") == []


def test_the_ranks_of_an_srun_step_share_one_run_name():
    step = {"SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "8"}
    assert run_id("2026-01-01/12-00-00-000001", step) == run_id("2026-01-01/12-00-00-000002", step) == "slurm-4242.0"
    assert run_id("stamp", {**step, "SLURM_STEP_NUM_TASKS": "1"}) == "stamp"  # one task: its own timestamp
    assert run_id("stamp", {"SLURM_JOB_ID": "4242"}) == "stamp"  # in an allocation, not in an srun step


def test_every_rank_of_an_srun_step_writes_to_the_same_run_dir(tmp_path, capsys, monkeypatch):
    for name, value in {"SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "3", "SLURM_STEP_NUM_TASKS": "2"}.items():
        monkeypatch.setenv(name, value)
    argv = ["trainer=cpu", "logger=csv", "optimizer.lr=-1", f"paths.log_dir={tmp_path}"]  # refused at once
    for rank in ("0", "1"):
        monkeypatch.setenv("SLURM_PROCID", rank)
        code, _, err = run_main(train_app.main, argv, capsys, monkeypatch)
        assert code == 1 and "optimizer.lr=-1" in err
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["slurm-4242.3"]
    assert json.loads((tmp_path / "runs" / "slurm-4242.3" / "summary.json").read_text())["status"] == "failed"


def test_ntasks_without_ntasks_per_node_is_refused_with_the_fix(compose_cfg, monkeypatch):
    for name, value in {"SLURM_NTASKS": "16", "SLURM_TASKS_PER_NODE": "8(x2)", "SLURM_JOB_NAME": "train",
                        "SLURM_NNODES": "2"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLURM_NTASKS_PER_NODE", raising=False)
    with pytest.raises(ConfigurationError, match="submit with --ntasks-per-node=8 and --nodes=N instead of --ntasks"):
        check_training_config(compose_cfg(["trainer=slurm"]))

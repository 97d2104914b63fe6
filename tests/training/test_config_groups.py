"""Every option of every config group composes with the rest and instantiates."""

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from commands import run_main

from minimind.model import MiniMindConfig
from minimind.paths import CONF_DIR
from minimind.training.csv_logger import ResumableCSVLogger
from minimind.training.loggers import build_loggers


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("model", options("model"))
@pytest.mark.parametrize("attention", options("attention"))
def test_model_and_attention_options(compose_cfg, model, attention):
    cfg = compose_cfg([f"model={model}", f"attention={attention}", "attention/backend=eager"])
    config = instantiate(cfg.model)
    assert isinstance(config, MiniMindConfig) and config.attn_implementation == "eager"
    expected_kv = {"mha": config.num_attention_heads, "mqa": 1,
                   "gqa": MiniMindConfig.from_preset(model).num_key_value_heads}[attention]
    assert config.num_key_value_heads == expected_kv


@pytest.mark.parametrize("precision, lightning_name", [("bf16", "bf16-mixed"), ("fp16", "16-mixed"),
                                                        ("fp32", "32-true"), ("bf16-true", "bf16-true")])
def test_precision_options_set_the_trainer(compose_cfg, precision, lightning_name):
    assert compose_cfg([f"precision={precision}"]).trainer.precision == lightning_name


@pytest.mark.parametrize("overrides", [["model=small", "trainer.precision=bf16"], ["model=small", "precision=bf16"]])
def test_card_command_line_and_precision_group_give_the_same_trainer(compose_cfg, overrides, tmp_path):
    cfg = compose_cfg(overrides + ["trainer=cpu"], run_dir=tmp_path)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert str(trainer.precision) == "bf16-mixed" and cfg.model.hidden_size == 512


@pytest.mark.parametrize("trainer", [t for t in options("trainer")
                                     if t in ("default", "cpu", "ddp_cpu") or torch.cuda.is_available()])
def test_trainer_options_instantiate(compose_cfg, trainer, tmp_path):
    cfg = compose_cfg([f"trainer={trainer}", "precision=fp32"], run_dir=tmp_path)
    built = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert built.max_epochs == -1


def test_gpu_trainer_configs_are_complete(compose_cfg):
    for trainer in ("gpu", "ddp", "fsdp", "slurm"):
        cfg = compose_cfg([f"trainer={trainer}"])
        OmegaConf.to_container(cfg.trainer, resolve=True)  # every interpolation resolves
        assert cfg.trainer.accelerator == "gpu"


@pytest.mark.parametrize("optimizer", options("optimizer"))
@pytest.mark.parametrize("scheduler", options("scheduler"))
def test_optimizer_and_scheduler_options(compose_cfg, optimizer, scheduler):
    cfg = compose_cfg([f"optimizer={optimizer}", f"scheduler={scheduler}", "optimizer.lr=0.01"])
    opt = instantiate(cfg.optimizer)([torch.nn.Parameter(torch.zeros(2, 2))])
    schedule = instantiate(cfg.scheduler)(opt, total_steps=100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    assert max(lrs) == pytest.approx(0.01) and min(lrs) > 0
    if scheduler == "constant":
        assert lrs[-1] == pytest.approx(0.01)
    else:  # both cosines end near 0.1 of the peak
        assert lrs[-1] == pytest.approx(0.001, rel=0.05)


@pytest.mark.parametrize("logger", options("logger"))
def test_logger_options_always_include_csv(compose_cfg, logger, tmp_path):
    cfg = compose_cfg([f"logger={logger}"], run_dir=tmp_path)
    loggers = build_loggers(cfg.logger, tmp_path, name="test", group=None, tags=[])
    assert any(isinstance(lg, ResumableCSVLogger) for lg in loggers)


def test_callbacks_instantiate(compose_cfg, tmp_path):
    cfg = compose_cfg([], run_dir=tmp_path)
    built = [instantiate(c) for c in cfg.callbacks.values()]
    assert {type(c).__name__ for c in built} >= {"ModelCheckpoint", "RunStatsCallback", "SampleGenerationCallback"}


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiments_compose(compose_cfg, experiment):
    cfg = compose_cfg([f"experiment={experiment}"])
    OmegaConf.to_container(cfg, resolve=False)
    MiniMindConfig.from_dict(OmegaConf.to_container(cfg.model, resolve=True))


def test_help_and_cfg_job_behave_like_hydra(capsys, monkeypatch):
    from minimind.train import main

    run = lambda *args: run_main(main, list(args), capsys, monkeypatch)  # noqa: E731  (Hydra parses argv)
    code, out, _ = run("--help")
    assert code == 0
    for group in ("model:", "attention:", "precision:", "trainer:", "experiment:"):
        assert group in out
    code, out, _ = run("model=tiny", "attention=mqa", "--cfg", "job")
    assert code == 0
    composed = OmegaConf.create(out)
    assert composed.model.hidden_size == 128 and composed.model.num_key_value_heads == 1
    code, _, err = run("model.no_such_field=1", "--cfg", "job")
    assert code != 0 and "no_such_field" in err


def test_trainer_config_holds_real_arguments_and_any_other_is_added_with_a_plus(compose_cfg, tmp_path):
    import inspect

    import lightning

    arguments = set(inspect.signature(lightning.Trainer.__init__).parameters) - {"self", "logger", "callbacks"}
    listed = set(compose_cfg([]).trainer) - {"_target_"}
    assert listed <= arguments  # a renamed or removed Trainer argument fails here, not in a user's run
    assert len(listed) < len(arguments) / 2  # deltas and common settings, not every argument at its default
    cfg = compose_cfg(["+trainer.profiler=simple", "+trainer.max_time=00:00:10:00", "trainer=cpu"], run_dir=tmp_path)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert type(trainer.profiler).__name__ == "SimpleProfiler"

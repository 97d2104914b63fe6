"""A realistic Hydra multirun dir, written file by file as training writes it.

config.yaml is the real `conf/` composed and resolved (`OmegaConf.to_yaml`), metrics.csv
is written by Lightning's own CSVLogger (sparse rows: train, lr, throughput and val
metrics are separate `log_metrics` calls), summary.json has every field of `RunSummary`.

    0/  model.hidden_size=128                completed, val loss 4.30
    1/  model.hidden_size=256                completed, val loss 3.70 (best)
    2/  model.num_attention_heads=3          failed before training: summary.json only
    3/  model.hidden_size=192                killed at step 250: config.yaml + metrics.csv, no summary
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

from compose_train import compose_train
from lightning.pytorch.loggers import CSVLogger
from omegaconf import OmegaConf, open_dict


COMMON = ["experiment=quickstart", "logger=csv"]
TOKENS_PER_STEP = 16 * 256  # quickstart: data.batch_size x data.seq_len, one rank
STEPS = 489  # a 2M-token run in the quickstart's steps: ceil(2e6 / 4096)
FAILED_ERROR = ("minimind.errors.ConfigurationError: invalid MiniMindConfig:\n"
                "  - num_attention_heads=4 is not divisible by num_key_value_heads=3: each key/value head "
                "must serve the same number of query heads; use one of [1, 2, 4]")


def compose_config(overrides: list[str], run_dir: Path):
    cfg = compose_train(overrides, run_dir)
    with open_dict(cfg):
        cfg.paths.log_dir = str(run_dir.parent)
    return cfg


def write_hydra_dir(run_dir: Path, overrides: list[str], cfg=None) -> None:
    """What Hydra writes before the job starts: .hydra/overrides.yaml and its own (unresolved) config.yaml."""
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(overrides)))
    if cfg is not None:
        (run_dir / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))


def write_config(run_dir: Path, cfg) -> None:
    """config.yaml as run.py writes it (resolved). Nodes that need resolvers only train.py registers
    (the launcher group's GPU count) are kept unresolved: nothing here reads them."""
    try:
        text = OmegaConf.to_yaml(cfg, resolve=True)
    except Exception:
        data = {}
        for key in cfg:
            try:
                data[key] = OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
            except Exception:
                data[key] = OmegaConf.to_container(cfg[key], resolve=False)
        text = OmegaConf.to_yaml(OmegaConf.create(data))
    (run_dir / "config.yaml").write_text(text)


def write_summary(run_dir: Path, **values) -> dict:
    from minimind.training.summary import FIELDS

    data = dict.fromkeys(FIELDS)
    data.update(values)
    assert set(data) == set(FIELDS), "summary.json fields drifted from RunSummary"
    (run_dir / "summary.json").write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    return data


def train_loss(step: int, final: float) -> float:
    """A loss that falls from about 8.8 (ln 6400) towards `final`, with a little deterministic noise."""
    return final + (8.8 - final) * math.exp(-step / 60) + 0.05 * math.sin(step * 1.7)


def wall_time(step: int) -> float:
    """Seconds since the run started after `step` (0-based): 3 s of start-up, then 0.25 s a step."""
    return 3.0 + 0.25 * (step + 1)


def write_metrics(run_dir: Path, last_step: int, final: float, val_every: int = 100, tokens_per_sec: float = 20_000.0):
    """metrics.csv as the quickstart logs it: every 10 steps train/lr/throughput rows, val every 100 steps."""
    with warnings.catch_warnings():  # "logs directory ... is not empty": config.yaml is there first, as in training
        warnings.simplefilter("ignore")
        _log_metrics(CSVLogger(save_dir=run_dir, name="", version=""), last_step, final, val_every, tokens_per_sec)
    return run_dir / "metrics.csv"


def _log_metrics(logger, last_step, final, val_every, tokens_per_sec):
    for step in range(last_step + 1):
        if (step + 1) % 10 == 0:
            loss = train_loss(step, final)
            logger.log_metrics({"train/loss": loss, "train/ppl": math.exp(loss), "train/bpb": loss / math.log(2) / 3.6,
                                "train/tokens": float((step + 1) * TOKENS_PER_STEP), "train/grad_norm": 0.8,
                                "epoch": 0}, step=step)
            logger.log_metrics({"lr-AdamW/pg1": 3e-3, "lr-AdamW/pg2": 3e-3}, step=step)
            rate = tokens_per_sec * (0.5 if step < 20 else 1.0)  # start-up is slower
            logger.log_metrics({"train|time": step * 0.2, "train|batches": step + 1.0,
                                "train|samples": 16.0 * (step + 1), "train|lengths": float((step + 1) * TOKENS_PER_STEP),
                                "perf/tokens_per_sec": rate, "perf/wall_time_s": wall_time(step),
                                "train|device/batches_per_sec": rate / TOKENS_PER_STEP}, step=step)
        if (step + 1) % val_every == 0:
            val = train_loss(step, final) + 0.1
            logger.log_metrics({"val/loss": val, "val/ppl": math.exp(val), "val/bpb": val / math.log(2) / 3.6,
                                "epoch": 0}, step=step)
    logger.save()


def val_losses(last_step: int, final: float, val_every: int = 100) -> list[tuple[int, float]]:
    """(tokens seen, val loss) of each validation `write_metrics` logs."""
    return [((s + 1) * TOKENS_PER_STEP, train_loss(s, final) + 0.1)
            for s in range(last_step + 1) if (s + 1) % val_every == 0]


def build_sweep(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    from minimind.model import MiniMindConfig
    from minimind.model.params import parameter_breakdown

    for num, (override, final) in enumerate([("model.hidden_size=128", 4.2), ("model.hidden_size=256", 3.6)]):
        run_dir = root / str(num)
        run_dir.mkdir()
        overrides = COMMON + [override]
        cfg = compose_config(overrides, run_dir)
        write_hydra_dir(run_dir, overrides, cfg)
        write_config(run_dir, cfg)
        write_metrics(run_dir, STEPS - 1, final, tokens_per_sec=40_000.0 / (num + 1))
        params = parameter_breakdown(MiniMindConfig.from_dict(OmegaConf.to_container(cfg.model, resolve=True)))["total"]
        write_summary(run_dir, status="completed", params=params, tokens_seen=STEPS * TOKENS_PER_STEP, steps=STEPS,
                      train_loss=train_loss(STEPS - 1, final), val_loss=val_losses(STEPS - 1, final)[-1][1],
                      val_bpb=val_losses(STEPS - 1, final)[-1][1] / math.log(2) / 3.6,
                      tokens_per_sec=40_000.0 / (num + 1), mfu=None, peak_memory_mb=700.0 * (num + 1),
                      wall_time_s=120.0 * (num + 1), overrides=overrides, error=None)

    failed = root / "2"  # refused by the preflight check: no config.yaml, no metrics.csv
    failed.mkdir()
    write_summary(failed, status="failed", overrides=COMMON + ["model.num_attention_heads=3"], error=FAILED_ERROR)

    killed = root / "3"  # SIGKILL at step 250: no summary.json, the last CSV line cut short
    killed.mkdir()
    overrides = COMMON + ["model.hidden_size=192"]
    cfg = compose_config(overrides, killed)
    write_hydra_dir(killed, overrides, cfg)
    write_config(killed, cfg)
    metrics = write_metrics(killed, 250, 4.0)
    with open(metrics, "a") as handle:
        handle.write("0,,,259,2.0")  # a training row cut after its bits-per-byte cell

    (root / "multirun.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create({
        "hydra": {"mode": "MULTIRUN", "sweep": {"dir": str(root), "subdir": "${hydra.job.num}"},
                  "overrides": {"hydra": ["hydra.mode=MULTIRUN"],
                                "task": COMMON + ["model.hidden_size=128,256,192", "model.num_attention_heads=3"]}},
        "seed": 42, "group": None})))
    return root


# A sweep with seeds: three configurations x three seeds, final validation losses chosen by hand.
#   hidden_size=128: 4.00, 4.02, 4.04   mean 4.02, std 0.02
#   hidden_size=256: 3.50, 3.53, 3.56   mean 3.53, std 0.03   (clearly better than both others)
#   hidden_size=192: 3.98, 4.05, 4.01   mean 4.0133, std 0.0351 (within the seed spread of 128)
SEED_LOSSES = {"model.hidden_size=128": [4.00, 4.02, 4.04], "model.hidden_size=256": [3.50, 3.53, 3.56],
               "model.hidden_size=192": [3.98, 4.05, 4.01]}
SEED_TOKENS_PER_SEC = {"model.hidden_size=128": [30_000.0, 31_000.0, 29_000.0],
                       "model.hidden_size=256": [12_000.0, 12_500.0, 11_500.0],
                       "model.hidden_size=192": [20_000.0, 20_000.0, 20_000.0]}
SEED_STEPS = 200


def build_seed_sweep(root: Path) -> Path:
    """A multirun of `-m model.hidden_size=128,256,192 seed=1,2,3` as training writes it (9 runs)."""
    from minimind.model import MiniMindConfig
    from minimind.model.params import parameter_breakdown

    root.mkdir(parents=True, exist_ok=True)
    num = 0
    for override, losses in SEED_LOSSES.items():
        base = compose_config(COMMON + [override], root / "compose")
        for seed, loss, rate in zip((1, 2, 3), losses, SEED_TOKENS_PER_SEC[override]):
            run_dir = root / str(num)
            run_dir.mkdir()
            overrides = COMMON + [override, f"seed={seed}"]
            cfg = base.copy()
            with open_dict(cfg):
                cfg.seed = seed  # what composing with seed=N gives (data.seed follows it)
                cfg.paths.output_dir = str(run_dir)
            write_hydra_dir(run_dir, overrides, cfg)
            write_config(run_dir, cfg)
            write_metrics(run_dir, SEED_STEPS - 1, loss - 0.1 + 0.01 * seed, val_every=50, tokens_per_sec=rate)
            model = MiniMindConfig.from_dict(OmegaConf.to_container(cfg.model, resolve=True))
            write_summary(run_dir, status="completed", params=parameter_breakdown(model)["total"],
                          tokens_seen=SEED_STEPS * TOKENS_PER_STEP, steps=SEED_STEPS, train_loss=loss - 0.1,
                          val_loss=loss, val_bpb=loss / math.log(2) / 3.6, tokens_per_sec=rate, mfu=None,
                          peak_memory_mb=500.0, wall_time_s=wall_time(SEED_STEPS - 1), overrides=overrides, error=None,
                          started_at=f"2026-01-01T13:{num:02d}:00+00:00", finished_at=f"2026-01-01T13:{num:02d}:53+00:00")
            num += 1
    (root / "multirun.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create({
        "hydra": {"mode": "MULTIRUN", "overrides": {"hydra": ["hydra.mode=MULTIRUN"], "task": COMMON + [
            "model.hidden_size=128,256,192", "seed=1,2,3"]}}, "seed": 42, "group": None})))
    return root

"""Train MiniMind: `python train.py ...` in a checkout, `minimind-train ...` or `python -m minimind.train ...` anywhere.

    python train.py                                   # MiniMind2-small on the embedded corpus
    python train.py experiment=quickstart             # the 4-minute CPU demo (what `make train` runs)
    python train.py model=small trainer.precision=bf16 trainer.max_steps=2
    python train.py model=tiny attention=mqa model.hidden_size=256 tokens=20_000_000
    python train.py data.path=data/pretrain_hq.jsonl data.tokenizer=model/   # upstream data and tokenizer
    python train.py ckpt_path=last hydra.run.dir=outputs/runs/2026-01-01/12-00-00-000000   # resume
    python train.py -m sweep=size                     # a sweep, one job per GPU (see conf/sweep/)
    python train.py -m sweep=size experiment=quickstart                      # the same at CPU size
    python train.py --config-dir my_conf experiment=mine                     # your own config files too
    python train.py --help / --cfg job                                       # groups / resolved config
"""

from __future__ import annotations

import math

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from minimind.cli import hydra_app
from minimind.sweeps.jobs import run_sweep_job
from minimind.training.run import train


@hydra_app("train")
def main(cfg: DictConfig) -> float:
    """Returns the final validation loss, the value a sweeper minimises."""
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        return run_sweep_job(cfg)
    metrics, _ = train(cfg)
    run_dir = cfg.paths.output_dir
    print(f"\nrun dir:  {run_dir}\nsummary:  {run_dir}/summary.json  (val_loss {metrics.get('val/loss', math.nan):.4f})"
          f"\nsamples:  {run_dir}/samples.md\nresume:   python train.py ckpt_path=last hydra.run.dir={run_dir}"
          f"\ngenerate: python -m minimind.generate ckpt={run_dir} prompt=...")
    return metrics.get("val/loss", math.nan)


if __name__ == "__main__":
    main()

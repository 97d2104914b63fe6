"""Direct Preference Optimization (upstream's train_dpo.py; Rafailov et al., 2023).

On a pair of replies to one prompt, chosen (c) and rejected (r), with the policy's and the frozen
reference's log-probabilities of each reply summed over its tokens (the assistant tokens only):

    reward_x = beta * (log pi(x) - log ref(x))          the implicit reward of reply x
    loss     = -log sigmoid(reward_c - reward_r)        the sigmoid DPO loss, averaged over pairs

With the reference equal to the policy (step 0 of a run from `init_from=`), every reward is 0 and
the loss is ln 2 = 0.693; a loss stuck there means the policy is not moving (a learning rate too
small for the run's length is the usual cause). What is logged shows whether it learns:
`reward_accuracy` (share of pairs with reward_c > reward_r; 0 at step 0, ties do not count),
`reward_margin` (mean reward_c - reward_r), `reward_chosen`, `reward_rejected`, and the policy's
own `logps_chosen` / `logps_rejected` (a falling `logps_chosen` means both replies are being pushed
down, the rejected faster), on training batches (train/) and on held-out pairs (val/; val/loss is
the DPO loss there).

`precompute_ref=true` computes the reference's log-probabilities once for every pair of both
splits, before the first step, into a cache keyed by the token cache (and seq_len), the reference's
weights and the run's precision (`<cache dir>/ref_logps/<key>/`), then drops the reference model:
training then holds one model instead of two. Looked up by each pair's row, they make the same
loss as a live reference, and a resumed run reads the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from minimind.data.build_once import build_once
from minimind.errors import ConfigurationError
from minimind.training.objectives.base import Objective, StepOutput
from minimind.training.objectives.logprobs import sequence_logps
from minimind.training.objectives.frozen import PinnedModel

if TYPE_CHECKING:
    from minimind.data.preference import PairRows
    from minimind.model import MiniMindConfig
    from minimind.training.init import InitWeights
    from minimind.training.module import MiniMindModule

log = logging.getLogger(__name__)

METRICS = ("loss", "reward_accuracy", "reward_margin", "reward_chosen", "reward_rejected", "logps_chosen",
           "logps_rejected")
REF_LOGPS_VERSION = 1  # bump when how the reference log-probabilities are computed changes
PROGRESS_EVERY_S = 10.0


def dpo_terms(policy: torch.Tensor, reference: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
    """Per-pair loss and diagnostics from (2B,) summed log-probabilities: the B chosen replies, then the B rejected."""
    chosen, rejected = policy.chunk(2)
    ref_chosen, ref_rejected = reference.chunk(2)
    reward_chosen = beta * (chosen - ref_chosen).detach()
    reward_rejected = beta * (rejected - ref_rejected).detach()
    loss = -F.logsigmoid(beta * ((chosen - rejected) - (ref_chosen - ref_rejected)))
    return {"loss": loss, "reward_accuracy": (reward_chosen > reward_rejected).float(),
            "reward_margin": reward_chosen - reward_rejected, "reward_chosen": reward_chosen,
            "reward_rejected": reward_rejected, "logps_chosen": chosen.detach(), "logps_rejected": rejected.detach()}


class DPO(Objective):
    data_formats = ("dpo",)

    def __init__(self, beta: float = 0.15, ref: str | None = None, ref_model: str | dict[str, Any] | None = None,
                 precompute_ref: bool = False, init_from: str | None = None, ckpt_path: str | None = None):
        """beta: how far the policy may move from the reference (upstream's 0.15). ref: the reference model
        (None: the init weights); ref_model: the shape of a bare .pth reference (a preset name, or fields).
        precompute_ref: compute the reference's log-probabilities once, then drop the model.
        init_from, ckpt_path: the run's (`${init_from}`, `${ckpt_path}`): where a default reference comes from."""
        super().__init__()
        if not isinstance(beta, (int, float)) or isinstance(beta, bool) or beta <= 0:
            raise ConfigurationError(f"stage.objective.beta={beta} must be > 0 (upstream uses 0.15; larger keeps "
                                     "the policy closer to the reference)")
        self.beta, self.precompute_ref = float(beta), bool(precompute_ref)
        self.reference = PinnedModel.reference(ref, ref_model, stage="stage=dpo", init_from=init_from,
                                               resuming=ckpt_path is not None)
        self.ref_logps: dict[str, torch.Tensor] = {}  # split -> (pairs, 2) chosen/rejected, when precomputed
        self.val_metrics = nn.ModuleDict({name: MeanMetric() for name in METRICS})

    def prepare(self, *, tokenizer: Any, model_config: MiniMindConfig, init: InitWeights | None = None,
                resume: str | None = None) -> None:
        self.reference.prepare(tokenizer=tokenizer, model_config=model_config, init=init, resume=resume)

    def get_extra_state(self) -> dict[str, Any]:
        return {"reference": self.reference.record}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """The reference was rebuilt from this record in `prepare` (before Lightning restores the checkpoint)."""

    def setup(self, module: MiniMindModule) -> None:
        if not self.precompute_ref:
            self.reference.frozen.to_run(module)
        elif not self.ref_logps:
            datamodule = module.trainer.datamodule
            splits = ["train", "val"] if datamodule.hparams.val_fraction > 0 else ["train"]
            tables = precomputed_ref_logps(module, self.reference, {s: datamodule.pairs(s) for s in splits},
                                           datamodule.root, datamodule.hparams.batch_size)
            self.ref_logps = {s: t.to(module.device) for s, t in tables.items()}
            self.reference.release()

    def _terms(self, module: MiniMindModule, batch: dict[str, torch.Tensor], split: str):
        out = module.model(batch["input_ids"])
        policy = sequence_logps(out.logits, batch["labels"])
        if self.precompute_ref:
            table = self.ref_logps[split][batch["pair_index"]]  # (B, 2)
            reference = torch.cat([table[:, 0], table[:, 1]])
        else:
            with torch.no_grad():
                reference = sequence_logps(self.reference.model(batch["input_ids"]).logits, batch["labels"])
        return dpo_terms(policy, reference, self.beta), out.aux_loss

    def training_step(self, module: MiniMindModule, batch: dict[str, torch.Tensor]) -> StepOutput:
        terms, aux_loss = self._terms(module, batch, "train")
        metrics = {name: value.mean() for name, value in terms.items()}
        if module.config.use_moe:
            metrics["aux_loss"] = aux_loss
        return StepOutput(metrics["loss"] + aux_loss, {k: v.detach() for k, v in metrics.items()})

    def validation_step(self, module: MiniMindModule, batch: dict[str, torch.Tensor]) -> None:
        terms, _ = self._terms(module, batch, "val")
        for name, value in terms.items():
            self.val_metrics[name].update(value)

    def validation_results(self) -> dict[str, torch.Tensor]:
        values = {name: metric.compute() for name, metric in self.val_metrics.items()}
        for metric in self.val_metrics.values():
            metric.reset()
        return values


def precomputed_ref_logps(module: MiniMindModule, reference: PinnedModel, splits: dict[str, PairRows], root: Path,
                          batch_size: int) -> dict[str, torch.Tensor]:
    """(pairs, 2) reference log-probabilities (chosen, rejected) of every pair of each split, from the cache
    under `root`, computed once (under a lock, so parallel jobs compute them once) when missing."""
    trainer = module.trainer
    key = hashlib.sha256(json.dumps({
        "version": REF_LOGPS_VERSION, "rows": {name: rows.key for name, rows in splits.items()},
        "reference": reference.record["fingerprint"], "precision": str(trainer.precision),
    }, sort_keys=True).encode()).hexdigest()[:16]
    folder = root / "ref_logps" / key

    def compute(tmp: Path) -> None:
        reference.frozen.to_run(module)
        model, started, last = reference.model, time.monotonic(), time.monotonic()
        total, done = sum(rows.count for rows in splits.values()), 0
        for name, rows in splits.items():
            table = np.empty((rows.count, 2), dtype=np.float32)
            for start in range(0, rows.count, batch_size):
                index = np.arange(start, min(start + batch_size, rows.count))
                batch = {k: v.to(module.device) for k, v in rows.batch(index).items()}
                with torch.no_grad(), trainer.precision_plugin.forward_context():
                    logps = sequence_logps(model(batch["input_ids"]).logits, batch["labels"])
                table[index] = torch.stack(logps.chunk(2), dim=1).float().cpu().numpy()
                done += len(index)
                if time.monotonic() - last > PROGRESS_EVERY_S:
                    last = time.monotonic()
                    log.info("reference log-probabilities: %d / %d pairs (%.0f pairs/s)", done, total,
                             done / (last - started))
            np.save(tmp / f"{name}.npy", table)
        log.info("reference log-probabilities of %d pairs computed in %.1fs", total, time.monotonic() - started)

    if not build_once(folder, compute):
        log.info("reusing the reference log-probabilities in %s", folder)
    return {name: torch.from_numpy(np.load(folder / f"{name}.npy")) for name in splits}

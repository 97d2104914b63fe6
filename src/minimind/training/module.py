"""`MiniMindModule`: the one training loop, as a LightningModule around `MiniMindForCausalLM`.

Pretraining and SFT differ only by their batches (SFT labels are -100 outside the
assistant's replies), so both run through this same module.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from lightning import LightningModule
from lightning.pytorch.strategies import FSDPStrategy

from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.model.flops import training_flops_per_token
from minimind.training.metrics import LanguageModelMetrics, bits_per_byte
from minimind.training.optim import build_scheduler, param_groups


class MiniMindModule(LightningModule):
    def __init__(self, model_config: MiniMindConfig | dict[str, Any],
                 optimizer: Callable[..., torch.optim.Optimizer] | None = None,
                 scheduler: Callable[..., Any] | None = None,
                 compile: bool = False, activation_checkpointing: bool = False):
        """optimizer: a partial taking parameter groups (e.g. `partial(AdamW, lr=...)`);
        its weight_decay goes to matrices only. scheduler: a partial of `build_scheduler`
        taking (optimizer, total_steps)."""
        super().__init__()
        config = model_config if isinstance(model_config, MiniMindConfig) else MiniMindConfig.from_dict(model_config)
        # Only plain data goes into the checkpoint, so it loads with weights_only=True.
        self.save_hyperparameters({"model_config": config.to_dict(), "compile": compile,
                                   "activation_checkpointing": activation_checkpointing})
        self.model = MiniMindForCausalLM(config)
        if activation_checkpointing:
            self.model.gradient_checkpointing_enable()
        self.optimizer_factory = optimizer or torch.optim.AdamW
        self.scheduler_factory = scheduler or build_scheduler
        self.compile_model = compile
        self.val_metrics = LanguageModelMetrics()
        self.register_buffer("token_bytes", torch.ones(config.vocab_size, dtype=torch.long), persistent=False)
        self.tokens_seen = 0  # across all ranks, restored on resume
        self.last_validated_step = -1
        self.flops_per_batch = 0  # read by Lightning's ThroughputMonitor

    @property
    def config(self) -> MiniMindConfig:
        return self.model.config

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        token_bytes = getattr(datamodule, "token_bytes", None)
        if token_bytes is not None:  # true byte lengths make bits-per-byte exact
            self.token_bytes = torch.as_tensor(token_bytes, dtype=torch.long, device=self.device)

    def configure_model(self) -> None:
        if self.compile_model:
            self.model.compile()  # in place: parameter names, and so checkpoints, stay the same

    def forward(self, input_ids: torch.Tensor, **kwargs: Any):
        return self.model(input_ids, **kwargs)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        input_ids, labels = batch["input_ids"], batch["labels"]
        out = self.model(input_ids, labels=labels)
        batch_tokens = input_ids.numel() * self.trainer.world_size
        self.tokens_seen += batch_tokens
        self.flops_per_batch = training_flops_per_token(self.config, input_ids.shape[1]) * input_ids.numel()
        self.log_dict({"train/loss": out.loss, "train/ppl": out.loss.detach().exp(),
                       "train/bpb": bits_per_byte(out.loss, labels[:, 1:], self.token_bytes)},
                      prog_bar=False, batch_size=input_ids.shape[0])
        self.log("train/tokens", float(self.tokens_seen), batch_size=input_ids.shape[0])
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=input_ids.shape[0])
        if self.config.use_moe:
            self.log("train/aux_loss", out.aux_loss, batch_size=input_ids.shape[0])
        return out.loss + out.aux_loss

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val=None,
                                    gradient_clip_algorithm=None) -> None:
        """Measure the gradient norm (logged, before clipping) and clip with that same number:
        one pass over the gradients instead of two. Sharded strategies keep their own clipping."""
        if isinstance(self.trainer.strategy, FSDPStrategy) or gradient_clip_algorithm == "value":
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
            return
        parameters = [p for p in self.parameters() if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in parameters])
        self.log("train/grad_norm", norm)
        if gradient_clip_val:
            torch.nn.utils.clip_grads_with_norm_(parameters, gradient_clip_val, norm)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self.model(batch["input_ids"], labels=batch["labels"])
        self.val_metrics.update(out.loss, batch["labels"][:, 1:], self.token_bytes)

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.log_dict({f"val/{k}": v.float() for k, v in values.items()}, prog_bar=True, sync_dist=False)
        self.log("val/tokens", float(self.tokens_seen))  # x-axis for comparing runs of other batch sizes
        self.val_metrics.reset()
        self.last_validated_step = self.global_step

    def configure_optimizers(self):
        weight_decay = getattr(self.optimizer_factory, "keywords", {}).get("weight_decay", 0.0)
        optimizer = self.optimizer_factory(param_groups(self.model, weight_decay))
        scheduler = self.scheduler_factory(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["tokens_seen"] = self.tokens_seen

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.tokens_seen = checkpoint.get("tokens_seen", 0)

"""`MiniMindModule`: the one training loop, as a LightningModule around `MiniMindForCausalLM`.

Every stage runs through it; a stage differs by its data and its `Objective`
(`minimind.training.objectives`: next-token cross-entropy for pretraining, SFT and LoRA,
distillation, ...), which turns a batch into the loss and the metrics that explain it. What
the module needs from the run is passed in: the objective, the optimizer and schedule
(partials), the weight decay, and the UTF-8 byte length of every token (for bits per byte).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from lightning import LightningModule

from minimind.checkpoints.lora import LORA_HPARAMS
from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.model.lora import add_lora
from minimind.training.distributed import is_fsdp
from minimind.training.lora import LoRASetup
from minimind.training.objectives import CausalLM, Objective
from minimind.training.optim import decayed_names, param_groups, warmup_cosine


class MiniMindModule(LightningModule):
    def __init__(self, model_config: MiniMindConfig | dict[str, Any],
                 optimizer: Callable[..., torch.optim.Optimizer] | None = None,
                 scheduler: Callable[..., Any] | None = None, weight_decay: float = 0.0,
                 token_bytes: torch.Tensor | None = None, objective: Objective | None = None,
                 compile: bool = False, activation_checkpointing: bool = False):
        """optimizer: a partial taking parameter groups (e.g. `partial(AdamW, lr=...)`).
        scheduler: a partial taking (optimizer, total_steps), e.g. `partial(warmup_cosine, warmup_steps=100)`.
        weight_decay: applied to matrices only (`minimind.training.optim.param_groups`).
        token_bytes: (vocab,) UTF-8 bytes per token id, for bits per byte (None: 1 byte each).
        objective: what the stage trains for (None: next-token cross-entropy)."""
        super().__init__()
        config = model_config if isinstance(model_config, MiniMindConfig) else MiniMindConfig.from_dict(model_config)
        # Only plain data goes into the checkpoint, so it loads with weights_only=True.
        self.save_hyperparameters({"model_config": config.to_dict(), "compile": compile,
                                   "activation_checkpointing": activation_checkpointing})
        self.model = MiniMindForCausalLM(config)
        if activation_checkpointing:
            self.model.gradient_checkpointing_enable()
        self.optimizer_factory = optimizer or torch.optim.AdamW
        self.scheduler_factory = scheduler or warmup_cosine
        self.weight_decay = weight_decay
        self.compile_model = compile
        self.objective = objective or CausalLM()
        if token_bytes is None:
            token_bytes = torch.ones(config.vocab_size, dtype=torch.long)
        self.register_buffer("token_bytes", torch.as_tensor(token_bytes, dtype=torch.long), persistent=False)
        self.tokens_seen = 0  # across all ranks, restored on resume
        self.last_validated_step = -1
        self.decayed_parameters: frozenset[str] | None = None  # chosen in configure_model, before any wrapping
        self.lora: LoRASetup | None = None

    def add_lora(self, setup: LoRASetup) -> None:
        """Freeze the model and give it LoRA adapters (stage=lora), after its base weights are loaded.
        From then on checkpoints hold only what trains; the base is re-read from `setup.base`."""
        add_lora(self.model, setup.config)
        self.lora = setup
        self.hparams[LORA_HPARAMS] = setup.hparams()

    def _frozen_keys(self) -> set[str]:
        return {f"model.{name}" for name, p in self.model.named_parameters(remove_duplicate=False)
                if not p.requires_grad}

    @property
    def config(self) -> MiniMindConfig:
        return self.model.config

    def on_fit_start(self) -> None:
        self.objective.setup(self)  # the module is on its device now (it is not yet in `setup`)

    def on_validation_start(self) -> None:
        self.objective.setup(self)

    def configure_model(self) -> None:
        """Called on every rank before the strategy wraps the model (FSDP flattens its parameters)."""
        if self.decayed_parameters is None:
            self.decayed_parameters = decayed_names(self.model)
        if is_fsdp(self.trainer.strategy):
            # FSDP checkpoints each block itself, inside its shard unit (its activation_checkpointing_policy,
            # set from `activation_checkpointing` in conf/trainer/fsdp.yaml); the model's own would recompute twice.
            self.model.gradient_checkpointing_enable(False)
        if self.compile_model:
            self.model.compile()  # in place: parameter names, and so checkpoints, stay the same

    def forward(self, input_ids: torch.Tensor, **kwargs: Any):
        return self.model(input_ids, **kwargs)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.objective.training_step(self, batch)
        size = batch["input_ids"].shape[0]
        self.tokens_seen += self.objective.batch_tokens(batch) * self.trainer.world_size
        self.log_dict({f"train/{k}": v for k, v in out.metrics.items()}, batch_size=size)
        self.log("train/tokens", float(self.tokens_seen), batch_size=size)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=size)
        return out.loss

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val=None,
                                    gradient_clip_algorithm=None) -> None:
        """Measure the gradient norm (logged, before clipping) and clip with that same number:
        one pass over the gradients instead of two."""
        if gradient_clip_algorithm == "value":
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
            return
        strategy = self.trainer.strategy
        if is_fsdp(strategy):
            # Each rank holds a shard of the gradients: the root FSDP module all-reduces the norm and
            # clips its shard with it (Lightning's FSDP precision plugin refuses norm clipping).
            norm = strategy.model.clip_grad_norm_(gradient_clip_val or math.inf)
        else:
            parameters = [p for p in self.parameters() if p.grad is not None]
            norm = torch.nn.utils.get_total_norm([p.grad for p in parameters])
            if gradient_clip_val:
                torch.nn.utils.clip_grads_with_norm_(parameters, gradient_clip_val, norm)
        self.log("train/grad_norm", norm)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.objective.validation_step(self, batch)

    def on_validation_epoch_end(self) -> None:
        # Metric states are reset here; made under `trainer.validate`'s inference mode they could not be
        # updated by fit's validation (no_grad), as after a run's `validate_at_start`.
        with torch.inference_mode(False):
            values = self.objective.validation_results()
        self.log_dict({f"val/{k}": v.float() for k, v in values.items()}, prog_bar=True, sync_dist=False)
        self.log("val/tokens", float(self.tokens_seen))  # x-axis for comparing runs of other batch sizes
        self.last_validated_step = self.global_step

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(param_groups(self.model, self.weight_decay, self.decayed_parameters))
        scheduler = self.scheduler_factory(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["tokens_seen"] = self.tokens_seen
        if self.lora is not None:  # not a second copy of the frozen base
            frozen = self._frozen_keys()
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k not in frozen}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.tokens_seen = checkpoint.get("tokens_seen", 0)
        if self.lora is not None:  # the base is loaded already: complete the state, so the load stays strict
            frozen = self._frozen_keys()
            ours = {k: v for k, v in self.state_dict().items() if k in frozen}
            checkpoint["state_dict"] = {**ours, **checkpoint["state_dict"]}

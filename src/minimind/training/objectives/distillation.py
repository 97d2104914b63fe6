"""Knowledge distillation (upstream's train_distillation.py): the student learns the labels and
the teacher's distribution over the next token.

    loss = alpha * (CE + aux) + (1 - alpha) * T^2 * KL(teacher_T || student_T)

over the trained tokens only (labels != -100), where `_T` is a softmax at temperature T (the
T^2 keeps the gradient's scale independent of T, as Hinton et al. do). The teacher is any
checkpoint the tools load (larger, or MoE), frozen, run without gradients in the run's
precision; it must share the student's tokenizer, or the two distributions would not be over
the same tokens. A resumed run keeps the teacher it started with, as DPO keeps its reference
(`PinnedModel`): its checkpoints record the teacher's file and a fingerprint of its weights, and
weights changed since are refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric

from minimind.errors import ConfigurationError
from minimind.training.objectives.base import StepOutput
from minimind.training.objectives.causal_lm import CausalLM
from minimind.training.objectives.frozen import PinnedModel

if TYPE_CHECKING:
    from minimind.model import MiniMindConfig
    from minimind.training.init import InitWeights
    from minimind.training.module import MiniMindModule


def distillation_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over the rows (tokens); 0 for no rows."""
    teacher = F.softmax(teacher_logits.float() / temperature, dim=-1)
    student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    return temperature ** 2 * F.kl_div(student, teacher, reduction="sum") / max(1, student.shape[0])


class Distillation(CausalLM):
    def __init__(self, teacher: str | None = None, alpha: float = 0.5, temperature: float = 1.5,
                 teacher_model: str | dict[str, Any] | None = None, ckpt_path: str | None = None):
        """teacher: any checkpoint the tools load. teacher_model: the shape of a bare upstream .pth teacher
        (a preset name such as `base`, or config fields), as `model=PRESET` is for `ckpt=` elsewhere.
        ckpt_path: the run's (`${ckpt_path}`): a resumed run keeps the teacher it started with."""
        super().__init__()
        self.teacher = PinnedModel(
            "teacher", "teacher", teacher, teacher_model, stage="stage=distill", resuming=ckpt_path is not None,
            missing="stage=distill needs a teacher: give teacher=PATH (a run dir, .ckpt, upstream .pth with "
                    "teacher_model=PRESET, or a Hugging Face dir)")
        if not 0 <= alpha <= 1:
            raise ConfigurationError(f"stage.objective.alpha={alpha} must be in [0, 1] (the weight of the CE term)")
        if temperature <= 0:
            raise ConfigurationError(f"stage.objective.temperature={temperature} must be > 0")
        self.alpha, self.temperature = float(alpha), float(temperature)
        self.val_kl = MeanMetric()

    def prepare(self, *, tokenizer: Any, model_config: MiniMindConfig, init: InitWeights | None = None,
                resume: str | None = None) -> None:
        self.teacher.prepare(tokenizer=tokenizer, model_config=model_config, init=init, resume=resume)

    def get_extra_state(self) -> dict[str, Any]:
        return {"teacher": self.teacher.record}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """The teacher was rebuilt from this record in `prepare` (before Lightning restores the checkpoint)."""

    def setup(self, module: MiniMindModule) -> None:
        self.teacher.frozen.to_run(module)

    def _kl(self, student_logits: torch.Tensor, input_ids: torch.Tensor, labels: torch.Tensor,
            document_ids: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = self.teacher.model(input_ids, document_ids=document_ids).logits
        trained = F.pad(labels[:, 1:], (0, 1), value=-100) != -100  # position t predicts token t+1
        vocab = min(student_logits.size(-1), teacher_logits.size(-1))
        return distillation_kl(student_logits[trained][:, :vocab], teacher_logits[trained][:, :vocab],
                               self.temperature)

    def training_step(self, module: MiniMindModule, batch: dict[str, torch.Tensor]) -> StepOutput:
        out = module.model(batch["input_ids"], labels=batch["labels"], document_ids=batch.get("document_ids"))
        kl = self._kl(out.logits, batch["input_ids"], batch["labels"], batch.get("document_ids"))
        metrics = self.lm_metrics(module, out.loss, batch["labels"])
        metrics["ce"] = metrics.pop("loss")
        loss = self.alpha * (out.loss + out.aux_loss) + (1 - self.alpha) * kl
        metrics.update(kl=kl.detach(), loss=loss.detach())
        if module.config.use_moe:
            metrics["aux_loss"] = out.aux_loss
        return StepOutput(loss, metrics)

    def validation_step(self, module: MiniMindModule, batch: dict[str, torch.Tensor]) -> None:
        out = module.model(batch["input_ids"], labels=batch["labels"], document_ids=batch.get("document_ids"))
        self.val_metrics.update(out.loss, batch["labels"][:, 1:], module.token_bytes)
        trained = (batch["labels"][:, 1:] != -100).sum()
        kl = self._kl(out.logits, batch["input_ids"], batch["labels"], batch.get("document_ids"))
        self.val_kl.update(kl, weight=trained)

    def validation_results(self) -> dict[str, torch.Tensor]:
        """`loss` is the student's cross-entropy on held-out data (comparable with any other stage's), plus `kl`."""
        values = super().validation_results()
        values["kl"] = self.val_kl.compute()
        self.val_kl.reset()
        return values

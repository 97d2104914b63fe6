"""What a stage trains for: how a batch becomes a loss, and the numbers that explain it.

Every stage (pretraining, SFT, LoRA, distillation, and the preference and reinforcement stages) runs through the
one `MiniMindModule` loop; what differs is its `Objective`, chosen by the `stage` config group
(`stage.objective`), and its data. Resume, precision, sweeps, loggers, summary.json and compare
are the loop's, so they hold for every stage without a line of stage-specific code.
"""

from minimind.training.objectives.base import Objective, StepOutput
from minimind.training.objectives.causal_lm import CausalLM
from minimind.training.objectives.distillation import Distillation
from minimind.training.objectives.dpo import DPO
from minimind.training.objectives.frozen import Frozen, PinnedModel
from minimind.training.objectives.grpo import GRPO

__all__ = ["DPO", "GRPO", "CausalLM", "Distillation", "Frozen", "Objective", "PinnedModel", "StepOutput"]

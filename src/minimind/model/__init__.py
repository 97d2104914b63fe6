"""The MiniMind transformer, one concern per file, in the study guide's reading order:

norm.py (RMSNorm) -> rope.py (RoPE, YaRN) -> attention.py (GQA, sdpa/eager, KV cache)
-> feedforward.py (SwiGLU) -> moe.py (mixture of experts) -> transformer.py (blocks, model,
LM head) -> generation.py (sampling, batched generation). config.py holds every shape.
After pretraining: lora.py (low-rank adapters on a frozen model, upstream's layout).
"""

from minimind.model.config import ConfigError, MiniMindConfig
from minimind.model.transformer import CausalLMOutput, MiniMindForCausalLM, MiniMindModel

__all__ = ["MiniMindConfig", "MiniMindForCausalLM", "MiniMindModel", "CausalLMOutput", "ConfigError"]

"""MiniMind: a Lightning + Hydra framework for training, comparing and understanding tiny LLMs."""

__version__ = "0.1.0"

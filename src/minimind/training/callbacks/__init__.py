"""Callbacks that the Hydra `callbacks` group switches on."""

from minimind.training.callbacks.batch import batch_size, batch_tokens
from minimind.training.callbacks.rng_state import RNGStateCallback
from minimind.training.callbacks.run_stats import RunStatsCallback
from minimind.training.callbacks.samples import SampleGenerationCallback

__all__ = ["batch_size", "batch_tokens", "RNGStateCallback", "RunStatsCallback", "SampleGenerationCallback"]

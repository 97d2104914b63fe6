"""Callbacks that the Hydra `callbacks` group switches on."""

from minimind.training.callbacks.rng_state import RNGStateCallback
from minimind.training.callbacks.run_stats import RunStatsCallback
from minimind.training.callbacks.samples import SampleGenerationCallback

__all__ = ["RNGStateCallback", "RunStatsCallback", "SampleGenerationCallback"]

"""The project's one family of expected errors.

Every failure a user can cause and fix (an impossible configuration, bad data, a file that
is not a checkpoint, a missing tokenizer) raises a subclass of `MiniMindError` whose
message says what is wrong and what to change. Entry points (`minimind.cli.hydra_app`)
print that message alone and exit with status 1; anything else is a bug and keeps its
traceback. `HYDRA_FULL_ERROR=1` shows the traceback of expected errors too.
"""

from __future__ import annotations


class MiniMindError(Exception):
    """An expected failure; the message says what is wrong and what to change."""


class ConfigurationError(MiniMindError, ValueError):
    """A training configuration that cannot run."""


class CheckpointError(MiniMindError, RuntimeError):
    """A checkpoint that cannot be loaded as asked."""


class ToolError(MiniMindError, RuntimeError):
    """An expected failure of a tool (generate, evaluate, export, inspect, compare)."""

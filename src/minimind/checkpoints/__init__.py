"""Checkpoints of every kind: reading them safely, loading them strictly, writing upstream's form.

    files.py     the kinds (Lightning .ckpt, upstream .pth, Hugging Face dir), safe reads, upstream .pth writes
    hf.py        the Hugging Face config mapping, both ways
    mismatch.py  strict loading and the report of what does not fit
    load.py      `load_checkpoint(path)` and the tokenizer that goes with a checkpoint
    lora.py      LoRA adapter files (upstream's format) and merging them into their base
"""

from minimind.checkpoints.files import (MINIMIND_CONFIG, checkpoint_kind, safe_torch_load, save_upstream_pth,
                                        upstream_pth_name)
from minimind.checkpoints.load import LoadedCheckpoint, load_checkpoint, read_weights, resolve_tokenizer
from minimind.errors import CheckpointError

__all__ = ["MINIMIND_CONFIG", "CheckpointError", "LoadedCheckpoint", "checkpoint_kind", "load_checkpoint",
           "read_weights", "resolve_tokenizer", "safe_torch_load", "save_upstream_pth", "upstream_pth_name"]

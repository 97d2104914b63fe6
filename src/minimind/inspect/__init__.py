"""Look inside a MiniMind: one figure per component of stage two, each explained beside it.

    python -m minimind.inspect ckpt=none model=small out=inspect/random          # before training anything
    python -m minimind.inspect ckpt=outputs/runs/DATE/TIME out=inspect/run prompt="A list is a sequence"
    python -m minimind.inspect ckpt=pretrain_512.pth model=small show=[rope,kv_cache] out=inspect/small
    python -m minimind.inspect ckpt=exported_hf_dir show=attention max_tokens=24 out=inspect/hf

`show` (default `all`) picks the figures, in the study guide's order:

* `parameters`  parameters.png: parameters by component, and what GQA saves against MHA (parameters.py)
* `norm`        norm.png: per-token RMS before and after every RMSNorm on the prompt, the learned gains (norm.py)
* `rope`        rope.png: RoPE's wavelengths per pair (and YaRN's), a query turning with its position,
                the dot product against relative distance (rope.py)
* `attention`   attention_layer_NN.png: the attention weights of every head on the prompt (attention.py)
* `swiglu`      swiglu.png: the SiLU gate against the up projection, near-zero gated units per layer (swiglu.py)
* `kv_cache`    kv_cache.png: cache bytes against length for MHA / GQA / MQA, measured decode time per
                token with and without the cache (kv_cache.py)

`summary.md` explains each figure (what it shows, the formula, the function that computes it) and
`summary.json` holds the numbers behind them, which each module's `*_data` function returns.
Every figure runs the model's own components (`minimind.model.*`), on the prompt where it needs one.
`ckpt=none` initialises `model=PRESET` at random (seed `seed`) with the project's default tokenizer.

(This package is `minimind.inspect`; it imports everything absolutely, so the standard
library's `inspect` is never shadowed.)
"""

from minimind.inspect.command import main
from minimind.inspect.parameters import component, gqa_comparison, tensor_breakdown
from minimind.inspect.report import FIGURES, inspect_model, parse_show

__all__ = ["FIGURES", "component", "gqa_comparison", "inspect_model", "main", "parse_show", "tensor_breakdown"]

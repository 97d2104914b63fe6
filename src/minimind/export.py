"""Export a trained MiniMind for plain `transformers` or for upstream MiniMind.

    python -m minimind.export ckpt=outputs/runs/DATE/TIME format=hf out=exports/minimind-hf
    python -m minimind.export ckpt=RUN_DIR format=minimind out=exports/minimind-pth stage=full_sft
    python -m minimind.export ckpt=pretrain_512.pth model=small format=hf out=exports/MiniMind2-small-hf
    python -m minimind.export ckpt=RUN_DIR format=hf out=exports/x dtype=bfloat16 overwrite=true

`format=hf` writes a Hugging Face model directory that loads with
`AutoModelForCausalLM.from_pretrained(dir)` and no `trust_remote_code`: the MiniMind2 layout
is a `LlamaForCausalLM`, the q/k-norm (minimind-3) layout a `Qwen3ForCausalLM`, with the
same parameter names, so the weights are written unchanged (safetensors; a tied lm_head is
left out, as transformers saves it). Tokenizer, chat template and generation_config.json go
in too. Before the directory appears, it is loaded back with transformers and its logits
are checked against ours (`verify=true`, atol 1e-4). MoE models have no dense Llama/Qwen3
equivalent and are refused (export them with `format=minimind`).

`format=minimind` writes upstream MiniMind's release form: `<stage>_<hidden>[_moe].pth`
(`{name: tensor.half()}`), the tokenizer in MiniMind's format and `minimind_config.json`
(the model's shape, upstream field names), from which `minimind.loading` reads the shape back.
(Not `config.json`: transformers' AutoTokenizer would read that one and warn about the model type.)

Every write goes to a temporary directory beside `out` that is renamed into place at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from minimind.checkpoints import save_upstream_pth, upstream_pth_name
from minimind.loading import (MINIMIND_CONFIG, ToolError, cli_errors, command_line_model_config, describe,
                              load_checkpoint, pick_dtype, resolve_tokenizer)
from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.paths import CONF_DIR

FORMATS = ("hf", "minimind")
VERIFY_ATOL = 1e-4


class ExportError(ToolError):
    """An export that cannot be done faithfully; the message says why and what to do instead."""


# --- writing directories atomically ---------------------------------------------------------------

class AtomicDir:
    """`with AtomicDir(out) as tmp:` write into tmp; on success tmp replaces `out`, on error nothing changes."""

    def __init__(self, out: str | Path, overwrite: bool = False):
        self.out = Path(out).expanduser().resolve()
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())) and not overwrite:
            raise ExportError(f"out={self.out} exists and is not empty: choose another out= or pass overwrite=true")

    def __enter__(self) -> Path:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=self.out.parent))
        return self.tmp

    def __exit__(self, kind, error, tb) -> None:
        if error is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        old = None
        if self.out.exists():  # move the old one aside first: a rename never merges directories
            old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
            os.replace(self.out, old)
        mask = os.umask(0)
        os.umask(mask)
        for path in [self.tmp, *self.tmp.rglob("*")]:  # mkdtemp/mkstemp make them private (0700/0600)
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)
        os.replace(self.tmp, self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def save_tokenizer(tokenizer, folder: Path) -> None:
    """`save_pretrained`, then make `tokenizer_config.json` portable (older transformers, upstream
    MiniMind): the class as `PreTrainedTokenizerFast` and the chat template inline as well."""
    tokenizer.save_pretrained(str(folder))
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    for key in ("is_local", "local_files_only"):  # facts about this machine, not the tokenizer
        config.pop(key, None)
    if tokenizer.chat_template:
        config["chat_template"] = tokenizer.chat_template
    config_path.write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


# --- Hugging Face -----------------------------------------------------------------------------------

def hf_config(config: MiniMindConfig, dtype: torch.dtype) -> dict[str, Any]:
    """config.json for transformers' Llama (MiniMind2 layout) or Qwen3 (q/k norm layout)."""
    from transformers import LlamaConfig, Qwen3Config

    if config.use_moe:
        raise ExportError(
            "format=hf: this is a mixture-of-experts model, which has no dense LlamaForCausalLM / Qwen3ForCausalLM "
            "equivalent (transformers' MoE classes lay experts out differently and MiniMind2-MoE's shared expert "
            "has no Qwen3-MoE counterpart), so it is not exported rather than exported wrong. "
            "Use format=minimind for an upstream .pth instead.")
    rope: dict[str, Any] = {"rope_type": "default", "rope_theta": config.rope_theta}
    if config.rope_scaling is not None:
        s = config.rope_scaling
        rope = {"rope_type": "yarn", "rope_theta": config.rope_theta, "factor": float(s.get("factor", 16)),
                "original_max_position_embeddings": s.get("original_max_position_embeddings", 2048),
                "beta_fast": float(s.get("beta_fast", 32.0)), "beta_slow": float(s.get("beta_slow", 1.0)),
                "attention_factor": float(s.get("attention_factor", 1.0))}
    common = dict(vocab_size=config.vocab_size, hidden_size=config.hidden_size,
                  intermediate_size=config.intermediate_size, num_hidden_layers=config.num_hidden_layers,
                  num_attention_heads=config.num_attention_heads, num_key_value_heads=config.num_key_value_heads,
                  head_dim=config.head_dim, max_position_embeddings=config.max_position_embeddings,
                  rms_norm_eps=config.rms_norm_eps, hidden_act=config.hidden_act,
                  tie_word_embeddings=config.tie_word_embeddings, attention_bias=False, attention_dropout=0.0,
                  bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                  pad_token_id=config.pad_token_id, initializer_range=config.initializer_range,
                  rope_parameters=rope)
    if config.qk_norm:
        hf = Qwen3Config(**common, use_sliding_window=False)
        architecture = "Qwen3ForCausalLM"
    else:
        hf = LlamaConfig(**common, mlp_bias=False)
        architecture = "LlamaForCausalLM"
    # The non-default fields transformers itself would save, plus every field a reader looks for
    # (and the two top-level keys transformers 4.x reads: rope_theta, torch_dtype).
    name = str(dtype).removeprefix("torch.")
    data = {"architectures": [architecture], "model_type": hf.model_type, **hf.to_diff_dict(), **common,
            "rope_theta": config.rope_theta, "torch_dtype": name, "dtype": name}
    data.pop("transformers_version", None)
    data["transformers_version"] = hf.to_dict().get("transformers_version")
    if config.rope_scaling is not None:
        data["rope_scaling"] = dict(rope)
    return data


def hf_state_dict(model: MiniMindForCausalLM, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Our state dict is already transformers' (same names); a tied lm_head is left out, as transformers does."""
    state = {k: v.detach().to("cpu", dtype).contiguous().clone() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight")
    return state


def generation_config(config: MiniMindConfig, tokenizer) -> dict[str, Any]:
    """Sampling defaults (upstream MiniMind's), stopping at `<|im_end|>` and at `<|endoftext|>`."""
    eos = [config.eos_token_id]
    end_of_text = tokenizer.convert_tokens_to_ids("<|endoftext|>") if tokenizer is not None else None
    if end_of_text is not None and end_of_text not in eos:
        eos.append(end_of_text)
    return {"bos_token_id": config.bos_token_id, "eos_token_id": eos, "pad_token_id": config.pad_token_id,
            "do_sample": True, "temperature": 0.85, "top_k": 50, "top_p": 0.85}


def verify_hf(folder: Path, model: MiniMindForCausalLM, dtype: torch.dtype, atol: float = VERIFY_ATOL) -> float:
    """Load `folder` with plain transformers and compare its logits to ours; returns the max difference."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the "Loading weights" bar
    try:
        theirs = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    finally:
        hf_logging.enable_progress_bar()
    config = model.config
    ours = MiniMindForCausalLM(config).eval()  # our model with the same (dtype-rounded) weights, in fp32
    ours.load_state_dict({k: v.to(dtype).float() for k, v in model.state_dict().items()})
    length = min(24, config.max_position_embeddings)
    tokens = torch.randint(0, config.vocab_size, (2, length), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (theirs(tokens).logits.float() - ours(tokens).logits.float()).abs().max().item()
    if not diff <= atol:
        raise ExportError(f"the exported {type(theirs).__name__} gives logits that differ from MiniMind's by "
                          f"{diff:.2e} (> {atol:g}): the export is not faithful, so it was not written")
    return diff


def export_hf(model: MiniMindForCausalLM, tokenizer, out_dir: str | Path, dtype: torch.dtype = torch.float32,
              verify: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Write `out_dir` as a transformers model directory; returns what was written (and the verified logit diff)."""
    from safetensors.torch import save_file

    config = hf_config(model.config, dtype)  # refuses what has no faithful equivalent, before any write
    target = AtomicDir(out_dir, overwrite)
    with target as tmp:
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        save_file(hf_state_dict(model, dtype), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "generation_config.json").write_text(json.dumps(generation_config(model.config, tokenizer),
                                                               indent=2) + "\n")
        if tokenizer is not None:
            save_tokenizer(tokenizer, tmp)
        diff = verify_hf(tmp, model, dtype) if verify else None
    return {"out": target.out, "architecture": config["architectures"][0], "max_logit_diff": diff,
            "files": sorted(p.name for p in target.out.iterdir())}


# --- upstream MiniMind ------------------------------------------------------------------------------

def export_minimind(model: MiniMindForCausalLM, tokenizer, out_dir: str | Path, stage: str = "pretrain",
                    overwrite: bool = False) -> dict[str, Any]:
    """Write `<stage>_<hidden>[_moe].pth` (fp16), `minimind_config.json` (its shape) and the tokenizer."""
    target = AtomicDir(out_dir, overwrite)
    name = upstream_pth_name(model.config, stage)
    with target as tmp:
        save_upstream_pth(model, tmp / name)
        config = {"model_type": "minimind", "architectures": ["MiniMindForCausalLM"], **model.config.to_dict()}
        (tmp / MINIMIND_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        if tokenizer is not None:
            save_tokenizer(tokenizer, tmp)
    return {"out": target.out, "weights": target.out / name, "files": sorted(p.name for p in target.out.iterdir())}


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="export")
@cli_errors
def main(cfg: DictConfig) -> None:
    if cfg.format not in FORMATS:
        raise SystemExit(f"format={cfg.format!r}: choose one of {FORMATS}")
    loaded = load_checkpoint(cfg.ckpt, command_line_model_config(cfg))
    print(describe(loaded), file=sys.stderr, flush=True)
    tokenizer = resolve_tokenizer(loaded, cfg.tokenizer)
    if cfg.format == "hf":
        result = export_hf(loaded.model, tokenizer, cfg.out, pick_dtype(cfg.dtype), cfg.verify, cfg.overwrite)
        checked = (f"; transformers reloads it with logits within {result['max_logit_diff']:.1e} of ours"
                   if result["max_logit_diff"] is not None else "")
        print(f"wrote {result['architecture']} to {result['out']}: {', '.join(result['files'])}{checked}")
    else:
        result = export_minimind(loaded.model, tokenizer, cfg.out, cfg.stage, cfg.overwrite)
        print(f"wrote upstream MiniMind weights {result['weights']} (fp16) with {', '.join(result['files'])}")


if __name__ == "__main__":
    main()

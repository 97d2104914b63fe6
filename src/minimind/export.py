"""Export a trained MiniMind for plain `transformers` or for upstream MiniMind.

    python -m minimind.export ckpt=outputs/runs/DATE/TIME format=hf out=exports/minimind-hf
    python -m minimind.export ckpt=RUN_DIR format=minimind out=exports/minimind-pth stage=full_sft
    python -m minimind.export ckpt=pretrain_512.pth model=small format=hf out=exports/MiniMind2-small-hf
    python -m minimind.export ckpt=RUN_DIR format=hf out=exports/x dtype=bfloat16 overwrite=true
    python -m minimind.export ckpt=LORA_RUN_DIR format=hf out=exports/lora-merged   # base + adapter, merged
    python -m minimind.export ckpt=full_sft_512.pth model=small lora=lora_medical_512.pth format=minimind out=x

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
(the model's shape, upstream field names), from which `minimind.checkpoints` reads the shape back.
(Not `config.json`: transformers' AutoTokenizer would read that one and warn about the model type.)

Every write goes to a temporary directory beside `out` that is renamed into place at the end.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from minimind.checkpoints import MINIMIND_CONFIG, resolve_tokenizer, save_upstream_pth, upstream_pth_name
from minimind.checkpoints.hf import ExportError, hf_config, hf_state_dict, minimind_config_json
from minimind.cli import describe, hydra_app, load_tool_checkpoint, pick_dtype
from minimind.files import AtomicDir
from minimind.model import MiniMindConfig, MiniMindForCausalLM

FORMATS = ("hf", "minimind")
VERIFY_ATOL = 1e-4


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
        (tmp / MINIMIND_CONFIG).write_text(json.dumps(minimind_config_json(model.config), indent=2) + "\n")
        if tokenizer is not None:
            save_tokenizer(tokenizer, tmp)
    return {"out": target.out, "weights": target.out / name, "files": sorted(p.name for p in target.out.iterdir())}


@hydra_app("export")
def main(cfg: DictConfig) -> None:
    if cfg.format not in FORMATS:
        raise ExportError(f"format={cfg.format!r}: choose one of {FORMATS}")
    loaded = load_tool_checkpoint(cfg)
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

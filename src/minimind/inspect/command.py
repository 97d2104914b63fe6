"""The command line: load a checkpoint (or initialise a preset at random), draw the chosen figures."""

from __future__ import annotations

import dataclasses
import sys

import torch
from omegaconf import DictConfig

from minimind.checkpoints import load_checkpoint, resolve_tokenizer
from minimind.checkpoints.load import as_config
from minimind.cli import command_line_model_config, describe, hydra_app
from minimind.inspect.report import inspect_model, parse_show
from minimind.model import MiniMindForCausalLM


def random_model(cfg: DictConfig):
    """`ckpt=none`: `model` initialised at random (seed `seed`) and the project's default tokenizer
    (or `tokenizer=DIR`); returns (model, tokenizer, a description of the source)."""
    from hydra.core.hydra_config import HydraConfig

    from minimind.data import resolve_tokenizer as data_tokenizer
    from minimind.data.tokenizer import check_vocab_fits

    config = dataclasses.replace(as_config(cfg.model), attn_implementation="eager")
    torch.manual_seed(cfg.seed)
    model = MiniMindForCausalLM(config).eval()
    tokenizer = data_tokenizer(cfg.tokenizer or "default")
    check_vocab_fits(len(tokenizer), config.vocab_size, fix="pass tokenizer=DIR with a smaller vocabulary or raise "
                     "model.vocab_size")
    preset = HydraConfig.get().runtime.choices.get("model") if HydraConfig.initialized() else None
    source = f"model={preset or '(the configured model)'} at random initialisation (seed {cfg.seed})"
    print(f"initialised {source}: {model.num_parameters() / 1e6:.2f}M parameters, "
          f"{config.num_hidden_layers} layers x {config.hidden_size}", file=sys.stderr, flush=True)
    return model, tokenizer, source


@hydra_app("inspect")
def main(cfg: DictConfig) -> None:
    show = parse_show(cfg.show)  # a misspelt figure fails before anything is loaded
    if cfg.ckpt is None or str(cfg.ckpt).lower() == "none":
        model, tokenizer, source = random_model(cfg)
    else:
        loaded = load_checkpoint(cfg.ckpt, command_line_model_config(cfg), attn_implementation="eager")
        print(describe(loaded), file=sys.stderr, flush=True)
        model, tokenizer, source = loaded.model, resolve_tokenizer(loaded, cfg.tokenizer), str(loaded.path)
    report = inspect_model(model, tokenizer, cfg.prompt, cfg.out, cfg.max_tokens, source=source, show=show,
                           layer=cfg.layer, decode_tokens=cfg.decode_tokens,
                           progress=lambda name: print(f"drawing {name}", file=sys.stderr, flush=True))
    files = [f for name in report["show"] for f in report["files"][name]]
    print(f"wrote {len(files)} figures ({', '.join(report['show'])}) and summary.md to {cfg.out}")
    gqa = report["gqa"]["kv_cache_bytes_per_token"]
    print(f"{report['total_parameters']:,} parameters; KV cache {gqa['fp16/bf16']['gqa']:,} B/token in fp16 "
          f"({gqa['fp16/bf16']['mha']:,} B with MHA)")

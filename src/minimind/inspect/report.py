"""`inspect_model`: draw the chosen figures of a model into a folder, with summary.md and summary.json."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from minimind.errors import ToolError
from minimind.files import atomic_write_text
from minimind.inspect import attention, kv_cache, norm, parameters, rope, swiglu
from minimind.inspect.attention import token_labels
from minimind.inspect.parameters import gqa_comparison, tensor_breakdown
from minimind.model import MiniMindForCausalLM

# In the study guide's order; each module has `section(model, out, ...) -> Section`.
FIGURES = {"parameters": parameters, "norm": norm, "rope": rope, "attention": attention, "swiglu": swiglu,
           "kv_cache": kv_cache}


def parse_show(show: str | Iterable[str] | None) -> list[str]:
    """`all`, one name, "a,b" or a list -> the figure names in FIGURES order; refuses unknown names."""
    if show is None:
        names = ["all"]
    elif isinstance(show, str):
        names = [s.strip() for s in show.split(",") if s.strip()]
    else:
        names = [str(s).strip() for s in show]
    unknown = [n for n in names if n not in FIGURES and n != "all"]
    if unknown or not names:
        what = f"{', '.join(unknown)} is not a figure" if unknown else "show is empty"
        raise ToolError(f"{what}: choose show=all, or any of {', '.join(FIGURES)} (several as show=[rope,norm])")
    return list(FIGURES) if "all" in names else [n for n in FIGURES if n in names]


def rounded(value: Any, digits: int = 6) -> Any:
    """`value` with every float cut to `digits` significant digits (summary.json stays readable and small)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def describe_config(cfg: dict[str, Any], kind: str, total: int) -> str:
    """One sentence for the summary: the model's shape."""
    if cfg["use_moe"]:
        mlp = (f"MoE of {cfg['num_experts']} experts (top-{cfg['num_experts_per_tok']}, "
               f"{cfg['n_shared_experts']} shared) of width {cfg['moe_intermediate_size']}")
    else:
        mlp = f"SwiGLU MLP of width {cfg['intermediate_size']}"
    return (f"{cfg['num_hidden_layers']} layers of width {cfg['hidden_size']}, {cfg['num_attention_heads']} query "
            f"heads and {cfg['num_key_value_heads']} key/value heads ({kind}) of dimension {cfg['head_dim']}"
            f"{' with q/k norm' if cfg['qk_norm'] else ''}, {mlp}, vocabulary {cfg['vocab_size']}, embeddings "
            f"{'tied' if cfg['tie_word_embeddings'] else 'untied'}: **{total:,} parameters**.")


def inspect_model(model: MiniMindForCausalLM, tokenizer, prompt: str, out_dir: str | Path, max_tokens: int = 32,
                  source: str = "MiniMind", show: str | Iterable[str] | None = "all", layer: int | None = None,
                  decode_tokens: int = 64, progress=None) -> dict[str, Any]:
    """Write the figures named by `show` (see FIGURES), summary.md and summary.json into `out_dir`;
    returns the report (the numbers in summary.json). `layer`: the layer the SwiGLU figure looks at
    (None: the middle one); `decode_tokens`: how many tokens the KV-cache figure times;
    `progress(name)` is called before each figure."""
    names = parse_show(show)
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    if not ids:
        raise ToolError('prompt is empty: give prompt="..."')
    truncated = len(ids) > max_tokens
    ids = ids[:max_tokens]
    if len(ids) >= model.config.max_position_embeddings:
        raise ToolError(f"the prompt has {len(ids)} tokens but the model's context is "
                        f"{model.config.max_position_embeddings}: lower max_tokens")
    model.eval()
    context = dict(ids=ids, labels=token_labels(tokenizer, ids), prompt=prompt, truncated=truncated, layer=layer,
                   decode_tokens=decode_tokens)
    config = model.config
    report: dict[str, Any] = {
        "source": source, "config": config.to_dict(), "show": names,
        "parameters": tensor_breakdown(model), "total_parameters": model.num_parameters(),
        "gqa": gqa_comparison(config), "files": {"summary": str(out / "summary.md")},
    }
    lines = [f"# Inside {source}", "",
             describe_config(report["config"], report["gqa"]["kind"], report["total_parameters"]), "",
             "Each figure below comes with what it shows, its formula and the code that computes it; the numbers "
             "behind every figure are in summary.json.", ""]
    for name in names:
        if progress is not None:
            progress(name)
        with torch.random.fork_rng(devices=[]):  # figures that draw random inputs leave the caller's RNG alone
            torch.manual_seed(0)
            section = FIGURES[name].section(model, out, **context)
        if name != "parameters":  # its numbers are the report's own "parameters" and "gqa"
            report[name] = section.data
        report["files"][name] = [str(f) for f in section.files]
        lines += section.text
    atomic_write_text(out / "summary.md", "\n".join(lines).rstrip() + "\n")
    atomic_write_text(out / "summary.json", json.dumps(rounded(report), indent=1, ensure_ascii=False) + "\n")
    return report

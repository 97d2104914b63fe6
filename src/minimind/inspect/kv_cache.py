"""`show=kv_cache`: what the KV cache costs in memory and saves in time, measured on the model itself.

Memory: the cache the model's own attention returns (`use_cache=True`) is measured for this
model and for its MHA / GQA / MQA variants (one `minimind.model.attention.Attention` with
the variant's number of key/value heads, times the layers), next to the formula
`minimind.model.params.kv_cache_bytes_per_token` for every length up to the context.
Time: the model's own `generate`, greedy, with and without the cache, timed per new token
through its streamer interface.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
from matplotlib.ticker import FuncFormatter

from minimind.inspect.figures import Section, human_bytes, new_figure, save, source
from minimind.model import MiniMindConfig
from minimind.model.attention import Attention
from minimind.model.generation import GenerationMixin
from minimind.model.params import kv_cache_bytes_per_token

MEASURED_LENGTHS = (1, 16, 128)  # sequence lengths at which the real cache is measured


def kind(config: MiniMindConfig) -> str:
    kv, heads = config.num_key_value_heads, config.num_attention_heads
    return "MHA" if kv == heads else "MQA" if kv == 1 else "GQA"


def variant_heads(config: MiniMindConfig) -> list[int]:
    """Key/value head counts to compare: MHA, this model, MQA, and one GQA between them if none is."""
    heads = config.num_attention_heads
    counts = {heads, config.num_key_value_heads, 1}
    middle = [d for d in range(heads - 1, 1, -1) if heads % d == 0 and d not in counts]
    if len(counts) < 3 and middle:
        counts.add(middle[len(middle) // 2])
    return sorted(counts, reverse=True)


def cache_bytes(cache) -> int:
    """Bytes held by a KV cache (a list of (keys, values) per layer), from its tensors."""
    return sum(t.numel() * t.element_size() for kv in cache for t in kv)


@torch.inference_mode()
def measured_cache_bytes(model, kv_heads: int, length: int) -> int:
    """The cache of `length` tokens for `model`'s shape with `kv_heads` key/value heads: one real
    `Attention` layer of that shape returns its (keys, values), times the number of layers."""
    config = dataclasses.replace(model.config, num_key_value_heads=kv_heads, attn_implementation="sdpa")
    p = next(model.parameters())
    layer = Attention(config).to(device=p.device, dtype=p.dtype).eval()
    x = torch.randn(1, length, config.hidden_size, device=p.device, dtype=p.dtype)
    positions = torch.arange(length, device=p.device)[None]
    rope = (model.model.rope_cos[positions], model.model.rope_sin[positions])
    _, cache, _ = layer(x, rope, use_cache=True)
    return cache_bytes([cache]) * config.num_hidden_layers


class StepTimer:
    """A `generate` streamer that notes when each token arrives (the first `put` is the prompt)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.tokens: list[int] = []

    def put(self, ids: torch.Tensor) -> None:
        self.times.append(time.perf_counter())
        if len(self.times) > 1:
            self.tokens.append(int(ids.reshape(-1)[0]))

    def end(self) -> None:
        pass

    @property
    def step_seconds(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:])]


def time_decode(model, ids: list[int], new_tokens: int, use_cache: bool) -> StepTimer:
    """Greedy decoding of exactly `new_tokens` tokens (no stop token) with the model's `generate`."""
    timer = StepTimer()
    prompt = torch.tensor([ids], device=next(model.parameters()).device)
    # eos_token_id=-1 matches no token: every run takes the same number of steps
    model.generate(prompt, max_new_tokens=new_tokens, do_sample=False, eos_token_id=-1, use_cache=use_cache,
                   streamer=timer)
    return timer


def kv_cache_data(model, ids: list[int], new_tokens: int = 64, repeats: int = 2) -> dict[str, Any]:
    """Cache bytes of this model and its variants (formula and measured), and decode time per token
    (the fastest of `repeats` runs at each step)."""
    config = model.config
    n_ctx = config.max_position_embeddings
    element = next(model.parameters()).element_size()
    lengths = sorted({min(n, n_ctx) for n in MEASURED_LENGTHS})
    variants = []
    for kv in variant_heads(config):
        shape = dataclasses.replace(config, num_key_value_heads=kv)
        variants.append({
            "kv_heads": kv, "kind": kind(shape), "this_model": kv == config.num_key_value_heads,
            "bytes_per_token": kv_cache_bytes_per_token(shape, element),
            "bytes_at_context": kv_cache_bytes_per_token(shape, element) * n_ctx,
            "measured": {str(n): measured_cache_bytes(model, kv, n) for n in lengths},
        })
    with torch.inference_mode():
        device = next(model.parameters()).device
        own = cache_bytes(model(torch.tensor([ids], device=device), use_cache=True).past_key_values)

    new_tokens = max(1, min(new_tokens, n_ctx - len(ids)))
    for use_cache in (True, False):  # warm-up: first calls pay for allocation and kernel selection
        time_decode(model, ids, min(4, new_tokens), use_cache)
    runs = {use_cache: [time_decode(model, ids, new_tokens, use_cache) for _ in range(repeats)]
            for use_cache in (True, False)}
    # the fastest of the repeats at each step: what the step costs, without the machine's interruptions
    step = {use_cache: [min(s) for s in zip(*(r.step_seconds for r in timers))] for use_cache, timers in runs.items()}
    return {
        "bytes_per_element": element, "context_tokens": n_ctx, "variants": variants, "lengths": lengths,
        "prompt_tokens": len(ids), "prompt_cache_bytes": own,
        "decode": {
            "new_tokens": new_tokens, "repeats": repeats, "with_cache_s": step[True], "without_cache_s": step[False],
            "sequence_lengths": [len(ids) + i for i in range(new_tokens)],
            "same_tokens": runs[True][0].tokens == runs[False][0].tokens,
        },
    }


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def draw(data: dict[str, Any]):
    fig = new_figure(14, 5)
    ax_mem, ax_time = fig.subplots(1, 2)
    n_ctx = data["context_tokens"]
    xs = torch.logspace(0, torch.log10(torch.tensor(float(n_ctx))), 50)
    for i, v in enumerate(data["variants"]):
        label = f"{v['kind']}, {v['kv_heads']} kv heads" + (" (this model)" if v["this_model"] else "")
        ax_mem.loglog(xs, xs * v["bytes_per_token"], color=f"C{i}", lw=2.5 if v["this_model"] else 1.2, label=label)
        ax_mem.scatter([int(n) for n in v["measured"]], list(v["measured"].values()), color=f"C{i}", zorder=3,
                       edgecolor="black")
    ax_mem.set_yscale("log", base=2)
    ax_mem.yaxis.set_major_formatter(FuncFormatter(lambda y, _: human_bytes(y, "g")))
    ax_mem.axvline(n_ctx, color="grey", lw=0.8, ls=":")
    ax_mem.set(xlabel=f"tokens in the cache (per sequence; context {n_ctx:,})",
               ylabel=f"cache size ({data['bytes_per_element']} bytes per element)",
               title="KV cache size: line = formula, dots = measured cache")
    ax_mem.legend(fontsize=8)

    d = data["decode"]
    ms = lambda s: [1000 * v for v in s]  # noqa: E731
    ax_time.plot(d["sequence_lengths"], ms(d["without_cache_s"]), ".-", color="tab:red",
                 label=f"without cache: whole prefix each step (median {1000 * _median(d['without_cache_s']):.1f} ms)")
    ax_time.plot(d["sequence_lengths"], ms(d["with_cache_s"]), ".-", color="tab:green",
                 label=f"with cache: the new token only (median {1000 * _median(d['with_cache_s']):.1f} ms)")
    ax_time.set_ylim(bottom=0)
    ax_time.set(xlabel="tokens before the new one", ylabel="ms per new token",
                title=f"greedy decoding of {d['new_tokens']} tokens, measured (fastest of {d['repeats']} runs per step)")
    ax_time.legend(fontsize=8)
    return fig


def section(model, out: Path, ids: list[int], decode_tokens: int = 64, **_: Any) -> Section:
    data = kv_cache_data(model, ids, decode_tokens)
    path = save(draw(data), out / "kv_cache.png")
    ours = next(v for v in data["variants"] if v["this_model"])
    mha = data["variants"][0]
    d = data["decode"]
    with_cache, without = sum(d["with_cache_s"]), sum(d["without_cache_s"])
    same = "the same tokens" if d["same_tokens"] else "different tokens (rounding: the two paths add in another order)"
    text = [
        "## KV cache: memory for time", "",
        f"Generating a token needs the keys and values of every earlier token; the cache keeps them, "
        f"{ours['bytes_per_token']:,} bytes per token for this model in its dtype ({data['bytes_per_element']} bytes "
        f"per element; {human_bytes(ours['bytes_at_context'])} at the "
        f"full {data['context_tokens']:,}-token context, against {human_bytes(mha['bytes_at_context'])} with "
        f"{mha['kv_heads']}-head MHA; left, the dots are the caches the model's attention really returned). "
        f"With the cache a step computes the new token only; without it, the whole prefix again (right): "
        f"{d['new_tokens']} new tokens took {with_cache:.2f} s against {without:.2f} s "
        f"({without / with_cache:.1f}x; the fastest of {d['repeats']} runs at each step), and both gave {same}.", "",
        "Formula: `cache bytes = 2 (k and v) x layers x kv_heads x head_dim x bytes per element x tokens`; "
        "a cached step attends 1 query to S keys, an uncached one S queries to S keys.", "",
        "Code: " + source(Attention.forward, kv_cache_bytes_per_token, GenerationMixin.generate) + ".", "",
        "![KV cache](kv_cache.png)", "",
    ]
    return Section("kv_cache", data, [path], text)

"""Decode tokens/s with and without the KV cache."""

from __future__ import annotations

import torch

from common import Measurement, timed
from minimind.model import MiniMindConfig, MiniMindForCausalLM


def decode_rate(cfg: MiniMindConfig, batch_size: int, new_tokens: int, use_cache: bool, repeats: int,
                device: torch.device, prompt_len: int = 16, dtype: torch.dtype = torch.float32) -> Measurement:
    torch.manual_seed(0)
    model = MiniMindForCausalLM(cfg).to(device=device, dtype=dtype).eval()
    prompt = torch.randint(3, cfg.vocab_size, (batch_size, prompt_len), device=device)

    def generate():
        model.generate(prompt, max_new_tokens=new_tokens, do_sample=False, eos_token_id=None, use_cache=use_cache)

    timed(lambda: model.generate(prompt, max_new_tokens=4, do_sample=False, eos_token_id=None), device)
    result = Measurement(f"batch {batch_size}, {'with' if use_cache else 'without'} KV cache", "tokens/s")
    for _ in range(repeats):
        result.values.append(batch_size * new_tokens / timed(generate, device))
    return result

"""sdpa against eager attention: training-step time of a whole model at two sequence lengths."""

from __future__ import annotations

import torch

from common import Measurement, timed
from minimind.model import MiniMindConfig, MiniMindForCausalLM


def step_time(cfg: MiniMindConfig, backend: str, batch_size: int, seq_len: int, repeats: int,
              device: torch.device) -> Measurement:
    torch.manual_seed(0)
    cfg = MiniMindConfig.from_dict({**cfg.to_dict(), "attn_implementation": backend})
    model = MiniMindForCausalLM(cfg).to(device).train()
    ids = torch.randint(0, cfg.vocab_size, (batch_size, seq_len), device=device)

    def step():
        model(ids, labels=ids).loss.backward()
        model.zero_grad(set_to_none=True)

    timed(step, device)
    result = Measurement(f"{backend}, seq {seq_len}", "ms/step")
    for _ in range(repeats):
        result.values.append(1000 * timed(step, device))
    return result

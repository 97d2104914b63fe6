"""Autoregressive generation: greedy or sampled, batched with left padding, with a KV cache.

Each step feeds only the newest token and reuses the keys/values cached for earlier ones,
so a step costs O(S) attention instead of recomputing the whole O(S^2) prefix.
Prompts of different lengths are left-padded: every row's last real token then sits in the
last column, and positions count real tokens only (padding gets no position), so a padded
prompt generates exactly what it generates alone.
"""

from __future__ import annotations

from typing import Any

import torch


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """Make tokens already in the context less likely (CTRL, Keskar et al. 2019): divide their
    positive logits by `penalty` and multiply their negative ones by it."""
    if penalty == 1.0:
        return logits
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def filter_top_k_top_p(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Keep the k most likely tokens and the smallest set whose probability reaches p; -inf the rest."""
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_logits.softmax(-1) >= top_p  # mass before this token already reached p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def sampling_logits(logits: torch.Tensor, do_sample: bool, temperature: float, top_k: int,
                    top_p: float) -> torch.Tensor:
    """The logits the next token is drawn from (its distribution is their softmax): scaled by the
    temperature and filtered when sampling, as they are when decoding greedily."""
    if not do_sample or temperature <= 0:
        return logits
    return filter_top_k_top_p(logits / temperature, top_k, top_p)


def next_tokens(logits: torch.Tensor, do_sample: bool, temperature: float, top_k: int, top_p: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, vocab) float logits -> (B,) chosen token ids."""
    if not do_sample or temperature <= 0:
        return logits.argmax(dim=-1)
    probs = sampling_logits(logits, do_sample, temperature, top_k, top_p).softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class GenerationMixin:
    """`generate` for a causal LM whose forward takes position_ids and a KV cache."""

    @torch.inference_mode()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 max_new_tokens: int = 256, do_sample: bool = True, temperature: float = 0.85,
                 top_k: int = 50, top_p: float = 0.85, repetition_penalty: float = 1.0,
                 eos_token_id: int | None = None, pad_token_id: int | None = None, use_cache: bool = True,
                 streamer: Any = None, generator: torch.Generator | None = None,
                 return_logprobs: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Continue each row of input_ids (B, T) by up to max_new_tokens; returns (B, T + new).

        Rows that produced eos_token_id are filled with pad_token_id until all rows finish.
        `streamer` is anything with Hugging Face's streamer interface (`put(ids)`, `end()`),
        e.g. `transformers.TextStreamer`; it receives the prompt first, then each new token.
        `generator` makes sampling reproducible (`torch.Generator().manual_seed(n)`).
        `return_logprobs`: also return (B, new) float32, the log-probability each new token had in the
        distribution it was drawn from (temperature and filters applied; what reinforcement learning
        calls the behaviour policy's), at no extra cost.
        """
        eos = self.config.eos_token_id if eos_token_id is None else eos_token_id
        pad = self.config.pad_token_id if pad_token_id is None else pad_token_id
        ids = input_ids
        mask = torch.ones_like(ids) if attention_mask is None else attention_mask.to(ids.dtype)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # padding gets no position of its own
        seen = torch.zeros(ids.shape[0], self.config.vocab_size, device=ids.device)
        seen = seen.scatter_add_(1, ids, mask.float()) > 0
        finished = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
        if streamer is not None:
            streamer.put(ids.cpu())

        cache, step_ids, step_positions = None, ids, positions
        logprobs = []
        for _ in range(max_new_tokens):
            if use_cache:
                out = self(step_ids, attention_mask=mask, position_ids=step_positions,
                           past_key_values=cache, use_cache=True, logits_to_keep=1)
                cache = out.past_key_values
            else:  # recompute the whole prefix every step (to compare against the cache)
                out = self(ids, attention_mask=mask, position_ids=positions, logits_to_keep=1)
            logits = apply_repetition_penalty(out.logits[:, -1].float(), seen, repetition_penalty)
            token = next_tokens(logits, do_sample, temperature, top_k, top_p, generator)
            if return_logprobs:
                drawn_from = sampling_logits(logits, do_sample, temperature, top_k, top_p).log_softmax(-1)
                logprobs.append(drawn_from.gather(-1, token[:, None]).squeeze(-1))
            if eos is not None:
                token = token.masked_fill(finished, pad)
            ids = torch.cat([ids, token[:, None]], dim=-1)
            mask = torch.cat([mask, torch.ones_like(token[:, None])], dim=-1)
            step_ids, step_positions = token[:, None], positions[:, -1:] + 1
            positions = torch.cat([positions, step_positions], dim=-1)
            seen[torch.arange(len(token)), token] = True
            if streamer is not None:
                streamer.put(token.cpu())
            if eos is not None:
                finished |= token == eos
                if finished.all():
                    break
        if streamer is not None:
            streamer.end()
        if return_logprobs:
            return ids, torch.stack(logprobs, dim=1) if logprobs else ids.new_zeros((ids.shape[0], 0), dtype=torch.float)
        return ids

"""Mixture-of-experts feed-forward: each token runs through its top-k of E SwiGLU experts.

A linear router scores the experts per token (softmax), the k best are kept (optionally
renormalised to sum to 1), and the token's output is the weighted sum of those experts'
outputs, plus the output of any always-on shared experts (MiniMind2-MoE has one).
Parameters grow with E while the compute per token grows only with k.

Dispatch is grouped by expert: the (token, slot) pairs are sorted by expert id so that
each expert runs once on one contiguous batch of its tokens, instead of a Python loop per
token. An expert that receives no token still runs on an empty batch, which keeps its
parameters in the autograd graph (DDP requires every parameter to get a gradient).

Load balancing (Switch Transformer): aux = coef * E * sum_e f_e * P_e, with f_e the share
of routed slots that went to expert e and P_e its mean router probability. It is smallest
(= coef) when routing is uniform, and it is added to the training loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from minimind.model.config import MiniMindConfig
from minimind.model.feedforward import FeedForward


class MoEFeedForward(nn.Module):
    def __init__(self, config: MiniMindConfig):
        super().__init__()
        self.top_k = config.num_experts_per_tok
        self.num_experts = config.num_experts
        self.norm_topk_prob = config.norm_topk_prob
        self.aux_loss_coef = config.router_aux_loss_coef
        self.gate = nn.Linear(config.hidden_size, config.num_experts, bias=False)  # the router
        width = config.moe_intermediate_size
        self.experts = nn.ModuleList(
            FeedForward(config.hidden_size, width, config.dropout) for _ in range(config.num_experts))
        self.shared_experts = nn.ModuleList(
            FeedForward(config.hidden_size, width, config.dropout) for _ in range(config.n_shared_experts))

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, hidden) -> router probabilities (N, E), top-k weights (N, k) and expert ids (N, k)."""
        probs = F.softmax(self.gate(x).float(), dim=-1)
        weights, experts = torch.topk(probs, self.top_k, dim=-1)
        if self.norm_topk_prob:
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        return probs, weights, experts

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, hidden) -> (output (B, T, hidden), load-balancing loss (scalar))."""
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])  # (N, hidden)
        probs, weights, experts = self.route(tokens)

        slots = experts.flatten()  # (N * k,) expert id of every (token, slot) pair
        order = slots.argsort(stable=True)  # group the pairs by expert
        token_of_pair = order // self.top_k
        per_expert = torch.bincount(slots, minlength=self.num_experts)
        grouped_in = tokens[token_of_pair].split(per_expert.tolist())
        grouped_out = torch.cat([expert(chunk) for expert, chunk in zip(self.experts, grouped_in)])
        grouped_out = grouped_out * weights.flatten()[order, None].to(grouped_out.dtype)
        out = torch.zeros_like(tokens).index_add_(0, token_of_pair, grouped_out.to(tokens.dtype))

        for shared in self.shared_experts:
            out = out + shared(tokens)

        share_routed = per_expert.float() / slots.numel()
        aux_loss = self.aux_loss_coef * self.num_experts * (share_routed * probs.mean(0)).sum()
        return out.view(shape), aux_loss

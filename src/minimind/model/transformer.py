"""The MiniMind decoder: pre-norm blocks of attention and (MoE) SwiGLU, and the LM head.

    tokens -> embedding -> N x [x + Attention(RMSNorm(x)); x + FFN(RMSNorm(x))] -> RMSNorm -> lm_head

Module and parameter names follow upstream MiniMind exactly (`model.layers.0.self_attn.q_proj.weight`,
...), which are also Hugging Face Llama's / Qwen3's names: upstream `.pth` state dicts load
with `strict=True`, and exports to `transformers` need no renaming.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from minimind.model.attention import Attention, KVCache
from minimind.model.config import MiniMindConfig
from minimind.model.feedforward import FeedForward
from minimind.model.generation import GenerationMixin
from minimind.model.moe import MoEFeedForward
from minimind.model.norm import RMSNorm
from minimind.model.rope import precompute_rope


@dataclass
class CausalLMOutput:
    logits: torch.Tensor  # (B, T, vocab)
    loss: torch.Tensor | None = None  # next-token cross-entropy, without aux_loss
    aux_loss: torch.Tensor | None = None  # MoE load balancing (0 for dense models)
    past_key_values: list[KVCache] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None  # per layer (B, H, T, S), with output_attentions
    hidden_states: torch.Tensor | None = None  # final normed hidden states (B, T, hidden)


def document_positions(document_ids: torch.Tensor) -> torch.Tensor:
    """(B, T) document ids -> (B, T) positions that restart at 0 where each document starts."""
    index = torch.arange(document_ids.shape[1], device=document_ids.device).expand_as(document_ids)
    starts = torch.ones_like(document_ids, dtype=torch.bool)
    starts[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]
    first = torch.where(starts, index, 0).cummax(dim=1).values  # where each token's document began
    return index - first


class MiniMindBlock(nn.Module):
    def __init__(self, config: MiniMindConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.mlp = (MoEFeedForward(config) if config.use_moe
                    else FeedForward(config.hidden_size, config.intermediate_size, config.dropout))

    def forward(self, x, rope, padding_mask=None, past_kv=None, use_cache=False, output_attentions=False,
                document_ids=None):
        attn_out, new_kv, weights = self.self_attn(
            self.input_layernorm(x), rope, padding_mask, past_kv, use_cache, output_attentions, document_ids)
        x = x + attn_out
        mlp_out = self.mlp(self.post_attention_layernorm(x))
        if isinstance(mlp_out, tuple):  # MoE also returns its load-balancing loss
            mlp_out, aux_loss = mlp_out
        else:
            aux_loss = x.new_zeros(())
        return x + mlp_out, new_kv, weights, aux_loss


class MiniMindModel(nn.Module):
    """Embedding, the stack of blocks and the final norm (the part without the LM head)."""

    def __init__(self, config: MiniMindConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(MiniMindBlock(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        cos, sin = precompute_rope(config.head_dim, config.rope_theta, config.max_position_embeddings,
                                   config.rope_scaling)
        # Derived from the config, so not saved: upstream checkpoints don't carry them either.
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.gradient_checkpointing = False

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None,
                use_cache=False, output_attentions=False, document_ids=None):
        b, t = input_ids.shape
        past_len = past_key_values[0][0].shape[2] if past_key_values else 0
        if past_len + t > self.config.max_position_embeddings:
            raise ValueError(f"sequence of {past_len + t} tokens exceeds max_position_embeddings="
                             f"{self.config.max_position_embeddings}: shorten the input or raise the limit")
        if position_ids is None:
            position_ids = torch.arange(past_len, past_len + t, device=input_ids.device).expand(b, t)
        if attention_mask is not None and bool(attention_mask.all()):
            attention_mask = None  # no padding: let sdpa take its causal fast path
        if document_ids is not None:
            if past_key_values:
                raise ValueError("document_ids (packed rows) cannot be combined with a KV cache: generate one "
                                 "document at a time")
            if bool((document_ids == document_ids[:, :1]).all()):
                document_ids = None  # one document per row: the causal fast path
            elif position_ids is None:
                position_ids = document_positions(document_ids)
        rope = (self.rope_cos[position_ids], self.rope_sin[position_ids])  # (B, T, D) each

        x = self.dropout(self.embed_tokens(input_ids))
        new_cache, attentions = [], []
        aux_loss = x.new_zeros((), dtype=torch.float32)
        for i, layer in enumerate(self.layers):
            past_kv = past_key_values[i] if past_key_values else None
            if self.gradient_checkpointing and self.training:
                # Keep only the block's input; recompute its activations during backward.
                x, kv, weights, layer_aux = checkpoint(layer, x, rope, attention_mask, past_kv, use_cache,
                                                       output_attentions, document_ids, use_reentrant=False)
            else:
                x, kv, weights, layer_aux = layer(x, rope, attention_mask, past_kv, use_cache, output_attentions,
                                                  document_ids)
            new_cache.append(kv)
            attentions.append(weights)
            aux_loss = aux_loss + layer_aux
        return (self.norm(x), new_cache if use_cache else None,
                tuple(attentions) if output_attentions else None, aux_loss)


class MiniMindForCausalLM(nn.Module, GenerationMixin):
    """MiniMind with its language-model head: logits, loss and generation."""

    def __init__(self, config: MiniMindConfig | None = None):
        super().__init__()
        self.config = config or MiniMindConfig()
        self.model = MiniMindModel(self.config)
        self.lm_head = nn.Linear(self.config.hidden_size, self.config.vocab_size, bias=False)
        self.apply(self._init_weights)
        if self.config.tie_word_embeddings:  # one matrix reads tokens in and writes them out
            self.lm_head.weight = self.model.embed_tokens.weight

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)

    def gradient_checkpointing_enable(self, enabled: bool = True) -> None:
        """Trade compute for memory: recompute each block's activations in the backward pass."""
        self.model.gradient_checkpointing = enabled

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                past_key_values: list[KVCache] | None = None, use_cache: bool = False,
                output_attentions: bool = False, logits_to_keep: int = 0,
                document_ids: torch.Tensor | None = None) -> CausalLMOutput:
        """input_ids (B, T); labels (B, T) are the inputs themselves with -100 where no loss is
        wanted: the shift to next-token targets happens here, as in Hugging Face and upstream.
        attention_mask (B, past + T) marks real tokens with 1 and padding with 0.
        logits_to_keep=n computes logits for the last n positions only (0 = all).
        document_ids (B, T): packed rows, several documents each (ids equal within a document, e.g.
        0, 0, 0, 1, 1, 2, ...): each token attends only within its document and positions restart
        at 0 with each, so every document gets the logits it would get alone in its row. A target
        across a boundary is the caller's to ignore (label -100 on each document's first token)."""
        hidden, cache, attentions, aux_loss = self.model(
            input_ids, attention_mask, position_ids, past_key_values, use_cache, output_attentions, document_ids)
        logits = self.lm_head(hidden[:, -logits_to_keep:] if logits_to_keep else hidden)
        loss = None
        if labels is not None:
            # Position t predicts token t+1. Shift the labels, not the logits: slicing the
            # (B, T, vocab) logits would copy the largest tensor of the step.
            # A sum over the trained tokens divided by their count: the mean, and 0 rather than NaN for a
            # batch without any (an SFT row whose reply was cut off by seq_len).
            targets = F.pad(labels[:, 1:], (0, 1), value=-100)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100,
                                   reduction="sum") / (targets != -100).sum().clamp(min=1)
        return CausalLMOutput(logits=logits, loss=loss, aux_loss=aux_loss, past_key_values=cache,
                              attentions=attentions, hidden_states=hidden)

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Distinct parameters (a tied embedding counts once)."""
        params = {id(p): p for p in self.parameters()}
        if exclude_embeddings:
            params.pop(id(self.model.embed_tokens.weight), None)
            params.pop(id(self.lm_head.weight), None)
        return sum(p.numel() for p in params.values())

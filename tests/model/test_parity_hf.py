"""Our logits equal Hugging Face's independent implementations loaded with our weights.

The MiniMind2 layout is a Llama model and the q/k-norm (minimind-3) layout is a Qwen3 model,
with identical parameter names, so the state dict transfers with strict=True and no renaming.
"""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM


def hf_kwargs(cfg):
    return dict(vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
                num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
                num_key_value_heads=cfg.num_key_value_heads, head_dim=cfg.head_dim,
                max_position_embeddings=cfg.max_position_embeddings, rms_norm_eps=cfg.rms_norm_eps,
                rope_theta=cfg.rope_theta, tie_word_embeddings=cfg.tie_word_embeddings, hidden_act="silu",
                attention_bias=False)


def assert_same_logits(ours, theirs, tokens):
    with torch.no_grad():  # norms start at 1; make them matter so they are really compared
        for name, p in ours.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    missing, unexpected = theirs.load_state_dict(ours.state_dict(), strict=True)
    assert not missing and not unexpected
    theirs.eval()
    with torch.no_grad():
        expected = theirs(tokens).logits
        actual = ours(tokens).logits
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("kv_heads", [1, 2, 4])
def test_minimind2_layout_matches_llama(make_model, tokens, tied, kv_heads):
    ours = make_model(num_key_value_heads=kv_heads, tie_word_embeddings=tied)
    theirs = LlamaForCausalLM(LlamaConfig(**hf_kwargs(ours.config), mlp_bias=False, attn_implementation="eager"))
    assert_same_logits(ours, theirs, tokens)


@pytest.mark.parametrize("tied", [True, False])
def test_qk_norm_layout_matches_qwen3(make_model, tokens, tied):
    ours = make_model(qk_norm=True, rms_norm_eps=1e-6, head_dim=24, tie_word_embeddings=tied)
    theirs = Qwen3ForCausalLM(Qwen3Config(**hf_kwargs(ours.config), attn_implementation="eager"))
    assert_same_logits(ours, theirs, tokens)


def test_eager_backend_matches_llama_too(make_model, tokens):
    ours = make_model(attn_implementation="eager")
    theirs = LlamaForCausalLM(LlamaConfig(**hf_kwargs(ours.config), mlp_bias=False, attn_implementation="eager"))
    assert_same_logits(ours, theirs, tokens)

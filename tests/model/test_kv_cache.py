"""Incremental decoding with the KV cache gives the logits of a full forward pass."""

import pytest
import torch


@pytest.mark.parametrize("overrides", [{}, {"qk_norm": True}, {"attn_implementation": "eager"},
                                       {"use_moe": True, "n_shared_experts": 1}])
def test_token_by_token_equals_full_forward(make_model, tokens, overrides):
    model = make_model(**overrides)
    with torch.no_grad():
        full = model(tokens).logits
        out = model(tokens[:, :8], use_cache=True)  # prefill
        steps, cache = [out.logits], out.past_key_values
        for t in range(8, tokens.shape[1]):
            out = model(tokens[:, t:t + 1], past_key_values=cache, use_cache=True)
            steps.append(out.logits)
            cache = out.past_key_values
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


def test_chunked_prefill_equals_full_forward(make_model, tokens):
    model = make_model()
    with torch.no_grad():
        full = model(tokens).logits
        first = model(tokens[:, :10], use_cache=True)
        second = model(tokens[:, 10:], past_key_values=first.past_key_values, use_cache=True)
    torch.testing.assert_close(torch.cat([first.logits, second.logits], dim=1), full, atol=1e-5, rtol=1e-5)


def test_cache_holds_only_kv_heads(make_model, tokens):
    model = make_model(num_key_value_heads=1)
    with torch.no_grad():
        cache = model(tokens, use_cache=True).past_key_values
    keys, values = cache[0]
    assert keys.shape == values.shape == (2, 1, 24, 16)  # (B, kv_heads, S, head_dim)
    assert len(cache) == model.config.num_hidden_layers


def test_too_long_input_is_refused(make_model):
    model = make_model(max_position_embeddings=16)
    with pytest.raises(ValueError, match="exceeds max_position_embeddings=16"):
        model(torch.zeros(1, 17, dtype=torch.long))

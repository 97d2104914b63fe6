"""The two attention backends agree, attention is causal, and GQA variants behave."""

import pytest
import torch

from minimind.model.attention import attention_bias


@pytest.mark.parametrize("kv_heads", [1, 2, 4])  # MQA, GQA, MHA
@pytest.mark.parametrize("qk_norm", [False, True])
def test_sdpa_equals_eager(make_model, tokens, kv_heads, qk_norm):
    sdpa = make_model(num_key_value_heads=kv_heads, qk_norm=qk_norm, attn_implementation="sdpa")
    eager = make_model(num_key_value_heads=kv_heads, qk_norm=qk_norm, attn_implementation="eager")
    eager.load_state_dict(sdpa.state_dict())
    mask = torch.ones_like(tokens)
    mask[1, :5] = 0  # left padding exercises the explicit-mask path of both backends
    with torch.no_grad():
        for attention_mask in (None, mask):
            torch.testing.assert_close(sdpa(tokens, attention_mask=attention_mask).logits,
                                       eager(tokens, attention_mask=attention_mask).logits, atol=1e-5, rtol=1e-5)


def test_future_tokens_do_not_change_past_logits(make_model, tokens):
    model = make_model()
    changed = tokens.clone()
    changed[:, 12:] = (changed[:, 12:] + 7) % 256
    with torch.no_grad():
        before, after = model(tokens).logits, model(changed).logits
    torch.testing.assert_close(before[:, :12], after[:, :12])
    assert not torch.allclose(before[:, 12:], after[:, 12:])


def test_attention_weights_are_causal_distributions(make_model, tokens):
    model = make_model(attn_implementation="eager")
    with torch.no_grad():
        out = model(tokens, output_attentions=True)
    assert len(out.attentions) == model.config.num_hidden_layers
    weights = out.attentions[0]
    assert weights.shape == (2, 4, 24, 24)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 24))
    assert weights.triu(diagonal=1).abs().max() == 0


def test_output_attentions_works_with_sdpa_model_too(make_model, tokens):
    model = make_model(attn_implementation="sdpa")
    with torch.no_grad():
        plain, inspected = model(tokens), model(tokens, output_attentions=True)
    assert inspected.attentions[0].shape == (2, 4, 24, 24)
    torch.testing.assert_close(plain.logits, inspected.logits, atol=1e-5, rtol=1e-5)


def test_padding_keys_are_never_attended(make_model, tokens):
    model = make_model(attn_implementation="eager")
    mask = torch.ones_like(tokens)
    mask[:, :6] = 0
    with torch.no_grad():
        weights = model(tokens, attention_mask=mask, output_attentions=True).attentions[1]
    assert weights[:, :, 6:, :6].abs().max() == 0
    assert torch.isfinite(weights).all()  # fully masked (padding) query rows stay finite


def test_bias_for_cached_queries_is_offset_causal():
    bias = attention_bias(None, q_len=2, k_len=5, dtype=torch.float32, device=torch.device("cpu"))
    allowed = bias[0, 0] == 0
    assert allowed.tolist() == [[True, True, True, True, False], [True, True, True, True, True]]


def test_gqa_shrinks_kv_projections(make_model):
    mha, gqa, mqa = (make_model(num_key_value_heads=k) for k in (4, 2, 1))
    kv = [m.model.layers[0].self_attn.k_proj.weight.shape[0] for m in (mha, gqa, mqa)]
    assert kv == [64, 32, 16]
    assert mha.num_parameters() > gqa.num_parameters() > mqa.num_parameters()


def packed_row(docs: list[torch.Tensor], length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Documents back to back, then padding: (ids, labels, document ids) as packed SFT rows hold them."""
    ids = torch.cat([*docs, torch.zeros(length - sum(len(d) for d in docs), dtype=torch.long)])
    sizes = [len(d) for d in docs] + [length - sum(len(d) for d in docs)]
    document_ids = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    labels = ids.clone()
    labels[document_ids == len(docs)] = -100
    labels[torch.tensor([0, *torch.tensor(sizes[:-1]).cumsum(0).tolist()])] = -100  # each document's first token
    return ids, labels, document_ids


@pytest.mark.parametrize("backend", ["sdpa", "eager"])
def test_packed_documents_get_exactly_the_logits_and_loss_they_get_alone(make_model, backend):
    model = make_model(attn_implementation=backend)
    g = torch.Generator().manual_seed(2)
    docs = [torch.randint(3, 256, (n,), generator=g) for n in (7, 12, 4, 15, 9)]
    rows = [packed_row(docs[:3], 32), packed_row(docs[3:], 32)]  # two rows, boundaries in other places
    ids, labels, document_ids = (torch.stack(parts) for parts in zip(*rows))
    with torch.no_grad():
        packed = model(ids, labels=labels, document_ids=document_ids)
        alone = [model(d[None]).logits[0] for d in docs]
        padded = torch.nn.utils.rnn.pad_sequence(docs, batch_first=True)
        unpacked_labels = torch.nn.utils.rnn.pad_sequence(docs, batch_first=True, padding_value=-100)
        unpacked_loss = model(padded, labels=unpacked_labels).loss
    for row, row_docs in ((0, docs[:3]), (1, docs[3:])):
        start = 0
        for doc in row_docs:
            torch.testing.assert_close(packed.logits[row, start:start + len(doc)], alone.pop(0), atol=1e-5, rtol=0)
            start += len(doc)
    torch.testing.assert_close(packed.loss, unpacked_loss, atol=1e-5, rtol=0)  # the same targets, the same loss


def test_one_document_per_row_keeps_the_causal_fast_path(make_model, tokens, monkeypatch):
    import torch.nn.functional as F

    model = make_model(attn_implementation="sdpa")
    calls, sdpa = [], F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append((kwargs.get("is_causal", False), kwargs.get("attn_mask") is None))
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    with torch.no_grad():
        single = model(tokens, document_ids=torch.zeros_like(tokens)).logits
        assert set(calls) == {(True, True)}  # fused causal kernels, no mask built
        calls.clear()
        two = torch.zeros_like(tokens)
        two[:, 10:] = 1
        model(tokens, document_ids=two)
        assert set(calls) == {(False, False)}  # an explicit block-diagonal mask
    torch.testing.assert_close(single, model(tokens).logits)
    with pytest.raises(ValueError, match="KV cache"):
        cache = model(tokens[:, :4], use_cache=True).past_key_values
        model(tokens[:, 4:6], past_key_values=cache, document_ids=two[:, 4:6])

"""MoE routing, grouped dispatch and the load-balancing loss."""

import pytest
import torch

from minimind.model.moe import MoEFeedForward


def moe_layer(make_config, **overrides):
    torch.manual_seed(0)
    cfg = make_config(use_moe=True, num_experts=4, num_experts_per_tok=2, **overrides)
    return MoEFeedForward(cfg)


def per_token_reference(layer, x):
    """The obvious, slow definition: loop over tokens and their chosen experts."""
    tokens = x.reshape(-1, x.shape[-1])
    _, weights, experts = layer.route(tokens)
    out = torch.zeros_like(tokens)
    for n in range(tokens.shape[0]):
        for w, e in zip(weights[n], experts[n]):
            out[n] += w * layer.experts[int(e)](tokens[n:n + 1])[0]
        for shared in layer.shared_experts:
            out[n] += shared(tokens[n:n + 1])[0]
    return out.view(x.shape)


@pytest.mark.parametrize("top_k, shared, norm", [(1, 0, True), (2, 1, True), (3, 0, False)])
def test_grouped_dispatch_equals_per_token_loop(make_config, top_k, shared, norm):
    layer = moe_layer(make_config, n_shared_experts=shared, norm_topk_prob=norm)
    layer.top_k = top_k
    x = torch.randn(2, 7, 64)
    with torch.no_grad():
        out, _ = layer(x)
    torch.testing.assert_close(out, per_token_reference(layer, x), atol=1e-5, rtol=1e-5)


def test_each_token_goes_to_exactly_top_k_distinct_experts(make_config):
    layer = moe_layer(make_config)
    probs, weights, experts = layer.route(torch.randn(50, 64))
    assert experts.shape == (50, 2)
    assert all(len(set(row.tolist())) == 2 for row in experts)
    torch.testing.assert_close(weights.sum(-1), torch.ones(50))  # renormalised top-k
    best_two = probs.topk(2, dim=-1).indices
    assert torch.equal(experts.sort(-1).values, best_two.sort(-1).values)


def test_aux_loss_is_finite_positive_and_minimal_when_balanced(make_config):
    layer = moe_layer(make_config, router_aux_loss_coef=0.01)
    _, aux = layer(torch.randn(2, 16, 64))
    assert torch.isfinite(aux) and aux > 0
    with torch.no_grad():
        layer.gate.weight.zero_()  # uniform router: f_e = P_e = 1/E, the minimum, aux = coef
    _, balanced = layer(torch.randn(2, 16, 64))
    torch.testing.assert_close(balanced, torch.tensor(0.01))


def test_every_expert_gets_a_gradient_even_when_unused(make_config):
    layer = moe_layer(make_config)
    with torch.no_grad():  # force every token to experts 0 and 1
        layer.gate.weight.zero_()
        layer.gate.weight[0].fill_(1.0)
        layer.gate.weight[1].fill_(0.5)
    x = torch.rand(1, 6, 64)
    out, aux = layer(x)
    (out.sum() + aux).backward()
    grads = [e.down_proj.weight.grad for e in layer.experts]
    assert all(g is not None for g in grads)  # DDP needs a gradient for every parameter
    assert grads[0].abs().sum() > 0 and grads[3].abs().sum() == 0


def test_model_reports_aux_loss_summed_over_layers(make_model, tokens):
    model = make_model(use_moe=True)
    out = model(tokens, labels=tokens)
    assert out.aux_loss.ndim == 0 and out.aux_loss > 0
    dense = make_model()
    assert dense(tokens, labels=tokens).aux_loss == 0

"""Loss, activation checkpointing and dropout: what training relies on."""

import torch
import torch.nn.functional as F


def test_loss_is_shifted_cross_entropy_ignoring_minus_100(make_model, tokens):
    model = make_model()
    labels = tokens.clone()
    labels[:, :10] = -100  # e.g. an SFT prompt
    out = model(tokens, labels=labels)
    expected = F.cross_entropy(out.logits[:, :-1].reshape(-1, 256), labels[:, 1:].reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out.loss, expected)


def test_activation_checkpointing_gives_same_loss_and_gradients(make_model, tokens):
    for overrides in ({}, {"use_moe": True, "n_shared_experts": 1}):
        plain, ckpt = make_model(**overrides).train(), make_model(**overrides).train()
        ckpt.gradient_checkpointing_enable()
        results = []
        for model in (plain, ckpt):
            out = model(tokens, labels=tokens)
            (out.loss + out.aux_loss).backward()
            results.append((out.loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
        torch.testing.assert_close(results[0][0], results[1][0])
        for name, grad in results[0][1].items():
            torch.testing.assert_close(results[1][1][name], grad, atol=1e-6, rtol=1e-5, msg=name)


def test_checkpointing_keeps_dropout_masks_consistent(make_model, tokens):
    plain, ckpt = make_model(dropout=0.2).train(), make_model(dropout=0.2).train()
    ckpt.gradient_checkpointing_enable()
    losses = []
    for model in (plain, ckpt):
        torch.manual_seed(5)
        out = model(tokens, labels=tokens)
        out.loss.backward()
        losses.append((out.loss.detach(), model.lm_head.weight.grad.clone()))
    torch.testing.assert_close(losses[0][0], losses[1][0])
    torch.testing.assert_close(losses[0][1], losses[1][1], atol=1e-6, rtol=1e-5)


def test_dropout_only_in_training(make_model, tokens):
    model = make_model(dropout=0.3)
    with torch.no_grad():
        assert torch.equal(model(tokens).logits, model(tokens).logits)
        model.train()
        assert not torch.equal(model(tokens).logits, model(tokens).logits)


def test_tied_embeddings_share_one_matrix(make_model):
    tied, untied = make_model(), make_model(tie_word_embeddings=False)
    assert tied.lm_head.weight is tied.model.embed_tokens.weight
    assert untied.num_parameters() - tied.num_parameters() == 256 * 64


def test_a_few_steps_of_adamw_fit_a_fixed_batch(make_model, tokens):
    model = make_model().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss = model(tokens, labels=tokens).loss
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first * 0.5

"""Generation: deterministic greedy, cache = no cache, batching with left padding, sampling."""

import torch

from minimind.model.generation import filter_top_k_top_p


def prompts():
    g = torch.Generator().manual_seed(3)
    return [torch.randint(3, 256, (n,), generator=g) for n in (5, 9, 3)]


def left_pad(rows, pad=0):
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, width - len(r):], mask[i, width - len(r):] = r, 1
    return ids, mask


def test_greedy_is_deterministic_and_cache_changes_nothing(make_model):
    model = make_model()
    prompt = prompts()[1][None]
    cached = model.generate(prompt, max_new_tokens=20, do_sample=False, eos_token_id=None)
    again = model.generate(prompt, max_new_tokens=20, do_sample=False, eos_token_id=None)
    uncached = model.generate(prompt, max_new_tokens=20, do_sample=False, eos_token_id=None, use_cache=False)
    assert cached.shape == (1, 29)
    assert torch.equal(cached, again) and torch.equal(cached, uncached)


def test_batched_left_padded_equals_one_by_one(make_model):
    model = make_model()
    rows = prompts()
    ids, mask = left_pad(rows)
    batched = model.generate(ids, attention_mask=mask, max_new_tokens=12, do_sample=False, eos_token_id=None)
    for i, row in enumerate(rows):
        alone = model.generate(row[None], max_new_tokens=12, do_sample=False, eos_token_id=None)
        assert torch.equal(batched[i, -12:], alone[0, -12:]), f"row {i} differs"


def test_batched_generation_without_cache_matches_too(make_model):
    model = make_model(qk_norm=True)
    ids, mask = left_pad(prompts())
    kwargs = dict(attention_mask=mask, max_new_tokens=8, do_sample=False, eos_token_id=None)
    assert torch.equal(model.generate(ids, **kwargs), model.generate(ids, use_cache=False, **kwargs))


def test_sampling_is_reproducible_with_a_seeded_generator(make_model):
    model = make_model()
    prompt = prompts()[0][None]
    kwargs = dict(max_new_tokens=15, do_sample=True, temperature=1.0, top_k=50, top_p=0.9, eos_token_id=None)
    a = model.generate(prompt, generator=torch.Generator().manual_seed(7), **kwargs)
    b = model.generate(prompt, generator=torch.Generator().manual_seed(7), **kwargs)
    c = model.generate(prompt, generator=torch.Generator().manual_seed(8), **kwargs)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_eos_stops_and_pads_finished_rows(make_model):
    model = make_model()
    ids, mask = left_pad(prompts()[:2])
    first = model.generate(ids, attention_mask=mask, max_new_tokens=1, do_sample=False, eos_token_id=None)[:, -1]
    eos = int(first[0])  # make row 0's first new token the end of its text
    out = model.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=False, eos_token_id=eos,
                         pad_token_id=0)
    assert out[0, ids.shape[1]] == eos
    assert (out[0, ids.shape[1] + 1:] == 0).all()


def test_repetition_penalty_changes_greedy_choice(make_model):
    model = make_model()
    prompt = prompts()[0][None]
    plain = model.generate(prompt, max_new_tokens=30, do_sample=False, eos_token_id=None)
    penalised = model.generate(prompt, max_new_tokens=30, do_sample=False, eos_token_id=None,
                               repetition_penalty=5.0)
    assert len(set(penalised[0, 5:].tolist())) > len(set(plain[0, 5:].tolist()))


class RecordingStreamer:
    def __init__(self):
        self.chunks, self.ended = [], False

    def put(self, ids):
        self.chunks.append(ids.clone())

    def end(self):
        self.ended = True


def test_streamer_receives_prompt_then_each_token(make_model):
    model = make_model()
    prompt = prompts()[0][None]
    streamer = RecordingStreamer()
    out = model.generate(prompt, max_new_tokens=4, do_sample=False, eos_token_id=None, streamer=streamer)
    assert torch.equal(streamer.chunks[0], prompt)
    assert [int(c) for c in streamer.chunks[1:]] == out[0, 5:].tolist()
    assert streamer.ended


def test_top_k_and_top_p_filters():
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0]])
    assert torch.isinf(filter_top_k_top_p(logits, top_k=2)).tolist() == [[False, False, True, True, True]]
    probs = logits.softmax(-1)  # 0.64, 0.24, 0.09, ...: p=0.8 needs the two largest
    assert probs[0, 0] < 0.8 < probs[0, :2].sum()
    assert torch.isinf(filter_top_k_top_p(logits, top_p=0.8)).tolist() == [[False, False, True, True, True]]

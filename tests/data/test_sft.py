"""SFT rows: upstream's conversations rendered as upstream renders them, and trained exactly where
upstream's SFTDataset trains: checked against a re-implementation of its rule on minimind-3's
real tokenizer and chat template (tests/fixtures/minimind3_tokenizer, Apache-2.0)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from minimind.data import DataError
from minimind.data.encode import EMPTY_THINK, SYSTEM_PROMPTS, ChatOptions, Encoder
from minimind.data.errors import BadRecords
from minimind.data.packing import pack_documents
from minimind.data.records import Record, extract
from minimind.data.streaming_dataset import StreamingDataset
from minimind.data.tokenizer import CHAT_TEMPLATE, load_tokenizer

from .helpers import datamodule, make_conversations, write_jsonl

MINIMIND3 = Path(__file__).parents[1] / "fixtures" / "minimind3_tokenizer"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                                           "parameters": {"type": "object",
                                                          "properties": {"city": {"type": "string"}}}}}]
# Upstream's record format (its files store `tools` and `tool_calls` as JSON strings).
UPSTREAM_RECORDS = [
    [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4."},
     {"role": "user", "content": "And 3 + 3?"}, {"role": "assistant", "content": "6, since 3 + 3 = 6."}],
    [{"role": "system", "content": "You are a careful assistant."}, {"role": "user", "content": "Is 7 prime?"},
     {"role": "assistant", "content": "Yes, 7 is prime.",
      "reasoning_content": "7 has no divisors other than 1 and itself."}],
    [{"role": "system", "content": "You can check the weather.", "tools": json.dumps(TOOLS)},
     {"role": "user", "content": "Weather in Paris?"},
     {"role": "assistant", "content": "", "tool_calls": json.dumps([{"name": "get_weather",
                                                                       "arguments": {"city": "Paris"}}])},
     {"role": "tool", "content": '{"temperature": 21, "sky": "clear"}'},
     {"role": "assistant", "content": "It is 21 degrees and clear in Paris."}],
    [{"role": "user", "content": "Think first: what is 10 / 4?"},
     {"role": "assistant", "content": "<think>\n10 / 4 = 2.5\n</think>\n\nIt is 2.5."}],
    [{"role": "user", "content": "Weather in Rome and Oslo?"},
     {"role": "assistant", "content": "Let me check both.",
      "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
                     {"name": "get_weather", "arguments": {"city": "Oslo"}}]},
     {"role": "tool", "content": "Rome: 25"}, {"role": "tool", "content": "Oslo: 9"},
     {"role": "assistant", "content": "Rome is at 25 degrees, Oslo at 9."}],
]
FIELDS = ("role", "content", "reasoning_content", "tools", "tool_calls")


@pytest.fixture(scope="module")
def minimind3():
    return load_tokenizer(MINIMIND3)


def upstream_row(tok, conversation: list[dict], max_length: int) -> tuple[list[int], list[int]]:
    """Upstream's SFTDataset, re-implemented from its description: every message read with all five
    fields (None when absent), `tools` taken from the system message and `tool_calls` parsed when JSON
    strings, the tokenizer's chat template, ids cut to max_length and padded, and labels on every
    span from after the ids of `<|im_start|>assistant\\n` through the ids of `<|im_end|>\\n`."""
    messages, tools = [], None
    for message in conversation:
        message = {k: message.get(k) for k in FIELDS}
        if message["role"] == "system" and message["tools"]:
            tools = json.loads(message["tools"]) if isinstance(message["tools"], str) else message["tools"]
        if message["tool_calls"] and isinstance(message["tool_calls"], str):
            message["tool_calls"] = json.loads(message["tool_calls"])
        messages.append(message)
    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False, tools=tools)
    ids = tok(prompt).input_ids[:max_length]
    ids += [tok.pad_token_id] * (max_length - len(ids))
    begin = tok("<|im_start|>assistant\n", add_special_tokens=False).input_ids
    end_ids = tok("<|im_end|>\n", add_special_tokens=False).input_ids
    labels, i = [-100] * len(ids), 0
    while i < len(ids):
        if ids[i:i + len(begin)] != begin:
            i += 1
            continue
        start = end = i + len(begin)
        while end < len(ids) and ids[end:end + len(end_ids)] != end_ids:
            end += 1
        for j in range(start, min(end + len(end_ids), max_length)):
            labels[j] = ids[j]
        i = end + len(end_ids) if end < len(ids) else len(ids)
    return ids, labels


def records(conversations, fmt="sft") -> list[Record]:
    bad = BadRecords()
    return [Record(i, f"doc{i}", f"doc{i}", extract({"conversations": c}, fmt, f"doc{i}", bad))
            for i, c in enumerate(conversations)]


def test_trained_tokens_are_exactly_upstreams_on_the_minimind3_template(minimind3):
    encoded = Encoder(minimind3, "sft").encode(records(UPSTREAM_RECORDS))
    for conversation, (ids, mask) in zip(UPSTREAM_RECORDS, encoded):
        up_ids, up_labels = upstream_row(minimind3, conversation, len(ids))
        assert ids.tolist() == up_ids
        assert mask.tolist() == [label != -100 for label in up_labels]
        for cut in range(1, len(ids) + 1):  # truncated anywhere (inside a reply, between <|im_end|> and \n, ...)
            assert mask[:cut].tolist() == [label != -100 for label in upstream_row(minimind3, conversation, cut)[1]]
    rendered = minimind3.decode([i for i, m in zip(*encoded[2]) if m])
    assert rendered == ('<think>\n\n</think>\n\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}'
                        '\n</tool_call><|im_end|>\n<think>\n\n</think>\n\nIt is 21 degrees and clear in Paris.<|im_end|>\n')


def test_sft_rows_equal_upstreams_padded_rows(minimind3, tmp_path):
    path = write_jsonl(tmp_path / "sft.jsonl", [{"conversations": c} for c in UPSTREAM_RECORDS])
    seq_len = 48  # some conversations are cut, some padded
    dm = datamodule(path, MINIMIND3, tmp_path, seq_len=seq_len, batch_size=1)
    dm.setup("fit")
    ours = sorted((tuple(b["input_ids"][0].tolist()), tuple(b["labels"][0].tolist())) for b in dm.train_dataloader())
    theirs = sorted(tuple(map(tuple, upstream_row(minimind3, c, seq_len))) for c in UPSTREAM_RECORDS)
    assert ours == theirs


def test_our_template_renders_conversations_as_minimind3_does(minimind3):
    for conversation, record in zip(UPSTREAM_RECORDS, records(UPSTREAM_RECORDS)):
        tools = next((m["tools"] for m in record.value if m.get("tools")), None)
        for prompt in (False, True):
            theirs = minimind3.apply_chat_template(record.value, tools=tools, tokenize=False,
                                                   add_generation_prompt=prompt)
            ours = minimind3.apply_chat_template(record.value, tools=tools, tokenize=False,
                                                 add_generation_prompt=prompt, chat_template=CHAT_TEMPLATE)
            assert ours == theirs
    opened = [{"role": "user", "content": "hi"}]
    assert minimind3.apply_chat_template(opened, tokenize=False, add_generation_prompt=True, open_thinking=True) \
        == minimind3.apply_chat_template(opened, tokenize=False, add_generation_prompt=True, open_thinking=True,
                                         chat_template=CHAT_TEMPLATE) == "<|im_start|>user\nhi<|im_end|>\n" \
        "<|im_start|>assistant\n<think>\n"


def test_only_assistant_replies_with_their_end_are_trained(tiny_tokenizer):
    conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "the red cat?"},
            {"role": "assistant", "content": "a blue dog."}, {"role": "user", "content": "and?"},
            {"role": "assistant", "content": " the river runs", "reasoning_content": "it runs"}]
    [(ids, mask)] = Encoder(tiny_tokenizer, "sft").encode(records([conv]))
    assert tiny_tokenizer.decode(ids.tolist()) == tiny_tokenizer.apply_chat_template(conv, tokenize=False)
    trained = [i for i, m in zip(ids.tolist(), mask) if m]
    assert tiny_tokenizer.decode(trained) == (
        f"{EMPTY_THINK}a blue dog.<|im_end|>\n<think>\nit runs\n</think>\n\n the river runs<|im_end|>\n")
    assert trained.count(2) == 2 and 1 not in trained  # both <|im_end|>, no <|im_start|>


def test_upstream_message_fields_are_checked(tiny_tokenizer_dir, tmp_path):
    user = {"role": "user", "content": "hi"}
    good = [user, {"role": "assistant", "content": None, "tool_calls": '[{"name": "f", "arguments": {}}]'}]
    [record] = records([good])
    assert record.value[1] == {"role": "assistant", "content": "", "tool_calls": [{"name": "f", "arguments": {}}]}
    bad = {
        "malformed JSON": [user, {"role": "assistant", "content": "x", "tool_calls": "[{oops"}],
        "wrong type": [{"role": "system", "content": "s", "tools": '{"not": "a list"}'}, user,
                       {"role": "assistant", "content": "x"}],
        "unknown role": [{"role": "asistant", "content": "x"}, {"role": "assistant", "content": "y"}],
        "missing field": [user, {"role": "assistant"}],
    }
    for kind, conversation in bad.items():
        path = write_jsonl(tmp_path / f"{kind}.jsonl", [{"conversations": good}, {"conversations": conversation}])
        with pytest.raises(DataError, match=rf"{path}:2: {kind}: message \d"):
            datamodule(path, tiny_tokenizer_dir, tmp_path).setup("fit")
    path = write_jsonl(tmp_path / "tools.jsonl", [{"conversations": [{**user, "tools": TOOLS}, good[1]]}])
    with pytest.raises(DataError, match="belong on the system message"):
        datamodule(path, tiny_tokenizer_dir, tmp_path).setup("fit")


def test_upstream_augmentations_are_fixed_per_conversation(tiny_tokenizer):
    convs = make_conversations(200)
    recs = records(convs)
    options = ChatOptions(add_system_ratio=0.5, strip_empty_think=0.5, seed=3)
    first = Encoder(tiny_tokenizer, "sft", options).encode(recs)
    again = Encoder(tiny_tokenizer, "sft", options).encode(recs[::-1])[::-1]  # any order, any batch: same draws
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    other_seed = Encoder(tiny_tokenizer, "sft", ChatOptions(0.5, 0.5, seed=4)).encode(recs)
    assert sum(not np.array_equal(a[0], b[0]) for a, b in zip(first, other_seed)) > 50
    texts = [tiny_tokenizer.decode(ids.tolist()) for ids, _ in first]
    added = [t for t, c in zip(texts, convs) if c[0]["role"] != "system" and t.startswith("<|im_start|>system")]
    own_system = sum(c[0]["role"] == "system" for c in convs)
    assert 0.3 < len(added) / (len(convs) - own_system) < 0.7
    assert all(any(f"system\n{p}<|im_end|>" in t for p in SYSTEM_PROMPTS) for t in added)
    stripped = [t for t in texts if "<think>" not in t]
    assert 0.3 < len(stripped) / len(texts) < 0.7 and all(EMPTY_THINK in t for t in texts if t not in stripped)
    for (ids, mask), text in zip(first, texts):  # the replies, and only they, are still trained
        trained = tiny_tokenizer.decode(ids[mask].tolist())
        assert trained.endswith("<|im_end|>\n") and "<|im_start|>" not in trained and "Question" not in trained
    off = Encoder(tiny_tokenizer, "sft").encode(recs)
    assert all(EMPTY_THINK in tiny_tokenizer.decode(ids.tolist()) for ids, _ in off)


def test_augmentations_are_part_of_the_cache_key_and_checked(tiny_tokenizer_dir, tmp_path):
    path = write_jsonl(tmp_path / "sft.jsonl", [{"conversations": c} for c in make_conversations(20)])
    plain = datamodule(path, tiny_tokenizer_dir, tmp_path, seed=1)._open_cache().path
    assert datamodule(path, tiny_tokenizer_dir, tmp_path, seed=2)._open_cache().path == plain  # nothing random
    augmented = datamodule(path, tiny_tokenizer_dir, tmp_path, seed=1, add_system_ratio=0.2)._open_cache().path
    assert augmented != plain
    assert datamodule(path, tiny_tokenizer_dir, tmp_path, seed=2, add_system_ratio=0.2)._open_cache().path \
        not in (plain, augmented)
    with pytest.raises(DataError, match=r"data.strip_empty_think=1.5 must be a probability in \[0, 1\].*upstream "
                                        "uses 0.8"):
        datamodule(path, tiny_tokenizer_dir, tmp_path, strip_empty_think=1.5)


def test_sft_batches_are_masked_and_padded_per_conversation(tiny_tokenizer, tiny_tokenizer_dir, tmp_path):
    convs = make_conversations(12)
    path = write_jsonl(tmp_path / "sft.jsonl", [{"conversations": c} for c in convs])
    dm = datamodule(path, tiny_tokenizer_dir, tmp_path, seq_len=200, batch_size=1)
    dm.setup("fit")
    assert dm.format == "sft" and not dm.packing  # one conversation per row by default
    expected = {"".join(f"{EMPTY_THINK}{m['content']}<|im_end|>\n" for m in c if m["role"] == "assistant")
                for c in convs}
    seen = set()
    for batch in dm.train_dataloader():
        ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
        seen.add(tiny_tokenizer.decode([i for i, label in zip(ids, labels) if label != -100]))
        assert ids[0] == 1 and "document_ids" not in batch
    assert seen == expected
    short = datamodule(path, tiny_tokenizer_dir, tmp_path, seq_len=40, batch_size=1)
    short.setup("fit")
    assert next(iter(short.train_dataloader()))["input_ids"].shape == (1, 40)  # long conversations are truncated


def conversations_in(batches) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(ids, labels) of each conversation in packed batches, checking how rows are laid out."""
    pieces = []
    for batch in batches:
        for ids, labels, docs in zip(batch["input_ids"], batch["labels"], batch["document_ids"]):
            assert torch.equal(docs, docs.sort().values)  # one contiguous segment per conversation
            for d in docs.unique().tolist():
                seg_ids, seg_labels = ids[docs == d], labels[docs == d]
                if seg_ids[0] == 0:  # the padding after the conversations: nothing trained
                    assert (seg_ids == 0).all() and (seg_labels == -100).all()
                    continue
                assert seg_ids[0] == 1 and seg_labels[0] == -100  # starts with <|im_start|>, never a target
                pieces.append((tuple(seg_ids.tolist()), tuple(seg_labels.tolist())))
    return sorted(pieces)


def test_packed_sft_rows_hold_whole_conversations_apart(tiny_tokenizer, tiny_tokenizer_dir, tmp_path):
    convs = make_conversations(40)
    path = write_jsonl(tmp_path / "sft.jsonl", [{"conversations": c} for c in convs])
    alone = datamodule(path, tiny_tokenizer_dir, tmp_path, seq_len=256, batch_size=1)
    alone.setup("fit")
    singles = sorted((tuple(ids[ids != 0].tolist()), tuple(labels[ids != 0].tolist()))
                     for b in alone.train_dataloader() for ids, labels in zip(b["input_ids"], b["labels"]))
    assert len(singles) == len(convs)
    packed = datamodule(path, tiny_tokenizer_dir, tmp_path, seq_len=256, batch_size=1, packing=True)
    packed.setup("fit")
    batches = list(packed.train_dataloader())
    assert conversations_in(batches) == singles  # every conversation once, whole, with its own labels
    assert len(batches) < len(convs) / 2  # several per row
    streamed = StreamingDataset(packed.corpus, "sft", tiny_tokenizer, 256, 3, packing=True, train=False,
                                val_fraction=1.0)  # one pass over every conversation, as a stream
    assert conversations_in(streamed) == singles


def test_packing_fills_rows_largest_first():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=500)
    lengths[:3] = [300, 128, 128]  # longer than a row: cut to it
    order, bounds = pack_documents(lengths, 128)
    assert sorted(order.tolist()) == list(range(500))
    rows = [np.minimum(lengths[order[a:b]], 128).sum() for a, b in zip(bounds, bounds[1:])]
    assert max(rows) <= 128
    assert sum(rows) / (128 * len(rows)) > 0.93  # 0.95; next-fit in corpus order: 0.74
    again = pack_documents(lengths, 128)
    assert np.array_equal(order, again[0]) and np.array_equal(bounds, again[1])

"""SFT rows: the conversation rendered with the chat template, only assistant replies trained."""

from __future__ import annotations

import torch

from minimind.data.encode import Encoder

from .helpers import datamodule, make_conversations, write_jsonl


def trained_text(tokenizer, ids, labels) -> str:
    return tokenizer.decode([i for i, l in zip(ids, labels) if l != -100])


def test_only_assistant_replies_and_their_im_end_are_trained(tiny_tokenizer):
    conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "the red cat?"},
            {"role": "assistant", "content": "a blue dog."}, {"role": "user", "content": "and?"},
            {"role": "assistant", "content": " the river runs"}]
    [(ids, mask)] = Encoder(tiny_tokenizer, "sft").encode([conv])
    rendered = tiny_tokenizer.apply_chat_template(conv, tokenize=False)
    assert tiny_tokenizer.decode(ids.tolist()) == rendered
    trained = [i for i, m in zip(ids.tolist(), mask) if m]
    assert tiny_tokenizer.decode(trained) == "a blue dog.<|im_end|> the river runs<|im_end|>"
    assert trained.count(2) == 2 and 1 not in trained  # both <|im_end|>, no <|im_start|>


def test_sft_batches_are_masked_and_padded_per_conversation(tiny_tokenizer, tiny_tokenizer_dir, tmp_path):
    convs = make_conversations(12)
    path = write_jsonl(tmp_path / "sft.jsonl", [{"conversations": c} for c in convs])
    dm = datamodule(path, tiny_tokenizer_dir, tmp_path, seq_len=160, batch_size=1)
    dm.setup("fit")
    assert dm.format == "sft" and not dm.packing  # one conversation per row by default
    expected = {"".join(m["content"] + "<|im_end|>" for m in c if m["role"] == "assistant") for c in convs}
    seen = set()
    for batch in dm.train_dataloader():
        ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
        seen.add(trained_text(tiny_tokenizer, ids, labels))
        assert ids[0] == 1  # starts with <|im_start|>
    assert seen == expected
    short = datamodule(path, tiny_tokenizer_dir, tmp_path, seq_len=40, batch_size=1)
    short.setup("fit")
    batch = next(iter(short.train_dataloader()))
    assert batch["input_ids"].shape == (1, 40)  # long conversations are truncated


def test_packed_sft_rows_keep_the_mask(tiny_tokenizer_dir, tmp_path):
    path = write_jsonl(tmp_path / "sft.jsonl", [{"conversations": c} for c in make_conversations(30)])
    dm = datamodule(path, tiny_tokenizer_dir, tmp_path, seq_len=64, batch_size=2, packing=True)
    dm.setup("fit")
    for batch in dm.train_dataloader():
        trained = batch["labels"] != -100
        assert trained.any() and not trained.all()  # replies trained, prompts not
        assert torch.equal(batch["labels"][trained], batch["input_ids"][trained])

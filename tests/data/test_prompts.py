"""Prompt data for reinforcement learning: upstream's RLAIF records, left-padded prompt batches, bad records."""

from __future__ import annotations

import pytest

from minimind.data.errors import DataError
from minimind.data.encode import ChatOptions
from minimind.data.prompts import opens_thinking

from .helpers import datamodule, make_conversations, write_jsonl


def rlaif(conversation: list[dict], gt=None) -> dict:
    """An upstream RLAIF record: the conversation up to the reply, then an empty assistant turn."""
    record = {"conversations": [*conversation, {"role": "assistant", "content": ""}]}
    return record if gt is None else {**record, "gt": gt}


def prompt_records(n: int) -> list[dict]:
    return [rlaif([m for m in c if m["role"] != "assistant"][:2], gt=f"answer {i}")
            for i, c in enumerate(make_conversations(n))]


def test_prompt_batches_are_left_padded_chat_prompts_with_their_answers(tiny_tokenizer, tiny_tokenizer_dir, tmp_path):
    records = prompt_records(24)
    path = write_jsonl(tmp_path / "rlaif.jsonl", records)
    dm = datamodule(path, tiny_tokenizer_dir, tmp_path, seq_len=128, batch_size=4)  # format=auto
    dm.setup("fit")
    assert dm.format == "prompt" and dm.num_train_tokens() is None
    expected = {tiny_tokenizer.apply_chat_template(r["conversations"][:-1], tokenize=False, add_generation_prompt=True):
                [r["gt"]] for r in records}
    seen = {}
    for batch in dm.train_dataloader():
        ids, mask = batch["input_ids"], batch["attention_mask"]
        assert ids.shape == mask.shape and ids.shape[0] == 4
        assert bool(mask[:, -1].all())  # every prompt ends in the last column, where generation continues it
        assert bool((ids[mask == 0] == tiny_tokenizer.pad_token_id).all())
        for row, m, messages, answers in zip(ids, mask, batch["messages"], batch["answers"]):
            text = tiny_tokenizer.decode(row[m.bool()].tolist())
            assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # the reply is opened (no thinking)
            assert messages[-1]["role"] == "user"
            seen[text] = answers
    assert seen == expected


def test_the_embedded_prompt_set_asks_the_sft_sets_questions_with_answers_that_name_what_is_asked(
        tiny_tokenizer_dir, tmp_path):
    from minimind.data.default_prompts import DefaultPromptSource

    records = list(DefaultPromptSource().raw(None))
    assert len(records) > 1000 and len({doc_id for doc_id, *_ in records}) == len(records)
    for doc_id, _, record, _ in records:
        question = record["conversations"][0]["content"]
        name = ".".join(record["gt"])  # the name asked about, as its dotted parts
        assert doc_id == f"default-sft/{name}"  # the SFT set's id, so the same train/validation split
        assert name in question and record["conversations"][-1] == {"role": "assistant", "content": ""}
    dm = datamodule("default", tiny_tokenizer_dir, tmp_path, format="prompt", seq_len=96, val_fraction=0.05,
                    on_bad_record="skip")
    dm.setup("fit")
    assert dm.format == "prompt"
    assert len(dm._read_prompts()["val"]) > 50  # held-out questions for validation


@pytest.mark.parametrize("record, fragment", [
    ({"conversations": [{"role": "system", "content": "Be brief."}, {"role": "assistant", "content": ""}]},
     "no user turn"),
    ({"conversations": "hello"}, "'conversations' must be a list"),
    ({"conversations": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}], "gt": {"a": 1}}, "'gt' must be"),
    (rlaif([{"role": "user", "content": "the red cat " * 60}]), "more than data.seq_len=128"),
])
def test_bad_prompt_records_are_refused_with_where_and_what_to_change(record, fragment, tiny_tokenizer_dir, tmp_path):
    path = write_jsonl(tmp_path / "rlaif.jsonl", prompt_records(6) + [record])
    dm = datamodule(path, tiny_tokenizer_dir, tmp_path, format="prompt", seq_len=128)
    with pytest.raises(DataError, match=f"rlaif.jsonl:7: .*{fragment}"):
        dm.setup("fit")
    skipping = datamodule(path, tiny_tokenizer_dir, tmp_path, format="prompt", seq_len=128, on_bad_record="skip")
    skipping.setup("fit")
    assert skipping.bad_record_report()["skipped"] == 1
    assert sum(len(b["messages"]) for b in skipping.train_dataloader()) == 4  # 6 good prompts, in batches of 4


def test_thinking_ratio_is_a_fixed_draw_per_prompt():
    ids = [f"rlaif.jsonl:{i}" for i in range(2000)]
    draws = [opens_thinking(i, 0.9, ChatOptions(seed=0)) for i in ids]
    assert draws == [opens_thinking(i, 0.9, ChatOptions(seed=0)) for i in ids]  # resumable: the same prompts every time
    assert 0.87 < sum(draws) / len(draws) < 0.93
    assert draws != [opens_thinking(i, 0.9, ChatOptions(seed=1)) for i in ids]
    assert not any(opens_thinking(i, 0.0, ChatOptions(seed=0)) for i in ids)

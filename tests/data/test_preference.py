"""Preference pairs (DPO): upstream's records read unchanged, each side rendered and masked as an SFT
conversation, bad pairs refused with file and line or skipped and counted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minimind.data import DataError, default_sft, load_tokenizer
from minimind.data.corpus import Corpus
from minimind.data.default_preference import EVASIVE, REJECTED_KINDS, degenerate, rejected_kind
from minimind.data.default_preference import pairs as embedded_pairs
from minimind.data.encode import Encoder
from minimind.data.records import Record, is_val

from .helpers import datamodule, make_pairs

IGNORE = -100


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def line(chosen, rejected, **extra):
    return json.dumps({"chosen": chosen, "rejected": rejected, **extra}) + "\n"


def write(tmp_path, *lines, name="dpo.jsonl"):
    path = tmp_path / name
    path.write_text("".join(lines), encoding="utf-8")
    return path


GOOD = [line(p["chosen"], p["rejected"]) for p in make_pairs(30)]
PROMPT = [user("the red cat")]
BAD_PAIRS = {  # kind -> (a bad second line, what the message says)
    "identical pair": (line([*PROMPT, assistant("a")], [*PROMPT, assistant("a")]), "nothing to prefer"),
    "empty document": (line([*PROMPT, assistant("a")], PROMPT), "in 'rejected': no non-empty assistant message"),
    "mismatched prompts": (line([user("x"), assistant("a")], [user("y"), assistant("b")]),
                           "differ before their last assistant reply"),
    "missing field": ('{"chosen": [{"role": "user", "content": "x"}]}\n', "no 'rejected' field"),
    "wrong type": (line("a string", [*PROMPT, assistant("b")]), "'chosen' must be a list of messages"),
}


def test_pairs_are_detected_and_each_side_is_the_sft_rendering(tiny_dpo_corpus, tiny_tokenizer_dir, tmp_path):
    dm = datamodule(tiny_dpo_corpus, tiny_tokenizer_dir, tmp_path, seq_len=128, val_fraction=0.1)  # format=auto
    dm.setup("fit")
    assert dm.format == "dpo"
    records = [json.loads(text) for text in tiny_dpo_corpus.read_text().splitlines()]
    train = [r for n, r in enumerate(records, 1) if not is_val(f"{tiny_dpo_corpus.name}:{n}", 0.1)]
    rows = dm.pairs("train")
    assert rows.count == len(train) and 0 < dm.pairs("val").count < len(records) - len(train) + 1
    batch = rows.batch(np.array([0, 1, 2]))
    assert batch["input_ids"].shape[0] == 6 and batch["pair_index"].tolist() == [0, 1, 2]
    tokenizer = load_tokenizer(tiny_tokenizer_dir)
    for pair, record in enumerate(train[:3]):
        for side, row in (("chosen", pair), ("rejected", 3 + pair)):  # the chosen rows, then the rejected ones
            (ids, mask), = Encoder(tokenizer, "sft").encode([Record(0, "pair", "pair", record[side])])
            n = len(ids)
            assert n <= 128 and batch["input_ids"][row, :n].tolist() == ids.tolist()
            assert batch["labels"][row, :n].tolist() == np.where(mask, ids, IGNORE).tolist()  # the SFT mask
            assert (batch["input_ids"][row, n:] == tokenizer.pad_token_id).all()
            assert (batch["labels"][row, n:] == IGNORE).all()
            trained = tokenizer.decode(batch["input_ids"][row][batch["labels"][row] != IGNORE])
            assert trained.endswith(record[side][-1]["content"] + "<|im_end|>\n") and "user" not in trained
    chosen, rejected = (batch["input_ids"][i][batch["labels"][i] == IGNORE] for i in (0, 3))
    assert tokenizer.decode(chosen).split("<|im_start|>assistant")[0] == \
        tokenizer.decode(rejected).split("<|im_start|>assistant")[0]  # one prompt


@pytest.mark.parametrize("kind", BAD_PAIRS)
def test_a_bad_pair_is_refused_with_file_line_and_fix_or_skipped_and_counted(tiny_tokenizer_dir, tmp_path, kind):
    bad, says = BAD_PAIRS[kind]
    path = write(tmp_path, GOOD[0], bad, *GOOD[1:])
    with pytest.raises(DataError, match=rf"{path}:2: {kind}: .*{says}.*data.on_bad_record=skip"):
        datamodule(path, tiny_tokenizer_dir, tmp_path, format="dpo", seq_len=64).setup("fit")
    dm = datamodule(path, tiny_tokenizer_dir, tmp_path / "skip", format="dpo", seq_len=64, on_bad_record="skip")
    dm.setup("fit")
    assert dm.bad_record_report()["by_kind"] == {kind: 1}
    assert dm.pairs("train").count == len(GOOD)


LONG = " ".join(["the red cat sees the river"] * 30)


@pytest.mark.parametrize("chosen, rejected, says", [
    ([user(LONG), assistant("yes")], [user(LONG), assistant("no")],
     r"the pair's prompt is \d\d\d tokens long, so within data.seq_len=64 nothing of the chosen and rejected reply is "
     r"left"),
    ([user("hi"), assistant(LONG + " yes")], [user("hi"), assistant(LONG + " no")],
     r"'chosen' and 'rejected' are the same in their first 64 tokens, all that data.seq_len keeps of them"),
])
def test_a_pair_with_nothing_to_compare_within_seq_len_is_refused_or_skipped(tiny_tokenizer_dir, tmp_path, chosen,
                                                                             rejected, says):
    path = write(tmp_path, GOOD[0], line(chosen, rejected), *GOOD[1:])
    with pytest.raises(DataError, match=rf"pair 1 of the train split: nothing to compare: {says}. raise data.seq_len"):
        datamodule(path, tiny_tokenizer_dir, tmp_path, format="dpo", seq_len=64).setup("fit")
    dm = datamodule(path, tiny_tokenizer_dir, tmp_path, format="dpo", seq_len=64, on_bad_record="skip")
    dm.setup("fit")
    assert dm.pairs("train").count == len(GOOD) and dm.bad_record_report()["by_kind"] == {"nothing to compare": 1}
    dm = datamodule(path, tiny_tokenizer_dir, tmp_path, format="dpo", seq_len=512)  # the same cache, longer rows
    dm.setup("fit")
    assert dm.pairs("train").count == len(GOOD) + 1


@pytest.mark.parametrize("setting, says", [({"packing": True}, "cannot pack preference pairs"),
                                           ({"cache": False}, "are read from the token cache")])
def test_settings_pairs_cannot_be_read_with_are_refused(tiny_dpo_corpus, tiny_tokenizer_dir, tmp_path, setting, says):
    with pytest.raises(DataError, match=says):
        datamodule(tiny_dpo_corpus, tiny_tokenizer_dir, tmp_path, format="dpo", **setting)
    dm = datamodule(tiny_dpo_corpus, tiny_tokenizer_dir, tmp_path, **setting)  # format=auto: found when read
    with pytest.raises(DataError, match=says):
        dm.setup("fit")


def test_sft_data_read_as_pairs_says_what_it_looks_like(tiny_sft_corpus, tiny_tokenizer_dir, tmp_path):
    with pytest.raises(DataError, match="no 'chosen' or 'rejected' field .*looks like sft data: set data.format=sft"):
        datamodule(tiny_sft_corpus, tiny_tokenizer_dir, tmp_path, format="dpo").setup("fit")


def form(reply):
    """How to call something (and which wording), or None: what the reply is about."""
    return next((w for w in default_sft.CALL.values() if reply.startswith(w.split("{")[0])), None)


def test_the_embedded_pairs_are_the_sft_conversations_with_a_worse_last_reply():
    sft = dict(default_sft.conversations())
    found = list(embedded_pairs(sft.items()))
    assert [doc_id for doc_id, _ in found] == list(sft)  # the SFT set's ids: its train/validation split
    kinds = dict.fromkeys(REJECTED_KINDS, 0)
    answers = {pair["chosen"][-1]["content"] for _, pair in found}
    for doc_id, pair in found:
        (*prompt, chosen), (*same, rejected) = pair["chosen"], pair["rejected"]
        assert pair["chosen"] == sft[doc_id] and prompt == same and chosen["content"] != rejected["content"]
        kind = rejected_kind(doc_id)
        kinds[kind] += 1
        if kind == "evasive":
            assert rejected["content"] in EVASIVE
        elif kind == "degenerate":
            assert rejected["content"] == degenerate(chosen["content"])
        else:  # another definition's reply of the same form
            assert rejected["content"] in answers and form(rejected["content"]) == form(chosen["content"])
    assert all(count > len(found) / 4 for count in kinds.values()), kinds
    assert Corpus("default", "dpo").resolve_format("dpo") == "dpo"  # data.path=default with stage=dpo reads them

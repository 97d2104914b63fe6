"""Bad input: a clear error naming file and line (before training), or skip-and-count on request."""

from __future__ import annotations

import pytest

from minimind.data import DataError
from minimind.data.loader import ResumableLoader
from minimind.data.streaming_dataset import StreamingDataset

from .helpers import datamodule, make_texts

GOOD = '{"text": "the red cat sees the river"}\n'
BAD_LINES = {  # kind -> a bad second line
    "malformed JSON": '{"text": "unterminated\n',
    "missing field": '{"txt": "wrong key"}\n',
    "empty document": '{"text": "   "}\n',
    "wrong type": '{"text": 42}\n',
}


def corpus(tmp_path, *lines: str | bytes, name="c.jsonl"):
    path = tmp_path / name
    path.write_bytes(b"".join(line.encode() if isinstance(line, str) else line for line in lines))
    return path


@pytest.mark.parametrize("kind", BAD_LINES)
def test_bad_json_line_names_file_line_and_fix(tiny_tokenizer_dir, tmp_path, kind):
    path = corpus(tmp_path, GOOD, BAD_LINES[kind], GOOD)
    dm = datamodule(path, tiny_tokenizer_dir, tmp_path, format="pretrain")
    with pytest.raises(DataError, match=rf"{path}:2: {kind}: .*data.on_bad_record=skip"):
        dm.setup("fit")  # before any training step


def test_invalid_utf8_and_binary_files(tiny_tokenizer_dir, tmp_path):
    path = corpus(tmp_path, GOOD, GOOD, b'{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=rf"{path}:3: invalid UTF-8: .*convert it"):
        datamodule(path, tiny_tokenizer_dir, tmp_path).setup("fit")
    text = corpus(tmp_path, "para one\n\nline two\nline \xff three\n".encode("latin-1"), name="t.txt")
    with pytest.raises(DataError, match=rf"{text}:4: invalid UTF-8"):  # the bad line, not its paragraph's first
        datamodule(text, tiny_tokenizer_dir, tmp_path).setup("fit")
    blob = corpus(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", name="image.jsonl")
    with pytest.raises(DataError, match=rf"{blob}: not a text file"):
        datamodule(blob, tiny_tokenizer_dir, tmp_path).setup("fit")


def test_empty_file_and_empty_corpus(tiny_tokenizer_dir, tmp_path):
    path = corpus(tmp_path, "\n", "  \n")
    with pytest.raises(DataError, match=rf"{path}: empty file"):
        datamodule(path, tiny_tokenizer_dir, tmp_path, format="pretrain").setup("fit")
    with pytest.raises(DataError, match="has no usable documents"):  # skipping everything is still an error
        datamodule(path, tiny_tokenizer_dir, tmp_path, format="pretrain", on_bad_record="skip").setup("fit")
    with pytest.raises(DataError, match="cannot tell pretraining from SFT"):
        datamodule(path, tiny_tokenizer_dir, tmp_path, on_bad_record="skip").setup("fit")


def test_sft_records_are_checked(tiny_tokenizer_dir, tmp_path):
    no_reply = '{"conversations": [{"role": "user", "content": "hi"}]}\n'
    path = corpus(tmp_path, '{"conversations": [{"role": "user", "content": "hi"}, '
                  '{"role": "assistant", "content": "hello"}]}\n', no_reply)
    with pytest.raises(DataError, match=rf"{path}:2: empty document: no non-empty assistant message"):
        datamodule(path, tiny_tokenizer_dir, tmp_path).setup("fit")
    pretrain = corpus(tmp_path, GOOD, name="p.jsonl")
    with pytest.raises(DataError, match="looks like pretrain data: set data.format=pretrain"):
        datamodule(pretrain, tiny_tokenizer_dir, tmp_path, format="sft").setup("fit")


@pytest.mark.parametrize("cache", [True, False])
def test_skip_counts_and_reports_every_bad_record(tiny_tokenizer_dir, tmp_path, cache, caplog):
    good = [f'{{"text": "{t}"}}\n' for t in make_texts(40)]
    path = corpus(tmp_path, *good[:20], *BAD_LINES.values(), b'{"text": "\xff"}\n', *good[20:])
    dm = datamodule(path, tiny_tokenizer_dir, tmp_path, on_bad_record="skip", cache=cache, format="pretrain")
    dm.setup("fit")
    report = dm.bad_record_report()
    assert report["skipped"] == 5
    assert report["by_kind"] == {"empty document": 1, "invalid UTF-8": 1, "malformed JSON": 1, "missing field": 1,
                                 "wrong type": 1}
    assert report["examples"][0].startswith(f"{path}:21: malformed JSON")
    assert "skipped 5 bad records" in caplog.text
    assert next(iter(dm.train_dataloader()))["input_ids"].shape == (4, 16)
    if cache:  # a cache built by skipping does not silently serve a run that asks for errors
        with pytest.raises(DataError, match="skipped 5 bad records, first: .*:21: malformed JSON"):
            datamodule(path, tiny_tokenizer_dir, tmp_path, format="pretrain").setup("fit")


def test_worker_errors_reach_the_main_process_intact(tiny_tokenizer, tiny_tokenizer_dir, tmp_path):
    path = corpus(tmp_path, GOOD * 3, BAD_LINES["malformed JSON"])
    dm = datamodule(path, tiny_tokenizer_dir, tmp_path, cache=False)
    ds = StreamingDataset(dm.corpus, "pretrain", tiny_tokenizer, 16, 4, True, val_fraction=0.0)
    with pytest.raises(DataError, match=rf"{path}:4: malformed JSON: Unterminated string"):
        next(iter(ResumableLoader(ds, num_workers=1)))


def test_a_reader_with_no_documents_raises_instead_of_hanging(tiny_tokenizer, tiny_tokenizer_dir, tmp_path):
    dm = datamodule(corpus(tmp_path, GOOD), tiny_tokenizer_dir, tmp_path, cache=False)
    ds = StreamingDataset(dm.corpus, "pretrain", tiny_tokenizer, 16, 4, True, val_fraction=0.0, world_size=2, rank=1)
    with pytest.raises(DataError, match="a whole pass gave reader 1 of 2 .* no training document"):
        next(iter(ds))

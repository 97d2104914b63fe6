"""`data.path` -> documents: every local format, directories, globs, hf: specs, the default corpus."""

from __future__ import annotations

import codecs
from itertools import islice

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from minimind.data import DataError
from minimind.data import default_corpus
from minimind.data.corpus import Corpus
from minimind.data.errors import BadRecords
from minimind.data.hf_source import parse_spec

from .helpers import make_conversations, make_texts, write_jsonl, write_pretrain


def read(path, fmt="auto"):
    corpus = Corpus(str(path))
    fmt = corpus.resolve_format(fmt)
    return fmt, list(corpus.records(fmt, BadRecords()))


def test_jsonl_pretrain_and_sft(tmp_path):
    texts, convs = make_texts(5), make_conversations(3)
    fmt, records = read(write_pretrain(tmp_path / "p.jsonl", texts))
    assert fmt == "pretrain" and [r.value for r in records] == texts
    assert [r.doc_id for r in records] == [f"p.jsonl:{i}" for i in range(1, 6)]
    fmt, records = read(write_jsonl(tmp_path / "s.jsonl", [{"conversations": c} for c in convs]))
    assert fmt == "sft" and [r.value for r in records] == convs


def test_windows_files_with_a_byte_order_mark_and_crlf_endings_read_the_same(tmp_path):
    texts, convs = make_texts(4), make_conversations(2)
    unix = write_pretrain(tmp_path / "unix.jsonl", texts)
    windows = tmp_path / "windows.jsonl"
    windows.write_bytes(codecs.BOM_UTF8 + unix.read_bytes().replace(b"\n", b"\r\n"))
    assert [r.value for r in read(windows)[1]] == texts
    sft = write_jsonl(tmp_path / "s.jsonl", [{"conversations": c} for c in convs])
    (tmp_path / "s-win.jsonl").write_bytes(codecs.BOM_UTF8 + sft.read_bytes().replace(b"\n", b"\r\n"))
    fmt, records = read(tmp_path / "s-win.jsonl")
    assert fmt == "sft" and [r.value for r in records] == convs
    book = tmp_path / "book.txt"
    book.write_bytes(codecs.BOM_UTF8 + b"First para\r\nstill first.\r\n\r\nSecond.\r\n")
    assert [r.value for r in read(book)[1]] == ["First para\nstill first.", "Second."]


def test_txt_blank_line_separated_paragraphs(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("First para\nstill first.\n\n\nSecond para.\r\n\nThird\n", encoding="utf-8")
    fmt, records = read(path)
    assert fmt == "pretrain"
    assert [r.value for r in records] == ["First para\nstill first.", "Second para.", "Third"]
    assert [r.where.rsplit(":", 1)[1] for r in records] == ["1", "5", "7"]  # the paragraphs' first lines
    with pytest.raises(DataError, match="plain text"):
        read(path, "sft")


def test_parquet_text_and_conversation_columns(tmp_path):
    texts, convs = make_texts(4), make_conversations(2)
    pq.write_table(pa.table({"text": texts, "other": list(range(4))}), tmp_path / "t.parquet")
    pq.write_table(pa.table({"conversations": convs}), tmp_path / "c.parquet")
    fmt, records = read(tmp_path / "t.parquet")
    assert fmt == "pretrain" and [r.value for r in records] == texts and records[0].where.endswith(":row 1")
    fmt, records = read(tmp_path / "c.parquet")
    assert fmt == "sft" and [r.value for r in records] == convs


def test_directory_and_glob_read_sorted_files(tmp_path, caplog):
    write_pretrain(tmp_path / "b" / "2.jsonl", ["two"])
    write_pretrain(tmp_path / "a.jsonl", ["one"])
    (tmp_path / "b" / "3.txt").write_text("three\n")
    (tmp_path / "README.md").write_text("not data")
    _, records = read(tmp_path)
    assert [r.value for r in records] == ["one", "two", "three"]
    assert [r.doc_id for r in records] == ["a.jsonl:1", "b/2.jsonl:1", "b/3.txt:1"]
    assert "ignoring 1 files" in caplog.text
    _, records = read(f"{tmp_path}/**/*.jsonl")
    assert [r.value for r in records] == ["one", "two"]


def test_paths_that_match_nothing_are_errors(tmp_path):
    with pytest.raises(DataError, match="matches no files"):
        Corpus(f"{tmp_path}/*.jsonl")
    with pytest.raises(DataError, match="no such file"):
        Corpus(str(tmp_path / "missing.jsonl"))
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(DataError, match=r"none of its 1 files ends in \.jsonl"):
        Corpus(str(tmp_path))


def test_hf_spec_parsing():
    assert parse_spec("hf:roneneldan/TinyStories") == ("roneneldan/TinyStories", None, "train")
    assert parse_spec("hf:roneneldan/TinyStories:validation") == ("roneneldan/TinyStories", None, "validation")
    assert parse_spec("hf:wikitext:wikitext-2-raw-v1:test") == ("wikitext", "wikitext-2-raw-v1", "test")
    with pytest.raises(DataError, match="expected hf:NAME"):
        parse_spec("hf:a:b:c:d")
    corpus = Corpus("hf:some/dataset")  # nothing is fetched until read
    assert corpus.streaming and corpus.fingerprint() == "hf:some/dataset:None:train"


def test_default_corpus_is_english_deterministic_and_offline():
    docs = list(default_corpus.documents())
    assert list(islice(default_corpus.documents(), 100)) == docs[:100]  # same documents, same order
    assert len({d for d, _ in docs}) == len(docs)
    size = sum(len(text.encode()) for _, text in docs)
    assert len(docs) > 300 and size > 1_500_000
    assert any(d.startswith("pydoc_topics/") for d, _ in docs) and any(d == "stdlib/json" for d, _ in docs)
    assert default_corpus.fingerprint() == default_corpus.fingerprint()
    corpus = Corpus("default")
    assert not corpus.streaming and corpus.resolve_format("auto") == "pretrain"

"""Readers for local files, one per format, chosen by extension.

Each reader yields raw items `(line or row number, payload)` cheaply and parses a payload
only when asked, so a DataLoader worker skips the records it does not own without decoding
them. Every problem is reported to a `BadRecords` with the file and line.

* `.jsonl`: one JSON object per line (MiniMind's `{"text": ...}` or `{"conversations": [...]}`);
  blank lines are ignored.
* `.txt`: UTF-8 text; each block of lines separated by a blank line is one document (so one
  big file still gives many documents for the train/validation split, and a file of
  one-line documents works too).
* `.parquet`: a `text` (or `conversations`) column, one document per row.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from minimind.data.errors import BadRecords

SNIFF_BYTES = 8192
TEXT_FIX = "the file must be UTF-8 text; convert it or remove it from data.path"


def _lines(path: Path, bad: BadRecords) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of a text file; a binary or blank file is reported instead.

    A UTF-8 byte-order mark (as Windows tools write it) is dropped; lines keep their ending
    (`\n` or `\r\n`), which the parsers strip."""
    with open(path, "rb") as f:
        if b"\0" in f.read(SNIFF_BYTES):
            bad(str(path), "not a text file", "it contains NUL bytes (binary data?)", TEXT_FIX)
            return
        f.seek(0)
        if f.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
            f.seek(0)
        empty = True
        for number, line in enumerate(f, 1):
            empty = empty and not line.strip()
            yield number, line
    if empty:
        bad(str(path), "empty file", "it has no records", "remove it from data.path or give it content")


def _decode(data: bytes, where: str, bad: BadRecords) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        error = e  # reported outside the except block: the message alone, no chained traceback
    bad(where, "invalid UTF-8", f"byte {data[error.start:error.start + 1]!r} at offset {error.start}", TEXT_FIX)
    return None


class JsonlReader:
    def items(self, path: Path, bad: BadRecords) -> Iterator[tuple[int, bytes]]:
        return ((number, line) for number, line in _lines(path, bad) if line.strip())

    def parse(self, payload: bytes, where: str, bad: BadRecords) -> Any:
        text = _decode(payload, where, bad)
        if text is None:
            return None
        try:
            return json.loads(text.rstrip("\r\n"))
        except json.JSONDecodeError as e:
            error = e
        bad(where, "malformed JSON", f"{error.msg} (column {error.colno})", "each line must be one complete JSON object")
        return None


class TextReader:
    def items(self, path: Path, bad: BadRecords) -> Iterator[tuple[int, bytes]]:
        start, lines = 0, []
        for number, line in _lines(path, bad):
            if line.strip():
                start = start or number
                lines.append(line)
            elif lines:
                yield start, b"".join(lines)
                start, lines = 0, []
        if lines:
            yield start, b"".join(lines)

    def parse(self, payload: bytes, where: str, bad: BadRecords) -> Any:
        try:
            return payload.decode("utf-8").replace("\r\n", "\n").rstrip("\n")
        except UnicodeDecodeError as e:
            path, _, first = where.rpartition(":")
            line = int(first) + payload[: e.start].count(b"\n")  # the bad line, not the paragraph's first
        return _decode(payload, f"{path}:{line}", bad)


class ParquetReader:
    COLUMNS = ("text", "conversations")

    def items(self, path: Path, bad: BadRecords) -> Iterator[tuple[str, dict]]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as e:
            bad(str(path), "not a parquet file", str(e), "check the file or remove it from data.path")
            return
        names = pf.schema_arrow.names
        column = next((c for c in self.COLUMNS if c in names), None)
        if column is None:
            bad(str(path), "missing field", f"no 'text' or 'conversations' column (columns: {names})", "rename the column")
            return
        row = 0
        for batch in pf.iter_batches(batch_size=1024, columns=[column]):
            for value in batch.column(0).to_pylist():
                row += 1
                yield f"row {row}", {column: value}
        if not row:
            bad(str(path), "empty file", "it has no rows", "remove it from data.path or give it rows")

    def parse(self, payload: dict, where: str, bad: BadRecords) -> Any:
        return payload


READERS = {".jsonl": JsonlReader(), ".txt": TextReader(), ".parquet": ParquetReader()}

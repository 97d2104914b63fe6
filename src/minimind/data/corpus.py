"""`data.path` -> a corpus: the documents of a source, checked and numbered.

The one string selects the source:

* `default`: the embedded corpus (`default_corpus.py`), no network needed; with `data.format=sft`,
  the embedded conversations made from it (`default_sft.py`); with `data.format=prompt`, their
  questions as prompts (`default_prompts.py`); with `data.format=dpo`, preference pairs made from
  those conversations (`default_preference.py`);
* `hf:NAME[:SPLIT]` / `hf:NAME:CONFIG:SPLIT`: a Hugging Face dataset, streamed;
* anything else: a local file, directory or glob of `.jsonl`, `.txt` and `.parquet` files.

Documents are read one at a time, never all held in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from minimind.data.default_corpus import DefaultSource
from minimind.data.default_preference import DefaultPreferenceSource
from minimind.data.default_prompts import DefaultPromptSource
from minimind.data.default_sft import DefaultSFTSource
from minimind.data.errors import BadRecords, DataError
from minimind.data.hf_source import PREFIX, HFSource
from minimind.data.local_files import LocalFiles
from minimind.data.records import FORMATS, Record, detect_format, extract


PATH_NOT_SET = ("data.path is not set: give a file, directory or glob of .jsonl/.txt/.parquet, hf:NAME, or "
                "data.path=default (the embedded corpus)")


def path_is_set(path: Any) -> bool:
    """Whether `data.path` names something (an empty or null one would read the working directory)."""
    return path is not None and bool(str(path).strip())


class Corpus:
    def __init__(self, path: str, fmt: str = "auto") -> None:
        """fmt: the data format asked for (`default` is a pretraining corpus, with `sft` a conversation set, with
        `prompt` a prompt set, with `dpo` a set of preference pairs)."""
        if not path_is_set(path):
            raise DataError(PATH_NOT_SET)
        path = str(path)
        if path == "default":
            sources = {"sft": DefaultSFTSource, "prompt": DefaultPromptSource, "dpo": DefaultPreferenceSource}
            self.source = sources.get(fmt, DefaultSource)()
        elif path.startswith(PREFIX):
            self.source = HFSource(path)
        else:
            self.source = LocalFiles(path)
        self.name = path

    @property
    def streaming(self) -> bool:
        """Whether the source is remote and streamed (then no token cache by default)."""
        return self.source.streaming

    def fingerprint(self) -> str:
        return self.source.fingerprint()

    def resolve_format(self, fmt: str, on_bad_record: str = "error") -> str:
        """`auto` -> `pretrain`, `sft` or `dpo`, from the first record that tells (bad ones are reported)."""
        if fmt not in FORMATS:
            raise DataError(f"data.format={fmt!r} is not one of {FORMATS}")
        if self.source.text_only:
            if fmt in ("sft", "prompt", "dpo"):
                raise DataError(f"data.path={self.name!r} is plain text, which cannot be {fmt} data; use JSONL")
            return "pretrain"
        if fmt != "auto":
            return fmt
        bad = BadRecords(on_bad_record)  # a throwaway: records are counted when read for real
        for _, where, payload, parse in self.source.raw(bad):
            detected = detect_format(parse(payload, where, bad) if parse else payload)
            if detected:
                return detected
        raise DataError(
            f"data.path={self.name!r}: no record has a 'text', 'conversations' or 'chosen' field, so data.format=auto "
            "cannot tell pretraining from SFT or DPO data (is the corpus empty?)"
        )

    def records(self, fmt: str, bad: BadRecords, select: Callable[[int, str], bool] | None = None) -> Iterator[Record]:
        """The corpus's good records in order; `select(index, doc_id)` skips others unparsed."""
        for index, (doc_id, where, payload, parse) in enumerate(self.source.raw(bad)):
            if select is not None and not select(index, doc_id):
                continue
            value = extract(parse(payload, where, bad) if parse else payload, fmt, where, bad)
            if value is not None:
                yield Record(index, doc_id, where, value)

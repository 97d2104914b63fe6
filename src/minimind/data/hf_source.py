"""`data.path=hf:NAME[:SPLIT]` or `hf:NAME:CONFIG:SPLIT`: a Hugging Face dataset, streamed.

For users with network access: rows are streamed with `datasets.load_dataset(...,
streaming=True)`, never downloaded whole. Rows need a `text` or `conversations` column.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from minimind.data.errors import BadRecords, DataError

PREFIX = "hf:"


def parse_spec(path: str) -> tuple[str, str | None, str]:
    """`hf:NAME` -> (NAME, None, "train"); `hf:NAME:SPLIT`; `hf:NAME:CONFIG:SPLIT`."""
    parts = path[len(PREFIX):].split(":")
    if not parts[0] or len(parts) > 3 or not all(parts):
        raise DataError(f"data.path={path!r}: expected hf:NAME, hf:NAME:SPLIT or hf:NAME:CONFIG:SPLIT")
    if len(parts) == 1:
        return parts[0], None, "train"
    if len(parts) == 2:
        return parts[0], None, parts[1]
    return parts[0], parts[1], parts[2]


class HFSource:
    streaming = True
    text_only = False

    def __init__(self, path: str) -> None:
        self.name = path
        self.dataset, self.config, self.split = parse_spec(path)

    def fingerprint(self) -> str:
        """Only the name: a cache of a hub dataset does not notice later changes on the hub."""
        return f"hf:{self.dataset}:{self.config}:{self.split}"

    def raw(self, bad: BadRecords) -> Iterator[tuple[str, str, Any, Any]]:
        from datasets import load_dataset

        try:  # a name that is not on the hub, a split it lacks, no network: the hub's own words, and what to do
            rows = load_dataset(self.dataset, self.config, split=self.split, streaming=True)
            for number, row in enumerate(rows, 1):
                yield f"{self.split}:{number}", f"{self.name} row {number}", row, None
        except (OSError, ValueError) as error:  # ConnectionError and DatasetNotFoundError are OSErrors
            raise DataError(
                f"data.path={self.name!r}: cannot read split {self.split!r} of the Hugging Face dataset "
                f"{self.dataset!r}{f' (config {self.config!r})' if self.config else ''}: {str(error).splitlines()[0]}. Check the name and "
                "split, and that this machine can reach the hub (or has the dataset in its cache); or give a "
                "local file, directory or glob of .jsonl/.txt/.parquet") from None

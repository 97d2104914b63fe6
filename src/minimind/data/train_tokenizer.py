"""Train a tokenizer in MiniMind's format on any corpus.

    python -m minimind.data.train_tokenizer data.path=corpus.jsonl vocab_size=6400 out=my_tokenizer
    minimind-train-tokenizer data.path=corpus.jsonl out=my_tokenizer          # the same, once installed
    python -m minimind.data.train_tokenizer data.path='books/*.txt' vocab_size=4000 out=tok data.on_bad_record=skip

Arguments are `key=value`: `data.path` (required; anything `data.path` accepts, `default`
included), `out` (required; the directory to write), `vocab_size` (default 6400),
`data.format` (auto|pretrain|sft) and `data.on_bad_record` (error|skip). The tokenizers
library shows training progress; use the result with `data.tokenizer=<out>`.
Conversations are trained on as their message texts.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator

from minimind.cli import expected_errors
from minimind.data.corpus import Corpus
from minimind.data.errors import BadRecords, DataError
from minimind.data.tokenizer import train_tokenizer

log = logging.getLogger("minimind.data.train_tokenizer")
KEYS = {"data.path": None, "out": None, "vocab_size": "6400", "data.format": "auto", "data.on_bad_record": "error"}


def parse_args(argv: list[str]) -> dict[str, str]:
    args = dict(KEYS)
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in KEYS:
            raise DataError(f"unexpected argument {arg!r}; expected key=value with key in {list(KEYS)}")
        args[key] = value
    missing = [k for k, v in args.items() if v is None]
    if missing:
        raise DataError(f"missing {', '.join(f'{k}=...' for k in missing)} (see `python -m {__spec__.name}` docs)")
    return args


def texts(corpus: Corpus, fmt: str, bad: BadRecords) -> Iterator[str]:
    for record in corpus.records(fmt, bad):
        yield record.value if isinstance(record.value, str) else "\n".join(m["content"] for m in record.value)


@expected_errors
def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    corpus = Corpus(args["data.path"])
    policy = args["data.on_bad_record"]
    fmt, bad = corpus.resolve_format(args["data.format"], policy), BadRecords(policy)
    start = time.monotonic()
    if not args["vocab_size"].isdigit():
        raise DataError(f"vocab_size={args['vocab_size']} must be a whole number (e.g. vocab_size=6400)")
    out = train_tokenizer(texts(corpus, fmt, bad), int(args["vocab_size"]), args["out"])
    log.info("trained a %s-token tokenizer on %s in %.1fs (%s) -> %s",
             args["vocab_size"], corpus.name, time.monotonic() - start, bad.summary(), out)


if __name__ == "__main__":
    main()

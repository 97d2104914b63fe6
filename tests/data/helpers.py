"""Generated corpora for the data tests: made-up English, no copied text."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = (
    "the a small big red blue green old new cat dog bird fish tree river stone house road light dark "
    "runs sees finds keeps makes takes gives over under near behind with without and or but because"
).split()


def make_texts(n: int, seed: int = 0, min_words: int = 5, max_words: int = 60) -> list[str]:
    """`n` distinct documents of made-up English ("Document 7. the red cat ...")."""
    rng = random.Random(seed)
    return [
        f"Document {i}. " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(min_words, max_words))) + "."
        for i in range(n)
    ]


def make_conversations(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    texts = make_texts(2 * n, seed, max_words=20)
    convs = []
    for i in range(n):
        conv = [{"role": "user", "content": f"Question {i}: {texts[2 * i]}"},
                {"role": "assistant", "content": f"Answer {i}: {texts[2 * i + 1]}"}]
        if i % 3 == 0:
            conv.insert(0, {"role": "system", "content": "You are terse."})
        if i % 4 == 0:
            conv += [{"role": "user", "content": "And then?"}, {"role": "assistant", "content": f"Then {i}."}]
        convs.append(conv)
    return convs


def make_pairs(n: int, seed: int = 0) -> list[dict[str, list[dict[str, str]]]]:
    """`n` preference pairs in upstream's DPO format, separable by the reply alone: the chosen reply is
    made-up English ("Answer 3: the red cat ..."), the rejected one a single word repeated ("dog dog dog ...")."""
    texts = make_texts(2 * n, seed, max_words=12)
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        prompt = [{"role": "user", "content": f"Question {i}: {texts[2 * i]}"}]
        pairs.append({"chosen": [*prompt, {"role": "assistant", "content": f"Answer {i}: {texts[2 * i + 1]}"}],
                      "rejected": [*prompt, {"role": "assistant", "content": " ".join([rng.choice(WORDS)] * 8)}]})
    return pairs


def write_jsonl(path: Path, objects: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(o) + "\n" for o in objects), encoding="utf-8")
    return path


def write_pretrain(path: Path, texts: list[str]) -> Path:
    return write_jsonl(path, [{"text": t} for t in texts])


def datamodule(path, tokenizer_dir, tmp_path: Path, **overrides):
    """A MiniMindDataModule on a test corpus with a private cache, small by default."""
    from minimind.data import MiniMindDataModule

    args = dict(tokenizer=str(tokenizer_dir), seq_len=16, batch_size=4, cache_dir=str(tmp_path / "cache"),
                val_fraction=0.0)
    return MiniMindDataModule(path=str(path), **{**args, **overrides})


def stream_of(tokenizer, texts: list[str]) -> list[int]:
    """The packed token stream: each document's ids followed by <|endoftext|> (id 0)."""
    out: list[int] = []
    for text in texts:
        out += tokenizer(text, add_special_tokens=False)["input_ids"] + [0]
    return out


def rows_of(loader) -> list[tuple[int, ...]]:
    return [tuple(row) for batch in loader for row in batch["input_ids"].tolist()]

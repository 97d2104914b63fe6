"""`MiniMindDataModule`: everything the training loop needs from the data, by config.

    data = MiniMindDataModule(path="default", seq_len=256, batch_size=16)
    trainer.fit(model, datamodule=data)  # batches: {"input_ids": (B, T), "labels": (B, T)}

Packed SFT batches (`format="sft", packing=True`) also hold `document_ids` (B, T), which the
model takes to keep the conversations sharing a row apart.

Prompt batches (`format="prompt"`, for reinforcement learning) are left-padded prompts instead:
{"input_ids", "attention_mask": (B, longest prompt), "messages", "answers": one entry per prompt}
(`minimind.data.prompts`). Preference pairs (`format="dpo"`) are batched as `preference.PairRows`
says: the chosen rows, then the rejected rows, and each pair's `pair_index`.

`prepare_data()` (once per node) trains the default tokenizer and builds the token cache
when they are missing; `setup()` opens them and raises any data error before training
starts. The training loader's position is saved in every checkpoint, twice on purpose: by
Lightning's fit loop (it saves a `StatefulDataLoader`'s state) and by this module's
`state_dict()`, which Lightning restores before `configure_optimizers` runs, so resuming is
exact even when the model asks for `trainer.estimated_stepping_batches` there
(Lightning#20550 loses the loader state in that case).
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerFast

from minimind.data import tokenizer as tok_format
from minimind.data.cache import Split, TokenCache, ensure_cache
from minimind.data.cached_dataset import CachedDataset
from minimind.data.corpus import PATH_NOT_SET, Corpus, path_is_set
from minimind.data.encode import ChatOptions
from minimind.data.default_tokenizer import resolve_tokenizer
from minimind.data.errors import POLICIES, BadRecords, DataError
from minimind.data.loader import ResumableLoader
from minimind.data.packing import DocRows, PackedDocRows, PackedRows
from minimind.data.preference import PairRows, pair_settings_problems
from minimind.data.prompts import PromptRows, Prompts, read_prompts
from minimind.data.records import FORMATS, is_val
from minimind.data.streaming_dataset import StreamingDataset
from minimind.paths import cache_dir as default_cache_dir

log = logging.getLogger(__name__)

STREAMED_VAL_BATCHES = 50  # a remote stream has no known end: validate on this many batches unless told


def settings_problems(path: Any = "default", seq_len: int = 256, batch_size: int = 16, num_workers: int = 0,
                      format: str = "auto",
                      shuffle_buffer: int = 0, val_fraction: float = 0.05, on_bad_record: str = "error",
                      max_val_batches: int | None = None, add_system_ratio: float = 0.0,
                      strip_empty_think: float = 0.0, thinking_ratio: float = 0.0, packing: bool | None = None,
                      cache: bool | None = None, **_: Any) -> list[str]:
    """Every data setting that cannot work, each with its valid range (the training preflight reports them
    together with the rest of the config's problems; the data module refuses them when built directly)."""
    checks = [
        (path_is_set(path), PATH_NOT_SET),
        (isinstance(seq_len, int) and seq_len >= 2,
         f"data.seq_len={seq_len} must be an integer >= 2 (one input and one target token)"),
        (isinstance(batch_size, int) and batch_size >= 1, f"data.batch_size={batch_size} must be an integer >= 1"),
        (isinstance(num_workers, int) and num_workers >= 0, f"data.num_workers={num_workers} must be an integer >= 0"),
        (format in FORMATS, f"data.format={format!r} must be one of {FORMATS}"),
        (isinstance(shuffle_buffer, int) and shuffle_buffer >= 0, f"data.shuffle_buffer={shuffle_buffer} must be >= 0"),
        (isinstance(val_fraction, (int, float)) and 0 <= val_fraction < 1,
         f"data.val_fraction={val_fraction} must be in [0, 1)"),
        (on_bad_record in POLICIES, f"data.on_bad_record={on_bad_record!r} must be one of {POLICIES}"),
        (max_val_batches is None or (isinstance(max_val_batches, int) and max_val_batches >= 1),
         f"data.max_val_batches={max_val_batches} must be null or an integer >= 1"),
        *((isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p <= 1,
           f"data.{name}={p} must be a probability in [0, 1] (0: off; upstream uses {upstream})")
          for name, p, upstream in (("add_system_ratio", add_system_ratio, 0.2),
                                    ("strip_empty_think", strip_empty_think, 0.8),
                                    ("thinking_ratio", thinking_ratio, "0.9 in its GRPO"))),
    ]
    problems = [message for ok, message in checks if not ok]
    return problems + (pair_settings_problems(packing, cache) if format == "dpo" else [])


class MiniMindDataModule(LightningDataModule):
    """Args (Hydra: `data.<name>=...`):

    path: `default` (the embedded corpus; with format=sft the embedded conversations about it), a local
        file/directory/glob of .jsonl/.txt/.parquet, or `hf:NAME[:SPLIT]`.
    tokenizer: a tokenizer directory in MiniMind's format; None/"default": train (once) the default one.
    seq_len, batch_size: rows are (batch_size, seq_len).
    num_workers: DataLoader worker processes (0: read in the training process, fine with the cache).
    format: `auto` (from the first record), `pretrain` ({"text"}), `sft` ({"conversations"}), `prompt`
        (conversations ending in an empty assistant turn, optional "gt"; `data.seq_len` is then the longest prompt)
        or `dpo` ({"chosen", "rejected"}: preference pairs; with path `default`, the embedded ones).
    packing: pack documents into full rows (default for pretrain) or one per padded row (default for sft);
        packed SFT rows hold whole conversations that never attend to each other.
    shuffle_buffer: rows in the shuffle buffer of a streamed corpus (a cached corpus is fully permuted).
    seed: shuffling seed (each epoch is a new permutation of it).
    val_fraction: share of documents held out for validation, chosen by a hash of their id (0: none).
    cache: tokenize once into a memory-mapped cache (default: yes, except for hf: sources).
    cache_dir: root of the caches (default `minimind.paths.cache_dir()`).
    on_bad_record: `error` (stop at the first bad record, naming its file and line) or `skip` (count them).
    max_val_batches: cap on validation batches per rank (None: the whole validation split; for a streamed
        `hf:` corpus without a cache, 50, since finding its whole validation split means reading all of it).
    add_system_ratio, strip_empty_think: upstream's SFT augmentations, as probabilities (0: off; upstream
        uses 0.2 and 0.8): a random system prompt for conversations without one, and empty think blocks
        removed. Each conversation's draw is fixed by `seed` and its id (see `minimind.data.encode`).
    thinking_ratio: prompts only: the share rendered with the template's `open_thinking` (upstream's option,
        0.9 in its GRPO), each prompt's draw fixed like the augmentations' (see `minimind.data.prompts`).
    """

    def __init__(
        self,
        path: str = "default",
        tokenizer: str | None = None,
        seq_len: int = 256,
        batch_size: int = 16,
        num_workers: int = 0,
        format: str = "auto",
        packing: bool | None = None,
        shuffle_buffer: int = 1024,
        seed: int = 0,
        val_fraction: float = 0.05,
        cache: bool | None = None,
        cache_dir: str | None = None,
        on_bad_record: str = "error",
        max_val_batches: int | None = None,
        add_system_ratio: float = 0.0,
        strip_empty_think: float = 0.0,
        thinking_ratio: float = 0.0,
    ) -> None:
        super().__init__()
        problems = settings_problems(path=path, seq_len=seq_len, batch_size=batch_size, num_workers=num_workers,
                                     format=format,
                                     shuffle_buffer=shuffle_buffer, val_fraction=val_fraction,
                                     on_bad_record=on_bad_record, max_val_batches=max_val_batches,
                                     add_system_ratio=add_system_ratio, strip_empty_think=strip_empty_think,
                                     thinking_ratio=thinking_ratio, packing=packing, cache=cache)
        if problems:
            raise DataError("; ".join(problems))
        self.save_hyperparameters()
        self.corpus = Corpus(path, format)
        self.chat_options = ChatOptions(float(add_system_ratio), float(strip_empty_think), seed)
        self.use_cache = not self.corpus.streaming if cache is None else bool(cache)
        self.root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self._cache: TokenCache | None = None
        self._bad: BadRecords | None = None
        self._train_loader: ResumableLoader | None = None
        self._pending_state: dict[str, Any] | None = None
        self._prompts: dict[str, Prompts] | None = None
        self._pairs: dict[str, PairRows] = {}

    # ---- what the model and the training loop read -------------------------------------

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerFast:
        return resolve_tokenizer(self.hparams.tokenizer, self.root)

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    @cached_property
    def token_bytes(self) -> torch.Tensor:
        """(vocab_size,) UTF-8 bytes per token id, 0 for special tokens: for bits per byte."""
        return tok_format.token_bytes(self.tokenizer)

    @cached_property
    def format(self) -> str:
        """`pretrain`, `sft` or `dpo` (`data.format=auto` resolved)."""
        return self.corpus.resolve_format(self.hparams.format, self.hparams.on_bad_record)

    @property
    def packing(self) -> bool:
        return self.format == "pretrain" if self.hparams.packing is None else bool(self.hparams.packing)

    def num_train_tokens(self) -> int | None:
        """Tokens in the training split (one epoch); None when streamed (unknown up front) or prompts (the
        replies, not the prompts, are most of what trains)."""
        if self.format == "prompt":
            return None
        return self._open_cache().meta["tokens"]["train"] if self.use_cache else None

    def pairs(self, split: str) -> PairRows:
        """The preference pairs of a split (`train` or `val`), as its batches read them; pairs with nothing
        to compare within `seq_len` are reported as bad records."""
        if split not in self._pairs:
            problems = pair_settings_problems(self.hparams.packing, self.use_cache)
            if problems:
                raise DataError(f"data.path={self.corpus.name!r} holds preference pairs: " + "; ".join(problems))
            data = self._split(split)
            self._pairs[split] = PairRows(
                data.tokens, data.mask, data.offsets, self.hparams.seq_len, self.tokenizer.pad_token_id,
                self._scan(), where=lambda i: f"data.path={self.corpus.name}: pair {i} of the {split} split",
                key=f"{self._cache.path.name}/{split}/seq_len={self.hparams.seq_len}/{self.hparams.on_bad_record}")
        return self._pairs[split]

    def bad_record_report(self) -> dict[str, Any]:
        """Skipped bad records: count, count by kind, first examples (with file and line).

        For a streamed `hf:` corpus, records are checked by the workers as they read them,
        so this report stays empty; with `on_bad_record=error` they still stop the run.
        """
        return self._scan().as_dict()

    # ---- Lightning hooks -----------------------------------------------------------------

    def prepare_data(self) -> None:
        self.tokenizer  # noqa: B018 - trains the default tokenizer if no job has
        if self.format == "prompt":
            self._read_prompts()
        elif self.use_cache:
            self._open_cache()

    def setup(self, stage: str | None = None) -> None:
        """Open everything and fail now, not mid-training, on bad or too little data."""
        report = self._scan()
        if report.total:
            log.warning("data.path=%s: %s", self.corpus.name, report.summary())
        if stage in (None, "fit"):
            self._dataset(train=True)
        if stage in (None, "fit", "validate") and self.hparams.val_fraction > 0:
            self._dataset(train=False)

    def train_dataloader(self) -> ResumableLoader:
        loader = ResumableLoader(
            self._dataset(train=True), num_workers=self.hparams.num_workers, pin_memory=torch.cuda.is_available()
        )
        if self._pending_state is not None:
            loader.load_state_dict(self._pending_state)
            self._pending_state = None
        self._train_loader = loader
        return loader

    def val_dataloader(self) -> DataLoader | list:
        if self.hparams.val_fraction == 0:
            return []
        return DataLoader(
            self._dataset(train=False), batch_size=None, num_workers=self.hparams.num_workers,
            pin_memory=torch.cuda.is_available(),
        )

    def state_dict(self) -> dict[str, Any]:
        return {"train_loader": self._train_loader.state_dict()} if self._train_loader is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = state_dict.get("train_loader")
        if state and self._train_loader is not None:
            self._train_loader.load_state_dict(state)
        elif state:
            self._pending_state = state

    def teardown(self, stage: str) -> None:
        if self._bad is not None and self._bad.total:
            log.warning("data.path=%s: %s", self.corpus.name, self._bad.summary())

    # ---- internals -----------------------------------------------------------------------

    def _open_cache(self) -> TokenCache:
        if self._cache is None:
            self._cache, _ = ensure_cache(
                self.corpus, self.tokenizer, self.format, self.hparams.val_fraction, self.root, self.hparams.on_bad_record,
                self.chat_options,
            )
        return self._cache

    def _scan(self) -> BadRecords:
        """The bad-record report: from the cache build, or one reading pass over a local corpus."""
        if self._bad is None:
            policy = self.hparams.on_bad_record
            if self.format == "prompt":
                self._read_prompts()
            elif self.use_cache:
                self._bad = BadRecords.from_dict(self._open_cache().meta["bad_records"], policy)
            else:
                self._bad = BadRecords(policy)
                if not self.corpus.streaming and not sum(1 for _ in self.corpus.records(self.format, self._bad)):
                    raise DataError(f"data.path={self.corpus.name!r} has no usable documents ({self._bad.summary()})")
        return self._bad

    def _read_prompts(self) -> dict[str, Prompts]:
        """A prompt set, read once into memory (its bad records counted in the same report as a cache's)."""
        if self._prompts is None:
            h = self.hparams
            self._bad = BadRecords(h.on_bad_record)
            self._prompts = read_prompts(self.corpus.records("prompt", self._bad), self.tokenizer, h.seq_len,
                                         self.chat_options, h.thinking_ratio, self._bad,
                                         lambda doc_id: is_val(doc_id, h.val_fraction))
            if not sum(len(p) for p in self._prompts.values()):
                raise DataError(f"data.path={self.corpus.name!r} has no usable prompts ({self._bad.summary()})")
        return self._prompts

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _run_batches(self) -> int | None:
        """A streamed corpus has no epochs of its own: one epoch is the whole run (max_steps x
        accumulation). Knowing that length, Lightning does not read a batch ahead, so the data
        position in a checkpoint is exactly the batches trained on."""
        trainer = self.trainer
        if self.use_cache or trainer is None or trainer.max_steps is None or trainer.max_steps < 0:
            return None
        return trainer.max_steps * trainer.accumulate_grad_batches

    def _dataset(self, train: bool) -> CachedDataset | StreamingDataset:
        h = self.hparams
        rank, world_size = self._rank()
        max_batches = self._run_batches() if train else h.max_val_batches
        if self.format == "prompt":
            name = "train" if train else "val"
            prompts = self._read_prompts()[name]
            if not len(prompts):
                hint = "raise data.val_fraction or set it to 0 (no validation)" if not train else "lower data.val_fraction"
                raise DataError(f"data.path={self.corpus.name!r}: the {name} split has no prompts; {hint}")
            rows = PromptRows(prompts, h.seq_len, self.tokenizer.pad_token_id)
            return CachedDataset(rows, h.batch_size, rank, world_size, h.seed, train=train,
                                 max_batches=h.max_val_batches if not train else None, name=name)
        if not train and max_batches is None and self.corpus.streaming and not self.use_cache:
            max_batches = STREAMED_VAL_BATCHES
        if self.format == "dpo":  # preference pairs: from the token cache, one row per pair
            name = "train" if train else "val"
            return CachedDataset(self.pairs(name), h.batch_size, rank, world_size, h.seed, train=train,
                                 max_batches=max_batches, name=name)
        if not self.use_cache:
            return StreamingDataset(
                self.corpus, self.format, self.tokenizer, h.seq_len, h.batch_size, self.packing, train=train,
                val_fraction=h.val_fraction, rank=rank, world_size=world_size, seed=h.seed,
                shuffle_buffer=h.shuffle_buffer, max_batches=max_batches, on_bad_record=h.on_bad_record,
                chat_options=self.chat_options,
            )
        name = "train" if train else "val"
        split = self._split(name)
        pad_id = self.tokenizer.pad_token_id
        if self.packing and self.format == "sft":
            rows = PackedDocRows(split.tokens, split.mask, split.offsets, h.seq_len, pad_id)
        elif self.packing:
            rows = PackedRows(split.tokens, split.mask, h.seq_len)
        else:
            rows = DocRows(split.tokens, split.mask, split.offsets, h.seq_len, pad_id)
        return CachedDataset(rows, h.batch_size, rank, world_size, h.seed, train=train, max_batches=max_batches, name=name)

    def _split(self, name: str) -> Split:
        split = self._open_cache().split(name)
        if len(split.offsets) == 1:
            hint = "raise data.val_fraction or set it to 0 (no validation)" if name == "val" else "lower data.val_fraction"
            raise DataError(f"data.path={self.corpus.name!r}: the {name} split has no documents; {hint}")
        return split

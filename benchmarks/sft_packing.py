"""Packed SFT against padded SFT: training tokens/s of real (conversation) tokens, same data.

    .venv/bin/python benchmarks/sft_packing.py                      # the embedded SFT set, the tiny model
    .venv/bin/python benchmarks/sft_packing.py --path sft.jsonl --tokenizer DIR --preset small --seq-len 512

Both modes train the same model (same initial weights, AdamW, clipping) on the same
conversations through the real data module: `packing=false` (upstream's way: one conversation per
row, padded to `seq_len`) and `packing=true` (whole conversations share rows, kept apart by
`document_ids`: block-diagonal attention, positions restarting per conversation). A step of each
costs about the same; packed rows hold more conversations, so more real tokens are trained per
second. Repeats alternate the two modes, so a shared machine's drift hits both alike.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from common import Measurement, autocast_dtype, machine_facts, synchronize
from minimind.data import MiniMindDataModule
from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.training.optim import param_groups
from minimind.cli import expected_errors


def steps_of(args, cache_dir: Path, packing: bool, device: torch.device) -> list[dict[str, torch.Tensor]]:
    """The first warm-up + steps training batches of one mode, on the device."""
    data = MiniMindDataModule(path=args.path, tokenizer=args.tokenizer, format="sft", seq_len=args.seq_len,
                              batch_size=args.batch_size, num_workers=0, packing=packing, val_fraction=0.0,
                              cache_dir=str(cache_dir))
    data.setup("fit")
    batches, loader = [], iter(data.train_dataloader())
    while len(batches) < args.warmup + args.steps:
        try:
            batches.append({k: v.to(device) for k, v in next(loader).items()})
        except StopIteration:  # a short data set: next epoch
            loader = iter(data.train_dataloader())
    return batches


def real_tokens(batch: dict[str, torch.Tensor], pad_id: int = 0) -> int:
    """Positions holding conversation tokens (not padding; <|endoftext|> never occurs in a conversation)."""
    return int((batch["input_ids"] != pad_id).sum())


def conversations_in(batch: dict[str, torch.Tensor], pad_id: int = 0) -> int:
    """Padded rows hold one conversation each; packed rows one per document id, less the padding's own."""
    if "document_ids" not in batch:
        return batch["input_ids"].shape[0]
    return int((batch["document_ids"].amax(1) + 1).sum() - (batch["input_ids"][:, -1] == pad_id).sum())


def train_rate(cfg: MiniMindConfig, batches: list[dict], warmup: int, precision: str,
               device: torch.device) -> tuple[float, float]:
    """(real tokens/s, conversations/s) of plain training steps over `batches`."""
    torch.manual_seed(0)
    model = MiniMindForCausalLM(cfg).to(device)
    optimizer = torch.optim.AdamW(param_groups(model, 0.1), lr=1e-4)
    dtype = autocast_dtype(precision)
    start, tokens, conversations = None, 0, 0
    for step, batch in enumerate(batches):
        if step == warmup:
            synchronize(device)
            start = time.perf_counter()
        if step >= warmup:
            tokens += real_tokens(batch)
            conversations += conversations_in(batch)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(batch["input_ids"], labels=batch["labels"], document_ids=batch.get("document_ids"))
        (out.loss + out.aux_loss).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    synchronize(device)
    seconds = time.perf_counter() - start
    return tokens / seconds, conversations / seconds


@expected_errors  # a bad path or checkpoint: one `error: ...` line, as the tools print
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--path", default="default", help="SFT JSONL (default: the embedded SFT set)")
    p.add_argument("--tokenizer", default=None, help="tokenizer directory (default: the default tokenizer)")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precision", default="32-true", help="e.g. bf16-mixed on a GPU")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="minimind-bench-") as tmp:
        data = {packing: steps_of(args, Path(tmp), packing, device) for packing in (False, True)}
    vocab = int(max(b["input_ids"].max() for batches in data.values() for b in batches)) + 1
    cfg = MiniMindConfig.from_preset(args.preset, vocab_size=max(vocab, 6400))
    fill = {packing: sum(real_tokens(b) for b in batches) / sum(b["input_ids"].numel() for b in batches)
            for packing, batches in data.items()}
    rates = {packing: (Measurement("real tokens/s", "tokens/s"), Measurement("conversations/s", "1/s"))
             for packing in (False, True)}
    speedup = Measurement("packed / padded", "")
    for _ in range(args.repeats):
        for packing in (False, True):
            tokens, conversations = train_rate(cfg, data[packing], args.warmup, args.precision, device)
            rates[packing][0].values.append(tokens)
            rates[packing][1].values.append(conversations)
        speedup.values.append(rates[True][0].values[-1] / rates[False][0].values[-1])

    print(", ".join(f"{k} {v}" for k, v in machine_facts(device).items()))
    print(f"data {args.path}, model {args.preset} ({cfg.hidden_size} x {cfg.num_hidden_layers}), "
          f"batch {args.batch_size} x {args.seq_len}, {args.steps} steps after {args.warmup} warm-up, "
          f"{args.repeats} repeats, {args.precision}; median [min, max]")
    for packing, name in ((False, "padded (packing=false)"), (True, "packed (packing=true) ")):
        tokens, conversations = rates[packing]
        print(f"{name}: {tokens.cell()} real tokens/s, {conversations.cell(',.1f')} conversations/s, "
              f"{fill[packing]:.0%} of positions are real tokens")
    print(f"speed-up (real tokens/s, packed / padded, per repeat): {speedup.cell('.2f')}")


if __name__ == "__main__":
    main()

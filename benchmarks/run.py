"""Measured speed and memory of minimind, side by side with a plain PyTorch loop.

    .venv/bin/python benchmarks/run.py                 # quick CPU mode, a few minutes; writes benchmarks/RESULTS.md
    .venv/bin/python benchmarks/run.py --mode full     # GPU: bf16, small and minimind3, with torch.compile
    .venv/bin/python benchmarks/run.py --only train generation   # a subset of the sections

Every figure is the median of at least 3 repeats after a warm-up, with [min, max] beside it.
Sections: training throughput (Lightning against a hand-written loop, and MFU against this
machine's measured matmul peak), the data pipeline, generation with and without the KV cache,
peak memory per setting, and the two attention backends.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

from attention import step_time  # noqa: E402
from common import Measurement, machine_facts  # noqa: E402
from generation import decode_rate  # noqa: E402
from matmul_peak import matmul_peak  # noqa: E402
from memory import step_peak_mb  # noqa: E402
from minimind.model import MiniMindConfig  # noqa: E402
from minimind.model.flops import training_flops_per_token  # noqa: E402
from train_throughput import compare  # noqa: E402

PUBLISHED_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12}  # dense bf16 FLOP/s


def settings(mode: str, device: torch.device) -> dict:
    if mode == "quick":
        return dict(precision="32-true", dtype=torch.float32, repeats=3, train_repeats=5, presets={
            "tiny": dict(batch_size=16, seq_len=256, steps=8, warmup=3, compile=True),
            "small": dict(batch_size=4, seq_len=512, steps=4, warmup=2, compile=False)},
            generation=("small", (1, 4)), memory=("small", 4, 512), attention=("small", 2, (256, 1024)))
    return dict(precision="bf16-mixed", dtype=torch.bfloat16, repeats=3, train_repeats=5, presets={
        "small": dict(batch_size=32, seq_len=512, steps=30, warmup=10, compile=True),
        "minimind3": dict(batch_size=32, seq_len=512, steps=30, warmup=10, compile=True)},
        generation=("small", (1, 32)), memory=("small", 16, 512), attention=("small", 16, (512, 2048)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["quick", "full"], default="quick")
    parser.add_argument("--only", nargs="*", default=["train", "data", "generation", "memory", "attention"])
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    device = torch.device("cuda" if args.mode == "full" and torch.cuda.is_available() else "cpu")
    s = settings(args.mode, device)
    started = time.time()
    lines = [f"# Benchmark results ({args.mode} mode)", "",
             f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with `python benchmarks/run.py"
             f"{' --mode full' if args.mode == 'full' else ''}` on {device.type}. "
             "Each cell: median [min, max] of the repeats, after a warm-up.", "",
             "| machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in machine_facts(device).items()] + [""]

    if "train" in args.only:
        lines += section_train(s, device)
    if "data" in args.only:
        lines += section_data(s)
    if "generation" in args.only:
        lines += section_generation(s, device)
    if "memory" in args.only:
        lines += section_memory(s, device)
    if "attention" in args.only:
        lines += section_attention(s, device)
    lines += [f"Total benchmark time: {time.time() - started:.0f} s.", ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"\nwritten to {args.out}")


def section_train(s: dict, device: torch.device) -> list[str]:
    peak = max((matmul_peak(device, s["dtype"], n) for n in (1024, 2048, 4096 if device.type == "cuda" else 1536)),
               key=lambda m: m.median)
    published = next((v for k, v in PUBLISHED_PEAK.items() if k in machine_facts(device).get("gpu", "")), None)
    out = ["## Training throughput", "",
           f"Same model, batches, AdamW, clipping and autocast ({s['precision']}); tokens/s. "
           f"MFU = achieved training FLOP/s / the measured matmul peak ({peak.name}: "
           f"{peak.median / 1e9:,.0f} GFLOP/s [{min(peak.values) / 1e9:,.0f}, {max(peak.values) / 1e9:,.0f}])"
           + (f", and / the published {published / 1e12:,.0f} TFLOP/s" if published else "") + ".", "",
           "Lightning / plain is the median of per-repeat ratios (each repeat runs both loops back to back).", "",
           "| preset | batch x seq | loop | tokens/s | Lightning / plain | MFU (measured peak) |"
           + (" MFU (published) |" if published else ""),
           "|---|---|---|---|---|---|" + ("---|" if published else "")]
    for preset, p in s["presets"].items():
        cfg = MiniMindConfig.from_preset(preset)
        flops = training_flops_per_token(cfg, p["seq_len"])
        for use_compile in ([False, True] if p["compile"] else [False]):
            try:
                plain, ours, ratio = compare(cfg, p["batch_size"], p["seq_len"], p["steps"], p["warmup"],
                                             s["train_repeats"], s["precision"], device, compile=use_compile)
            except Exception as error:  # torch.compile needs a working compiler toolchain
                out.append(f"| {preset} | | compile failed: {type(error).__name__}: {str(error)[:80]} | | | |")
                continue
            for m in (plain, ours):
                mfu = m.median * flops / peak.median
                row = (f"| {preset} | {p['batch_size']} x {p['seq_len']} | {m.name} | {m.cell()} | "
                       f"{ratio.cell('.3f')} | {mfu:.1%} |")
                out.append(row + (f" {m.median * flops / published:.1%} |" if published else ""))
            print(out[-2], out[-1], sep="\n", flush=True)
    return out + [""]


def section_data(s: dict) -> list[str]:
    script = HERE / "data_throughput.py"
    result = subprocess.run([sys.executable, str(script), "--seconds", "3"], capture_output=True, text=True)
    body = result.stdout.strip() if result.returncode == 0 else f"failed:\n{result.stderr[-2000:]}"
    return ["## Data pipeline", "", f"`python benchmarks/data_throughput.py --seconds 3`:", "", "```", body, "```", ""]


def section_generation(s: dict, device: torch.device) -> list[str]:
    preset, batch_sizes = s["generation"]
    cfg = MiniMindConfig.from_preset(preset)
    out = ["## Generation", "", f"`{preset}`, greedy, 256 new tokens after a 16-token prompt; decode tokens/s.", "",
           "| batch | with KV cache | without | speed-up |", "|---|---|---|---|"]
    for batch_size in batch_sizes:
        cached = decode_rate(cfg, batch_size, 256, True, s["repeats"], device)
        recomputed = decode_rate(cfg, batch_size, 256, False, s["repeats"], device)
        out.append(f"| {batch_size} | {cached.cell()} | {recomputed.cell()} | {cached.median / recomputed.median:.1f}x |")
        print(out[-1], flush=True)
    return out + [""]


def section_memory(s: dict, device: torch.device) -> list[str]:
    preset, batch_size, seq_len = s["memory"]
    kind = "CUDA max allocated" if device.type == "cuda" else "rise of peak resident memory (VmHWM)"
    out = ["## Memory", "", f"`{preset}`, batch {batch_size} x seq {seq_len}: what one training step adds on top "
           f"of weights and optimizer state ({kind}), MB; one fresh process per cell, {s['repeats']} repeats.", "",
           "| precision | activation checkpointing | peak MB | saving |", "|---|---|---|---|"]
    precisions = ["32-true", "bf16-mixed", "bf16-true"] + (["16-mixed"] if device.type == "cuda" else [])
    for precision in precisions:
        baseline = None
        for checkpointing in (False, True):
            m = Measurement(precision, "MB", [step_peak_mb(preset, batch_size, seq_len, precision, checkpointing,
                                                           device.type) for _ in range(s["repeats"])])
            saving = "" if baseline is None else f"{1 - m.median / baseline:.0%} less"
            baseline = baseline or m.median
            out.append(f"| {precision} | {'on' if checkpointing else 'off'} | {m.cell()} | {saving} |")
            print(out[-1], flush=True)
    return out + [""]


def section_attention(s: dict, device: torch.device) -> list[str]:
    preset, batch_size, lengths = s["attention"]
    cfg = MiniMindConfig.from_preset(preset)
    out = ["## Attention backends", "", f"`{preset}`, batch {batch_size}: forward + backward time, and the step's "
           "peak memory (as in the memory section).", "",
           "| backend | seq | ms/step | step peak MB |", "|---|---|---|---|"]
    for seq_len in lengths:
        for backend in ("sdpa", "eager"):
            t = step_time(cfg, backend, batch_size, seq_len, s["repeats"], device)
            mem = step_peak_mb(preset, batch_size, seq_len, s["precision"], False, device.type, backend)
            out.append(f"| {backend} | {seq_len} | {t.cell(',.1f')} | {mem:,.0f} |")
            print(out[-1], flush=True)
    return out + [""]


if __name__ == "__main__":
    main()

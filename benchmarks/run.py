"""Measured speed and memory of minimind, side by side with a plain PyTorch loop.

    .venv/bin/python benchmarks/run.py                 # quick CPU mode, a few minutes; writes benchmarks/RESULTS.md
    .venv/bin/python benchmarks/run.py --mode full     # GPU: bf16, small, base and minimind3, with torch.compile
    .venv/bin/python benchmarks/run.py --only train generation   # a subset of the sections
    .venv/bin/python benchmarks/gpu_check.py           # one H100/H200: every GPU path, about 8 minutes

Every figure is the median of at least 3 repeats after a warm-up, with [min, max] beside it.
Sections: training throughput (Lightning against a hand-written loop, and MFU against the
device's peak from `minimind.hardware`: the dense datasheet figure of a GPU, the measured
and cached matmul peak of a CPU), the data pipeline, generation with and without the KV
cache, peak memory per setting, and the two attention backends. RESULTS.md is rewritten
after every row, so an interrupted run keeps what it measured; a cell that fails (out of
memory, a compiler error) is reported as failed and the rest goes on.
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
from common import Measurement, Report, machine_facts  # noqa: E402
from generation import decode_rate  # noqa: E402
from memory import step_peak_mb  # noqa: E402
from minimind.hardware import measure_matmul_flops, peak_flops  # noqa: E402
from minimind.model import MiniMindConfig  # noqa: E402
from minimind.model.flops import training_flops_per_token  # noqa: E402
from train_throughput import compare  # noqa: E402
from minimind.cli import expected_errors


def settings(mode: str, device: torch.device) -> dict:
    if mode == "quick":
        return dict(precision="32-true", dtype=torch.float32, repeats=3, train_repeats=5, presets={
            "tiny": dict(batch_size=16, seq_len=256, steps=8, warmup=3, compile=True),
            "small": dict(batch_size=4, seq_len=512, steps=4, warmup=2, compile=False)},
            generation=("small", (1, 4)), memory=("small", 4, 512), attention=("small", 2, (256, 1024)))
    return dict(precision="bf16-mixed", dtype=torch.bfloat16, repeats=3, train_repeats=5, presets={
        "small": dict(batch_size=32, seq_len=512, steps=30, warmup=10, compile=True),
        "base": dict(batch_size=32, seq_len=512, steps=30, warmup=10, compile=True),
        "minimind3": dict(batch_size=32, seq_len=512, steps=30, warmup=10, compile=True)},
        generation=("small", (1, 32)), memory=("small", 16, 512), attention=("small", 16, (512, 2048)))


@expected_errors  # a bad path or checkpoint: one `error: ...` line, as the tools print
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["quick", "full"], default="quick")
    parser.add_argument("--only", nargs="*", default=["train", "data", "generation", "memory", "attention"])
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    device = torch.device("cuda" if args.mode == "full" and torch.cuda.is_available() else "cpu")
    s = settings(args.mode, device)
    started = time.time()
    report = Report(args.out)
    report.add(f"# Benchmark results ({args.mode} mode)", "",
               f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with `python benchmarks/run.py"
               f"{' --mode full' if args.mode == 'full' else ''}` on {device.type}. "
               "Each cell: median [min, max] of the repeats, after a warm-up.", "",
               "| machine | |", "|---|---|", *[f"| {k} | {v} |" for k, v in machine_facts(device).items()], "")
    sections = {"train": section_train, "data": section_data, "generation": section_generation,
                "memory": section_memory, "attention": section_attention}
    for name in args.only:
        sections[name](s, device, report)
    report.add(f"Total benchmark time: {time.time() - started:.0f} s.", "")
    print(f"\nwritten to {args.out}")


def section_train(s: dict, device: torch.device, report: Report) -> None:
    peak = peak_flops(device, s["dtype"])
    matmul = measure_matmul_flops(device, s["dtype"])
    source = "the dense datasheet figure" if device.type == "cuda" else "this CPU's measured matmul peak"
    report.add("## Training throughput", "",
               f"Same model, batches, AdamW, clipping and autocast ({s['precision']}); tokens/s. "
               f"MFU = achieved training FLOP/s / the device's peak ({source}, `minimind.hardware.peak_flops`: "
               + (f"{peak / 1e12:,.1f} TFLOP/s" if peak else "unknown") + "; a square "
               f"{str(s['dtype']).removeprefix('torch.')} matmul reaches {matmul / 1e12:,.2f} TFLOP/s here).", "",
               "Lightning / plain is the median of per-repeat ratios (each repeat runs both loops back to back).", "",
               "| preset | batch x seq | loop | tokens/s | Lightning / plain | MFU |", "|---|---|---|---|---|---|")
    for preset, p in s["presets"].items():
        cfg = MiniMindConfig.from_preset(preset)
        flops = training_flops_per_token(cfg, p["seq_len"])
        for use_compile in ([False, True] if p["compile"] else [False]):
            try:
                plain, ours, ratio = compare(cfg, p["batch_size"], p["seq_len"], p["steps"], p["warmup"],
                                             s["train_repeats"], s["precision"], device, compile=use_compile)
            except Exception as error:  # torch.compile needs a working compiler toolchain; OOM
                report.add(f"| {preset} | {p['batch_size']} x {p['seq_len']} | {'+compile ' if use_compile else ''}"
                           f"failed: {type(error).__name__}: {str(error)[:80]} | | | |")
                continue
            for m in (plain, ours):
                mfu = f"{m.median * flops / peak:.1%}" if peak else "n/a"
                report.add(f"| {preset} | {p['batch_size']} x {p['seq_len']} | {m.name} | {m.cell()} | "
                           f"{ratio.cell('.3f')} | {mfu} |")
    report.add("")


def section_data(s: dict, device: torch.device, report: Report) -> None:
    script = HERE / "data_throughput.py"
    result = subprocess.run([sys.executable, str(script), "--seconds", "3"], capture_output=True, text=True)
    body = result.stdout.strip() if result.returncode == 0 else f"failed:\n{result.stderr[-2000:]}"
    report.add("## Data pipeline", "", "`python benchmarks/data_throughput.py --seconds 3`:", "", "```", body, "```", "")


def section_generation(s: dict, device: torch.device, report: Report) -> None:
    preset, batch_sizes = s["generation"]
    cfg = MiniMindConfig.from_preset(preset)
    report.add("## Generation", "", f"`{preset}`, greedy, 256 new tokens after a 16-token prompt; decode tokens/s.", "",
               "| batch | with KV cache | without | speed-up |", "|---|---|---|---|")
    for batch_size in batch_sizes:
        cached = decode_rate(cfg, batch_size, 256, True, s["repeats"], device)
        recomputed = decode_rate(cfg, batch_size, 256, False, s["repeats"], device)
        report.add(f"| {batch_size} | {cached.cell()} | {recomputed.cell()} | "
                   f"{cached.median / recomputed.median:.1f}x |")
    report.add("")


def section_memory(s: dict, device: torch.device, report: Report) -> None:
    preset, batch_size, seq_len = s["memory"]
    kind = "CUDA max allocated" if device.type == "cuda" else "rise of peak resident memory (VmHWM)"
    report.add("## Memory", "", f"`{preset}`, batch {batch_size} x seq {seq_len}: what one training step adds on top "
               f"of weights and optimizer state ({kind}), MB; one fresh process per cell, {s['repeats']} repeats.", "",
               "| precision | activation checkpointing | peak MB | saving |", "|---|---|---|---|")
    precisions = ["32-true", "bf16-mixed", "bf16-true"] + (["16-mixed"] if device.type == "cuda" else [])
    for precision in precisions:
        baseline = None
        for checkpointing in (False, True):
            try:
                m = Measurement(precision, "MB", [step_peak_mb(preset, batch_size, seq_len, precision, checkpointing,
                                                               device.type) for _ in range(s["repeats"])])
            except RuntimeError as error:  # one failed cell (e.g. out of memory) does not end the benchmark
                report.add(f"| {precision} | {'on' if checkpointing else 'off'} | failed: {error} | |")
                continue
            saving = "" if baseline is None else f"{1 - m.median / baseline:.0%} less"
            baseline = baseline or m.median
            report.add(f"| {precision} | {'on' if checkpointing else 'off'} | {m.cell()} | {saving} |")
    report.add("")


def section_attention(s: dict, device: torch.device, report: Report) -> None:
    preset, batch_size, lengths = s["attention"]
    cfg = MiniMindConfig.from_preset(preset)
    report.add("## Attention backends", "", f"`{preset}`, batch {batch_size}: forward + backward time, and the "
               "step's peak memory (as in the memory section).", "",
               "| backend | seq | ms/step | step peak MB |", "|---|---|---|---|")
    for seq_len in lengths:
        for backend in ("sdpa", "eager"):
            t = step_time(cfg, backend, batch_size, seq_len, s["repeats"], device)
            try:
                mem = f"{step_peak_mb(preset, batch_size, seq_len, s['precision'], False, device.type, backend):,.0f}"
            except RuntimeError as error:
                mem = f"failed: {error}"
            report.add(f"| {backend} | {seq_len} | {t.cell(',.1f')} | {mem} |")
    report.add("")


if __name__ == "__main__":
    main()

"""One command for one H100/H200 GPU, about 8 minutes: does every GPU path work, and how fast is it?

    python benchmarks/gpu_check.py              # writes benchmarks/GPU_RESULTS.md, a row as soon as it is measured
    python benchmarks/gpu_check.py --dry-run    # any machine: composes every command's config and prints the plan
    python benchmarks/gpu_check.py --minutes 15 --out /tmp/GPU_RESULTS.md

What it runs, in this order (most important first; when the time is up the rest is marked skipped):

1. the device: its name, compute capability, the dense bf16 peak the project's table gives it
   (`minimind.hardware`) and what a square bf16 matmul reaches on it;
2. `small`, `base` and `minimind3`, single GPU, bf16-mixed, batch 32 x 512, without and with
   `compile`: tokens/s, MFU against the dense peak, peak memory (real `minimind.train` runs,
   figures from their summary.json); the target is >= 45% MFU for `minimind3` with compile;
3. fp16 (loss scaling) and bf16-true short runs, with a check that no loss was NaN;
4. Lightning against a plain PyTorch loop, bf16-mixed, same batches (benchmarks/train_throughput.py);
5. FSDP on one GPU with activation checkpointing (`trainer=fsdp`), samples and `.pth` export included;
6. a 3-job sweep on the device pool (`-m`): start and finish times, and that no two overlapped;
7. KV-cache decoding in bf16 against recomputation (benchmarks/generation.py).

Training commands run in their own processes, with logs and run dirs under --work-dir.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import product
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import Report, machine_facts  # noqa: E402
from minimind.cli import expected_errors

BATCH, SEQ = 32, 512
TARGET_MFU = 0.45
# Every training command: CSV logs, no samples or export unless a check wants them, no validation.
QUIET = ["logger=csv", "callbacks.samples=null", "export_pth=false", "trainer.limit_val_batches=0",
         "trainer.enable_progress_bar=false", "callbacks.model_checkpoint=null"]


@dataclass
class Command:
    """One `python -m minimind.train` run (or a multirun: `sweep` holds its comma-separated axes)."""

    name: str
    overrides: list[str]
    sweep: dict[str, str] = field(default_factory=dict)

    def argv(self, work: Path) -> list[str]:
        where = (f"hydra.sweep.dir={work / self.name}" if self.sweep else f"hydra.run.dir={work / self.name}")
        return [sys.executable, "-m", "minimind.train", *(["-m"] if self.sweep else []), *self.overrides,
                *(f"{k}={v}" for k, v in self.sweep.items()), where]

    def jobs(self) -> list[list[str]]:
        """The override lists Hydra composes: one, or one per sweep job."""
        axes = [[f"{k}={v}" for v in values.split(",")] for k, values in self.sweep.items()]
        return [self.overrides + list(job) for job in product(*axes)] if axes else [self.overrides]


def training_run(preset: str, compile: bool, steps: int) -> Command:
    return Command(f"{preset}{'-compile' if compile else ''}", [
        f"model={preset}", "trainer=gpu", "precision=bf16", f"data.batch_size={BATCH}", f"data.seq_len={SEQ}",
        f"trainer.max_steps={steps}", f"compile={str(compile).lower()}", "callbacks.run_stats.warmup_steps=10",
        *QUIET])


PRESETS = ["small", "base", "minimind3"]
TRAINING = [training_run(p, c, 60 if c else 50) for p in PRESETS for c in (False, True)]
PRECISIONS = [Command(f"small-{p}", ["model=small", "trainer=gpu", f"precision={p}", f"data.batch_size={BATCH}",
                                    f"data.seq_len={SEQ}", "trainer.max_steps=60", "trainer.log_every_n_steps=1",
                                    *QUIET]) for p in ("fp16", "bf16-true")]
FSDP = Command("fsdp-base-checkpointing", [
    "model=base", "trainer=fsdp", "trainer.devices=1", "precision=bf16", "activation_checkpointing=true",
    f"data.batch_size={BATCH}", f"data.seq_len={SEQ}", "trainer.max_steps=40", "trainer.val_check_interval=20",
    "trainer.limit_val_batches=2", "callbacks.samples.max_new_tokens=16", "logger=csv",
    "trainer.enable_progress_bar=false", "callbacks.model_checkpoint=null"])
SWEEP = Command("sweep", ["model=small", "precision=bf16", f"data.batch_size={BATCH}", f"data.seq_len={SEQ}",
                          "trainer.max_steps=30", "sweep_name=gpu-check", *QUIET],
                sweep={"model.hidden_size": "256,384,512"})
COMMANDS = [*TRAINING, *PRECISIONS, FSDP, SWEEP]


@expected_errors  # a bad path or checkpoint: one `error: ...` line, as the tools print
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="compose every command and print the plan; run nothing")
    parser.add_argument("--out", type=Path, default=HERE / "GPU_RESULTS.md")
    parser.add_argument("--work-dir", type=Path, default=None, help="run dirs and logs (default outputs/gpu-check/<time>)")
    parser.add_argument("--minutes", type=float, default=8.0, help="time budget; checks that would start later are skipped")
    args = parser.parse_args()
    work = args.work_dir or Path("outputs") / "gpu-check" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    if args.dry_run:
        dry_run(work.resolve())
        return
    GPUCheck(args.out, work.resolve(), args.minutes * 60).run()


# --- the plan, composed without running ------------------------------------------------------------

def dry_run(work: Path) -> None:
    """Compose every training command's config exactly as `python -m minimind.train ... --cfg job`
    would (Hydra's compose API, the packaged config, our resolvers) and print what would run."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    from minimind.paths import CONF_PACKAGE
    from minimind.sweeps.resolvers import register

    register()
    print("plan (nothing runs: --dry-run):\n  1. device: name, compute capability, dense bf16 peak, bf16 matmul")
    step = 2
    for command in COMMANDS:
        print(f"  {step}. {command.name}: python {' '.join(command.argv(work)[1:])}")
        for job in command.jobs():
            GlobalHydra.instance().clear()
            with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
                cfg = compose(config_name="train", overrides=job)
            strategy = cfg.trainer.strategy
            if not isinstance(strategy, str):
                instantiate(strategy)  # the FSDP strategy object, with its wrap and checkpointing policies
            print(f"       composed: model hidden {cfg.model.hidden_size} x {cfg.model.num_hidden_layers} layers, "
                  f"precision {cfg.trainer.precision}, compile {cfg.compile}, batch {cfg.data.batch_size} x "
                  f"{cfg.data.seq_len}, steps {cfg.trainer.max_steps}, strategy "
                  f"{strategy if isinstance(strategy, str) else strategy._target_.rsplit('.', 1)[-1]}, "
                  f"activation checkpointing {cfg.activation_checkpointing}")
        step += 1
        if command is PRECISIONS[-1]:
            print(f"  {step}. Lightning vs plain loop: small, bf16-mixed, {BATCH} x {SEQ}, 3 repeats (in-process)")
            step += 1
    print(f"  {step}. KV-cache decoding: small, bf16, batch 1 and {BATCH}, 256 new tokens (in-process)")
    GlobalHydra.instance().clear()
    print(f"all {sum(len(c.jobs()) for c in COMMANDS)} configs composed; results would go to benchmarks/GPU_RESULTS.md")


# --- the real check ---------------------------------------------------------------------------------

class GPUCheck:
    def __init__(self, out: Path, work: Path, budget_s: float):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("error: no CUDA GPU is visible; `--dry-run` shows the plan on any machine")
        self.torch, self.device = torch, torch.device("cuda")
        self.report, self.work, self.deadline = Report(out), work, time.time() + budget_s
        self.started = time.time()

    def time_left(self) -> float:
        return self.deadline - time.time()

    def run(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.report.add("# GPU check", "",
                        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with `python benchmarks/gpu_check.py`"
                        f" (budget {round((self.deadline - self.started) / 60)} min); run dirs and logs in "
                        f"`{self.work}`. Rows are written as they are measured.", "",
                        "| machine | |", "|---|---|",
                        *[f"| {k} | {v} |" for k, v in machine_facts(self.device).items()], "")
        self.section_device()
        self.section_training()
        self.section_precisions()
        self.section_lightning_vs_plain()
        self.section_fsdp()
        self.section_sweep()
        self.section_decoding()
        self.report.add(f"Total: {time.time() - self.started:.0f} s.", "")

    # Each section adds its rows as soon as they exist.

    def section_device(self) -> None:
        from minimind.hardware import device_peak, measure_matmul_flops

        torch = self.torch
        name = torch.cuda.get_device_name(self.device)
        entry = device_peak(name)
        matmul = measure_matmul_flops(self.device, torch.bfloat16)
        self.peak = entry.bf16 if entry else None
        capability = ".".join(map(str, torch.cuda.get_device_capability(self.device)))
        memory = torch.cuda.get_device_properties(self.device).total_memory / 2**30
        self.report.add("## Device", "", "| device | compute capability | table entry | dense bf16 peak | "
                        "bf16 matmul measured | memory |", "|---|---|---|---|---|---|",
                        f"| {name} | {capability} | {entry.name if entry else 'not in the table'} | "
                        f"{_num(self.peak and self.peak / 1e12, ',.1f')} TFLOP/s | {matmul / 1e12:,.1f} TFLOP/s | "
                        f"{memory:,.0f} GiB |")
        self.report.add("")

    def section_training(self) -> None:
        self.report.add("## Training: one GPU, bf16-mixed, batch 32 x 512", "",
                        "Steady-state figures from each run's summary.json (first 10 steps left out: compilation, "
                        f"allocator). Target: >= {TARGET_MFU:.0%} MFU for `minimind3` with compile.", "",
                        "| preset | params | compile | tokens/s | MFU (dense peak) | peak memory MB | wall s | status |",
                        "|---|---|---|---|---|---|---|---|")
        for command in TRAINING:
            result = self.train(command)
            if result is None:
                continue
            s = result.summary
            target = ""
            if command.name == "minimind3-compile" and s.get("mfu") is not None:
                target = f" (target {TARGET_MFU:.0%}: {'met' if s['mfu'] >= TARGET_MFU else 'not met'})"
            self.report.add(f"| {command.overrides[0].split('=')[1]} | {_millions(s.get('params'))} | "
                            f"{'on' if 'compile=true' in command.overrides else 'off'} | {_num(s.get('tokens_per_sec'))} | "
                            f"{_pct(s.get('mfu'))}{target} | {_num(s.get('peak_memory_mb'))} | "
                            f"{_num(s.get('wall_time_s'))} | {result.status} |")
        self.report.add("")

    def section_precisions(self) -> None:
        self.report.add("## fp16 and bf16-true (small, 60 steps, loss logged every step)", "",
                        "| precision | final train loss | NaN/inf losses in metrics.csv | tokens/s | status |",
                        "|---|---|---|---|---|")
        for command in PRECISIONS:
            result = self.train(command)
            if result is None:
                continue
            losses = result.train_losses()
            bad = sum(1 for v in losses if not math.isfinite(v))
            self.report.add(f"| {command.name.removeprefix('small-')} | {_num(result.summary.get('train_loss'), '.3f')} | "
                            f"{bad} of {len(losses)} | {_num(result.summary.get('tokens_per_sec'))} | {result.status} |")
        self.report.add("")

    def section_lightning_vs_plain(self) -> None:
        self.report.add("## Lightning against a plain PyTorch loop (small, bf16-mixed, 32 x 512)", "",
                        "Same model, batches, AdamW, clipping and autocast; 3 repeats, each running both loops back to "
                        "back (benchmarks/train_throughput.py).", "",
                        "| loop | tokens/s | Lightning / plain |", "|---|---|---|")
        if not self.enough_time(60, "Lightning vs plain"):
            return
        from minimind.model import MiniMindConfig
        from train_throughput import compare

        try:
            plain, ours, ratio = compare(MiniMindConfig.from_preset("small"), BATCH, SEQ, 30, 10, 3, "bf16-mixed",
                                         self.device)
            for m in (plain, ours):
                self.report.add(f"| {m.name} | {m.cell()} | {ratio.cell('.3f')} |")
        except Exception as error:  # noqa: BLE001 - reported in the results, the check goes on
            self.report.add(f"| failed: {type(error).__name__}: {str(error)[:120]} | | |")
        self.report.add("")

    def section_fsdp(self) -> None:
        self.report.add("## FSDP on one GPU with activation checkpointing (base, bf16-mixed)", "",
                        "`trainer=fsdp trainer.devices=1 activation_checkpointing=true`: clipping through the root "
                        "module, the strategy's block policy, samples and `.pth` export from gathered weights.", "",
                        "| tokens/s | MFU | peak memory MB | samples written | .pth written | status |",
                        "|---|---|---|---|---|---|")
        result = self.train(FSDP)
        if result is not None:
            s, run_dir = result.summary, result.run_dir
            samples = (run_dir / "samples.md").is_file() and "## step" in (run_dir / "samples.md").read_text()
            self.report.add(f"| {_num(s.get('tokens_per_sec'))} | {_pct(s.get('mfu'))} | "
                            f"{_num(s.get('peak_memory_mb'))} | {'yes' if samples else 'no'} | "
                            f"{'yes' if list(run_dir.glob('*.pth')) else 'no'} | {result.status} |")
        self.report.add("")

    def section_sweep(self) -> None:
        self.report.add("## A 3-job sweep on the device pool (small, hidden 256 / 384 / 512)", "",
                        "Each job a process of its own holding a GPU lease; with one GPU they must run one after "
                        "another.", "", "| job | overrides | started | finished | tokens/s | status |",
                        "|---|---|---|---|---|---|")
        result = self.train(SWEEP, minimum_s=90)
        if result is None:
            return
        spans = []
        for job in sorted((p for p in result.run_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)):
            s = _summary(job)
            spans.append((s.get("started_at"), s.get("finished_at")))
            axes = " ".join(o for o in s.get("overrides") or [] if o.split("=")[0] in SWEEP.sweep)
            self.report.add(f"| {job.name} | {axes} | "
                            f"{s.get('started_at')} | {s.get('finished_at')} | {_num(s.get('tokens_per_sec'))} | "
                            f"{s.get('status')} |")
        ordered = sorted(spans)
        overlap = any(a[1] is None or b[0] is None or b[0] < a[1] for a, b in zip(ordered, ordered[1:]))
        self.report.add("", f"Overlap on the GPU: {'YES (jobs shared it)' if overlap else 'none'}; "
                        f"the sweep command {result.status}.", "")

    def section_decoding(self) -> None:
        self.report.add("## KV-cache decoding (small, bf16, greedy, 256 new tokens after 16)", "",
                        "| batch | with KV cache, tokens/s | without | speed-up |", "|---|---|---|---|")
        if not self.enough_time(30, "decoding"):
            return
        from generation import decode_rate
        from minimind.model import MiniMindConfig

        cfg = MiniMindConfig.from_preset("small")
        for batch in (1, BATCH):
            cached = decode_rate(cfg, batch, 256, True, 3, self.device, dtype=self.torch.bfloat16)
            recomputed = decode_rate(cfg, batch, 256, False, 3, self.device, dtype=self.torch.bfloat16)
            self.report.add(f"| {batch} | {cached.cell()} | {recomputed.cell()} | "
                            f"{cached.median / recomputed.median:.1f}x |")
        self.report.add("")

    # --- helpers ---

    def enough_time(self, needed_s: float, what: str) -> bool:
        if self.time_left() >= needed_s:
            return True
        self.report.add(f"| skipped: {what} (time budget used up) |")
        return False

    def train(self, command: Command, minimum_s: float = 45) -> RunResult | None:
        """Run one training command to its end (or the budget's); None if it was skipped."""
        if not self.enough_time(minimum_s, command.name):
            return None
        log = self.work / "logs" / f"{command.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        with log.open("w") as out:
            try:
                code = subprocess.run(command.argv(self.work), stdout=out, stderr=subprocess.STDOUT, env=env,
                                      timeout=max(minimum_s, self.time_left())).returncode
            except subprocess.TimeoutExpired:
                code = "timed out"
        return RunResult(self.work / command.name, code, log)


@dataclass
class RunResult:
    run_dir: Path
    code: int | str
    log: Path

    @property
    def summary(self) -> dict:
        return _summary(self.run_dir)

    @property
    def status(self) -> str:
        if self.code == 0:
            return self.summary.get("status") or "completed"
        last = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()][-1:] or [""]
        return f"failed ({self.code}): {last[0][:120]} (log: {self.log.name})"

    def train_losses(self) -> list[float]:  # NaN included (minimind.compare skips non-finite cells)
        path = self.run_dir / "metrics.csv"
        if not path.is_file():
            return []
        with path.open(newline="") as f:
            return [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]


def _summary(run_dir: Path) -> dict:
    from minimind.runs import read_summary

    return read_summary(run_dir) or {}


def _num(value, fmt: str = ",.0f") -> str:
    return "n/a" if value is None else f"{value:{fmt}}"


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _millions(value) -> str:
    return "n/a" if value is None else f"{value / 1e6:.1f}M"


if __name__ == "__main__":
    main()

"""benchmarks/gpu_check.py --dry-run: on a machine without a GPU, every command the GPU check would
run is composed from the real config (so a renamed group or key breaks CI, not the GPU session)."""

import subprocess
import sys

from compose_train import REPO_ROOT


def test_gpu_check_dry_run_composes_every_command(tmp_path):
    out = tmp_path / "GPU_RESULTS.md"
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--out", str(out),
                           "--work-dir", str(tmp_path / "work")], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plan = proc.stdout
    for name in ("small:", "small-compile:", "base:", "base-compile:", "minimind3:", "minimind3-compile:",
                 "small-fp16:", "small-bf16-true:", "fsdp-base-checkpointing:", "sweep:", "Lightning vs plain",
                 "KV-cache decoding"):
        assert name in plan, name
    assert "precision 16-mixed" in plan and "precision bf16-true" in plan
    assert "strategy FSDPStrategy, activation checkpointing True" in plan
    assert plan.count("model hidden 768 x 8 layers, precision bf16-mixed, compile True") == 1  # minimind3 + compile
    assert "all 12 configs composed" in plan
    assert not out.exists() and not (tmp_path / "work").exists()  # a dry run writes nothing

"""Run the project's commands as a user types them, and check how they fail (imported by name)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from compose_train import REPO_ROOT


def run(argv: list[str], cwd: Path | None = None, stdin: str | None = None, timeout: int = 600,
        check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `argv`; with `check`, a non-zero exit fails the test with the command's output."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, cwd=cwd or REPO_ROOT, env=env,
                          timeout=timeout)
    assert not check or proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def run_module(module: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """`python -m <module> key=value ...`"""
    return run([sys.executable, "-m", module, *args], **kwargs)


def run_train(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """`python train.py ...` in the checkout."""
    return run([sys.executable, "train.py", *args], **kwargs)


def assert_clean_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """The command failed with one `error: ...` message holding every fragment, and no traceback."""
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"expected a failure, got exit 0:\n{output[-3000:]}"
    assert "Traceback" not in output, f"a traceback was printed:\n{output[-3000:]}"
    assert "error: " in proc.stderr, f"no `error: ...` line on stderr:\n{proc.stderr[-3000:]}"
    message = proc.stderr[proc.stderr.index("error: "):]
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in the error message:\n{message}"
    return message


def kill_at_first_checkpoint(args: list[str], run_dir: Path, timeout: float = 120) -> int:
    """Start `python train.py *args hydra.run.dir=run_dir`, and SIGKILL it with its data workers as soon as
    its first checkpoint is written: no clean-up, no final checkpoint, no summary update. Returns the
    step that checkpoint holds (the step a resumed run starts from)."""
    import signal
    import time

    import torch

    process = subprocess.Popen([sys.executable, "train.py", *args, f"hydra.run.dir={run_dir}"], cwd=REPO_ROOT,
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = Path(run_dir) / "checkpoints" / "last.ckpt"
    deadline = time.time() + timeout
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert checkpoint.exists(), f"no checkpoint was written within {timeout}s (exit {process.returncode})"
    return torch.load(checkpoint, weights_only=True)["global_step"]


def train_losses(run_dir: Path) -> dict[int, float]:
    """The training loss by step, from the run's metrics.csv."""
    import csv

    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return {int(r["step"]): float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")}


def assert_resumed_as_uninterrupted(resumed: Path, uninterrupted: Path) -> None:
    """A run killed and resumed ended as the run that never was: the same final checkpoint, bit for bit (what
    the objective records in it too), the same training losses in metrics.csv and the same final validation."""
    import json

    import torch

    expected, actual = (torch.load(Path(d) / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
                        for d in (uninterrupted, resumed))
    assert expected.keys() == actual.keys()
    for name, value in expected.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(actual[name], value, rtol=0, atol=0, msg=name)
        else:  # an objective's extra state: the reference's or teacher's record, GRPO's reward history
            assert actual[name] == value, name
    assert train_losses(resumed) == train_losses(uninterrupted)
    summaries = [json.loads((Path(d) / "summary.json").read_text()) for d in (resumed, uninterrupted)]
    assert summaries[0]["val_at_end"] == summaries[1]["val_at_end"]


def run_main(main, argv: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    """Call an entry point's `main()` in this process with `argv` as its command line (Hydra parses it
    exactly as in a shell); return (exit status, stdout, stderr). Saves a process start per call."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["minimind", *argv])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as error:
        code = error.code if isinstance(error.code, int) else 1
    finally:
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None  # the job's config would leak into later in-process train() calls
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_failure(code: int, out: str, err: str, *fragments: str) -> str:
    """`assert_clean_error` for `run_main`'s result."""
    return assert_clean_error(subprocess.CompletedProcess([], code, out, err), *fragments)

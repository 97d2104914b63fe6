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

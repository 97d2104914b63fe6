"""What the serve tests share (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

from compose_train import REPO_ROOT
from minimind.serve.process import ServerProcess

API_KEY = "test-key-not-a-secret"


def Server(args: list[str], log: Path, env: dict[str, str] | None = None, **kwargs) -> ServerProcess:
    """A real `python -m minimind.serve port=0 ARGS`, run from the checkout, offline."""
    return ServerProcess(args, log, env={"HF_HUB_OFFLINE": "1", **(env or {})}, cwd=REPO_ROOT, **kwargs)

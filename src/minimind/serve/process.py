"""A server in a subprocess, for scripts and tests: started on a free port, ready when returned.

    with ServerProcess(["ckpt=RUN_DIR", "temperature=0"], log="server.log") as server:
        OpenAI(base_url=server.url + "/v1", api_key="none").chat.completions.create(...)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

SERVING = re.compile(r"serving \S+ at (http://\S+?)/ ")  # the line `python -m minimind.serve` prints once bound


class ServerProcess:
    """`python -m minimind.serve port=0 ARGS` (or `command`), its output in `log`, until `stop()`."""

    def __init__(self, args: list[str], log: str | Path, env: dict[str, str] | None = None, timeout: float = 180,
                 command: list[str] | None = None, cwd: str | Path | None = None):
        self.log = Path(log)
        self._out = open(self.log, "w")
        command = command or [sys.executable, "-m", "minimind.serve"]
        self.proc = subprocess.Popen([*command, "port=0", *args], stdout=self._out, stderr=subprocess.STDOUT,
                                     cwd=cwd, env={**os.environ, **(env or {})})
        try:
            self.url = self._wait_until_serving(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_until_serving(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.output()}")
            found = SERVING.search(self.output())
            if found:
                try:
                    with urllib.request.urlopen(found.group(1) + "/health", timeout=5) as response:
                        if response.status == 200:
                            return found.group(1)
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.2)
        raise TimeoutError(f"the server did not start within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the server (Ctrl+C is SIGINT) and wait for it; killed if it does not end within `timeout`."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

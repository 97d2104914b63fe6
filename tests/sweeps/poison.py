"""A callback that makes a sweep job fail the way GPU jobs fail (imported by the jobs of
tests/sweeps/test_sweeps.py through PYTHONPATH).

    mode=cuda_error  raise a CUDA error and leave this process "broken", as a real one leaves
                     its CUDA context: any later training in the same process fails too
    mode=kill        the process is killed (SIGKILL: the kernel's out-of-memory killer)
    mode=none        train normally, unless this process was broken before
"""

import os
import signal

from lightning.pytorch import Callback

BROKEN = False


class Poison(Callback):
    def __init__(self, mode: str = "none"):
        self.mode = mode

    def on_train_start(self, trainer, pl_module):
        global BROKEN
        if BROKEN:
            raise RuntimeError("CUDA error: an illegal memory access was encountered (this process was broken "
                               "by an earlier job)")
        if self.mode == "cuda_error":
            BROKEN = True
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        if self.mode == "kill" and trainer.global_rank == 0:
            os.kill(os.getpid(), signal.SIGKILL)

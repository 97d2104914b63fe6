"""FSDP, really sharded over two CPU processes (tests/training/fsdp_cpu.py), against one process.

The gathered weights after a few steps equal those of a plain single-process run on the same
global batches, which holds only if the gradient norm is clipped over all shards (the root
module's `clip_grad_norm_`), weight decay still reaches the matrices after FSDP flattened them
into 1-D views, and activation checkpointing changes nothing but memory. Sample generation at
each validation and the final gathering must not hang (every rank takes part).
"""

import json
import subprocess
import sys

import lightning as L
import pytest
import torch

from compose_train import REPO_ROOT
from training.fsdp_cpu import (CONFIG, STEPS, WEIGHT_DECAY, Batches, Probe, global_batches, make_module,
                               trainer_kwargs)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory, tiny_tokenizer_dir):
    out = tmp_path_factory.mktemp("fsdp")
    proc = subprocess.run([sys.executable, "tests/training/fsdp_cpu.py", str(out), str(tiny_tokenizer_dir)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, json.loads((out / "probe.json").read_text())


@pytest.fixture(scope="module")
def reference():
    """The same steps in one plain process: (module, its probe)."""
    module, probe = make_module(), Probe()
    trainer = L.Trainer(accelerator="cpu", devices=1, callbacks=[probe], **trainer_kwargs())
    trainer.fit(module, datamodule=Batches(global_batches()))
    assert trainer.global_step == STEPS
    return module, probe


def test_sharded_training_equals_one_process(fsdp_run, reference):
    out, probe = fsdp_run
    module, reference_probe = reference
    assert probe["grad_norm"] == pytest.approx(reference_probe.grad_norm, rel=1e-5)  # over all shards
    assert probe["grad_norm"] > 10 * 0.05  # so clipping is at work in every step
    sharded = torch.load(out / "full_model.pt", weights_only=True)
    expected = module.model.state_dict()
    assert sharded.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(sharded[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)


def test_weight_decay_and_checkpointing_under_fsdp(fsdp_run):
    _, probe = fsdp_run
    matrices = sum(p.numel() for n, p in make_module().model.named_parameters() if p.ndim >= 2)
    gains = sum(p.numel() for n, p in make_module().model.named_parameters() if p.ndim < 2)
    assert probe["groups"] == [[WEIGHT_DECAY, matrices], [0.0, gains]]  # summed over both ranks' shards
    assert probe["wrapped"] == ["FullyShardedDataParallel"]  # each block its own shard unit
    assert probe["checkpointed"] == CONFIG.num_hidden_layers  # the strategy checkpoints each block ...
    assert probe["model_checkpoints_itself"] is False  # ... and the model does not do it a second time


def test_samples_are_generated_under_fsdp(fsdp_run):
    out, _ = fsdp_run
    samples = (out / "samples.md").read_text()
    assert samples.count("## step 2") == 1 and samples.count("## step 4") == 1  # rank zero alone writes

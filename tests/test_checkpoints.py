"""Writes that never leave a truncated file in place of a good one."""

import pytest
import torch

from minimind.checkpoints import atomic_torch_save


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot be saved")


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "weights.pth"
    atomic_torch_save({"w": torch.ones(3)}, path)
    with pytest.raises(RuntimeError, match="cannot be saved"):
        atomic_torch_save({"w": torch.zeros(3), "bad": Unpicklable()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["weights.pth"]


def test_a_successful_write_replaces_the_file(tmp_path):
    path = tmp_path / "weights.pth"
    atomic_torch_save({"w": torch.ones(3)}, path)
    atomic_torch_save({"w": torch.zeros(3)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.zeros(3))

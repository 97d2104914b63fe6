"""Writes that never leave a truncated file (or directory) in place of a good one."""

import os
import stat

import pytest
import torch

from minimind.errors import ToolError
from minimind.files import AtomicDir, atomic_torch_save, atomic_write_text, atomic_writer


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


def test_a_successful_write_replaces_the_file_with_a_normal_mode(tmp_path):
    path = tmp_path / "weights.pth"
    atomic_torch_save({"w": torch.ones(3)}, path)
    atomic_torch_save({"w": torch.zeros(3)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.zeros(3))
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # not mkstemp's private 0600


def test_text_and_streamed_writes_are_all_or_nothing(tmp_path):
    path = atomic_write_text(tmp_path / "summary.json", "{}\n")
    with pytest.raises(ValueError):
        with atomic_writer(path) as f:
            f.write("half a fi")
            raise ValueError("crash mid-write")
    assert path.read_text() == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_a_directory_appears_whole_or_not_at_all(tmp_path):
    out = tmp_path / "export"
    with pytest.raises(RuntimeError):
        with AtomicDir(out) as tmp:
            (tmp / "config.json").write_text("{}")
            raise RuntimeError("verification failed")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with AtomicDir(out) as tmp:
        (tmp / "config.json").write_text("{}")
    assert (out / "config.json").read_text() == "{}"
    with pytest.raises(ToolError, match="exists and is not empty: choose another out= or pass overwrite=true"):
        AtomicDir(out)
    with AtomicDir(out, overwrite=True) as tmp:
        (tmp / "other.json").write_text("[]")
    assert sorted(p.name for p in out.iterdir()) == ["other.json"]

"""Bad input at every entry point: one message that says what to change, exit status 1, no traceback.

Each case runs the real entry point (its Hydra app, parsing the command line as a shell would);
most run in this process to save a Python start each, and a few as real processes, which is
also where `HYDRA_FULL_ERROR=1` is checked to bring the traceback back.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys

import pytest
import torch

from commands import assert_clean_error, assert_clean_failure, run_main, run_module, run_train
from compose_train import REPO_ROOT, TRAIN_OVERRIDES

from minimind import evaluate, export, generate, inspect as inspect_tool, train


@pytest.fixture
def base(tiny_corpus, tiny_tokenizer_dir, tmp_path):
    return [*TRAIN_OVERRIDES, f"data.path={tiny_corpus}", f"data.tokenizer={tiny_tokenizer_dir}",
            f"hydra.run.dir={tmp_path / 'run'}"]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, trained_run):
    """Files that are not what they claim: text, truncated, tampered, foreign, empty."""
    run_dir, _ = trained_run
    folder = tmp_path_factory.mktemp("bad-files")
    last = run_dir / "checkpoints" / "last.ckpt"
    (folder / "notes.ckpt").write_text("these are my notes, not a checkpoint\n")
    (folder / "truncated.ckpt").write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    (folder / "empty.ckpt").write_bytes(b"")
    with open(folder / "tampered.pth", "wb") as f:
        pickle.dump({"w": torch.zeros(2), "run": os.system}, f)
    shutil.copy(run_dir / "pretrain_64.pth", folder / "weights.ckpt")  # upstream weights under a .ckpt name
    return folder


TRAIN_CASES = {
    "negative lr": (["optimizer.lr=-1"], ["optimizer.lr=-1 must be a positive number"]),
    "zero lr": (["optimizer.lr=0"], ["optimizer.lr=0 must be a positive number"]),
    "negative weight decay": (["optimizer.weight_decay=-0.1"], ["optimizer.weight_decay=-0.1 must be >= 0"]),
    "betas out of range": (["optimizer.betas=[0.9,1.5]"], ["optimizer.betas=[0.9, 1.5] must be two numbers in [0, 1)"]),
    "warm-up longer than the run": (["scheduler=cosine", "scheduler.warmup_steps=50"],
                                    ["scheduler.warmup_steps=50 is not shorter than the run (12 steps)"]),
    "min lr ratio": (["scheduler=cosine", "scheduler.min_lr_ratio=2"], ["scheduler.min_lr_ratio=2 must be in [0, 1]"]),
    "data.path empty": (["data.path="], ["data.path is not set", "data.path=default"]),
    "data.path null": (["data.path=null"], ["data.path is not set"]),
    "data.path removed": (["~data.path"], ["data.path is not set"]),
    "two lengths typed": (["tokens=4096"], ["tokens and trainer.max_steps were both given on the command line"]),
    "zero steps": (["trainer.max_steps=0", "tokens=null"], ["trainer.max_steps=0 must be a positive integer"]),
    "tokens not a number": (["tokens=lots", "trainer.max_steps=-1"], ["tokens=lots must be a positive whole number"]),
    "fp16 on a CPU": (["precision=fp16"], ["needs a CUDA GPU; on CPU use precision=bf16 or precision=fp32"]),
    "kv heads do not divide": (["model.num_key_value_heads=3"], ["num_key_value_heads=3"]),
    "seq_len too short": (["data.seq_len=1"], ["data.seq_len=1 must be an integer >= 2"]),
    "empty batch": (["data.batch_size=0"], ["data.batch_size=0 must be an integer >= 1"]),
    "negative clipping": (["trainer.gradient_clip_val=-1"], ["trainer.gradient_clip_val=-1 must be >= 0"]),
    "CPU devices": (["trainer.devices=-1"], ["trainer.devices=-1 does not work with trainer.accelerator=cpu"]),
    "model vocabulary too small": (["model.vocab_size=300"], ["the tokenizer has 400 tokens but the model only 300",
                                                              "set model.vocab_size=400"]),
    "missing tokenizer": (["data.tokenizer=/no/such/tokenizer"], ["is not a tokenizer directory"]),
    "missing corpus": (["data.path=/no/such/corpus.jsonl"], ["/no/such/corpus.jsonl"]),
    "missing hub dataset": (["data.path=hf:nobody/no-such-dataset"],  # offline (conftest): no network is tried
                            ["data.path='hf:nobody/no-such-dataset': cannot read split 'train' of the Hugging Face dataset",
                             "or give a local file"]),
    "resume without a run": (["ckpt_path=last"], ["ckpt_path=last but there is no"]),
    "resume from a missing file": (["ckpt_path=/no/such.ckpt"], ["ckpt_path=/no/such.ckpt does not exist"]),
}


@pytest.mark.parametrize("case", TRAIN_CASES)
def test_train_refuses_with_one_message(case, base, capsys, monkeypatch):
    args, fragments = TRAIN_CASES[case]
    assert_clean_failure(*run_main(train.main, [*base, *args], capsys, monkeypatch), *fragments)


def test_the_failed_runs_summary_records_the_message_not_the_wrapper_around_it(base, tmp_path, capsys, monkeypatch):
    """The data module refuses its path inside Hydra's `instantiate`: summary.json (and a sweep's log and report,
    which read it) records the DataError's message, not the InstantiationException wrapped around it."""
    assert_clean_failure(*run_main(train.main, [*base, "data.path=/no/such/corpus.jsonl"], capsys, monkeypatch))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["error"] == "minimind.data.errors.DataError: data.path='/no/such/corpus.jsonl': no such file or directory"


@pytest.mark.parametrize("name, fragments", [
    ("notes.ckpt", ["is not a checkpoint written by torch.save"]),
    ("truncated.ckpt", ["is truncated or corrupt"]),
    ("empty.ckpt", ["is empty (0 bytes)"]),
    ("tampered.pth", ["refusing to load", "could run arbitrary code"]),
    ("weights.ckpt", ["holds bare model weights", "not a training checkpoint"]),
])
def test_resume_refuses_files_that_are_not_training_checkpoints(name, fragments, base, bad_files, capsys,
                                                                monkeypatch):
    code, out, err = run_main(train.main, [*base, f"ckpt_path={bad_files / name}"], capsys, monkeypatch)
    assert_clean_failure(code, out, err, f"ckpt_path", *fragments)


def test_resume_refuses_a_checkpoint_of_another_model(base, trained_run, capsys, monkeypatch):
    run_dir, _ = trained_run
    code, out, err = run_main(train.main, [*base, "model.hidden_size=32", "model.num_attention_heads=2",
                                           "model.num_key_value_heads=1",
                                           f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"], capsys, monkeypatch)
    assert_clean_failure(code, out, err, "does not fit the chosen model config", "shape mismatches",
                         "a resumed run keeps the model it was started with")


def test_malformed_data_is_named_by_file_and_line(base, tmp_path, capsys, monkeypatch):
    corpus = tmp_path / "broken.jsonl"
    corpus.write_text('{"text": "one good line of text"}\n{"text": "cut sh\n')
    code, out, err = run_main(train.main, [*base, f"data.path={corpus}", "data.format=pretrain"], capsys,
                              monkeypatch)
    assert_clean_failure(code, out, err, f"{corpus}:2: malformed JSON", "data.on_bad_record=skip")


@pytest.mark.parametrize("tool, args, fragments", [
    (generate, ["ckpt=/no/such/run", "prompt=hi"], ["ckpt='/no/such/run' does not exist"]),
    (generate, ["ckpt=BAD/notes.ckpt", "prompt=hi"], ["is not a checkpoint written by torch.save"]),
    (generate, ["ckpt=BAD/tampered.pth", "prompt=hi"], ["refusing to load"]),
    (generate, ["ckpt=BAD/truncated.ckpt", "prompt=hi"], ["is truncated or corrupt"]),
    (generate, ["ckpt=RUN"], ['give prompt="..."']),
    (generate, ["ckpt=RUN", "prompt=hi", "dtype=float8"], ["dtype='float8' is unknown"]),
    (generate, ["ckpt=RUN", "prompt=hi", "device=tpu:0"], ["device='tpu:0'"]),
    (export, ["ckpt=RUN", "format=onnx", "out=OUT"], ["format='onnx': choose one of"]),
    (evaluate, ["ckpt=RUN", "split=test"], ["split='test' must be one of"]),
    (evaluate, ["ckpt=RUN", "data.path="], ["data.path is not set"]),
    (inspect_tool, ["ckpt=BAD/empty.ckpt", "out=OUT"], ["is empty (0 bytes)"]),
])
def test_tools_refuse_with_one_message(tool, args, fragments, trained_run, bad_files, tmp_path, capsys,
                                       monkeypatch):
    run_dir, _ = trained_run
    args = [a.replace("RUN", str(run_dir)).replace("BAD", str(bad_files)).replace("OUT", str(tmp_path / "out"))
            for a in args]
    assert_clean_failure(*run_main(tool.main, args, capsys, monkeypatch), *fragments)


def test_compare_says_what_it_expected(tmp_path):
    proc = run_module("minimind.compare", str(tmp_path), check=False)
    assert proc.returncode == 2
    assert_clean_error(proc, "no run dirs found under")


def test_benchmark_scripts_print_one_message_too(tmp_path):
    missing = tmp_path / "none.jsonl"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "data_throughput.py"), "--path", str(missing)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert_clean_error(proc, f"data.path='{missing}': no such file or directory")


def test_a_real_process_exits_1_with_the_message_and_full_errors_bring_the_traceback_back(base):
    proc = run_train(*base, "optimizer.lr=-1", check=False, timeout=300)
    assert proc.returncode == 1
    message = assert_clean_error(proc, "cannot start training:", "optimizer.lr=-1 must be a positive number")
    assert message.count("error: ") == 1
    full = run_train(*base, "optimizer.lr=-1", check=False, timeout=300, env={"HYDRA_FULL_ERROR": "1"})
    assert full.returncode == 1 and "Traceback" in full.stderr and "ConfigurationError" in full.stderr

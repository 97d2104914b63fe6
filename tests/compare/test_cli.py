"""`python -m minimind.compare` as a user runs it."""

import os
import subprocess
import sys

from minimind.compare.__main__ import main


def run_cli(*args, columns=250):
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "minimind.compare", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_prints_the_table_and_writes_the_report(sweep_dir, tmp_path):
    done = run_cli(sweep_dir, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Sweep comparison" in out and "hidden_size=256" in out and "num_attention_heads=3" in out
    assert out.index("hidden_size=256") < out.index("hidden_size=128") < out.index("num_attention_heads=3")
    assert "3.6927" in out and "interrupted (no summary)" in out and "ConfigurationError" in out
    assert f"report: {tmp_path / 'out' / 'report.md'}" in out
    assert (tmp_path / "out" / "report.md").is_file() and (tmp_path / "out" / "val_loss_vs_tokens.png").is_file()


def test_cli_empty_dir_exits_non_zero_with_the_reason(tmp_path):
    (tmp_path / "empty").mkdir()
    done = run_cli(tmp_path / "empty")
    assert done.returncode == 2
    assert "error: no run dirs found under" in done.stderr and "summary.json or config.yaml" in done.stderr
    assert done.stdout == ""


def test_missing_dir_and_unknown_sort_key(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    try:
        main([str(tmp_path), "--sort", "nonsense"])
    except SystemExit as exit:
        assert exit.code == 2
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err

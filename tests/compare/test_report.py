"""compare(): the table (order, values, parameter split), the PNGs and report.md."""

import csv
import json
import shutil

import numpy as np
import pytest
from compare_fixtures import FAILED_ERROR, STEPS, TOKENS_PER_STEP, write_summary
from matplotlib import image as mpimg
from omegaconf import OmegaConf
from PIL import Image
from rich.console import Console

from minimind.compare import compare
from minimind.compare.table import fmt_count, to_rich
from minimind.model import MiniMindConfig
from minimind.model.params import parameter_breakdown

PNGS = ["val_loss_vs_tokens.png", "train_loss_vs_tokens.png", "val_loss_vs_params.png", "throughput.png",
        "peak_memory.png"]


@pytest.fixture(scope="module")
def result(sweep_dir, tmp_path_factory):
    """compare() on a copy of the sweep, writing into the sweep dir itself (the default)."""
    root = tmp_path_factory.mktemp("compared") / "sweep"
    shutil.copytree(sweep_dir, root)
    return compare(root)


def table_rows(report: str) -> list[list[str]]:
    lines = report.split("## Results")[1].split("\n\n")[1].splitlines()
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def breakdown(run_dir):
    model = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml").model)
    return parameter_breakdown(MiniMindConfig.from_dict(model))


def test_table_is_sorted_by_val_loss_with_incomplete_then_failed_last(result):
    assert [r.name for r in result.runs] == ["1", "0", "3", "2"]
    rows = table_rows(result.report.read_text())
    assert [row[0] for row in rows] == ["**1**", "0", "3", "2"]  # the best run in bold


def test_table_shows_each_value(result):
    header = result.report.read_text().split("## Results")[1].split("\n\n")[1].splitlines()[0]
    columns = [c.strip() for c in header.strip("|").split(" | ")]
    assert columns == ["run", "overrides", "params", "embedding", "attention", "MLP", "tokens", "FLOPs",
                       "train loss", "val loss", "val bpb", "tokens/s", "MFU", "peak MB", "status"]
    rows = {row[0].strip("*"): dict(zip(columns, row)) for row in table_rows(result.report.read_text())}
    summary = json.loads((result.root / "1" / "summary.json").read_text())
    best = rows["1"]
    assert best["overrides"] == "hidden_size=256"
    assert best["val loss"] == f"**{summary['val_loss']:.4f}**"
    assert best["train loss"] == f"{summary['train_loss']:.4f}" and best["val bpb"] == f"{summary['val_bpb']:.4f}"
    assert best["tokens"] == fmt_count(STEPS * TOKENS_PER_STEP) == "2.003M"
    assert best["tokens/s"] == "20,000" and best["peak MB"] == "1,400"
    assert best["MFU"] == "—" and best["status"] == "completed"
    assert rows["3"]["status"] == "interrupted (no summary)" and rows["3"]["tokens"] == "1.024M"
    failed = rows["2"]
    assert failed["overrides"] == "num_attention_heads=3"
    assert failed["status"].startswith("failed: ConfigurationError: invalid MiniMindConfig: num_attention_")
    assert all(failed[c] == "—" for c in ("params", "embedding", "val loss", "tokens/s"))


def test_param_split_equals_parameter_breakdown(result):
    rows = {row[0].strip("*"): row for row in table_rows(result.report.read_text())}
    with open(result.table_csv) as handle:
        exact = {row["run"]: row for row in csv.DictReader(handle)}
    for name in ("0", "1", "3"):
        parts = breakdown(result.root / name)
        assert rows[name][2:6] == [fmt_count(parts[k]) for k in ("total", "embedding", "attention", "mlp")]
        assert [int(exact[name][k]) for k in ("params", "embedding", "attention", "mlp", "lm_head")] == \
            [parts[k] for k in ("total", "embedding", "attention", "mlp", "lm_head")]
    assert exact["2"]["params"] == "" and exact["2"]["error"] == FAILED_ERROR


def test_pngs_are_valid_images_with_content(result):
    for name in PNGS:
        path = result.out_dir / name
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000, name
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.width >= 1000 and image.height >= 300, (name, image.size)
        pixels = mpimg.imread(path)
        assert pixels.ndim == 3 and np.std(pixels[..., :3]) > 0.05, name  # not a blank canvas
    assert all(p.path is not None for p in result.plots)


def test_report_has_title_table_plots_failures_and_command(result):
    text = result.report.read_text()
    assert text.startswith("# Sweep comparison: ")
    assert "**How to read this:**" in text
    assert "| hidden_size=256 |" in text and "| hidden_size=128 |" in text
    assert "Launched as: `python train.py -m experiment=quickstart logger=csv model.hidden_size=128,256,192" in text
    assert "Shared by all runs: `experiment=quickstart`, `logger=csv`" in text
    for name in PNGS:
        assert f"]({name})" in text and (result.report.parent / name).is_file()
    failures = text.split("## Failures")[1].split("\n## ")[0]
    assert "**2** (`experiment=quickstart logger=csv model.num_attention_heads=3`): failed" in failures
    assert "num_attention_heads=4 is not divisible by num_key_value_heads=3" in failures
    assert "**3**" in failures and "interrupted (no summary); reached 1,024,000 tokens" in failures
    assert f"python -m minimind.compare {result.root}\n" in text
    assert "from metrics.csv (not in summary.json)" in text  # the killed run's gap is noted


def test_out_dir_and_sort_go_into_the_regenerate_command(sweep_dir, tmp_path):
    result = compare(sweep_dir, out_dir=tmp_path / "out", sort="tokens_per_sec")
    assert [r.name for r in result.runs][:2] == ["0", "1"]  # 40k tokens/s before 20k
    text = (tmp_path / "out" / "report.md").read_text()
    assert f"python -m minimind.compare {sweep_dir} --out {tmp_path / 'out'} --sort tokens_per_sec" in text
    assert not (sweep_dir / "report.md").exists()


def test_only_failed_runs_still_give_a_report_without_plots(tmp_path):
    for num in range(2):
        (tmp_path / str(num)).mkdir()
        write_summary(tmp_path / str(num), status="failed", overrides=[f"model.hidden_size={num}"],
                      error="ValueError: boom")
    result = compare(tmp_path)
    assert all(p.path is None and p.note for p in result.plots)
    assert not list(tmp_path.glob("*.png"))
    text = result.report.read_text()
    assert "_Not drawn: no run logged a validation loss" in text and text.count("ValueError: boom") == 4


def test_single_points_are_drawn(tmp_path):
    run = tmp_path / "only"
    run.mkdir()
    (run / "metrics.csv").write_text("epoch,step,train/loss,train/tokens,val/loss\n0,0,8.0,512.0,\n0,0,,,7.5\n")
    write_summary(run, status="completed", params=1000, tokens_seen=512, steps=1, train_loss=8.0, val_loss=7.5,
                  tokens_per_sec=100.0, peak_memory_mb=10.0, overrides=[])
    result = compare(run)
    drawn = {p.filename for p in result.plots if p.path is not None}
    assert drawn == {"val_loss_vs_tokens.png", "train_loss_vs_tokens.png", "throughput.png", "peak_memory.png",
                     "val_loss_vs_params.png"}
    assert result.runs[0].label == "only"


def test_terminal_table_drops_the_split_first_when_narrow(result):
    wide = Console(width=250, record=True)
    wide.print(to_rich(result.runs, console=wide))
    narrow = Console(width=120, record=True)
    narrow.print(to_rich(result.runs, console=narrow))
    assert "embedding" in wide.export_text() and "left out" not in wide.export_text()
    text = narrow.export_text()
    assert "embedding" not in text.split("left out")[0] and "val loss" in text
    assert max(len(line) for line in text.splitlines()) <= 120

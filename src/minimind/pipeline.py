"""The whole MiniMind pipeline in one command: pretrain -> SFT -> DPO -> GRPO, each stage a normal run.

    python -m minimind.pipeline experiment=quickstart out=outputs/pipeline      # all stages, CPU size
    python -m minimind.pipeline experiment=quickstart out=outputs/pipeline stages=[pretrain,sft]
    python -m minimind.pipeline experiment=quickstart out=DIR trainer.max_steps=20 logger=csv   # for every stage
    python -m minimind.pipeline out=DIR experiment=null stages=[sft,dpo] init_from=MiniMind2-small.pth \\
        model=small data.tokenizer=minimind/model sft:data.path=sft.jsonl dpo:data.path=dpo.jsonl
    minimind-pipeline ...                                                        # the same, once installed

Arguments other than the pipeline's own (out, stages, init_from, prompts, max_new_tokens, and
`experiment`, the base name of the stages' experiment files: quickstart by default, null for none)
are train.py overrides for every stage; `STAGE:key=value` applies to one stage only.

Each stage is `python -m minimind.train` in its own run dir `<out>/<n>-<stage>` (so resume, wandb,
summary.json, metrics.csv and `python -m minimind.compare` work as for any run), started from the
previous stage's weights (`init_from=`). Stage S of experiment E runs `experiment=E_S` when that file
exists (e.g. quickstart_pretrain, quickstart_sft), else `experiment=E stage=S` (pretraining: `experiment=E`).

Rerunning the same command continues where it stopped: a finished stage is not rerun, an
interrupted one resumes from its last checkpoint (`ckpt_path=last`), exactly. At the end
`<out>/report.md` shows each stage's metrics and cost (time, tokens, peak memory), a figure of every
stage's training curve, and the same held-out questions answered after every stage, side by side.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from minimind.cli import hydra_app
from minimind.errors import ConfigurationError, ToolError
from minimind.files import atomic_write_text
from minimind.paths import CONF_DIR
from minimind.runs import LAST_CHECKPOINT, METRICS, command_line_overrides, parse_override, read_summary

STAGES = ("pretrain", "sft", "dpo", "grpo", "lora", "distill")
ANSWERS = "pipeline_answers.json"


@dataclass
class StageRun:
    stage: str
    run_dir: Path
    command: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)
    skipped: bool = False  # finished by an earlier invocation


def stage_experiment(experiment: str | None, stage: str) -> list[str]:
    """The overrides that pick a stage's experiment file (`<experiment>_<stage>` if it exists)."""
    if not experiment:
        return [f"stage={stage}"]
    if (CONF_DIR / "experiment" / f"{experiment}_{stage}.yaml").is_file():
        return [f"experiment={experiment}_{stage}"]
    return [f"experiment={experiment}"] if stage == "pretrain" else [f"experiment={experiment}", f"stage={stage}"]


PIPELINE_KEYS = {"out", "stages", "init_from", "prompts", "max_new_tokens"}
FLAGS_WITH_VALUE = {"--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp", "--cfg", "-c",
                    "--package", "-p", "--info", "-i"}
# What the stages get from the command line (set by `main` before Hydra runs): `experiment` (the base name,
# a config group of train.py, so not an override of the pipeline's own config), "*" for every stage, else by stage.
PASSED: dict[str, Any] = {"experiment": "quickstart", "*": []}


def split_arguments(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """(the pipeline's own arguments, what goes to the stages: experiment, overrides by stage ("*" = every stage))."""
    own, passed = [], {"experiment": "quickstart", "*": []}
    items = iter(argv)
    for arg in items:
        if arg.startswith("-"):
            own.append(arg)
            if arg in FLAGS_WITH_VALUE:
                value = next(items, None)
                if value is not None:
                    own.append(value)
            continue
        head, sep, rest = arg.partition(":")
        if sep and head in STAGES and "=" in rest and "=" not in head:
            passed.setdefault(head, []).append(rest)
            continue
        key, value = parse_override(arg)
        if key == "experiment":
            passed["experiment"] = None if value in ("null", "none", "") else value
        else:
            (own if key in PIPELINE_KEYS or key.startswith("hydra.") else passed["*"]).append(arg)
    return own, passed


def plan(cfg: DictConfig) -> list[StageRun]:
    """The stage runs in order, each with the command that (re)starts it."""
    stages = list(cfg.stages)
    unknown = [s for s in stages if s not in STAGES]
    if not stages or unknown:
        raise ConfigurationError(f"stages={stages}: choose an ordered list from {list(STAGES)}")
    out = Path(cfg.out).expanduser().resolve()
    runs, previous = [], cfg.get("init_from")
    for number, stage in enumerate(stages, 1):
        run_dir = out / f"{number}-{stage}"
        args = [*stage_experiment(PASSED["experiment"], stage), *PASSED["*"], *PASSED.get(stage, []),
                f"hydra.run.dir={run_dir}"]
        summary = read_summary(run_dir) or {}
        if summary.get("status") != "completed" and (run_dir / LAST_CHECKPOINT).is_file():
            args.append("ckpt_path=last")  # interrupted: resume exactly (the checkpoint holds the weights)
        elif previous is not None:
            args.append(f"init_from={previous}")
        runs.append(StageRun(stage, run_dir, [sys.executable, "-m", "minimind.train", *args], summary,
                             skipped=summary.get("status") == "completed"))
        previous = run_dir
    return runs


def _die_with_parent() -> None:
    """In the stage's process (Linux): end when the pipeline ends, however it ends, so that a killed
    pipeline never leaves a stage training on its own in the run dir the rerun will resume."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_stage(run: StageRun) -> None:
    print(f"\n=== stage {run.stage}: {' '.join(run.command[2:])}", flush=True)
    # its output streams to this terminal as it trains
    result = subprocess.run(run.command, preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    run.summary = read_summary(run.run_dir) or {}
    if result.returncode != 0 or run.summary.get("status") != "completed":
        raise ToolError(f"stage {run.stage} did not complete (exit {result.returncode}, "
                        f"status {run.summary.get('status')}); see {run.run_dir}. Fix what it reports and rerun "
                        "the same command: finished stages are kept, this one resumes")


def answer(run: StageRun, prompts: list[str], max_new_tokens: int) -> dict[str, str]:
    """The stage's model answering the held-out prompts greedily through the chat template (cached in its run dir)."""
    cached = run.run_dir / ANSWERS
    if cached.is_file():
        data = json.loads(cached.read_text())
        if data.get("prompts") == prompts and data.get("max_new_tokens") == max_new_tokens:
            return data["answers"]
    from minimind.checkpoints import load_checkpoint, resolve_tokenizer
    from minimind.generate import Sampling, chat

    loaded = load_checkpoint(run.run_dir)
    tokenizer = resolve_tokenizer(loaded)
    sampling = Sampling(max_new_tokens=max_new_tokens, temperature=0.0)
    answers = {p: chat(loaded.model, tokenizer, [p], sampling, stream=False)[-1]["content"] for p in prompts}
    atomic_write_text(cached, json.dumps({"prompts": prompts, "max_new_tokens": max_new_tokens,
                                          "answers": answers}, ensure_ascii=False, indent=2) + "\n")
    return answers


def final_metrics(run_dir: Path) -> dict[str, float]:
    """The last value of every validation metric the stage logged (its objective's own: loss, reward accuracy, ...)."""
    from minimind.compare.runs import read_metrics_csv

    path = run_dir / METRICS
    if not path.is_file():
        return {}
    columns = read_metrics_csv(path)
    return {k: points[max(points)] for k, points in columns.items() if k.startswith("val/") and points}


def _cell(value: Any, fmt: str = ".4g") -> str:
    return "" if value is None else format(value, fmt) if isinstance(value, (int, float)) else str(value)


def _md(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|") or "(nothing)"


def plot_curves(runs: list[StageRun], out: Path) -> Path | None:
    """One panel per stage: its training loss against steps (each stage's loss is its own objective's)."""
    from matplotlib.figure import Figure

    from minimind.compare.runs import read_metrics_csv

    curves = []
    for run in runs:
        path = run.run_dir / METRICS
        points = read_metrics_csv(path).get("train/loss", {}) if path.is_file() else {}
        if points:
            curves.append((run.stage, sorted(points.items())))
    if not curves:
        return None
    fig = Figure(figsize=(4 * len(curves), 3.2), layout="constrained")
    for i, (stage, points) in enumerate(curves):
        ax = fig.add_subplot(1, len(curves), i + 1)
        ax.plot([s for s, _ in points], [v for _, v in points], lw=1.2)
        ax.set_title(stage)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if i == 0:
            ax.set_ylabel("training loss (the stage's objective)")
    path = out / "stages.png"
    fig.savefig(path, dpi=120)
    return path


def write_report(cfg: DictConfig, runs: list[StageRun], out: Path) -> Path:
    lines = ["# Pipeline report", "", f"Stages: {' -> '.join(r.stage for r in runs)}; each is a run dir below.",
             "Regenerate (continues where it stopped): `python -m minimind.pipeline "
             + " ".join([f"experiment={PASSED['experiment']}", *command_line_overrides(), *PASSED["*"],
                         *(f"{s}:{o}" for s, items in PASSED.items() if s in STAGES for o in items)]) + "`", "",
             "| stage | run dir | status | steps | tokens | wall time | peak memory | final validation |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for run in runs:
        s, metrics = run.summary, final_metrics(run.run_dir)
        shown = ", ".join(f"{k.removeprefix('val/')} {_cell(v)}" for k, v in sorted(metrics.items())
                          if k not in ("val/tokens",))
        wall = s.get("wall_time_s")
        lines.append(f"| {run.stage} | `{run.run_dir.name}` | {s.get('status', 'not run')} | {_cell(s.get('steps'), 'd')} "
                     f"| {_cell(s.get('tokens_seen'), ',d')} | {_cell(wall / 60 if wall else None, '.1f')} min "
                     f"| {_cell(s.get('peak_memory_mb'), ',.0f')} MB | {shown} |")
    figure = plot_curves(runs, out)
    if figure is not None:
        lines += ["", f"![each stage's training loss]({figure.name})"]
    lines += ["", "## The same questions after every stage", "",
              "Greedy replies through the chat template (the pretrained model has never seen a chat: expect noise).",
              "", "| question | " + " | ".join(r.stage for r in runs) + " |", "|---|" + "---|" * len(runs)]
    for prompt in cfg.prompts:
        lines.append(f"| {_md(prompt)} | " + " | ".join(_md(r.answers.get(prompt, "")) for r in runs) + " |")
    return atomic_write_text(out / "report.md", "\n".join(lines) + "\n")


def main() -> None:
    """Split the command line: the pipeline's own settings go to its Hydra app, the rest to the stages."""
    own, passed = split_arguments(sys.argv[1:])
    PASSED.clear()
    PASSED.update(passed)
    sys.argv = [sys.argv[0], *own]
    run_pipeline()


@hydra_app("pipeline")
def run_pipeline(cfg: DictConfig) -> None:
    runs = plan(cfg)
    out = Path(cfg.out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    prompts = list(cfg.prompts)
    for run in runs:
        if run.skipped:
            print(f"=== stage {run.stage}: completed earlier in {run.run_dir}; not rerun", flush=True)
        else:
            run_stage(run)
        run.answers = answer(run, prompts, cfg.max_new_tokens)
    report = write_report(cfg, runs, out)
    print(f"\npipeline finished: {report}")


if __name__ == "__main__":
    main()

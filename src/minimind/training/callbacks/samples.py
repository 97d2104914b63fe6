"""Generate text from fixed prompts after each validation, so progress can be read, not only plotted.

Samples are printed, appended to `<run dir>/samples.md`, and logged to wandb as a table
(one row per prompt and step) when a WandbLogger is active. Greedy decoding keeps the
samples of two runs or two steps directly comparable. Rank zero generates and writes; under
FSDP every rank first takes part in gathering the model's shards (`full_model`).

A stage whose validation itself produces replies (reinforcement learning: held-out prompts answered
and scored) hands them over through `Objective.validation_samples()`; rank zero's are shown instead
of the fixed prompts' completions, as a table with their rewards.
"""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import Callback
from lightning.pytorch.loggers import WandbLogger

from minimind.training.distributed import full_model


class SampleGenerationCallback(Callback):
    def __init__(self, prompts: list[str], max_new_tokens: int = 48, output_file: str | None = None,
                 print_samples: bool = True, chat: bool = False):
        """chat: the prompts are user turns, rendered with the tokenizer's chat template (SFT and later
        stages); otherwise raw text to continue (pretraining)."""
        self.prompts = list(prompts)
        self.chat = chat
        self.max_new_tokens = max_new_tokens
        self.output_file = output_file
        self.print_samples = print_samples
        self.history: list[dict] = []  # {"step", "prompt", "completion", and any scores}

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        tokenizer = getattr(trainer.datamodule, "tokenizer", None) if trainer.datamodule is not None else None
        if trainer.sanity_checking or tokenizer is None:
            return
        step = trainer.global_step
        scored = pl_module.objective.validation_samples()  # None, or this rank's scored replies
        if scored is not None:
            if not trainer.is_global_zero or not scored:
                return
            rows = [{"step": step, **r} for r in scored]
        elif self.prompts:
            model = full_model(trainer, pl_module, device=pl_module.device)  # every rank: FSDP gathers its shards
            if model is None:  # not rank zero
                return
            rows = [{"step": step, "prompt": p, "completion": self.complete(model, tokenizer, p)} for p in self.prompts]
        else:
            return
        self.history.extend(rows)
        scores = [k for k in rows[0] if k not in ("step", "prompt", "completion")]
        if self.print_samples:
            print("\n".join(f"[step {step}] {r['prompt']!r} -> {r['completion']!r}"
                            + "".join(f" {k}={r[k]:.3g}" for k in scores) for r in rows), flush=True)
        if self.output_file:
            with Path(self.output_file).open("a", encoding="utf-8") as f:
                f.write(f"## step {step}\n\n")
                if scores or self.chat:  # a reply is a turn of its own: a table row beside its question
                    f.write(markdown_table(rows, ["prompt", "completion", *scores]))
                else:  # a continuation reads on from its prompt
                    f.writelines(f"- **{r['prompt']}**{r['completion']}\n" for r in rows)
                f.write("\n")
        columns = list(dict.fromkeys(k for r in self.history for k in r))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table("samples", columns=columns, data=[[r.get(c) for c in columns] for r in self.history],
                                 step=step)

    def complete(self, model, tokenizer, prompt: str) -> str:
        from minimind.generate import Sampling, chat, complete

        sampling = Sampling(max_new_tokens=self.max_new_tokens, temperature=0.0)
        was_training = model.training
        model.eval()
        try:
            if self.chat:
                return chat(model, tokenizer, [prompt], sampling, stream=False)[-1]["content"]
            return complete(model, tokenizer, prompt, sampling, stream=False)
        finally:
            model.train(was_training)


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """Rows as a Markdown table; text cells on one line (newlines shown as ⏎, pipes escaped), numbers to 3 digits."""
    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        return str(value).replace("|", "\\|").replace("\n", "⏎")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"

"""Generate text from fixed prompts after each validation, so progress can be read, not only plotted.

Samples are printed, appended to `<run dir>/samples.md`, and logged to wandb as a table
(one row per prompt and step) when a WandbLogger is active. Greedy decoding keeps the
samples of two runs or two steps directly comparable. Rank zero generates and writes; under
FSDP every rank first takes part in gathering the model's shards (`full_model`).
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
        self.history: list[tuple[int, str, str]] = []  # (step, prompt, completion)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        tokenizer = getattr(trainer.datamodule, "tokenizer", None) if trainer.datamodule is not None else None
        if trainer.sanity_checking or tokenizer is None or not self.prompts:
            return
        model = full_model(trainer, pl_module, device=pl_module.device)  # every rank: FSDP gathers its shards
        if model is None:  # not rank zero
            return
        rows = [(trainer.global_step, p, self.complete(model, tokenizer, p)) for p in self.prompts]
        self.history.extend(rows)
        text = "\n".join(f"[step {s}] {p!r} -> {c!r}" for s, p, c in rows)
        if self.print_samples:
            print(text, flush=True)
        if self.output_file:
            with Path(self.output_file).open("a", encoding="utf-8") as f:
                f.write(f"## step {trainer.global_step}\n\n")
                f.writelines(f"- **{p}**{c}\n" for _, p, c in rows)
                f.write("\n")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table("samples", columns=["step", "prompt", "completion"],
                                 data=[list(r) for r in self.history], step=trainer.global_step)

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

"""Generate text or chat with a trained MiniMind, tokens streamed as they are produced.

    python -m minimind.generate ckpt=outputs/runs/DATE/TIME/checkpoints/last.ckpt prompt="The Python"
    python -m minimind.generate ckpt=RUN_DIR prompt="A list is" temperature=0 max_new_tokens=64
    python -m minimind.generate ckpt=RUN_DIR prompt="A list is" temperature=0 use_cache=false  # same text, slower
    python -m minimind.generate ckpt=full_sft_512.pth model=small chat=true   # one user turn per stdin line
    python -m minimind.generate ckpt=exported_hf_dir prompt="..." top_k=20 top_p=0.9 seed=1

`ckpt=` is a Lightning `.ckpt`, a training run dir, an upstream `.pth` (shape from
`model=PRESET model.<field>=...`) or a Hugging Face directory; see `minimind.checkpoints`.
`temperature=0` decodes greedily (deterministic). Prompt mode continues raw text and stops
at `<|endoftext|>`; chat mode renders the whole history with the tokenizer's chat template
(`add_generation_prompt=True`) before each reply and stops at `<|im_end|>`. In chat mode a
line `/reset` starts a new conversation.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

import torch
from omegaconf import DictConfig
from transformers import PreTrainedTokenizerFast, TextStreamer

from minimind.checkpoints import load_checkpoint, resolve_tokenizer
from minimind.cli import command_line_model_config, describe, hydra_app, pick_device, pick_dtype
from minimind.errors import ToolError
from minimind.model import MiniMindForCausalLM


@dataclass
class Sampling:
    """How to pick each next token. temperature <= 0: greedy (argmax), the other knobs unused."""

    max_new_tokens: int = 256
    temperature: float = 0.85
    top_k: int = 50  # keep the k most likely tokens (0: all)
    top_p: float = 0.85  # then the smallest set with this much probability (1: all)
    repetition_penalty: float = 1.0  # > 1 discourages tokens already in the context
    seed: int | None = 42
    use_cache: bool = True

    def generate_kwargs(self) -> dict:
        generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None
        return dict(max_new_tokens=self.max_new_tokens, do_sample=self.temperature > 0, temperature=self.temperature,
                    top_k=self.top_k, top_p=self.top_p, repetition_penalty=self.repetition_penalty,
                    use_cache=self.use_cache, generator=generator)


class Streamer(TextStreamer):
    """`transformers.TextStreamer` that writes to any text stream (stdout by default), flushing each piece."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast, out: TextIO | None = None):
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.out = out

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        out = self.out or sys.stdout
        out.write(text + ("\n" if stream_end else ""))
        out.flush()


def generate_ids(model: MiniMindForCausalLM, ids: list[int], eos: int, sampling: Sampling,
                 streamer: Any = None) -> list[int]:
    """Continue the token ids `ids` with `sampling` until `eos` (kept, last) or max_new_tokens; the new ids.

    `streamer` (Hugging Face's `put`/`end` interface) sees the prompt, then each new token."""
    device = next(model.parameters()).device
    kwargs = sampling.generate_kwargs()  # a seed drives its own generator: the global RNG is left alone
    if kwargs["generator"] is not None and device.type != "cpu":
        kwargs["generator"] = torch.Generator(device).manual_seed(sampling.seed)
    out = model.generate(torch.tensor([ids], device=device), eos_token_id=eos, streamer=streamer, **kwargs)
    new = out[0, len(ids):].tolist()
    return new[: new.index(eos) + 1] if eos in new else new


def complete(model: MiniMindForCausalLM, tokenizer: PreTrainedTokenizerFast, prompt: str,
             sampling: Sampling | None = None, out: TextIO | None = None, stream: bool = True) -> str:
    """Continue `prompt` (raw text, no template) until `<|endoftext|>` or max_new_tokens; returns the continuation.

    With `stream`, the prompt and then each decoded piece are written to `out` (stdout) as produced."""
    sampling = sampling or Sampling()
    ids = tokenizer.encode(prompt, add_special_tokens=False) or [tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    ids = ids[-max(1, model.config.max_position_embeddings - sampling.max_new_tokens):]
    streamer = None
    if stream:
        (out or sys.stdout).write(prompt)
        streamer = Streamer(tokenizer, out)
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return tokenizer.decode(generate_ids(model, ids, eos, sampling, streamer), skip_special_tokens=True)


def render_chat(tokenizer: PreTrainedTokenizerFast, messages: list[dict[str, str]], **template_kwargs: Any
                ) -> list[int]:
    """The token ids of `messages` rendered with the tokenizer's chat template, the assistant's turn opened.

    `template_kwargs` are the template's own variables (e.g. `open_thinking` in minimind-3's)."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **template_kwargs)
    return tokenizer.encode(text, add_special_tokens=False)


def chat_ids(tokenizer: PreTrainedTokenizerFast, messages: list[dict[str, str]], budget: int) -> list[int]:
    """The history rendered with the chat template (assistant turn opened), oldest turns dropped to fit `budget`."""
    messages = list(messages)
    while True:
        ids = render_chat(tokenizer, messages)
        first = 1 if messages and messages[0]["role"] == "system" else 0
        if len(ids) <= budget or len(messages) - first <= 1:
            return ids[-budget:]
        del messages[first: first + 2]  # the oldest user/assistant exchange


def chat(model: MiniMindForCausalLM, tokenizer: PreTrainedTokenizerFast, turns: Iterable[str],
         sampling: Sampling | None = None, system: str | None = None, out: TextIO | None = None,
         stream: bool = True, show_prompt: bool = False) -> list[dict[str, str]]:
    """A multi-turn conversation: each item of `turns` is a user message; returns the message history.

    Before every reply the whole history goes through `tokenizer.apply_chat_template(...,
    add_generation_prompt=True)`; the reply ends at `<|im_end|>`. A turn `/reset` clears the history."""
    sampling = sampling or Sampling()
    out_stream = out or sys.stdout
    start = [{"role": "system", "content": system}] if system else []
    messages = list(start)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    budget = max(1, model.config.max_position_embeddings - sampling.max_new_tokens)
    for line in turns:
        line = line.strip()
        if not line:
            continue
        if line == "/reset":
            messages = list(start)
            continue
        messages.append({"role": "user", "content": line})
        ids = chat_ids(tokenizer, messages, budget)
        if stream:
            out_stream.write(f"user: {line}\n" if show_prompt else "")
            out_stream.write("assistant: ")
        streamer = Streamer(tokenizer, out) if stream else None
        reply = tokenizer.decode(generate_ids(model, ids, eos, sampling, streamer), skip_special_tokens=True).strip()
        messages.append({"role": "assistant", "content": reply})
    return messages


def _stdin_turns(prompt: str | None) -> Iterable[str]:
    if prompt:
        yield prompt
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("user> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            return
        yield line


@hydra_app("generate")
def main(cfg: DictConfig) -> None:
    device = pick_device(cfg.device)
    loaded = load_checkpoint(cfg.ckpt, command_line_model_config(cfg), dtype=pick_dtype(cfg.dtype, device),
                             device=device)
    tokenizer = resolve_tokenizer(loaded, cfg.tokenizer)
    print(describe(loaded), file=sys.stderr, flush=True)
    sampling = Sampling(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_k=cfg.top_k,
                        top_p=cfg.top_p, repetition_penalty=cfg.repetition_penalty, seed=cfg.seed,
                        use_cache=cfg.use_cache)
    if cfg.chat:
        chat(loaded.model, tokenizer, _stdin_turns(cfg.prompt), sampling, system=cfg.system,
             show_prompt=not sys.stdin.isatty())
    else:
        if cfg.prompt is None:
            raise ToolError('give prompt="..." (or chat=true to read turns from stdin)')
        complete(loaded.model, tokenizer, cfg.prompt, sampling)


if __name__ == "__main__":
    main()

"""Rewards for reinforcement learning (`stage=grpo`): rule rewards and reward models, summed with weights.

A reward scores completions: `reward(completions) -> one float per completion`. The stage's config
names its rewards, each built with Hydra's `_target_`, and sums them with their `weight`:

    stage.objective.rewards:
      format: {_target_: minimind.training.rewards.Format}
      length: {_target_: minimind.training.rewards.Length, target: 24, weight: 0.5}
      rm: {_target_: minimind.training.rewards.RewardModel, path: /models/my-reward-model}

Each is logged on its own as `train/reward/<name>` (and `val/reward/<name>`). Any callable taking a
list of `Completion`s works (a `weight` attribute, if it has one, scales it; otherwise 1); one that
holds a model may define `prepare()` (load it, before training) and `to(device, dtype)`.

Built in, with upstream MiniMind's rule rewards among them:

* `Format`: 1 when the reply closes properly (`<|im_end|>` within the length limit) and says something, else 0;
* `Length`: how close the reply's length is to a target, 1 at the target falling to 0 at twice (or none) of it;
* `AnswerMatch`: the reply against the record's `gt` (exactly, or every expected value contained in it);
* `RepetitionPenalty`: upstream's `rep_penalty`, minus the share of repeated word 3-grams (at most `cap`);
* `RewardModel`: any Hugging Face sequence-classification model directory (`AutoModelForSequenceClassification`,
  never remote code), scoring the conversation with the reply; upstream uses a 1.8B reward model, any
  small one (or one of your own) fits here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from minimind.errors import ConfigurationError

THINK_END = "</think>"


@dataclass(frozen=True)
class Completion:
    """One sampled reply, with what rewards judge it by."""

    messages: list[dict[str, Any]]  # the conversation it answers
    text: str  # the reply, decoded, special tokens left out
    tokens: int  # its length in tokens, the closing <|im_end|> left out
    finished: bool  # it closed with <|im_end|> within max_gen_len (else it was cut off there)
    answers: list[str] = field(default_factory=list)  # the record's `gt` values ([] when it has none)

    @property
    def answer(self) -> str:
        """The reply without its thinking: what follows `</think>`, when there is one."""
        return self.text.split(THINK_END, 1)[1].strip() if THINK_END in self.text else self.text.strip()


class Reward:
    """Base of the built-in rewards: a weight, and nothing to load."""

    def __init__(self, weight: float = 1.0):
        self.weight = float(weight)

    def __call__(self, completions: Sequence[Completion]) -> list[float]:
        raise NotImplementedError


class Format(Reward):
    """1 when the reply closed with `<|im_end|>` within the length limit and is not empty, else 0."""

    def __call__(self, completions: Sequence[Completion]) -> list[float]:
        return [float(c.finished and bool(c.answer)) for c in completions]


class Length(Reward):
    """max(0, 1 - |length - target| / target): 1 for a reply of `target` tokens (or characters, with
    `unit: chars`), falling linearly to 0 for an empty reply or one twice as long. A reply cut off at
    max_gen_len counts at the length it reached."""

    def __init__(self, target: int, unit: str = "tokens", weight: float = 1.0):
        super().__init__(weight)
        if not isinstance(target, int) or target < 1:
            raise ConfigurationError(f"Length reward: target={target} must be a positive number of {unit}")
        if unit not in ("tokens", "chars"):
            raise ConfigurationError(f"Length reward: unit={unit!r} must be tokens or chars")
        self.target, self.unit = target, unit

    def __call__(self, completions: Sequence[Completion]) -> list[float]:
        lengths = [c.tokens if self.unit == "tokens" else len(c.answer) for c in completions]
        return [max(0.0, 1.0 - abs(n - self.target) / self.target) for n in lengths]


def _normalise(text: str) -> str:
    return " ".join(text.casefold().split()).strip(" .!")


NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def _contains(text: str, expected: str) -> bool:
    """`expected` in `text`, ignoring case and spacing; a number also matches the same number written otherwise."""
    if _normalise(expected) and _normalise(expected) in _normalise(text):
        return True
    value = expected.strip().replace(",", "")
    if NUMBER.fullmatch(value):
        return any(abs(float(value) - float(n)) < 1e-6 for n in NUMBER.findall(text.replace(",", "")))
    return False


class AnswerMatch(Reward):
    """The reply against the record's expected answer (`gt`); records without one score 0.

    mode `exact`: 1 when the answer (after `</think>`, if any) equals one of the expected values,
    ignoring case, spacing and a final full stop. mode `contains`: the share of the expected values
    found in it (a number also matches when written differently, as upstream's agent stage checks)."""

    def __init__(self, mode: str = "exact", weight: float = 1.0):
        super().__init__(weight)
        if mode not in ("exact", "contains"):
            raise ConfigurationError(f"AnswerMatch reward: mode={mode!r} must be exact or contains")
        self.mode = mode

    def __call__(self, completions: Sequence[Completion]) -> list[float]:
        scores = []
        for c in completions:
            if not c.answers:
                scores.append(0.0)
            elif self.mode == "exact":
                scores.append(float(_normalise(c.answer) in {_normalise(a) for a in c.answers}))
            else:
                scores.append(sum(_contains(c.answer, a) for a in c.answers) / len(c.answers))
        return scores


def repeated_ngram_share(text: str, n: int = 3, cap: float = 0.5) -> float:
    """Upstream's `rep_penalty`: over the word n-grams of `text` (punctuation marks count as words),
    min(cap, 2 * cap * repeated / all); 0 for text shorter than n words."""
    words = re.findall(r"\w+|[^\w\s]", text.lower())
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return min(cap, (len(grams) - len(set(grams))) * cap * 2 / len(grams)) if grams else 0.0


class RepetitionPenalty(Reward):
    """Minus upstream's repetition share of the answer: 0 for no repeated word 3-gram, down to -cap."""

    def __init__(self, n: int = 3, cap: float = 0.5, weight: float = 1.0):
        super().__init__(weight)
        self.n, self.cap = n, cap

    def __call__(self, completions: Sequence[Completion]) -> list[float]:
        return [0.0 - repeated_ngram_share(c.answer, self.n, self.cap) for c in completions]


class RewardModel(Reward):
    """A Hugging Face sequence-classification model as a reward: it reads the conversation with the reply
    (through its own tokenizer's chat template, or as `role: content` lines when it has none) and its
    score is the reward. One output (`num_labels=1`): that logit; several: the probability of `label`
    (a label name or index; default the last, e.g. POSITIVE). Scores are clipped to [-clip, clip]
    (upstream clips its reward model's to [-3, 3]; null: no clipping).

    path: a local model directory; nothing is downloaded at run time and no remote code runs (a model
    that needs `trust_remote_code` is refused by transformers). It is loaded once, before training,
    frozen, on the policy's device in the run's precision, and scores replies without gradients, in
    batches of `batch_size`, truncated to `max_length` tokens from the left (the reply is at the end)."""

    def __init__(self, path: str, weight: float = 1.0, label: int | str | None = None, clip: float | None = 3.0,
                 max_length: int = 1024, batch_size: int = 16):
        super().__init__(weight)
        self.path = Path(str(path)).expanduser()
        if not (self.path / "config.json").is_file():
            raise ConfigurationError(
                f"RewardModel: path={path} is not a Hugging Face model directory (no config.json); give a local "
                "directory (download one first, e.g. `huggingface-cli download NAME --local-dir DIR`)")
        self.label, self.clip, self.max_length, self.batch_size = label, clip, max_length, batch_size
        self.model = self.tokenizer = None
        self.label_index = 0

    def prepare(self) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if self.model is not None:
            return
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path, trust_remote_code=False, local_files_only=True)
            model = AutoModelForSequenceClassification.from_pretrained(self.path, trust_remote_code=False,
                                                                       local_files_only=True)
        except (OSError, ValueError) as error:
            raise ConfigurationError(f"RewardModel: cannot load {self.path} as a sequence-classification model "
                                     f"with its tokenizer: {str(error).splitlines()[0]}") from None
        self.model = model.eval().requires_grad_(False)
        self.label_index = self._label_index(model.config)

    def _label_index(self, config) -> int:
        if config.num_labels == 1 or self.label is None:
            return config.num_labels - 1
        if isinstance(self.label, int) and 0 <= self.label < config.num_labels:
            return self.label
        names = {str(v): int(k) for k, v in (config.id2label or {}).items()}
        if str(self.label) not in names:
            raise ConfigurationError(f"RewardModel: label={self.label!r} is not one of {sorted(names)} "
                                     f"(the labels of {self.path})")
        return names[str(self.label)]

    def to(self, device: torch.device, dtype: torch.dtype) -> None:
        if self.model is not None:
            self.model.to(device=device, dtype=dtype)

    def _text(self, c: Completion) -> str:
        messages = [*c.messages, {"role": "assistant", "content": c.answer}]
        if getattr(self.tokenizer, "chat_template", None):  # the reward model's own conversation format
            return self.tokenizer.apply_chat_template(messages, tokenize=False)
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages)

    @torch.inference_mode()
    def __call__(self, completions: Sequence[Completion]) -> list[float]:
        self.prepare()
        config, device = self.model.config, next(self.model.parameters()).device
        pad = config.pad_token_id
        size = self.batch_size if pad is not None else 1  # without a pad id the model cannot find each row's end
        templated = bool(getattr(self.tokenizer, "chat_template", None))  # a template writes its own special tokens
        scores: list[float] = []
        for start in range(0, len(completions), size):
            rows = [self.tokenizer.encode(self._text(c), add_special_tokens=not templated)[-self.max_length:]
                    for c in completions[start:start + size]]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), pad if pad is not None else 0, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, r in enumerate(rows):
                ids[i, :len(r)], mask[i, :len(r)] = torch.tensor(r, dtype=torch.long), 1
            logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            score = logits[:, 0] if config.num_labels == 1 else logits.softmax(-1)[:, self.label_index]
            if self.clip is not None:
                score = score.clamp(-self.clip, self.clip)
            scores += score.tolist()
        return scores


def reward_weight(reward: Any) -> float:
    return float(getattr(reward, "weight", 1.0))

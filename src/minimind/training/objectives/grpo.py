"""Group Relative Policy Optimisation (upstream's train_grpo.py): learn from rewards, without a critic.

For each prompt of a batch the policy samples a group of `num_generations` replies with the KV-cache
generator (under inference mode, in eval mode, so no activations are kept), the rewards score them
(before any training forward pass), and each reply's advantage is its reward measured against its
group: A = (r - mean) / (std + 1e-4) over the group, 0 for a group whose replies all scored the same
(it teaches nothing). The update, over each reply's tokens up to its `<|im_end|>`:

    loss = mean over replies of the mean over their tokens of  -(surrogate - beta * KL)

    grpo:   surrogate = min(ratio * A, clip(ratio, 1 - epsilon, 1 + epsilon) * A)     (PPO's clipped objective)
    cispo:  surrogate = sg(min(ratio, epsilon_high)) * A * log p(token)              (CISPO, upstream's default)

ratio = p(token) / p_old(token), where p_old is what the sampler drew the token with (the generator
records it at no cost; p is the policy's probability at the same temperature), and KL is the k3
estimate exp(ref - logp) - (ref - logp) - 1 per token against the frozen reference: the init weights
(`init_from=`), or `ref=PATH`. With one update per sample, as upstream does, the ratio is 1 up to the
sampler's numerics (KV cache, precision), so `train/clip_fraction` measures how far the sampler
drifts from the policy it samples for; sampling filters (`top_k`, `top_p`) make the two differ on purpose.

Validation answers each held-out prompt once (greedily by default) and reports the rewards of those
replies: `val/reward` (weighted sum), `val/reward/<name>`, and `val/loss = -val/reward`, so that
checkpoints, sweeps and compare, which rank runs by the lowest `val/loss`, keep the best-rewarded model.

A resumed run keeps the reference it started with: its checkpoints record where it came from and a
fingerprint of its weights (`PinnedModel`, as DPO's), never a second copy of the model. `beta=0` drops
the reference, and its forward pass, entirely.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torchmetrics import MeanMetric

from minimind.data.tokenizer import IM_END
from minimind.errors import ConfigurationError
from minimind.training.objectives.base import Objective, StepOutput, recorded_state, run_param_dtype
from minimind.training.objectives.frozen import PinnedModel
from minimind.training.rewards import Completion, RewardModel, reward_weight

if TYPE_CHECKING:
    from minimind.model import MiniMindConfig
    from minimind.training.init import InitWeights
    from minimind.training.module import MiniMindModule

LOSSES = ("grpo", "cispo")


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """(N,) rewards of N / group_size consecutive groups -> (N,) advantages: (r - group mean) / (group std + eps),
    exactly 0 in a group whose rewards are all equal."""
    grouped = rewards.view(-1, group_size)
    mean, std = grouped.mean(1, keepdim=True), grouped.std(1, unbiased=False, keepdim=True)
    flat = grouped.amax(1, keepdim=True) == grouped.amin(1, keepdim=True)
    return torch.where(flat, 0.0, (grouped - mean) / (std + eps)).view(-1)


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from the sampled tokens' log-probabilities:
    exp(ref - logp) - (ref - logp) - 1, never negative, 0 where the two agree (Schulman's k3)."""
    delta = ref_logps - logps
    return delta.exp() - delta - 1


def policy_loss(logps: torch.Tensor, old_logps: torch.Tensor, ref_logps: torch.Tensor | None,
                advantages: torch.Tensor, mask: torch.Tensor, loss: str = "cispo", beta: float = 0.1,
                epsilon: float = 0.2, epsilon_high: float = 5.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The GRPO loss of (N, C) per-token log-probabilities (policy, sampler, reference or None) of N replies
    with (N,) advantages over their `mask`ed tokens; returns (loss, {kl, clip_fraction})."""
    ratio = (logps - old_logps).exp()
    adv = advantages[:, None]
    if loss == "cispo":
        surrogate = ratio.clamp(max=epsilon_high).detach() * adv * logps
        clipped = ratio > epsilon_high
    else:
        unclipped, bounded = ratio * adv, ratio.clamp(1 - epsilon, 1 + epsilon) * adv
        surrogate = torch.minimum(unclipped, bounded)
        clipped = bounded < unclipped
    kl = k3_kl(logps, ref_logps) if ref_logps is not None else torch.zeros_like(logps)
    per_token = -(surrogate - beta * kl)
    mask = mask.to(per_token.dtype)
    tokens = mask.sum().clamp(min=1)
    value = ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()
    return value, {"kl": ((kl * mask).sum() / tokens).detach(), "clip_fraction": (clipped * mask).sum() / tokens}


def completion_mask(completions: torch.Tensor, eos: int) -> torch.Tensor:
    """(N, C) 1 for each reply's tokens through its first `eos` (all of them when it has none), 0 after."""
    is_eos = (completions == eos).int()
    return (is_eos.cumsum(1) - is_eos) == 0


def token_logprobs(model: torch.nn.Module, sequences: torch.Tensor, attention_mask: torch.Tensor, new: int,
                   temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(token) of the last `new` tokens of each (left-padded) row at `temperature`, and the MoE aux loss.
    Positions count real tokens only, as the generator counted them."""
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    out = model(sequences, attention_mask=attention_mask, position_ids=positions, logits_to_keep=new + 1)
    logits = out.logits[:, :-1].float() / temperature  # position t predicts token t + 1
    targets = sequences[:, -new:]
    return logits.gather(-1, targets[..., None]).squeeze(-1) - logits.logsumexp(-1), out.aux_loss


def reward_change(start: dict[str, float | None], end: dict[str, float], train: dict[str, Any]) -> str | None:
    """The summary's verdict in words: the held-out reward before -> after against its spread at the start
    (over the held-out replies), then the training reward's first and last steps; None when there is neither."""
    parts = []
    before, spread, after = start.get("val/reward"), start.get("val/reward_std"), end.get("val/reward")
    if None not in (before, spread, after):
        rise = after - before
        times = f", {abs(rise) / spread:.1f} times" if spread > 0 else ""
        verdict = ("beyond" if abs(rise) > spread else "within") + f" its spread at the start ({spread:.3g}{times})"
        parts.append(f"held-out reward {before:.3g} -> {after:.3g} ({rise:+.3g}: {verdict})")
    if train.get("reward_start_mean") is not None:
        parts.append(f"training reward {train['reward_start_mean']:.3g} (spread {train['reward_start_std']:.3g}) -> "
                     f"{train['reward_end_mean']:.3g} (spread {train['reward_end_std']:.3g}) over the first and last "
                     f"{train['reward_window_steps']} steps")
    return "; ".join(parts) or None


class GRPO(Objective):
    data_formats = ("prompt",)

    def __init__(self, rewards: Mapping[str, Any] | Sequence[Any], num_generations: int = 6, max_gen_len: int = 1024,
                 loss: str = "cispo", beta: float = 0.1, epsilon: float = 0.2, epsilon_high: float = 5.0,
                 temperature: float = 0.8, top_k: int = 0, top_p: float = 1.0, ref: str | None = None,
                 ref_model: str | dict[str, Any] | None = None, reward_model: str | None = None,
                 val_temperature: float = 0.0, val_samples: int = 8, init_from: str | None = None,
                 ckpt_path: str | None = None):
        """rewards: {name: reward} (or a list, named by their class), summed with their weights.
        num_generations: replies sampled per prompt (the group). max_gen_len: tokens a reply may have.
        loss: `grpo` or `cispo`; beta: the KL term's weight (0: no reference at all); epsilon: grpo's clip
        range; epsilon_high: cispo's cap on the importance ratio. temperature, top_k, top_p: how replies
        are sampled (0 and 1: no filter). ref: the reference (any checkpoint the tools load; default the
        init weights); ref_model: the shape of a bare .pth reference (a preset name, or config fields).
        reward_model: a Hugging Face sequence-classification model directory, added to the rewards as
        `model` (a `RewardModel` with its defaults; configure one under `rewards` for other settings).
        val_temperature: how validation answers (0: greedily). val_samples: replies shown per validation.
        init_from, ckpt_path: the run's (`${init_from}`, `${ckpt_path}`): where a default reference comes from."""
        super().__init__()
        problems = []
        if loss not in LOSSES:
            problems.append(f"stage.objective.loss={loss!r} must be one of {LOSSES}")
        if not isinstance(num_generations, int) or num_generations < 2:
            problems.append(f"stage.objective.num_generations={num_generations} must be an integer >= 2 (a group "
                            "of one has no mean to compare with)")
        if not isinstance(max_gen_len, int) or max_gen_len < 1:
            problems.append(f"stage.objective.max_gen_len={max_gen_len} must be a positive number of tokens")
        for name, value, low in (("beta", beta, 0.0), ("epsilon", epsilon, 0.0), ("epsilon_high", epsilon_high, 1.0)):
            if not isinstance(value, (int, float)) or value < low:
                problems.append(f"stage.objective.{name}={value} must be a number >= {low}")
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            problems.append(f"stage.objective.temperature={temperature} must be > 0 (replies are sampled)")
        rewards = dict(rewards) if isinstance(rewards, Mapping) else {type(r).__name__.lower(): r for r in rewards or []}
        if reward_model not in (None, ""):
            rewards.setdefault("model", RewardModel(reward_model))
        if not rewards:
            problems.append("stage.objective.rewards is empty: give at least one reward (see minimind.training.rewards)")
        if problems:
            raise ConfigurationError("; ".join(problems))
        self.rewards = rewards
        for name, reward in self.rewards.items():
            if not callable(reward):
                raise ConfigurationError(f"stage.objective.rewards.{name} is not a reward (give a _target_ whose "
                                         "object takes a list of completions and returns a score for each)")
        self.num_generations, self.max_gen_len, self.loss = num_generations, max_gen_len, loss
        self.beta, self.epsilon, self.epsilon_high = float(beta), float(epsilon), float(epsilon_high)
        self.temperature, self.top_k, self.top_p = float(temperature), int(top_k), float(top_p)
        self.val_temperature, self.val_samples = float(val_temperature), int(val_samples)
        self.reference = None if self.beta == 0 else PinnedModel.reference(
            ref, ref_model, stage="stage=grpo", init_from=init_from, resuming=ckpt_path is not None,
            or_else=", or train without one (stage.objective.beta=0)")
        self.tokenizer = None
        self.eos = self.pad = None
        self.step_tokens = 0
        self.val = torch.nn.ModuleDict({k: MeanMetric() for k in ("reward", "reward_square", "completion_length",
                                                                  "truncated")})
        self.val_each = torch.nn.ModuleDict({name: MeanMetric() for name in self.rewards})
        self.samples: list[dict[str, Any]] = []
        self.reward_sums: list[tuple[float, float, int]] = []  # per training step: sum, sum of squares, replies

    # ---- before training ----------------------------------------------------------------------

    def problems(self, *, model_config: MiniMindConfig, seq_len: int, length_from: str) -> list[str]:
        found = []
        if seq_len + self.max_gen_len > model_config.max_position_embeddings:
            found.append(f"data.seq_len={seq_len} (the longest prompt) + stage.objective.max_gen_len={self.max_gen_len}"
                         f" exceeds model.max_position_embeddings={model_config.max_position_embeddings}: shorten one")
        if length_from in ("tokens", "default_tokens"):
            found.append("stage=grpo counts its run in prompts, not tokens (each step's tokens depend on the replies "
                         "sampled): give trainer.max_steps= (batches of prompts) or trainer.max_epochs=, not tokens=")
        return found

    def prepare(self, *, tokenizer: Any, model_config: MiniMindConfig, init: InitWeights | None = None,
                resume: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.eos, self.pad = tokenizer.convert_tokens_to_ids(IM_END), tokenizer.pad_token_id
        if self.reference is not None:
            recorded = recorded_state(resume) if resume is not None else None
            if recorded is not None and "reward_sums" in recorded and recorded.get("reference") is None:
                raise ConfigurationError(
                    f"stage.objective.beta={self.beta}, but the run being resumed was started with beta=0, without a "
                    "reference: a resumed run keeps its reference; drop stage.objective.beta= (or start a new run)")
            self.reference.prepare(tokenizer=tokenizer, model_config=model_config, init=init, resume=resume)
        for reward in self.rewards.values():
            if hasattr(reward, "prepare"):
                reward.prepare()

    def setup(self, module: MiniMindModule) -> None:
        if self.reference is not None:
            self.reference.frozen.to_run(module)
        for reward in self.rewards.values():
            if hasattr(reward, "to"):
                reward.to(module.device, run_param_dtype(module))

    def get_extra_state(self) -> dict[str, Any]:
        """The reward history and the reference's record (None with beta=0), for the checkpoint."""
        return {"reward_sums": [list(s) for s in self.reward_sums],
                "reference": None if self.reference is None else self.reference.record}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """The reward history; the reference was rebuilt from its record in `prepare`."""
        self.reward_sums = [tuple(s) for s in state.get("reward_sums", [])]

    # ---- sampling and scoring -----------------------------------------------------------------

    def rollout(self, module: MiniMindModule, batch: dict[str, Any], copies: int, temperature: float,
                generator: torch.Generator | None = None) -> dict[str, Any]:
        """`copies` replies to each prompt (consecutive rows), sampled or (temperature 0) greedy, with the
        sampler's log-probabilities; the tensors are ordinary ones, usable by autograd."""
        model = module.model
        was_training = model.training
        model.eval()
        try:
            sequences, old_logps = model.generate(
                batch["input_ids"].repeat_interleave(copies, 0),
                attention_mask=batch["attention_mask"].repeat_interleave(copies, 0),
                max_new_tokens=self.max_gen_len, do_sample=temperature > 0, temperature=temperature,
                top_k=self.top_k, top_p=self.top_p, eos_token_id=self.eos, pad_token_id=self.pad,
                generator=generator, return_logprobs=True)
        finally:
            model.train(was_training)
        sequences, old_logps = sequences.clone(), old_logps.clone()  # leave inference mode's tensors behind
        prompt_len = batch["input_ids"].shape[1]
        replies = sequences[:, prompt_len:]
        mask = completion_mask(replies, self.eos)
        finished = (replies == self.eos).any(1)
        attention = torch.cat([batch["attention_mask"].repeat_interleave(copies, 0), torch.ones_like(replies)], 1)
        return {"sequences": sequences, "attention_mask": attention, "old_logps": old_logps, "mask": mask,
                "finished": finished, "replies": replies}

    def completions(self, batch: dict[str, Any], rollout: dict[str, Any], copies: int) -> list[Completion]:
        texts = self.tokenizer.batch_decode((rollout["replies"] * rollout["mask"]).tolist(), skip_special_tokens=True)
        lengths = (rollout["mask"].sum(1) - rollout["finished"].long()).tolist()  # without the closing <|im_end|>
        finished = rollout["finished"].tolist()
        return [Completion(batch["messages"][i // copies], texts[i], lengths[i], finished[i],
                           batch["answers"][i // copies]) for i in range(len(texts))]

    def score(self, completions: list[Completion]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(N,) weighted sum of the rewards, and each reward's (N,) scores, on the CPU."""
        each = {}
        for name, reward in self.rewards.items():
            scores = torch.as_tensor(reward(completions), dtype=torch.float32).cpu().reshape(-1)
            if len(scores) != len(completions):
                raise ConfigurationError(f"reward {name} returned {len(scores)} scores for {len(completions)} replies")
            each[name] = scores
        total = sum(reward_weight(self.rewards[name]) * scores for name, scores in each.items())
        return total, each

    # ---- the loop's hooks ---------------------------------------------------------------------

    def batch_tokens(self, batch: dict[str, Any]) -> int:
        """Prompt and reply tokens of every sequence the last training step trained on (padding left out)."""
        return self.step_tokens

    def training_step(self, module: MiniMindModule, batch: dict[str, Any]) -> StepOutput:
        group = self.num_generations
        rollout = self.rollout(module, batch, group, self.temperature)
        completions = self.completions(batch, rollout, group)
        rewards, each = self.score(completions)  # before any forward pass that keeps activations
        self.reward_sums.append((float(rewards.sum()), float((rewards ** 2).sum()), len(rewards)))
        advantages = group_advantages(rewards, group).to(module.device)
        sequences, attention, mask = rollout["sequences"], rollout["attention_mask"], rollout["mask"]
        new = mask.shape[1]
        ref_logps = None
        if self.reference is not None:
            with torch.no_grad():
                ref_logps, _ = token_logprobs(self.reference.model, sequences, attention, new, self.temperature)
        logps, aux_loss = token_logprobs(module.model, sequences, attention, new, self.temperature)
        loss, stats = policy_loss(logps, rollout["old_logps"], ref_logps, advantages, mask, self.loss, self.beta,
                                  self.epsilon, self.epsilon_high)
        self.step_tokens = int(batch["attention_mask"].sum()) * group + int(mask.sum())
        grouped = rewards.view(-1, group)
        metrics = {"loss": loss.detach(), "reward_mean": rewards.mean(), "reward_std": rewards.std(unbiased=False),
                   "clip_fraction": stats["clip_fraction"],
                   "completion_length": (mask.sum(1) - rollout["finished"].long()).float().mean(),
                   "truncated": (~rollout["finished"]).float().mean(),
                   "groups_without_signal": (grouped.amax(1) == grouped.amin(1)).float().mean(),
                   **{f"reward/{name}": scores.mean() for name, scores in each.items()}}
        if self.reference is not None:
            metrics["kl"] = stats["kl"]
        if module.config.use_moe:
            metrics["aux_loss"] = aux_loss
        return StepOutput(loss + aux_loss, {k: v.to(module.device) for k, v in metrics.items()})

    def validation_step(self, module: MiniMindModule, batch: dict[str, Any]) -> None:
        generator = None
        if self.val_temperature > 0:  # its own seeded draws: comparable across validations, training's RNG untouched
            generator = torch.Generator(module.device).manual_seed(int(batch["input_ids"].sum()))
        rollout = self.rollout(module, batch, 1, self.val_temperature, generator)
        completions = self.completions(batch, rollout, 1)
        rewards, each = self.score(completions)
        self.val["reward"].update(rewards)
        self.val["reward_square"].update(rewards ** 2)
        self.val["completion_length"].update(torch.tensor([float(c.tokens) for c in completions]))
        self.val["truncated"].update((~rollout["finished"]).float())
        for name, scores in each.items():
            self.val_each[name].update(scores)
        for i, c in enumerate(completions[: max(0, self.val_samples - len(self.samples))]):
            self.samples.append({"prompt": c.messages[-1]["content"], "completion": c.text,
                                 "reward": float(rewards[i]), **{name: float(s[i]) for name, s in each.items()}})

    def validation_samples(self) -> list[dict[str, Any]]:
        return self.samples

    def summary(self, metrics: dict[str, float], started: dict[str, float | None] | None = None) -> dict[str, Any]:
        """Did the reward rise beyond its spread? The held-out reward before the first step (`started`, with
        validate_at_start) and at the end, each with its spread over the held-out replies, and the training
        reward's mean and spread over the replies of the first and last steps (a tenth of the run, 1 to 20
        steps; learning is under way in the first ones already), with `reward_change` saying it in words."""
        window = max(1, min(20, len(self.reward_sums) // 10))
        out: dict[str, Any] = {"val_reward": metrics.get("val/reward"), "reward_window_steps": window}
        for name, steps in (("start", self.reward_sums[:window]), ("end", self.reward_sums[-window:])):
            total, squares, count = (sum(column) for column in zip(*steps)) if steps else (0.0, 0.0, 0)
            mean = total / count if count else None
            out[f"reward_{name}_mean"] = mean
            out[f"reward_{name}_std"] = max(0.0, squares / count - mean ** 2) ** 0.5 if count else None
        out["reward_change"] = reward_change(started or {}, metrics, out)
        return out

    def validation_results(self) -> dict[str, torch.Tensor]:
        """`reward` (the weighted sum) and its spread over the held-out replies (`reward_std`), each reward's mean,
        reply length and the share cut off at max_gen_len; `loss` = -reward, so the lowest val/loss is the
        best-rewarded model."""
        values = {name: metric.compute() for name, metric in self.val.items()}
        values["reward_std"] = (values.pop("reward_square") - values["reward"] ** 2).clamp(min=0).sqrt()
        values.update({f"reward/{name}": metric.compute() for name, metric in self.val_each.items()})
        values["loss"] = -values["reward"]
        for metric in [*self.val.values(), *self.val_each.values()]:
            metric.reset()
        self.samples = []
        return values

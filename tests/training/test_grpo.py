"""GRPO (stage=grpo): group advantages, the KL term, rewards rising through real runs, pluggable rewards, a
reward model directory, and exact resume after SIGKILL."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from hydra.utils import instantiate
from torchmetrics import MeanMetric

from commands import assert_clean_failure, assert_resumed_as_uninterrupted, kill_at_first_checkpoint, run_main
from compose_train import TRAIN_OVERRIDES
from test_resume_and_ddp import run

from minimind import train as train_app
from minimind.errors import ConfigurationError
from minimind.training.objectives.grpo import (GRPO, group_advantages, k3_kl, policy_loss, reward_change,
                                               token_logprobs)
from minimind.training.preflight import check_training_config
from minimind.training.rewards import AnswerMatch, Completion, Format, Length, RepetitionPenalty, RewardModel
from minimind.training.run import build_module, train


def grpo_args(init, prompts, tokenizer_dir, *extra) -> list[str]:
    """A GRPO run of seconds from `init`: groups of 4 replies of at most 8 tokens to 4 prompts per step."""
    dropped = ("model", "trainer.max_steps", "data.seq_len", "trainer.val_check_interval", "optimizer.lr")
    return [o for o in TRAIN_OVERRIDES if not o.startswith(dropped)] + [
        "stage=grpo", f"init_from={init}", f"data.path={prompts}", f"data.tokenizer={tokenizer_dir}",
        "data.seq_len=80", "data.val_fraction=0.1", "trainer.max_steps=12", "trainer.val_check_interval=6",
        "stage.objective.max_gen_len=8", "stage.objective.num_generations=4", "optimizer.lr=3e-3", *extra]


def metric_rows(run_dir) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_advantages_are_zero_for_a_group_with_equal_rewards():
    rewards = torch.tensor([0.3, 0.3, 0.3, 0.3, 1.0, 0.0, 0.5, 0.5, -1.0, -1.0, -1.0, -1.0])
    advantages = group_advantages(rewards, 4).view(3, 4)
    assert advantages[0].tolist() == [0.0] * 4 and advantages[2].tolist() == [0.0] * 4
    assert advantages[1].mean().abs() < 1e-6 and advantages[1].std(unbiased=False) == pytest.approx(1.0, abs=1e-3)
    assert advantages[1].argmax() == 0 and advantages[1].argmin() == 1  # the best reply is pushed up most


@pytest.fixture
def grpo_module(trained_run, tiny_prompts, tiny_tokenizer_dir, compose_cfg, tmp_path):
    """The GRPO module of a real plan (init_from the trained run) and a batch of its prompts."""
    run_dir, _ = trained_run
    typed = grpo_args(run_dir, tiny_prompts, tiny_tokenizer_dir)
    cfg = compose_cfg(typed, run_dir=tmp_path)
    plan = check_training_config(cfg, typed)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    module = build_module(cfg, plan, datamodule)
    module.objective.setup(module)
    return module, next(iter(datamodule.train_dataloader()))


def test_the_kl_term_is_zero_when_the_policy_is_the_reference(grpo_module):
    """At the start the reference holds the init weights: KL 0 exactly. The generator's log-probabilities are
    the policy's (same positions, same left padding), so the importance ratio is 1 and nothing is clipped."""
    module, batch = grpo_module
    objective = module.objective
    rollout = objective.rollout(module, batch, 4, temperature=0.8)
    args = rollout["sequences"], rollout["attention_mask"], rollout["mask"].shape[1], 0.8
    logps, _ = token_logprobs(module.model, *args)
    with torch.no_grad():
        ref_logps, _ = token_logprobs(objective.reference.model, *args)
    mask = rollout["mask"]
    assert torch.equal(k3_kl(logps, ref_logps)[mask], torch.zeros(int(mask.sum())))
    torch.testing.assert_close(logps[mask], rollout["old_logps"][mask], atol=1e-5, rtol=0)
    advantages = torch.linspace(-1, 1, mask.shape[0])
    for loss in ("grpo", "cispo"):
        _, stats = policy_loss(logps, rollout["old_logps"], ref_logps, advantages, mask, loss)
        assert stats["kl"] == 0 and stats["clip_fraction"] == 0
    moved = policy_loss(logps, rollout["old_logps"], ref_logps - 0.5, advantages, mask)[1]["kl"]
    assert moved > 0  # a reference that disagrees is penalised


class Shortness:
    """A reward of the test's own, as a user writes one: 1 for a reply of at most `limit` tokens, with a weight."""

    def __init__(self, limit: int = 3, weight: float = 1.0):
        self.limit, self.weight = limit, weight

    def __call__(self, completions) -> list[float]:
        return [float(c.tokens <= self.limit) for c in completions]


@pytest.fixture(scope="module")
def grpo_run(trained_run, tiny_prompts, tiny_tokenizer_dir, reward_model_dir, compose_cfg, tmp_path_factory):
    """The one real GRPO run of these tests (30 steps of seconds), with rewards given three ways in the config:
    the stage's built-in format reward (its repetition reward dropped), one of the test's own with a weight
    (short), and a reward model directory (weighted 0 here: called and logged, not trained for)."""
    run_dir, _ = trained_run
    out = tmp_path_factory.mktemp("grpo-run")
    typed = grpo_args(run_dir, tiny_prompts, tiny_tokenizer_dir, "trainer.max_steps=30",
                      "trainer.val_check_interval=15",
                      "~stage.objective.rewards.repetition",
                      "+stage.objective.rewards.short={_target_:test_grpo.Shortness,limit:4,weight:0.5}",
                      f"+stage.objective.rewards.model={{_target_:minimind.training.rewards.RewardModel,"
                      f"path:'{reward_model_dir}',weight:0}}")
    typed = [o for o in typed if o != "callbacks.samples=null"]
    metrics, _ = train(compose_cfg(typed, run_dir=out), typed)
    return out, metrics


def test_mean_reward_rises_on_a_toy_reward_through_a_real_run(grpo_run):
    """Rewarded for closing its reply properly and briefly, the model learns to: the mean reward of its last steps
    ends above its first steps' by more than their spread, as summary.json says; the run logs what explains it."""
    run_dir, metrics = grpo_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["stage"] == "grpo" and summary["peak_memory_mb"] > 0
    assert summary["reward_end_mean"] > summary["reward_start_mean"] + summary["reward_start_std"], summary
    start, end = summary["val_at_start"], summary["val_at_end"]
    assert summary["reward_change"].startswith(f"held-out reward {start['val/reward']:.3g} -> {end['val/reward']:.3g}")
    assert start["val/reward_std"] >= 0 and end["val/reward_std"] >= 0
    logged = set(metric_rows(run_dir)[0])
    for name in ("train/reward_mean", "train/reward_std", "train/reward/format", "train/kl", "train/clip_fraction",
                 "train/completion_length", "train/truncated", "train/groups_without_signal", "val/reward",
                 "val/reward_std", "val/reward/format", "val/loss"):
        assert name in logged, name
    assert metrics["val/loss"] == -metrics["val/reward"]
    # tokens: the prompt and reply tokens of each step's 4 x 4 sequences, padding left out
    seen = [0.0] + [float(r["train/tokens"]) for r in rows_with(run_dir, "train/tokens")]
    per_step = [b - a for a, b in zip(seen, seen[1:])]
    assert summary["tokens_seen"] == seen[-1] and len(per_step) == 30
    assert all(0 < n <= 16 * (80 + 8) for n in per_step) and len(set(per_step)) > 1
    samples = (run_dir / "samples.md").read_text()
    assert samples.count("| prompt | completion | reward | format | short | model |") == 3  # at the start, steps 15, 30
    assert summary["val_at_start"]["val/reward"] < summary["val_at_end"]["val/reward"]  # held out: it learned too
    assert (run_dir / "grpo_64.pth").is_file()


def test_validation_gives_the_held_out_reward_and_its_spread_over_the_replies(grpo_module):
    """val/reward and val/reward_std are the mean and standard deviation of the rewards of the replies shown in
    samples.md (here every reply: 4 prompts, up to 8 shown)."""
    module, batch = grpo_module
    objective = module.objective
    objective.rewards["short"] = Shortness(limit=4)  # replies of different lengths: a spread to measure
    objective.val_each["short"] = MeanMetric()
    with torch.no_grad():
        objective.validation_step(module, batch)
    shown = torch.tensor([row["reward"] for row in objective.validation_samples()])
    results = objective.validation_results()
    assert len(shown) == len(batch["messages"]) == 4
    assert results["reward"].item() == pytest.approx(shown.mean().item(), abs=1e-6)
    assert results["reward_std"].item() == pytest.approx(shown.std(unbiased=False).item(), abs=1e-5)


def test_the_summary_says_whether_the_reward_rose_beyond_its_spread():
    train_window = {"reward_start_mean": 1.57, "reward_start_std": 0.566, "reward_end_mean": 1.9,
                    "reward_end_std": 0.178, "reward_window_steps": 20}
    rose = reward_change({"val/reward": 1.63, "val/reward_std": 0.1}, {"val/reward": 1.89}, train_window)
    assert rose == ("held-out reward 1.63 -> 1.89 (+0.26: beyond its spread at the start (0.1, 2.6 times)); training "
                    "reward 1.57 (spread 0.566) -> 1.9 (spread 0.178) over the first and last 20 steps")
    within = reward_change({"val/reward": 1.63, "val/reward_std": 0.5}, {"val/reward": 1.5}, {})
    assert within == "held-out reward 1.63 -> 1.5 (-0.13: within its spread at the start (0.5, 0.3 times))"
    assert reward_change({}, {"val/reward": 1.5}, {}) is None  # nothing to compare (no validation at the start)


def rows_with(run_dir, name: str) -> list[dict[str, str]]:
    return [r for r in metric_rows(run_dir) if r.get(name)]


def test_rewards_are_pluggable_through_config_and_summed_with_their_weights(grpo_run):
    run_dir, _ = grpo_run
    rows = rows_with(run_dir, "train/reward_mean")
    assert len(rows) == 30
    for r in rows:
        parts = {name: float(r[f"train/reward/{name}"]) for name in ("format", "short", "model")}
        assert float(r["train/reward_mean"]) == pytest.approx(parts["format"] + 0.5 * parts["short"], abs=1e-5)
    assert all(float(r["train/reward/model"]) != 0 for r in rows)  # the reward model scored every step's replies


def completion(text: str, tokens: int = 5, finished: bool = True, answers=()) -> Completion:
    return Completion([{"role": "user", "content": "Tell me about the cat."}], text, tokens, finished, list(answers))


def test_rule_rewards():
    assert Format()([completion("a cat."), completion("a cat", finished=False), completion("  ")]) == [1.0, 0.0, 0.0]
    assert Length(target=10)([completion("x", tokens=n) for n in (10, 5, 20, 30)]) == [1.0, 0.5, 0.0, 0.0]
    exact, contains = AnswerMatch("exact"), AnswerMatch("contains")
    replies = [completion(" Cat. ", answers=["cat"]), completion("<think>hm</think> cat", answers=["cat"]),
               completion("it is 3,000 cats", answers=["3000", "dog"]), completion("cat", answers=[])]
    assert exact(replies) == [1.0, 1.0, 0.0, 0.0]
    assert contains(replies) == [1.0, 1.0, 0.5, 0.0]
    assert RepetitionPenalty()([completion("a b c a b c a b c"), completion("one two three")]) == [-0.5, 0.0]


@pytest.fixture(scope="module")
def reward_model_dir(tiny_tokenizer_dir, tmp_path_factory):
    """A tiny Hugging Face sequence-classification model of our own, saved with our tokenizer."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from minimind.data.tokenizer import load_tokenizer

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=400, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, num_labels=1, pad_token_id=0)
    path = tmp_path_factory.mktemp("reward-model")
    LlamaForSequenceClassification(config).save_pretrained(path)
    load_tokenizer(tiny_tokenizer_dir).save_pretrained(path)
    return path


def test_a_reward_model_directory_is_loaded_and_scores_each_reply(reward_model_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    replies = [completion("the red cat"), completion("a dog runs over the stone road"), completion("")]
    scores = RewardModel(str(reward_model_dir), clip=None)(replies)
    model = AutoModelForSequenceClassification.from_pretrained(reward_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(reward_model_dir)
    for reply, score in zip(replies, scores):  # each reply alone, as the conversation the model reads
        text = tokenizer.apply_chat_template([*reply.messages, {"role": "assistant", "content": reply.text}],
                                             tokenize=False)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        assert score == pytest.approx(model(input_ids=ids).logits[0, 0].item(), abs=1e-5)
    assert len(set(scores)) == 3
    clip = sorted(abs(s) for s in scores)[1]  # upstream clips its reward model's scores; here one is cut
    clipped = RewardModel(str(reward_model_dir), clip=clip)(replies)
    assert clipped == pytest.approx([max(-clip, min(clip, s)) for s in scores], abs=1e-6) and clipped != scores



def test_reward_model_shorthand_adds_a_reward_model_to_the_stage_rewards(reward_model_dir):
    objective = GRPO(rewards={"format": Format()}, reward_model=str(reward_model_dir), beta=0)  # beta 0: no reference
    assert list(objective.rewards) == ["format", "model"] and isinstance(objective.rewards["model"], RewardModel)


@pytest.mark.parametrize("typed, fragments", [
    (["tokens=100000"], ["counts its run in prompts, not tokens", "trainer.max_steps="]),
    (["stage.objective.max_gen_len=300"], ["stage.objective.max_gen_len=300 exceeds model.max_position_embeddings"]),
    (["stage.objective.loss=ppo", "stage.objective.num_generations=1"], ["loss='ppo' must be one of",
                                                                         "num_generations=1 must be an integer >= 2"]),
])
def test_impossible_grpo_settings_are_refused_before_data_is_read(typed, fragments, trained_run, tiny_prompts,
                                                                  tiny_tokenizer_dir, compose_cfg, tmp_path):
    run_dir, _ = trained_run
    args = [o for o in grpo_args(run_dir, tiny_prompts, tiny_tokenizer_dir) if o != "trainer.max_steps=12"] + typed
    with pytest.raises(ConfigurationError) as error:
        check_training_config(compose_cfg(args, run_dir=tmp_path), args)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_grpo_on_sft_data_and_the_quickstart_without_init_from_are_refused(trained_run, tiny_sft_corpus,
                                                                           tiny_tokenizer_dir, tmp_path, capsys,
                                                                           monkeypatch):
    run_dir, _ = trained_run
    args = grpo_args(run_dir, tiny_sft_corpus, tiny_tokenizer_dir, "data.format=sft", f"hydra.run.dir={tmp_path / 'a'}")
    code, out, err = run_main(train_app.main, args, capsys, monkeypatch)
    assert_clean_failure(code, out, err, "holds sft data, but this stage (GRPO) trains on prompt data")
    code, out, err = run_main(train_app.main, ["experiment=quickstart_grpo", f"hydra.run.dir={tmp_path / 'b'}"],
                              capsys, monkeypatch)
    assert_clean_failure(code, out, err, "init_from= is required")


def test_the_quickstart_experiment_reads_the_embedded_prompts(trained_run, tiny_tokenizer_dir, compose_cfg, tmp_path):
    """experiment=quickstart_grpo composes into a plan that passes the preflight (its run is measured in the README)."""
    run_dir, _ = trained_run
    typed = ["experiment=quickstart_grpo", f"init_from={run_dir}", f"data.tokenizer={tiny_tokenizer_dir}"]
    cfg = compose_cfg(typed, run_dir=tmp_path)
    plan = check_training_config(cfg, typed)
    assert isinstance(plan.objective, GRPO) and set(plan.objective.rewards) == {"format", "repetition", "answer", "length"}
    assert cfg.data.path == "default" and cfg.data.format == "prompt"


@pytest.mark.slow
def test_sigkill_mid_grpo_then_resume_equals_uninterrupted(trained_run, tiny_prompts, tiny_tokenizer_dir, tmp_path):
    """The reference, the reward history, the data position and the sampling RNG all come back: the resumed run
    samples the same replies and ends with the same weights as the uninterrupted one."""
    run_dir, _ = trained_run
    args = grpo_args(run_dir, tiny_prompts, tiny_tokenizer_dir, "trainer.max_steps=16", "trainer.val_check_interval=8",
                     "callbacks.model_checkpoint.every_n_train_steps=4", "model.dropout=0.1")
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    run(args + [f"hydra.run.dir={reference}"])

    killed_at = kill_at_first_checkpoint(args, interrupted, timeout=180)
    assert 0 < killed_at < 16, "the kill must land mid-training"

    resumed = [o for o in args if not o.startswith("init_from=")] + [f"hydra.run.dir={interrupted}", "ckpt_path=last"]
    run(resumed)  # no init_from=: the reference comes from the checkpoint
    assert_resumed_as_uninterrupted(interrupted, reference)  # the reference's record and the reward history too
    summaries = [json.loads((d / "summary.json").read_text()) for d in (reference, interrupted)]
    for key in ("steps", "tokens_seen", "val_loss", "reward_start_mean", "reward_end_mean"):
        assert summaries[1][key] == summaries[0][key], key

"""Config validation says what to change; presets have the published sizes."""

import pytest
import torch

from minimind.model import ConfigError, MiniMindConfig, MiniMindForCausalLM
from minimind.model.presets import preset_names

# Published sizes: MiniMind2-small 26M, MiniMind2 104M, MiniMind2-MoE 145M,
# minimind-3 64M, minimind-3-MoE 198M (64M active).
PUBLISHED_MILLIONS = {"small": 26, "base": 104, "moe": 145, "minimind3": 64, "minimind3_moe": 198}


@pytest.mark.parametrize("name", sorted(PUBLISHED_MILLIONS))
def test_preset_parameter_counts_match_published_sizes(name):
    with torch.device("meta"):  # shapes only, no memory
        model = MiniMindForCausalLM(MiniMindConfig.from_preset(name))
    assert round(model.num_parameters() / 1e6) == PUBLISHED_MILLIONS[name]


def test_every_preset_file_builds_a_valid_config():
    assert {"tiny", *PUBLISHED_MILLIONS} <= set(preset_names())
    for name in preset_names():
        MiniMindConfig.from_preset(name)


def test_preset_overrides_and_derived_fields():
    cfg = MiniMindConfig.from_preset("small", hidden_size=256, num_attention_heads=4, num_hidden_layers=4,
                                     intermediate_size=None)
    assert (cfg.head_dim, cfg.intermediate_size) == (64, 704)  # 256 * 8/3 rounded up to 64
    assert MiniMindConfig().intermediate_size == 1408  # MiniMind2-small's width from the formula


def test_upstream_minimind2_moe_names_are_read():
    cfg = MiniMindConfig.from_dict({"hidden_size": 640, "use_moe": True, "n_routed_experts": 4,
                                    "aux_loss_alpha": 0.1, "seq_aux": True, "flash_attn": True})
    assert (cfg.num_experts, cfg.router_aux_loss_coef) == (4, 0.1)
    assert cfg.extra == {"seq_aux": True, "flash_attn": True}


@pytest.mark.parametrize("fields, hint", [
    (dict(hidden_size=100, num_attention_heads=8), "hidden_size=100 is not divisible by num_attention_heads=8"),
    (dict(num_attention_heads=8, num_key_value_heads=3), "use one of [1, 2, 4, 8]"),
    (dict(hidden_size=72, num_attention_heads=8, num_key_value_heads=2), "head_dim=9 is odd"),
    (dict(use_moe=True, num_experts=2, num_experts_per_tok=3), "num_experts_per_tok=3 must be between 1 and num_experts=2"),
    (dict(attn_implementation="flash"), "attn_implementation='flash' is unknown"),
    (dict(dropout=1.5), "dropout=1.5 must be in [0, 1)"),
    (dict(num_hidden_layers=0), "num_hidden_layers=0 must be a positive integer"),
    (dict(rope_scaling={"type": "linear"}), "rope_scaling type 'linear' is not supported"),
    (dict(vocab_size=2, eos_token_id=2), "eos_token_id=2 is outside the vocabulary"),
    (dict(hidden_act="gelu"), "hidden_act='gelu' is not supported"),
])
def test_invalid_config_raises_clear_error(fields, hint):
    with pytest.raises(ConfigError) as error:
        MiniMindConfig(**fields)
    assert hint in str(error.value)


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as error:
        MiniMindConfig(num_key_value_heads=3, dropout=2.0)
    assert "num_key_value_heads=3" in str(error.value) and "dropout=2.0" in str(error.value)


def test_explicit_head_dim_allows_any_hidden_size():
    cfg = MiniMindConfig(hidden_size=100, num_attention_heads=4, num_key_value_heads=2, head_dim=32)
    assert cfg.head_dim == 32


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ValueError, match="unknown model preset 'huge'.*small"):
        MiniMindConfig.from_preset("huge")


@pytest.mark.parametrize("name", sorted(PUBLISHED_MILLIONS))
def test_parameter_breakdown_adds_up_to_the_real_model(name):
    from minimind.model.params import parameter_breakdown

    cfg = MiniMindConfig.from_preset(name)
    with torch.device("meta"):
        model = MiniMindForCausalLM(cfg)
    parts = parameter_breakdown(cfg)
    assert parts["total"] == model.num_parameters()
    attention = sum(p.numel() for n, p in model.named_parameters() if "self_attn" in n and "norm" not in n)
    mlp = sum(p.numel() for n, p in model.named_parameters() if ".mlp." in n)
    assert (parts["attention"], parts["mlp"]) == (attention, mlp)


def test_training_flops_match_lightnings_flop_counter():
    from lightning.fabric.utilities.throughput import measure_flops

    from minimind.model.flops import training_flops_per_token

    cfg = MiniMindConfig.from_preset("tiny")
    with torch.device("meta"):
        model = MiniMindForCausalLM(cfg)
        x = torch.randint(0, cfg.vocab_size, (2, 64))
        counted = measure_flops(model, lambda: model(x, labels=x).loss, lambda loss: loss)
    assert counted == training_flops_per_token(cfg, 64) * x.numel()

import pytest
import torch

from minimind.model import MiniMindConfig, MiniMindForCausalLM


def small_config(**overrides) -> MiniMindConfig:
    """A model small enough for exact CPU checks: 2 layers, GQA 4q/2kv, vocab 256."""
    fields = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=160, vocab_size=256, max_position_embeddings=128)
    fields.update(overrides)
    return MiniMindConfig(**fields)


def build(seed: int = 0, **overrides) -> MiniMindForCausalLM:
    torch.manual_seed(seed)
    return MiniMindForCausalLM(small_config(**overrides)).eval()


@pytest.fixture
def make_model():
    """make_model(seed=0, **config_overrides) -> a small MiniMindForCausalLM in eval mode."""
    return build


@pytest.fixture
def make_config():
    return small_config


@pytest.fixture
def tokens() -> torch.Tensor:
    return torch.randint(3, 256, (2, 24), generator=torch.Generator().manual_seed(1))

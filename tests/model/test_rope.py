"""RoPE encodes relative position; YaRN only stretches the slow frequencies."""

import torch

from minimind.model.rope import apply_rope, precompute_rope, rope_frequencies


def test_scores_depend_only_on_relative_position():
    cos, sin = precompute_rope(16, 1e6, 64)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(m, n):
        qm = apply_rope(q, cos[m][None, None], sin[m][None, None])
        kn = apply_rope(k, cos[n][None, None], sin[n][None, None])
        return (qm * kn).sum()

    torch.testing.assert_close(score(10, 3), score(40, 33))
    assert not torch.allclose(score(10, 3), score(10, 4))


def test_rotation_keeps_vector_length():
    cos, sin = precompute_rope(32, 1e4, 100)
    x = torch.randn(2, 3, 100, 32)
    rotated = apply_rope(x, cos[None].expand(2, -1, -1), sin[None].expand(2, -1, -1))
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))


def test_yarn_keeps_fast_pairs_and_slows_slow_pairs():
    plain, _ = rope_frequencies(64, 1e6, 32768)
    yarn_cfg = {"type": "yarn", "factor": 16, "original_max_position_embeddings": 2048,
                "beta_fast": 32, "beta_slow": 1, "attention_factor": 1.0}
    yarn, _ = rope_frequencies(64, 1e6, 32768, yarn_cfg)
    assert torch.equal(yarn[0], plain[0])  # the fastest pair is untouched
    torch.testing.assert_close(yarn[-1], plain[-1] / 16)  # the slowest is slowed by the factor
    short, _ = rope_frequencies(64, 1e6, 2048, yarn_cfg)
    assert torch.equal(short, plain)  # no scaling within the original length

"""Bits per byte and perplexity from the summed loss, exactly."""

import math

import torch

from minimind.training.metrics import LanguageModelMetrics, bits_per_byte


def test_bits_per_byte_divides_total_nats_by_predicted_bytes():
    targets = torch.tensor([[5, 7, -100, 5]])
    token_bytes = torch.zeros(10, dtype=torch.long)
    token_bytes[5], token_bytes[7] = 3, 1  # 3 + 1 + 3 = 7 bytes predicted, the -100 counts nothing
    bpb = bits_per_byte(torch.tensor(2.0), targets, token_bytes)
    assert math.isclose(bpb.item(), 2.0 * 3 / (math.log(2) * 7))


def test_metric_accumulates_over_batches_weighted_by_tokens():
    metric = LanguageModelMetrics()
    token_bytes = torch.full((10,), 2)
    metric.update(torch.tensor(1.0), torch.tensor([1, 2, 3, 4]), token_bytes)
    metric.update(torch.tensor(4.0), torch.tensor([1, -100]), token_bytes)
    values = metric.compute()
    assert math.isclose(values["loss"].item(), (4 * 1.0 + 4.0) / 5)
    assert math.isclose(values["ppl"].item(), math.exp(8 / 5))
    assert math.isclose(values["bpb"].item(), 8 / (math.log(2) * 10))

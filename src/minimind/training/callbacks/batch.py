"""How big a batch is, for Lightning's ThroughputMonitor (batches are dicts of (B, T) tensors)."""


def batch_size(batch) -> int:
    return batch["input_ids"].shape[0]


def batch_tokens(batch) -> int:
    return batch["input_ids"].numel()

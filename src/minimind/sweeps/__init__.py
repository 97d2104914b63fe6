"""Running many training jobs as one comparison: device sharing, job bookkeeping, naming."""

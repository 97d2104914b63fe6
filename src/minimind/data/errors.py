"""The data layer's one exception type, and the policy for bad records (`data.on_bad_record`).

Bad input must never be lost silently: by default the first bad record stops the run with
its file, line and what to change; with `on_bad_record=skip` it is skipped and counted, and
the counts are reported (`MiniMindDataModule.bad_record_report()`).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from minimind.errors import MiniMindError

log = logging.getLogger(__name__)

POLICIES = ("error", "skip")
MAX_EXAMPLES = 10


class DataError(MiniMindError, ValueError):
    """A problem with the data or the data config; the message says where and what to change.

    It takes the message as its only argument so that a DataLoader worker's error is
    re-raised in the main process as the same type, with the message intact.
    """


class BadRecords:
    """Raises on a bad record (policy `error`) or skips and counts it (policy `skip`)."""

    def __init__(self, policy: str = "error") -> None:
        if policy not in POLICIES:
            raise DataError(f"data.on_bad_record={policy!r} is not one of {POLICIES}")
        self.policy = policy
        self.counts: Counter[str] = Counter()
        self.examples: list[str] = []

    def __call__(self, where: str, kind: str, detail: str, fix: str) -> None:
        """Report one bad record: `kind` is the short category that is counted."""
        message = f"{where}: {kind}: {detail}. {fix}"
        if self.policy == "error":
            raise DataError(f"{message} (or set data.on_bad_record=skip to skip and count bad records)")
        self.counts[kind] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(message)
        log.debug("skipped bad record: %s", message)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {"skipped": self.total, "by_kind": dict(sorted(self.counts.items())), "examples": list(self.examples)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], policy: str) -> BadRecords:
        """Rebuild a report saved with a token cache; under policy `error` a non-empty one raises."""
        report = cls("skip")
        report.counts.update(data.get("by_kind", {}))
        report.examples = list(data.get("examples", []))
        if policy == "error" and report.total:
            raise DataError(
                f"the token cache was built with data.on_bad_record=skip and skipped {report.total} bad records, "
                f"first: {report.examples[0] if report.examples else '?'}; fix the data (a changed file gets a new "
                "cache) or run with data.on_bad_record=skip"
            )
        report.policy = policy
        return report

    def summary(self) -> str:
        if not self.total:
            return "no bad records"
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts.items()))
        return f"skipped {self.total} bad records ({kinds}); first: {self.examples[0]}"

"""Counters and latency histograms for `Brokerage.metrics()`.

Actors on many threads write; nothing on the matching path waits for anyone. Each thread
counts into its own dict and buffers latency samples in its own small array; when a buffer is
full the thread folds it into the shared HdrHistogram under a lock held for those few
microseconds (once per `FOLD_EVERY` samples). A read folds every buffer and adds the counts up.
The lock guards only these measurements, never account or book state.
"""

from __future__ import annotations

import threading
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

FOLD_EVERY = 256
HIGHEST_US = 60_000_000  # one minute
LATENCIES = ("place_to_accepted", "place_to_filled")


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Percentiles of one latency, in microseconds."""

    count: int
    p50: int
    p90: int
    p99: int
    p999: int
    max: int


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """The brokerage's counters and latencies at one moment.

    Attributes:
        counters: orders_accepted, orders_rejected, orders_filled (fully executed),
            orders_cancelled, fills, deposits, withdrawals.
        rejected_by_reason: Rejected orders per reason ("insufficient_funds", "busy", ...).
        latency_us: "place_to_accepted" and "place_to_filled" percentiles.
        orders_in_flight: Orders placed whose immediate result has not come back yet.
        deepest_inbox: The longest inbox of any actor.
        live_actors: Actors started and not yet stopped.
    """

    counters: dict[str, int]
    rejected_by_reason: dict[str, int]
    latency_us: dict[str, LatencySummary]
    orders_in_flight: int
    deepest_inbox: int
    live_actors: int


@dataclass
class _Shard:
    counts: Counter[str] = field(default_factory=Counter)
    samples: dict[str, array[int]] = field(default_factory=dict)


class Metrics:
    """Where actors count and time things; one per brokerage."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._shards: list[_Shard] = []
        self._lock = threading.Lock()
        self._histograms = {name: HdrHistogram(1, HIGHEST_US, 3) for name in LATENCIES}

    def _shard(self) -> _Shard:
        try:
            shard: _Shard = self._local.shard
        except AttributeError:
            shard = self._local.shard = _Shard()
            with self._lock:
                self._shards.append(shard)
        return shard

    def count(self, name: str, amount: int = 1) -> None:
        """Add `amount` to the counter `name`."""
        self._shard().counts[name] += amount

    def latency(self, name: str, nanoseconds: int) -> None:
        """Record one latency sample of `name` ("place_to_accepted" or "place_to_filled")."""
        shard = self._shard()
        buffer = shard.samples.get(name)
        if buffer is None:
            buffer = shard.samples[name] = array("q")
        buffer.append(max(1, nanoseconds // 1000))
        if len(buffer) >= FOLD_EVERY:
            with self._lock:
                self._fold(name, buffer)

    def _fold(self, name: str, buffer: array[int]) -> None:
        # The owner thread may append meanwhile: fold a copy, then drop only what was folded.
        samples = buffer[:]
        histogram = self._histograms[name]
        for value in samples:
            histogram.record_value(min(value, HIGHEST_US))
        del buffer[: len(samples)]

    def read(self) -> tuple[dict[str, int], dict[str, LatencySummary]]:
        """Fold every buffer and return the summed counters and the latency percentiles."""
        totals: Counter[str] = Counter()
        with self._lock:
            for shard in self._shards:
                totals.update(dict(shard.counts))
                for name, buffer in list(shard.samples.items()):
                    self._fold(name, buffer)
            latencies = {name: _summary(h) for name, h in self._histograms.items()}
        return dict(totals), latencies


def _summary(histogram: Any) -> LatencySummary:
    if not histogram.get_total_count():
        return LatencySummary(0, 0, 0, 0, 0, 0)
    return LatencySummary(
        count=histogram.get_total_count(),
        p50=histogram.get_value_at_percentile(50),
        p90=histogram.get_value_at_percentile(90),
        p99=histogram.get_value_at_percentile(99),
        p999=histogram.get_value_at_percentile(99.9),
        max=histogram.get_max_value(),
    )

"""Counters and latency histograms for `Brokerage.metrics()`.

Actors on many threads write, and nothing on the matching path waits for anyone: each thread
writes only its own shard (counters, and latency counts per bucket), and a read adds the
shards up. A latency is bucketed to its top 7 significant bits (within 1 %) by integer
arithmetic, which is far cheaper than recording into an HdrHistogram on the hot path; the read
builds the HdrHistogram from the buckets.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

HIGHEST_US = 60_000_000  # one minute
LATENCIES = ("place_to_accepted", "place_to_filled")
_KEEP_BITS = 7


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
            orders_cancelled, orders_replaced, stops_triggered, fills (trades), deposits,
            withdrawals.
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
    buckets: dict[str, Counter[int]] = field(default_factory=dict)


def bucket(microseconds: int) -> int:
    """The lowest value of the bucket that holds `microseconds` (its top 7 bits kept)."""
    shift = microseconds.bit_length() - _KEEP_BITS
    return microseconds if shift <= 0 else (microseconds >> shift) << shift


class Metrics:
    """Where actors count and time things; one per brokerage."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._shards: list[_Shard] = []
        self._register = threading.Lock()  # taken once per thread, on its first write

    def _shard(self) -> _Shard:
        try:
            shard: _Shard = self._local.shard
        except AttributeError:
            shard = self._local.shard = _Shard()
            with self._register:
                self._shards.append(shard)
        return shard

    def count(self, name: str, amount: int = 1) -> None:
        """Add `amount` to the counter `name`."""
        self._shard().counts[name] += amount

    def latency(self, name: str, nanoseconds: int) -> None:
        """Record one latency sample of `name` ("place_to_accepted" or "place_to_filled")."""
        buckets = self._shard().buckets
        counts = buckets.get(name)
        if counts is None:
            counts = buckets[name] = Counter()
        counts[bucket(max(1, min(nanoseconds // 1000, HIGHEST_US)))] += 1

    def buckets(self, name: str) -> list[tuple[int, int]]:
        """The latency histogram of `name`: (bucket's lowest microseconds, samples), by value."""
        totals: Counter[int] = Counter()
        with self._register:
            shards = list(self._shards)
        for shard in shards:
            counts = shard.buckets.get(name)
            if counts is not None:
                totals.update(dict(counts))
        return sorted(totals.items())

    def read(self) -> tuple[dict[str, int], dict[str, LatencySummary]]:
        """Add up every shard: the counters, and the latency percentiles."""
        totals: Counter[str] = Counter()
        histograms = {name: HdrHistogram(1, HIGHEST_US, 3) for name in LATENCIES}
        with self._register:
            shards = list(self._shards)
        for shard in shards:
            totals.update(dict(shard.counts))  # dict() copies atomically under the GIL
            for name, counts in list(shard.buckets.items()):
                for value, count in dict(counts).items():
                    histograms[name].record_value(value, count)
        return dict(totals), {name: _summary(h) for name, h in histograms.items()}


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

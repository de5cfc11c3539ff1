"""What every actor of one brokerage shares: where events go, the clock, logs and metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pykka

from actors.base import Clock, send
from actors.board import Board
from actors.bus import Interest
from actors.futures import AfterAll
from actors.messages import Publish, Reply
from actors.metrics import Metrics
from engine.events import Event
from engine.journal import Fact


class Journal(Protocol):
    """Where the actors write the facts they make (see `engine.journal`)."""

    def append(self, fact: Fact, archive: Sequence[Any] = ()) -> pykka.Future[Any]:
        """Queue `fact` for the journal, with the history rows it made (`archive`: finished
        orders and new transactions, written in the same batch); the future is set once it
        is durable."""


@dataclass(frozen=True)
class Services:
    """The wiring of one brokerage, handed to each actor it starts.

    Attributes:
        bus: The event bus actor.
        interest: Which events have subscribers (written by the bus only).
        clock: Business time, integer nanoseconds since the epoch (injectable).
        log: The brokerage's structlog logger.
        metrics: Counters and latency histograms.
        monotonic: A monotonic clock in nanoseconds, for latencies.
        journal: Where facts go before a reply may say they happened (None: kept nowhere).
        board: What the actors publish for the hottest reads (quotes, the listing's count).
    """

    bus: pykka.ActorRef[Any]
    interest: Interest
    clock: Clock
    log: Any
    metrics: Metrics
    monotonic: Callable[[], int] = field(default=time.perf_counter_ns)
    journal: Journal | None = None
    board: Board = field(default_factory=Board)

    @property
    def verbose(self) -> bool:
        """True when lifecycle events at info level are logged."""
        return bool(self.log.is_enabled_for(logging.INFO))

    def durable(self, fact: Fact, archive: Sequence[Any] = ()) -> tuple[pykka.Future[Any], ...]:
        """Queue `fact` (and the history rows it made) for the journal; return what a reply
        must wait for before it says the fact happened (nothing without a journal)."""
        journal = self.journal
        return () if journal is None else (journal.append(fact, archive),)

    def answer(self, reply: Reply, value: object, fact: Fact, archive: Sequence[Any] = ()) -> None:
        """Answer `value` once the journal (if any) holds `fact` (and `archive`)."""
        durable = self.durable(fact, archive)
        reply.set(AfterAll(value, durable) if durable else value)

    def publish(self, kind: type, make: Callable[[], Event]) -> None:
        """Send the event `make()` builds to the bus, if anyone subscribed to `kind`.

        An event nobody wants is never built: snapshots cost time on the matching path.
        """
        if kind in self.interest.wanted:
            send(self.bus, Publish(make()))

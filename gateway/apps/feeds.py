"""Price feeds that drive `Brokerage.update_price` from a thread of their own.

A feed never blocks the engine: its thread sends each price as a message and moves on; at most
`window` updates are in flight at once, so a slow engine slows the feed rather than piling up.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable, Iterator
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from engine.feeds import RandomWalk, Tick, parse_price_rows
from engine.ids import Symbol
from engine.money import cents_to_decimal, parse_price
from gateway.brokerage import Brokerage


def sample_prices() -> list[Tick]:
    """The small CSV of recorded prices that ships with the project (AAPL and MSFT)."""
    text = resources.files("gateway").joinpath("data/sample_prices.csv").read_text()
    return parse_price_rows(text.splitlines())


def csv_ticks(path: str | Path) -> list[Tick]:
    """Ticks from a CSV file of `time,symbol,price` rows."""
    with open(path, encoding="utf-8") as lines:
        return parse_price_rows(lines)


def random_walk(
    broker: Brokerage, symbols: Iterable[str], *, seed: int = 0, **walk: Any
) -> Iterator[list[Tick]]:
    """A seeded random walk that starts from each symbol's current price."""
    start = {Symbol(s): parse_price(broker.quote(s).last_price) for s in symbols}
    return iter(RandomWalk(start, seed=seed, **walk))


class FeedRunner:
    """Sends a feed's ticks to a brokerage from its own thread.

    Args:
        broker: Where the prices go.
        batches: Lists of ticks, one list per step (a random walk, or a replay grouped by time).
        interval: Seconds between steps (0: as fast as the engine takes them).
        window: Price updates in flight at most.
    """

    def __init__(
        self,
        broker: Brokerage,
        batches: Iterable[list[Tick]],
        *,
        interval: float = 0.0,
        window: int = 64,
    ) -> None:
        self._broker = broker
        self._batches = iter(batches)
        self._interval = interval
        self._window = window
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="price-feed", daemon=True)
        self.sent = 0
        self.error: BaseException | None = None

    @classmethod
    def replay(cls, broker: Brokerage, ticks: list[Tick], **options: Any) -> FeedRunner:
        """Replay recorded ticks, one step per distinct time."""
        steps: dict[Decimal, list[Tick]] = collections.defaultdict(list)
        for tick in ticks:
            steps[tick.at_seconds].append(tick)
        return cls(broker, [steps[at] for at in sorted(steps)], **options)

    def start(self) -> FeedRunner:
        """Start sending; return self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the step being sent, and wait for the thread."""
        self._stop.set()
        self.join()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the feed has sent everything (or was stopped)."""
        self._thread.join(timeout)

    def _run(self) -> None:
        pending: collections.deque[Any] = collections.deque()
        try:
            for batch in self._batches:
                if self._stop.is_set():
                    break
                for tick in batch:
                    pending.append(
                        self._broker.update_price_async(tick.symbol, cents_to_decimal(tick.price))
                    )
                    self.sent += 1
                    while len(pending) >= self._window:
                        pending.popleft().get(timeout=self._broker.timeout)
                if self._interval:
                    self._stop.wait(self._interval)
            while pending:
                pending.popleft().get(timeout=self._broker.timeout)
        except BaseException as error:  # kept for the owner to see; the engine goes on
            self.error = error

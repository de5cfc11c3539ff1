"""Closed-loop throughput of market orders through the embedded `Brokerage`.

    python -m loadtest.throughput --accounts 1000 --symbols 100 --threads 4 --seconds 5

Each client thread places market orders (a buy, then a sell of the same share) for random
accounts and symbols, waiting for each answer before the next. At the end every account is
audited: cash and shares must reconcile to the cent. Prints orders/s and latency percentiles.
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from dataclasses import dataclass

from gateway import Brokerage


@dataclass(frozen=True)
class Result:
    """What one run measured."""

    orders: int
    seconds: float
    latencies_us: list[float]

    @property
    def orders_per_second(self) -> float:
        """Completed orders per second of wall time."""
        return self.orders / self.seconds

    def percentile(self, p: float) -> float:
        """The p-th percentile latency in microseconds (0 < p < 100)."""
        return statistics.quantiles(self.latencies_us, n=1000)[round(p * 10) - 1]


def run(accounts: int, symbols: int, threads: int, seconds: float, seed: int = 1) -> Result:
    """Run the scenario and return what it measured (after auditing every account)."""
    with Brokerage(timeout=60) as broker:
        names = [f"S{n:04d}" for n in range(symbols)]
        for name in names:
            broker.list_stock(name, f"Stock {name}", "100.00")
        ids = [
            broker.open_account(f"U{n}", f"user {n}", initial_deposit="1000000").account_id
            for n in range(accounts)
        ]
        latencies: list[list[float]] = [[] for _ in range(threads)]
        stop = threading.Event()
        start = threading.Barrier(threads + 1)

        def client(n: int) -> None:
            rng = random.Random(seed * 1000 + n)
            mine = latencies[n]
            start.wait()
            while not stop.is_set():
                account, symbol = rng.choice(ids), rng.choice(names)
                for side in ("buy", "sell"):
                    began = time.perf_counter()
                    broker.place_order(account, symbol, side, 1)
                    mine.append((time.perf_counter() - began) * 1e6)

        workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        start.wait()
        began = time.perf_counter()
        time.sleep(seconds)
        stop.set()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - began
        broker.audit()
        merged = [x for chunk in latencies for x in chunk]
        return Result(len(merged), elapsed, merged)


def main() -> None:
    """Parse arguments, run, print one line of figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    result = run(args.accounts, args.symbols, args.threads, args.seconds)
    print(
        f"{result.orders} orders in {result.seconds:.1f} s: {result.orders_per_second:,.0f} "
        f"orders/s; latency p50 {result.percentile(50):,.0f} us, "
        f"p99 {result.percentile(99):,.0f} us, max {max(result.latencies_us):,.0f} us "
        f"(accounts {args.accounts}, symbols {args.symbols}, threads {args.threads})"
    )


if __name__ == "__main__":
    main()

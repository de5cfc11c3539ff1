"""`brokerage bench`: throughput, latency and memory of the engine on three runtimes.

Every scenario runs on the M:N runtime ("mn"), on pykka's `ThreadingActor` ("threads") and on
the brief's own design, one exchange behind one lock ("lock"), and ends by auditing every
account: cash and shares conserved to the cent and no reservation left.
"""

from __future__ import annotations

import collections
import gc
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from hdrh.histogram import HdrHistogram
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from engine.errors import OrderNotCancellableError
from gateway import Brokerage
from loadtest.baseline import LockedExchange
from loadtest.command import DURABLE, RUNTIMES

THREAD_LIMIT = 20_000  # thread-per-actor fails near 21,800 threads on this machine


@dataclass(frozen=True)
class Sizes:
    """How big and how long each scenario runs."""

    seconds: float
    accounts: int
    symbols: int
    scale: tuple[int, ...]
    hot_accounts: int
    rates: tuple[int, ...]
    stocks: int = 10_000
    window: int = 32
    workers: int | None = None  # the M:N runtime's worker threads (None: its default)
    long_orders: int = 1_000_000
    long_chunk: int = 100_000
    stops: tuple[int, ...] = (1_000, 100_000)
    """How many stops rest in the `stops` scenario's book, one run each."""

    @classmethod
    def full(cls, seconds: float = 5.0) -> Sizes:
        """The sizes the targets are stated for."""
        return cls(seconds, 10_000, 100, (1_000, 10_000, 100_000), 1_000, (5_000, 10_000))

    @classmethod
    def quick(cls) -> Sizes:
        """A seconds-long smoke run (its figures mean nothing)."""
        return cls(
            0.3,
            200,
            10,
            (100, 300),
            50,
            (300,),
            stocks=300,
            window=8,
            long_orders=2_000,
            long_chunk=500,
            stops=(100, 1_000),
        )


@dataclass
class Run:
    """One scenario on one runtime."""

    scenario: str
    runtime: str
    accounts: int
    orders: int = 0
    seconds: float = 0.0
    orders_per_second: float = 0.0
    latency_us: dict[str, int] = field(default_factory=dict)
    rss_per_account_bytes: int | None = None
    offered_per_second: int | None = None
    skipped: str | None = None
    audit: dict[str, Any] = field(default_factory=dict)
    tries: list[int] = field(default_factory=list)
    chunks: list[dict[str, float]] = field(default_factory=list)
    """Per chunk of a long run: its orders/s and the resident set at its end (bytes)."""
    resting: int | None = None
    """The stops resting while a `stops` run moved the price."""


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _summary(latencies_ns: list[int]) -> dict[str, int]:
    histogram = HdrHistogram(1, 60_000_000, 3)
    for value in latencies_ns:
        histogram.record_value(max(1, min(value // 1000, 60_000_000)))
    if not latencies_ns:
        return {}
    return {
        "p50": histogram.get_value_at_percentile(50),
        "p90": histogram.get_value_at_percentile(90),
        "p99": histogram.get_value_at_percentile(99),
        "p99.9": histogram.get_value_at_percentile(99.9),
        "max": histogram.get_max_value(),
    }


@contextmanager
def _engine(runtime: str, sizes: Sizes) -> Iterator[Any]:
    """The engine a run uses: the lock baseline, or a brokerage on `runtime`; "mn-fsync" and
    "mn-os" are the M:N runtime journaling to a fresh SQLite store with that durability, "mn-pg"
    to a fresh schema of a PostgreSQL server with "fsync"."""
    folder = None
    schema = None
    if runtime == "lock":
        target: Any = LockedExchange()
    else:
        base, _, durability = runtime.partition("-")
        store = None
        if durability == "pg":
            store, schema = _postgres_schema()
            durability = "fsync"
        elif durability:
            folder = tempfile.mkdtemp(prefix="brokerage-bench-")
            store = f"sqlite:///{folder}/journal.db"
        target = Brokerage(
            runtime=base,
            timeout=120,
            max_in_flight=1_000_000,
            workers=sizes.workers if base == "mn" else None,
            store=store,
            durability=durability or "fsync",
        )
    try:
        with target as engine:
            yield engine
    finally:
        gc.unfreeze()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        if schema is not None:
            _drop_schema(schema)
        gc.collect()


POSTGRES = os.environ.get("BROKERAGE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_schema() -> tuple[str, str]:
    """A store URL on a fresh schema of the benchmark's PostgreSQL server, and the schema."""
    import psycopg  # noqa: PLC0415  (only the mn-pg runtime needs it)

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in POSTGRES else "?"
    return f"{POSTGRES}{separator}options=-csearch_path%3D{schema}", schema


def _drop_schema(schema: str) -> None:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


def _settled() -> None:
    """Call once set-up is done: what set-up made lives as long as the run, so the cyclic
    garbage collector stops scanning it (else a full collection of 100,000 actors' objects
    stalls every runtime alike for a few hundred milliseconds)."""
    gc.collect()
    gc.freeze()


def _audit(engine: Any, run: Run) -> None:
    """Fail loudly unless cash and shares reconcile and nothing stays reserved."""
    report = engine.audit()
    if report.reserved_cash != 0 or any(report.reserved_shares.values()):
        raise AssertionError(f"{run.scenario}/{run.runtime}: reservation left: {report}")
    if report.open_orders or report.resting_orders:
        raise AssertionError(f"{run.scenario}/{run.runtime}: orders left open: {report}")
    if report.cash != report.deposited - report.withdrawn and run.scenario == "hot-symbol":
        raise AssertionError(f"{run.scenario}/{run.runtime}: cash not conserved: {report}")
    run.audit = {
        "cash": str(report.cash),
        "deposited": str(report.deposited),
        "shares": report.shares,
        "accounts": report.accounts,
    }


def _setup(
    engine: Any, accounts: int, symbols: int, mode: str = "market", grant: int = 0
) -> tuple[list[str], list[str]]:
    names = [f"S{n:04d}" for n in range(symbols)]
    for name in names:
        engine.list_stock(name, f"Stock {name}", "100.00", mode)
    ids = []
    for n in range(accounts):
        account = engine.open_account(f"U{n}", f"user {n}", initial_deposit="1000000")
        ids.append(account.account_id)
        if grant:
            for name in names:
                engine.grant_shares(account.account_id, name, grant, "100.00")
    return ids, names


def _closed_loop(
    engine: Any,
    threads: int,
    seconds: float,
    window: int,
    make: Callable[[random.Random], tuple[Any, ...]],
) -> tuple[int, float, list[int]]:
    """Clients that each keep `window` orders in flight; return (orders, seconds, latencies)."""
    stop = threading.Event()
    start = threading.Barrier(threads + 1)
    results: list[list[int]] = [[] for _ in range(threads)]

    def client(n: int) -> None:
        rng = random.Random(n)
        pending: collections.deque[tuple[int, Any]] = collections.deque()
        mine = results[n]
        start.wait()
        while True:
            if not stop.is_set():
                pending.append((time.perf_counter_ns(), engine.place_order_async(*make(rng))))
            elif not pending:
                return
            if len(pending) >= window or stop.is_set():
                began, future = pending.popleft()
                future.get(timeout=120)
                mine.append(time.perf_counter_ns() - began)

    workers = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    merged = [x for chunk in results for x in chunk]
    return len(merged), elapsed, merged


def _market_orders(ids: list[str], names: list[str]) -> Callable[[random.Random], tuple[Any, ...]]:
    def make(rng: random.Random) -> tuple[Any, ...]:
        return (rng.choice(ids), rng.choice(names), rng.choice(("buy", "sell")), 1)

    return make


def _measure(run: Run, counted: tuple[int, float, list[int]]) -> None:
    run.orders, run.seconds, latencies = counted
    run.orders_per_second = run.orders / run.seconds if run.seconds else 0.0
    run.latency_us = _summary(latencies)


def accounts_scenario(runtime: str, sizes: Sizes, accounts: int | None = None) -> Run:
    """Market orders from 8 client threads over many accounts and symbols, market mode."""
    accounts = accounts or sizes.accounts
    run = Run("accounts", runtime, accounts)
    if runtime == "threads" and accounts > THREAD_LIMIT:
        run.skipped = f"{accounts} threads exceed this machine's thread limit"
        return run
    with _engine(runtime, sizes) as engine:
        ids, names = _setup(engine, accounts, sizes.symbols)
        # every account holds shares, so that a sell is never refused
        for future in [engine.place_order_async(a, names[0], "buy", 5) for a in ids]:
            future.get(timeout=120)
        _settled()
        make = _market_orders(ids, names)
        _measure(run, _closed_loop(engine, 8, sizes.seconds, sizes.window, make))
        _audit(engine, run)
    return run


LONG_ACCOUNTS = 100
LONG_SYMBOLS = 4


def long_run_scenario(runtime: str, sizes: Sizes) -> Run:
    """`sizes.long_orders` book-mode orders from 4 client threads over 100 accounts and 4
    symbols: half resting limit orders within 5 cents of the price, half IOC orders that cross
    them, so accounts keep buying and partly selling. Throughput and resident memory per chunk
    of `sizes.long_chunk` orders: does a fill cost the same after a million orders?"""
    run = Run("long-run", runtime, LONG_ACCOUNTS)
    if runtime == "lock":
        run.skipped = "it measures the engine's own cost over time"
        return run
    with _engine(runtime, sizes) as engine:
        ids, names = _setup(engine, LONG_ACCOUNTS, LONG_SYMBOLS, "book", grant=1_000_000)
        _settled()
        counter = itertools.count()
        threads = 4
        finished: list[list[int]] = [[] for _ in range(threads)]
        latencies: list[list[int]] = [[] for _ in range(threads)]
        samples: list[tuple[int, int]] = []
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.02):
                samples.append((time.perf_counter_ns(), _rss_bytes()))

        def order(rng: random.Random) -> tuple[Any, ...]:
            side = rng.choice(("buy", "sell"))
            account, symbol, quantity = rng.choice(ids), rng.choice(names), rng.randint(1, 10)
            if rng.random() < 0.5:  # a maker, resting near the price
                price = f"{100 + rng.randint(-5, 5) / 100:.2f}"
                return (account, symbol, side, quantity, "limit", price, "gtc")
            price = "100.10" if side == "buy" else "99.90"  # a taker: crosses every maker
            return (account, symbol, side, quantity, "limit", price, "ioc")

        def client(n: int) -> None:
            rng = random.Random(n)
            pending: collections.deque[tuple[int, Any]] = collections.deque()
            while True:
                more = next(counter) < sizes.long_orders
                if more:
                    pending.append((time.perf_counter_ns(), engine.place_order_async(*order(rng))))
                if pending and (len(pending) >= sizes.window or not more):
                    began, future = pending.popleft()
                    future.get(timeout=120)
                    now = time.perf_counter_ns()
                    finished[n].append(now)
                    latencies[n].append(now - began)
                elif not more:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        began = time.perf_counter_ns()
        samples.append((began, _rss_bytes()))
        workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        sampling.set()
        sampler.join()
        samples.append((time.perf_counter_ns(), _rss_bytes()))
        ends = sorted(t for chunk in finished for t in chunk)
        _measure(run, (len(ends), (ends[-1] - began) / 1e9, [x for c in latencies for x in c]))
        start = began
        for last in range(sizes.long_chunk - 1, len(ends), sizes.long_chunk):
            end = ends[last]
            rss = _nearest(samples, end)
            run.chunks.append(
                {"orders_per_second": sizes.long_chunk / ((end - start) / 1e9), "rss": rss}
            )
            start = end
        for account in ids:
            for left in engine.orders(account, status=["pending", "partially_filled"]):
                with suppress(OrderNotCancellableError):
                    engine.cancel_order(left.order_id)
        _audit(engine, run)
    return run


def _nearest(samples: list[tuple[int, int]], moment: int) -> int:
    """The resident set of the sample taken nearest `moment`."""
    return min(samples, key=lambda sample: abs(sample[0] - moment))[1]


def long_run_summary(run: Run, chunk: int) -> dict[str, float]:
    """The last chunk's throughput over the first's, and resident memory grown per order after
    the first chunk (bytes)."""
    first, last = run.chunks[0], run.chunks[-1]
    orders_after_first = chunk * (len(run.chunks) - 1)
    return {
        "last/first": round(last["orders_per_second"] / first["orders_per_second"], 2),
        "rss_bytes_per_order": round((last["rss"] - first["rss"]) / max(1, orders_after_first)),
    }


def idle_memory_per_account(runtime: str, accounts: int) -> int:
    """Resident memory per idle account, in bytes: measured in a fresh interpreter, which
    opens `accounts` accounts (and one stock) and compares its resident set before and after.
    A fresh process, because memory a previous run freed stays mapped in this one."""
    code = (
        f"from loadtest.bench import _probe_memory; print(_probe_memory({runtime!r}, {accounts}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600
    )
    return int(result.stdout.strip())


def _probe_memory(runtime: str, accounts: int) -> int:
    gc.collect()
    before = _rss_bytes()
    with _engine(runtime, Sizes.quick()) as engine:
        _setup(engine, accounts, 1)
        gc.collect()
        return (_rss_bytes() - before) // accounts


def scale_scenario(runtime: str, sizes: Sizes) -> list[Run]:
    """`accounts` at each size in `sizes.scale`, with resident memory per idle account."""
    runs = []
    for accounts in sizes.scale:
        run = accounts_scenario(runtime, sizes, accounts)
        run.scenario = "scale"
        if not run.skipped:
            run.rss_per_account_bytes = idle_memory_per_account(runtime, accounts)
        runs.append(run)
    return runs


def hot_symbol_scenario(runtime: str, sizes: Sizes) -> Run:
    """One book-mode symbol: 50 % limit orders near the price, 10 % market, 40 % cancels."""
    run = Run("hot-symbol", runtime, sizes.hot_accounts)
    with _engine(runtime, sizes) as engine:
        ids, names = _setup(engine, sizes.hot_accounts, 1, "book", grant=1_000)
        _settled()
        symbol = names[0]
        resting: list[list[str]] = [[] for _ in range(8)]

        def make_for(n: int) -> Callable[[random.Random], tuple[Any, ...]]:
            def make(rng: random.Random) -> tuple[Any, ...]:
                side = rng.choice(("buy", "sell"))
                roll = rng.random()
                if roll < 0.1:
                    return (rng.choice(ids), symbol, side, rng.randint(1, 5))
                price = f"{100 + rng.randint(-50, 50) / 100:.2f}"
                return (rng.choice(ids), symbol, side, rng.randint(1, 10), "limit", price)

            return make

        stop = threading.Event()
        start = threading.Barrier(9)
        latencies: list[list[int]] = [[] for _ in range(8)]
        done = [0] * 8

        def client(n: int) -> None:
            rng = random.Random(n)
            make = make_for(n)
            start.wait()
            while not stop.is_set():
                began = time.perf_counter_ns()
                if rng.random() < 0.4 and resting[n]:
                    with suppress(OrderNotCancellableError):
                        engine.cancel_order(resting[n].pop(rng.randrange(len(resting[n]))))
                else:
                    order = engine.place_order(*make(rng))
                    if order.status in ("pending", "partially_filled"):
                        resting[n].append(order.order_id)
                latencies[n].append(time.perf_counter_ns() - began)
                done[n] += 1

        workers = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(8)]
        for worker in workers:
            worker.start()
        start.wait()
        began = time.perf_counter()
        time.sleep(sizes.seconds)
        stop.set()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - began
        _measure(run, (sum(done), elapsed, [x for c in latencies for x in c]))
        for ids_left in resting:
            for order_id in ids_left:
                with suppress(OrderNotCancellableError):
                    engine.cancel_order(order_id)
        _audit(engine, run)
    return run


def hot_account_scenario(runtime: str, sizes: Sizes) -> Run:
    """16 client threads trading through one account."""
    run = Run("hot-account", runtime, 1)
    with _engine(runtime, sizes) as engine:
        ids, names = _setup(engine, 1, sizes.symbols)
        for name in names:
            engine.place_order(ids[0], name, "buy", 1_000)
        _settled()
        _measure(run, _closed_loop(engine, 16, sizes.seconds, 1, _market_orders(ids, names)))
        _audit(engine, run)
    return run


def latency_scenario(runtime: str, sizes: Sizes, rate: int) -> Run:
    """Open-loop arrivals at `rate` orders/s; latency counts from each order's scheduled send
    time, so a stall in sending is not hidden (no coordinated omission)."""
    run = Run("latency", runtime, sizes.accounts, offered_per_second=rate)
    if runtime == "threads" and sizes.accounts > THREAD_LIMIT:
        run.skipped = "thread limit"
        return run
    with _engine(runtime, sizes) as engine:
        ids, names = _setup(engine, min(sizes.accounts, 1_000), sizes.symbols)
        for future in [engine.place_order_async(a, names[0], "buy", 5) for a in ids]:
            future.get(timeout=120)
        _settled()
        make = _market_orders(ids, names)
        rng = random.Random(7)
        sent: collections.deque[tuple[int, Any] | None] = collections.deque()
        latencies: list[int] = []

        def collect() -> None:
            while True:
                while not sent:
                    time.sleep(0.0002)
                item = sent.popleft()
                if item is None:
                    return
                scheduled, future = item
                future.get(timeout=120)
                latencies.append(time.perf_counter_ns() - scheduled)

        collector = threading.Thread(target=collect, daemon=True)
        collector.start()
        interval = 1_000_000_000 // rate
        began = time.perf_counter_ns()
        total = int(rate * sizes.seconds)
        for n in range(total):
            scheduled = began + n * interval
            while time.perf_counter_ns() < scheduled:
                time.sleep(0.0001)
            sent.append((scheduled, engine.place_order_async(*make(rng))))
        sent.append(None)
        collector.join()
        elapsed = (time.perf_counter_ns() - began) / 1e9
        _measure(run, (len(latencies), elapsed, latencies))
        _audit(engine, run)
    return run


def _median_run(tries: list[Run]) -> Run:
    """The try with the median throughput (the lower middle one of an even count)."""
    ranked = sorted(tries, key=lambda r: r.orders_per_second)
    chosen = ranked[(len(ranked) - 1) // 2]
    chosen.tries = [round(r.orders_per_second) for r in tries]
    return chosen


_ADJECTIVES = (
    "Global",
    "United",
    "First",
    "American",
    "Pacific",
    "Advanced",
    "General",
    "National",
    "Digital",
    "Royal",
    "Northern",
    "Summit",
    "Liberty",
    "Silver",
)
_NOUNS = (
    "Energy",
    "Systems",
    "Holdings",
    "Foods",
    "Networks",
    "Motors",
    "Pharma",
    "Capital",
    "Logistics",
    "Semiconductor",
    "Media",
    "Retail",
    "Biotech",
    "Airlines",
    "Realty",
)
_SUFFIXES = ("Inc.", "Corp.", "Group", "Ltd.", "Co.", "plc")


def _stock(n: int) -> tuple[str, str]:
    letters = ""
    rest = n
    for _ in range(4):
        rest, digit = divmod(rest, 26)
        letters = chr(ord("A") + digit) + letters
    rng = random.Random(n)
    name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {rng.choice(_SUFFIXES)}"
    return f"Z{letters}", name


def search_scenario(runtime: str, sizes: Sizes) -> Run:
    """`search` from one client over `sizes.stocks` listed stocks: exact symbols, symbol
    prefixes, name-word prefixes and substrings, a quarter each; latency per call."""
    run = Run("search", runtime, 0)
    with _engine(runtime, sizes) as engine:
        stocks = [_stock(n) for n in range(sizes.stocks)]
        for symbol, name in stocks:
            engine.list_stock(symbol, name, "10.00")
        _settled()
        rng = random.Random(3)

        def query() -> str:
            symbol, name = rng.choice(stocks)
            kind = rng.randrange(4)
            if kind == 0:
                return symbol
            if kind == 1:
                return symbol[: rng.randint(1, 3)]
            word = rng.choice(name.split())
            if kind == 2:
                return word[: rng.randint(2, len(word))]
            start = rng.randrange(max(1, len(word) - 3))
            return word[start : start + 3]

        latencies: list[int] = []
        began = time.perf_counter()
        while time.perf_counter() - began < sizes.seconds:
            text = query()
            sent = time.perf_counter_ns()
            engine.search(text)
            latencies.append(time.perf_counter_ns() - sent)
        _measure(run, (len(latencies), time.perf_counter() - began, latencies))
        _audit(engine, run)
    return run


STOP_ACCOUNTS = 100


def stops_scenario(runtime: str, sizes: Sizes) -> list[Run]:
    """Price moves of one market-mode symbol with many stops resting (each size in
    `sizes.stops`): 40 % sell stops and 40 % buy stops far from the price, 20 % trailing sells
    whose trail the moves never cover; the price walks between 95 and 105 (its highs merge the
    trailing stops' marks), and one move in ten triggers a stop placed just for it, which
    fills. Each run's figure is moves per second and the latency of a move (the feed's call,
    which returns once the fills it triggered are settled)."""
    runs = []
    for resting in sizes.stops:
        run = Run("stops", runtime, STOP_ACCOUNTS, resting=resting)
        if runtime == "lock":
            run.skipped = "the lock baseline has no stop orders"
            runs.append(run)
            continue
        with _engine(runtime, sizes) as engine:
            ids, (symbol,) = _setup(engine, STOP_ACCOUNTS, 1, grant=resting // STOP_ACCOUNTS + 100)
            rng = random.Random(resting)
            placed: list[str] = []
            for n in range(resting):
                account = ids[n % STOP_ACCOUNTS]
                roll = rng.random()
                if roll < 0.4:
                    stop = f"{rng.randint(5_000, 8_900) / 100:.2f}"
                    order = engine.place_order(account, symbol, "sell", 1, "stop", stop_price=stop)
                elif roll < 0.8:
                    stop = f"{rng.randint(11_100, 15_000) / 100:.2f}"
                    order = engine.place_order(account, symbol, "buy", 1, "stop", stop_price=stop)
                else:
                    trail = f"{rng.randint(1_500, 4_000) / 100:.2f}"
                    order = engine.place_order(
                        account, symbol, "sell", 1, "trailing_stop", trail_percent=trail
                    )
                placed.append(order.order_id)
            _settled()
            latencies: list[int] = []
            moves = 0
            began = time.perf_counter()
            while time.perf_counter() - began < sizes.seconds:
                price = rng.randint(9_500, 10_500)
                if moves % 10 == 0:  # a stop this move triggers: it sells at the new price
                    engine.place_order(
                        ids[moves % STOP_ACCOUNTS],
                        symbol,
                        "sell",
                        1,
                        "stop",
                        stop_price=f"{(price + 1) / 100:.2f}",
                    )
                sent = time.perf_counter_ns()
                engine.update_price(symbol, f"{price / 100:.2f}")
                latencies.append(time.perf_counter_ns() - sent)
                moves += 1
            _measure(run, (moves, time.perf_counter() - began, latencies))
            for order_id in placed:
                engine.cancel_order(order_id)
            _audit(engine, run)
        runs.append(run)
    return runs


def stops_ratio(runs: list[Run]) -> dict[str, dict[str, float]]:
    """Per runtime, the `stops` scenario's median move time with the most stops resting over
    that with the fewest (the target: at most 2x), with both medians in microseconds."""
    result: dict[str, dict[str, float]] = {}
    by_runtime: dict[str, list[Run]] = collections.defaultdict(list)
    for run in runs:
        if run.scenario == "stops" and not run.skipped and run.latency_us:
            by_runtime[run.runtime].append(run)
    for runtime, found in by_runtime.items():
        if len(found) < 2:
            continue
        found.sort(key=lambda run: run.resting or 0)
        few, many = found[0], found[-1]
        result[runtime] = {
            "fewest": few.resting or 0,
            "most": many.resting or 0,
            "p50_us_fewest": few.latency_us["p50"],
            "p50_us_most": many.latency_us["p50"],
            "ratio": round(many.latency_us["p50"] / max(1, few.latency_us["p50"]), 2),
        }
    return result


def run_bench(
    scenarios: tuple[str, ...],
    runtimes: tuple[str, ...],
    sizes: Sizes,
    console: Console | None = None,
    repeat: int = 1,
) -> list[Run]:
    """Run each scenario on each runtime `repeat` times with a progress bar; return, for each
    scenario, size and runtime, the run with the median throughput."""
    jobs: list[tuple[str, str, Callable[[], Run | list[Run]]]] = []
    simple: dict[str, Callable[[str, Sizes], Run | list[Run]]] = {
        "accounts": accounts_scenario,
        "scale": scale_scenario,
        "hot-symbol": hot_symbol_scenario,
        "hot-account": hot_account_scenario,
        "search": search_scenario,
        "long-run": long_run_scenario,
        "stops": stops_scenario,
    }
    for scenario in scenarios:
        for runtime in runtimes:
            if scenario in simple:
                jobs.append((scenario, runtime, partial(simple[scenario], runtime, sizes)))
            else:
                for rate in sizes.rates:
                    jobs.append(
                        (
                            f"latency@{rate}",
                            runtime,
                            partial(latency_scenario, runtime, sizes, rate),
                        )
                    )
    runs: list[Run] = []
    with Progress(console=console or Console(stderr=True), transient=True) as progress:
        task = progress.add_task("bench", total=len(jobs) * repeat)
        for scenario, runtime, job in jobs:
            tries: list[list[Run]] = []
            for attempt in range(repeat):
                progress.update(task, description=f"{scenario} on {runtime} ({attempt + 1})")
                result = job()
                tries.append(result if isinstance(result, list) else [result])
                progress.advance(task)
            runs.extend(_median_run(list(same)) for same in zip(*tries, strict=True))
    return runs


def ratios(runs: list[Run]) -> dict[str, dict[str, float]]:
    """Per scenario (and size or rate), mn/threads and mn/lock throughput ratios, and what
    journaling keeps: mn-fsync/mn and mn-os/mn."""
    by_key: dict[str, dict[str, Run]] = collections.defaultdict(dict)
    for run in runs:
        key = f"{run.scenario}@{run.offered_per_second or run.resting or run.accounts}"
        by_key[key][run.runtime] = run
    result: dict[str, dict[str, float]] = {}
    for key, per_runtime in by_key.items():
        mn = per_runtime.get("mn")
        if mn is None or not mn.orders_per_second:
            continue
        entry = {}
        for other in ("threads", "lock"):
            baseline = per_runtime.get(other)
            if baseline is not None and baseline.orders_per_second:
                entry[f"mn/{other}"] = round(mn.orders_per_second / baseline.orders_per_second, 2)
        for durable in DURABLE:
            journaled = per_runtime.get(durable)
            if journaled is not None:
                entry[f"{durable}/mn"] = round(
                    journaled.orders_per_second / mn.orders_per_second, 2
                )
        if entry:
            result[key] = entry
    return result


def table(runs: list[Run]) -> Table:
    """The runs as a rich table."""
    grid = Table(title="brokerage bench")
    for column in (
        "scenario",
        "runtime",
        "accounts",
        "orders/s",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "max us",
        "RSS/account",
    ):
        grid.add_column(column, justify="right")
    for run in runs:
        scenario = run.scenario + (f"@{run.offered_per_second}/s" if run.offered_per_second else "")
        if run.resting is not None:
            scenario += f" ({run.resting:,} resting)"
        if run.skipped:
            grid.add_row(
                scenario,
                run.runtime,
                f"{run.accounts:,}",
                "skipped: " + run.skipped,
                "",
                "",
                "",
                "",
                "",
            )
            continue
        lat = run.latency_us
        grid.add_row(
            scenario,
            run.runtime,
            f"{run.accounts:,}",
            f"{run.orders_per_second:,.0f}",
            *(f"{lat.get(k, 0):,}" for k in ("p50", "p99", "p99.9", "max")),
            "" if run.rss_per_account_bytes is None else f"{run.rss_per_account_bytes:,} B",
        )
    return grid


def plot(runs: list[Run], path: str) -> None:
    """Throughput and p99 latency charts, one bar per scenario and runtime."""
    try:
        import matplotlib  # noqa: PLC0415  (imported here: slow to import, needed only here)
    except ImportError:
        raise SystemExit(
            "--plot draws charts with matplotlib: pip install 'brokerage[plots]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    done = [r for r in runs if not r.skipped]
    labels = sorted({f"{r.scenario}@{r.offered_per_second or r.accounts}" for r in done})
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(max(8, len(labels) * 1.4), 8))
    width = 0.8 / len(RUNTIMES)
    for offset, runtime in enumerate(RUNTIMES):
        values = {
            f"{r.scenario}@{r.offered_per_second or r.accounts}": r
            for r in done
            if r.runtime == runtime
        }
        xs = [i + offset * width for i in range(len(labels))]
        top.bar(
            xs,
            [values[k].orders_per_second if k in values else 0 for k in labels],
            width,
            label=runtime,
        )
        bottom.bar(
            xs,
            [values[k].latency_us.get("p99", 0) / 1000 if k in values else 0 for k in labels],
            width,
            label=runtime,
        )
    bottom.set_yscale("log")  # thread-per-actor latencies run 1,000 times the others'
    for axis, title in ((top, "orders/s"), (bottom, "p99 latency (ms, log scale)")):
        axis.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))])
        axis.set_xticklabels(labels, rotation=20, fontsize=8)
        axis.set_title(title)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def as_json(runs: list[Run]) -> str:
    """Every run and the ratios, as JSON."""
    return json.dumps(
        {"runs": [asdict(r) for r in runs], "ratios": ratios(runs), "stops": stops_ratio(runs)},
        indent=2,
    )

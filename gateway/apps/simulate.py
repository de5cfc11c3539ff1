"""`brokerage simulate`: trader agents, each with its own account, trading through the public
API while prices move.

Agents: noise traders (random market and limit orders, cancels, deposits, withdrawals and price
alerts), market makers (two-sided quotes around the price, re-quoted as it moves; `book` mode),
momentum traders (follow the last move) and value traders (buy below, sell above a private fair
value). In `market` mode a price feed moves prices; in `book` mode the agents make them.

With `deterministic=True` the agents act one at a time in a fixed order on a simulated clock,
one round per simulated second, so the same seed gives the same trades and balances.
"""

from __future__ import annotations

import bisect
import itertools
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.live import Live
from rich.table import Table

from engine.errors import (
    InsufficientAvailableCashError,
    OrderNotCancellableError,
    OrderNotReplaceableError,
    ValidationError,
)
from engine.events import PriceChanged
from engine.feeds import RandomWalk, Tick
from engine.ids import Symbol
from engine.money import cents_to_decimal, parse_price
from engine.orders import OrderStatus, datetime_to_ns
from engine.session import SimulatedClock
from engine.universe import DEFAULT_UNIVERSE
from gateway.apps.feeds import FeedRunner, csv_ticks, sample_prices
from gateway.brokerage import Brokerage

AGENT_KINDS = ("noise", "maker", "momentum", "value")
DEFAULT_MIX = {"noise": 0.6, "maker": 0.1, "momentum": 0.15, "value": 0.15}
START_CASH = Decimal("100000")
GRANTED_SHARES = 200  # per account, of each of two symbols, in book mode (someone must sell)


FINISH_ROUNDS = 5
"""Rounds of cancels at the end: cancelling an entry that filled in part sets its exit legs
working, which the next round cancels."""


@dataclass
class SimulationConfig:
    """What to simulate (see `brokerage simulate --help`)."""

    accounts: int = 10_000
    symbols: int = len(DEFAULT_UNIVERSE)
    seconds: float = 30.0
    mode: str = "market"
    feed: str = "walk"
    csv_path: str | None = None
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    seed: int = 0
    deterministic: bool = False
    steps: int = 20
    threads: int = 4
    store: str | None = None  # journal the run there, for `brokerage replay` afterwards
    fees: str | None = None  # the brokerage's fee schedule (`FeeSchedule.parse_text`)
    slippage: str | None = None  # market mode's slippage model (`Slippage.parse_text`)
    latency_ms: tuple[int, int] | None = None
    """Each agent's latency is drawn from this range (milliseconds, seeded): it decides on the
    price of that long ago, and its orders meet the market as it is (None: no latency)."""
    margin: str | None = None
    """With margin rules (`MarginRules.parse_text`; "" for Reg T's defaults), the agents'
    accounts are margin accounts: they borrow, noise traders sell short, and every account
    is checked against maintenance as the run goes (None: cash accounts)."""
    auto_liquidate: bool = False
    """With `margin`, liquidate each account that falls below maintenance."""


def _price(cents: int) -> str:
    return str(cents_to_decimal(max(1, cents)))


class Trading(Protocol):
    """What an agent acts through: a running brokerage (a `Simulation`, or the server's venue,
    gateway/apps/venue.py)."""

    broker: Brokerage

    def seen_price(self, symbol: Symbol, latency_ns: int) -> int | None:
        """The price of `symbol` as an agent `latency_ns` behind sees it (None: the last)."""


class PriceTape:
    """The prices each symbol had, with when, so that an agent with a latency decides on the
    price of `latency` ago (its order then meets the market as it is when it arrives)."""

    KEEP = 20_000
    """Points kept per symbol (the oldest half goes past twice that)."""

    def __init__(self) -> None:
        self._times: dict[Symbol, list[int]] = {}
        self._prices: dict[Symbol, list[int]] = {}
        self._lock = threading.Lock()

    def record(self, symbol: Symbol, at_ns: int, price: int) -> None:
        """The price of `symbol` from `at_ns` on (times come in order)."""
        with self._lock:
            times = self._times.setdefault(symbol, [])
            prices = self._prices.setdefault(symbol, [])
            times.append(at_ns)
            prices.append(price)
            if len(times) > 2 * self.KEEP:
                del times[: self.KEEP], prices[: self.KEEP]

    def seen(self, symbol: Symbol, moment_ns: int) -> int | None:
        """The price of `symbol` at `moment_ns` (None: none recorded by then)."""
        with self._lock:
            times = self._times.get(symbol)
            if not times:
                return None
            where = bisect.bisect_right(times, moment_ns)
            return self._prices[symbol][where - 1] if where else None


class Agent:
    """One trader with one account; `act` does one thing through the public API."""

    kind = "agent"

    def __init__(self, account_id: str, symbols: list[Symbol], rng: random.Random) -> None:
        self.account_id = account_id
        self.symbols = symbols
        self.rng = rng
        self.resting: list[str] = []
        self.counts: Counter[str] = Counter()
        self.invested = Decimal(0)
        """Cash put in less cash taken out, plus the stated cost of shares granted."""
        self.latency_ns = 0
        """How far behind the market it sees prices (its orders meet the market as it is)."""
        self.shorts = False
        """Whether it may sell short (its account is a margin account)."""

    def price(self, sim: Trading, symbol: Symbol) -> int:
        """The symbol's price in cents as it sees it: the last, or `latency_ns` ago."""
        if self.latency_ns:
            seen = sim.seen_price(symbol, self.latency_ns)
            if seen is not None:
                return seen
        return parse_price(sim.broker.quote(symbol).last_price)

    def order(self, sim: Trading, *args: Any, **kwargs: Any) -> Any:
        """Place an order and remember it if it rests."""
        placed = sim.broker.place_order(self.account_id, *args, **kwargs)
        kind = kwargs.get("order_class") or (args[3] if len(args) > 3 else "market")
        self.counts[f"{kind} {args[1]}"] += 1
        if placed.status in ("pending", "partially_filled"):
            self.resting.append(placed.order_id)
        return placed

    def cancel_one(self, sim: Trading) -> None:
        """Cancel one of its resting orders (it may have filled meanwhile)."""
        if self.resting:
            order_id = self.resting.pop(self.rng.randrange(len(self.resting)))
            self.counts["cancel"] += 1
            with suppress(OrderNotCancellableError):
                sim.broker.cancel_order(order_id)

    def holds(self, sim: Trading, symbol: Symbol) -> int:
        """Shares held and not reserved."""
        for holding in sim.broker.portfolio(self.account_id).holdings:
            if holding.symbol == symbol:
                return holding.quantity - holding.reserved
        return 0

    def act(self, sim: Trading) -> None:
        """Do one thing."""
        raise NotImplementedError


class NoiseTrader(Agent):
    """Random market and limit orders, cancels, cash moves and price alerts."""

    kind = "noise"

    def act(self, sim: Trading) -> None:
        roll = self.rng.random()
        symbol = self.rng.choice(self.symbols)
        side = self.rng.choice(("buy", "sell"))
        if roll < 0.65:
            quantity = self.rng.randint(1, 10)
            if side == "sell":  # like a user, sell only what is there (mostly: it may race)
                held = self.holds(sim, symbol)
                if held > 0:
                    quantity = min(quantity, held)
                elif not (self.shorts and self.rng.random() < 0.5):  # else it sells short
                    side, quantity = "buy", self.rng.randint(1, 10)
            if roll < 0.45:
                near = self.price(sim, symbol) * self.rng.randint(9_900, 10_100) // 10_000
                self.order(sim, symbol, side, quantity, "limit", _price(near))
            else:
                self.order(sim, symbol, side, quantity)
        elif roll < 0.85:
            self.cancel_one(sim)
        elif roll < 0.92:
            sim.broker.deposit(self.account_id, "100.00")
            self.invested += 100
            self.counts["deposit"] += 1
        elif roll < 0.97:
            with suppress(InsufficientAvailableCashError):
                sim.broker.withdraw(self.account_id, "50.00")
                self.invested -= 50
                self.counts["withdraw"] += 1
        else:
            level = self.price(sim, symbol) * (102 if side == "buy" else 98) // 100
            condition = "above" if side == "buy" else "below"
            sim.broker.add_alert(self.account_id, symbol, condition, _price(level))
            self.counts["alert"] += 1


class MarketMaker(Agent):
    """Quotes both sides of one symbol around its price and re-quotes when it moves."""

    kind = "maker"

    def act(self, sim: Trading) -> None:
        symbol = self.symbols[0]
        for order_id in self.resting:
            with suppress(OrderNotCancellableError):
                sim.broker.cancel_order(order_id)
                self.counts["cancel"] += 1
        self.resting.clear()
        mid = self.price(sim, symbol)
        spread = max(1, mid // 200)
        self.order(sim, symbol, "buy", 10, "limit", _price(mid - spread))
        if self.holds(sim, symbol) >= 10:
            self.order(sim, symbol, "sell", 10, "limit", _price(mid + spread))


class MomentumTrader(Agent):
    """Buys after a rise and sells after a fall of the symbol it watches; protects what it
    buys with a bracket (a take-profit 3-6 % above, a stop-loss 2-4 % under, which it raises
    as the price rises) or with a trailing stop (2-4 % under the high)."""

    kind = "momentum"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.last: dict[Symbol, int] = {}
        self.stops: dict[Symbol, tuple[str, int]] = {}
        """Its latest bracket's stop-loss per symbol: leg id and stop price (cents)."""

    def act(self, sim: Trading) -> None:
        symbol = self.rng.choice(self.symbols)
        now = self.price(sim, symbol)
        before = self.last.get(symbol)
        self.last[symbol] = now
        if before is None or now == before:
            return
        if now > before:
            if symbol in self.stops and self.raise_stop(sim, symbol, now):
                return
            if self.rng.random() < 0.5:
                up, down = self.rng.randint(300, 600), self.rng.randint(200, 400)
                stop = now * (10_000 - down) // 10_000
                placed = self.order(
                    sim,
                    symbol,
                    "buy",
                    self.rng.randint(1, 5),
                    order_class="bracket",
                    take_profit={"limit_price": _price(now * (10_000 + up) // 10_000)},
                    stop_loss={"stop_price": _price(stop)},
                )
                if placed.legs:
                    self.stops[symbol] = (placed.legs[-1], stop)
                return
            bought = self.order(sim, symbol, "buy", self.rng.randint(1, 5))
            if bought.filled_quantity:
                trail = f"{self.rng.randint(200, 400) / 100:.2f}"
                self.order(
                    sim,
                    symbol,
                    "sell",
                    bought.filled_quantity,
                    "trailing_stop",
                    trail_percent=trail,
                )
        elif self.holds(sim, symbol):
            self.order(sim, symbol, "sell", min(5, self.holds(sim, symbol)))

    def raise_stop(self, sim: Trading, symbol: Symbol, now: int) -> bool:
        """Raise its bracket's stop-loss to 2.5 % under the price if that is higher (held or
        working, the leg is replaced in its place); return whether it did."""
        leg, stop = self.stops[symbol]
        higher = now * 9_750 // 10_000
        if higher <= stop:
            return False
        try:
            new = sim.broker.replace_order(leg, stop_price=_price(higher))
        except (OrderNotReplaceableError, ValidationError):  # it ended, or would pass its pair
            del self.stops[symbol]
            return False
        self.counts["raise stop-loss"] += 1
        self.stops[symbol] = (new.order_id, higher)
        return True


class ValueTrader(Agent):
    """Buys below and sells above a private fair value of each symbol, which drifts; keeps one
    working limit per symbol and replaces it as its estimate moves."""

    kind = "value"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.fair: dict[Symbol, int] = {}
        self.working: dict[Symbol, tuple[str, str]] = {}  # symbol -> (order id, side)

    def act(self, sim: Trading) -> None:
        symbol = self.rng.choice(self.symbols)
        now = self.price(sim, symbol)
        fair = self.fair.setdefault(symbol, now * self.rng.randint(90, 110) // 100)
        fair = self.fair[symbol] = max(1, fair * self.rng.randint(995, 1005) // 1000)
        working = self.working.get(symbol)
        if working is not None:
            order_id, side = working
            if side == "buy":  # just under the market, and no higher than its estimate allows
                target = min(now * 995 // 1000, fair * 98 // 100)
            else:
                target = max(now * 1005 // 1000 + 1, fair * 102 // 100)
            try:
                new = sim.broker.replace_order(order_id, limit_price=_price(target))
            except (OrderNotReplaceableError, ValidationError):  # it filled meanwhile
                del self.working[symbol]
                return
            self.counts[f"replace {side}"] += 1
            if new.status.is_final:  # refused (the estimate moved beyond its cash) or filled
                if new.status is not OrderStatus.REJECTED:
                    del self.working[symbol]
                return
            self.resting.append(new.order_id)
            self.working[symbol] = (new.order_id, side)
            return
        if now * 100 < fair * 98:
            side = "buy"
        elif now * 100 > fair * 102 and self.holds(sim, symbol) >= 5:
            side = "sell"
        else:
            return
        limit = now * 995 // 1000 if side == "buy" else now * 1005 // 1000 + 1
        placed = self.order(sim, symbol, side, 5, "limit", _price(limit))
        if not placed.status.is_final:
            self.working[symbol] = (placed.order_id, side)


AGENTS: dict[str, type[Agent]] = {
    "noise": NoiseTrader,
    "maker": MarketMaker,
    "momentum": MomentumTrader,
    "value": ValueTrader,
}


class Simulation:
    """Sets up a brokerage, its agents and its price feed, runs them, and reports."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.clock = SimulatedClock(datetime(2026, 1, 5, 14, 30, tzinfo=UTC))
        options: dict[str, Any] = {
            "max_in_flight": 1_000_000,
            "store": config.store,
            "fees": config.fees,
            "slippage": config.slippage,
            "margin": config.margin or None,
            "auto_liquidate": config.auto_liquidate,
            "margin_check_seconds": None if config.deterministic else 1.0,
        }
        self.broker = (
            Brokerage(clock=self.clock, **options) if config.deterministic else Brokerage(**options)
        )
        self.agents: list[Agent] = []
        self.symbols: list[Symbol] = []
        self.granted: Counter[Symbol] = Counter()
        self.elapsed = 0.0
        self.began: float | None = None
        """When `run` began (perf_counter), once it has."""
        self.tape = PriceTape() if config.latency_ms else None
        """Past prices, for agents with a latency."""

    def seen_price(self, symbol: Symbol, latency_ns: int) -> int | None:
        """The price of `symbol` `latency_ns` ago: on the simulated clock, as the rounds left
        it (a deterministic run knows prices once a round); else as it moved."""
        if self.tape is None:
            return None
        return self.tape.seen(symbol, self._now() - latency_ns)

    def _now(self) -> int:
        """The brokerage's clock: simulated in a deterministic run, else the real one."""
        return self.clock() if self.config.deterministic else time.time_ns()

    def _record_prices(self) -> None:
        """Put every symbol's last price on the tape (a round's end, or the start)."""
        assert self.tape is not None
        now = self._now()
        for symbol in self.symbols:
            self.tape.record(symbol, now, parse_price(self.broker.quote(symbol).last_price))

    def _taped(self, event: Any) -> None:
        assert self.tape is not None
        price = parse_price(event.new_price)
        self.tape.record(event.symbol, datetime_to_ns(event.at), price)

    # -- set-up --------------------------------------------------------------------------------

    def setup(self) -> None:
        """List the stocks, open the accounts, make the agents."""
        config = self.config
        self.broker.start()
        for symbol, name, price in DEFAULT_UNIVERSE[: config.symbols]:
            self.broker.list_stock(symbol, name, price, config.mode)
            self.symbols.append(Symbol(symbol))
        rng = random.Random(config.seed)
        kinds = [k for k in AGENT_KINDS if config.mix.get(k, 0) > 0]
        weights = [config.mix[k] for k in kinds]
        for n in range(config.accounts):
            kind = rng.choices(kinds, weights)[0]
            if kind == "maker" and config.mode != "book":
                kind = "noise"  # in market mode the feed makes prices
            account = self.broker.open_account(
                f"trader-{n}",
                f"Trader {n}",
                initial_deposit=str(START_CASH),
                agent=True,
                margin=config.margin is not None,
            ).account_id
            own_rng = random.Random(rng.getrandbits(64))
            symbols = list(self.symbols)
            if kind == "maker":
                symbols = [self.symbols[n % len(self.symbols)]]
            agent = AGENTS[kind](account, symbols, own_rng)
            agent.shorts = config.margin is not None
            if config.latency_ms:  # its own draw: the agents' choices stay as without one
                low, high = config.latency_ms
                lag = random.Random(f"latency:{config.seed}:{n}").randint(low, high)
                agent.latency_ns = lag * 1_000_000
            agent.invested += START_CASH
            if config.mode == "book":
                for symbol in sorted({symbols[0], self.symbols[n % len(self.symbols)]}):
                    cost = self.broker.quote(symbol).last_price
                    self.broker.grant_shares(account, symbol, GRANTED_SHARES, cost)
                    self.granted[symbol] += GRANTED_SHARES
                    agent.invested += cost * GRANTED_SHARES
            self.agents.append(agent)

    def _walk(self) -> RandomWalk:
        start = {s: parse_price(self.broker.quote(s).last_price) for s in self.symbols}
        return RandomWalk(start, seed=self.config.seed, volatility="0.8")

    def _replay(self) -> list[Tick]:
        ticks = csv_ticks(self.config.csv_path) if self.config.csv_path else sample_prices()
        return [t for t in ticks if t.symbol in self.symbols]

    # -- running -------------------------------------------------------------------------------

    def progress(self) -> dict[str, Any]:
        """How far the run is (the operator's view of a served run shows it)."""
        began = self.began
        elapsed = 0.0 if began is None else time.perf_counter() - began
        config = self.config
        return {
            "mode": config.mode,
            "agents": len(self.agents),
            "seconds": config.seconds,
            "elapsed": round(self.elapsed or elapsed, 1),
            "done": bool(self.elapsed),
        }

    def run(self, on_tick: Any = None) -> None:
        """Run the agents (and the feed, in market mode) until done."""
        began = self.began = time.perf_counter()
        if self.config.deterministic:
            self._run_in_order()
        else:
            self._run_threads(on_tick)
        self.elapsed = time.perf_counter() - began

    def _run_in_order(self) -> None:
        walk = self._walk() if self.config.mode == "market" else None
        replay = iter(self._replay()) if self.config.feed == "csv" else None
        if self.tape is not None:
            self._record_prices()
        for _ in range(self.config.steps):
            for agent in self.agents:
                agent.act(self)
            self.clock.advance(1)
            if walk is not None and replay is None:
                for tick in walk.step():
                    self.broker.update_price(tick.symbol, cents_to_decimal(tick.price))
            elif replay is not None and self.config.mode == "market":
                for tick in itertools.islice(replay, len(self.symbols)):
                    self.broker.update_price(tick.symbol, cents_to_decimal(tick.price))
            if self.tape is not None:
                self._record_prices()
            if self.config.margin is not None:  # the checks, at a round's end: repeatable
                self.broker.margin_calls()

    def _run_threads(self, on_tick: Any) -> None:
        config = self.config
        feed = None
        if self.tape is not None:
            self.broker.subscribe(self._taped, [PriceChanged])
            self._record_prices()
        if config.mode == "market":
            runner = (
                FeedRunner.replay(self.broker, self._replay(), interval=0.2)
                if config.feed == "csv"
                else FeedRunner(self.broker, iter(self._walk()), interval=0.05)
            )
            feed = runner.start()
        stop = threading.Event()
        errors: list[BaseException] = []

        def trade(n: int) -> None:
            mine = self.agents[n :: config.threads]
            try:
                for agent in itertools.cycle(mine):
                    if stop.is_set():
                        return
                    agent.act(self)
            except BaseException as error:
                errors.append(error)
                stop.set()

        workers = [
            threading.Thread(target=trade, args=(n,), daemon=True)
            for n in range(min(config.threads, len(self.agents)))
        ]
        for worker in workers:
            worker.start()
        deadline = time.perf_counter() + config.seconds
        while time.perf_counter() < deadline and not stop.is_set():
            stop.wait(0.5)
            if on_tick is not None:
                on_tick(self)
        stop.set()
        for worker in workers:
            worker.join()
        if feed is not None:
            feed.stop()
        if errors:
            raise errors[0]

    # -- the end -------------------------------------------------------------------------------

    def finish(self) -> dict[str, Any]:
        """Cancel every resting order (of every account: programs may have joined the run
        over HTTP), check conservation, and build the report."""
        broker = self.broker
        accounts = broker.accounts()
        for _ in range(FINISH_ROUNDS):  # an entry ended with shares filled sets its legs working
            working = [
                order
                for account_id in accounts
                for order in broker.orders(account_id, status=["pending", "partially_filled"])
            ]
            for order in working:
                with suppress(OrderNotCancellableError):
                    broker.cancel_order(order.order_id)
            if not working:
                break
        audit = broker.audit()
        metrics = broker.metrics()
        deposited = audit.deposited
        conservation: dict[str, Any] = {
            "reserved_cash": str(audit.reserved_cash),
            "reserved_shares": sum(audit.reserved_shares.values()),
            "open_orders": audit.open_orders,
            "cash": str(audit.cash),
            "deposits_minus_withdrawals": str(deposited - audit.withdrawn),
            "fees": str(audit.fees),
        }
        ok = audit.reserved_cash == 0 and not any(audit.reserved_shares.values())
        ok = ok and audit.open_orders == 0
        if self.config.mode == "book":
            ok = ok and audit.cash == deposited - audit.withdrawn - audit.fees
            ok = ok and all(audit.shares[s] == self.granted[s] for s in self.symbols)
        conservation["ok"] = ok  # every account also reconciled itself with its ledger
        results = []
        for agent in self.agents:
            portfolio = broker.portfolio(agent.account_id)
            results.append((portfolio.net_worth - agent.invested, agent))
        results.sort(key=lambda item: item[0])
        counts: Counter[str] = Counter()
        for agent in self.agents:
            counts.update(agent.counts)
        quotes = [broker.quote(s) for s in self.symbols]
        return {
            "mode": self.config.mode,
            "accounts": len(self.agents),
            "agents": dict(Counter(a.kind for a in self.agents)),
            "seconds": round(self.elapsed, 3),
            "orders_per_second": round(metrics.counters["orders_accepted"] / self.elapsed, 1)
            if self.elapsed
            else 0.0,
            "latency_us": {k: vars_of(v) for k, v in metrics.latency_us.items()},
            "orders": dict(counts),
            "counters": metrics.counters,
            "rejected_by_reason": metrics.rejected_by_reason,
            "best": [self._line(pl, a) for pl, a in reversed(results[-5:])],
            "worst": [self._line(pl, a) for pl, a in results[:5]],
            "symbols": {
                q.symbol: {
                    "open": str(q.open),
                    "high": str(q.high),
                    "low": str(q.low),
                    "close": str(q.last_price),
                    "volume": q.volume,
                }
                for q in quotes
            },
            "conservation": conservation,
            "profit_and_loss": [str(pl) for pl, _ in results],
        }

    @staticmethod
    def _line(pl: Decimal, agent: Agent) -> dict[str, str]:
        return {"account_id": agent.account_id, "agent": agent.kind, "pl": str(pl)}

    def close(self) -> None:
        """Stop the brokerage."""
        self.broker.close()


def vars_of(summary: Any) -> dict[str, int]:
    """A latency summary as a plain dict."""
    return {
        "count": summary.count,
        "p50": summary.p50,
        "p90": summary.p90,
        "p99": summary.p99,
        "p99.9": summary.p999,
        "max": summary.max,
    }


class LiveView:
    """What `brokerage simulate` shows while it runs: rate, fills, rejections, busiest prices."""

    def __init__(self) -> None:
        self.began = time.perf_counter()
        self.last = (self.began, 0)

    def render(self, sim: Simulation) -> Table:
        """A table of the simulation's state now."""
        metrics = sim.broker.metrics()
        now = time.perf_counter()
        accepted = metrics.counters["orders_accepted"] + metrics.counters["orders_rejected"]
        then, before = self.last
        rate = (accepted - before) / (now - then) if now > then else 0.0
        self.last = (now, accepted)
        table = Table(title="brokerage simulate", show_header=False)
        table.add_row("elapsed", f"{now - self.began:,.1f} s")
        table.add_row("orders/s", f"{rate:,.0f}")
        table.add_row("orders", f"{accepted:,}")
        table.add_row("fills", f"{metrics.counters['fills']:,}")
        rejected = ", ".join(f"{k} {v:,}" for k, v in sorted(metrics.rejected_by_reason.items()))
        table.add_row("rejected", rejected or "none")
        quotes = sorted((sim.broker.quote(s) for s in sim.symbols), key=lambda q: -q.volume)[:5]
        table.add_row("busiest", "  ".join(f"{q.symbol} {q.last_price}" for q in quotes))
        return table


def summary_table(report: dict[str, Any]) -> Table:
    """The final report as a table."""
    table = Table(title="simulation report", show_header=False)
    latency = report["latency_us"]["place_to_filled"]
    table.add_row("mode, accounts", f"{report['mode']}, {report['accounts']:,} {report['agents']}")
    table.add_row(
        "throughput", f"{report['orders_per_second']:,} orders/s over {report['seconds']} s"
    )
    table.add_row(
        "place->filled us",
        f"p50 {latency['p50']:,}  p99 {latency['p99']:,}  max {latency['max']:,}",
    )
    table.add_row("orders", ", ".join(f"{k} {v:,}" for k, v in sorted(report["orders"].items())))
    table.add_row("fills", f"{report['counters']['fills']:,}")
    table.add_row(
        "rejected",
        ", ".join(f"{k} {v:,}" for k, v in sorted(report["rejected_by_reason"].items())) or "none",
    )
    table.add_row(
        "best P/L",
        ", ".join(f"{b['account_id']} ({b['agent']}) {b['pl']}" for b in report["best"][:3]),
    )
    table.add_row(
        "worst P/L",
        ", ".join(f"{w['account_id']} ({w['agent']}) {w['pl']}" for w in report["worst"][:3]),
    )
    for symbol, day in list(report["symbols"].items())[:8]:
        table.add_row(
            symbol,
            f"O {day['open']} H {day['high']} L {day['low']} C {day['close']} V {day['volume']:,}",
        )
    conservation = report["conservation"]
    if conservation["fees"] != "0.00":
        table.add_row("fees paid", conservation["fees"])
    table.add_row(
        "conservation",
        "OK: cash and shares conserved to the cent, nothing reserved"
        if conservation["ok"]
        else f"FAILED: {conservation}",
    )
    return table


def write_report(sim: Simulation, report: dict[str, Any], directory: str) -> list[Path]:
    """Write report.json and PNG charts (price paths, P/L distribution, latency) to
    `directory`; return the files written."""
    try:
        import matplotlib  # noqa: PLC0415  (slow to import; only reports need it)
    except ImportError:
        raise SystemExit(
            "--report draws charts with matplotlib: pip install 'brokerage[plots]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json"]
    written[0].write_text(json.dumps(report, indent=2))
    figure, axis = plt.subplots(figsize=(9, 5))
    for symbol in list(report["symbols"])[:8]:
        history = sim.broker.price_history(symbol)
        start, first = history[0].at, history[0].price
        axis.plot(
            [(p.at - start).total_seconds() for p in history],
            [float(p.price / first * 100) for p in history],  # a chart's axis, not money
            label=symbol,
        )
    axis.set_title("price paths (% of each stock's first price)")
    axis.set_xlabel("seconds")
    axis.legend(fontsize=7)
    written.append(out / "prices.png")
    figure.savefig(written[-1])
    plt.close(figure)
    figure, axis = plt.subplots(figsize=(9, 5))
    axis.hist([float(pl) for pl in report["profit_and_loss"]], bins=50)
    axis.set_title("profit and loss per account")
    written.append(out / "pl.png")
    figure.savefig(written[-1])
    plt.close(figure)
    figure, axis = plt.subplots(figsize=(9, 5))
    for name in ("place_to_accepted", "place_to_filled"):
        histogram = sim.broker.latency_histogram(name)
        if histogram:
            values, counts = zip(*histogram, strict=True)
            axis.step(values, counts, where="post", label=name)
    axis.set_xscale("log")
    axis.set_xlabel("microseconds (log scale)")
    axis.set_ylabel("orders")
    axis.set_title("latency histogram")
    axis.legend()
    written.append(out / "latency.png")
    figure.savefig(written[-1])
    plt.close(figure)
    return written


def simulate(
    config: SimulationConfig,
    console: Console,
    *,
    live: bool = True,
    report_dir: str | None = None,
    beside: Callable[..., AbstractContextManager[Any]] | None = None,
) -> dict[str, Any]:
    """Run a whole simulation with its live view and final report; return the report.

    `beside(broker, progress=...)` is entered once the stocks are listed and the agents' accounts
    open (`progress()` tells how far the run is), and
    left when the run ends, before the report (`brokerage simulate --serve` serves the run
    over HTTP so: programs trade in it beside the agents, and stop before the final audit)."""
    sim = Simulation(config)
    try:
        with console.status("opening accounts and listing stocks"):
            sim.setup()
        with beside(sim.broker, progress=sim.progress) if beside is not None else nullcontext():
            if live and not config.deterministic:
                view = LiveView()
                with Live(view.render(sim), console=console, refresh_per_second=2) as screen:
                    sim.run(on_tick=lambda s: screen.update(view.render(s)))
                if not console.is_terminal:  # piped, the last view ends without a new line
                    console.line()
            else:
                sim.run()
        report = sim.finish()
        console.print(summary_table(report))
        if report_dir:
            for path in write_report(sim, report, report_dir):
                console.print(f"wrote {path}")
        return report
    finally:
        sim.close()

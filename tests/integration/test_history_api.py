"""`Brokerage.portfolio_history` and `Brokerage.today` on a running brokerage with a clock of
its own: equity at each step from the account's transactions and the bars, with a store and
without one."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from engine import InsufficientAvailableCashError, ValidationError
from engine.equity import PortfolioHistory
from gateway import Brokerage
from tests.integration.test_concurrency import run_together

HOUR = 3600 * 10**9
START = 1_800_000_000 * 10**9  # a whole hour (UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


def test_equity_follows_trades_price_moves_and_deposits_hour_by_hour() -> None:
    clock = Clock()
    with Brokerage(clock=clock) as broker:
        broker.list_stock("AAPL", "Apple Inc.", "100.00")
        account = broker.open_account("U", "U", initial_deposit="10000").account_id
        clock.now += HOUR
        broker.place_order(account, "AAPL", "buy", 10)  # at 100
        clock.now += HOUR
        broker.update_price("AAPL", "110.00")
        clock.now += HOUR
        broker.deposit(account, "500")
        broker.update_price("AAPL", "105.00")
        clock.now += HOUR // 2

        history = broker.portfolio_history(account, "1D", "1H")

        assert history.equity == tuple(
            map(Decimal, ("10000.00", "10000.00", "10000.00", "10600.00", "10550.00"))
        )
        assert history.profit_loss[-2:] == (Decimal("100.00"), Decimal("50.00"))
        assert history.cashflow[-1] == Decimal("500.00")
        assert history.base_value == Decimal("10000.00")
        assert history.known_since.timestamp() * 10**9 == START  # its first deposit
        assert history.equity[-1] == broker.portfolio(account).net_worth
        with pytest.raises(ValidationError, match="timeframe"):
            broker.portfolio_history(account, "1A", "1Min")

        ended = broker.portfolio_history(
            account, "1D", "1H", end=datetime.fromtimestamp((START + 2 * HOUR) / 1e9, UTC)
        )
        assert ended.equity == history.equity[:3]  # up to two hours in: before the move
        assert ended.timestamps == history.timestamps[:3]
        before = broker.portfolio_history(
            account, "1D", "1H", end=datetime.fromtimestamp((START - HOUR) / 1e9, UTC)
        )
        assert before.equity == ()  # before it was opened: nothing to show
        assert before.base_value == 0
        first = datetime(1, 1, 1, 4, 12, tzinfo=UTC)  # a month before it is before year 1
        assert broker.portfolio_history(account, "1M", end=first).equity == ()
        hour_in = datetime.fromtimestamp((START + HOUR) / 1e9, UTC)
        later = broker.portfolio_history(account, timeframe="1H", start=hour_in)
        assert later.timestamps == history.timestamps[1:]  # from an hour in (period unread)
        assert later.equity == history.equity[1:]
        with pytest.raises(ValidationError, match="start must be before the end"):
            broker.portfolio_history(account, start=datetime(9999, 1, 1, tzinfo=UTC))


def test_the_day_gives_last_equity_and_intraday_pl() -> None:
    clock = Clock()
    day = 24 * HOUR
    with Brokerage(clock=clock) as broker:
        broker.list_stock("AAPL", "Apple Inc.", "100.00")
        account = broker.open_account("U", "U", initial_deposit="10000").account_id
        broker.place_order(account, "AAPL", "buy", 10)  # yesterday, at 100
        broker.update_price("AAPL", "110.00")  # yesterday's close
        clock.now = START - START % day + day + HOUR  # the next day
        broker.update_price("AAPL", "120.00")
        broker.place_order(account, "AAPL", "buy", 5)  # today, at 120
        broker.update_price("AAPL", "115.00")

        today = broker.today(account)

        assert today.last_equity == Decimal("9000.00") + Decimal("1100.00")
        [aapl] = today.positions
        assert aapl.lastday_price == Decimal("110.00")
        assert aapl.intraday_pl == Decimal(15 * 115 - (10 * 110 + 5 * 120))
        assert aapl.change_today_percent == Decimal("4.55")


@pytest.mark.parametrize("kept", ["store", "memory"])
def test_without_a_store_history_reaches_only_as_far_as_the_account_keeps(
    kept: str, tmp_path: Path
) -> None:
    clock = Clock()
    store = f"sqlite:///{tmp_path}/history.db" if kept == "store" else None
    with Brokerage(clock=clock, store=store, history_window=3) as broker:
        broker.list_stock("AAPL", "Apple Inc.", "100.00")
        account = broker.open_account("U", "U", initial_deposit="1000").account_id
        clock.now += 10 * HOUR
        for _ in range(5):  # five more transactions, an hour apart: the first ones go
            clock.now += HOUR
            broker.deposit(account, "1")
        clock.now += HOUR

        history = broker.portfolio_history(account, "1D", "1H")
        today = broker.today(account)

    if kept == "store":
        assert history.known_since.timestamp() * 10**9 == START
        assert history.equity[0] == Decimal("1000.00")
        assert len(history.equity) == 17
    else:  # it keeps the last 3 deposits: nothing is known before the oldest of them
        assert history.known_since.timestamp() * 10**9 == START + 13 * HOUR
        assert history.equity[0] == Decimal("1003.00")
        assert len(history.equity) == 4
    assert history.equity[-1] == Decimal("1005.00")
    assert history.profit_loss[-1] == 0
    assert today.since.timestamp() * 10**9 == START + 16 * HOUR  # midnight (UTC): none since
    assert today.last_equity == Decimal("1005.00")


@pytest.mark.parametrize("runtime", ["mn", "threads"])
def test_histories_read_while_many_threads_trade_stay_exact(runtime: str) -> None:
    """At one unmoving price, trades change no equity and money moved in or out is no
    profit: whatever the timing, every history's P/L is 0 at every step, and so is every
    intraday P/L (a history is rebuilt from the state and the transactions up to it only)."""
    with Brokerage(runtime=runtime, timeout=20) as broker:
        broker.list_stock("AAPL", "Apple Inc.", "100.00")
        accounts = [
            broker.open_account(f"U{n}", f"user {n}", initial_deposit="5000").account_id
            for n in range(3)
        ]
        seen: list[PortfolioHistory] = []

        def work(n: int) -> None:
            rng = random.Random(n)
            for _ in range(150):
                account = rng.choice(accounts)
                if n == 0:
                    seen.append(broker.portfolio_history(account, "1D", "1Min"))
                    assert all(p.intraday_pl == 0 for p in broker.today(account).positions)
                elif rng.random() < 0.3:
                    broker.deposit(account, "10")
                    with contextlib.suppress(InsufficientAvailableCashError):
                        broker.withdraw(account, "7")
                else:
                    broker.place_order(account, "AAPL", rng.choice(["buy", "sell"]), 1)

        run_together(work, threads=6)
        assert len(seen) == 150
        for history in seen:
            assert set(history.profit_loss) <= {Decimal("0.00")}, history
        broker.audit()

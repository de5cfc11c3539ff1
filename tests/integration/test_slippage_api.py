"""A brokerage with a slippage model: market-mode orders filling on arrival pay half a spread
and an impact, within what their accounts reserved, from many threads at once."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from gateway import Brokerage
from tests.integration.test_concurrency import assert_balances_sound, run_together


def test_arriving_orders_slip_and_resting_ones_do_not() -> None:
    with Brokerage(slippage="spread_bps=10,impact_bps=5,size=100") as broker:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        account = broker.open_account("U", "U", initial_deposit="100000").account_id
        bought = broker.place_order(account, "AAPL", "buy", 100)
        assert bought.average_fill_price == Decimal("150.15")  # 10 bps
        sold = broker.place_order(account, "AAPL", "sell", 100, "limit", "149.95")
        assert sold.average_fill_price == Decimal("149.95")  # its limit bounds the slip
        assert broker.quote("AAPL").last_price == Decimal("150.00")
        resting = broker.place_order(account, "AAPL", "buy", 10, "limit", "149.00")
        broker.update_price("AAPL", "148.50")
        assert broker.get_order(resting.order_id).average_fill_price == Decimal("148.50")


@pytest.mark.parametrize("runtime", ["mn", "threads"])
def test_many_threads_trading_under_slippage_stay_within_their_reservations(
    runtime: str,
) -> None:
    model = "spread_bps=50,impact_bps=100,size=10,jitter_percent=80,max_bps=900,seed=2"
    with Brokerage(runtime=runtime, slippage=model, timeout=20) as broker:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        accounts = [
            broker.open_account(f"U{n}", f"user {n}", initial_deposit="20000").account_id
            for n in range(6)
        ]

        def trade(n: int) -> None:
            rng = random.Random(n)
            for _ in range(60):
                if n == 0:
                    assert_balances_sound(broker, accounts)
                    broker.update_price("AAPL", f"{rng.randint(140, 160)}.00")
                    continue
                account = rng.choice(accounts)
                side = rng.choice(["buy", "sell"])
                broker.place_order(account, "AAPL", side, rng.randint(1, 40))

        run_together(trade, threads=5)
        report = broker.audit()  # every fill settled within its reservation, ledgers reconcile
        assert report.reserved_cash == 0
        paid = [
            t.price
            for account in accounts
            for t in broker.transactions(account, kind="buy")
            if t.price is not None
        ]
        assert paid  # they traded, and at most the collar above the price they met
        assert max(paid) <= Decimal("168.00")

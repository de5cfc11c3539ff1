from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from gateway import Brokerage
from gateway.apps.feeds import FeedRunner, random_walk, sample_prices


def test_replaying_the_sample_csv_leaves_its_last_prices(broker: Brokerage) -> None:
    broker.list_stock("MSFT", "Microsoft", "400")

    runner = FeedRunner.replay(broker, sample_prices()).start()
    runner.join(30)

    assert runner.error is None
    assert runner.sent == 20
    assert broker.quote("AAPL").last_price == Decimal("152.60")
    assert broker.quote("MSFT").last_price == Decimal("410.90")
    assert [p.price for p in broker.price_history("AAPL")][-2:] == [
        Decimal("151.90"),
        Decimal("152.60"),
    ]


def test_a_random_walk_feed_moves_prices_while_threads_trade_and_can_be_stopped(
    broker: Brokerage,
) -> None:
    accounts = [
        broker.open_account(f"U{n}", f"user {n}", initial_deposit="100000").account_id
        for n in range(4)
    ]
    endless = FeedRunner(broker, random_walk(broker, ["AAPL"], seed=5, volatility="3")).start()
    start = threading.Barrier(4)

    def trade(n: int) -> None:
        start.wait()
        for k in range(40):
            side = "buy" if k % 2 == 0 else "sell"
            broker.place_order(
                accounts[n], "AAPL", side, 2, "limit", "200.00" if side == "buy" else "100.00"
            )

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(trade, range(4)))
    endless.stop()

    assert endless.error is None
    assert endless.sent > 0
    assert len(broker.price_history("AAPL")) > 2
    for account in accounts:
        for order in broker.orders(account, status=["pending", "partially_filled"]):
            broker.cancel_order(order.order_id)
    report = broker.audit()
    assert report.reserved_cash == Decimal("0.00")


def test_a_bounded_walk_runs_to_its_end(broker: Brokerage) -> None:
    runner = FeedRunner(broker, itertools.islice(random_walk(broker, ["AAPL", "BOOK"]), 25))

    runner.start().join(30)

    assert (runner.error, runner.sent) == (None, 50)

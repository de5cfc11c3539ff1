from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pykka
import pytest

from actors.base import BrokerActor, handles
from engine import OrderStatus, RejectReason
from engine.errors import UnknownOrderError
from gateway import Brokerage


@dataclass(frozen=True)
class Hold:
    release: threading.Event


class Blocker(BrokerActor):
    """Occupies a worker of the M:N runtime until released."""

    @handles(Hold)
    def _hold(self, message: Hold) -> None:
        message.release.wait(10)


def test_orders_beyond_the_in_flight_bound_are_rejected_busy_change_nothing_and_are_not_kept() -> (
    None
):
    with Brokerage(workers=1, max_in_flight=3) as broker:
        broker.list_stock("AAPL", "Apple", "100")
        account = broker.open_account("U1", "One", initial_deposit="10000").account_id
        assert broker._engine is not None
        blocker = broker._engine.runtime.spawn(Blocker, broker._log)
        release = threading.Event()
        blocker.tell(Hold(release))  # the only worker is busy: nothing is answered yet

        futures = [broker.place_order_async(account, "AAPL", "buy", 1) for _ in range(5)]
        in_flight = broker.metrics().orders_in_flight
        release.set()
        orders = list(pykka.get_all(futures, timeout=10))

        assert in_flight == 3
        assert [o.status for o in orders] == [OrderStatus.EXECUTED] * 3 + [OrderStatus.REJECTED] * 2
        assert {o.reject_reason for o in orders[3:]} == {RejectReason.BUSY}
        assert broker.balance(account).cash == Decimal("9700.00")
        assert broker.orders(account, status="rejected") == []  # refused at the door: no history
        with pytest.raises(UnknownOrderError):
            broker.get_order(orders[3].order_id)
        assert broker.metrics().orders_in_flight == 0
        assert broker.metrics().rejected_by_reason == {"busy": 2}
        broker.audit()


def test_busy_rejections_under_many_threads_never_drop_an_accepted_order() -> None:
    with Brokerage(max_in_flight=4) as broker:
        broker.list_stock("AAPL", "Apple", "100")
        account = broker.open_account("U1", "One", initial_deposit="1000000").account_id

        def flood(_: int) -> list[Any]:
            futures = [broker.place_order_async(account, "AAPL", "buy", 1) for _ in range(200)]
            return list(pykka.get_all(futures, timeout=30))

        with ThreadPoolExecutor(8) as pool:
            orders = [o for batch in pool.map(flood, range(8)) for o in batch]

        executed = [o for o in orders if o.status is OrderStatus.EXECUTED]
        busy = [o for o in orders if o.reject_reason is RejectReason.BUSY]
        assert len(executed) + len(busy) == 1600
        assert busy  # 1,600 orders from 8 threads against a bound of 4
        report = broker.audit()
        assert report.shares["AAPL"] == len(executed)
        assert broker.balance(account).cash == Decimal(1_000_000) - 100 * len(executed)
        metrics = broker.metrics()  # written by several threads at once, added up right
        assert metrics.orders_in_flight == 0
        assert metrics.counters["orders_accepted"] == len(executed)
        assert metrics.counters["orders_filled"] == len(executed)
        assert metrics.rejected_by_reason == {"busy": len(busy)}
        assert metrics.latency_us["place_to_filled"].count == len(executed)


def test_metrics_count_every_lifecycle_step_and_time_them() -> None:
    with Brokerage() as broker:
        broker.list_stock("AAPL", "Apple", "100")
        broker.list_stock("BK", "Book", "100", mode="book")
        a = broker.open_account("U1", "One", initial_deposit="1000").account_id
        b = broker.open_account("U2", "Two").account_id
        broker.grant_shares(b, "BK", 10, "100")
        broker.place_order(a, "AAPL", "buy", 2)  # accepted, filled
        broker.place_order(a, "AAPL", "buy", 100)  # insufficient funds
        resting = broker.place_order(b, "BK", "sell", 5, "limit", "101")
        broker.place_order(a, "BK", "buy", 2, "limit", "101")  # one trade with b
        replaced = broker.replace_order(resting.order_id, limit_price="102")
        broker.cancel_order(replaced.order_id)
        broker.place_order(a, "AAPL", "sell", 1, "stop", stop_price="99")
        broker.update_price("AAPL", "98")  # the stop triggers and fills
        broker.deposit(a, "5")
        broker.withdraw(a, "5")

        metrics = broker.metrics()

        assert metrics.counters == {
            "orders_accepted": 4,
            "orders_rejected": 1,
            "orders_filled": 3,
            "orders_cancelled": 1,
            "orders_replaced": 1,
            "stops_triggered": 1,
            "fills": 3,
            "deposits": 1,
            "withdrawals": 1,
            "actors_restarted": 0,
            "symbols_halted": 0,
        }
        assert metrics.rejected_by_reason == {"insufficient_funds": 1}
        accepted = metrics.latency_us["place_to_accepted"]
        filled = metrics.latency_us["place_to_filled"]
        assert (accepted.count, filled.count) == (4, 3)
        assert 0 < filled.p50 <= filled.p99 <= filled.p999 <= filled.max
        assert metrics.live_actors == 2 + 2 + 3  # accounts, symbols; gateway, bus, notifier
        assert metrics.orders_in_flight == 0
        assert metrics.deepest_inbox >= 0


def test_metrics_work_on_the_thread_per_actor_runtime_too() -> None:
    with Brokerage(runtime="threads") as broker:
        broker.list_stock("AAPL", "Apple", "100")
        a = broker.open_account("U1", "One", initial_deposit="1000").account_id
        broker.place_order(a, "AAPL", "buy", 1)

        metrics = broker.metrics()

        assert metrics.counters["orders_filled"] == 1
        assert metrics.live_actors == 5

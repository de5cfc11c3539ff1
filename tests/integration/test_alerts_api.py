from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from engine import UnknownAccountError, UnknownSymbolError, ValidationError
from engine.alerts import FIRED_KEPT
from engine.errors import UnknownAlertError
from engine.events import AlertTriggered
from gateway import Brokerage


def test_an_alert_fires_an_event_once_and_is_gone(broker: Brokerage) -> None:
    account = broker.open_account("U1", "One").account_id
    seen: list[Any] = []
    broker.subscribe(seen.append, [AlertTriggered], account_id=account)
    alert = broker.add_alert(account, "AAPL", "above", "160")

    broker.update_price("AAPL", "159.99")
    broker.update_price("AAPL", "161.50")
    broker.update_price("AAPL", "165")
    broker.flush_events()

    assert [(e.alert.alert_id, e.alert.price) for e in seen] == [
        (alert.alert_id, Decimal("161.50"))
    ]
    assert broker.alerts(account) == []
    with pytest.raises(UnknownAlertError):
        broker.cancel_alert(alert.alert_id)
    [fired] = broker.fired_alerts(account)  # the desk's "fired" list
    assert (fired.alert_id, fired.price) == (alert.alert_id, Decimal("161.50"))
    assert fired.triggered_at is not None


def test_fired_alerts_keep_the_latest_per_symbol_newest_first(broker: Brokerage) -> None:
    account = broker.open_account("U1", "One").account_id
    other = broker.open_account("U2", "Two").account_id
    standing = broker.add_alert(account, "AAPL", "above", "160", one_shot=False)
    broker.add_alert(other, "AAPL", "above", "160")
    for n in range(FIRED_KEPT + 5):  # each rise through 160 fires the standing alert
        broker.update_price("AAPL", "159")
        broker.update_price("AAPL", f"{161 + n}")
    fired = broker.fired_alerts(account)
    assert len(fired) == FIRED_KEPT
    assert {a.alert_id for a in fired} == {standing.alert_id}
    assert fired[0].price == Decimal(161 + FIRED_KEPT + 4)  # the newest first
    assert [a.account_id for a in broker.fired_alerts(other)] == [other]


def test_standing_alerts_stay_and_alerts_can_be_cancelled(broker: Brokerage) -> None:
    account = broker.open_account("U1", "One").account_id
    standing = broker.add_alert(account, "AAPL", "below", "140", one_shot=False)
    other = broker.add_alert(account, "BOOK", "above", "120")

    cancelled = broker.cancel_alert(other.alert_id)

    assert cancelled.alert_id == other.alert_id
    assert [a.alert_id for a in broker.alerts(account)] == [standing.alert_id]


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda b: b.add_alert("nope", "AAPL", "above", "1"), UnknownAccountError, "nope"),
        (lambda b: b.add_alert("A-000001", "NOPE", "above", "1"), UnknownSymbolError, "NOPE"),
        (lambda b: b.add_alert("A-000001", "AAPL", "sideways", "1"), ValidationError, "condition"),
        (lambda b: b.add_alert("A-000001", "AAPL", "above", "-1"), ValidationError, "threshold"),
        (
            lambda b: b.add_alert("A-000001", "AAPL", "above", "1", one_shot="y"),
            ValidationError,
            "one_shot",
        ),
        (lambda b: b.cancel_alert("AL-404"), UnknownAlertError, "AL-404"),
    ],
)
def test_bad_alert_requests_raise_typed_errors(
    broker: Brokerage, call: Any, error: type[Exception], words: str
) -> None:
    broker.open_account("U1", "One")

    with pytest.raises(error, match=words):
        call(broker)


def test_many_threads_add_alerts_while_prices_move_and_each_fires_once(
    broker: Brokerage,
) -> None:
    accounts = [broker.open_account(f"U{n}", f"user {n}").account_id for n in range(6)]
    fired: list[str] = []
    lock = threading.Lock()

    def record(event: Any) -> None:
        with lock:
            fired.append(event.alert.alert_id)

    broker.subscribe(record, [AlertTriggered])
    start = threading.Barrier(7)
    added: list[str] = []

    def work(n: int) -> None:
        start.wait()
        if n == 6:  # the price feed: up to 200.00 and back down to 100.00
            for cents in [*range(15000, 20001, 250), *range(20000, 9999, -250)]:
                broker.update_price("AAPL", f"{cents / 100:.2f}")
            return
        for k in range(50):
            condition = "above" if k % 2 else "below"
            threshold = f"{110 + k}.00"
            alert = broker.add_alert(accounts[n], "AAPL", condition, threshold)
            with lock:
                added.append(alert.alert_id)

    with ThreadPoolExecutor(7) as pool:
        list(pool.map(work, range(7)))
    broker.update_price("AAPL", "300")  # every "above" alert still waiting fires now
    broker.update_price("AAPL", "50")  # and every "below" one
    broker.flush_events()

    assert sorted(fired) == sorted(added)  # each fired exactly once
    assert all(broker.alerts(a) == [] for a in accounts)
    for account in accounts:  # each account's latest firings: its own, FIRED_KEPT of its 50
        kept = broker.fired_alerts(account)
        assert len(kept) == FIRED_KEPT
        assert {a.account_id for a in kept} == {account}
        assert {a.alert_id for a in kept} <= set(added)

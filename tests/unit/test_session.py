from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.book import OrderBook
from engine.errors import ValidationError
from engine.ids import AccountId, OrderId
from engine.orders import Side
from engine.session import NEW_YORK, AlwaysOpen, NyseSession, SimulatedClock, make_session


def ns(year: int, month: int, day: int, hour: int, minute: int) -> int:
    moment = datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)
    return int(moment.timestamp()) * 1_000_000_000


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        ((2026, 11, 23, 9, 29), False),  # Monday, a minute early
        ((2026, 11, 23, 9, 30), True),
        ((2026, 11, 23, 15, 59), True),
        ((2026, 11, 23, 16, 0), False),
        ((2026, 11, 21, 12, 0), False),  # Saturday
        ((2026, 7, 15, 9, 45), True),  # summer time: the session follows New York's clock
    ],
)
def test_the_nyse_session_is_930_to_1600_new_york_on_weekdays(
    moment: tuple[int, int, int, int, int], open_: bool
) -> None:
    assert NyseSession().is_open(ns(*moment)) is open_
    assert AlwaysOpen().is_open(ns(*moment)) is True


def test_an_unknown_session_is_refused() -> None:
    with pytest.raises(ValidationError, match="session"):
        make_session("lse")


def test_a_simulated_clock_moves_only_forward_when_told() -> None:
    clock = SimulatedClock(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))
    start = clock()

    clock.advance(90)
    assert clock() == start + 90_000_000_000
    with pytest.raises(ValidationError, match="before"):
        clock.set(datetime(2026, 11, 23, 14, 0, tzinfo=UTC))
    with pytest.raises(ValidationError, match="timezone"):
        SimulatedClock(datetime(2026, 1, 1))


def test_closing_takes_only_the_day_orders_out_of_the_book() -> None:
    book = OrderBook()
    book.add(OrderId("O-1"), AccountId("A"), Side.BUY, 100, 5, day=True)
    book.add(OrderId("O-2"), AccountId("A"), Side.BUY, 100, 5)

    removed = book.remove_day_orders()

    assert [e.order_id for e in removed] == ["O-1"]
    assert [e.order_id for e in book.orders(Side.BUY)] == ["O-2"]
    book.check()


def test_next_open_and_close_skip_the_weekend() -> None:
    from datetime import UTC, datetime

    from engine.session import AlwaysOpen, NyseSession, next_close, next_open

    friday_evening = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)  # 17:00 in New York
    assert next_open(NyseSession(), friday_evening) == datetime(2026, 11, 30, 14, 30, tzinfo=UTC)
    assert next_close(NyseSession(), friday_evening) == datetime(2026, 11, 30, 21, 0, tzinfo=UTC)
    monday_morning = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # 10:00, open
    assert next_close(NyseSession(), monday_morning) == datetime(2026, 11, 30, 21, 0, tzinfo=UTC)
    assert next_open(NyseSession(), monday_morning) == datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    assert next_open(AlwaysOpen(), monday_morning) == monday_morning

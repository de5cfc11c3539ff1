from __future__ import annotations

import random

import pytest

from engine.alerts import (
    MAX_ALERTS_PER_ACCOUNT,
    Alert,
    AlertBook,
    AlertCondition,
)
from engine.errors import UnknownAlertError, ValidationError
from engine.ids import AccountId, Symbol

ABOVE, BELOW = AlertCondition.ABOVE, AlertCondition.BELOW


def alert(
    n: int, condition: AlertCondition, threshold: int, one_shot: bool = True, account: str = "A"
) -> Alert:
    return Alert(f"AL-{n:06d}", AccountId(account), Symbol("X"), condition, threshold, one_shot, 0)


def test_one_shot_alerts_fire_once_at_the_first_move_that_finds_them_holding() -> None:
    book = AlertBook()
    book.add(alert(1, ABOVE, 110))
    book.add(alert(2, BELOW, 90))
    book.add(alert(3, ABOVE, 120))

    assert [a.alert_id for a in book.move(100, 110)] == ["AL-000001"]
    assert book.move(110, 115) == []
    assert [a.alert_id for a in book.move(115, 85)] == ["AL-000002"]
    assert len(book) == 1


def test_standing_alerts_fire_each_time_the_price_crosses_in() -> None:
    book = AlertBook()
    book.add(alert(1, ABOVE, 110, one_shot=False))

    fired = [
        len(book.move(old, new)) for old, new in ((100, 110), (110, 120), (120, 100), (100, 111))
    ]

    assert fired == [1, 0, 0, 1]
    assert len(book) == 1


def test_removing_an_unknown_alert_is_a_clear_error() -> None:
    with pytest.raises(UnknownAlertError, match="AL-9"):
        AlertBook().remove("AL-9")


def test_an_account_has_at_most_its_cap_of_alerts_on_a_symbol_and_a_removal_frees_one() -> None:
    book = AlertBook()
    for n in range(MAX_ALERTS_PER_ACCOUNT):
        book.add(alert(n, ABOVE, 200))

    with pytest.raises(ValidationError, match="active alerts"):
        book.add(alert(999, ABOVE, 200))
    book.add(alert(1000, ABOVE, 200, account="B"))  # another account is not held back
    book.remove("AL-000000")
    book.add(alert(1001, ABOVE, 200))

    assert len(book.of(AccountId("A"))) == MAX_ALERTS_PER_ACCOUNT
    assert len(book) == MAX_ALERTS_PER_ACCOUNT + 1


@pytest.mark.parametrize("seed", range(3))
def test_seeded_random_moves_fire_exactly_what_a_naive_scan_fires(seed: int) -> None:
    rng = random.Random(seed)
    book = AlertBook()
    naive: dict[str, Alert] = {}
    price = 100
    for n in range(2000):
        if rng.random() < 0.4:
            a = alert(
                n,
                rng.choice([ABOVE, BELOW]),
                rng.randint(80, 120),
                rng.random() < 0.7,
                account=f"A{n % 40}",
            )
            book.add(a)
            naive[a.alert_id] = Alert(
                a.alert_id, a.account_id, a.symbol, a.condition, a.threshold, a.one_shot, 0
            )
            continue
        new = max(1, price + rng.randint(-6, 6))
        expected = sorted(
            a.alert_id
            for a in naive.values()
            if (a.one_shot and a.holds(new))
            or (not a.one_shot and a.holds(new) and not a.holds(price))
        )

        fired = sorted(a.alert_id for a in book.move(price, new))

        assert fired == expected
        for alert_id in fired:
            if naive[alert_id].one_shot:
                del naive[alert_id]
        price = new
    assert len(book) == len(naive)

"""Price alerts, kept with their symbol in sorted order so that a price move finds the ones it
triggers in O(log n + k) for n alerts and k triggered, without looking at the others.

An "above" alert holds when the price is at or above its threshold, a "below" alert when at or
below. A one-shot alert (the default) fires at the first price move that finds it holding and
is then gone. A standing alert fires each time the price crosses into its condition (from a
price where it did not hold), and stays.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sortedcontainers import SortedList

from engine.errors import UnknownAlertError, ValidationError
from engine.ids import AccountId, Symbol
from engine.money import cents_to_decimal
from engine.orders import _Choice, ns_to_datetime


class AlertCondition(_Choice):
    """When an alert holds."""

    ABOVE = "above"
    BELOW = "below"


@dataclass(frozen=True, slots=True)
class AlertSnapshot:
    """An alert as it stood (`triggered_at` and `price` are set on the snapshot of a firing)."""

    alert_id: str
    account_id: AccountId
    symbol: Symbol
    condition: AlertCondition
    threshold: Decimal
    one_shot: bool
    created_at: datetime
    triggered_at: datetime | None = None
    price: Decimal | None = None


@dataclass(slots=True)
class Alert:
    """One alert, as its symbol keeps it."""

    alert_id: str
    account_id: AccountId
    symbol: Symbol
    condition: AlertCondition
    threshold: int
    one_shot: bool
    created_ns: int
    fired: int = field(default=0)

    def snapshot(self, price: int | None = None, at_ns: int | None = None) -> AlertSnapshot:
        """An immutable view; with `price` and `at_ns`, the view of a firing."""
        return AlertSnapshot(
            self.alert_id,
            self.account_id,
            self.symbol,
            self.condition,
            cents_to_decimal(self.threshold),
            self.one_shot,
            ns_to_datetime(self.created_ns),
            None if at_ns is None else ns_to_datetime(at_ns),
            None if price is None else cents_to_decimal(price),
        )

    def holds(self, price: int) -> bool:
        """Whether the condition holds at `price`."""
        if self.condition is AlertCondition.ABOVE:
            return price >= self.threshold
        return price <= self.threshold


MAX_ALERTS_PER_ACCOUNT = 50
"""Active alerts one account may have on one symbol."""


FIRED_KEPT = 20
"""Firings an account's alerts on one symbol keep, in memory (the newest)."""


class AlertBook:
    """One symbol's alerts: four sorted lists of (threshold, alert id), by condition and kind,
    and each account's alerts by id (at most `MAX_ALERTS_PER_ACCOUNT`)."""

    def __init__(self) -> None:
        self._alerts: dict[str, Alert] = {}
        self._by_account: dict[AccountId, dict[str, Alert]] = {}
        self._lists: dict[tuple[AlertCondition, bool], SortedList] = {
            (condition, one_shot): SortedList()
            for condition in AlertCondition
            for one_shot in (True, False)
        }
        self._fired: dict[AccountId, deque[AlertSnapshot]] = {}
        """Each account's latest firings (`FIRED_KEPT`), oldest first."""

    def __len__(self) -> int:
        return len(self._alerts)

    def all(self) -> list[Alert]:
        """Every active alert, oldest first. O(n)."""
        return list(self._alerts.values())

    def add(self, alert: Alert) -> None:
        """Keep an alert. O(log n).

        Raises:
            ValidationError: if its account has `MAX_ALERTS_PER_ACCOUNT` on this symbol.
        """
        mine = self._by_account.setdefault(alert.account_id, {})
        if len(mine) >= MAX_ALERTS_PER_ACCOUNT:
            raise ValidationError(
                "symbol",
                f"has {MAX_ALERTS_PER_ACCOUNT} active alerts of this account already",
                alert.symbol,
            )
        mine[alert.alert_id] = alert
        self._alerts[alert.alert_id] = alert
        self._lists[alert.condition, alert.one_shot].add((alert.threshold, alert.alert_id))

    def remove(self, alert_id: str) -> Alert:
        """Drop an alert. O(log n).

        Raises:
            UnknownAlertError: if no active alert has that id.
        """
        alert = self._alerts.pop(alert_id, None)
        if alert is None:
            raise UnknownAlertError(alert_id)
        mine = self._by_account[alert.account_id]
        del mine[alert_id]
        if not mine:
            del self._by_account[alert.account_id]
        self._lists[alert.condition, alert.one_shot].remove((alert.threshold, alert.alert_id))
        return alert

    def remember(self, fired: AlertSnapshot) -> None:
        """Keep a firing (the alert at the price that fired it) among its account's latest."""
        kept = self._fired.get(fired.account_id)
        if kept is None:
            kept = self._fired[fired.account_id] = deque(maxlen=FIRED_KEPT)
        kept.append(fired)

    def fired_of(self, account_id: AccountId) -> list[AlertSnapshot]:
        """An account's latest firings on this symbol, oldest first."""
        return list(self._fired.get(account_id, ()))

    def of(self, account_id: AccountId) -> list[Alert]:
        """The active alerts of one account, oldest first. O(its alerts)."""
        return list(self._by_account.get(account_id, {}).values())

    def move(self, old: int, new: int) -> list[Alert]:
        """The alerts the price move from `old` to `new` fires, in threshold order; one-shot
        ones are removed. O(log n + k)."""
        fired: list[Alert] = []
        above_once = self._lists[AlertCondition.ABOVE, True]
        below_once = self._lists[AlertCondition.BELOW, True]
        hits = list(above_once.irange(maximum=(new, "\uffff")))
        hits += list(below_once.irange(minimum=(new, "")))
        for key in hits:
            fired.append(self.remove(key[1]))
        if new > old:  # crossed up through thresholds in (old, new]
            keys = self._lists[AlertCondition.ABOVE, False].irange(
                minimum=(old, "\uffff"), maximum=(new, "\uffff")
            )
            fired += [self._alerts[k[1]] for k in keys]
        elif new < old:  # crossed down through thresholds in [new, old)
            keys = self._lists[AlertCondition.BELOW, False].irange(
                minimum=(new, ""), maximum=(old, "")
            )
            fired += [self._alerts[k[1]] for k in keys]
        for alert in fired:
            alert.fired += 1
        return fired

"""Trading sessions and a clock a simulation can drive.

A session says whether the market is open at a moment (integer nanoseconds since the epoch);
no clock is read here.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from engine.errors import ValidationError

NEW_YORK = ZoneInfo("America/New_York")


class Session(Protocol):
    """When orders are taken."""

    name: str

    def is_open(self, at_ns: int) -> bool:
        """True if the market is open at `at_ns`."""


class AlwaysOpen:
    """Orders are taken at any time (the default)."""

    name = "always"

    def is_open(self, at_ns: int) -> bool:
        """Always open."""
        return True


class NyseSession:
    """The regular NYSE session: 9:30 to 16:00 America/New_York, Monday to Friday.

    Exchange holidays and early closes are not modelled.
    """

    name = "nyse"
    OPEN = time(9, 30)
    CLOSE = time(16, 0)

    def is_open(self, at_ns: int) -> bool:
        """True on a weekday from 9:30 (inclusive) to 16:00 (exclusive), New York time."""
        local = datetime.fromtimestamp(at_ns // 1_000_000_000, UTC).astimezone(NEW_YORK)
        return local.weekday() < 5 and self.OPEN <= local.time() < self.CLOSE


def make_session(name: object) -> Session:
    """The session called `name`: "always" or "nyse"."""
    if name == "always":
        return AlwaysOpen()
    if name == "nyse":
        return NyseSession()
    raise ValidationError("session", "must be 'always' or 'nyse'", name)


class SimulatedClock:
    """A clock that stands still until told to move: call it for the time in nanoseconds.

    Moving it is the simulation's job (`advance`, `set`); it never goes backwards.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValidationError("start", "must be timezone-aware", start)
        self._ns = _to_ns(start)

    def __call__(self) -> int:
        return self._ns

    def advance(self, seconds: float | int) -> None:
        """Move forward by `seconds` (a duration, not money: a float is fine here)."""
        if seconds < 0:
            raise ValidationError("seconds", "must not be negative", seconds)
        self._ns += int(seconds * 1_000_000_000)

    def set(self, moment: datetime) -> None:
        """Move to `moment` (not before the current time)."""
        target = _to_ns(moment)
        if target < self._ns:
            raise ValidationError("moment", "must not be before the clock's time", moment)
        self._ns = target

    def now(self) -> datetime:
        """The clock's time as an aware UTC datetime."""
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=self._ns // 1000)


def _to_ns(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


_DAY = timedelta(days=1)


def next_open(session: Session, after: datetime) -> datetime:
    """The next moment after `after` at which `session` opens (for an always-open session:
    `after` itself)."""
    if not isinstance(session, NyseSession):
        return after
    return _next_weekday_at(after, NyseSession.OPEN)


def next_close(session: Session, after: datetime) -> datetime:
    """The next moment after `after` at which `session` closes (for an always-open session:
    a day later, as it never closes)."""
    if not isinstance(session, NyseSession):
        return after + _DAY
    return _next_weekday_at(after, NyseSession.CLOSE)


def _next_weekday_at(after: datetime, at: time) -> datetime:
    """The first weekday moment at New York time `at` later than `after`, in UTC."""
    local = after.astimezone(NEW_YORK)
    day = local.date()
    while True:  # a weekday comes within three days
        moment = datetime.combine(day, at, NEW_YORK)
        if moment.weekday() < 5 and moment > local:
            return moment.astimezone(UTC)
        day += _DAY

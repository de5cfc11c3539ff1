"""The rate limiter and what it counts by, on a clock the test moves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from gateway.server.context import client_address
from gateway.server.limits import RateLimitedError, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refuses_until_it_refills() -> None:
    clock = Clock()
    limiter = RateLimiter("sign-ups", 6, clock=clock)  # one token every 10 s

    for _ in range(6):
        limiter.take("10.0.0.1")
    with pytest.raises(RateLimitedError) as refused:
        limiter.take("10.0.0.1")
    limiter.take("10.0.0.2")  # another address has its own bucket
    clock.now += 10
    limiter.take("10.0.0.1")

    assert refused.value.retry_after == 10
    with pytest.raises(RateLimitedError):
        limiter.take("10.0.0.1")


def test_check_takes_nothing_and_a_zero_limit_is_no_limit() -> None:
    limiter = RateLimiter("failed authentications", 1, clock=Clock())
    for _ in range(5):
        limiter.check("a")
    limiter.spend("a")

    with pytest.raises(RateLimitedError):
        limiter.check("a")
    unlimited = RateLimiter("sign-ups", 0)
    for _ in range(1_000):
        unlimited.take("a")


def test_the_table_of_buckets_is_bounded_least_recently_used_first() -> None:
    limiter = RateLimiter("sign-ups", 1, max_keys=100, clock=Clock())
    for n in range(1_000):
        limiter.take(f"10.0.{n // 256}.{n % 256}")

    assert len(limiter._buckets) == 100
    limiter.take("10.0.0.0")  # its bucket was dropped: a full one again


@dataclass
class Peer:
    host: str


@dataclass
class Asking:
    client: Any


@pytest.mark.parametrize(
    ("host", "counted"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
    ],
)
def test_ipv4_counts_by_address_and_ipv6_by_its_64_network(host: str, counted: str) -> None:
    assert client_address(Asking(Peer(host))) == counted  # type: ignore[arg-type]
    assert client_address(Asking(None)) == "unknown"  # type: ignore[arg-type]

"""`brokerage serve --workers N`: front processes before one engine process.

A real server with two fronts: many threads trade through both at once (each request on a
connection of its own, so each may reach either front) and every call's effect is seen by the
next read, whoever serves it; cash and shares are conserved and nothing stays reserved. A
killed front is started again, a killed engine takes its fronts with it, and SIGTERM stops all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.test_hostile import Server, serve

SYMBOL = "BOOK"


@pytest.fixture
def fronted(tmp_path: Path) -> Iterator[Server]:
    with serve(tmp_path, "--workers", "2", "--feed-interval", "0") as running:
        yield running


def fronts(server: Server, count: int = 2, timeout: float = 15) -> list[psutil.Process]:
    """The server's front processes, once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            child
            for child in psutil.Process(server.process.pid).children()
            if "gateway.server.front" in child.cmdline()
        ]
        if len(found) == count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def running(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Those of `processes` still running after at most `timeout` s (an orphan that ended
    may stay a zombie until whoever adopted it reaps it: ended all the same)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                if process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def test_two_fronts_serve_one_engine_to_many_threads(fronted: Server) -> None:
    admin = fronted.admin
    listed = httpx.post(
        f"{fronted.url}/api/admin/stocks",
        json={"symbol": SYMBOL, "name": "Book Co.", "price": "100.00", "mode": "book"},
        headers=admin,
    )
    assert listed.status_code == 201, listed.text
    assert len(fronts(fronted)) == 2
    keys: list[dict[str, str]] = []
    ids: list[str] = []
    with httpx.Client(base_url=fronted.url, timeout=20) as client:
        for n in range(8):
            keys.append(fronted.signup(client, f"front-{n}"))
            ids.append(client.get("/api/account", headers=keys[-1]).json()["account_id"])
        for account in ids[4:]:  # the sellers
            granted = client.post(
                f"/api/admin/accounts/{account}/grants",
                json={"symbol": SYMBOL, "quantity": 500, "price": "100.00"},
                headers=admin,
            )
            assert granted.status_code == 201, granted.text
    errors: list[str] = []
    moved: list[Decimal] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        me = keys[index % 8]
        side = "buy" if index % 8 < 4 else "sell"
        net = Decimal(0)
        for step in range(6):
            url = fronted.url
            deposit = httpx.post(f"{url}/api/account/deposit", json={"amount": "7.25"}, headers=me)
            order = httpx.post(
                f"{url}/api/orders",
                json={"symbol": SYMBOL, "side": side, "quantity": 1 + step % 3, "type": "limit"}
                | {"limit_price": str(98 + step % 5)},
                headers=me,
            )
            problems = [a.text for a in (deposit, order) if a.status_code not in (200, 201)]
            if not problems:
                net += Decimal("7.25")
                order_id = order.json()["order_id"]
                seen = httpx.get(f"{url}/api/orders/{order_id}", headers=me)  # read its write
                if seen.status_code != 200:
                    problems.append(f"placed {order_id}, then {seen.status_code}")
                if step % 2:
                    httpx.delete(f"{url}/api/orders/{order_id}", headers=me)
                httpx.get(f"{url}/api/stocks/{SYMBOL}", headers=me)
            with lock:
                errors.extend(problems)
        with lock:
            moved.append(net)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(work, range(32)))
    assert errors == []
    with httpx.Client(base_url=fronted.url, timeout=20) as client:
        for me in keys:
            live = {"status": ["pending", "partially_filled"]}
            for order in client.get("/api/orders", params=live, headers=me).json():
                client.delete(f"/api/orders/{order['order_id']}", headers=me)
        audit = client.get("/api/admin/audit", headers=admin)
        assert audit.status_code == 200, audit.text
        report = audit.json()
        for me in keys:
            balance = client.get("/api/account", headers=me).json()["balance"]
            assert balance["reserved"] == "0.00"
            assert Decimal(balance["cash"]) >= 0
    assert Decimal(report["deposited"]) == 8 * Decimal("10000") + sum(moved)
    assert Decimal(report["cash"]) == Decimal(report["deposited"]) - Decimal(report["fees"])
    assert report["shares"][SYMBOL] == 4 * 500
    assert Decimal(report["reserved_cash"]) == 0
    assert report["open_orders"] == 0


def test_a_killed_front_is_started_again_and_the_engine_keeps_its_state(fronted: Server) -> None:
    with httpx.Client(base_url=fronted.url, timeout=20) as client:
        me = fronted.signup(client, "survivor")
        mine = client.get("/api/account", headers=me).json()
    first, second = fronts(fronted)
    os.kill(first.pid, signal.SIGKILL)
    for _ in range(20):  # the other front, or the new one once started, answers every time
        answer = httpx.get(f"{fronted.url}/api/account", headers=me, timeout=20)
        assert answer.status_code == 200
        assert answer.json() == mine
        time.sleep(0.05)
    again = fronts(fronted)
    assert len(again) == 2
    pids = {p.pid for p in again}
    assert second.pid in pids
    assert first.pid not in pids


def test_fronts_end_with_their_engine(fronted: Server) -> None:
    both = fronts(fronted)
    assert len(both) == 2
    fronted.process.kill()  # no chance to stop them: they see their link close
    fronted.process.wait(10)
    assert running(both, timeout=15) == []


def test_sigterm_stops_the_fronts_then_the_engine(fronted: Server) -> None:
    both = fronts(fronted)
    fronted.process.terminate()
    assert fronted.process.wait(20) == 0
    assert running(both, timeout=1) == []
    assert "brokerage stopped" in fronted.output.read_text()

"""The market-data WebSocket, and many HTTP clients trading at once with invariants checked."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
from websockets.sync.client import connect

from tests.server.conftest import ADMIN, Served


def _receive(socket: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = json.loads(socket.recv(timeout=10))
    return messages


def test_market_stream_sends_quotes_and_trades(served: Served) -> None:
    opened = served.signup("market-watcher")
    url = served.url.replace("http", "ws") + "/stream/market"
    with connect(url) as socket:
        assert _receive(socket) == [{"T": "success", "msg": "connected"}]
        socket.send(json.dumps({"action": "subscribe", "quotes": ["AAPL"]}))
        assert _receive(socket)[0]["code"] == 401
        socket.send("{not json")
        assert _receive(socket)[0]["code"] == 400
        socket.send(
            json.dumps(
                {"action": "auth", "key": opened["api_key_id"], "secret": opened["api_secret_key"]}
            )
        )
        assert _receive(socket) == [{"T": "success", "msg": "authenticated"}]
        socket.send(json.dumps({"action": "subscribe", "quotes": ["NOPE"]}))
        assert "NOPE" in _receive(socket)[0]["msg"]
        socket.send(json.dumps({"action": "subscribe", "quotes": ["AAPL"], "trades": ["AAPL"]}))
        seen: list[dict[str, Any]] = []
        while not any(m.get("T") == "subscription" for m in seen):
            seen += _receive(socket)
        served.client.put(
            "/api/admin/stocks/AAPL/price", json={"price": "151.00"}, headers=ADMIN
        ).raise_for_status()
        me = opened["headers"]
        served.client.post(
            "/api/orders", json={"symbol": "AAPL", "side": "buy", "quantity": 3}, headers=me
        ).raise_for_status()
        while not any(m.get("T") == "t" for m in seen):
            seen += _receive(socket)
    snapshot = next(m for m in seen if m.get("T") == "q" and "bp" in m)
    assert snapshot["S"] == "AAPL"
    moved = next(m for m in seen if m.get("T") == "q" and m.get("p") == "151.00")
    assert moved["pp"] == "150.00"
    trade = next(m for m in seen if m.get("T") == "t")
    assert (trade["S"], trade["p"], trade["s"]) == ("AAPL", "151.00", 3)


def test_many_http_clients_trade_at_once_and_conserve(served: Served) -> None:
    """32 accounts trade BOOK with each other over HTTP from 16 threads; then the books and
    accounts reconcile, no cash or share is made or lost, and nothing stays reserved."""
    accounts = [served.signup(f"crowd-{i}", deposit="100000") for i in range(32)]
    for opened in accounts[::2]:
        served.broker.grant_shares(opened["account_id"], "BOOK", 1000, "100")
    audit_before = served.broker.audit()
    errors: list[str] = []
    lock = threading.Lock()

    def trade(index: int) -> None:
        opened = accounts[index % len(accounts)]
        side = "sell" if index % len(accounts) % 2 == 0 else "buy"
        price = str(Decimal(98 + index % 5))
        with httpx.Client(base_url=served.url, headers=opened["headers"], timeout=20) as http:
            for step in range(10):
                answer = http.post(
                    "/api/orders",
                    json={
                        "symbol": "BOOK",
                        "side": side,
                        "quantity": 1 + step % 3,
                        "type": "limit",
                        "limit_price": price,
                    },
                )
                if answer.status_code != 201:
                    with lock:
                        errors.append(answer.text)
                elif step % 4 == 3:
                    http.delete(f"/api/orders/{answer.json()['order_id']}")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(trade, range(64)))
    assert errors == []
    assert served.broker.quote("BOOK").trades > 0
    for opened in accounts:
        me = opened["headers"]
        for order in served.client.get(
            "/api/orders", params={"status": ["pending", "partially_filled"]}, headers=me
        ).json():
            served.client.delete(f"/api/orders/{order['order_id']}", headers=me)
    report = served.broker.audit()  # reconciles every account and book, or raises
    assert report.cash == audit_before.cash
    assert report.shares["BOOK"] == audit_before.shares["BOOK"]
    assert report.reserved_shares.get("BOOK", 0) == 0
    for opened in accounts:
        balance = served.client.get("/api/account", headers=opened["headers"]).json()["balance"]
        assert balance["reserved"] == "0.00"
        assert Decimal(balance["cash"]) >= 0


def test_trade_stream_takes_binary_frames_and_listens_again(served: Served) -> None:
    """Alpaca's stream protocol on a raw socket: binary or text frames, errors for bad
    messages, and a listen after an unlisten delivers events again."""
    opened = served.signup("stream-raw")
    url = served.url.replace("http", "ws") + "/stream"
    auth = {
        "action": "authenticate",
        "data": {"key_id": opened["api_key_id"], "secret_key": opened["api_secret_key"]},
    }
    with connect(url) as socket:
        socket.send(b"\xff\xfe")
        assert json.loads(socket.recv(timeout=10))["stream"] == "error"
        socket.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        assert "authenticate first" in socket.recv(timeout=10)
        socket.send(json.dumps(auth).encode())
        reply = json.loads(socket.recv(timeout=10))
        assert reply == {
            "stream": "authorization",
            "data": {"status": "authorized", "action": "authenticate"},
        }
        socket.send(json.dumps(auth))
        assert "already authenticated" in socket.recv(timeout=10)
        for streams in (["trade_updates"], [], ["trade_updates"]):
            socket.send(json.dumps({"action": "listen", "data": {"streams": streams}}))
            listening = json.loads(socket.recv(timeout=10))
            assert listening == {"stream": "listening", "data": {"streams": streams}}
        served.client.post(
            "/api/orders",
            json={"symbol": "AAPL", "side": "buy", "quantity": 1},
            headers=opened["headers"],
        ).raise_for_status()
        events = [json.loads(socket.recv(timeout=10))["data"]["event"] for _ in range(2)]
    assert events == ["new", "fill"]


def test_trade_stream_refuses_a_wrong_key(served: Served) -> None:
    url = served.url.replace("http", "ws") + "/stream"
    with connect(url) as socket:
        socket.send(
            json.dumps({"action": "auth", "data": {"key_id": "PKNOPE", "secret_key": "nope"}})
        )
        reply = json.loads(socket.recv(timeout=10))
    assert reply["data"]["status"] == "unauthorized"

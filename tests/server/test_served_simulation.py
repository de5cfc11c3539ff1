"""`brokerage simulate --serve`: a program trades over HTTP, with the unmodified alpaca-py
client, in a running simulation beside its agents; the run's conservation check covers it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from rich.console import Console

from gateway import Brokerage
from gateway.apps.simulate import SimulationConfig, simulate
from gateway.server.app import free_port, serving_beside


def bot(url: str, seen: dict[str, Any]) -> None:
    """Sign up, wait for the agents to quote, buy at market from them, rest a limit sell,
    read it all back, and look at the run as the operator."""
    signup = {"user_id": "served-bot", "name": "Bot", "initial_deposit": "100000"}
    opened = httpx.post(f"{url}/api/accounts", json=signup, timeout=20).json()
    client = TradingClient(opened["api_key_id"], opened["api_secret_key"], url_override=url)
    headers = {
        "APCA-API-KEY-ID": opened["api_key_id"],
        "APCA-API-SECRET-KEY": opened["api_secret_key"],
    }
    deadline = time.monotonic() + 10
    while httpx.get(f"{url}/api/stocks/AAPL", headers=headers).json()["ask"] is None:
        assert time.monotonic() < deadline, "the market makers never quoted"
        time.sleep(0.02)
    bought = client.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=3, side=OrderSide.BUY, time_in_force=TimeInForce.GTC)
    )
    seen["bought"] = bought.status
    seen["position"] = client.get_open_position("AAPL").qty
    resting = client.submit_order(
        LimitOrderRequest(
            symbol="AAPL",
            qty=1,
            side=OrderSide.SELL,
            time_in_force=TimeInForce.GTC,
            limit_price=100_000,
        )
    )
    seen["resting"] = client.get_order_by_id(resting.id).status
    seen["account"] = opened["account_id"]
    admin = {"APCA-API-KEY-ID": "ADMIN", "APCA-API-SECRET-KEY": "run-secret"}
    seen["progress"] = httpx.get(f"{url}/api/admin/simulation", headers=admin).json()


def test_an_alpaca_py_bot_trades_in_a_served_simulation() -> None:
    seen: dict[str, Any] = {}

    @contextlib.contextmanager
    def with_bot(broker: Brokerage, progress: Any) -> Iterator[str]:
        port = free_port("127.0.0.1")
        with serving_beside(
            broker,
            "127.0.0.1",
            port,
            announce=lambda _: None,
            admin_key_id="ADMIN",
            admin_secret="run-secret",
            progress=progress,
        ) as url:
            trading = threading.Thread(target=bot, args=(url, seen))
            trading.start()
            yield url
            trading.join(timeout=30)

    config = SimulationConfig(accounts=60, symbols=2, seconds=3.0, mode="book", seed=3)
    report = simulate(config, Console(quiet=True), live=False, beside=with_bot)

    assert seen["progress"]["agents"] == 60  # the operator's view of the run
    assert seen["progress"]["seconds"] == 3.0
    assert seen["bought"] == OrderStatus.FILLED  # from the market makers' asks
    assert seen["position"] == "3"
    assert seen["resting"] == OrderStatus.NEW
    assert report["accounts"] == 60  # the agents; the bot's account is audited with them
    assert report["conservation"]["ok"], report["conservation"]  # its resting sell cancelled
    assert report["conservation"]["open_orders"] == 0

"""WebSocket streams: Alpaca's `trade_updates` at `/stream` and market data at `/stream/market`.

One `StreamHub` per server subscribes to the engine's event bus, lazily (order events are only
built once someone listens), and hands each event to the sockets that want it. The bus calls
the hub on its own thread; the hub moves each event onto the server's event loop. A socket
whose queue fills (a client that stops reading) is closed rather than allowed to grow.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import threading
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from engine.errors import BrokerageError
from engine.events import (
    OrderAccepted,
    OrderCancelled,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    PriceChanged,
)
from engine.orders import CancelReason, OrderStatus
from gateway.brokerage import Brokerage, SubscriptionHandle
from gateway.server.alpaca import order_json
from gateway.server.auth import KeyRecord
from gateway.server.context import ServerState, client_address, execution_uuid, verify_key
from gateway.server.encode import iso
from gateway.server.limits import RateLimitedError

QUEUE_LIMIT = 10_000
router = APIRouter()


class Listener:
    """One socket's queue of events, filled from the bus thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_LIMIT)
        self.overflowed = False

    def offer(self, item: Any) -> None:
        """Queue an item (from any thread)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is stopping
            self.loop.call_soon_threadsafe(self._put, item)

    def _put(self, item: Any) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True


class StreamHub:
    """Routes bus events to listeners by account (trade updates) and by symbol (market data)."""

    def __init__(self, broker: Brokerage) -> None:
        self._broker = broker
        self._lock = threading.Lock()
        self._handles: dict[str, SubscriptionHandle] = {}
        self.accounts: dict[str, set[Listener]] = collections.defaultdict(set)
        self.trades: dict[str, set[Listener]] = collections.defaultdict(set)
        self.quotes: dict[str, set[Listener]] = collections.defaultdict(set)
        self._seen: collections.deque[str] = collections.deque(maxlen=4096)
        self._seen_set: set[str] = set()

    def ensure(self, kind: str) -> None:
        """Subscribe to the bus for `kind` ("orders" or "market") once (blocking)."""
        with self._lock:
            if kind in self._handles:
                return
            if kind == "orders":
                events: list[type] = [
                    OrderAccepted,
                    OrderFilled,
                    OrderCancelled,
                    OrderRejected,
                    OrderReplaced,
                ]
                self._handles[kind] = self._broker.subscribe(self._on_order, events)
            else:
                self._handles[kind] = self._broker.subscribe(
                    self._on_market, [PriceChanged, OrderFilled]
                )

    def close(self) -> None:
        """End the bus subscriptions."""
        with self._lock:
            for handle in self._handles.values():
                with contextlib.suppress(BrokerageError):
                    handle.unsubscribe()
            self._handles.clear()

    def _on_order(self, event: Any) -> None:
        listeners = self.accounts.get(event.account_id)
        if listeners:
            for listener in tuple(listeners):
                listener.offer(event)

    def _on_market(self, event: Any) -> None:
        if isinstance(event, PriceChanged):
            message = {
                "T": "q",
                "S": event.symbol,
                "p": str(event.new_price),
                "pp": str(event.old_price),
                "t": iso(event.at),
            }
            targets = self.quotes
        else:
            transaction = event.transaction
            trade_id = transaction.trade_id
            if trade_id is None or trade_id in self._seen_set:
                return  # each trade once, though both of its sides are filled
            if len(self._seen) == self._seen.maxlen:
                self._seen_set.discard(self._seen[0])
            self._seen.append(trade_id)
            self._seen_set.add(trade_id)
            message = {
                "T": "t",
                "S": event.symbol,
                "i": trade_id,
                "p": str(transaction.price),
                "s": transaction.quantity,
                "t": iso(transaction.at),
            }
            targets = self.trades
        for key in (event.symbol, "*"):
            listeners = targets.get(key)
            if listeners:
                for listener in tuple(listeners):
                    listener.offer(message)


def trade_update(shared: ServerState, event: OrderEvent) -> dict[str, Any]:
    """An order event as Alpaca's `trade_updates` message."""
    order = event.order
    data: dict[str, Any] = {"order": order_json(shared, order), "position_qty": None}
    if isinstance(event, OrderFilled):
        transaction = event.transaction
        executed = order.status is OrderStatus.EXECUTED
        data["event"] = "fill" if executed else "partial_fill"
        data["execution_id"] = execution_uuid(transaction.trade_id or transaction.transaction_id)
        data["timestamp"] = iso(transaction.at)
        data["price"] = str(transaction.price)
        data["qty"] = str(transaction.quantity)
    else:
        if isinstance(event, OrderAccepted):
            data["event"] = "new"
        elif isinstance(event, OrderRejected):
            data["event"] = "rejected"
        elif isinstance(event, OrderReplaced):
            data["event"] = "replaced"
        else:
            expired = isinstance(event, OrderCancelled) and event.reason is CancelReason.EXPIRED
            data["event"] = "expired" if expired else "canceled"
        data["timestamp"] = iso(order.updated_at)
    return {"stream": "trade_updates", "data": data}


async def _send_all(socket: WebSocket, listener: Listener, shared: ServerState) -> None:
    try:
        while True:
            item = await listener.queue.get()
            if listener.overflowed:
                await socket.close(code=1008, reason="too slow: the event queue overflowed")
                return
            if isinstance(item, OrderEvent):
                await socket.send_text(json.dumps(trade_update(shared, item)))
            else:
                await socket.send_text(json.dumps([item]))
    except (WebSocketDisconnect, RuntimeError):  # the client went away mid-send
        return


async def _receive_json(socket: WebSocket) -> Any:
    """The next message (a text or a binary frame) as JSON, or the `ValueError` that says
    what was wrong with it."""
    message = await socket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if text is None:
        try:
            text = (message.get("bytes") or b"").decode("utf-8")
        except UnicodeDecodeError:
            return ValueError("a binary frame that is not UTF-8 text")
    if len(text) > 64 * 1024:
        return ValueError(f"message exceeds 65536 characters, was {len(text)}")
    try:
        return json.loads(text)
    except ValueError as error:
        return error


def _check_key(
    socket: WebSocket, shared: ServerState, key_id: Any, secret: Any
) -> KeyRecord | None:
    """The key's record, or None if it is wrong or its address has failed too often (a failure
    counts against the address, as over HTTP)."""
    try:
        return verify_key(shared, client_address(socket), key_id, secret)
    except RateLimitedError:
        return None


@router.websocket("/stream")
async def trade_updates(socket: WebSocket) -> None:
    """Alpaca's trading stream: authenticate, listen to `trade_updates`, receive them."""
    shared: ServerState = socket.app.state.server
    hub: StreamHub = socket.app.state.hub
    await socket.accept()
    listener = Listener(asyncio.get_running_loop())
    account_id: str | None = None
    sender: asyncio.Task[None] | None = None
    try:
        while True:
            message = await _receive_json(socket)
            if isinstance(message, ValueError) or not isinstance(message, dict):
                await socket.send_text(json.dumps(_stream_error(f"invalid message: {message}")))
                continue
            action, data = message.get("action"), message.get("data")
            data = data if isinstance(data, dict) else {}
            if action in ("authenticate", "auth"):
                if account_id is not None:
                    await socket.send_text(json.dumps(_stream_error("already authenticated")))
                    continue
                record = _check_key(
                    socket,
                    shared,
                    data.get("key_id", message.get("key")),
                    data.get("secret_key", message.get("secret")),
                )
                status = "authorized" if record and record.account_id else "unauthorized"
                reply = {"stream": "authorization", "data": {"status": status, "action": action}}
                await socket.send_text(json.dumps(reply))
                if record is None or record.account_id is None:
                    await socket.close(code=1008, reason="unauthorized")
                    return
                account_id = record.account_id
            elif action == "listen":
                if account_id is None:
                    await socket.send_text(json.dumps(_stream_error("authenticate first")))
                    continue
                streams = data.get("streams")
                wanted = (
                    [s for s in streams if s == "trade_updates"]
                    if isinstance(streams, list)
                    else []
                )
                if wanted:
                    await run_in_threadpool(hub.ensure, "orders")
                    hub.accounts[account_id].add(listener)
                    if sender is None:
                        sender = asyncio.create_task(_send_all(socket, listener, shared))
                else:
                    hub.accounts[account_id].discard(listener)
                reply = {"stream": "listening", "data": {"streams": wanted}}
                await socket.send_text(json.dumps(reply))
            else:
                await socket.send_text(json.dumps(_stream_error(f"unknown action, was {action!r}")))
    except WebSocketDisconnect:
        pass
    finally:
        if account_id is not None:
            hub.accounts[account_id].discard(listener)
        if sender is not None:
            sender.cancel()


def _stream_error(message: str) -> dict[str, Any]:
    return {"stream": "error", "data": {"error_message": message}}


def _symbols(value: Any) -> list[str] | None:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        return None
    if len(value) > 1000:
        return None
    return [s.upper() for s in value]


@router.websocket("/stream/market")
async def market_data(socket: WebSocket) -> None:
    """Quotes and trades: `{"action": "auth", "key", "secret"}`, then
    `{"action": "subscribe", "trades": [...], "quotes": [...]}` ("*" for every symbol)."""
    shared: ServerState = socket.app.state.server
    hub: StreamHub = socket.app.state.hub
    await socket.accept()
    await socket.send_text(json.dumps([{"T": "success", "msg": "connected"}]))
    listener = Listener(asyncio.get_running_loop())
    authorized = False
    sender: asyncio.Task[None] | None = None
    subscribed: dict[str, set[str]] = {"trades": set(), "quotes": set()}
    try:
        while True:
            message = await _receive_json(socket)
            if isinstance(message, ValueError) or not isinstance(message, dict):
                await _error(socket, 400, f"invalid syntax: {message}")
                continue
            action = message.get("action")
            if action == "auth":
                if _check_key(socket, shared, message.get("key"), message.get("secret")) is None:
                    await _error(socket, 402, "auth failed")
                    await socket.close(code=1008, reason="auth failed")
                    return
                authorized = True
                await socket.send_text(json.dumps([{"T": "success", "msg": "authenticated"}]))
                continue
            if not authorized:
                await _error(socket, 401, "not authenticated")
                continue
            if action not in ("subscribe", "unsubscribe"):
                await _error(socket, 400, f"invalid action, was {action!r}")
                continue
            asked = {kind: _symbols(message.get(kind)) for kind in ("trades", "quotes")}
            if any(v is None for v in asked.values()):
                await _error(socket, 400, "trades and quotes must be lists of at most 1000 symbols")
                continue
            chosen = {kind: list(v or ()) for kind, v in asked.items()}
            unknown = await run_in_threadpool(
                _unknown, shared, [s for v in chosen.values() for s in v if s != "*"]
            )
            if unknown:
                await _error(socket, 400, f"unknown symbols, was {sorted(unknown)!r}")
                continue
            if action == "subscribe":
                await run_in_threadpool(hub.ensure, "market")
                for kind, targets in (("trades", hub.trades), ("quotes", hub.quotes)):
                    for symbol in chosen[kind]:
                        targets[symbol].add(listener)
                        subscribed[kind].add(symbol)
                if sender is None:
                    sender = asyncio.create_task(_send_all(socket, listener, shared))
                snapshots = await run_in_threadpool(_snapshots, shared, chosen["quotes"])
                for snapshot in snapshots:
                    listener.offer(snapshot)
            else:
                for kind, targets in (("trades", hub.trades), ("quotes", hub.quotes)):
                    for symbol in chosen[kind]:
                        targets[symbol].discard(listener)
                        subscribed[kind].discard(symbol)
            reply = {"T": "subscription", **{k: sorted(v) for k, v in subscribed.items()}}
            await socket.send_text(json.dumps([reply]))
    except WebSocketDisconnect:
        pass
    finally:
        for kind, targets in (("trades", hub.trades), ("quotes", hub.quotes)):
            for symbol in subscribed[kind]:
                targets[symbol].discard(listener)
        if sender is not None:
            sender.cancel()


async def _error(socket: WebSocket, code: int, message: str) -> None:
    await socket.send_text(json.dumps([{"T": "error", "code": code, "msg": message}]))


def _unknown(shared: ServerState, symbols: Iterable[str]) -> set[str]:
    listed = {q.symbol for q in shared.broker.stocks()}
    return {s for s in symbols if s not in listed}


def _snapshots(shared: ServerState, symbols: list[str]) -> list[dict[str, Any]]:
    quotes = shared.broker.stocks() if "*" in symbols else [shared.broker.quote(s) for s in symbols]
    return [
        {
            "T": "q",
            "S": q.symbol,
            "p": str(q.last_price),
            "bp": None if q.bid is None else str(q.bid),
            "bs": q.bid_size,
            "ap": None if q.ask is None else str(q.ask),
            "as": q.ask_size,
            "t": iso(q.updated_at),
        }
        for q in quotes
    ]

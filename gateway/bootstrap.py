"""Wiring: start the actors of one brokerage on a runtime, and stop them in order."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from actors.base import Clock
from actors.board import Board
from actors.bus import EventBusActor, Interest
from actors.futures import new_future, resolve
from actors.gateway import GatewayActor
from actors.messages import ActorRef, GetChildren, GetState
from actors.metrics import Metrics
from actors.notify import NotificationActor, NotificationSettings
from actors.runtimes import LoopRuntime, Runtime, make_runtime
from actors.services import Journal, Services
from engine.factory import OrderFactory
from engine.ids import Symbol
from engine.journal import State
from engine.session import Session


@dataclass(frozen=True, slots=True)
class Engine:
    """The running actors of a brokerage: the gateway every request goes to, the event bus, the
    notifier, the runtime they run on, (on the "asyncio" runtime) a check for its loop, and the
    board the actors publish their hottest reads on."""

    runtime: Runtime
    gateway: ActorRef
    bus: ActorRef
    notifier: ActorRef
    on_loop: Callable[[], bool] | None
    board: Board


def start_engine(
    runtime_name: str,
    workers: int | None,
    *,
    clock: Clock,
    log: Any,
    metrics: Metrics,
    prices: MutableMapping[Symbol, int],
    factory: OrderFactory,
    history_limit: int,
    session: Session,
    notifications: NotificationSettings,
    journal: Journal | None = None,
    recovered: State | None = None,
) -> Engine:
    """Start a runtime, then the bus, the gateway actor (which starts an actor per account and
    per symbol as they come, and at once for every one `recovered` holds) and the notifier on
    it; with a `journal`, the actors write their facts to it."""
    runtime = make_runtime(runtime_name, workers)
    interest = Interest()
    bus = runtime.spawn(EventBusActor, log, interest)
    board = Board()
    services = Services(bus, interest, clock, log, metrics, journal=journal, board=board)
    gateway = runtime.spawn(
        GatewayActor, runtime, services, prices, factory, history_limit, session, recovered
    )
    notifier = runtime.spawn(NotificationActor, log, notifications)
    on_loop = runtime.on_loop_thread if isinstance(runtime, LoopRuntime) else None
    return Engine(runtime, gateway, bus, notifier, on_loop, board)


def stop_engine(engine: Engine, timeout: float, *, keep: bool = False) -> State | None:
    """Stop the accounts and symbols, then the gateway, then the bus and the notifier, then the
    runtime. With `keep`, return the engine's state as it rests once the accounts and symbols
    have stopped (for a snapshot)."""
    runtime = engine.runtime
    reply = new_future()
    engine.gateway.tell(GetChildren(reply))
    children: list[ActorRef] = resolve(reply.get(timeout=timeout), timeout)
    runtime.stop_all(children, timeout=timeout)
    state: State | None = None
    if keep:
        asked = new_future()
        engine.gateway.tell(GetState(asked))
        state = asked.get(timeout=timeout)
    runtime.stop_all([engine.gateway], timeout=timeout)
    runtime.stop_all([engine.bus, engine.notifier], timeout=timeout)
    runtime.shutdown()
    return state

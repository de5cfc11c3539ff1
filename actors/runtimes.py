"""Where actors run: `MNRuntime` (the default: a shared pool of workers), `LoopRuntime` (the
trading actors on the running asyncio loop) and `ThreadRuntime` (pykka's own thread per actor).

Each keeps its own map of live actors (pykka's registry is a list, O(n) to unregister) and
stops a batch of actors with one sweep of the registry.

Never: start threads per actor on the M:N runtimes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import pykka
from pykka import ActorRegistry

from actors.dispatch import DEFAULT_THROUGHPUT, Dispatcher, LoopDispatcher

if TYPE_CHECKING:
    from actors.base import BrokerActor

A = TypeVar("A", bound="BrokerActor")


class Runtime:
    """Where actors run. Keeps its own set of live actors (pykka's registry is a list)."""

    name = "base"

    def __init__(self) -> None:
        self._live: dict[str, BrokerActor] = {}

    def _adopt(self, actor: BrokerActor) -> None:
        self._live[actor.actor_urn] = actor

    def _forget(self, actor: BrokerActor) -> None:
        self._live.pop(actor.actor_urn, None)

    @property
    def live_actors(self) -> int:
        """How many actors are started and not yet stopped."""
        return len(self._live)

    def deepest_inbox(self) -> int:
        """The longest inbox of any live actor (a scan: O(actors))."""
        return max((a._inbox_length() for a in list(self._live.values())), default=0)

    def spawn(self, actor_class: type[A], *args: Any, **kwargs: Any) -> pykka.ActorRef[A]:
        """Start an actor of `actor_class` on this runtime."""
        return actor_class._start_on(self, *args, **kwargs)

    def stop_all(self, refs: Iterable[pykka.ActorRef[Any]], timeout: float | None) -> None:
        """Stop every actor in `refs`, wait until each has, and unregister them together.

        pykka's `ActorRegistry.unregister` is O(n) per actor; doing it once for the whole
        batch keeps stopping n actors O(n).
        """
        refs = list(refs)
        for ref in refs:
            actor = self._live.get(ref.actor_urn)
            if actor is not None:
                actor._bulk_stop = True
        futures = [ref.stop(block=False) for ref in refs if ref.is_alive()]
        for future in futures:
            future.get(timeout=timeout)
        dead = {ref.actor_urn for ref in refs}
        with ActorRegistry._actor_refs_lock:
            ActorRegistry._actor_refs[:] = [
                r for r in ActorRegistry._actor_refs if r.actor_urn not in dead
            ]

    def shutdown(self) -> None:
        """Release the runtime's threads (after its actors are stopped)."""


class ThreadRuntime(Runtime):
    """pykka's `ThreadingActor` behaviour: one OS thread per actor."""

    name = "threads"


class MNRuntime(Runtime):
    """Actors multiplexed on a shared pool of worker threads.

    Args:
        workers: Worker threads for the trading actors (default: measured best here).
        throughput: Messages an actor may handle per turn before yielding.
    """

    name = "mn"
    DEFAULT_WORKERS = 1

    def __init__(self, workers: int = DEFAULT_WORKERS, throughput: int = DEFAULT_THROUGHPUT):
        super().__init__()
        self.dispatcher: Dispatcher | LoopDispatcher = Dispatcher(workers, throughput)
        # Callbacks of subscribers may block; they get a worker of their own.
        self.side_dispatcher = Dispatcher(1, throughput, name="mn-side")

    def shutdown(self) -> None:
        """Stop the worker threads."""
        self.dispatcher.shutdown()
        self.side_dispatcher.shutdown()


class LoopRuntime(MNRuntime):
    """The M:N runtime with the trading actors on the running asyncio event loop (see
    `LoopDispatcher`); subscribers' actors keep a thread of their own, as they may block.

    Made on the loop's thread (`asyncio.get_running_loop()` must answer there).
    """

    name = "asyncio"

    def __init__(self, throughput: int = DEFAULT_THROUGHPUT) -> None:
        Runtime.__init__(self)
        self.dispatcher = LoopDispatcher(asyncio.get_running_loop(), throughput)
        self.side_dispatcher = Dispatcher(1, throughput, name="mn-side")

    def on_loop_thread(self) -> bool:
        """True when called from the loop's own thread (where blocking would deadlock)."""
        dispatcher = self.dispatcher
        return isinstance(dispatcher, LoopDispatcher) and threading.get_ident() == dispatcher.thread


def make_runtime(name: str, workers: int | None = None) -> Runtime:
    """Return a new runtime by name: "mn" (the default), "threads", or "asyncio" (on the
    running event loop; call it on the loop's thread)."""
    if name == "mn":
        return MNRuntime(workers or MNRuntime.DEFAULT_WORKERS)
    if name == "threads":
        return ThreadRuntime()
    if name == "asyncio":
        return LoopRuntime()
    raise ValueError(f"runtime must be 'mn', 'threads' or 'asyncio', was {name!r}")

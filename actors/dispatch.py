"""Mailboxes and the dispatchers that run actors' turns: a pool of worker threads (M:N, as in
Akka and Erlang) or the callbacks of an asyncio event loop.

An actor with mail is put on its dispatcher's run queue once; a worker (or a loop callback)
runs its turn, at most `throughput` messages, and puts it back at the end of the queue if it
still has mail, so a flooded actor cannot starve the others. An actor is queued, running, or
idle, never two at once, so it handles one message at a time and keeps each sender's order.

Never: run two turns of one actor at once, or let an actor's failure end a worker.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
from typing import TYPE_CHECKING, Any

from pykka._envelope import Envelope

if TYPE_CHECKING:
    from actors.base import BrokerActor

_logger = logging.getLogger(__name__)

DEFAULT_THROUGHPUT = 64
"""Messages an actor may handle in one turn on a worker before it yields."""


class Dispatcher:
    """A pool of worker threads that run actors' turns from one run queue.

    Args:
        workers: How many worker threads.
        throughput: At most this many messages per actor per turn.
    """

    def __init__(self, workers: int, throughput: int = DEFAULT_THROUGHPUT, name: str = "mn"):
        if workers < 1 or throughput < 1:
            raise ValueError(
                f"workers and throughput must be at least 1, was {workers}, {throughput}"
            )
        self.throughput = throughput
        self.ready: queue.SimpleQueue[BrokerActor | None] = queue.SimpleQueue()
        self.threads = [
            threading.Thread(target=self._work, name=f"{name}-worker-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self.threads:
            thread.start()

    def _work(self) -> None:
        ready, throughput = self.ready, self.throughput
        while True:
            actor = ready.get()
            if actor is None:
                return
            try:
                actor._run_turn(throughput)
            except BaseException:  # a worker must outlive any actor's bug
                _logger.exception("actor turn failed: %s", actor)

    def shutdown(self) -> None:
        """Stop the workers once the run queue is drained."""
        for _ in self.threads:
            self.ready.put(None)
        for thread in self.threads:
            if thread is not threading.current_thread():
                thread.join()


class LoopDispatcher:
    """Runs actors' turns as callbacks of an asyncio event loop, on the loop's own thread.

    An actor with mail is scheduled with `call_soon` (`call_soon_threadsafe` from any other
    thread), so a server on that loop hands a request to the engine and gets the reply back
    with no thread switch at all. Actors still handle one message at a time: a turn is one
    callback, and the loop runs one callback at a time. Nothing on the loop may block on the
    engine (it would wait for itself); `Brokerage` refuses such calls.

    Args:
        loop: The running loop (the runtime is made on its thread).
        throughput: At most this many messages per actor per turn.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, throughput: int = DEFAULT_THROUGHPUT):
        self.loop = loop
        self.throughput = throughput
        self.thread = threading.get_ident()
        self.ready = self  # the run queue's one operation is `put`, as on a `Dispatcher`

    def put(self, actor: BrokerActor | None) -> None:
        """Schedule one turn of `actor` on the loop."""
        if actor is None:
            return
        if threading.get_ident() == self.thread:
            self.loop.call_soon(self._turn, actor)
        else:
            self.loop.call_soon_threadsafe(self._turn, actor)

    def _turn(self, actor: BrokerActor) -> None:
        try:
            actor._run_turn(self.throughput)
        except BaseException:  # the loop must outlive any actor's bug
            _logger.exception("actor turn failed: %s", actor)

    def shutdown(self) -> None:
        """Nothing to stop: the loop belongs to its owner."""


class Mailbox:
    """An actor's inbox on the M:N runtime: a deque plus a "scheduled" flag.

    `put` appends and, if the actor is neither queued nor running, queues it on the dispatcher.
    Both happen under the mailbox's own lock, which no other mailbox shares. The deque is made
    on the first message: an empty deque costs 760 bytes, more than the rest of an idle actor's
    inbox, and an account that never trades never needs one. (Dropping it again whenever the
    inbox empties saved memory but cost about a tenth of the throughput in allocations.)
    """

    __slots__ = ("actor", "dispatcher", "lock", "messages", "scheduled")

    def __init__(self, actor: BrokerActor, dispatcher: Dispatcher | LoopDispatcher) -> None:
        self.messages: collections.deque[Envelope[Any]] | None = None
        self.lock = threading.Lock()
        self.scheduled = True  # until the first turn has run on_start
        self.actor = actor
        self.dispatcher = dispatcher

    def put(self, envelope: Envelope[Any], /) -> None:
        """Deliver an envelope, scheduling the actor if it was idle."""
        actor = self.actor
        with self.lock:
            messages = self.messages
            if messages is None:
                messages = self.messages = collections.deque()
            messages.append(envelope)
            idle = not self.scheduled
            self.scheduled = True
        if actor.actor_stopped.is_set():
            actor._fail_queued()
        elif idle:
            self.dispatcher.ready.put(actor)

    def finish_turn(self) -> bool:
        """End the running turn: True (and still scheduled) if mail waits, else go idle."""
        with self.lock:
            again = bool(self.messages)
            self.scheduled = again
        return again

    def get(self) -> Envelope[Any]:
        """Take the oldest envelope (raises IndexError when empty)."""
        messages = self.messages
        if messages is None:
            raise IndexError("empty mailbox")
        return messages.popleft()

    def empty(self) -> bool:
        """True when no envelope waits."""
        return not self.messages

    def __len__(self) -> int:
        return len(self.messages or ())


class StopFlag:
    """`actor_stopped` for actors on the M:N runtime: the `threading.Event` interface pykka
    uses (`set`, `is_set`, `wait`) at a fraction of its size (an Event carries a condition
    variable and its own deque, over a kilobyte); the event behind `wait` is made on demand."""

    __slots__ = ("_event", "_set")

    def __init__(self) -> None:
        self._set = False
        self._event: threading.Event | None = None

    def is_set(self) -> bool:
        """True once the actor has stopped."""
        return self._set

    def set(self) -> None:
        """Mark the actor stopped and wake any waiter."""
        self._set = True
        if self._event is not None:
            self._event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the actor has stopped (or `timeout` seconds pass); return is_set()."""
        if self._set:
            return True
        if self._event is None:
            self._event = threading.Event()
            if self._set:  # set() ran before the event existed
                self._event.set()
        return self._event.wait(timeout)

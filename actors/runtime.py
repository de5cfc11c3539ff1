"""The project's actor base class and the runtimes under it.

Every actor derives from `BrokerActor`, a pykka actor, and runs on one of two runtimes:

- `MNRuntime` (the default): actors' inboxes are drained by a small shared pool of worker
  threads (an M:N dispatcher, as in Akka and Erlang). An actor with mail is put on the run
  queue once; a worker takes it, handles at most `throughput` messages, and puts it back at
  the end of the queue if it still has mail, so a flooded actor cannot starve the others.
  An actor is on the run queue, or being run by one worker, or idle, never two at once, so it
  handles one message at a time, and messages from one sender keep their order.
- `ThreadRuntime`: pykka's own `ThreadingActor` behaviour, one OS thread per actor.

Both keep pykka's API: `start()` returns an `ActorRef`; `tell`, `ask`, `proxy()`; futures;
`ActorRegistry`; `on_start`, `on_stop`, `on_failure`. Asks still queued when an actor stops
fail with `pykka.ActorDeadError`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

import pykka
from pykka import ActorDeadError, ActorRegistry, messages
from pykka._envelope import Envelope

from actors.log import where
from engine.commands import Reply

Clock = Callable[[], int]
"""Returns the time as integer nanoseconds since the epoch."""

default_clock: Clock = time.time_ns

_Handler = Callable[[Any, Any], None]
_F = TypeVar("_F", bound=_Handler)
_logger = logging.getLogger(__name__)

DEFAULT_THROUGHPUT = 64
"""Messages an actor may handle in one turn on a worker before it yields."""
FAILURES_KEPT = 20
"""Failures an actor remembers for the audit."""


def handles(*message_types: type) -> Callable[[_F], _F]:
    """Mark an actor method as the handler of `message_types`."""

    def mark(method: _F) -> _F:
        method._handles = message_types  # type: ignore[attr-defined]
        return method

    return mark


class LightFuture(pykka.Future[Any]):
    """pykka's future on a plain lock: a one-shot reply channel that is cheaper to make and to
    wake than `pykka.ThreadingFuture` (whose condition variable costs a lock and a waiter list).

    The lock is held from birth and released once, by `set` or `set_exception`; `get` waits
    for it. It supports everything a pykka future does (`get(timeout)`, `map`, `join`,
    `filter`, `reduce`, `await`, `pykka.get_all`). Each future has one setter.
    """

    _callback: Callable[[LightFuture], object] | None = None  # set by add_done_callback
    _claims: list[None]

    def __init__(self) -> None:
        super().__init__()
        self._done = threading.Lock()
        self._done.acquire()
        self._result: tuple[Any, Any] | None = None

    def add_done_callback(self, callback: Callable[[LightFuture], object]) -> None:
        """Call `callback(self)` once, when the value (or error) is in: from the setter's
        thread, or at once from this one if it is in already. One callback per future.

        The setter and this method each check for the other after their own write, and a
        one-shot claim (an atomic `list.pop`) makes sure exactly one of them calls it.
        """
        if self._callback is not None:
            raise RuntimeError("a LightFuture takes one done-callback")
        self._claims = [None]
        self._callback = callback
        if self._result is not None and self._claim():
            callback(self)

    def _claim(self) -> bool:
        try:
            self._claims.pop()
        except IndexError:
            return False
        return True

    def _fire(self) -> None:
        callback = self._callback
        if callback is not None and self._claim():
            callback(self)

    def get(self, *, timeout: float | None = None) -> Any:
        """Wait for the value (or error) and return (or raise) it."""
        if self._get_hook is not None:
            return super().get(timeout=timeout)
        if self._result is None:
            if not self._done.acquire(True, -1 if timeout is None else timeout):
                raise pykka.Timeout(f"{timeout} seconds")
            self._done.release()
        assert self._result is not None
        value, exc_info = self._result
        if exc_info is not None:
            exc_type, exc_value, traceback = exc_info
            if exc_value is None:
                exc_value = exc_type()
            raise exc_value.with_traceback(traceback)
        return value

    def set(self, value: Any = None) -> None:
        """Deliver the value; raises queue.Full if already set."""
        if self._result is not None or self._get_hook is not None:
            raise queue.Full
        self._result = (value, None)
        self._done.release()
        if self._callback is not None:
            self._fire()

    def set_exception(self, exc_info: Any = None) -> None:
        """Deliver an error as `(type, value, traceback)` (default: the one being handled)."""
        if self._result is not None or self._get_hook is not None:
            raise queue.Full
        self._result = (None, exc_info if exc_info is not None else sys.exc_info())
        self._done.release()
        if self._callback is not None:
            self._fire()

    def set_get_hook(self, func: Any) -> None:
        """Compute the value on `get` instead (as `map` does)."""
        if self._result is not None:
            raise queue.Full
        super().set_get_hook(func)


def new_future() -> pykka.Future[Any]:
    """A one-shot reply channel."""
    return LightFuture()


def fail(reply: Reply | None, error: BaseException) -> None:
    """Deliver `error` to `reply`, if there is one to deliver to."""
    if reply is not None:
        reply.set_exception((type(error), error, error.__traceback__))


@dataclass(frozen=True, slots=True)
class AfterAll:
    """A reply whose value holds only once every future in `waits` is done.

    An actor that cannot wait (it must not block) replies with this; the caller waits.
    """

    value: Any
    waits: tuple[pykka.Future[Any], ...]


@dataclass(frozen=True, slots=True)
class Gathered:
    """A reply that is the list of the results of `futures`, in order."""

    futures: tuple[pykka.Future[Any], ...]


def resolve(result: Any, timeout: float | None) -> Any:
    """Turn an actor's reply into the caller's value, waiting on what it still depends on."""
    if isinstance(result, AfterAll):
        for future in result.waits:
            future.get(timeout=timeout)
        return result.value
    if isinstance(result, Gathered):
        return [resolve(f.get(timeout=timeout), timeout) for f in result.futures]
    return result


# -- the M:N dispatcher ---------------------------------------------------------------------------


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


# -- runtimes -------------------------------------------------------------------------------------


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


A = TypeVar("A", bound="BrokerActor")

_counter = itertools.count()


class BrokerActor(pykka.ThreadingActor):
    """Base of every actor here: one handler per command type, and no death by bad message.

    A handler that raises sends the error to the message's `reply` (or logs it when there is
    none) and the actor goes on with its next message. Start one with `runtime.spawn(cls,
    ...)`; plain `cls.start(...)` runs it on its own thread, as pykka does.
    """

    # per class (made by __init_subclass__); an instance may swap in its own, as a halted symbol
    _handlers: dict[type, _Handler] = {}  # noqa: RUF012
    side_work: ClassVar[bool] = False
    """True for actors whose handlers may block (subscriber callbacks): on the M:N runtime
    they run on the side dispatcher, away from trading."""

    supervised: ClassVar[bool] = False
    """True for actors whose state must outlive a failure (accounts, symbols, the gateway, the
    bus, the notifier): a stop request outside `Runtime.stop_all` restarts them from their
    state instead of stopping them (see `_crashed` and `recover`)."""

    _runtime: Runtime | None = None
    _bulk_stop = False
    _started = False
    failures: tuple[str, ...] = ()
    """What went wrong with this actor and what came of it, newest last (at most
    `FAILURES_KEPT`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type, _Handler] = {}
        for klass in reversed(cls.__mro__):
            for attribute in vars(klass).values():
                for message_type in getattr(attribute, "_handles", ()):
                    table[message_type] = attribute
        cls._handlers = table

    @classmethod
    def _start_on(cls, runtime: Runtime, *args: Any, **kwargs: Any) -> pykka.ActorRef[Self]:
        obj = cls.__new__(cls)
        obj._runtime = runtime
        obj.__init__(*args, **kwargs)  # type: ignore[misc]
        ActorRegistry.register(obj.actor_ref)
        runtime._adopt(obj)
        obj._start_actor_loop()
        return obj.actor_ref

    def __init__(self, log: Any, **context: Any) -> None:
        super().__init__()
        self._root_log = log
        self._log_context = tuple(context.items())
        self._bound_log: Any = None
        if isinstance(self._runtime, MNRuntime):
            runtime = self._runtime
            dispatcher = runtime.side_dispatcher if self.side_work else runtime.dispatcher
            self.actor_inbox = Mailbox(self, dispatcher)
            self.actor_stopped = StopFlag()  # type: ignore[assignment]
            self._actor_ref = pykka.ActorRef(self)

    @property
    def log(self) -> Any:
        """This actor's logger, bound to its ids (bound on first use: most never log)."""
        if self._bound_log is None:
            self._bound_log = self._root_log.bind(**dict(self._log_context))
        return self._bound_log

    # -- the M:N turn ------------------------------------------------------------------------------

    def _start_actor_loop(self) -> None:
        inbox = self.actor_inbox
        if isinstance(inbox, Mailbox):
            inbox.dispatcher.ready.put(self)  # the first turn runs on_start
        else:
            super()._start_actor_loop()

    def _inbox_length(self) -> int:
        inbox = self.actor_inbox
        return len(inbox) if isinstance(inbox, Mailbox) else inbox.qsize()  # type: ignore[attr-defined]

    def _run_turn(self, budget: int) -> None:
        mailbox: Mailbox = self.actor_inbox  # type: ignore[assignment]
        stopped = self.actor_stopped
        if not self._started:
            self._started = True
            self._actor_loop_setup()
        messages = mailbox.messages  # made by the first put; never dropped
        if messages is not None and not stopped.is_set():
            popleft = messages.popleft
            handle = self._handle_envelope
            for _ in range(budget):
                try:
                    envelope = popleft()
                except IndexError:
                    break
                try:
                    handle(envelope)
                except BaseException as error:  # past the handler's own containment
                    self._crashed(envelope.message, envelope.reply_to, error)
                    if isinstance(error, KeyboardInterrupt | SystemExit):
                        if mailbox.finish_turn():
                            mailbox.dispatcher.ready.put(self)
                        raise
                if stopped.is_set():
                    break
        if stopped.is_set():
            self._fail_queued()
            return
        if mailbox.finish_turn():
            mailbox.dispatcher.ready.put(self)

    def _handle_envelope(self, envelope: Envelope[Any]) -> None:
        message = envelope.message
        if envelope.reply_to is None:
            handler = self._handlers.get(type(message))
            if handler is not None:  # a told command: straight to its handler
                try:
                    handler(self, message)
                except Exception as error:
                    self._handler_failed(message, error)
                return
        # anything else takes pykka's own loop body (`Actor._actor_loop_running`)
        try:
            response = self._handle_receive(envelope.message)
            if envelope.reply_to is not None:
                envelope.reply_to.set(response)
        except Exception:
            if envelope.reply_to is not None:
                envelope.reply_to.set_exception()
            else:
                self._handle_failure(*sys.exc_info())
                try:
                    self.on_failure(*sys.exc_info())
                except Exception:
                    self._handle_failure(*sys.exc_info())

    def _fail_queued(self) -> None:
        """Answer every envelope still queued: stops succeed; asks, and commands that carry a
        reply, fail with ActorDeadError."""
        mailbox: Mailbox = self.actor_inbox  # type: ignore[assignment]
        while True:
            try:
                envelope = mailbox.get()
            except IndexError:
                return
            error = ActorDeadError(f"{self.actor_ref} stopped before handling the message")
            reply = envelope.reply_to or getattr(envelope.message, "reply", None)
            if reply is None:
                continue
            try:
                if isinstance(envelope.message, messages._ActorStop):
                    reply.set(None)
                else:
                    reply.set_exception((ActorDeadError, error, None))
            except queue.Full:  # answered already
                pass

    # -- supervision -------------------------------------------------------------------------------

    def _crashed(self, message: Any, reply_to: Any, error: BaseException | None) -> None:
        """Handle a failure of this actor: `message` raised `error` past its handler (on the
        M:N runtimes), or, with both None, the actor was asked to stop outside the runtime's
        `stop_all`. Runs with exclusive access to the actor (its turn is still on). `recover`
        decides what is left; the failure is logged and kept for the audit, and an ask waiting
        on the message is answered with the error. The actor's queued mail is kept."""
        try:
            outcome = self.recover(message, error)
        except Exception as second:  # recovery must not take the worker down with it
            outcome = f"not recovered ({type(second).__name__} in recover)"
        cause = "a stop outside close" if error is None else type(error).__name__
        what = "" if message is None else f" in {type(message).__name__}"
        note = f"{outcome} after {cause}{what}"
        self.failures = (*self.failures[-(FAILURES_KEPT - 1) :], note)
        self.log.error(
            "actor.failed",
            outcome=outcome,
            error_type=cause,
            message=type(message).__name__ if message is not None else None,
            where=where(error) if error is not None else None,
        )
        if error is not None:
            with contextlib.suppress(queue.Full):  # answered already
                fail(reply_to, error)

    def recover(self, message: Any, error: BaseException | None) -> str:
        """Decide what a failure of `message` leaves (see `_crashed`) and say it in a word or
        two ("restarted", "halted"). The default keeps the state as it is and answers the
        message's reply with the error; actors whose state a half-handled message may have
        broken override it."""
        if error is not None:
            with contextlib.suppress(queue.Full):  # answered already
                fail(getattr(message, "reply", None), error)
        return "restarted"

    def _stop(self) -> None:
        if self.supervised and not self._bulk_stop:
            # a supervised actor outlives a stop request: it restarts from its state, its
            # queued mail kept; only the brokerage's close (`Runtime.stop_all`) stops it
            self._crashed(None, None, None)
            return
        # pykka's `Actor._stop`, but a bulk stop unregisters all its actors at once afterwards
        if not self._bulk_stop:
            ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
        if self._runtime is not None:
            self._runtime._forget(self)
        try:
            self.on_stop()
        except Exception:
            self._handle_failure(*sys.exc_info())

    # -- messages ----------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        """Dispatch `message` to its handler; route any error to its reply."""
        handler = self._handlers.get(type(message))
        try:
            if handler is None:
                raise TypeError(f"{type(self).__name__} has no handler, was {message!r}")
            handler(self, message)
        except Exception as error:
            self._handler_failed(message, error)
        return None

    def _handler_failed(self, message: Any, error: Exception) -> None:
        # an actor must never die from a bad message: the error goes to the reply, or the log
        reply = getattr(message, "reply", None)
        if reply is None:
            self.log.error(
                "actor.message_failed", message=type(message).__name__, error=repr(error)
            )
        else:
            fail(reply, error)


def send(ref: pykka.ActorRef[Any], message: Any) -> None:
    """`ref.tell(message)`, minus pykka's liveness check when the actor is on the M:N runtime
    (its mailbox answers for a stopped actor itself): the hot path between actors."""
    inbox = ref.actor_inbox
    if type(inbox) is Mailbox:
        inbox.put(Envelope(message))
    else:
        ref.tell(message)


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

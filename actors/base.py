"""`BrokerActor`, the one base class of the project's actors: a handler per message type, no
death by bad message, supervision; and `send`, the hot path between actors.

Actors keep pykka's API on every runtime (`actors.runtimes`): `start()` or `runtime.spawn()`
returns an `ActorRef`; `tell`, `ask`, `proxy()`; futures; `ActorRegistry`; `on_start`,
`on_stop`, `on_failure`. Asks still queued when an actor stops fail with
`pykka.ActorDeadError`.

Never: let a message, or a failure past a handler, end an actor without recovery.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import sys
import time
from collections.abc import Callable
from typing import Any, ClassVar, Self, TypeVar

import pykka
from pykka import ActorDeadError, ActorRegistry, messages
from pykka._envelope import Envelope

from actors.dispatch import Mailbox, StopFlag
from actors.futures import fail
from actors.log import where
from actors.messages import Request, message_name
from actors.runtimes import MNRuntime, Runtime

Clock = Callable[[], int]
"""Returns the time as integer nanoseconds since the epoch."""

default_clock: Clock = time.time_ns

_Handler = Callable[[Any, Any], None]
_F = TypeVar("_F", bound=_Handler)
FAILURES_KEPT = 20
"""Failures an actor remembers for the audit."""

_urns = itertools.count(1)  # next() on a count is atomic under the GIL


def handles(*message_types: type) -> Callable[[_F], _F]:
    """Mark an actor method as the handler of `message_types`: message classes, or domain
    command classes (then it handles the `Request` that carries one)."""

    def mark(method: _F) -> _F:
        method._handles = message_types  # type: ignore[attr-defined]
        return method

    return mark


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
        self._root_log = log
        self._log_context = tuple(context.items())
        self._bound_log: Any = None
        if isinstance(self._runtime, MNRuntime):
            # pykka's own __init__ would make a thread's inbox (a queue.Queue and its three
            # condition variables), an Event and a random UUID, all replaced here at once: on
            # the M:N runtime the fields it promises are set directly (a sign-up spawns one
            # account actor, and that work was most of the spawn)
            runtime = self._runtime
            dispatcher = runtime.side_dispatcher if self.side_work else runtime.dispatcher
            self.actor_urn = f"urn:brokerage:actor:{next(_urns)}"
            self.actor_inbox = Mailbox(self, dispatcher)
            self.actor_stopped = StopFlag()  # type: ignore[assignment]
            self._actor_ref = pykka.ActorRef(self)
        else:
            super().__init__()

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
            kind = type(message)
            handler = self._handlers.get(type(message.command) if kind is Request else kind)
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
        what = "" if message is None else f" in {message_name(message)}"
        note = f"{outcome} after {cause}{what}"
        self.failures = (*self.failures[-(FAILURES_KEPT - 1) :], note)
        self.log.error(
            "actor.failed",
            outcome=outcome,
            error_type=cause,
            message=message_name(message) if message is not None else None,
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
        kind = type(message)
        handler = self._handlers.get(type(message.command) if kind is Request else kind)
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
            self.log.error("actor.message_failed", message=message_name(message), error=repr(error))
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

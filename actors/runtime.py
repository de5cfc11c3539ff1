"""The project's actor base class and the few runtime helpers the actors share.

Every actor derives from `BrokerActor`, so the runtime under them can be swapped in one place.
Today it is pykka's `ThreadingActor` (one OS thread per actor).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import pykka

from engine.commands import Reply

Clock = Callable[[], int]
"""Returns the time as integer nanoseconds since the epoch."""

default_clock: Clock = time.time_ns

_Handler = Callable[[Any, Any], None]
_F = TypeVar("_F", bound=_Handler)


def handles(*message_types: type) -> Callable[[_F], _F]:
    """Mark an actor method as the handler of `message_types`."""

    def mark(method: _F) -> _F:
        method._handles = message_types  # type: ignore[attr-defined]
        return method

    return mark


def new_future() -> pykka.Future[Any]:
    """A one-shot reply channel of the current runtime."""
    return pykka.ThreadingFuture()


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


class BrokerActor(pykka.ThreadingActor):
    """Base of every actor here: one handler per command type, and no death by bad message.

    A handler that raises sends the error to the message's `reply` (or logs it when there is
    none) and the actor goes on with its next message.
    """

    _handlers: ClassVar[dict[type, _Handler]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type, _Handler] = {}
        for klass in reversed(cls.__mro__):
            for attribute in vars(klass).values():
                for message_type in getattr(attribute, "_handles", ()):
                    table[message_type] = attribute
        cls._handlers = table

    def __init__(self, log: Any) -> None:
        super().__init__()
        self.log = log

    def on_receive(self, message: Any) -> Any:
        """Dispatch `message` to its handler; route any error to its reply."""
        handler = self._handlers.get(type(message))
        try:
            if handler is None:
                raise TypeError(f"{type(self).__name__} has no handler, was {message!r}")
            handler(self, message)
        except Exception as error:  # an actor must never die from a bad message
            reply = getattr(message, "reply", None)
            if reply is None:
                self.log.error(
                    "actor.message_failed", message=type(message).__name__, error=repr(error)
                )
            else:
                fail(reply, error)
        return None


def stop_all(refs: Iterable[pykka.ActorRef[Any]], timeout: float | None) -> None:
    """Stop every actor in `refs` and wait until each has stopped."""
    futures = [ref.stop(block=False) for ref in refs]
    for future in futures:
        future.get(timeout=timeout)

"""Replies between actors and their callers: a one-shot future on a plain lock, and the reply
shapes an actor uses when the caller must wait on more than its answer.

Never: block an actor; an actor answers with `AfterAll` or `Gathered` and the caller waits.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pykka

from actors.messages import Reply

T = TypeVar("T")


class LightFuture(pykka.Future[T]):
    """pykka's future on a plain lock: a one-shot reply channel that is cheaper to make and to
    wake than `pykka.ThreadingFuture` (whose condition variable costs a lock and a waiter list).

    The lock is held from birth and released once, by `set` or `set_exception`; `get` waits
    for it. It supports everything a pykka future does (`get(timeout)`, `map`, `join`,
    `filter`, `reduce`, `await`, `pykka.get_all`). Each future has one setter.
    """

    _callback: Callable[[LightFuture[Any]], object] | None = None  # set by add_done_callback
    _claims: list[None]

    def __init__(self) -> None:
        super().__init__()
        self._done = threading.Lock()
        self._done.acquire()
        self._result: tuple[Any, Any] | None = None

    def add_done_callback(self, callback: Callable[[LightFuture[Any]], object]) -> None:
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

    def get(self, *, timeout: float | None = None) -> T:
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
        return cast(T, value)

    def set(self, value: T | None = None) -> None:
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


def new_future() -> LightFuture[Any]:
    """A one-shot reply channel."""
    return LightFuture()


def done_future(value: T) -> LightFuture[T]:
    """A future that holds `value` already."""
    future: LightFuture[T] = LightFuture()
    future.set(value)
    return future


def failed_future(error: BaseException) -> LightFuture[Any]:
    """A future that holds `error` already."""
    future: LightFuture[Any] = LightFuture()
    future.set_exception((type(error), error, error.__traceback__))
    return future


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
    """Turn an actor's reply into the caller's value, waiting on what it still depends on (a
    wait that is itself answered with an `AfterAll` is waited through)."""
    if isinstance(result, AfterAll):
        for future in result.waits:
            value = future.get(timeout=timeout)
            if value is not None:  # most waits answer None: nothing more to wait on
                resolve(value, timeout)
        return result.value
    if isinstance(result, Gathered):
        return [resolve(f.get(timeout=timeout), timeout) for f in result.futures]
    return result

"""How a public operation is defined once and called three ways.

An operation is one method that parses the caller's values into its command or query, sends it
and returns a `Call`: the reply future, and how the raw reply becomes the caller's value.
`@operation` makes that method the blocking form (it waits for the value); `.future()` and
`.coroutine()` make its other two forms, a `pykka.Future` of the value and an awaitable of it:

    @operation
    def deposit(self, account_id: str, amount: Any) -> Call[Balance]:
        \"""Add cash; return the new balance.\"""
        return self._request(Deposit.parse(account_id, amount))

    deposit_async = deposit.future()
    adeposit = deposit.coroutine()

Each form raises what the definition raises (a refused value, a stopped brokerage), except that
the future form delivers a refused value as the future's error, like the engine's own refusals.

An operation that asks several times in turn (each ask depending on the answers before) is a
generator under `@steps`: it yields each `Call` and is sent its value (or has its error raised
where it yielded), and returns the result; it has the blocking form and `.coroutine()`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, Self, TypeVar, cast, overload

import pykka

from actors.aio import settle
from actors.futures import failed_future, resolve
from engine.errors import BrokerageError, BrokerStoppedError

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """An operation under way: its reply future, and `finish`, which turns the reply's value
    (once it and what it depends on are done) into the caller's `T`. With `settled` the reply
    future's own `get` gives the final value already (an order's future does)."""

    reply: pykka.Future[Any]
    finish: Callable[[Any], T] = _same
    settled: bool = False


class Caller(Protocol):
    """What the three forms need of the object whose operations they call."""

    timeout: float

    def _wait(self, reply: pykka.Future[Any]) -> Any:
        """Block until the reply, and what it depends on, is done; return the value."""


class _Form(Generic[P, R]):
    """One form of an operation, as a method (a descriptor): `_bind` makes the bound method."""

    def __init__(self, define: Callable[Concatenate[Any, P], Any], doc: str) -> None:
        self._define = define
        self.__doc__ = doc
        self.__wrapped__ = define

    def __set_name__(self, owner: type, name: str) -> None:
        self.__name__ = name
        self.__qualname__ = f"{owner.__qualname__}.{name}"

    @overload
    def __get__(self, instance: None, owner: type) -> Self: ...

    @overload
    def __get__(self, instance: object, owner: type) -> Callable[P, R]: ...

    def __get__(self, instance: object, owner: type) -> Self | Callable[P, R]:
        if instance is None:
            return self
        bound = self._bind(cast(Caller, instance))
        signature = inspect.signature(self._define)
        bound.__name__ = self.__name__
        bound.__qualname__ = self.__qualname__
        bound.__doc__ = self.__doc__
        bound.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=list(signature.parameters.values())[1:],
            return_annotation=inspect.Signature.empty,
        )
        # kept on the instance, which then finds it before this (non-data) descriptor: made
        # once per instance and form, a plain attribute look-up after that
        vars(instance)[self.__name__] = bound
        return bound

    def _bind(self, instance: Caller) -> Callable[P, R]:
        raise NotImplementedError


class Operation(_Form[P, T]):
    """The blocking form; `future()` and `coroutine()` make the other two."""

    def __init__(self, define: Callable[Concatenate[Any, P], Call[T]]) -> None:
        super().__init__(define, define.__doc__ or "")
        self._typed = define

    def _bind(self, instance: Caller) -> Callable[P, T]:
        define = self._typed

        def blocking(*args: P.args, **kwargs: P.kwargs) -> T:
            call = define(instance, *args, **kwargs)
            return call.finish(instance._wait(call.reply))

        return blocking

    def call(self, instance: Any, *args: P.args, **kwargs: P.kwargs) -> Call[T]:
        """The `Call` itself (for a `steps` operation to yield)."""
        return self._typed(instance, *args, **kwargs)

    def future(self) -> _FutureForm[P, T]:
        """The form that returns a future of the value at once."""
        return _FutureForm(self._typed, f"`{self._typed.__name__}`, returning a future.")

    def coroutine(self) -> _CoroutineForm[P, T]:
        """The form to await (no thread waits: the reply wakes the event loop)."""
        return _CoroutineForm(self._typed, f"`{self._typed.__name__}`, awaited.")


class _FutureForm(_Form[P, "pykka.Future[T]"]):
    def __init__(self, define: Callable[Concatenate[Any, P], Call[T]], doc: str) -> None:
        super().__init__(define, doc)
        self._typed = define

    def _bind(self, instance: Caller) -> Callable[P, pykka.Future[T]]:
        define = self._typed

        def future(*args: P.args, **kwargs: P.kwargs) -> pykka.Future[T]:
            try:
                call = define(instance, *args, **kwargs)
            except BrokerStoppedError:
                raise
            except BrokerageError as error:  # refused at once: the future says so
                return failed_future(error)
            finish = call.finish
            if call.settled:
                return call.reply if finish is _same else call.reply.map(finish)
            timeout = instance.timeout
            return call.reply.map(lambda result: finish(resolve(result, timeout)))

        return future


class _CoroutineForm(_Form[P, "Coroutine[Any, Any, T]"]):
    def __init__(self, define: Callable[Concatenate[Any, P], Call[T]], doc: str) -> None:
        super().__init__(define, doc)
        self._typed = define

    def _bind(self, instance: Caller) -> Callable[P, Coroutine[Any, Any, T]]:
        define = self._typed

        async def awaited(*args: P.args, **kwargs: P.kwargs) -> T:
            call = define(instance, *args, **kwargs)
            return call.finish(await settle(call.reply, instance.timeout))

        return awaited


def operation(define: Callable[Concatenate[Any, P], Call[T]]) -> Operation[P, T]:
    """Make `define` an operation (see the module's docstring)."""
    return Operation(define)


Steps = Generator[Call[Any], Any, T]
"""An operation made of several calls in turn: it yields each `Call` and is sent its value."""


class StepsOperation(_Form[P, T]):
    """The blocking form of a `steps` operation; `coroutine()` makes the awaited one."""

    def __init__(self, define: Callable[Concatenate[Any, P], Steps[T]]) -> None:
        super().__init__(define, define.__doc__ or "")
        self._steps = define

    def _bind(self, instance: Caller) -> Callable[P, T]:
        define = self._steps

        def blocking(*args: P.args, **kwargs: P.kwargs) -> T:
            steps = define(instance, *args, **kwargs)
            try:
                call = next(steps)
                while True:
                    try:
                        value = call.finish(instance._wait(call.reply))
                    except BrokerageError as error:  # for the steps to catch, or not
                        call = steps.throw(error)
                    else:
                        call = steps.send(value)
            except StopIteration as done:
                return cast(T, done.value)

        return blocking

    def coroutine(self) -> _StepsCoroutine[P, T]:
        """The form to await."""
        return _StepsCoroutine(self._steps, f"`{self._steps.__name__}`, awaited.")


class _StepsCoroutine(_Form[P, "Coroutine[Any, Any, T]"]):
    def __init__(self, define: Callable[Concatenate[Any, P], Steps[T]], doc: str) -> None:
        super().__init__(define, doc)
        self._steps = define

    def _bind(self, instance: Caller) -> Callable[P, Coroutine[Any, Any, T]]:
        define = self._steps

        async def awaited(*args: P.args, **kwargs: P.kwargs) -> T:
            steps = define(instance, *args, **kwargs)
            try:
                call = next(steps)
                while True:
                    try:
                        value = call.finish(await settle(call.reply, instance.timeout))
                    except BrokerageError as error:  # for the steps to catch, or not
                        call = steps.throw(error)
                    else:
                        call = steps.send(value)
            except StopIteration as done:
                return cast(T, done.value)

        return awaited


def steps(define: Callable[Concatenate[Any, P], Steps[T]]) -> StepsOperation[P, T]:
    """Make the generator `define` an operation of several calls (see `Steps`)."""
    return StepsOperation(define)


__all__ = ["Call", "Operation", "Steps", "StepsOperation", "operation", "steps"]

"""Awaiting actor replies from asyncio without a thread per wait.

`settle(reply, timeout)` is the asyncio twin of `resolve(reply.get(timeout), timeout)`: the
reply's done-callback moves the result onto the event loop, so a coroutine waits for the
engine while the loop serves others, and no thread is parked on the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pykka

from actors.futures import AfterAll, Gathered, LightFuture


async def _arrival(reply: pykka.Future[Any], timeout: float | None) -> Any:
    """The raw value of one reply (raises its error)."""
    if not isinstance(reply, LightFuture):  # a future of another kind: wait on a thread
        return await asyncio.to_thread(reply.get, timeout=timeout)
    if reply._result is not None:  # in already (a published quote, a kept search)
        return LightFuture.get(reply, timeout=0)
    loop = asyncio.get_running_loop()
    arrived: asyncio.Future[None] = loop.create_future()
    loop_thread = threading.get_ident()

    def wake(_: LightFuture[Any]) -> None:
        if threading.get_ident() == loop_thread:  # set by an actor on this loop ("asyncio")
            _set_done(arrived)
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(_set_done, arrived)

    reply.add_done_callback(wake)
    if timeout is None:
        await arrived
    else:  # a timer of the loop's own: cheaper than `asyncio.wait_for`'s wrapping
        timer = loop.call_later(timeout, _expire, arrived)
        try:
            await arrived
        except TimeoutError:
            raise pykka.Timeout(f"{timeout} seconds") from None
        finally:
            timer.cancel()
    return LightFuture.get(reply, timeout=0)


def _set_done(arrived: asyncio.Future[None]) -> None:
    if not arrived.done():
        arrived.set_result(None)


def _expire(arrived: asyncio.Future[None]) -> None:
    if not arrived.done():
        arrived.set_exception(TimeoutError())


async def settle(reply: pykka.Future[Any], timeout: float | None) -> Any:
    """Await a reply and what it depends on (`AfterAll`, `Gathered`, also where a wait is
    answered with one); return the value."""
    result = await _arrival(reply, timeout)
    if isinstance(result, AfterAll):
        for future in result.waits:
            await settle(future, timeout)
        return result.value
    if isinstance(result, Gathered):
        return [await settle(future, timeout) for future in result.futures]
    return result

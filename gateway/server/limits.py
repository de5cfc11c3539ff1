"""What the server caps, times out and rate-limits, so that no client can stall or exhaust it.

- `Limits`: the defaults, each changeable from `brokerage serve`'s flags.
- `RateLimiter`: a token bucket per client address (sign-ups; failed authentications), in a
  bounded table, answering 429 with `Retry-After` when a bucket is empty.
- `timed_protocol`: uvicorn's httptools protocol with a deadline per request: a socket that has
  not sent a complete request within `request_timeout` seconds of connecting (or of starting
  its next request) is closed, so idle or trickling sockets cannot pile up. The deadlines and
  uvicorn's keep-alive timeout are kept by one sweep per event loop, not a timer each.
- `raise_file_limit`: lift the process's open-file limit to its hard maximum at start, and
  say how many connections that leaves room for.

Never: block, or keep per-client state that a client can grow without bound.
"""

from __future__ import annotations

import asyncio
import collections
import math
import resource
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FILES_KEPT_FOR_THE_PROCESS = 256
"""Open files left over for the process itself (logs, the store, listening sockets)."""
MAX_HEAD_BYTES = 32 * 1024
"""The request line and headers together; past it the answer is 431 and the socket closed
(llhttp itself sets no bound)."""
_TOO_LARGE_BODY = b'{"code":43110000,"message":"the request line and headers exceed 32768 bytes"}'
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_TOO_LARGE_BODY), _TOO_LARGE_BODY)
)


@dataclass(frozen=True)
class Limits:
    """The server's caps and timeouts.

    Attributes:
        max_connections: Open connections (HTTP and WebSocket) at once; past it a new request
            gets 503 and its socket is closed.
        request_timeout: Seconds a socket may take to send one complete request (headers and
            body), counted from when it connects or starts its next request.
        keep_alive: Seconds an idle connection is kept open between two requests.
        signups_per_minute: Sign-ups allowed per client address a minute (bursts up to the
            same number); 0 for no limit.
        auth_failures_per_minute: Failed authentications allowed per client address a minute;
            past it every request with a key from that address is 429 until the bucket refills.
            0 for no limit.
        allow_private_webhooks: Accept push-notification URLs on loopback, link-local and
            private addresses (for tests and local set-ups only).
    """

    max_connections: int = 20_000
    request_timeout: float = 5.0
    keep_alive: int = 75
    signups_per_minute: int = 10
    auth_failures_per_minute: int = 30
    allow_private_webhooks: bool = False


class RateLimitedError(Exception):
    """A client address used up its budget; it may try again in `retry_after` seconds."""

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(f"too many {what} from this address: retry in {retry_after} s")
        self.retry_after = retry_after


class RateLimiter:
    """A token bucket per key (a client address): `per_minute` tokens a minute, bursts up to
    `per_minute`. At most `max_keys` buckets are kept; the least recently used go first, and a
    dropped bucket was at worst a full one's worth of history. Each call is O(1).

    Used from the server's event loop only (it is not thread-safe).
    """

    def __init__(
        self,
        what: str,
        per_minute: int,
        *,
        max_keys: int = 65_536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()

    @property
    def enabled(self) -> bool:
        """False when the limit is 0 (no limit)."""
        return self.rate > 0

    def _level(self, key: str) -> float:
        now = self.clock()
        tokens, then = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - then) * self.rate)

    def check(self, key: str) -> None:
        """Raise RateLimitedError if `key` has no token left (takes none)."""
        if not self.enabled:
            return
        tokens = self._level(key)
        if tokens < 1:
            raise RateLimitedError(self.what, math.ceil((1 - tokens) / self.rate))

    def spend(self, key: str) -> None:
        """Take one token from `key`'s bucket (it may go empty; `check` then refuses)."""
        if not self.enabled:
            return
        tokens = self._level(key) - 1
        self._buckets[key] = (max(tokens, 0.0), self.clock())
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)

    def take(self, key: str) -> None:
        """`check` then `spend`: raise RateLimitedError, or use one token."""
        self.check(key)
        self.spend(key)


SWEEP_SECONDS = 0.5
"""How often a loop's connections are looked at for a request past its deadline, or an idle
keep-alive past its time: each closes at most this late."""


class _Sweep:
    """The deadlines of every connection of one event loop, kept by one timer.

    uvicorn arms a keep-alive timer after each answer and cancels it at the next request, and
    the request deadline would take another per request: at 10,000 users that is about 15,000
    timers made and cancelled a second. Each connection notes instead when its request began
    and when it fell idle (a float each), and one timer looks at all of them every
    `SWEEP_SECONDS`, which costs a few milliseconds a second at 10,000 connections.
    """

    def __init__(self) -> None:
        self.members: set[TimedHttpProtocol] = set()
        self.timer: asyncio.TimerHandle | None = None

    def add(self, protocol: TimedHttpProtocol, loop: asyncio.AbstractEventLoop) -> None:
        self.members.add(protocol)
        if self.timer is None:
            self.timer = loop.call_later(SWEEP_SECONDS, self._sweep)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        self.timer = None
        now = loop.time()
        for protocol in [p for p in self.members if p._overdue(now)]:
            protocol._expired()
        if self.members:
            self.timer = loop.call_later(SWEEP_SECONDS, self._sweep)


_sweeps: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Sweep] = weakref.WeakKeyDictionary()
"""Each event loop's sweep, gone with its loop (a sweep holds no reference to it)."""


class TimedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request to arrive complete, a
    bound on the size of its request line and headers, and both the deadline and uvicorn's
    keep-alive timeout kept by the loop's one sweep (`_Sweep`) instead of a timer each."""

    request_timeout: float = Limits.request_timeout
    _head_bytes = 0
    _begun: float | None = None
    """When the request under way began to arrive (or the connection opened); None once it
    is complete."""
    _idle: float | None = None
    """When the connection fell idle after an answer (uvicorn's keep-alive wait), or None."""
    _sweep: _Sweep | None = None

    def _overdue(self, now: float) -> bool:
        begun, idle = self._begun, self._idle
        return (begun is not None and now - begun > self.request_timeout) or (
            idle is not None and now - idle > self.timeout_keep_alive
        )

    def _expired(self) -> None:
        self._begun = self._idle = None
        if not self.transport.is_closing():
            self.transport.close()

    def _leave(self) -> None:
        self._begun = self._idle = None
        sweep = self._sweep
        if sweep is not None:
            sweep.members.discard(self)
            self._sweep = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._begun = self.loop.time()
        sweep = _sweeps.get(self.loop)
        if sweep is None:
            sweep = _sweeps[self.loop] = _Sweep()
        self._sweep = sweep
        sweep.add(self, self.loop)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._begun is None:
            self._begun = self.loop.time()

    def _count_head(self, size: int) -> bool:
        """Add to the head's size; refuse the request (431, closed) once it is too large."""
        self._head_bytes += size
        if self._head_bytes <= MAX_HEAD_BYTES:
            return True
        if not self.transport.is_closing():
            self.transport.write(_TOO_LARGE)
            self.transport.close()
        return False

    def on_url(self, url: bytes) -> None:
        if self._count_head(len(url)):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._count_head(len(name) + len(value) + 4):
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if not self.transport.is_closing():
            super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._begun = None
        super().on_message_complete()

    def _unset_keepalive_if_required(self) -> None:
        self._idle = None  # uvicorn's: data came in, or an answer went out

    def on_response_complete(self) -> None:
        # uvicorn's (0.54), with the keep-alive wait noted for the sweep instead of a timer
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._idle = None
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._idle = self.loop.time()

    def handle_websocket_upgrade(self) -> None:
        self._leave()  # the WebSocket protocol takes the connection over
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave()
        super().connection_lost(exc)


def timed_protocol(
    request_timeout: float, base: type[TimedHttpProtocol] = TimedHttpProtocol
) -> type[TimedHttpProtocol]:
    """The protocol class uvicorn should use for a `request_timeout` deadline: `base` (or a
    subclass of it) with that deadline."""
    return type(base.__name__, (base,), {"request_timeout": float(request_timeout)})


def raise_file_limit(wanted_connections: int) -> int:
    """Lift the soft open-file limit to the hard one; return how many connections fit under it
    (`wanted_connections`, or fewer if the hard limit is lower)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, wanted_connections + FILES_KEPT_FOR_THE_PROCESS)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return max(1, min(wanted_connections, soft - FILES_KEPT_FOR_THE_PROCESS))

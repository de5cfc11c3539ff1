"""The hot routes, answered without the framework's layers.

Profiled under load, FastAPI's routing, dependency solving, middleware layers and response
handling took about half of the server's one event loop, the engine a tenth. `FastRoutes`
answers the routes that users and trading programs call most (`HOT`) straight from the ASGI
scope: it finds the route in a dict, reads the key headers, checks the key, validates the body
with the route's own pydantic model, awaits the same function the FastAPI route awaits
(`native.placed`, ...) and writes the answer with orjson.

It takes only what it can answer exactly as the FastAPI route would: a request it cannot take
as it stands (another content type, a body its model refuses, a query value in any but its
plain form, a repeated parameter) goes on to the FastAPI app untouched, which answers it as
before. So every refusal keeps its exact text, the OpenAPI document (made from the FastAPI
routes, which stay the reference) does not change, and the schemathesis suite runs against
both paths; tests/server/test_fast.py checks that each hot route answers the same both ways.
Engine and limit refusals use the same `refusal` as the app's handlers; anything else is
logged and answered 500 as `Contain` does. Bodies are bounded as `BodyLimit` bounds them.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl

import orjson
from pydantic import BaseModel
from pydantic import ValidationError as ModelError
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, RequestResponseCycle

from gateway.server import native
from gateway.server.auth import KEY_ID_HEADER, SECRET_HEADER, KeyRecord
from gateway.server.context import ServerState, address_of, key_of, required
from gateway.server.encode import dumps
from gateway.server.errors import (
    MAX_BODY_BYTES,
    error_body,
    log_failure,
    read_body,
    refusal,
    replaying,
)
from gateway.server.limits import TimedHttpProtocol

Model = TypeVar("Model", bound=BaseModel)
T = TypeVar("T")

_KEY_ID = KEY_ID_HEADER.lower().encode("latin-1")
_SECRET = SECRET_HEADER.lower().encode("latin-1")
_JSON = b"application/json"
_JSON_HEADERS = [(b"content-type", _JSON)]


class Unsuited(Exception):  # noqa: N818  # a signal, not an error
    """The request is the framework's to answer (with its exact refusal)."""


class Call:
    """One request to a hot route: its headers, the last segment of its path, its body."""

    __slots__ = ("body", "content_type", "key_id", "param", "scope", "secret", "shared")

    def __init__(self, shared: ServerState, scope: Scope, param: str, body: bytes) -> None:
        self.shared = shared
        self.scope = scope
        self.param = param
        self.body = body
        key_id = secret = content_type = None
        for name, value in scope["headers"]:  # the first of each, as Starlette's `get`
            if name == _KEY_ID:
                if key_id is None:
                    key_id = value.decode("latin-1")
            elif name == _SECRET:
                if secret is None:
                    secret = value.decode("latin-1")
            elif name == b"content-type" and content_type is None:
                content_type = value
        self.key_id: str | None = key_id
        self.secret: str | None = secret
        self.content_type: bytes | None = content_type

    @property
    def address(self) -> str:
        """What rate limits count this request by (see `client_address`)."""
        client = self.scope.get("client")
        return address_of(client[0] if client else None)

    def key(self) -> KeyRecord | None:
        """The key sent (None if none); 401 if wrong, 429 once the address failed too often."""
        return key_of(self.shared, self.address, self.key_id, self.secret)

    def caller(self) -> KeyRecord:
        """The key sent; 401 if missing or wrong (the routes' `Caller`)."""
        return required(self.key())

    def model(self, kind: type[Model]) -> Model:
        """The JSON body as `kind`; Unsuited unless it is JSON that `kind` accepts."""
        if self.content_type != _JSON or not self.body:
            raise Unsuited
        try:
            return kind.model_validate(orjson.loads(self.body))
        except (orjson.JSONDecodeError, ModelError):
            raise Unsuited from None

    def query(self) -> dict[str, str]:
        """The query's parameters; Unsuited if one is repeated (which value counts is the
        framework's to say)."""
        raw = self.scope.get("query_string", b"")
        if not raw:
            return {}
        pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
        found = dict(pairs)
        if len(found) != len(pairs):
            raise Unsuited
        return found


def _number(text: str | None, default: int, low: int, high: int) -> int:
    """A query's whole number in its plain form (digits, no leading zero) within bounds, or
    `default` if absent; Unsuited for anything else."""
    if text is None:
        return default
    if not (0 < len(text) <= 6 and text.isascii() and text.isdigit()) or text[0] == "0":
        raise Unsuited
    number = int(text)
    if not low <= number <= high:
        raise Unsuited
    return number


# -- the hot routes: each answers (status, value or its JSON) -------------------------------------

Handler = Callable[[Call], Awaitable[tuple[int, Any]]]


async def _health(call: Call) -> tuple[int, Any]:
    return 200, native.health_of(call.shared)


async def _sign_up(call: Call) -> tuple[int, Any]:
    body = call.model(native.OpenAccountBody)  # validated before the sign-up is counted
    answer = await native.signed_up(call.shared, call.address, call.key_id, call.secret, body)
    return 201, answer


async def _account(call: Call) -> tuple[int, Any]:
    return 200, await native.account_of(call.shared, call.caller())


async def _deposit(call: Call) -> tuple[int, Any]:
    record = call.caller()
    return 200, await native.deposited(call.shared, record, call.model(native.AmountBody))


async def _withdraw(call: Call) -> tuple[int, Any]:
    record = call.caller()
    return 200, await native.withdrawn(call.shared, record, call.model(native.AmountBody))


async def _portfolio(call: Call) -> tuple[int, Any]:
    return 200, await native.portfolio_of(call.shared, call.caller())


async def _place(call: Call) -> tuple[int, Any]:
    record = call.caller()
    return 201, await native.placed(call.shared, record, call.model(native.OrderBody))


async def _order(call: Call) -> tuple[int, Any]:
    return 200, await native.order_of(call.shared, call.caller(), call.param)


async def _cancel(call: Call) -> tuple[int, Any]:
    return 200, await native.cancelled(call.shared, call.caller(), call.param)


async def _quote(call: Call) -> tuple[int, Any]:
    quote = await native.quote_of(call.shared, call.caller(), call.param)
    return 200, call.shared.encoded.dumps(quote.symbol, quote)  # the same while it stands


async def _search(call: Call) -> tuple[int, Any]:
    call.caller()  # 401 first, as the route's dependency
    query = call.query()
    q = query.get("q")
    if q is None or not 0 < len(q) <= native.SEARCH_QUERY:
        raise Unsuited
    limit = _number(query.get("limit"), 10, 1, native.SEARCH_LIMIT)
    found = await call.shared.broker.asearch_shared(q, limit)  # `native.found`, shared
    return 200, call.shared.encoded.dumps((q, limit), found)


HOT: dict[tuple[str, str], Handler] = {
    ("GET", "/api/health"): _health,
    ("POST", "/api/accounts"): _sign_up,
    ("GET", "/api/account"): _account,
    ("POST", "/api/account/deposit"): _deposit,
    ("POST", "/api/account/withdraw"): _withdraw,
    ("GET", "/api/account/portfolio"): _portfolio,
    ("POST", "/api/orders"): _place,
    ("GET", "/api/search"): _search,
}
"""Routes by method and exact path."""
HOT_PREFIXED: dict[tuple[str, str], Handler] = {
    ("GET", "/api/orders/"): _order,
    ("DELETE", "/api/orders/"): _cancel,
    ("GET", "/api/stocks/"): _quote,
}
"""Routes by method and path up to their one parameter, the path's last segment."""


def hot_route(method: str, path: str) -> tuple[Handler, str] | None:
    """The hot route of a request and its path parameter ("" if none), or None."""
    handler = HOT.get((method, path))
    if handler is not None:
        return handler, ""
    cut = path.rfind("/") + 1
    param = path[cut:]
    if not param:
        return None
    handler = HOT_PREFIXED.get((method, path[:cut]))
    return None if handler is None else (handler, param)


Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]
"""A hot route's answer: status, JSON content, headers (all but Content-Length)."""


class FastRoutes:
    """Answer the hot routes (see the module's docstring); hand every other request, and every
    hot one it cannot take as it stands, to `app`."""

    def __init__(self, app: ASGIApp, shared: ServerState, log: Any) -> None:
        self.app = app
        self.shared = shared
        self.log = log

    async def answer(
        self, scope: Scope, receive: Receive, handler: Handler, param: str
    ) -> tuple[Answer | None, bytes | None]:
        """Read the body and answer a hot request: (its answer, the body read); (None, the
        body read) if the framework must answer it (`Unsuited`); (None, None) if the client
        went away."""
        body = b""
        try:
            read = await read_body(scope, receive, MAX_BODY_BYTES)
            if read is None:
                return None, None
            body = read
            status, value = await handler(Call(self.shared, scope, param, body))
            content = value if type(value) is bytes else dumps(value)  # bytes: JSON already
            return (status, content, _JSON_HEADERS), body
        except Unsuited:
            return None, body
        except Exception as error:
            answer = refusal(error)
            if answer is None:
                log_failure(self.log, scope, error)
                content = orjson.dumps(
                    error_body(500, "internal error: the request was not completed")
                )
                return (500, content, _JSON_HEADERS), body
            headers = [h for h in answer.raw_headers if h[0] != b"content-length"]
            return (answer.status_code, bytes(answer.body), headers), body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = hot_route(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        answer, body = await self.answer(scope, receive, *found)
        if answer is None:
            if body is not None:
                await self.app(scope, replaying(body, receive), send)
            return
        status, content, headers = answer
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", b"%d" % len(content)), *headers],
            }
        )
        await send({"type": "http.response.body", "body": content})


# -- straight from uvicorn's protocol ------------------------------------------------------------


def _declares_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request's headers say a body follows (a length other than 0, or chunks)."""
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


class HotHttpProtocol(TimedHttpProtocol):
    """uvicorn's HTTP protocol (with the request deadline) that answers the hot routes of an
    app with `FastRoutes` itself, past the ASGI layer.

    Profiled at 8,000 users, uvicorn's ASGI `send` (message dicts, a regular expression per
    header name and value, the response's head assembled piece by piece) and the layers
    between it and the route took about a sixth of the event loop. For a hot route this
    protocol runs `FastRoutes.answer` and writes the whole answer in one write, as uvicorn's
    `send` would have written it (status line, uvicorn's default headers, Content-Length,
    Content-Type, `connection: close` when the connection ends). Everything else is uvicorn's
    own: parsing, the request's cycle (keep-alive, pipelining, flow control, disconnects), the
    body (read through the cycle's `receive`), the concurrency limit (a request over it gets
    uvicorn's 503 app, not this path). A request the fast path cannot take goes to the app
    through the same cycle with its body replayed, so it is answered exactly as before.
    """

    _hot_waiting: tuple[RequestResponseCycle, ASGI3Application, FastRoutes, Any] | None = None
    """A hot request without a body, waiting for the parser to reach its end."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        fast: FastRoutes | None = getattr(self.app, "fast", None)
        found = None
        if fast is not None and app is self.app and not cycle.access_log:
            found = hot_route(cycle.scope["method"], cycle.scope["path"])
        if fast is None or found is None:
            super()._start_asgi_task(cycle, app)
            return
        if cycle.more_body and not _declares_body(cycle.scope["headers"]):
            self._hot_waiting = (cycle, app, fast, found)  # started once its end is parsed
            return
        self._begin(cycle, app, fast, found)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        waiting = self._hot_waiting
        if waiting is not None and waiting[0] is self.cycle:
            self._hot_waiting = None
            self._begin(*waiting)

    def _begin(
        self,
        cycle: RequestResponseCycle,
        app: ASGI3Application,
        fast: FastRoutes,
        found: tuple[Handler, str],
    ) -> None:
        """Answer a hot request whose body is in (or on its way, if it has one).

        The answer's first step runs here, not in a task of its own: a published quote or a
        kept search (half of what users ask) is answered in it, with no task and no turn of
        the loop. Only `FastRoutes.answer` runs so; the framework always runs in a task."""
        scope: Any = cycle.scope  # uvicorn's typed dicts, Starlette's mappings: the same
        receive: Any = cycle.receive
        answering = fast.answer(scope, receive, *found)
        try:
            waiting = answering.send(None)
        except StopIteration as done:
            answered: tuple[Answer | None, bytes | None] = done.value
            if answered[0] is not None and not cycle.flow.write_paused:
                try:
                    self._write(cycle, answered[0])
                except Exception as error:
                    _end(cycle, fast, error)
                return
            task = self.loop.create_task(self._guarded(cycle, app, fast, _given(answered)))
        else:
            task = self.loop.create_task(
                self._guarded(cycle, app, fast, _resumed(answering, waiting))
            )
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    async def _guarded(
        self,
        cycle: RequestResponseCycle,
        app: ASGI3Application,
        fast: FastRoutes,
        answering: Awaitable[tuple[Answer | None, bytes | None]],
    ) -> None:
        """`_answer`; should it fail past the route (which answers its own errors), the
        connection ends, as uvicorn ends one whose app failed mid-answer."""
        try:
            await self._answer(cycle, app, answering)
        except Exception as error:
            _end(cycle, fast, error)

    async def _answer(
        self,
        cycle: RequestResponseCycle,
        app: ASGI3Application,
        answering: Awaitable[tuple[Answer | None, bytes | None]],
    ) -> None:
        answer, body = await answering
        if answer is None:
            if body is not None:  # the framework's to answer, with the body read so far
                framework: Any = app
                read = body

                async def replayed(scope: Any, receive: Any, send: Any) -> None:
                    await framework(scope, replaying(read, receive), send)

                await cycle.run_asgi(replayed)
            return
        if cycle.flow.write_paused and not cycle.disconnected:
            await cycle.flow.drain()
        self._write(cycle, answer)

    def _write(self, cycle: RequestResponseCycle, answer: Answer) -> None:
        """Write a hot route's answer in one write, as uvicorn's `send` would have."""
        if cycle.disconnected:
            return
        status, content, headers = answer
        head = [STATUS_LINE[status]]
        for name, value in (*cycle.default_headers, *headers):
            head += (name, b": ", value, b"\r\n")
        if not cycle.keep_alive:
            head.append(b"connection: close\r\n")
        head += (b"content-length: %d\r\n\r\n" % len(content), content)
        cycle.response_started = True
        cycle.waiting_for_100_continue = False
        cycle.transport.write(b"".join(head))
        cycle.response_complete = True
        cycle.message_event.set()
        if not cycle.keep_alive:
            cycle.transport.close()
        cycle.on_response()


def _end(cycle: RequestResponseCycle, fast: FastRoutes, error: Exception) -> None:
    """Log a failure past the route and end the connection, as uvicorn ends one whose app
    failed mid-answer."""
    scope: Any = cycle.scope
    log_failure(fast.log, scope, error)
    cycle.transport.close()


async def _given(value: T) -> T:
    """An awaitable of what is known already."""
    return value


@types.coroutine
def _resumed(coroutine: Coroutine[Any, Any, T], waiting: Any) -> Generator[Any, Any, T]:
    """The rest of a coroutine whose first step ran already and is `waiting` on a future, as
    an awaitable a task can drive: it hands each future on and sends back what comes in."""
    while True:
        try:
            value = yield waiting
        except BaseException as error:  # a cancellation, or what the future raised
            try:
                waiting = coroutine.throw(error)
            except StopIteration as done:
                return cast(T, done.value)
        else:
            try:
                waiting = coroutine.send(value)
            except StopIteration as done:
                return cast(T, done.value)

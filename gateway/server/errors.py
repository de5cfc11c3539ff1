"""Every refusal as `{"code": ..., "message": ...}` with Alpaca's status codes and numbers.

401 no or wrong key, 403 not allowed (insufficient buying power or quantity, an admin action
without the admin key), 404 unknown (or another account's), 409 already exists (or an account
too busy to reset), 413 body too large, 422 invalid input, 429 too many orders in flight or too
many sign-ups or failed authentications from one address (with `Retry-After`), 500 a bug
(logged, see `Contain`), 503 stopped, 504 timed out.
"""

from __future__ import annotations

from typing import Any

import pykka
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actors.log import where
from engine.errors import (
    AccountBusyError,
    BrokerageError,
    BrokerStoppedError,
    DuplicateError,
    InsufficientAvailableCashError,
    JournalFailedError,
    NotFoundError,
)
from engine.money import shown
from gateway.server.limits import RateLimitedError

CODES = {
    400: 40010000,
    401: 40110000,
    403: 40310000,
    404: 40410000,
    405: 40510000,
    409: 40910000,
    413: 41310000,
    415: 41510000,
    422: 42210000,
    429: 42910000,
    500: 50010000,
    503: 50310000,
    504: 50410000,
}

MAX_BODY_BYTES = 64 * 1024


class ApiError(Exception):
    """A refusal with its HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BodyTooLargeError(ApiError):
    """413: a body over `limit` bytes (`size` says how large it was, or was said to be)."""

    def __init__(self, limit: int, size: str) -> None:
        super().__init__(413, f"the body exceeds {limit} bytes, was {size}")


def error_body(status: int, message: str) -> dict[str, Any]:
    """The JSON of a refusal."""
    return {"code": CODES.get(status, status * 100_000), "message": message}


def error_response(status: int, message: str) -> JSONResponse:
    """A refusal as a response."""
    return JSONResponse(error_body(status, message), status_code=status)


def status_of(error: BrokerageError) -> int:
    """The HTTP status of an engine error."""
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, DuplicateError | AccountBusyError):
        return 409
    if isinstance(error, InsufficientAvailableCashError):
        return 403
    if isinstance(error, BrokerStoppedError | JournalFailedError):
        return 503
    return 422  # ValidationError, OrderNotCancellableError and any other misuse


def _describe(errors: list[Any]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        value = error.get("input")
        given = "" if isinstance(value, dict | list) else f", was {shown(value)!r}"
        parts.append(f"{where}: {error.get('msg', 'invalid')}{given}")
    return "; ".join(parts)


def refusal(error: Exception) -> JSONResponse | None:
    """The answer to an error a route raises on purpose (a refusal, the engine's or a limit's),
    or None for any other (a bug: `Contain` answers 500)."""
    if isinstance(error, ApiError):
        return error_response(error.status, error.message)
    if isinstance(error, BrokerageError):
        return error_response(status_of(error), str(error))
    if isinstance(error, RateLimitedError):
        response = error_response(429, str(error))
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    if isinstance(error, pykka.Timeout):
        return error_response(504, f"the engine did not answer in time: {error}")
    return None


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into `{"code", "message"}`."""

    async def _refused(_: Request, error: Exception) -> JSONResponse:
        answer = refusal(error)
        if answer is None:  # not registered for any other type
            raise error
        return answer

    for kind in (ApiError, BrokerageError, RateLimitedError, pykka.Timeout):
        app.add_exception_handler(kind, _refused)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = list(error.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "the body is not valid JSON")
        return error_response(422, _describe(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else "request refused"
        return error_response(error.status_code, message)


class Contain:
    """Turn any exception a request raises into a 500 (if no answer was started) and one
    structured log event: the method, the path, the error's type and where it was raised.

    Nothing of the request's headers, query, body or the error's message or local variables is
    logged, so no key, secret or hostile input reaches the logs, and logging an error costs
    microseconds whatever the input was. The event goes through `log` (filtered by its level).
    """

    def __init__(self, app: ASGIApp, log: Any) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] in ("http.response.start", "websocket.accept"):
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as error:
            log_failure(self.log, scope, error)
            if scope["type"] == "http" and not started:
                response = error_response(500, "internal error: the request was not completed")
                await response(scope, receive, send)


def log_failure(log: Any, scope: Scope, error: Exception) -> None:
    """The one event a request that failed on a bug logs (see `Contain`): nothing of the
    request but its method and path."""
    log.error(
        "request.failed",
        method=scope.get("method", "WEBSOCKET"),
        path=str(scope.get("path", ""))[:200],
        error_type=type(error).__name__,
        where=where(error),
    )


class BodyLimit:
    """Refuse bodies over `limit` bytes with 413: by Content-Length before reading, or as a
    chunked body streams in. The body (at most `limit` bytes) is read here and handed on whole,
    so a route never starts on a body that turns out too large."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(scope, receive, self.limit)
        except BodyTooLargeError as refused:
            await error_response(refused.status, refused.message)(scope, receive, send)
            return
        if body is not None:  # None: the client went away
            await self.app(scope, replaying(body, receive), send)


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """A request's whole body, or None if the client went away before sending it all;
    BodyTooLargeError if it is, or says it is, over `limit` bytes (checked by Content-Length
    before reading, then as a chunked body streams in)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            size = value.decode("latin-1")
            if len(size) > 18 or (size.isdigit() and int(size) > limit):
                raise BodyTooLargeError(limit, f"{shown(size)} bytes")
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise BodyTooLargeError(limit, f"over {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` whole first, then whatever `receive` gives."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay

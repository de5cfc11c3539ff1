"""Every refusal as `{"code": ..., "message": ...}` with Alpaca's status codes and numbers.

401 no or wrong key, 403 not allowed (insufficient buying power or quantity, an admin action
without the admin key), 404 unknown (or another account's), 409 already exists, 413 body too
large, 422 invalid input, 429 too many orders in flight, 503 stopped, 504 timed out.
"""

from __future__ import annotations

from typing import Any

import pykka
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.errors import (
    BrokerageError,
    BrokerStoppedError,
    DuplicateError,
    InsufficientAvailableCashError,
    NotFoundError,
)

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
_log = structlog.get_logger("gateway.server")


class ApiError(Exception):
    """A refusal with its HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
    if isinstance(error, DuplicateError):
        return 409
    if isinstance(error, InsufficientAvailableCashError):
        return 403
    if isinstance(error, BrokerStoppedError):
        return 503
    return 422  # ValidationError, OrderNotCancellableError and any other misuse


def _describe(errors: list[Any]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        value = error.get("input")
        shown = "" if isinstance(value, dict | list) else f", was {value!r}"
        parts.append(f"{where}: {error.get('msg', 'invalid')}{shown}")
    return "; ".join(parts)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into `{"code", "message"}`."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.message)

    @app.exception_handler(BrokerageError)
    async def _engine(_: Request, error: BrokerageError) -> JSONResponse:
        return error_response(status_of(error), str(error))

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

    @app.exception_handler(Exception)
    async def _bug(_: Request, error: Exception) -> JSONResponse:
        _log.error("unhandled_error", error=repr(error), exc_info=error)
        return error_response(500, "internal error: the request was not completed")

    @app.exception_handler(pykka.Timeout)
    async def _timeout(_: Request, error: pykka.Timeout) -> JSONResponse:
        return error_response(504, f"the engine did not answer in time: {error}")


class BodyLimit:
    """Refuse bodies over `limit` bytes with 413, by Content-Length or as they stream in."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(scope, receive, send, int(value))
                    return
        received = 0
        limit = self.limit

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise ApiError(413, f"the body exceeds {limit} bytes, was over {received}")
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        response = error_response(413, f"the body exceeds {self.limit} bytes, was {size}")
        await response(scope, receive, send)

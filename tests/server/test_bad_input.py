"""Bad input gets a 4xx with {"code", "message"} and changes nothing; never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.server.conftest import Served

ORDER = {"symbol": "AAPL", "side": "buy", "quantity": 1}

BAD_ORDERS: list[tuple[str, Any, int, str]] = [
    ("malformed JSON", b'{"symbol": "AAPL", ', 400, "not valid JSON"),
    ("not an object", [ORDER], 422, "valid dictionary"),
    ("wrong type", {**ORDER, "quantity": True}, 422, "quantity"),
    ("negative quantity", {**ORDER, "quantity": -5}, 422, "was -5"),
    ("zero quantity", {**ORDER, "quantity": 0}, 422, "was 0"),
    ("fractional quantity", {**ORDER, "quantity": 1.5}, 422, "1.5"),
    ("fractional quantity string", {**ORDER, "quantity": "1.5"}, 422, "'1.5'"),
    ("unknown field", {**ORDER, "stop_price": "1"}, 422, "stop_price"),
    ("unknown side", {**ORDER, "side": "short"}, 422, "short"),
    ("unknown symbol", {**ORDER, "symbol": "NOPE"}, 404, "NOPE"),
    ("float price", {**ORDER, "type": "limit", "limit_price": 10.5}, 422, "10.5"),
    ("sub-cent price", {**ORDER, "type": "limit", "limit_price": "10.001"}, 422, "10.001"),
    ("negative price", {**ORDER, "type": "limit", "limit_price": "-1"}, 422, "-1"),
    ("NaN price", {**ORDER, "type": "limit", "limit_price": "NaN"}, 422, "NaN"),
    ("limit without price", {**ORDER, "type": "limit"}, 422, "limit_price"),
    ("missing field", {"symbol": "AAPL", "side": "buy"}, 422, "quantity"),
    ("huge quantity", {**ORDER, "quantity": 10**30}, 422, "quantity"),
    ("huge exponent quantity", {**ORDER, "quantity": "1e999999"}, 422, "within 1e20"),
    (
        "huge exponent price",
        {**ORDER, "type": "limit", "limit_price": "1e999999"},
        422,
        "within 1e20",
    ),
    ("underscored quantity", {**ORDER, "quantity": "1_000"}, 422, "ASCII digits"),
    ("Arabic-Indic digits", {**ORDER, "quantity": "\u0661\u0662"}, 422, "ASCII digits"),
    ("full-width digits", {**ORDER, "quantity": "\uff11\uff12"}, 422, "ASCII digits"),
]


def _post(served: Served, path: str, body: Any, headers: dict[str, str]) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return served.client.post(
        path, content=content, headers={**headers, "content-type": "application/json"}
    )


@pytest.mark.parametrize(("case", "body", "status", "mentions"), BAD_ORDERS)
def test_bad_orders_are_refused_and_change_nothing(
    served: Served, case: str, body: Any, status: int, mentions: str
) -> None:
    opened = served.signup(f"bad-{case.replace(' ', '-')}")
    me = opened["headers"]
    before = served.client.get("/api/account", headers=me).json()
    answer = _post(served, "/api/orders", body, me)
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert set(error) == {"code", "message"}
    assert mentions in error["message"]
    assert served.client.get("/api/account", headers=me).json() == before
    assert served.client.get("/api/orders", headers=me).json() == []


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"amount": -1}, "was -1"),
        ({"amount": "1e400"}, "1e400"),
        ({"amount": 0.1}, "0.1"),
        ({"amount": "12.345"}, "12.345"),
        ({"amount": "ten"}, "ten"),
        ({}, "amount"),
        ({"amount": "1", "currency": "EUR"}, "currency"),
    ],
)
def test_bad_amounts_are_refused(served: Served, body: Any, mentions: str) -> None:
    opened = served.signup(f"amount-{len(served.app.state.server.keys)}", deposit="50")
    me = opened["headers"]
    for path in ("/api/account/deposit", "/api/account/withdraw"):
        answer = _post(served, path, body, me)
        assert answer.status_code == 422, answer.text
        assert mentions in answer.json()["message"]
    assert served.client.get("/api/account", headers=me).json()["balance"]["cash"] == "50.00"


def test_huge_bodies_are_413(served: Served) -> None:
    me = served.signup("huge")["headers"]
    padding = "x" * 200_000
    answer = _post(served, "/api/orders", {**ORDER, "symbol": padding}, me)
    assert answer.status_code == 413
    assert answer.json()["code"] == 41310000
    assert served.client.get("/api/orders", headers=me).json() == []


def test_alpaca_orders_refuse_what_the_engine_does_not_model(served: Served) -> None:
    me = served.signup("alpaca-bad")["headers"]
    base = {"symbol": "AAPL", "side": "buy", "qty": "1", "type": "market", "time_in_force": "day"}
    for change in (
        {"qty": None, "notional": "100"},
        {"type": "stop"},
        {"trail_price": "1"},
        {"type": "stop", "stop_price": "10", "take_profit": {"limit_price": "20"}},
        {"extended_hours": True},
        {"order_class": "bracket"},
        {"qty": "-3"},
        {"qty": 2.5},
        {"time_in_force": "opg"},
        {"limit_price": "10"},
        {"colour": "blue"},
    ):
        answer = _post(served, "/v2/orders", {**base, **change}, me)
        assert answer.status_code == 422, (change, answer.text)
        assert set(answer.json()) == {"code", "message"}
    assert served.client.get("/v2/orders?status=all", headers=me).json() == []
    first = _post(served, "/v2/orders", {**base, "client_order_id": "same"}, me)
    assert first.status_code == 200
    duplicate = _post(served, "/v2/orders", {**base, "client_order_id": "same"}, me)
    assert duplicate.status_code == 422
    assert "unique" in duplicate.json()["message"]


def test_alpaca_order_filters_take_times_with_or_without_a_zone(served: Served) -> None:
    me = served.signup("alpaca-times")["headers"]
    for after in ("2020-01-01T00:00:00", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00+02:00"):
        answer = served.client.get(
            "/v2/orders", params={"status": "all", "after": after}, headers=me
        )
        assert answer.status_code == 200, (after, answer.text)
    bad = served.client.get("/v2/orders", params={"after": "yesterday"}, headers=me)
    assert bad.status_code == 422
    assert set(bad.json()) == {"code", "message"}


def test_a_server_error_is_one_json_event_without_secrets_and_a_plain_500() -> None:
    """An exception no handler expected: the client gets a plain 500; the log gets one JSON
    line with the method, path, error type and frames, nothing of the request or the error's
    message, and nothing at all below the configured level."""
    import io

    import httpx
    from fastapi import FastAPI

    from actors.log import make_logger
    from gateway.server import ServerThread
    from gateway.server.errors import Contain

    secret = "s3cr3t-value-in-headers-and-message"

    def app_logging_to(stream: io.StringIO, level: str) -> FastAPI:
        app = FastAPI()

        @app.get("/boom")
        async def boom() -> None:
            raise RuntimeError(f"failed while holding {secret}")

        app.add_middleware(Contain, log=make_logger(level, stream))
        return app

    stream, quiet = io.StringIO(), io.StringIO()
    headers = {"APCA-API-SECRET-KEY": secret}
    with ServerThread(app_logging_to(stream, "warning")) as url:
        answer = httpx.get(f"{url}/boom", params={"token": secret}, headers=headers)
    with ServerThread(app_logging_to(quiet, "critical")) as url:
        httpx.get(f"{url}/boom", headers=headers)

    assert answer.status_code == 500
    assert answer.json()["message"] == "internal error: the request was not completed"
    (line,) = stream.getvalue().splitlines()
    event = json.loads(line)
    assert (event["event"], event["method"], event["path"]) == ("request.failed", "GET", "/boom")
    assert event["error_type"] == "RuntimeError"
    assert any("boom" in frame for frame in event["where"])
    assert secret not in line
    assert quiet.getvalue() == ""

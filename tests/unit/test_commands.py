"""Domain commands are plain values: every one round-trips through JSON exactly, and `decode`
refuses what no command is."""

from __future__ import annotations

import dataclasses
import inspect
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import commands
from engine.alerts import AlertCondition
from engine.commands import COMMANDS, Command, decode, encode
from engine.errors import UnknownAccountError, ValidationError
from engine.orders import LiquidityMode, OrderType, Side, TimeInForce


def _all_commands() -> list[type]:
    return [
        value
        for value in vars(commands).values()
        if inspect.isclass(value)
        and value.__module__ == commands.__name__
        and dataclasses.is_dataclass(value)
    ]


def test_every_command_class_is_registered_frozen_and_holds_no_reply() -> None:
    found = _all_commands()
    assert {kind.__name__ for kind in found} == set(COMMANDS)
    assert len(COMMANDS) >= 17
    for kind in found:
        params = kind.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen, kind
        names = {item.name for item in dataclasses.fields(kind)}
        assert not names & {"reply", "done", "ref", "account_ref", "symbol_ref"}, kind


@given(st.one_of(*(st.from_type(kind) for kind in COMMANDS.values())))
def test_every_command_round_trips_through_json_exactly(command: Command) -> None:
    text = json.dumps(encode(command))
    back = decode(json.loads(text))
    assert back == command
    assert type(back) is type(command)
    assert json.dumps(encode(back)) == text


def test_commands_from_callers_values_round_trip_too() -> None:
    made: list[Command] = [
        commands.OpenAccount.parse("U1", "Ann", "ann@example.com", None, "10.50", None, True),
        commands.ListStock.parse("brk.b", "Berkshire", "400.01", "book"),
        commands.Deposit.parse("A-000001", "0.01"),
        commands.Withdraw.parse("A-000001", 5),
        commands.GrantShares.parse("A-000001", "AAPL", 10, "150"),
        commands.ResetAccount.parse("A-000001", "100000"),
        commands.UpdatePrice.parse("aapl", "151.25"),
        commands.PlaceOrder.parse("A-1", "AAPL", "BUY", 3, "limit", "99.99", "day", "mine-1"),
        commands.PlaceOrder.parse("A-1", "AAPL", "sell", 3),
        commands.PlaceOrder.parse(
            "A-1",
            "AAPL",
            "sell",
            3,
            "trailing_stop",
            trail_percent="1.5",
            self_trade_prevention="Allow",
        ),
        commands.PlaceOrder.parse("A-1", "AAPL", "buy", 3, "stop_limit", "10", stop_price="9.5"),
        commands.PlaceOrder.parse(
            "A-1",
            "AAPL",
            "buy",
            3,
            "limit",
            "10",
            order_class="bracket",
            take_profit={"limit_price": "12"},
            stop_loss={"stop_price": "9", "limit_price": "8.5"},
        ),
        commands.SetSelfTradePrevention.parse("A-1", "cancel_both"),
        commands.ReplaceOrder.parse("O-000001", 5, "10.50", time_in_force="day"),
        commands.CancelOrder.parse("O-000001"),
        commands.ExpireDayOrders(),
        commands.CreateWatchlist.parse("A-1", " Tech ", ["aapl", "MSFT"]),
        commands.RenameWatchlist.parse("A-1", "Tech", "Big tech"),
        commands.ReplaceWatchlist.parse("A-1", "Tech", ["NVDA"], None),
        commands.ReplaceWatchlist.parse("A-1", "Tech", None, "New"),
        commands.DeleteWatchlist.parse("A-1", "Tech"),
        commands.AddToWatchlist.parse("A-1", "Tech", "amd"),
        commands.RemoveFromWatchlist.parse("A-1", "Tech", "AMD"),
        commands.AddAlert.parse("A-1", "AAPL", "Above", "200", False),
        commands.CancelAlert.parse("AL-000001"),
    ]
    assert {type(command).__name__ for command in made} == set(COMMANDS)
    for command in made:
        assert decode(json.loads(json.dumps(encode(command)))) == command


def test_a_parsed_command_holds_parsed_values() -> None:
    order = commands.PlaceOrder.parse(
        "A-1", " aapl ", "BUY", "3", "LIMIT", "99.99", "Day", "mine-1"
    )
    assert order == commands.PlaceOrder(
        "A-1",  # type: ignore[arg-type]
        "AAPL",  # type: ignore[arg-type]
        Side.BUY,
        3,
        OrderType.LIMIT,
        9999,
        TimeInForce.DAY,
        "mine-1",
    )
    assert encode(order) == {
        "type": "PlaceOrder",
        "account_id": "A-1",
        "symbol": "AAPL",
        "side": "buy",
        "quantity": 3,
        "order_type": "limit",
        "limit_price": 9999,
        "time_in_force": "day",
        "client_order_id": "mine-1",
        "stop_price": None,
        "trail_price": None,
        "trail_bps": None,
        "self_trade": None,
    }
    listing = commands.ListStock.parse("x", "X Corp", "1", "BOOK")
    assert (listing.mode, listing.price) == (LiquidityMode.BOOK, 100)
    alert = commands.AddAlert.parse("A-1", "x", "BELOW", "0.5")
    assert (alert.condition, alert.threshold, alert.one_shot) == (AlertCondition.BELOW, 50, True)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (
            lambda: commands.PlaceOrder.parse("A", "AAPL", "buy", 1, client_order_id=""),
            "client_order_id",
        ),
        (
            lambda: commands.PlaceOrder.parse("A", "AAPL", "buy", 1, client_order_id="x" * 129),
            "client_order_id",
        ),
        (
            lambda: commands.PlaceOrder.parse("A", "AAPL", "buy", 1, client_order_id="a\nb"),
            "client_order_id",
        ),
        (lambda: commands.OpenAccount.parse("U 1", "Ann"), "user_id"),
        (lambda: commands.OpenAccount.parse("U1", "Ann", "no-at-sign"), "email"),
        (lambda: commands.OpenAccount.parse("U1", "Ann", new_user="yes"), "new_user"),
        (lambda: commands.ListStock.parse("1BAD", "Bad", "1"), "symbol"),
        (lambda: commands.ListStock.parse("OK", "  ", "1"), "name"),
        (lambda: commands.CreateWatchlist.parse("A", "L", "AAPL"), "symbols"),
        (lambda: commands.CreateWatchlist.parse("A", "L", iter(["A"] * 1001)), "symbols"),
        (lambda: commands.AddAlert.parse("A", "AAPL", "above", "1", one_shot=1), "one_shot"),
    ],
)
def test_parse_refuses_a_bad_value_naming_the_field(call: Any, field: str) -> None:
    with pytest.raises(ValidationError) as error:
        call()
    assert error.value.field == field


def test_a_reference_that_is_no_text_names_nothing() -> None:
    with pytest.raises(UnknownAccountError):
        commands.Deposit.parse(12, "1")


@pytest.mark.parametrize(
    "plain",
    [
        [],
        {"type": "Nope"},
        {"type": ["Deposit"]},
        {"type": "Deposit", "account_id": "A"},
        {"type": "Deposit", "account_id": "A", "amount": 1, "extra": 1},
        {"type": "Deposit", "account_id": "A", "amount": "1"},
        {"type": "Deposit", "account_id": "A", "amount": True},
        {"type": "CancelOrder", "order_id": None},
        {
            "type": "AddAlert",
            "account_id": "A",
            "symbol": "X",
            "condition": "sideways",
            "threshold": 1,
            "one_shot": True,
        },
        {"type": "CreateWatchlist", "account_id": "A", "name": "L", "symbols": "AAPL"},
    ],
)
def test_decode_refuses_what_no_command_is(plain: Any) -> None:
    with pytest.raises(ValidationError):
        decode(plain)

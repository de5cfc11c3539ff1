"""The Alpaca-compatible surface, driven by the real, unmodified alpaca-py client."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Order, Position, TradeUpdate
from alpaca.trading.requests import (
    CreateWatchlistRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    UpdateWatchlistRequest,
)
from alpaca.trading.stream import TradingStream

from tests.server.conftest import ADMIN, Served, serving


def _client(served: Served, user: str, deposit: str = "10000") -> tuple[TradingClient, Any]:
    opened = served.signup(user, deposit)
    client = TradingClient(opened["api_key_id"], opened["api_secret_key"], url_override=served.url)
    return client, opened


def test_orders_account_and_positions(served: Served) -> None:
    client, opened = _client(served, "alpaca-1")
    account = client.get_account()
    assert account.cash == "10000.00"
    assert account.buying_power == "10000.00"
    assert account.account_number == opened["account_id"]

    bought = client.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert isinstance(bought, Order)
    assert bought.status == OrderStatus.FILLED
    assert bought.filled_qty == "10"
    assert bought.filled_avg_price == "150.00"

    resting = client.submit_order(
        LimitOrderRequest(
            symbol="AAPL",
            qty=5,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            limit_price=140.10,
            client_order_id="my-limit-1",
        )
    )
    assert resting.status == OrderStatus.NEW
    assert resting.limit_price == "140.10"
    assert client.get_order_by_id(resting.id).id == resting.id
    assert client.get_order_by_client_id("my-limit-1").id == resting.id

    open_orders = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
    assert [o.id for o in open_orders] == [resting.id]
    every = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["AAPL"]))
    assert {o.id for o in every} == {bought.id, resting.id}

    account = client.get_account()
    assert Decimal(str(account.cash)) == Decimal("8500.00")
    assert Decimal(str(account.buying_power)) == Decimal("8500.00") - Decimal("700.50")

    client.cancel_order_by_id(resting.id)
    assert client.get_order_by_id(resting.id).status == OrderStatus.CANCELED
    assert client.get_account().buying_power == "8500.00"

    [position] = client.get_all_positions()
    assert position.symbol == "AAPL"
    assert position.qty == "10"
    assert position.avg_entry_price == "150.00"
    assert position.market_value == "1500.00"
    # the day's reference: AAPL was listed today at 150.00 (no previous close yet)
    assert position.lastday_price == "150.00"
    assert Decimal(str(position.change_today)) == 0
    one = client.get_open_position("AAPL")
    assert (one.qty, one.lastday_price) == ("10", "150.00")

    closing = client.close_position("AAPL")
    assert isinstance(closing, Order)
    assert closing.side == OrderSide.SELL
    assert closing.status == OrderStatus.FILLED
    assert client.get_all_positions() == []
    assert client.get_account().cash == "10000.00"


def test_order_listings_filter_sort_and_limit_in_the_account(served: Served) -> None:
    from datetime import timedelta

    from alpaca.common.enums import Sort

    client, _ = _client(served, "alpaca-list", deposit="100000")
    placed = [
        client.submit_order(
            LimitOrderRequest(
                symbol=symbol,
                qty=1,
                side=OrderSide.BUY,
                time_in_force=TimeInForce.GTC,
                limit_price=1,
            )
        )
        for symbol in ("AAPL", "BOOK", "AAPL")
    ]
    with pytest.raises(APIError):  # refused: no shares, so no order
        client.submit_order(
            MarketOrderRequest(
                symbol="AAPL", qty=1, side=OrderSide.SELL, time_in_force=TimeInForce.GTC
            )
        )
    ids = [o.id for o in placed]
    every = GetOrdersRequest(status=QueryOrderStatus.ALL)

    newest = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, limit=2))
    oldest = client.get_orders(
        GetOrdersRequest(status=QueryOrderStatus.ALL, direction=Sort.ASC, limit=2)
    )
    both = client.get_orders(
        GetOrdersRequest(status=QueryOrderStatus.OPEN, symbols=["BOOK", "AAPL"], limit=3)
    )
    sells = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, side=OrderSide.SELL))
    later = client.get_orders(
        GetOrdersRequest(
            status=QueryOrderStatus.ALL, after=placed[0].created_at - timedelta(seconds=1)
        )
    )

    assert [o.id for o in newest] == ids[:0:-1]
    assert [o.id for o in oldest] == ids[:2]
    assert [o.id for o in both] == ids[::-1]
    assert sells == []
    assert {o.id for o in later} == set(ids)
    assert {o.id for o in client.get_orders(every)} == set(ids)


def test_refusals_have_alpaca_statuses(served: Served) -> None:
    client, _ = _client(served, "alpaca-2", deposit="100")
    with pytest.raises(APIError) as refused:
        client.submit_order(
            MarketOrderRequest(
                symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC
            )
        )
    assert refused.value.status_code == 403
    assert refused.value.message == "insufficient buying power"
    with pytest.raises(APIError) as no_shares:
        client.submit_order(
            MarketOrderRequest(
                symbol="AAPL", qty=1, side=OrderSide.SELL, time_in_force=TimeInForce.GTC
            )
        )
    assert no_shares.value.status_code == 403
    with pytest.raises(APIError) as unknown:
        client.get_order_by_id("0e7de700-0000-4000-8000-0000ffffffff")
    assert unknown.value.status_code == 404
    with pytest.raises(APIError) as fractional:
        client.submit_order(
            MarketOrderRequest(
                symbol="AAPL", qty=1.5, side=OrderSide.BUY, time_in_force=TimeInForce.GTC
            )
        )
    assert fractional.value.status_code == 422
    # as on Alpaca, an order refused with 403 is no order: nothing to list
    assert client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL)) == []
    with pytest.raises(APIError) as no_position:
        client.get_open_position("AAPL")
    assert no_position.value.status_code == 404
    assert client.get_account().cash == "100.00"


def test_watchlists(served: Served) -> None:
    client, _ = _client(served, "alpaca-3")
    made = client.create_watchlist(CreateWatchlistRequest(name="tech", symbols=["AAPL"]))
    assert made.name == "tech"
    assert [a.symbol for a in made.assets or []] == ["AAPL"]
    assert [w.name for w in client.get_watchlists()] == ["tech"]
    added = client.add_asset_to_watchlist_by_id(made.id, "BOOK")
    assert [a.symbol for a in added.assets or []] == ["AAPL", "BOOK"]
    removed = client.remove_asset_from_watchlist_by_id(made.id, "AAPL")
    assert [a.symbol for a in removed.assets or []] == ["BOOK"]
    renamed = client.update_watchlist_by_id(
        made.id, UpdateWatchlistRequest(name="favourites", symbols=["AAPL", "BOOK"])
    )
    assert renamed.name == "favourites"
    assert [a.symbol for a in client.get_watchlist_by_id(made.id).assets or []] == ["AAPL", "BOOK"]
    other = client.create_watchlist(CreateWatchlistRequest(name="other", symbols=["AAPL"]))
    for refused, status in (
        (UpdateWatchlistRequest(name="favourites", symbols=["BOOK"]), 409),  # name taken
        (UpdateWatchlistRequest(symbols=["BOOK", "NOPE"]), 404),  # an unknown symbol
    ):
        with pytest.raises(APIError) as conflict:
            client.update_watchlist_by_id(other.id, refused)
        assert conflict.value.status_code == status
        unchanged = client.get_watchlist_by_id(other.id)  # a refusal changed nothing
        assert (unchanged.name, [a.symbol for a in unchanged.assets or []]) == ("other", ["AAPL"])
    client.delete_watchlist_by_id(other.id)
    client.delete_watchlist_by_id(made.id)
    assert client.get_watchlists() == []
    with pytest.raises(APIError) as gone:
        client.get_watchlist_by_id(made.id)
    assert gone.value.status_code == 404


def test_assets_and_clock(served: Served) -> None:
    client, _ = _client(served, "alpaca-4")
    symbols = {a.symbol for a in client.get_all_assets()}
    assert symbols == {"AAPL", "BOOK"}
    apple = client.get_asset("AAPL")
    assert apple.name == "Apple Inc."
    assert apple.tradable
    assert client.get_asset(apple.id).symbol == "AAPL"
    clock = client.get_clock()
    assert clock.is_open


def test_another_accounts_objects_are_not_found(served: Served) -> None:
    alice, _ = _client(served, "alpaca-5")
    mallory, _ = _client(served, "alpaca-6")
    order = alice.submit_order(
        LimitOrderRequest(
            symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=100
        )
    )
    watchlist = alice.create_watchlist(CreateWatchlistRequest(name="mine", symbols=["AAPL"]))
    for attempt in (
        lambda: mallory.get_order_by_id(order.id),
        lambda: mallory.cancel_order_by_id(order.id),
        lambda: mallory.get_order_by_client_id(order.client_order_id),
        lambda: mallory.get_watchlist_by_id(watchlist.id),
        lambda: mallory.delete_watchlist_by_id(watchlist.id),
    ):
        with pytest.raises(APIError) as hidden:
            attempt()
        assert hidden.value.status_code == 404
    assert alice.get_order_by_id(order.id).status == OrderStatus.NEW
    assert mallory.cancel_orders() == []
    assert [c.id for c in alice.cancel_orders()] == [order.id]


def test_wrong_keys_are_401(served: Served) -> None:
    intruder = TradingClient("PKNOPE", "nope", url_override=served.url)
    with pytest.raises(APIError) as refused:
        intruder.get_account()
    assert refused.value.status_code == 401
    opened = served.signup("alpaca-7")
    wrong_secret = TradingClient(opened["api_key_id"], "guess", url_override=served.url)
    with pytest.raises(APIError) as refused:
        wrong_secret.get_account()
    assert refused.value.status_code == 401


def test_trading_stream_receives_new_fill_partial_fill_and_canceled(served: Served) -> None:
    buyer, opened = _client(served, "alpaca-stream")
    seller, seller_opened = _client(served, "alpaca-seller")
    served.broker.grant_shares(seller_opened["account_id"], "BOOK", 10, "90")
    updates: list[TradeUpdate] = []
    got = threading.Event()

    async def on_update(update: TradeUpdate) -> None:
        updates.append(update)
        if update.event == "canceled":
            got.set()

    stream, runner = _listen(served, opened, on_update)

    order = buyer.submit_order(
        LimitOrderRequest(
            symbol="BOOK",
            qty=10,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            limit_price=100,
        )
    )
    seller.submit_order(
        LimitOrderRequest(
            symbol="BOOK",
            qty=4,
            side=OrderSide.SELL,
            time_in_force=TimeInForce.GTC,
            limit_price=100,
        )
    )
    buyer.cancel_order_by_id(order.id)
    assert got.wait(10), [u.event for u in updates]
    _stop(stream, runner)

    mine = [u for u in updates if u.order.id == order.id]
    assert [u.event for u in mine] == ["new", "partial_fill", "canceled"]
    partial = mine[1]
    assert partial.price == 100
    assert partial.qty == 4
    assert partial.order.filled_qty == "4"
    assert all(u.order.client_order_id == order.client_order_id for u in mine[1:])


def _listen(
    served: Served, opened: dict[str, Any], on_update: Any
) -> tuple[TradingStream, threading.Thread]:
    """alpaca-py's `TradingStream` for the account `opened`, running on a thread of its own
    and subscribed to its trade updates by the time this returns."""
    stream = TradingStream(
        opened["api_key_id"],
        opened["api_secret_key"],
        url_override=served.url.replace("http", "ws") + "/stream",
    )
    stream.subscribe_trade_updates(on_update)
    runner = threading.Thread(target=stream.run, daemon=True)
    runner.start()
    _wait_listening(served, opened["account_id"])
    return stream, runner


def _stop(stream: TradingStream, runner: threading.Thread) -> None:
    """Stop a stream `_listen` started. Its thread sees the stop at its next message or within
    5 s (alpaca-py waits that long for one): what it got is in already, so no one waits for it
    (a daemon thread)."""
    stream.stop()
    runner.join(0.1)


def _wait_listening(served: Served, account_id: str) -> None:
    """Wait until the stream's socket is subscribed to the account's trade updates."""
    deadline = time.monotonic() + 10
    while not served.app.state.hub.accounts.get(account_id):
        if time.monotonic() > deadline:
            raise AssertionError("the trading stream did not start listening")
        time.sleep(0.02)


def test_a_refused_order_leaves_its_client_order_id_free(served: Served) -> None:
    client, _ = _client(served, "alpaca-retry", deposit="100")
    request = MarketOrderRequest(
        symbol="AAPL",
        qty=1,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.GTC,
        client_order_id="retry-me",
    )
    with pytest.raises(APIError) as refused:
        client.submit_order(request)
    assert refused.value.status_code == 403
    with pytest.raises(APIError) as unknown:
        client.get_order_by_client_id("retry-me")
    assert unknown.value.status_code == 404
    served.client.post(
        "/api/account/deposit",
        json={"amount": "1000"},
        headers={
            "APCA-API-KEY-ID": client._api_key or "",
            "APCA-API-SECRET-KEY": client._secret_key or "",
        },
    ).raise_for_status()
    placed = client.submit_order(request)
    assert placed.client_order_id == "retry-me"
    assert placed.status == OrderStatus.FILLED


def test_one_client_order_id_wins_among_concurrent_submissions(served: Served) -> None:
    """16 threads submit the same client_order_id at once: exactly one order is placed, the
    others are 422, and the account pays for one."""
    from concurrent.futures import ThreadPoolExecutor

    client, _ = _client(served, "alpaca-race")
    request = MarketOrderRequest(
        symbol="AAPL",
        qty=1,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.GTC,
        client_order_id="only-once",
    )

    def submit(_: int) -> int:
        try:
            client.submit_order(request)
        except APIError as refused:
            return int(refused.status_code or 0)
        return 200

    with ThreadPoolExecutor(16) as pool:
        statuses = sorted(pool.map(submit, range(16)))
    assert statuses == [200] + [422] * 15
    assert len(client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))) == 1
    assert Decimal(str(client.get_account().cash)) == Decimal("10000.00") - Decimal(
        client.get_order_by_client_id("only-once").filled_avg_price or "0"
    )


def test_stop_stop_limit_and_trailing_stop_orders_trigger_and_stream(served: Served) -> None:
    """A sell stop waits ("new") and fills once a trade reaches it, the stream saying "new"
    then "fill"; a stop limit and a trailing stop wait with their terms as Alpaca shows them;
    bad stop terms are 422 and leave no order."""
    from alpaca.trading.requests import (
        StopLimitOrderRequest,
        StopOrderRequest,
        TrailingStopOrderRequest,
    )

    served.broker.list_stock("STOPS", "Stops Co", "100.00", mode="book")
    stopper, opened = _client(served, "alpaca-stopper")
    bidder, _ = _client(served, "alpaca-bidder")
    seller, seller_opened = _client(served, "alpaca-stop-seller")
    served.broker.grant_shares(opened["account_id"], "STOPS", 20, "90")
    served.broker.grant_shares(seller_opened["account_id"], "STOPS", 5, "90")
    updates: list[TradeUpdate] = []
    filled = threading.Event()

    async def on_update(update: TradeUpdate) -> None:
        updates.append(update)
        if update.event == "fill":
            filled.set()

    stream, runner = _listen(served, opened, on_update)

    stop = stopper.submit_order(
        StopOrderRequest(
            symbol="STOPS", qty=5, side=OrderSide.SELL, time_in_force=TimeInForce.GTC, stop_price=99
        )
    )
    assert (stop.status, stop.type, stop.stop_price) == (OrderStatus.NEW, "stop", "99.00")
    stop_limit = stopper.submit_order(
        StopLimitOrderRequest(
            symbol="STOPS",
            qty=5,
            side=OrderSide.SELL,
            time_in_force=TimeInForce.DAY,
            stop_price=90,
            limit_price=89.5,
        )
    )
    assert (stop_limit.stop_price, stop_limit.limit_price) == ("90.00", "89.50")
    trailing = stopper.submit_order(
        TrailingStopOrderRequest(
            symbol="STOPS", qty=5, side=OrderSide.SELL, time_in_force=TimeInForce.GTC, trail_price=8
        )
    )
    assert (trailing.trail_price, trailing.hwm, trailing.stop_price) == ("8.00", "100.00", "92.00")
    for bad in (
        {"type": "stop"},  # no stop_price
        {"type": "trailing_stop", "trail_price": "1", "trail_percent": "1"},
        {"type": "stop", "stop_price": "99", "time_in_force": "ioc"},
    ):
        body = {"symbol": "STOPS", "qty": "1", "side": "sell", "time_in_force": "gtc", **bad}
        answer = served.client.post("/v2/orders", json=body, headers=opened["headers"])
        assert answer.status_code == 422, answer.text
    assert len(stopper.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))) == 3

    for price in (99, 98):
        bidder.submit_order(
            LimitOrderRequest(
                symbol="STOPS",
                qty=5,
                side=OrderSide.BUY,
                time_in_force=TimeInForce.GTC,
                limit_price=price,
            )
        )
    seller.submit_order(  # trades at 99.00: the stop triggers and sells at 98.00
        MarketOrderRequest(
            symbol="STOPS", qty=5, side=OrderSide.SELL, time_in_force=TimeInForce.GTC
        )
    )

    done = stopper.get_order_by_id(stop.id)
    assert (done.status, done.filled_avg_price) == (OrderStatus.FILLED, "98.00")
    assert stopper.get_order_by_id(trailing.id).status == OrderStatus.NEW
    assert filled.wait(10), [u.event for u in updates]
    _stop(stream, runner)
    mine = [u.event for u in updates if u.order.id == stop.id]
    assert mine == ["new", "fill"]
    stopper.cancel_orders()


def test_close_all_positions_sells_what_is_free_or_everything_after_cancelling(
    served: Served,
) -> None:
    client, opened = _client(served, "alpaca-close-all", deposit="100000")
    served.broker.list_stock("CLSA", "Close A", "10.00")
    served.broker.list_stock("CLSB", "Close B", "20.00")
    account = opened["account_id"]
    served.broker.grant_shares(account, "CLSA", 10, "9")
    served.broker.grant_shares(account, "CLSB", 5, "19")
    held = client.submit_order(
        LimitOrderRequest(
            symbol="CLSB", qty=5, side=OrderSide.SELL, time_in_force=TimeInForce.GTC, limit_price=99
        )
    )

    first = {r.symbol: r for r in client.close_all_positions()}

    assert first["CLSA"].status == 200
    assert isinstance(first["CLSA"].body, Order)
    assert first["CLSA"].body.status == OrderStatus.FILLED
    assert first["CLSB"].status == 403  # every share held by the resting sell
    assert client.get_order_by_id(held.id).status == OrderStatus.NEW

    second = client.close_all_positions(cancel_orders=True)

    assert [(r.symbol, r.status) for r in second] == [("CLSB", 200)]
    assert client.get_order_by_id(held.id).status == OrderStatus.CANCELED
    assert client.get_all_positions() == []
    assert client.close_all_positions() == []


def test_replace_order_by_id_moves_an_order_and_the_stream_says_replaced(served: Served) -> None:
    from alpaca.trading.requests import ReplaceOrderRequest

    client, opened = _client(served, "alpaca-replace", deposit="10000")
    updates: list[TradeUpdate] = []
    seen = threading.Event()

    async def on_update(update: TradeUpdate) -> None:
        updates.append(update)
        if update.event == "replaced":
            seen.set()

    stream, runner = _listen(served, opened, on_update)
    order = client.submit_order(
        LimitOrderRequest(
            symbol="AAPL",
            qty=10,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            limit_price=120,
        )
    )

    new = client.replace_order_by_id(order.id, ReplaceOrderRequest(qty=6, limit_price=121.5))

    assert (new.qty, new.limit_price, new.replaces) == ("6", "121.50", order.id)
    old = client.get_order_by_id(order.id)
    assert (old.status, old.replaced_by) == (OrderStatus.REPLACED, new.id)
    assert old.replaced_at is not None
    assert Decimal(str(client.get_account().buying_power)) == Decimal("10000.00") - Decimal(
        "729.00"
    )
    with pytest.raises(APIError) as refused:
        client.replace_order_by_id(new.id, ReplaceOrderRequest(qty=1000))
    assert refused.value.status_code == 403
    with pytest.raises(APIError) as finished:
        client.replace_order_by_id(order.id, ReplaceOrderRequest(qty=2))
    assert finished.value.status_code == 422
    assert seen.wait(10), [u.event for u in updates]
    _stop(stream, runner)
    assert [u.event for u in updates if u.order.id == order.id] == ["new", "replaced"]
    assert [u.event for u in updates if u.order.id == new.id] == ["new"]
    client.cancel_order_by_id(new.id)


def test_bracket_oto_and_oco_orders_nest_their_legs_and_stream(served: Served) -> None:
    """A bracket entry fills and its legs work ("held" until then), the listing nests them with
    `nested=true` and lists them beside it without; the legs' prices are replaced; the
    take-profit filling cancels the stop-loss, the stream saying so; an OCO pair on held
    shares; bad terms are 422."""
    from alpaca.trading.enums import OrderClass
    from alpaca.trading.requests import (
        GetOrderByIdRequest,
        ReplaceOrderRequest,
        StopLossRequest,
        TakeProfitRequest,
    )

    served.broker.list_stock("BRKT", "Bracket Co", "100.00", mode="book")
    trader, opened = _client(served, "alpaca-bracket")
    maker, maker_opened = _client(served, "alpaca-bracket-maker")
    served.broker.grant_shares(maker_opened["account_id"], "BRKT", 50, "90")
    updates: list[TradeUpdate] = []
    cancelled = threading.Event()

    async def on_update(update: TradeUpdate) -> None:
        updates.append(update)
        if update.event == "canceled":
            cancelled.set()

    stream, runner = _listen(served, opened, on_update)
    entry = trader.submit_order(
        LimitOrderRequest(
            symbol="BRKT",
            qty=5,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            limit_price=100,
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=110),
            stop_loss=StopLossRequest(stop_price=95, limit_price=94.5),
        )
    )
    assert (entry.status, entry.order_class) == (OrderStatus.NEW, OrderClass.BRACKET)
    held = trader.get_order_by_id(entry.id, GetOrderByIdRequest(nested=True))
    assert held.legs is not None
    assert [leg.status for leg in held.legs] == [OrderStatus.HELD, OrderStatus.HELD]
    assert [leg.type for leg in held.legs] == ["limit", "stop_limit"]

    maker.submit_order(
        LimitOrderRequest(
            symbol="BRKT",
            qty=5,
            side=OrderSide.SELL,
            time_in_force=TimeInForce.GTC,
            limit_price=100,
        )
    )
    [nested] = trader.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, nested=True))
    assert nested.id == entry.id
    assert nested.status == OrderStatus.FILLED
    assert nested.legs is not None
    profit, loss = nested.legs
    assert (profit.status, profit.limit_price, profit.side) == (OrderStatus.NEW, "110.00", "sell")
    assert (loss.status, loss.stop_price, loss.limit_price) == (OrderStatus.NEW, "95.00", "94.50")
    flat = trader.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
    assert {o.id for o in flat} == {profit.id, loss.id}

    # the legs' prices move: each new leg takes its old one's place under the entry
    old_profit, old_loss = profit, loss
    loss = trader.replace_order_by_id(loss.id, ReplaceOrderRequest(stop_price=96, limit_price=95.5))
    profit = trader.replace_order_by_id(profit.id, ReplaceOrderRequest(limit_price=111))
    assert (loss.stop_price, loss.limit_price, loss.replaces) == ("96.00", "95.50", old_loss.id)
    assert (profit.limit_price, profit.qty) == ("111.00", "5")
    moved = trader.get_order_by_id(entry.id, GetOrderByIdRequest(nested=True))
    assert moved.legs is not None
    assert [leg.id for leg in moved.legs] == [profit.id, loss.id]
    with pytest.raises(APIError) as refused:  # a leg's quantity follows its entry's fills
        trader.replace_order_by_id(profit.id, ReplaceOrderRequest(qty=4))
    assert refused.value.status_code == 422

    maker.submit_order(
        LimitOrderRequest(
            symbol="BRKT", qty=5, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=111
        )
    )
    assert trader.get_order_by_id(profit.id).status == OrderStatus.FILLED
    assert trader.get_order_by_id(loss.id).status == OrderStatus.CANCELED
    assert cancelled.wait(10), [u.event for u in updates]
    _stop(stream, runner)
    assert [u.event for u in updates if u.order.id == old_loss.id] == ["new", "replaced"]
    assert [u.event for u in updates if u.order.id == old_profit.id] == ["new", "replaced"]
    assert [u.event for u in updates if u.order.id == loss.id] == ["new", "canceled"]
    assert [u.event for u in updates if u.order.id == profit.id] == ["new", "fill"]

    served.broker.grant_shares(opened["account_id"], "BRKT", 8, "90")
    oco = trader.submit_order(
        LimitOrderRequest(
            symbol="BRKT",
            qty=8,
            side=OrderSide.SELL,
            time_in_force=TimeInForce.GTC,
            order_class=OrderClass.OCO,
            take_profit=TakeProfitRequest(limit_price=120),
            stop_loss=StopLossRequest(stop_price=90),
        )
    )
    assert (oco.order_class, oco.limit_price, oco.status) == (OrderClass.OCO, "120.00", "new")
    position = trader.get_open_position("BRKT")
    assert position.qty_available == "0"  # held once for both legs
    statuses = trader.cancel_orders()
    assert [s.status for s in statuses] == [200]  # the pair goes with one cancel
    assert trader.get_open_position("BRKT").qty_available == "8"

    body = {"symbol": "BRKT", "qty": "1", "side": "buy", "type": "market", "time_in_force": "gtc"}
    for bad in (
        {"order_class": "bracket", "take_profit": {"limit_price": "110"}},
        {"order_class": "oto"},
        {"order_class": "bracket", "take_profit": {"limit_price": "90"}, "stop_loss": "95"},
        {"order_class": "oco", "take_profit": {"limit_price": "1", "a": 1, "b": 2}},
    ):
        answer = served.client.post("/v2/orders", json={**body, **bad}, headers=opened["headers"])
        assert answer.status_code == 422, (bad, answer.text)


def test_two_clients_trade_in_a_book_venue_once_the_admin_grants_shares(served: Served) -> None:
    """In `book` mode a seller needs shares: before the admin grants them alpaca-py's sell is
    refused (403, insufficient qty); after, two clients' crossing orders trade."""
    served.broker.list_stock("VENU", "Venue Co", "20.00", mode="book")
    seller, seller_opened = _client(served, "alpaca-venue-seller")
    buyer, _ = _client(served, "alpaca-venue-buyer")
    sell = LimitOrderRequest(
        symbol="VENU", qty=5, side=OrderSide.SELL, time_in_force=TimeInForce.GTC, limit_price=20
    )
    with pytest.raises(APIError) as refused:
        seller.submit_order(sell)
    assert refused.value.status_code == 403
    grants = f"/api/admin/accounts/{seller_opened['account_id']}/grants"
    body = {"symbol": "VENU", "quantity": 5, "price": "18.00"}
    assert served.client.post(grants, json=body, headers=ADMIN).status_code == 201

    resting = seller.submit_order(sell)
    bought = buyer.submit_order(
        LimitOrderRequest(
            symbol="VENU", qty=5, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=20
        )
    )

    assert bought.status == OrderStatus.FILLED
    assert seller.get_order_by_id(resting.id).status == OrderStatus.FILLED
    assert buyer.get_open_position("VENU").qty == "5"
    assert Decimal(str(seller.get_account().cash)) == Decimal("10100.00")


def test_fees_are_fee_activities_and_come_out_of_cash_and_equity() -> None:
    """With `brokerage serve --fees`, each fill's fees are a FEE activity as alpaca-py reads
    it, cash and equity are net of them, and `GET /api/fees` tells the schedule."""
    from alpaca.trading.models import NonTradeActivity

    with serving("asyncio", fees="per_share=0.01,minimum=1,taf_per_share=0.000166") as served:
        client, opened = _client(served, "alpaca-fees", deposit="1000")
        maker, maker_opened = _client(served, "alpaca-fees-maker", deposit="10")
        served.broker.grant_shares(maker_opened["account_id"], "BOOK", 200, "90")
        sold = maker.submit_order(
            LimitOrderRequest(
                symbol="BOOK",
                qty=200,
                side=OrderSide.SELL,
                time_in_force=TimeInForce.GTC,
                limit_price=1,
            )
        )
        bought = client.submit_order(
            LimitOrderRequest(
                symbol="BOOK",
                qty=150,
                side=OrderSide.BUY,
                time_in_force=TimeInForce.GTC,
                limit_price=1,
            )
        )
        assert bought.filled_qty == "150"

        [fee] = [NonTradeActivity(**a) for a in client.get("/account/activities/FEE")]
        assert fee.net_amount == -1.5  # 150 shares at $0.01
        assert str(bought.id) in str(fee.description)
        [maker_fee] = maker.get("/account/activities", {"activity_types": "FEE"})
        assert maker_fee["net_amount"] == "-1.53"  # $1.50 and $0.0249 of TAF, rounded up
        account = client.get_account()
        assert Decimal(str(account.cash)) == Decimal("1000") - Decimal("150") - Decimal("1.5")
        assert client.get_open_position("BOOK").cost_basis == "151.50"
        schedule = served.client.get("/api/fees", headers=opened["headers"]).json()
        assert schedule["per_share"] == "0.01"
        assert schedule["maximum"] is None
        maker.cancel_order_by_id(sold.id)


def test_portfolio_history_and_the_day_as_alpaca_py_reads_them() -> None:
    """`GET /v2/account/portfolio/history` (alpaca-py's `get_portfolio_history`): each window's
    start and the equity at its end, P/L net of deposits; positions' intraday P/L and the
    account's `last_equity` from the day's start."""
    from alpaca.trading.models import PortfolioHistory
    from alpaca.trading.requests import GetPortfolioHistoryRequest

    hour = 3600 * 10**9
    day = 24 * hour
    start = 1_800_000_000 * 10**9 - 8 * hour  # midnight (UTC)
    now = [start + 22 * hour]
    with serving("asyncio", clock=lambda: now[0]) as served:
        served.broker.list_stock("HIST", "History Co", "20.00")
        client, opened = _client(served, "alpaca-history", deposit="1000")
        now[0] += hour
        client.submit_order(
            MarketOrderRequest(
                symbol="HIST", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
            )
        )
        now[0] += hour  # the next day
        served.broker.update_price("HIST", "22.00")
        now[0] += hour
        served.broker.deposit(opened["account_id"], "100")
        now[0] += hour // 2

        history = client.get_portfolio_history(
            GetPortfolioHistoryRequest(period="1D", timeframe="1H")
        )
        assert isinstance(history, PortfolioHistory)
        assert history.timeframe == "1H"
        assert history.base_value == 1000
        assert history.timestamp[0] == (start + 22 * hour) // 10**9  # its first deposit's hour
        # the ends of 22:00-23:00, 23:00-0:00 (the move to 22 came at 0:00), 0:00-1:00 (and
        # the deposit at 1:00), and of 1:00 to now
        assert history.equity == [1000, 1000, 1120, 1120]
        assert history.profit_loss == [0, 0, 20, 20]
        assert history.profit_loss_pct[-1] == 0.0182  # 20 / 1,100, to 0.01 %
        assert history.cashflow == {}
        flows = client.get_portfolio_history(
            GetPortfolioHistoryRequest(period="1D", timeframe="1H", cashflow_types="ALL")
        )
        assert isinstance(flows, PortfolioHistory)
        assert {k.value: v for k, v in flows.cashflow.items()} == {"CSD": [0, 0, 100, 0]}
        with pytest.raises(APIError) as refused:
            client.get_portfolio_history(GetPortfolioHistoryRequest(period="1X"))
        assert refused.value.status_code == 422
        ended = client.get_portfolio_history(
            GetPortfolioHistoryRequest(
                period="1D", timeframe="1H", end=datetime.fromtimestamp((start + day) / 1e9, UTC)
            )
        )
        assert isinstance(ended, PortfolioHistory)
        assert ended.equity == [1000, 1000]  # to midnight: before the move to 22
        latest = client.get(
            "/account/portfolio/history",
            {"date_end": "9999-12-31", "period": "1D", "timeframe": "1H"},
        )
        assert isinstance(latest, dict)
        assert latest["equity"] == history.equity  # a day past now: up to now

        [position] = client.get_all_positions()
        assert position.lastday_price == "20.00"  # yesterday's close
        assert position.unrealized_intraday_pl == "20.00"  # held overnight, 20 -> 22
        assert Decimal(str(position.unrealized_intraday_plpc)) == Decimal("0.1")
        assert Decimal(str(position.change_today)) == Decimal("0.1")
        account = client.get_account()
        assert account.last_equity == "1000.00"  # at yesterday's close: 800 cash, 10 at 20
        assert account.equity == "1120.00"


def test_account_activities_page_through_fills_and_cash_movements(served: Served) -> None:
    """`GET /v2/account/activities` (and `/{type}`): fills (a partial one says so, with what
    its order had filled and had left), deposits, withdrawals and grants, as alpaca-py's
    activity models read them; newest first, filtered by type and day, a page at a time."""
    from alpaca.trading.models import NonTradeActivity, TradeActivity

    served.broker.list_stock("ACTV", "Activity Co", "10.00", mode="book")
    client, opened = _client(served, "alpaca-activities", deposit="1000")
    maker, maker_opened = _client(served, "alpaca-activities-maker")
    served.broker.grant_shares(maker_opened["account_id"], "ACTV", 5, "9")
    account = opened["account_id"]
    served.broker.withdraw(account, "100")
    served.broker.grant_shares(account, "ACTV", 2, "8")
    maker.submit_order(
        LimitOrderRequest(
            symbol="ACTV", qty=5, side=OrderSide.SELL, time_in_force=TimeInForce.GTC, limit_price=10
        )
    )
    bought = client.submit_order(
        LimitOrderRequest(
            symbol="ACTV", qty=8, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=10
        )
    )

    found = client.get("/account/activities")
    assert isinstance(found, list)
    assert [a["activity_type"] for a in found] == ["FILL", "JNLS", "CSW", "CSD"]  # newest first
    fill = TradeActivity(**found[0])
    assert (fill.type, fill.qty, fill.leaves_qty, fill.cum_qty) == ("partial_fill", 5, 3, 5)
    assert (fill.order_status, str(fill.order_id)) == (OrderStatus.PARTIALLY_FILLED, str(bought.id))
    assert (fill.price, fill.side, fill.symbol) == (10, OrderSide.BUY, "ACTV")
    moves = [NonTradeActivity(**a) for a in found[1:]]
    assert [m.net_amount for m in moves] == [16, -100, 1000]
    assert moves[0].qty == 2

    assert [a["activity_type"] for a in client.get("/account/activities/CSD")] == ["CSD"]
    only = client.get("/account/activities", {"activity_types": "CSW,JNLS", "direction": "asc"})
    assert [a["activity_type"] for a in only] == ["CSW", "JNLS"]
    assert client.get("/account/activities", {"activity_types": "DIV"}) == []
    first = client.get("/account/activities", {"page_size": 2})
    rest = client.get("/account/activities", {"page_size": 2, "page_token": first[-1]["id"]})
    assert [a["id"] for a in [*first, *rest]] == [a["id"] for a in found]
    today = datetime.now(UTC).date()
    assert len(client.get("/account/activities", {"date": today.isoformat()})) == 4
    before = (today - timedelta(days=1)).isoformat()
    assert client.get("/account/activities", {"date": before}) == []
    for bad in (
        {"activity_types": "BOGUS"},
        {"page_size": 101},
        {"direction": "up"},
        {"until": "0001-01-01T00:00:00+04:58"},  # before year 1 in UTC
    ):
        with pytest.raises(APIError) as refused:
            client.get("/account/activities", bad)
        assert refused.value.status_code == 422, bad


def test_a_margin_account_sells_short_and_covers_as_alpaca_py_reads_it() -> None:
    """A margin account (`"margin": true` at sign-up) as alpaca-py reads it: Reg T buying
    power and multiplier, a short sale a cash account may not make, the short position with
    its negative quantity, value and cost, the margin figures, and a close that buys it back;
    an asset not shortable is refused with Alpaca's 403."""
    rules = "initial=50,long=25,short=30,shortable=AAPL BOOK"
    with serving("asyncio", margin=rules, margin_check_seconds=None) as served:
        body = {"user_id": "short", "name": "Short", "initial_deposit": "10000", "margin": True}
        opened = served.client.post("/api/accounts", json=body).json()
        client = TradingClient(
            opened["api_key_id"], opened["api_secret_key"], url_override=served.url
        )
        cash_client, _ = _client(served, "alpaca-cash")
        account = client.get_account()
        assert (account.multiplier, account.shorting_enabled) == ("2", True)
        assert account.buying_power == "20000.00"
        assert cash_client.get_account().multiplier == "1"
        assert client.get_asset("AAPL").shortable is True
        assert client.get_asset("AAPL").marginable is True
        served.broker.list_stock("HARD", "Hard To Borrow Inc.", "20.00")
        assert client.get_asset("HARD").shortable is False

        def short(who: TradingClient, symbol: str, qty: int) -> Order:
            order = who.submit_order(
                MarketOrderRequest(
                    symbol=symbol, qty=qty, side=OrderSide.SELL, time_in_force=TimeInForce.DAY
                )
            )
            assert isinstance(order, Order)
            return order

        with pytest.raises(APIError) as refused:
            short(cash_client, "AAPL", 10)
        assert refused.value.status_code == 403
        with pytest.raises(APIError) as refused:
            short(client, "HARD", 10)
        assert (refused.value.status_code, "shortable" in str(refused.value)) == (403, True)

        sold = short(client, "AAPL", 40)  # at $150: $6,000 in, $6,000 owed in shares
        assert sold.status == OrderStatus.FILLED
        [position] = client.get_all_positions()
        assert isinstance(position, Position)
        assert (position.side, position.qty, position.qty_available) == ("short", "-40", "-40")
        assert position.market_value == "-6000.00"
        assert position.cost_basis == "-6000.00"
        served.broker.update_price("AAPL", "140.00")
        moved = client.get_open_position("AAPL")
        assert isinstance(moved, Position)
        assert moved.unrealized_pl == "400.00"
        account = client.get_account()
        assert account.cash == "16000.00"
        assert account.equity == "10400.00"
        assert account.short_market_value == "-5600.00"
        assert account.initial_margin == "2800.00"
        assert account.maintenance_margin == "1680.00"
        assert account.buying_power == "15200.00"  # 2 * ($10,400 - $2,800)
        margin = served.client.get(
            "/api/account/margin",
            headers={
                "APCA-API-KEY-ID": opened["api_key_id"],
                "APCA-API-SECRET-KEY": opened["api_secret_key"],
            },
        ).json()
        assert margin["account_type"] == "margin"
        assert margin["excess_equity"] == "7600.00"

        closed = client.close_position("AAPL")
        assert isinstance(closed, Order)
        assert closed.side == OrderSide.BUY
        assert client.get_all_positions() == []
        assert client.get_account().cash == "10400.00"

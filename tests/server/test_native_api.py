"""The native JSON API under /api/: every embedded feature over HTTP, keys and isolation."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from tests.server.conftest import ADMIN, Served


def test_account_money_orders_and_portfolio(served: Served) -> None:
    http = served.client
    opened = served.signup("native-1", deposit="1000")
    me = opened["headers"]
    assert opened["balance"]["cash"] == "1000.00"
    assert http.get("/api/account", headers=me).json()["account_id"] == opened["account_id"]
    assert (
        http.post("/api/account/deposit", json={"amount": "500.25"}, headers=me).json()["cash"]
        == "1500.25"
    )
    assert (
        http.post("/api/account/withdraw", json={"amount": 300}, headers=me).json()["available"]
        == "1200.25"
    )

    bought = http.post(
        "/api/orders", json={"symbol": "AAPL", "side": "buy", "quantity": 2}, headers=me
    )
    assert bought.status_code == 201
    assert bought.json()["status"] == "executed"
    resting = http.post(
        "/api/orders",
        json={
            "symbol": "AAPL",
            "side": "buy",
            "quantity": "1",
            "type": "limit",
            "limit_price": "120.50",
            "time_in_force": "day",
            "client_order_id": "my-dip-buy",
        },
        headers=me,
    ).json()
    assert resting["status"] == "pending"
    assert resting["client_order_id"] == "my-dip-buy"
    reused = http.post(
        "/api/orders",
        json={"symbol": "AAPL", "side": "buy", "quantity": 1, "client_order_id": "my-dip-buy"},
        headers=me,
    )
    assert reused.status_code == 409
    assert "my-dip-buy" in reused.json()["message"]
    assert http.get(f"/api/orders/{resting['order_id']}", headers=me).json() == resting
    pending = http.get("/api/orders", params={"status": "pending"}, headers=me).json()
    assert [o["order_id"] for o in pending] == [resting["order_id"]]
    cancelled = http.delete(f"/api/orders/{resting['order_id']}", headers=me).json()
    assert cancelled["status"] == "cancelled"
    again = http.delete(f"/api/orders/{resting['order_id']}", headers=me)
    assert again.status_code == 422
    assert "cannot be cancelled" in again.json()["message"]

    refused = http.post(
        "/api/orders", json={"symbol": "AAPL", "side": "buy", "quantity": 100}, headers=me
    ).json()
    assert refused["status"] == "rejected"
    assert refused["reject_reason"] == "insufficient_funds"

    portfolio = http.get("/api/account/portfolio", headers=me).json()
    assert [h["symbol"] for h in portfolio["holdings"]] == ["AAPL"]
    assert Decimal(portfolio["net_worth"]) == Decimal("1200.25")
    kinds = [t["kind"] for t in http.get("/api/account/transactions", headers=me).json()]
    assert kinds == ["deposit", "deposit", "withdrawal", "buy"]
    page = http.get("/api/account/transactions", params={"offset": 1, "limit": 2}, headers=me)
    assert [t["kind"] for t in page.json()] == ["deposit", "withdrawal"]
    every = [o["order_id"] for o in http.get("/api/orders", headers=me).json()]
    paged = http.get("/api/orders", params={"offset": 1, "limit": 1}, headers=me).json()
    assert [o["order_id"] for o in paged] == every[1:2]
    newest = http.get("/api/orders", params={"direction": "desc", "limit": 1}, headers=me).json()
    assert [o["order_id"] for o in newest] == every[-1:]
    after = http.get(
        "/api/orders", params={"cursor": every[0], "side": "buy", "limit": 5}, headers=me
    ).json()
    assert [o["order_id"] for o in after] == [
        o for o in every[1:] if http.get(f"/api/orders/{o}", headers=me).json()["side"] == "buy"
    ]
    cash = http.get(
        "/api/account/transactions",
        params=[("kind", "withdrawal"), ("kind", "deposit"), ("direction", "desc")],
        headers=me,
    ).json()
    assert [t["kind"] for t in cash] == ["withdrawal", "deposit", "deposit"]
    first = http.get("/api/account/transactions", headers=me).json()[0]["transaction_id"]
    rest = http.get("/api/account/transactions", params={"cursor": first}, headers=me).json()
    assert [t["kind"] for t in rest] == ["deposit", "withdrawal", "buy"]
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "1e999999"}):
        assert http.get("/api/orders", params=bad, headers=me).status_code == 422
    for bad in ({"cursor": "A-000001-1"}, {"direction": "up"}, {"after": "yesterday"}):
        assert http.get("/api/orders", params=bad, headers=me).status_code == 422
    too_much = http.post("/api/account/withdraw", json={"amount": "99999"}, headers=me)
    assert too_much.status_code == 403
    history = http.get("/api/account/portfolio/history", params={"period": "1D"}, headers=me).json()
    assert history["timeframe"] == "1Min"
    assert (
        history["equity"][-1] == http.get("/api/account/portfolio", headers=me).json()["net_worth"]
    )
    assert len(history["timestamps"]) == len(history["profit_loss"])
    refused = http.get("/api/account/portfolio/history", params={"period": "5Y"}, headers=me)
    assert refused.status_code == 422
    assert "period must be a number and D, W, M or A" in refused.json()["message"]


def test_market_data_search_watchlists_alerts(served: Served) -> None:
    http = served.client
    me = served.signup("native-2")["headers"]
    stocks = http.get("/api/stocks", headers=me).json()
    assert {s["symbol"] for s in stocks} >= {"AAPL", "BOOK"}
    assert http.get("/api/stocks/AAPL", headers=me).json()["last_price"] == "150.00"
    assert http.get("/api/stocks/BOOK/depth", headers=me).json()["symbol"] == "BOOK"
    assert isinstance(http.get("/api/stocks/BOOK/trades", headers=me).json(), list)
    assert isinstance(http.get("/api/stocks/AAPL/bars", headers=me).json(), list)
    found = http.get("/api/search", params={"q": "apple"}, headers=me).json()
    assert found[0]["symbol"] == "AAPL"
    assert http.get("/api/stocks/NOPE", headers=me).status_code == 404

    made = http.post("/api/watchlists", json={"name": "mine", "symbols": ["AAPL"]}, headers=me)
    assert made.status_code == 201
    assert http.post("/api/watchlists", json={"name": "mine"}, headers=me).status_code == 409
    http.post("/api/watchlists/mine/symbols", json={"symbol": "BOOK"}, headers=me)
    shown = http.get("/api/watchlists/mine", headers=me).json()
    assert [q["symbol"] for q in shown["quotes"]] == ["AAPL", "BOOK"]
    assert (
        http.patch("/api/watchlists/mine", json={"name": "ours"}, headers=me).json()["name"]
        == "ours"
    )
    assert http.delete("/api/watchlists/ours/symbols/AAPL", headers=me).json()["symbols"] == [
        "BOOK"
    ]
    assert http.delete("/api/watchlists/ours", headers=me).status_code == 204
    assert http.get("/api/watchlists", headers=me).json() == []

    alert = http.post(
        "/api/alerts",
        json={"symbol": "AAPL", "condition": "above", "threshold": "1000"},
        headers=me,
    ).json()
    assert [a["alert_id"] for a in http.get("/api/alerts", headers=me).json()] == [
        alert["alert_id"]
    ]
    assert http.delete(f"/api/alerts/{alert['alert_id']}", headers=me).status_code == 200
    chosen = http.put("/api/notifications", json={"console": True, "events": ["fill"]}, headers=me)
    assert chosen.json() == {"channels": {"console": None}, "kinds": ["fill"]}


def test_admin_lists_stocks_and_moves_prices(served: Served) -> None:
    http = served.client
    me = served.signup("native-3")["headers"]
    body = {"symbol": "ADMN", "name": "Admin Listed Co.", "price": "10.00"}
    assert http.post("/api/admin/stocks", json=body, headers=me).status_code == 403
    assert http.post("/api/admin/stocks", json=body, headers=ADMIN).status_code == 201
    assert http.post("/api/admin/stocks", json=body, headers=ADMIN).status_code == 409
    moved = http.put("/api/admin/stocks/ADMN/price", json={"price": "12.34"}, headers=ADMIN)
    assert moved.json()["last_price"] == "12.34"
    assert (
        http.put("/api/admin/stocks/ADMN/price", json={"price": "1"}, headers=me).status_code == 403
    )
    assert http.get("/api/admin/audit", headers=ADMIN).status_code == 200
    assert http.get("/api/admin/metrics", headers=ADMIN).json()["counters"]["orders_accepted"] >= 0
    assert http.get("/api/account", headers=ADMIN).status_code == 403


def test_keys_see_only_their_own_account(served: Served) -> None:
    http = served.client
    alice = served.signup("native-4")["headers"]
    mallory = served.signup("native-5")["headers"]
    order = http.post(
        "/api/orders",
        json={"symbol": "AAPL", "side": "buy", "quantity": 1, "type": "limit", "limit_price": "99"},
        headers=alice,
    ).json()
    http.post("/api/watchlists", json={"name": "secret"}, headers=alice)
    alert = http.post(
        "/api/alerts",
        json={"symbol": "AAPL", "condition": "below", "threshold": "1"},
        headers=alice,
    ).json()
    for method, path in (
        ("GET", f"/api/orders/{order['order_id']}"),
        ("DELETE", f"/api/orders/{order['order_id']}"),
        ("GET", "/api/watchlists/secret"),
        ("DELETE", "/api/watchlists/secret"),
        ("DELETE", f"/api/alerts/{alert['alert_id']}"),
    ):
        answer = http.request(method, path, headers=mallory)
        assert answer.status_code == 404, (method, path, answer.text)
        assert set(answer.json()) == {"code", "message"}
    assert http.get("/api/orders", headers=mallory).json() == []
    assert http.get(f"/api/orders/{order['order_id']}", headers=alice).json()["status"] == "pending"
    assert [w["name"] for w in http.get("/api/watchlists", headers=alice).json()] == ["secret"]


def test_missing_or_wrong_keys_are_401(served: Served) -> None:
    http = served.client
    opened = served.signup("native-6")
    for headers in (
        {},
        {"APCA-API-KEY-ID": opened["api_key_id"]},
        {"APCA-API-KEY-ID": opened["api_key_id"], "APCA-API-SECRET-KEY": "wrong"},
        {"APCA-API-KEY-ID": "PKUNKNOWN", "APCA-API-SECRET-KEY": opened["api_secret_key"]},
    ):
        answer = http.get("/api/account", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["code"] == 40110000


def test_secrets_are_stored_hashed(served: Served) -> None:
    opened = served.signup("native-7")
    keys = served.app.state.server.keys
    record = keys.check(opened["api_key_id"], opened["api_secret_key"])
    assert record is not None
    assert opened["api_secret_key"].encode() not in record.secret_digest
    assert all(opened["api_secret_key"] not in repr(v) for v in vars(keys).values())


def test_stop_orders_wait_trigger_on_the_feed_and_show_their_terms(served: Served) -> None:
    """Over the native API, on a market-mode stock of its own: a buy stop reserves at its
    stop plus the collar, waits, and fills when the admin's price move reaches it; a trailing
    sell shows its mark and stop; bad terms are 422 naming the field."""
    http = served.client
    http.post(
        "/api/admin/stocks",
        json={"symbol": "STPN", "name": "Native Stops", "price": "10.00"},
        headers=ADMIN,
    )
    opened = served.signup("native-stops", deposit="1000")
    me = opened["headers"]
    served.broker.grant_shares(opened["account_id"], "STPN", 10, "9")
    stop = http.post(
        "/api/orders",
        json={"symbol": "STPN", "side": "buy", "quantity": 10, "type": "stop", "stop_price": "11"},
        headers=me,
    ).json()
    assert (stop["status"], stop["stop_price"], stop["triggered_at"]) == ("pending", "11.00", None)
    assert http.get("/api/account", headers=me).json()["balance"]["reserved"] == "115.50"
    trailing = http.post(
        "/api/orders",
        json={
            "symbol": "STPN",
            "side": "sell",
            "quantity": 10,
            "type": "trailing_stop",
            "trail_percent": "5",
        },
        headers=me,
    ).json()
    assert (trailing["hwm"], trailing["stop_price"], trailing["trail_percent"]) == (
        "10.00",
        "9.50",
        "5.00",
    )
    refused = http.post(
        "/api/orders",
        json={
            "symbol": "STPN",
            "side": "buy",
            "quantity": 1,
            "type": "stop_limit",
            "stop_price": "11",
        },
        headers=me,
    )
    assert refused.status_code == 422
    assert "limit_price" in refused.json()["message"]

    http.put("/api/admin/stocks/STPN/price", json={"price": "11.20"}, headers=ADMIN)

    done = http.get(f"/api/orders/{stop['order_id']}", headers=me).json()
    assert (done["status"], done["average_fill_price"]) == ("executed", "11.20")
    assert done["triggered_at"] is not None
    assert http.delete(f"/api/orders/{trailing['order_id']}", headers=me).status_code == 200


def test_self_trade_prevention_over_the_native_api(served: Served) -> None:
    http = served.client
    opened = served.signup("native-stp", deposit="1000")
    me = opened["headers"]
    served.broker.list_stock("STPB", "Self Trade Co", "50.00", mode="book")
    served.broker.grant_shares(opened["account_id"], "STPB", 5, "50")
    order = {"symbol": "STPB", "quantity": 1, "type": "limit", "limit_price": "50.01"}
    resting = http.post("/api/orders", json={**order, "side": "sell"}, headers=me).json()
    both = http.post(
        "/api/orders",
        json={**order, "side": "buy", "self_trade_prevention": "cancel_both"},
        headers=me,
    ).json()
    assert (both["status"], both["cancel_reason"]) == ("cancelled", "self_trade")
    assert both["self_trade_prevention"] == "cancel_both"
    gone = http.get(f"/api/orders/{resting['order_id']}", headers=me).json()
    assert gone["cancel_reason"] == "self_trade"
    bad = http.post(
        "/api/orders", json={**order, "side": "buy", "self_trade_prevention": "never"}, headers=me
    )
    assert bad.status_code == 422
    chosen = http.put(
        "/api/account/self-trade-prevention", json={"mode": "cancel_oldest"}, headers=me
    )
    assert chosen.json() == {"mode": "cancel_oldest"}
    again = http.post("/api/orders", json={**order, "side": "sell"}, headers=me).json()
    mine = http.post("/api/orders", json={**order, "side": "buy"}, headers=me).json()
    assert mine["self_trade_prevention"] == "cancel_oldest"
    assert http.get(f"/api/orders/{again['order_id']}", headers=me).json()["cancel_reason"] == (
        "self_trade"
    )


def test_replacing_an_order_over_the_native_api(served: Served) -> None:
    http = served.client
    me = served.signup("native-replace", deposit="1000")["headers"]
    order = http.post(
        "/api/orders",
        json={
            "symbol": "AAPL",
            "side": "buy",
            "quantity": 5,
            "type": "limit",
            "limit_price": "100",
        },
        headers=me,
    ).json()

    new = http.patch(
        f"/api/orders/{order['order_id']}", json={"limit_price": "101.50"}, headers=me
    ).json()

    assert (new["replaces"], new["limit_price"], new["quantity"]) == (
        order["order_id"],
        "101.50",
        5,
    )
    old = http.get(f"/api/orders/{order['order_id']}", headers=me).json()
    assert (old["status"], old["replaced_by"]) == ("replaced", new["order_id"])
    refused = http.patch(f"/api/orders/{new['order_id']}", json={"quantity": 50}, headers=me)
    assert (refused.json()["status"], refused.json()["reject_reason"]) == (
        "rejected",
        "insufficient_funds",
    )
    assert (
        http.patch(f"/api/orders/{order['order_id']}", json={"quantity": 1}, headers=me).status_code
        == 422
    )
    assert http.patch(f"/api/orders/{new['order_id']}", json={}, headers=me).status_code == 422
    http.delete(f"/api/orders/{new['order_id']}", headers=me)


def test_admin_grants_shares_and_deposits_for_a_user(served: Served) -> None:
    """A book-mode venue over the network: the admin gives a seller shares and a buyer cash,
    then their crossing orders trade; a user's own key may do neither; bad grants change
    nothing."""
    http = served.client
    served.broker.list_stock("GRNT", "Granted Co", "50.00", mode="book")
    seller, buyer = served.signup("native-grant-s"), served.signup("native-grant-b", deposit="0")
    grants = f"/api/admin/accounts/{seller['account_id']}/grants"
    body = {"symbol": "GRNT", "quantity": 10, "price": "45.00"}
    assert http.post(grants, json=body, headers=seller["headers"]).status_code == 403

    granted = http.post(grants, json=body, headers=ADMIN)

    assert granted.status_code == 201
    assert (granted.json()["symbol"], granted.json()["quantity"]) == ("GRNT", 10)
    deposits = f"/api/admin/accounts/{buyer['account_id']}/deposits"
    assert http.post(deposits, json={"amount": "600"}, headers=buyer["headers"]).status_code == 403
    balance = http.post(deposits, json={"amount": "600"}, headers=ADMIN)
    assert (balance.status_code, balance.json()["cash"]) == (200, "600.00")
    sell = {"symbol": "GRNT", "side": "sell", "quantity": 10, "type": "limit"}
    sold = http.post("/api/orders", json={**sell, "limit_price": "50"}, headers=seller["headers"])
    assert sold.json()["status"] == "pending"
    buy = {"symbol": "GRNT", "side": "buy", "quantity": 10, "type": "limit"}
    bought = http.post("/api/orders", json={**buy, "limit_price": "50"}, headers=buyer["headers"])
    assert bought.json()["status"] == "executed"
    for bad, status in (
        ({**body, "quantity": 0}, 422),
        ({**body, "quantity": "1e9999"}, 422),
        ({**body, "price": "-1"}, 422),
        ({**body, "symbol": "NOPE"}, 404),
        ({**body, "extra": 1}, 422),
    ):
        assert http.post(grants, json=bad, headers=ADMIN).status_code == status, bad
    assert (
        http.post("/api/admin/accounts/A-999999/grants", json=body, headers=ADMIN).status_code
        == 404
    )
    holdings = {
        h.symbol: h.quantity for h in served.broker.portfolio(seller["account_id"]).holdings
    }
    assert holdings == {}  # it sold all ten, and the bad grants credited none
    assert served.broker.balance(buyer["account_id"]).cash == 100  # 600 less 10 x 50.00


def test_a_user_resets_a_paper_account(served: Served) -> None:
    """`POST /api/account/reset`: open orders cancelled, holdings out at cost, cash set; the
    history shows it (natively, and as Alpaca's JNLS and MISC activities)."""
    http = served.client
    me = served.signup("native-reset", deposit="5000")
    headers = me["headers"]
    bought = {"symbol": "AAPL", "side": "buy", "quantity": 2, "type": "market"}
    assert http.post("/api/orders", json=bought, headers=headers).json()["status"] == "executed"
    resting = {"symbol": "AAPL", "side": "buy", "quantity": 1, "type": "limit"}
    order = http.post("/api/orders", json={**resting, "limit_price": "1"}, headers=headers).json()

    reset = http.post("/api/account/reset", json={"cash": "100000"}, headers=headers)

    assert (reset.status_code, reset.json()["cash"], reset.json()["reserved"]) == (
        200,
        "100000.00",
        "0.00",
    )
    assert http.get(f"/api/orders/{order['order_id']}", headers=headers).json()["status"] == (
        "cancelled"
    )
    portfolio = http.get("/api/account/portfolio", headers=headers).json()
    assert (portfolio["holdings"], portfolio["realized_pl"]) == ([], "0.00")
    kinds = [
        t["kind"]
        for t in http.get(
            "/api/account/transactions", params={"direction": "desc", "limit": 3}, headers=headers
        ).json()
    ]
    assert kinds == ["reset", "deposit", "removal"]
    marks = http.get(
        "/v2/account/activities", params={"activity_types": "JNLS,MISC"}, headers=headers
    ).json()
    assert (marks[0]["activity_type"], marks[0]["net_amount"]) == ("MISC", "0")
    assert marks[1]["qty"] == "-2"
    assert marks[1]["net_amount"].startswith("-")
    for bad in ({"cash": "-1"}, {"cash": 1.5}, {}, {"cash": "1", "more": 1}):
        refused = http.post("/api/account/reset", json=bad, headers=headers)
        assert refused.status_code == 422, bad
    assert http.post("/api/account/reset", json={"cash": "1"}, headers=ADMIN).status_code == 403


def test_the_admin_lists_the_users_accounts_without_the_agents(served: Served) -> None:
    """`GET /api/admin/accounts`: the trader agents' accounts (a venue's) are marked when
    opened and left out unless asked for."""
    http = served.client
    user = served.signup("native-listed")
    agent = served.broker.open_account("native-agent", "Agent", agent=True).account_id

    listed = http.get("/api/admin/accounts", headers=ADMIN).json()
    every = http.get("/api/admin/accounts", params={"agents": "true"}, headers=ADMIN).json()

    assert user["account_id"] in listed
    assert agent not in listed
    assert agent in every
    assert set(listed) < set(every)
    mine = http.get("/api/admin/accounts", params={"user_id": "native-listed"}, headers=ADMIN)
    assert mine.json() == [user["account_id"]]
    assert http.get("/api/admin/accounts", headers=user["headers"]).status_code == 403
    unknown = http.get("/api/admin/accounts", params={"user_id": "nobody"}, headers=ADMIN)
    assert unknown.status_code == 404


def test_an_audit_that_fails_while_trading_is_a_409_and_at_rest_a_500(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rules across accounts hold at rest: a failure while the counters moved (or orders
    were in flight) asks to audit again; one at rest is a broken invariant."""
    broker = served.broker
    quiet = broker.metrics()
    busy = dataclasses.replace(quiet, counters={**quiet.counters, "fills": -1})

    def broken() -> None:
        raise AssertionError("BOOK: 3 shares bought but 2 sold")

    monkeypatch.setattr(broker, "audit", broken)
    seen = iter([quiet, busy])
    monkeypatch.setattr(broker, "metrics", lambda: next(seen))
    trading = served.client.get("/api/admin/audit", headers=ADMIN)
    assert trading.status_code == 409
    assert "3 shares bought but 2 sold" in trading.json()["message"]
    monkeypatch.setattr(broker, "metrics", lambda: quiet)
    at_rest = served.client.get("/api/admin/audit", headers=ADMIN)
    assert at_rest.status_code == 500

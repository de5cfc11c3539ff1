from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BROKERAGE = str(Path(sys.executable).parent / "brokerage")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BROKERAGE, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_demo_json_reports_the_final_state_of_the_five_scenarios() -> None:
    result = run("demo", "--json")

    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    assert (state["cash"], state["net_worth"], state["realized_pl"]) == (
        "9525.00",
        "10350.00",
        "275.00",
    )
    assert state["holdings"] == {"AAPL": {"quantity": 5, "average_cost": "150.00"}}
    assert [
        (o["symbol"], o["side"], o["order_type"], o["status"], o["fill_price"])
        for o in state["orders"]
    ] == [
        ("AAPL", "buy", "market", "executed", "150.00"),
        ("AAPL", "sell", "limit", "executed", "165.00"),
        ("GOOGL", "buy", "market", "executed", "2800.00"),
        ("GOOGL", "sell", "market", "executed", "3000.00"),
    ]


def test_demo_narrates_each_scenario_in_order() -> None:
    result = run("demo")

    assert result.returncode == 0, result.stderr
    headings = [f"Demo {n}" for n in range(1, 6)]
    positions = [result.stdout.index(h) for h in headings]
    assert positions == sorted(positions)
    assert "Final balance $9,525.00, net worth $10,350.00" in result.stdout


def test_lifecycle_logs_are_json_lines_keyed_by_order_account_and_symbol() -> None:
    result = run("demo", "--json", "--log-level", "info")

    events = [json.loads(line) for line in result.stderr.splitlines()]
    filled = [e for e in events if e["event"] == "order.filled"]
    assert len(filled) == 4
    assert all({"order_id", "account_id", "symbol", "trade_id"} <= e.keys() for e in filled)
    assert {e["event"] for e in events} >= {
        "order.received",
        "order.accepted",
        "order.filled",
        "account.opened",
        "stock.listed",
    }


def test_unknown_command_exits_with_usage() -> None:
    result = run("trade")

    assert result.returncode == 2
    assert "usage" in result.stderr


def test_simulate_prints_a_json_report_whose_conservation_check_passes() -> None:
    result = run(
        "simulate",
        "--accounts",
        "60",
        "--symbols",
        "4",
        "--mode",
        "book",
        "--deterministic",
        "--steps",
        "3",
        "--json",
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["conservation"]["ok"] is True
    assert report["accounts"] == 60


def _start_serve(data: Path, port: int, *options: str) -> subprocess.Popen[str]:
    import time

    import httpx

    server = subprocess.Popen(
        [
            BROKERAGE,
            "serve",
            "--port",
            str(port),
            "--admin-secret",
            "s3",
            "--data",
            str(data),
            *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        assert server.poll() is None, server.communicate()[1]
        assert time.monotonic() < deadline, "brokerage serve did not start"
        time.sleep(0.1)


def test_serve_answers_keeps_its_state_and_stops_cleanly_on_interrupt(tmp_path: Path) -> None:
    """`brokerage serve` lists the universe, moves prices, trades over HTTP, and on Ctrl-C
    closes the engine and exits 0; started again on its data it holds the account, its key
    its order and its /v2 watchlist's UUID, and after a SIGKILL too."""
    import signal
    import time

    import httpx

    from gateway.server.app import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    server = _start_serve(data, port)
    try:
        deadline = time.monotonic() + 30
        opened = httpx.post(
            f"{url}/api/accounts",
            json={"user_id": "cli", "name": "Cli", "initial_deposit": "5000"},
        ).json()
        keys = {
            "APCA-API-KEY-ID": opened["api_key_id"],
            "APCA-API-SECRET-KEY": opened["api_secret_key"],
        }
        first = httpx.get(f"{url}/api/stocks/MSFT", headers=keys).json()["last_price"]
        order = httpx.post(
            f"{url}/api/orders", json={"symbol": "MSFT", "side": "buy", "quantity": 2}, headers=keys
        ).json()
        assert order["status"] == "executed"
        assert len(httpx.get(f"{url}/v2/assets", headers=keys).json()) == 52
        listed = httpx.post(
            f"{url}/v2/watchlists", json={"name": "tech", "symbols": ["MSFT"]}, headers=keys
        ).json()
        while httpx.get(f"{url}/api/stocks/MSFT", headers=keys).json()["last_price"] == first:
            assert time.monotonic() < deadline + 30, "the price feed did not move MSFT"
            time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert f"brokerage serving on {url}" in out
    assert "listed 52 stocks (market mode)" in out
    assert out.rstrip().endswith("brokerage stopped")
    assert "Traceback" not in err

    for stop in (signal.SIGKILL, signal.SIGINT):  # after a clean stop, then after a kill -9
        server = _start_serve(data, port)
        try:
            mine = httpx.get(f"{url}/api/orders/{order['order_id']}", headers=keys)
            assert mine.status_code == 200, mine.text
            assert mine.json()["status"] == "executed"
            held = httpx.get(f"{url}/api/account/portfolio", headers=keys).json()["holdings"]
            assert [(h["symbol"], h["quantity"]) for h in held] == [("MSFT", 2)]
            kept = httpx.get(f"{url}/v2/watchlists/{listed['id']}", headers=keys).json()
            assert (kept["name"], kept["created_at"]) == ("tech", listed["created_at"])
            order = httpx.post(
                f"{url}/api/orders",
                json={"symbol": "MSFT", "side": "sell", "quantity": 1},
                headers=keys,
            ).json()
            assert order["status"] == "executed"
            order = httpx.post(
                f"{url}/api/orders",
                json={"symbol": "MSFT", "side": "buy", "quantity": 1},
                headers=keys,
            ).json()
        finally:
            server.send_signal(stop)
            out, err = server.communicate(timeout=60)
        assert "recovered 1 accounts and 1 keys" in out, out


def test_serve_with_agents_gives_book_mode_users_a_book_to_trade_against(tmp_path: Path) -> None:
    """`brokerage serve --mode book --agents N`: market makers quote both sides, so a user's
    market buy fills and an alpaca-py bot's market sell too; started again on its data, the
    agents trade from the accounts they had (none opened twice), and the audit of what each
    run kept passes."""
    import signal
    import time

    import httpx
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest

    from gateway import Brokerage
    from gateway.server.app import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    admin = {"APCA-API-KEY-ID": "ADMIN", "APCA-API-SECRET-KEY": "s3"}
    options = (
        "--mode",
        "book",
        "--agents",
        "40",
        "--feed-interval",
        "0",
        "--admin-key-id",
        "ADMIN",
    )
    for start in range(2):
        server = _start_serve(data, port, *options)
        try:
            opened = httpx.post(
                f"{url}/api/accounts",
                json={"user_id": f"user-{start}", "name": "User", "initial_deposit": "5000"},
            ).json()
            keys = {
                "APCA-API-KEY-ID": opened["api_key_id"],
                "APCA-API-SECRET-KEY": opened["api_secret_key"],
            }
            deadline = time.monotonic() + 30
            while True:  # the makers' first quotes
                quoted = [
                    q
                    for q in httpx.get(f"{url}/api/stocks", headers=keys).json()
                    if q["bid"] is not None and q["ask"] is not None
                ]
                if quoted:
                    break
                assert time.monotonic() < deadline, "no agent quoted both sides"
                time.sleep(0.2)
            order = httpx.post(
                f"{url}/api/orders",
                json={"symbol": quoted[0]["symbol"], "side": "buy", "quantity": 1},
                headers=keys,
            ).json()
            assert order["status"] == "executed", order
            bot = TradingClient(
                keys["APCA-API-KEY-ID"], keys["APCA-API-SECRET-KEY"], url_override=url
            )
            sold = bot.submit_order(  # a bot sells what it bought into the makers' bids
                MarketOrderRequest(
                    symbol=quoted[0]["symbol"],
                    qty=1,
                    side=OrderSide.SELL,
                    time_in_force=TimeInForce.DAY,
                )
            )
            assert sold.status == OrderStatus.FILLED  # type: ignore[union-attr]
            admin_only = httpx.get(f"{url}/api/admin/metrics", headers=admin)
            assert admin_only.status_code == 200, admin_only.text
        finally:
            server.send_signal(signal.SIGINT)
            out, err = server.communicate(timeout=60)
        assert server.returncode == 0, err
        assert "40 trader agents (book mode)" in out
        assert "Traceback" not in err
        # the audit's rules across accounts hold at rest, not while the agents trade
        with Brokerage(store=f"sqlite:///{data}/brokerage.db") as kept:
            assert kept.audit().accounts == 40 + start + 1  # the agents' once, the users'


def test_replay_shows_a_journal_at_any_position(tmp_path: Path) -> None:
    """`brokerage replay` rebuilds the state at the end of a journal (the live state, to the
    digest) and at every earlier position, each one audited."""
    from gateway import Brokerage

    data = tmp_path / "data"
    with Brokerage(store=f"sqlite:///{data}/brokerage.db") as broker:
        broker.list_stock("BK", "Book Co", "50", mode="book")
        seller = broker.open_account("S", "Seller", initial_deposit="100").account_id
        buyer = broker.open_account("B", "Buyer", initial_deposit="1000").account_id
        broker.grant_shares(seller, "BK", 20, "40")
        broker.place_order(seller, "BK", "sell", 10, "limit", "51")
        broker.place_order(buyer, "BK", "buy", 4, "limit", "52")
        broker.place_order(buyer, "BK", "buy", 3, "limit", "49")
        final_cash = {a: str(broker.balance(a).cash) for a in (seller, buyer)}

    def run(*flags: str) -> dict[str, object]:
        result = subprocess.run(
            [BROKERAGE, "replay", str(data), "--json", *flags],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        found: dict[str, object] = json.loads(result.stdout)
        return found

    whole = run()
    accounts = whole["accounts"]
    assert isinstance(accounts, list)
    assert {a["account_id"]: a["cash"] for a in accounts} == final_cash
    facts = whole["facts"]
    assert isinstance(facts, int)
    seen = []
    for until in [*range(0, facts, 3), facts]:
        step = run("--until", str(until))
        assert step["facts"] == until
        seen.append(step["digest"])
    assert seen[-1] == whole["digest"]
    assert len(set(seen)) == len(seen)  # the state moves along the journal
    missing = subprocess.run(
        [BROKERAGE, "replay", str(tmp_path / "none")], capture_output=True, text=True, check=False
    )
    assert missing.returncode != 0
    assert "no journal" in missing.stderr


def test_serve_keeps_the_admin_key_it_made(tmp_path: Path) -> None:
    """Without --admin-secret, the first start makes the admin key and prints its secret once;
    a restart on the same data keeps that key (and says so) instead of making another."""
    import signal
    import time

    import httpx

    from gateway.server.app import free_port

    data = tmp_path / "data"
    outputs: list[str] = []
    for _ in range(2):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [BROKERAGE, "serve", "--port", str(port), "--data", str(data), "--feed-interval", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "brokerage serve did not start"
                time.sleep(0.1)
            if outputs:  # the first start's admin key works after the restart
                key_id = outputs[0].split("admin key id: ")[1].split()[0]
                secret = outputs[0].split("admin secret: ")[1].split()[0]
                admin = {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret}
                listed = httpx.post(
                    f"{url}/api/admin/stocks",
                    json={"symbol": "KEPT", "name": "Kept Co", "price": "10.00"},
                    headers=admin,
                )
                assert listed.status_code == 201, listed.text
        finally:
            server.send_signal(signal.SIGINT)
            out, err = server.communicate(timeout=60)
        assert server.returncode == 0, err
        outputs.append(out)
    first, second = outputs
    key_id = first.split("admin key id: ")[1].split()[0]
    secret = first.split("admin secret: ")[1].split()[0]
    assert f"admin key id: {key_id} (kept" in second
    assert "admin secret" not in second
    assert secret not in second

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from engine import UnknownSymbolError, ValidationError
from engine.universe import DEFAULT_UNIVERSE
from gateway import Brokerage


def test_the_default_universe_lists_at_least_fifty_stocks_once(broker: Brokerage) -> None:
    listed = broker.list_universe()
    again = broker.list_universe()

    assert len(DEFAULT_UNIVERSE) >= 50
    assert len(listed) == len(DEFAULT_UNIVERSE) - 1  # AAPL was listed by the fixture
    assert again == []
    assert {q.symbol for q in broker.stocks()} >= {s for s, _, _ in DEFAULT_UNIVERSE}


def test_search_finds_listed_stocks_by_symbol_and_name(broker: Brokerage) -> None:
    broker.list_universe()

    assert [r.symbol for r in broker.search("aapl")] == ["AAPL"]
    assert broker.search("micro", limit=1)[0].symbol == "AMD"  # "Advanced Micro Devices"
    assert {r.symbol for r in broker.search("bank")} == {"BAC"}
    assert broker.search("nothing like this") == []


def test_depth_trades_and_bars_follow_the_book(broker: Brokerage) -> None:
    seller = broker.open_account("S", "Seller").account_id
    buyer = broker.open_account("B", "Buyer", initial_deposit="10000").account_id
    broker.grant_shares(seller, "BOOK", 20, "90")
    broker.place_order(seller, "BOOK", "sell", 10, "limit", "101")
    broker.place_order(seller, "BOOK", "sell", 10, "limit", "102")
    broker.place_order(buyer, "BOOK", "buy", 12, "limit", "102")

    depth = broker.depth("BOOK", levels=5)
    tape = broker.trades("BOOK")
    bars = broker.bars("BOOK", "1m")
    quote = broker.quote("BOOK")

    assert [(a.price, a.quantity, a.orders) for a in depth.asks] == [(Decimal("102.00"), 8, 1)]
    assert depth.bids == ()
    assert [(t.price, t.quantity) for t in tape] == [
        (Decimal("102.00"), 2),
        (Decimal("101.00"), 10),
    ]
    assert (bars[-1].high, bars[-1].close, bars[-1].volume) == (
        Decimal("102.00"),
        Decimal("102.00"),
        12,
    )
    assert (quote.change, quote.change_percent) == (Decimal("2.00"), Decimal("2.00"))


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda b: b.depth("BOOK", levels=0), ValidationError, "levels"),
        (lambda b: b.trades("BOOK", limit=-1), ValidationError, "limit"),
        (lambda b: b.bars("BOOK", "2m"), ValidationError, "interval"),
        (lambda b: b.bars("NOPE", "1m"), UnknownSymbolError, "NOPE"),
        (lambda b: b.search(42), ValidationError, "query"),
        (lambda b: b.search("a", limit=0), ValidationError, "limit"),
    ],
)
def test_bad_market_data_requests_raise_typed_errors(
    broker: Brokerage, call: object, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        call(broker)  # type: ignore[operator]


def test_quotes_search_and_bars_stay_consistent_while_many_threads_trade(
    broker: Brokerage,
) -> None:
    accounts = [
        broker.open_account(f"U{n}", f"user {n}", initial_deposit="100000").account_id
        for n in range(8)
    ]
    for account in accounts:
        broker.grant_shares(account, "BOOK", 100, "100")
    broker.list_universe()
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(n: int) -> None:
        rng = random.Random(n)
        start.wait()
        try:
            for _ in range(60):
                if n % 2:
                    side = rng.choice(["buy", "sell"])
                    price = f"{rng.randint(98, 102)}.00"
                    broker.place_order(
                        accounts[n],
                        "BOOK",
                        side,
                        rng.randint(1, 5),
                        "limit",
                        price,
                        time_in_force="ioc",
                    )
                    broker.update_price("AAPL", f"{rng.randint(140, 160)}.00")
                else:
                    assert broker.search("apple")[0].symbol == "AAPL"
                    quote = broker.quote("BOOK")
                    assert quote.low <= quote.last_price <= quote.high
                    bars = broker.bars("AAPL", "1m")
                    assert all(
                        b.low <= b.open <= b.high and b.low <= b.close <= b.high for b in bars
                    )
        except BaseException as error:
            errors.append(error)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))

    assert errors == []
    volume = sum(b.volume for b in broker.bars("BOOK", "1d"))
    assert (
        volume
        == broker.quote("BOOK").volume
        == sum(t.quantity for t in broker.trades("BOOK", limit=1000))
    )
    report = broker.audit()
    assert report.shares["BOOK"] == 800

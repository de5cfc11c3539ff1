from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from engine import DuplicateError, UnknownSymbolError, UnknownWatchlistError, ValidationError
from gateway import Brokerage


def test_watchlists_are_created_edited_and_viewed_with_live_quotes(broker: Brokerage) -> None:
    account = broker.open_account("U1", "One").account_id

    broker.create_watchlist(account, "mine", ["aapl"])
    broker.add_to_watchlist(account, "mine", "BOOK")
    broker.rename_watchlist(account, "mine", "favourites")
    broker.create_watchlist(account, "spare")
    broker.delete_watchlist(account, "spare")
    broker.update_price("AAPL", "155")
    view = broker.watchlist(account, "favourites")

    assert [(w.name, w.symbols) for w in broker.watchlists(account)] == [
        ("favourites", ("AAPL", "BOOK"))
    ]
    assert [(q.symbol, q.last_price) for q in view.quotes] == [
        ("AAPL", Decimal("155.00")),
        ("BOOK", Decimal("100.00")),
    ]
    assert broker.remove_from_watchlist(account, "favourites", "AAPL").symbols == ("BOOK",)


def test_watchlists_belong_to_their_account(broker: Brokerage) -> None:
    one = broker.open_account("U1", "One").account_id
    two = broker.open_account("U2", "Two").account_id
    broker.create_watchlist(one, "mine", ["AAPL"])

    assert broker.watchlists(two) == []
    with pytest.raises(UnknownWatchlistError):
        broker.watchlist(two, "mine")


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda b, a: b.create_watchlist(a, "x", ["NOPE"]), UnknownSymbolError, "NOPE"),
        (lambda b, a: b.create_watchlist(a, "", []), ValidationError, "name"),
        (lambda b, a: b.create_watchlist(a, "w", []), DuplicateError, "w"),
        (lambda b, a: b.add_to_watchlist(a, "w", "NOPE"), UnknownSymbolError, "NOPE"),
        (lambda b, a: b.add_to_watchlist(a, "none", "AAPL"), UnknownWatchlistError, "none"),
        (lambda b, a: b.remove_from_watchlist(a, "w", "BOOK"), ValidationError, "not in"),
        (lambda b, a: b.rename_watchlist(a, "w", " "), ValidationError, "new_name"),
    ],
)
def test_bad_watchlist_requests_raise_typed_errors_and_change_nothing(
    broker: Brokerage, call: object, error: type[Exception], words: str
) -> None:
    account = broker.open_account("U1", "One").account_id
    broker.create_watchlist(account, "w", ["AAPL"])

    with pytest.raises(error, match=words):
        call(broker, account)  # type: ignore[operator]

    assert [(w.name, w.symbols) for w in broker.watchlists(account)] == [("w", ("AAPL",))]


def test_many_threads_edit_one_accounts_watchlists_while_prices_move(broker: Brokerage) -> None:
    broker.list_universe()
    account = broker.open_account("U1", "One").account_id
    symbols = [q.symbol for q in broker.stocks()][:40]
    start = threading.Barrier(8)

    def edit(n: int) -> None:
        start.wait()
        if n == 0:
            for step in range(100):
                broker.update_price("AAPL", f"{150 + step % 7}.00")
            return
        name = f"list {n}"
        broker.create_watchlist(account, name, symbols[:5])
        for symbol in symbols:
            broker.add_to_watchlist(account, name, symbol)
        for symbol in symbols[::2]:
            broker.remove_from_watchlist(account, name, symbol)
        broker.rename_watchlist(account, name, f"done {n}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(edit, range(8)))

    lists = broker.watchlists(account)
    assert sorted(w.name for w in lists) == [f"done {n}" for n in range(1, 8)]
    assert all(w.symbols == tuple(symbols[1::2]) for w in lists)
    view = broker.watchlist(account, "done 1")
    assert [q.symbol for q in view.quotes] == symbols[1::2]

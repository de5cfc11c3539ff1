from __future__ import annotations

import pytest

from engine.errors import DuplicateError, UnknownWatchlistError, ValidationError
from engine.ids import Symbol
from engine.watchlists import Watchlists, parse_watchlist_name

AAPL, MSFT, TSLA = Symbol("AAPL"), Symbol("MSFT"), Symbol("TSLA")


def test_a_watchlist_keeps_its_symbols_once_in_the_order_added() -> None:
    lists = Watchlists()

    lists.create("tech", [AAPL, MSFT, AAPL])
    lists.add("tech", TSLA)
    lists.add("tech", MSFT)

    assert lists.get("tech").symbols == (AAPL, MSFT, TSLA)


def test_rename_keeps_the_symbols_and_delete_forgets_the_list() -> None:
    lists = Watchlists()
    lists.create("tech", [AAPL])

    renamed = lists.rename("tech", "faang")
    lists.create("cars", [TSLA])
    lists.delete("cars")

    assert renamed.symbols == (AAPL,)
    assert [w.name for w in lists.all()] == ["faang"]
    with pytest.raises(UnknownWatchlistError, match="tech"):
        lists.get("tech")


def test_clashes_and_missing_items_are_clear_errors() -> None:
    lists = Watchlists()
    lists.create("a", [AAPL])
    lists.create("b")

    with pytest.raises(DuplicateError, match="b"):
        lists.create("b")
    with pytest.raises(DuplicateError, match="b"):
        lists.rename("a", "b")
    with pytest.raises(ValidationError, match="not in watchlist"):
        lists.remove("a", MSFT)
    with pytest.raises(UnknownWatchlistError):
        lists.add("c", AAPL)
    with pytest.raises(ValidationError, match="name"):
        parse_watchlist_name("   ")

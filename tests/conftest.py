from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway import Brokerage


@pytest.fixture(params=["mn", "threads"])
def broker(request: pytest.FixtureRequest) -> Iterator[Brokerage]:
    """A running brokerage with AAPL (market mode, $150) and BOOK (book mode, $100) listed,
    on each runtime in turn."""
    with Brokerage(timeout=20, runtime=request.param) as b:
        b.list_stock("AAPL", "Apple Inc.", "150.00")
        b.list_stock("BOOK", "Book Traded Co.", "100.00", mode="book")
        yield b
        b.audit()

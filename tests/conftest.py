from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway import Brokerage


@pytest.fixture
def broker() -> Iterator[Brokerage]:
    """A running brokerage with AAPL (market mode, $150) and BOOK (book mode, $100) listed."""
    with Brokerage(timeout=20) as b:
        b.list_stock("AAPL", "Apple Inc.", "150.00")
        b.list_stock("BOOK", "Book Traded Co.", "100.00", mode="book")
        yield b
        b.audit()

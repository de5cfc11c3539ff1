"""How long listing orders takes in an account with a long history: a listing's cost must not
grow with the history, whether the account's window answers it or the store's indexes do.

    python -m loadtest.history --orders 100000

Fills one account with refused orders (kept in its history) on a fresh SQLite store, leaves one
order open, then times each listing the API makes: all orders (from the store), open orders,
the newest 50 (as `GET /v2/orders` asks for them: from the account's window), the oldest 50
and the 50 after the 50,000th (by cursor; both from the store), and the same from memory only
(no store: the window is all there is).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gateway import Brokerage

OPEN = ["pending", "partially_filled"]


def _timed(label: str, call: Callable[[], list[Any]]) -> None:
    started = time.perf_counter()
    found = call()
    elapsed = (time.perf_counter() - started) * 1000
    print(f"{label:<34} {len(found):>8} orders {elapsed:9.1f} ms")


def main(argv: Sequence[str] | None = None) -> int:
    """Build the history and print each listing's time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000, help="orders in the history")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="brokerage-history-"))
    try:
        print("with a store (SQLite):")
        _run(args.orders, f"sqlite:///{folder}/brokerage.db")
        print("in memory (the newest 1,000 finished orders kept):")
        _run(args.orders, None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def _run(orders: int, store: str | None) -> None:
    with Brokerage(store=store, durability="os") as broker:
        broker.list_stock("BK", "Book", "100", mode="book")
        account = broker.open_account("U1", "One", initial_deposit="1000").account_id
        for start in range(0, orders, 5_000):  # each refused: too dear for the account
            batch = min(5_000, orders - start)
            pending = [
                broker.place_order_async(account, "BK", "buy", 1_000, "limit", "100")
                for _ in range(batch)
            ]
            for future in pending:
                future.get(timeout=60)
        broker.place_order(account, "BK", "buy", 1, "limit", "99")
        _timed("all orders", lambda: broker.orders(account))
        _timed("open orders", lambda: broker.orders(account, OPEN))
        _timed("open, newest 50", lambda: broker.orders(account, OPEN, newest_first=True, limit=50))
        _timed("all, newest 50", lambda: broker.orders(account, newest_first=True, limit=50))
        _timed("all, oldest 50", lambda: broker.orders(account, limit=50))
        middle = f"O-{orders // 2:06d}"
        _timed(
            "50 after the middle (cursor)", lambda: broker.orders(account, limit=50, cursor=middle)
        )


if __name__ == "__main__":
    raise SystemExit(main())

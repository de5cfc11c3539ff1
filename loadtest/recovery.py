"""How long a brokerage takes to rebuild itself from a journal with no snapshot.

    python -m loadtest.recovery --orders 300000   # about 1,000,000 facts

Places `--orders` book-mode orders (half resting limits near the price, half IOC orders that
cross them) from one thread over 100 accounts into a fresh SQLite store, closes it, then times
`Brokerage(store=...).start()`: the whole journal replayed, every actor started. The audit runs
on the recovered brokerage.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from gateway import Brokerage


def main(argv: list[str] | None = None) -> None:
    """Build a journal, then time its recovery."""
    parser = argparse.ArgumentParser(prog="python -m loadtest.recovery", description=__doc__)
    parser.add_argument("--orders", type=int, default=300_000, help="orders to journal")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="brokerage-recovery-"))
    store = f"sqlite:///{folder}/journal.db"
    try:
        with Brokerage(store=store, durability="os", max_in_flight=1_000_000) as broker:
            broker.list_stock("BK", "Book Co", "100", mode="book")
            ids = [
                broker.open_account(f"U{n}", f"User {n}", initial_deposit="100000000").account_id
                for n in range(100)
            ]
            for account in ids:
                broker.grant_shares(account, "BK", 10_000_000, "100")
            rng = random.Random(1)
            began = time.perf_counter()
            waiting = []
            for _ in range(args.orders):
                side = rng.choice(("buy", "sell"))
                quantity = rng.randint(1, 10)
                order: tuple[str, ...]
                if rng.random() < 0.5:
                    price = f"{100 + rng.randint(-5, 5) / 100:.2f}"
                    order = (rng.choice(ids), "BK", side, str(quantity), "limit", price)
                else:
                    price = "100.10" if side == "buy" else "99.90"
                    order = (rng.choice(ids), "BK", side, str(quantity), "limit", price, "ioc")
                waiting.append(broker.place_order_async(*order))
                if len(waiting) >= 2_000:
                    for future in waiting:
                        future.get(timeout=120)
                    waiting = []
            for future in waiting:
                future.get(timeout=120)
            journal = broker._journal
            facts = 0 if journal is None else journal.written
            placed = time.perf_counter() - began
        began = time.perf_counter()
        with Brokerage(store=store) as recovered:
            recovered_in = time.perf_counter() - began
            recovered.audit()
        print(
            f"{args.orders:,} orders ({facts:,} facts) journaled in {placed:.1f} s; "
            f"recovered in {recovered_in:.2f} s ({facts / recovered_in:,.0f} facts/s); audit passed"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

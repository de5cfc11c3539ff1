"""How long a brokerage takes to rebuild itself from its journal: with no snapshot, from a
snapshot plus the journal after it, and `brokerage serve` until it answers `/api/health`.

    python -m loadtest.recovery --orders 300000 --tail 30000   # about 1,100,000 facts

Places `--orders` book-mode orders (half resting limits near the price, half IOC orders that
cross them) from one thread over 100 accounts into a fresh SQLite store and stops cleanly (a
snapshot), then `--tail` more and stops again. Then it times, each on the same journal:
`Brokerage(store=...).start()` with no snapshot (the whole journal replayed, every actor
started), the same from the first snapshot (the tail replayed), and `brokerage serve --store`
from that snapshot until `/api/health` answers. The audit runs on each recovered brokerage.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gateway import Brokerage


def journal_orders(store: str, orders: int, seed: int) -> int:
    """Place `orders` book-mode orders; return the facts journaled."""
    with Brokerage(
        store=store,
        durability="os",
        max_in_flight=1_000_000,
        snapshot_facts=None,
        snapshot_seconds=None,
    ) as broker:
        if not broker.stocks():
            broker.list_stock("BK", "Book Co", "100", mode="book")
        ids = broker.accounts()
        for n in range(len(ids), 100):
            opened = broker.open_account(f"U{n}", f"User {n}", initial_deposit="100000000")
            broker.grant_shares(opened.account_id, "BK", 10_000_000, "100")
            ids.append(opened.account_id)
        rng = random.Random(seed)
        waiting = []
        for _ in range(orders):
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
        return 0 if journal is None else journal.written


def timed_start(store: str) -> tuple[float, int]:
    """Seconds `start()` takes, and the facts it replayed; the audit runs after."""
    began = time.perf_counter()
    recovered = Brokerage(store=store, snapshot_facts=None, snapshot_seconds=None).start()
    try:
        seconds = time.perf_counter() - began
        assert recovered.recovery is not None
        replayed = recovered.recovery.replayed
        recovered.audit()
    finally:
        recovered.close(snapshot=False)  # the next measurement starts from the same snapshot
    return seconds, replayed


def timed_serve(store: str) -> float:
    """Seconds from starting `brokerage serve --store` until `/api/health` answers 200."""
    import httpx  # noqa: PLC0415

    from gateway.server.app import free_port  # noqa: PLC0415

    port = free_port()
    began = time.perf_counter()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "gateway.apps.cli", "serve", "--store", store),
            *("--port", str(port), "--feed-interval", "0", "--admin-secret", "x"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                    return time.perf_counter() - began
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                raise SystemExit("brokerage serve exited before it answered")
            time.sleep(0.02)
    finally:
        server.kill()
        server.wait()


def main(argv: list[str] | None = None) -> None:
    """Build a journal, then time its recoveries."""
    parser = argparse.ArgumentParser(prog="python -m loadtest.recovery", description=__doc__)
    parser.add_argument("--orders", type=int, default=300_000, help="orders before the snapshot")
    parser.add_argument("--tail", type=int, default=30_000, help="orders after it")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="brokerage-recovery-"))
    path = folder / "journal.db"
    store = f"sqlite:///{path}"
    snapshots = Path(f"{path}-snapshots")
    try:
        began = time.perf_counter()
        facts = journal_orders(store, args.orders, 1)
        first = folder / "first-snapshot"
        shutil.copyfile(snapshots, first)  # a clean stop wrote it; checkpointed, no -wal left
        facts += journal_orders(store, args.tail, 2)
        placed = time.perf_counter() - began
        print(f"{args.orders + args.tail:,} orders ({facts:,} facts) journaled in {placed:.1f} s")

        for end in ("", "-wal", "-shm"):
            Path(f"{snapshots}{end}").unlink(missing_ok=True)
        seconds, replayed = timed_start(store)
        print(
            f"no snapshot: {replayed:,} facts replayed, started in {seconds:.2f} s "
            f"({replayed / seconds:,.0f} facts/s); audit passed"
        )

        shutil.copyfile(first, snapshots)
        seconds, replayed = timed_start(store)
        print(
            f"snapshot + tail: {replayed:,} facts replayed, started in {seconds:.2f} s; "
            f"audit passed"
        )
        shutil.copyfile(first, snapshots)
        print(
            f"brokerage serve from the snapshot + tail: /api/health answered "
            f"{timed_serve(store):.2f} s after its start"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

"""A brokerage with a store that trades from several threads until it is killed.

    python -m tests.durability.child STORE ACKS SEED

Every operation the engine acknowledges is written to ACKS (one JSON line, flushed) after the
answer: the parent kills this process with SIGKILL at a random moment, reopens the store and
checks that everything acknowledged is there.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import threading
from typing import Any

from engine.errors import BrokerageError
from gateway import Brokerage

THREADS = 4
FEES = "per_order=0.5,per_share=0.01,minimum=1,sec_per_million=27.80"
"""The fees it trades under (the parent reopens the store with them too)."""


def main(store: str, acks_path: str, seed: int) -> None:
    acks = open(acks_path, "a", buffering=1)  # noqa: SIM115  (open until killed)
    lock = threading.Lock()

    def ack(**entry: object) -> None:
        with lock:
            acks.write(json.dumps(entry) + "\n")
            acks.flush()

    # snapshots every few hundred facts: each restart recovers from one plus the journal after
    with Brokerage(store=store, durability="fsync", snapshot_facts=300, fees=FEES) as broker:
        if not broker.stocks():
            broker.list_stock("MKT", "Market Co", "100")
            broker.list_stock("BK", "Book Co", "100", mode="book")
        accounts = broker.accounts()
        for n in range(len(accounts), 6):  # the last three on margin: they sell short
            margin = n >= 3
            opened = broker.open_account(
                f"U{seed}-{n}", f"Trader {n}", initial_deposit="50000", margin=margin
            )
            if not margin:
                broker.grant_shares(opened.account_id, "BK", 200, "100")
            accounts.append(opened.account_id)
        ack(kind="ready", accounts=accounts, margin=accounts[3:])

        def trade(n: int) -> None:
            rng = random.Random(seed * 100 + n)
            mine: list[str] = []
            legs: list[str] = []  # brackets' exit legs, held or working, to move
            while True:
                account = rng.choice(accounts)
                roll = rng.random()
                try:
                    if roll < 0.1:
                        balance = broker.deposit(account, "10")
                        ack(kind="cash", account=account, cash=str(balance.cash))
                    elif roll < 0.15:
                        broker.withdraw(account, "5")
                        ack(kind="cash", account=account)
                    elif roll < 0.3 and mine:
                        cancelled = broker.cancel_order(mine.pop(rng.randrange(len(mine))))
                        ack(kind="cancel", order=cancelled.order_id)
                    elif roll < 0.35:
                        broker.update_price("MKT", str(rng.randint(95, 105)))
                        ack(kind="price")
                    elif roll < 0.42 and mine:
                        old = mine.pop(rng.randrange(len(mine)))
                        new = broker.replace_order(
                            old, rng.randint(1, 10), str(rng.randint(97, 103))
                        )
                        ack(kind="replace", old=old, new=new.order_id, status=new.status.value)
                        if new.status.value in ("pending", "partially_filled"):
                            mine.append(new.order_id)
                    elif roll < 0.5:  # stops, which the moves and the trades trigger
                        symbol = rng.choice(["MKT", "BK"])
                        side = rng.choice(["buy", "sell"])
                        away = rng.randint(1, 3) * (1 if side == "buy" else -1)
                        terms: dict[str, Any] = (
                            {"trail_price": str(rng.randint(1, 3))}
                            if rng.random() < 0.5
                            else {"stop_price": str(100 + away)}
                        )
                        kind = "trailing_stop" if "trail_price" in terms else "stop"
                        order = broker.place_order(
                            account, symbol, side, rng.randint(1, 5), kind, **terms
                        )
                        ack(kind="order", order=order.order_id, status=order.status.value)
                        if order.status.value in ("pending", "partially_filled"):
                            mine.append(order.order_id)
                    elif roll < 0.55:  # a bracket: its legs work once the entry fills
                        order = broker.place_order(
                            account,
                            "MKT",
                            "buy",
                            rng.randint(1, 5),
                            order_class="bracket",
                            take_profit={"limit_price": str(rng.randint(104, 106))},
                            stop_loss={"stop_price": str(rng.randint(94, 96))},
                        )
                        ack(
                            kind="bracket",
                            order=order.order_id,
                            legs=list(order.legs),
                            status=order.status.value,
                        )
                        legs.extend(order.legs)
                    elif roll < 0.6 and legs:  # a leg's price moves: the new leg in its place
                        old = legs.pop(rng.randrange(len(legs)))
                        if broker.get_order(old).stop_price is not None:
                            new = broker.replace_order(old, stop_price=str(rng.randint(94, 96)))
                        else:
                            new = broker.replace_order(old, limit_price=str(rng.randint(104, 106)))
                        ack(kind="replace", old=old, new=new.order_id, status=new.status.value)
                        legs.append(new.order_id)
                    elif roll < 0.61:  # a paper account starts afresh (it may be busy: refused)
                        broker.reset_account(account, "50000")
                        ack(kind="reset", account=account)
                    else:
                        symbol = rng.choice(["MKT", "BK"])
                        side = rng.choice(["buy", "sell"])
                        price = str(rng.randint(97, 103))
                        order = broker.place_order(
                            account, symbol, side, rng.randint(1, 10), "limit", price
                        )
                        ack(kind="order", order=order.order_id, status=order.status.value)
                        if order.status.value in ("pending", "partially_filled"):
                            mine.append(order.order_id)
                except BrokerageError:
                    continue

        for n in range(THREADS):
            threading.Thread(target=trade, args=(n,), daemon=True).start()
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))

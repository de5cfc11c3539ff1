"""What one plain order costs, in CPU instructions, on the mn runtime.

    python -m loadtest.order_path                 # counts under valgrind's callgrind
    python -m loadtest.order_path --place N       # only places N rounds (what is counted)

A round is one resting sell limit, one buy limit that crosses it (book mode) and one market
buy (market mode), each placed and answered in turn. Instructions, which callgrind counts the
same from run to run whatever else the machine does, are measured at 100 and at 300 rounds;
the difference over 200 rounds is what a round costs, start-up and imports cancelled out.
Timing the same code swings by more than the changes it is meant to show.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys

from engine.audit import AuditReport
from gateway import Brokerage

SIZES = (100, 300)


def place(rounds: int) -> AuditReport:
    """Place `rounds` rounds of plain orders on a fresh embedded brokerage; return its audit."""
    with Brokerage(runtime="mn") as broker:
        broker.list_stock("BK", "Book Co", "100", mode="book")
        broker.list_stock("MK", "Market Co", "100")
        buyer = broker.open_account("U1", "Buyer", initial_deposit="100000000").account_id
        seller = broker.open_account("U2", "Seller", initial_deposit="100000000").account_id
        broker.grant_shares(seller, "BK", 1_000_000, "100")
        for _ in range(rounds):
            broker.place_order(seller, "BK", "sell", 1, "limit", "100")
            broker.place_order(buyer, "BK", "buy", 1, "limit", "100")
            broker.place_order(buyer, "MK", "buy", 1, "market")
        return broker.audit()


def instructions(rounds: int) -> int:
    """What a run of `rounds` rounds costs, whole process, as callgrind counts it."""
    found = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "loadtest.order_path",
            "--place",
            str(rounds),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Collected : (\d+)", found.stderr)
    if match is None:
        raise RuntimeError(f"callgrind printed no count:\n{found.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--place", type=int, help="only place this many rounds")
    args = parser.parse_args()
    if args.place is not None:
        place(args.place)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed (apt-get install valgrind)")
    small, large = (instructions(n) for n in SIZES)
    per_round = (large - small) // (SIZES[1] - SIZES[0])
    print(f"{per_round:,} instructions per round (3 orders), {per_round // 3:,} per order")


if __name__ == "__main__":
    main()

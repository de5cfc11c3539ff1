"""Acknowledged means durable: a brokerage with a store rebuilds itself from its journal, after
a clean close or a SIGKILL, with everything it acknowledged, nothing half-applied, and ids that
collide with none it issued before."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import JournalFailedError
from engine.journal import FACTS, Fact, Matched, State, decode, encode
from engine.orders import CancelReason
from gateway import Brokerage
from gateway.bootstrap import stop_engine
from gateway.brokerage import DEFAULT_HISTORY_WINDOW, Recovery
from gateway.stores import open_journal
from gateway.stores.journal import GroupCommitJournal, batch_text
from tests.durability.child import FEES
from tests.integration.test_concurrency import run_together

ROOT = Path(__file__).resolve().parents[2]
CRASHES = int(os.environ.get("CHAOS_ROUNDS", "3"))


@given(st.one_of(*(st.from_type(kind) for kind in FACTS.values())))
def test_every_fact_round_trips_through_json_exactly(fact: Fact) -> None:
    """As the journal writes a batch (orjson, or the standard library for what it refuses,
    such as a lone surrogate) and as a replay reads it."""
    assert decode(json.loads(json.dumps(encode(fact)))) == fact
    assert decode(json.loads(batch_text([encode(fact)]))[0]) == fact


def visible(broker: Brokerage, accounts: list[str]) -> list[Any]:
    """Everything a user can read back."""
    seen: list[Any] = [broker.stocks()]
    for symbol in ("MKT", "BK"):
        seen.append(broker.depth(symbol, 100))
        seen.append(broker.trades(symbol, 1000))
    for account in accounts:
        seen += [
            broker.balance(account),
            broker.portfolio(account),
            broker.orders(account),
            broker.transactions(account),
            broker.watchlists(account),
            broker.alerts(account),
        ]
    return seen


def live_state(broker: Brokerage) -> State:
    """The live actors' accounts and markets, as a `State` (read once nothing is in flight)."""
    gateway: Any = broker._gateway
    actor = gateway._actor_weakref()
    state = State()
    for account_id, ref in actor.accounts.items():
        state.accounts[account_id] = ref._actor_weakref().account
    for symbol, ref in actor.symbols.items():
        symbol_actor = ref._actor_weakref()
        state.markets[symbol] = symbol_actor.market
        state.alerts[symbol] = symbol_actor.alerts
    return state


def replayed(store: str, window: int | None = DEFAULT_HISTORY_WINDOW) -> State:
    """The store's journal replayed, each account keeping `window` finished orders."""
    journal = open_journal(store, "os")
    state = State(history_window=window)
    for fact in journal.facts():
        state.apply(fact)
    state.finish()
    journal.close()
    return state


def trade_a_while(broker: Brokerage, *, listed: bool = False) -> list[str]:
    """Six threads trade for a while (four new accounts; the two stocks listed unless
    `listed` already)."""
    if not listed:
        broker.list_stock("MKT", "Market Co", "100")
        broker.list_stock("BK", "Book Co", "100", mode="book")
    tag = len(broker.accounts())
    accounts: list[str] = [
        broker.open_account(f"U{tag}-{n}", f"Trader {n}", initial_deposit="20000").account_id
        for n in range(4)
    ]
    for account in accounts:
        broker.grant_shares(account, "BK", 100, "95.50")
    broker.create_watchlist(accounts[0], f"mine{tag}", ["MKT", "BK"])
    broker.add_alert(accounts[1], "MKT", "above", "103", one_shot=False)
    broker.add_alert(accounts[1], "MKT", "below", "96")

    def trade(n: int) -> None:
        rng = random.Random(n)
        resting: list[str] = []
        for _ in range(40):
            account = rng.choice(accounts)
            roll = rng.random()
            if roll < 0.1 and resting:
                with contextlib.suppress(Exception):  # filled meanwhile
                    broker.cancel_order(resting.pop())
            elif roll < 0.15 and resting:
                with contextlib.suppress(Exception):  # finished or filled past it meanwhile
                    new = broker.replace_order(
                        resting.pop(), rng.randint(1, 8), f"{rng.randint(9700, 10300) / 100:.2f}"
                    )
                    if new.status.value == "pending":
                        resting.append(new.order_id)
            elif roll < 0.25:
                broker.update_price("MKT", str(rng.randint(95, 105)))
            elif roll < 0.3:
                broker.deposit(account, "12.34")
            elif roll < 0.45:  # stops of each kind, which the moves and trades trigger
                side = rng.choice(["buy", "sell"])
                kind = rng.choice(["stop", "stop_limit", "trailing_stop"])
                away = rng.randint(50, 300) * (1 if side == "buy" else -1)
                terms: dict[str, Any] = (
                    {"trail_percent": f"{rng.randint(50, 300) / 100:.2f}"}
                    if kind == "trailing_stop"
                    else {"stop_price": f"{(10000 + away) / 100:.2f}"}
                )
                limit = f"{(10000 + away * 2) / 100:.2f}" if kind == "stop_limit" else None
                order = broker.place_order(
                    account,
                    rng.choice(["MKT", "BK"]),
                    side,
                    rng.randint(1, 5),
                    kind,
                    limit,
                    rng.choice(["gtc", "day"]),
                    **terms,
                )
                if order.status.value == "pending":
                    resting.append(order.order_id)
            else:
                order = broker.place_order(
                    account,
                    rng.choice(["MKT", "BK"]),
                    rng.choice(["buy", "sell"]),
                    rng.randint(1, 8),
                    "limit",
                    f"{rng.randint(9700, 10300) / 100:.2f}",
                    rng.choice(["gtc", "day", "ioc"]),
                )
                if order.status.value == "pending":
                    resting.append(order.order_id)

    run_together(trade, threads=6)
    broker.expire_day_orders()
    return accounts


@pytest.mark.parametrize(
    ("durability", "fees", "slippage"),
    [
        ("fsync", None, None),
        (
            "os",
            "per_order=0.5,per_share=0.01,minimum=1,sec_per_million=27.80",
            "spread_bps=10,impact_bps=20,jitter_percent=50,seed=5",
        ),
    ],
)
def test_a_reopened_brokerage_holds_everything_it_acknowledged(
    store: str, durability: str, fees: str | None, slippage: str | None
) -> None:
    """Many threads trade on a store (with fees and slippage, or none); the replayed journal
    gives the very state the live actors hold (digest), and a reopened brokerage answers every
    read as before."""
    options: dict[str, Any] = {"durability": durability, "fees": fees, "slippage": slippage}
    with Brokerage(store=store, **options) as broker:
        accounts = trade_a_while(broker)
        before = visible(broker, accounts)
        live = live_state(broker).digest()
        report = broker.audit()
        assert (report.fees > 0) == (fees is not None)
    assert replayed(store).digest() == live
    assert replayed(store).digest() == live  # the same journal always gives the same state
    with Brokerage(store=store, **options) as again:
        assert again.recovery == Recovery(from_snapshot=True, replayed=0)  # a clean stop's
        assert visible(again, accounts) == before
        assert live_state(again).digest() == live
        assert again.audit() == report
        order = again.place_order(accounts[0], "MKT", "buy", 1)
        taken = {o.order_id for a in accounts for o in again.orders(a)} - {order.order_id}
        assert order.order_id not in taken
        # above every id issued (a refused replace spends one that no listing shows)
        assert int(order.order_id[2:]) > max(int(t[2:]) for t in taken)


def test_a_crash_after_a_snapshot_replays_only_the_journal_after_it(store: str) -> None:
    """A clean stop leaves a snapshot; trading goes on, then the process dies (no snapshot):
    the next start loads the snapshot and replays only what came after, to the same state."""
    with Brokerage(store=store) as broker:
        accounts = trade_a_while(broker)
    broker = Brokerage(store=store).start()
    for account in accounts:
        broker.deposit(account, "1.00")
        broker.place_order(account, "BK", "buy", 1, "limit", "99.00")
    broker.update_price("MKT", "101.50")
    live = live_state(broker).digest()
    before = visible(broker, accounts)
    engine, journal = broker._engine, broker._journal
    assert engine is not None
    assert journal is not None
    stop_engine(engine, 10)  # the process "dies": the journal is flushed, no snapshot taken
    journal.close()
    broker._engine = broker._journal = None
    with Brokerage(store=store) as again:
        assert again.recovery is not None
        assert again.recovery.from_snapshot
        assert 0 < again.recovery.replayed < 40
        assert live_state(again).digest() == live
        assert visible(again, accounts) == before
        again.audit()


@pytest.mark.parametrize("snapshot", [True, False])
def test_stops_waiting_across_a_restart_trigger_and_settle_after_it(
    store: str, snapshot: bool
) -> None:
    """Stops placed before a restart (recovered from a snapshot, or from the journal alone)
    still reach their accounts when a move or a trade triggers them after it."""
    with Brokerage(store=store, snapshot_facts=None, snapshot_seconds=None) as broker:
        broker.list_stock("MKT", "Market Co", "100")
        broker.list_stock("BK", "Book Co", "100", mode="book")
        ann = broker.open_account("U1", "Ann", initial_deposit="10000").account_id
        bob = broker.open_account("U2", "Bob", initial_deposit="10000").account_id
        broker.grant_shares(bob, "BK", 10, "100")
        stops = [
            broker.place_order(ann, "MKT", "buy", 2, "stop", stop_price="102"),
            broker.place_order(ann, "MKT", "buy", 1, "trailing_stop", trail_price="1"),
            broker.place_order(ann, "BK", "buy", 1, "stop", stop_price="101"),
        ]
        broker.place_order(bob, "BK", "sell", 5, "limit", "101")
        if not snapshot:  # the process dies: no snapshot, the journal holds it all
            engine, journal = broker._engine, broker._journal
            assert engine is not None
            assert journal is not None
            stop_engine(engine, 10)
            journal.close()
            broker._engine = broker._journal = None
    with Brokerage(store=store) as again:
        assert again.recovery is not None
        assert again.recovery.from_snapshot is snapshot
        again.update_price("MKT", "103")
        again.place_order(ann, "BK", "buy", 1, "limit", "101")  # trades at 101: the BK stop
        for stop in stops:
            found = again.get_order(stop.order_id)
            assert found.status.value == "executed", found
            assert found.triggered_at is not None
        held = {h.symbol: h.quantity for h in again.portfolio(ann).holdings}
        assert held == {"MKT": 3, "BK": 2}
        again.audit()


def test_an_answered_bracket_has_its_legs_in_the_journal(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer to a bracket whose entry filled says its legs work: by then the journal
    holds their book's fact of them, so a crash right after the answer cannot lose them.
    Each book's fact here is slow to come (50 ms), so the legs' is in a later commit than the
    entry's."""
    append = GroupCommitJournal.append

    def slow_matches(self: GroupCommitJournal, fact: Any, archive: Any = ()) -> Any:
        if isinstance(fact, Matched):
            time.sleep(0.05)
        return append(self, fact, archive)

    monkeypatch.setattr(GroupCommitJournal, "append", slow_matches)
    with Brokerage(store=store, durability="fsync") as broker:
        broker.list_stock("MKT", "Market Co", "100")
        account = broker.open_account("U1", "Ann", initial_deposit="10000").account_id
        for _ in range(5):
            entry = broker.place_order(
                account,
                "MKT",
                "buy",
                2,
                order_class="bracket",
                take_profit={"limit_price": "110"},
                stop_loss={"stop_price": "90"},
            )
            journal = open_journal(store, "os")  # another reader, as a restart would be
            matched = {f.order_id for f in journal.facts() if isinstance(f, Matched)}
            journal.close()
            assert entry.legs[0] in matched, entry


def test_a_journal_that_cannot_be_written_stops_every_change_and_reads_go_on(
    tmp_path: Path,
) -> None:
    """When a write fails (here the store is pulled away), the calls waiting on it fail, and
    every later change is refused at once (what it changed could not be kept); reads answer."""
    with Brokerage(store=f"sqlite:///{tmp_path}/brokerage.db") as broker:
        broker.list_stock("MKT", "Market Co", "100")
        account = broker.open_account("U1", "Ann", initial_deposit="100").account_id
        journal = broker._journal
        assert journal is not None
        journal._db.close()
        with pytest.raises(JournalFailedError, match="journal could not be written"):
            broker.deposit(account, "1")
        with pytest.raises(JournalFailedError):
            broker.place_order(account, "MKT", "buy", 1)
        with pytest.raises(JournalFailedError):
            broker.open_account("U2", "Bob")
        assert broker.balance(account).cash >= Decimal("100")
        assert broker.orders(account) == []
    # the close wrote no snapshot of a state ahead of its journal: the store holds what it held
    with Brokerage(store=f"sqlite:///{tmp_path}/brokerage.db") as again:
        assert again.recovery is not None
        assert not again.recovery.from_snapshot
        assert again.balance(account).cash == Decimal("100.00")


def test_no_store_keeps_nothing_and_a_bad_store_is_refused(tmp_path: Path) -> None:
    with Brokerage() as broker:
        broker.list_stock("MKT", "Market Co", "100")
    with Brokerage() as broker:
        assert broker.stocks() == []
    with pytest.raises(ValueError, match="store"):
        Brokerage(store="postgres-or-what://x")
    with pytest.raises(ValueError, match="durability"):
        Brokerage(store=f"sqlite:///{tmp_path}/x.db", durability="maybe")


def test_an_order_accepted_but_never_matched_is_cancelled_as_interrupted(store: str) -> None:
    """A journal that ends between an order's acceptance and its match (a crash in between):
    the order is cancelled INTERRUPTED and its reservation released, once and for good."""
    with Brokerage(store=store) as broker:
        broker.list_stock("MKT", "Market Co", "100")
        account = broker.open_account("U1", "Ann", initial_deposit="1000").account_id
        resting = broker.place_order(account, "MKT", "buy", 2, "limit", "90")
    drop_matches(store)
    for _ in range(2):
        with Brokerage(store=store) as broker:
            order = broker.get_order(resting.order_id)
            assert order.status.value == "cancelled"
            assert order.cancel_reason is not None
            assert order.cancel_reason.value == "interrupted"
            assert broker.balance(account).reserved == 0
            broker.audit()


def drop_matches(store: str) -> None:
    """Take every `Matched` fact out of the journal, as if the process died before each (so
    without the snapshot of a clean stop)."""
    journal = open_journal(store, "fsync")
    db: Any = journal._db
    table, mark = ("journal", "?") if store.startswith("sqlite") else ("brokerage_journal", "%s")
    if store.startswith("sqlite"):
        for end in ("", "-wal", "-shm"):  # the snapshots' own file
            Path(store.removeprefix("sqlite:///") + "-snapshots" + end).unlink(missing_ok=True)
    else:
        db.execute("DELETE FROM brokerage_snapshots")
    rows = [(seq, json.loads(text)) for seq, text in db.execute(f"SELECT seq, facts FROM {table}")]
    for seq, facts in rows:
        kept = [fact for fact in facts if fact[0] != "Matched"]
        db.execute(f"UPDATE {table} SET facts = {mark} WHERE seq = {mark}", (json.dumps(kept), seq))
    journal.close()


def acknowledged(path: Path) -> list[dict[str, Any]]:
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:  # the line the kill cut short
            continue
    return entries


def test_sigkill_at_random_moments_loses_nothing_acknowledged(store: str, tmp_path: Path) -> None:
    """A child process trades from four threads on a store and is killed with SIGKILL at a
    random moment, `CHAOS_ROUNDS` times (3 here; `make chaos` runs more). After each restart
    every acknowledged order, cancel and cash movement is there, nothing is half-applied
    (the audit reconciles every account with its ledger and the book with the accounts), and
    new ids collide with none issued before."""
    rng = random.Random(7)
    recoveries = []
    for round_ in range(CRASHES):
        acks = tmp_path / f"acks-{round_}.jsonl"
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.durability.child", store, str(acks), str(round_)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while not (acks.exists() and '"ready"' in acks.read_text()):
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline, "the child never got ready"
            time.sleep(0.05)
        time.sleep(rng.uniform(0.3, 1.5))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        entries = acknowledged(acks)
        orders = {e["order"]: e for e in entries if e["kind"] == "order"}
        cancels = {e["order"] for e in entries if e["kind"] == "cancel"}
        replaces = [e for e in entries if e["kind"] == "replace"]
        assert orders, "the child acknowledged no order before it was killed"
        with Brokerage(store=store, fees=FEES) as broker:
            recoveries.append(broker.recovery)
            report = broker.audit()  # raises on anything half-applied
            assert report.reserved_cash >= 0
            for order_id, entry in orders.items():
                found = broker.get_order(order_id)
                if entry["status"] in ("executed", "rejected", "cancelled"):
                    assert found.status.value == entry["status"], (order_id, entry, found)
            for order_id in cancels:
                assert broker.get_order(order_id).status.value == "cancelled"
            for entry in entries:  # an answered bracket's legs came back working or done
                if entry["kind"] == "bracket" and entry["status"] == "executed":
                    for leg in entry["legs"]:
                        found = broker.get_order(leg)
                        assert found.cancel_reason is not CancelReason.INTERRUPTED, found
            resets = Counter(e["account"] for e in entries if e["kind"] == "reset")
            for account, count in resets.items():  # each acknowledged reset is kept
                assert len(broker.transactions(account, kind="reset")) >= count, account
            for entry in replaces:  # each acknowledged replace happened, or was refused
                if entry["status"] != "rejected":
                    assert broker.get_order(entry["old"]).replaced_by == entry["new"], entry
                    assert broker.get_order(entry["new"]).replaces == entry["old"], entry
            accounts = broker.accounts()
            margin = {a for e in entries if e["kind"] == "ready" for a in e["margin"]}
            assert margin == set(broker.accounts(margin_only=True))  # shorts and all
            issued = {o.order_id for a in accounts for o in broker.orders(a)}
            assert set(orders) <= issued
            fresh = broker.place_order(accounts[0], "MKT", "buy", 1, "limit", "1")
            assert fresh.order_id not in issued
            broker.cancel_order(fresh.order_id)
    # the child's snapshots, taken while it traded: a recovery from one plus the journal after
    assert any(r is not None and r.from_snapshot and r.replayed for r in recoveries), recoveries


def test_a_torn_last_write_recovers_to_the_last_whole_batch(tmp_path: Path) -> None:
    """The files as a power cut might leave them: the write-ahead log's last frame cut short.
    The store comes back at the batch before (SQLite checks each frame's checksum), the
    engine recovers to exactly that, and the audit passes."""
    live = tmp_path / "live"
    store = f"sqlite:///{live}/brokerage.db"
    with Brokerage(store=store, snapshot_facts=None, snapshot_seconds=None) as broker:
        accounts = trade_a_while(broker)
        broker.deposit(accounts[0], "1.00")
        image = tmp_path / "image"
        image.mkdir()
        for name in ("brokerage.db", "brokerage.db-wal"):  # the files as they are on disk now
            shutil.copyfile(live / name, image / name)
        cash = broker.balance(accounts[0]).cash
    wal = image / "brokerage.db-wal"
    with wal.open("r+b") as torn:
        torn.truncate(wal.stat().st_size - 100)
    reference = tmp_path / "reference"
    shutil.copytree(image, reference)
    whole = replayed(f"sqlite:///{reference}/brokerage.db")  # what the torn files still hold
    with Brokerage(store=f"sqlite:///{image}/brokerage.db") as broker:
        assert broker.recovery is not None
        assert not broker.recovery.from_snapshot
        assert broker.balance(accounts[0]).cash == cash - Decimal("1.00")  # the last deposit
        broker.audit()
        assert live_state(broker).digest() == whole.digest()

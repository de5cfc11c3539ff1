"""Snapshots taken in the background while threads trade: each is the state at its journal
position, so the newest one plus the journal after it gives the live engine's very state."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from engine.journal import SNAPSHOT_FORMAT, State
from gateway import Brokerage
from gateway.brokerage import DEFAULT_HISTORY_WINDOW
from gateway.stores import open_journal
from tests.durability.test_journal import live_state, replayed, trade_a_while


def recovered_from_newest_snapshot(store: str) -> tuple[int, int, State]:
    """The newest snapshot's position, the journal's last, and the snapshot plus the tail."""
    journal = open_journal(store, "os")
    try:
        found = journal.latest_snapshot()
        assert found is not None, "no snapshot was taken"
        position, data = found
        state = State.from_snapshot(data)
        assert state is not None, "the snapshot is of another format"
        last = position
        for seq, _ in journal.read(position):
            last = seq
        for fact in journal.facts(after=position):
            state.apply(fact)
        state.finish()
        return position, last, state
    finally:
        journal.shut()


def test_snapshots_taken_during_trading_recover_the_live_state(store: str) -> None:
    with Brokerage(store=store, snapshot_facts=100, snapshot_seconds=None) as broker:
        assert broker.snapshotter is not None
        accounts = trade_a_while(broker)
        accounts += trade_a_while(broker, listed=True)
        deadline = time.monotonic() + 60
        while len(broker.snapshotter.taken) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        taken = list(broker.snapshotter.taken)
        assert len(taken) >= 3, taken
        live = live_state(broker).digest()
        position, last, state = recovered_from_newest_snapshot(store)
        assert 0 < taken[0]["snapshot"] < last  # taken while the journal grew
        assert position > 0
        assert state.digest() == live == replayed(store).digest()
        assert broker.audit().accounts == len(accounts)
    # a restart after the clean stop starts from the stop's own snapshot, at the end
    with Brokerage(store=store, snapshot_facts=100, snapshot_seconds=None) as broker:
        assert broker.recovery is not None
        assert broker.recovery.replayed == 0
        assert live_state(broker).digest() == live


def test_a_snapshot_older_than_the_newest_is_not_kept(store: str) -> None:
    journal = open_journal(store, "os")
    try:
        journal.save_snapshot(State(history_window=DEFAULT_HISTORY_WINDOW).to_snapshot(), 5)
        journal.save_snapshot(State().to_snapshot(), 3)
        found = journal.latest_snapshot()
        assert found is not None
        assert found[0] == 5
    finally:
        journal.shut()


def test_a_snapshot_of_another_format_is_passed_over_for_the_whole_journal(tmp_path: Path) -> None:
    """An earlier release's snapshot (its objects have another shape) is not unpickled: the
    journal, kept whole, is replayed from its start, to the same state."""
    store = f"sqlite:///{tmp_path}/brokerage.db"
    with Brokerage(store=store) as broker:
        broker.list_stock("MKT", "Market Co", "100")
        account = broker.open_account("U1", "Ann", initial_deposit="500").account_id
        broker.place_order(account, "MKT", "buy", 2, "market")
    journal = open_journal(store, "os")
    position, data = journal.latest_snapshot() or (0, b"")
    journal.save_snapshot(b"an earlier release's pickle" + data[len(SNAPSHOT_FORMAT) :], position)
    journal.close()

    with Brokerage(store=store) as again:
        assert again.recovery is not None
        assert not again.recovery.from_snapshot
        assert again.balance(account).cash == Decimal("300.00")

"""Snapshots taken in the background: a process of its own follows the journal as it is
committed, applies each fact to a `State` of its own (as a recovery would), and every
`facts` facts or `seconds` seconds writes that state as the snapshot at the position it has
reached. Trading never waits for it: the brokerage's process does not pause, copy or lock
anything (on its two cores the snapshot costs the other core, not the engine's GIL), and a
snapshot is consistent because it is the replay of a prefix of the journal.

It is started by `Brokerage.start()` with a store, and stopped by `close()`.

It reads its settings as one JSON line on standard input (so no store address shows in the
process list) and stops when standard input closes: when the brokerage closes it, or dies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from engine.journal import State, decode
from gateway.stores import open_journal

POLL_SECONDS = 0.2
"""How often it looks for newly committed facts."""
READ_ROWS = 200
"""Journal rows (batches of facts) read at a time."""


@dataclass(frozen=True)
class SnapshotPolicy:
    """When to take a snapshot: after `facts` new facts, or `seconds` after the last one when
    any fact came since (either may be None: never on that count)."""

    facts: int | None = 200_000
    seconds: float | None = 300.0

    def due(self, new_facts: int, since: float) -> bool:
        """True when `new_facts` facts, `since` seconds after the last snapshot, call for one."""
        if not new_facts:
            return False
        if self.facts is not None and new_facts >= self.facts:
            return True
        return self.seconds is not None and since >= self.seconds


def follow(
    store: str,
    policy: SnapshotPolicy,
    history_limit: int,
    history_window: int | None,
    stop: threading.Event,
    report: IO[str] | None = None,
) -> None:
    """Follow the journal of `store`, writing snapshots as `policy` says, until `stop`."""
    journal = open_journal(store, "os")
    try:
        snapshot = journal.latest_snapshot()
        state, position = None, 0
        if snapshot is not None:
            position, data = snapshot
            state = State.from_snapshot(data)
        if state is None:  # none, or one of another format: the whole journal
            position = 0
            state = State(history_limit=history_limit, history_window=history_window)
        else:
            state.set_window(history_window)
        taken_at, new = time.monotonic(), 0

        def take() -> None:
            nonlocal taken_at, new
            began = time.monotonic()
            journal.save_snapshot(state.to_snapshot(), position)
            taken_at, new = time.monotonic(), 0
            if report is not None:
                seconds = round(taken_at - began, 4)
                report.write(json.dumps({"snapshot": position, "seconds": seconds}) + "\n")
                report.flush()

        while not stop.is_set():
            rows = list(journal.read(position, READ_ROWS))
            for seq, row in rows:
                for fact in json.loads(row):
                    state.apply(decode(fact))
                    new += 1
                position = seq
                if stop.is_set():
                    return
                if policy.facts is not None and new >= policy.facts:
                    take()  # a long backlog gets its snapshots on the way
            if policy.due(new, time.monotonic() - taken_at):
                take()
            if len(rows) < READ_ROWS:  # caught up: wait for more
                stop.wait(POLL_SECONDS)
    finally:
        journal.shut()


def main() -> None:
    """Read the settings from standard input, follow until it closes."""
    os.nice(10)  # background work: the trading process has the CPU first
    settings = json.loads(sys.stdin.readline())
    stop = threading.Event()

    def watch() -> None:
        sys.stdin.read()  # returns at end of file: the brokerage closed it, or is gone
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    policy = SnapshotPolicy(settings["facts"], settings["seconds"])
    follow(
        settings["store"],
        policy,
        settings["history_limit"],
        settings["history_window"],
        stop,
        sys.stdout,
    )


class Snapshotter:
    """The snapshot process of one brokerage, from `start()` to `stop()`."""

    def __init__(
        self, store: str, policy: SnapshotPolicy, history_limit: int, history_window: int | None
    ) -> None:
        self._settings = {
            "store": store,
            "facts": policy.facts,
            "seconds": policy.seconds,
            "history_limit": history_limit,
            "history_window": history_window,
        }
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start the process (it begins from the newest snapshot the store holds)."""
        root = Path(__file__).resolve().parents[2]  # where `gateway` is, installed or not
        paths = [str(root), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        process = subprocess.Popen(
            [sys.executable, "-c", "from gateway.stores.snapshotter import main; main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert process.stdin is not None
        process.stdin.write(json.dumps(self._settings) + "\n")
        process.stdin.flush()
        self._process = process
        self.taken: list[dict[str, Any]] = []
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.taken.append(json.loads(line))

    def stop(self) -> None:
        """Stop the process at once: a snapshot half written is rolled back by its store (the
        brokerage writes its own at a clean stop)."""
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        process.terminate()
        process.wait()

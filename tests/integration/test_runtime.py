"""The M:N runtime keeps pykka's guarantees."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pykka
import pytest

from actors.base import BrokerActor, handles
from actors.futures import new_future
from actors.log import make_logger
from actors.runtimes import MNRuntime, Runtime, ThreadRuntime

LOG = make_logger("critical")


@pytest.fixture(params=["mn", "threads"])
def runtime(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    rt: Runtime = MNRuntime(workers=4, throughput=8) if request.param == "mn" else ThreadRuntime()
    yield rt
    rt.shutdown()


@dataclass(frozen=True)
class Note:
    sender: int
    sequence: int


@dataclass(frozen=True)
class Slow:
    reply: Any


@dataclass(frozen=True)
class Hold:
    entered: threading.Event
    release: threading.Event


class Recorder(BrokerActor):
    """Records what it receives and whether two threads were ever inside it at once."""

    def __init__(self, journal: list[Note] | None = None) -> None:
        super().__init__(LOG)
        self.journal = journal
        self.seen: list[Note] = []
        self.inside = 0
        self.overlaps = 0
        self.started_in: str | None = None

    def on_start(self) -> None:
        self.started_in = threading.current_thread().name

    @handles(Note)
    def _note(self, message: Note) -> None:
        self.inside += 1
        if self.inside > 1:
            self.overlaps += 1
        time.sleep(0)  # invite another worker in, if the runtime would let it
        self.seen.append(message)
        if self.journal is not None:
            self.journal.append(message)
        self.inside -= 1

    @handles(Hold)
    def _hold(self, message: Hold) -> None:
        message.entered.set()
        message.release.wait(10)

    @handles(Slow)
    def _slow(self, message: Slow) -> None:
        time.sleep(0.05)
        message.reply.set("done")

    def on_failure(self, *exc_info: Any) -> None:
        if self.journal is not None:
            self.journal.append(Note(-1, -1))

    def report(self) -> tuple[list[Note], int]:
        return list(self.seen), self.overlaps

    def explode(self) -> None:
        raise ValueError("asked to explode")


def test_start_returns_a_ref_that_tells_asks_and_proxies(runtime: Runtime) -> None:
    ref = runtime.spawn(Recorder)

    ref.tell(Note(0, 1))
    seen, _ = ref.proxy().report().get(timeout=5)

    assert seen == [Note(0, 1)]
    assert ref in pykka.ActorRegistry.get_by_class(Recorder)
    runtime.stop_all([ref], timeout=5)


def test_messages_from_one_sender_arrive_in_order_and_one_at_a_time(runtime: Runtime) -> None:
    ref = runtime.spawn(Recorder)

    def sender(n: int) -> None:
        for sequence in range(300):
            ref.tell(Note(n, sequence))

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seen, overlaps = ref.proxy().report().get(timeout=10)

    assert overlaps == 0
    assert len(seen) == 8 * 300
    for n in range(8):
        assert [m.sequence for m in seen if m.sender == n] == list(range(300))
    runtime.stop_all([ref], timeout=5)


def test_an_exception_in_ask_reaches_the_caller_and_the_actor_lives_on(runtime: Runtime) -> None:
    ref = runtime.spawn(Recorder)

    with pytest.raises(ValueError, match="explode"):
        ref.proxy().explode().get(timeout=5)
    ref.tell(Note(1, 1))

    assert ref.is_alive()
    assert ref.proxy().report().get(timeout=5)[0] == [Note(1, 1)]
    runtime.stop_all([ref], timeout=5)


def test_an_unhandled_failure_calls_on_failure_and_stops_the_actor_as_pykka_does(
    runtime: Runtime,
) -> None:
    journal: list[Note] = []
    ref = runtime.spawn(Recorder, journal)

    ref.proxy().explode.defer()  # told, not asked: nobody to hand the error to
    ref.actor_stopped.wait(5)

    assert journal == [Note(-1, -1)]
    assert not ref.is_alive()


def test_on_start_runs_before_the_first_message_in_the_actor_context(runtime: Runtime) -> None:
    ref = runtime.spawn(Recorder)

    started_in = ref.proxy().started_in.get(timeout=5)

    assert started_in is not None
    assert started_in != threading.current_thread().name
    runtime.stop_all([ref], timeout=5)


def test_asks_still_queued_when_an_actor_stops_fail_with_actor_dead(runtime: Runtime) -> None:
    ref = runtime.spawn(Recorder)
    busy = new_future()
    ref.tell(Slow(busy))  # keeps the actor busy while the rest queue up
    stopping = ref.stop(block=False)
    queued = ref.ask(Note(0, 0), block=False)

    stopping.get(timeout=5)

    with pytest.raises(pykka.ActorDeadError):
        queued.get(timeout=5)
    with pytest.raises(pykka.ActorDeadError):
        ref.tell(Note(0, 1))
    assert busy.get(timeout=5) == "done"


def test_a_flooded_actor_yields_after_its_turn_so_a_quiet_one_is_served() -> None:
    runtime = MNRuntime(workers=1, throughput=8)
    journal: list[Note] = []
    blocker = runtime.spawn(Recorder)
    flooded, quiet = runtime.spawn(Recorder, journal), runtime.spawn(Recorder, journal)
    for ref in (blocker, flooded, quiet):
        ref.proxy().report().get(timeout=10)  # every actor has started and is idle
    entered, release = threading.Event(), threading.Event()
    blocker.tell(Hold(entered, release))
    entered.wait(10)  # the only worker is now held inside the blocker
    for sequence in range(100):
        flooded.tell(Note(0, sequence))
    quiet.tell(Note(1, 0))
    release.set()
    flooded.proxy().report().get(timeout=10)
    quiet.proxy().report().get(timeout=10)

    position = journal.index(Note(1, 0))

    assert position == 8  # one turn of the flooded actor, then the quiet one's message
    assert len(journal) == 101
    runtime.stop_all([blocker, flooded, quiet], timeout=10)
    runtime.shutdown()


def test_one_hundred_thousand_actors_start_and_stop_with_one_registry_sweep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pykka's registry is a list: unregistering one actor is O(n), so 100,000 one-by-one
    # unregistrations would take minutes. A bulk stop must sweep it once instead.
    runtime = MNRuntime(workers=2)
    one_by_one: list[Any] = []
    monkeypatch.setattr(
        pykka.ActorRegistry, "unregister", classmethod(lambda cls, ref: one_by_one.append(ref))
    )

    refs = [runtime.spawn(Recorder) for _ in range(100_000)]
    refs[-1].ask(Note(0, 0), timeout=60)
    assert runtime.live_actors == 100_000
    runtime.stop_all(refs, timeout=120)

    assert one_by_one == []
    assert runtime.live_actors == 0
    assert not any(isinstance(r, Recorder) for r in pykka.ActorRegistry.get_all())
    runtime.shutdown()


def test_light_futures_support_pykkas_future_api() -> None:
    import asyncio

    first, second = new_future(), new_future()
    doubled = first.map(lambda value: value * 2)
    both = first.join(second)
    first.set(21)
    second.set(1)

    async def wait() -> Any:
        return await second

    assert doubled.get(timeout=1) == 42
    assert both.get(timeout=1) == [21, 1]
    assert asyncio.run(wait()) == 1
    assert pykka.get_all([first, second], timeout=1) == [21, 1]
    with pytest.raises(pykka.Timeout):
        new_future().get(timeout=0.01)

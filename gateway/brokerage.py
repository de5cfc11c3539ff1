"""`Brokerage`: the public, embedded API of the engine.

    with Brokerage() as broker:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        alice = broker.open_account("U001", "Alice", initial_deposit="10000")
        order = broker.place_order(alice.account_id, "AAPL", "buy", 10)

Each operation is defined once (`gateway.operations`): it parses the caller's values into its
domain command or query (a bad value raises at once and nothing changes), sends it to the
gateway actor, and says how the reply becomes the caller's value. The blocking method waits for
it; its `_async` twin returns a future, so a caller can keep many requests in flight; its `a*`
twin is a coroutine that awaits it on the running event loop. Money goes in as `str`, `int` or
`Decimal` and comes back as `Decimal`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, cast

import pykka

from actors.aio import settle
from actors.base import Clock, default_clock, send
from actors.board import Generations
from actors.futures import LightFuture, done_future, new_future, resolve
from actors.gateway import AccountInfo
from actors.log import make_logger
from actors.messages import (
    AddSubscription,
    Audit,
    CheckMargin,
    Flush,
    GetAccounts,
    GetAccountState,
    GetAlerts,
    GetBalance,
    GetBars,
    GetDepth,
    GetOrder,
    GetOrderByClientId,
    GetOrders,
    GetPriceHistory,
    GetQuote,
    GetStocks,
    GetTrades,
    GetTransactions,
    GetUndelivered,
    GetWatchlists,
    Kept,
    KnowAccount,
    MarginCheck,
    Notify,
    Place,
    Preferences,
    RemoveSubscription,
    Reply,
    Request,
    Search,
    SetPreferences,
    Subscription,
)
from actors.metrics import LATENCIES, Metrics, MetricsSnapshot
from actors.notify import KINDS, NotificationSettings, Undelivered, check_push_url
from engine.account import (
    AccountAudit,
    AccountState,
    Balance,
    Portfolio,
    Transaction,
    value_portfolio,
)
from engine.alerts import AlertSnapshot
from engine.audit import AuditReport, MarketAudit, reconcile
from engine.bars import INTERVALS, Bar
from engine.commands import (
    AddAlert,
    AddToWatchlist,
    CancelAlert,
    CancelOrder,
    Command,
    CreateWatchlist,
    DeleteWatchlist,
    Deposit,
    ExpireDayOrders,
    GrantShares,
    ListStock,
    OpenAccount,
    PlaceOrder,
    RemoveFromWatchlist,
    RenameWatchlist,
    ReplaceOrder,
    ReplaceWatchlist,
    ResetAccount,
    SetSelfTradePrevention,
    UpdatePrice,
    Withdraw,
)
from engine.equity import (
    BAR_INTERVAL,
    HistoryWindow,
    PortfolioHistory,
    Prices,
    Today,
    day_of,
    equity_history,
)
from engine.errors import (
    AccountBusyError,
    BrokerStoppedError,
    JournalFailedError,
    OrderNotCancellableError,
    UnknownOrderError,
    ValidationError,
)
from engine.events import Event
from engine.factory import DEFAULT_COLLAR_PERCENT, OrderFactory
from engine.fees import FeeSchedule
from engine.fields import (
    account_key,
    order_key,
    parse_client_order_id,
    parse_count,
    parse_cursor,
    parse_flag,
    parse_kinds,
    parse_moment,
    parse_page,
    parse_statuses,
    parse_symbol,
    symbol_key,
    user_key,
)
from engine.history import OrderQuery, TransactionQuery, archive_rows
from engine.ids import AccountId, Symbol
from engine.journal import FeesSet, Note, SlippageSet, State
from engine.margin import MarginFigures, MarginRules
from engine.matching import BAR_LIMIT, Depth, PricePoint, QuoteSnapshot, Trade
from engine.money import parse_price
from engine.orders import (
    OrderSnapshot,
    SelfTradePrevention,
    Side,
    datetime_to_ns,
    ns_to_datetime,
)
from engine.search import SearchResult
from engine.session import Session, make_session
from engine.settings import read_setting
from engine.slippage import Slippage
from engine.universe import DEFAULT_UNIVERSE
from engine.watchlists import Watchlist, parse_watchlist_name
from gateway.bootstrap import Engine, start_engine, stop_engine
from gateway.operations import Call, Steps, operation, steps
from gateway.stores import DURABILITIES, GroupCommitJournal, check_store, open_journal
from gateway.stores.snapshotter import SnapshotPolicy, Snapshotter

DEFAULT_HISTORY_WINDOW = 1_000
"""Finished orders and transactions an account keeps in memory by default."""
SEARCH_THREADS = 4
"""Threads that search a store's history (so no caller's event loop waits for the disk)."""

SEARCH_KEPT_QUERY = 64
"""The longest search query whose answer is kept (the HTTP API's own bound): a client sending
ever longer ones cannot make the kept answers large."""


@dataclass(frozen=True)
class Recovery:
    """How a start rebuilt the brokerage: from a snapshot (taken at the last clean stop) or not,
    and how many journal facts it replayed after it (none after a clean stop)."""

    from_snapshot: bool
    replayed: int


@dataclass(frozen=True)
class WatchlistQuotes:
    """A watchlist with the quote of each of its symbols, in the list's order."""

    name: str
    quotes: tuple[QuoteSnapshot, ...]


@dataclass(frozen=True)
class SubscriptionHandle:
    """A live subscription; `unsubscribe()` ends it (the callback is called no more)."""

    subscription_id: int
    _broker: Brokerage

    def unsubscribe(self) -> bool:
        """Stop delivering events to the callback; return False if it was already stopped."""
        return self._broker._unsubscribe(self.subscription_id)


class _OrderFuture(LightFuture[Any]):
    """The reply of a placed order, as the caller sees it.

    `get` returns the order's snapshot once the fills it made in other accounts are settled
    too; answering an admitted order gives its in-flight token back.
    """

    def __init__(
        self, tokens: collections.deque[None] | None = None, timeout: float | None = None
    ) -> None:
        super().__init__()  # `map` makes one with no tokens: it then frees nothing
        self._tokens = tokens
        self._timeout = timeout

    def get(self, *, timeout: float | None = None) -> Any:
        """Wait for the order's snapshot (see `Brokerage.place_order`)."""
        result = super().get(timeout=timeout)
        return resolve(result, self._timeout if timeout is None else timeout)

    def set(self, value: Any = None) -> None:
        """Deliver the value and free the in-flight slot."""
        super().set(value)
        if self._tokens is not None:
            self._tokens.append(None)

    def set_exception(self, exc_info: Any = None) -> None:
        """Deliver the error and free the in-flight slot."""
        super().set_exception(exc_info if exc_info is not None else sys.exc_info())
        if self._tokens is not None:
            self._tokens.append(None)


RESET_TRIES = 5
"""How many rounds of cancels a reset makes before it gives up on an account whose orders keep
coming."""

PREFERENCES_NOTE = "notification-preferences"
"""The kind of note a user's notification preferences are kept under."""


def _plain_preferences(user_id: str, preferences: Preferences) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "channels": preferences.channels,
        "kinds": sorted(preferences.kinds),
    }


def _flatten(per_symbol: list[list[AlertSnapshot]]) -> list[AlertSnapshot]:
    return [alert for alerts in per_symbol for alert in alerts]


def _newest_fired(per_symbol: list[list[AlertSnapshot]]) -> list[AlertSnapshot]:
    fired = _flatten(per_symbol)[::-1]  # each symbol's newest first, ties kept so
    fired.sort(key=lambda alert: alert.triggered_at or alert.created_at, reverse=True)
    return fired


def _number(transaction: Transaction) -> int:
    """A transaction's number in its account (its id is the account's id, '-', the number)."""
    return int(transaction.transaction_id.rpartition("-")[2])


def _reconcile(results: list[AccountAudit | MarketAudit]) -> AuditReport:
    accounts = [r for r in results if isinstance(r, AccountAudit)]
    markets = [r for r in results if isinstance(r, MarketAudit)]
    return reconcile(accounts, markets)


MARGIN_CHECKS_AT_ONCE = 256
"""Margin accounts a sweep asks at once (their answers come back together)."""
MARGIN_CUSHION_PERCENT = 10
MARGIN_REST = 10
"""An account whose equity is more than `MARGIN_CUSHION_PERCENT` of its positions' value above
its maintenance requirement is checked at every `MARGIN_REST`-th sweep only."""


class Brokerage:
    """An embedded brokerage: a gateway actor, an event bus, and an actor per account and
    per symbol, all started by `start()` (or `with`) and stopped by `close()`.

    Args:
        collar_percent: How far above the current price a market buy may fill, and so how much
            cash per share it reserves (5 % by default).
        timeout: Seconds a blocking call waits for its answer before `pykka.Timeout`.
        clock: Returns integer nanoseconds since the epoch; injectable for simulations.
        log_level: Level of the structured lifecycle logs on stderr ("warning": quiet).
        history_limit: Price points kept per symbol.
        runtime: "mn" (actors multiplexed on a few worker threads, the default), "threads"
            (pykka's `ThreadingActor`, one OS thread per actor) or "asyncio" (the trading
            actors run as callbacks of the asyncio event loop that calls `start()`, for a
            server on that loop: no thread switch between a request and the engine; on that
            loop use only the `a*` coroutines, as a blocking call there raises RuntimeError).
        workers: Worker threads of the "mn" runtime.
        max_in_flight: Orders that may be placed and not yet answered; beyond it a new order
            comes back REJECTED with reason BUSY at once (an accepted order is never dropped).
        session: "always" (the default) or "nyse" (9:30-16:00 America/New_York, Monday to
            Friday); outside it a new order is REJECTED with reason MARKET_CLOSED.
        session_poll: Seconds between looks at the clock for the session's close, when DAY
            orders still resting are cancelled (EXPIRED); None to leave that to
            `expire_day_orders()`.
        notifications: Where email, push and SMS notifications go (SMTP server, SMS gateway,
            retries and backoff); users choose their channels with
            `set_notification_preferences`.
        store: Where the journal is kept ("sqlite:///path/brokerage.db", or
            "postgresql://host/database" with the `postgres` extra), or None (the
            default) for nothing kept: with a store, every change is journaled before its
            caller is answered, and `start()` rebuilds the brokerage from the journal.
        durability: With a store, "fsync" (the default: each batch reaches the disk before
            its callers are answered) or "os" (it reaches the operating system: a process
            crash loses nothing acknowledged, a power cut may).
        snapshot_facts, snapshot_seconds: With a store, a process of its own follows the
            journal and writes a snapshot after that many facts, or that many seconds after
            the last when facts came since (None: never on that count; both None: only at a
            clean stop), so a recovery replays at most about that much.
        history_window: How many finished orders and transactions each account keeps in
            memory (1,000 by default; None for all). With a store the older ones are read
            from it (`orders`, `transactions`, `get_order` search it); without one they are
            gone.
        fees: What orders pay as they fill: a `FeeSchedule`, a mapping of its names to
            dollars and percentages (`FeeSchedule.parse`), or its text
            ("per_share=0.005,minimum=1"); None (the default) for none. Each fill pays its
            part as a `fee` transaction, out of cash its order held for it when accepted.
            With a store the schedule is journaled at `start()`: it applies from then on.
        slippage: What a `market`-mode order filling on arrival pays past the last price: a
            `Slippage`, a mapping of its settings, or its text ("spread_bps=10,impact_bps=5,
            size=100,jitter_percent=50,seed=7"; `engine.slippage`); None (the default) fills
            at the last price. Journaled at `start()` as the fee schedule is.
        margin: The requirements of margin accounts (`open_account(margin=True)`): a
            `MarginRules`, a mapping of its names to percentages, or its text
            ("initial=50,long=25,short=30,shortable=AAPL MSFT,GME.initial=100";
            `engine.margin`); None (the default) for Reg T's 50 % initial, 25 % long and 30 %
            short maintenance, every symbol shortable. Not journaled: a restart may change
            them (no recorded fact depends on them).
        margin_check_seconds: How often margin accounts are checked against maintenance at
            the last prices (`margin_calls`; a `MarginCall` event for each that falls below);
            None: only when `margin_calls()` is called.
        auto_liquidate: With the checks, close the positions of an account below
            maintenance by market orders, largest first, until it meets it (`liquidate`).
    """

    def __init__(
        self,
        *,
        collar_percent: Any = DEFAULT_COLLAR_PERCENT,
        timeout: float = 30.0,
        clock: Clock = default_clock,
        log_level: str = "warning",
        history_limit: int = 100_000,
        runtime: str = "mn",
        workers: int | None = None,
        max_in_flight: int = 10_000,
        session: str = "always",
        session_poll: float | None = 1.0,
        notifications: NotificationSettings | None = None,
        store: str | None = None,
        durability: str = "fsync",
        history_window: int | None = DEFAULT_HISTORY_WINDOW,
        snapshot_facts: int | None = SnapshotPolicy.facts,
        snapshot_seconds: float | None = SnapshotPolicy.seconds,
        fees: FeeSchedule | Mapping[str, Any] | str | None = None,
        slippage: Slippage | Mapping[str, Any] | str | None = None,
        margin: MarginRules | Mapping[str, Any] | str | None = None,
        margin_check_seconds: float | None = 1.0,
        auto_liquidate: bool = False,
    ) -> None:
        self._notification_settings = notifications or NotificationSettings()
        self._engine: Engine | None = None
        self._found: Generations[tuple[str, int], tuple[SearchResult, ...]] | None = None
        """Searches answered while the listing stands (made at start)."""
        if durability not in DURABILITIES:
            raise ValidationError(
                "durability", f"must be one of {', '.join(DURABILITIES)}", durability
            )
        self._store = None if store is None else check_store(store)
        self._durability = durability
        self._journal: GroupCommitJournal | None = None
        self.recovery: Recovery | None = None
        """How the last `start()` with a store rebuilt the brokerage."""
        self._notes: dict[str, list[str]] = {}
        self._notifying = False
        self._session = make_session(session)
        self._session_poll = session_poll
        self._watchers: list[threading.Thread] = []
        self._closing = threading.Event()
        if runtime not in ("mn", "threads", "asyncio"):
            raise ValidationError("runtime", "must be 'mn', 'threads' or 'asyncio'", runtime)
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValidationError("workers", "must be a positive int", workers)
        self.runtime_name = runtime
        self._workers = workers
        self._factory = OrderFactory(collar_percent)
        schedule = read_setting(fees, FeeSchedule, FeeSchedule.parse, FeeSchedule.parse_text)
        self.fees: FeeSchedule | None = None if schedule is None or schedule.free else schedule
        """What orders pay as they fill (None: nothing)."""
        self.slippage = read_setting(slippage, Slippage, Slippage.parse, Slippage.parse_text)
        """What `market`-mode orders filling on arrival pay past the last price (None:
        nothing)."""
        rules = read_setting(margin, MarginRules, MarginRules.parse, MarginRules.parse_text)
        self.margin_rules: MarginRules = rules or MarginRules()
        """The requirements of margin accounts."""
        if margin_check_seconds is not None and (
            not isinstance(margin_check_seconds, int | float)
            or isinstance(margin_check_seconds, bool)
            or not 0.01 <= margin_check_seconds <= 3600
        ):
            raise ValidationError(
                "margin_check_seconds",
                "must be from 0.01 to 3600 seconds or None",
                margin_check_seconds,
            )
        self._margin_check_seconds = margin_check_seconds
        self._margin_opened = False
        """Whether a margin account was opened (or recovered): only then do checks run."""
        self._margin_rests: dict[AccountId, int] = {}
        """Sweeps each margin account sits out (`_sweep_margin`)."""
        self.auto_liquidate = parse_flag(auto_liquidate, "auto_liquidate")
        self.timeout = timeout
        self._clock = clock
        self._log = make_logger(log_level)
        self._history_limit = history_limit
        if history_window is not None and (
            not isinstance(history_window, int)
            or isinstance(history_window, bool)
            or history_window < 1
        ):
            raise ValidationError(
                "history_window", "must be a positive int or None", history_window
            )
        self._history_window = history_window
        self._searches: ThreadPoolExecutor | None = None
        for name, every in (
            ("snapshot_facts", snapshot_facts),
            ("snapshot_seconds", snapshot_seconds),
        ):
            if every is not None and (
                not isinstance(every, int | float) or isinstance(every, bool) or not every > 0
            ):
                raise ValidationError(name, "must be a positive number or None", every)
        self._snapshot_policy = SnapshotPolicy(snapshot_facts, snapshot_seconds)
        self.snapshotter: Snapshotter | None = None
        """The process writing snapshots in the background (with a store), while running."""
        self._prices: dict[Symbol, int] = {}
        if not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ValidationError("max_in_flight", "must be a positive int", max_in_flight)
        self.max_in_flight = max_in_flight
        # One token per order that may be in flight; deque pop and append are atomic.
        self._admission: collections.deque[None] = collections.deque([None] * max_in_flight)
        self._metrics = Metrics()
        self._subscription_ids = itertools.count(1)

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> Brokerage:
        """Start the bus and the gateway actor; return self."""
        if self._engine is None:
            journal, recovered = self._recover()
            state = recovered or self._new_state()
            settings: list[FeesSet | SlippageSet] = []
            if state.fees != self.fees:
                settings.append(FeesSet("" if self.fees is None else self.fees.text()))
            if state.slippage != self.slippage:
                model = self.slippage
                settings.append(SlippageSet("" if model is None else model.text()))
            for fact in settings:  # journaled before anything done under them
                state.apply(fact)
                if journal is not None:
                    journal.append(fact)
            state.set_margin(self.margin_rules)
            self._margin_opened = any(a.margin is not None for a in state.accounts.values())
            self._engine = start_engine(
                self.runtime_name,
                self._workers,
                clock=self._clock,
                log=self._log,
                metrics=self._metrics,
                prices=self._prices,
                factory=self._factory,
                history_limit=self._history_limit,
                session=self._session,
                notifications=self._notification_settings,
                journal=journal,
                recovered=state,
            )
            self._found = Generations(self._engine.board)
            self._notifying = False
            if recovered is not None:
                self._restore_preferences(recovered)
            self._closing.clear()
            watches = []
            if self._session.name != "always" and self._session_poll:
                watches.append((self._watch_session, "session-watch"))
            if self._margin_check_seconds is not None:
                watches.append((self._watch_margin, "margin-watch"))
            for target, name in watches:
                watcher = threading.Thread(target=target, name=name, daemon=True)
                watcher.start()
                self._watchers.append(watcher)
        return self

    def _new_state(self) -> State:
        return State(history_limit=self._history_limit, history_window=self._history_window)

    def _recover(self) -> tuple[GroupCommitJournal | None, State | None]:
        """Open the store and replay its journal (nothing without a store). An order accepted
        just before a crash that never reached its book is cancelled (INTERRUPTED): its caller
        never had an answer."""
        if self._store is None:
            return None, None
        journal = open_journal(self._store, self._durability)
        snapshot = journal.latest_snapshot()
        state, position = None, 0
        if snapshot is not None:
            position, data = snapshot
            state = State.from_snapshot(data)
        if state is None:  # none, or one of another format: the whole journal
            state, position, snapshot = self._new_state(), 0, None
        else:
            state.set_window(self._history_window)
        before = state.facts
        for fact in journal.facts(after=position):
            state.apply(fact)
        # what the replay finishes from here on was never kept in the history tables
        for account in state.accounts.values():
            account.outbox = []
        state.finish()
        self.recovery = Recovery(snapshot is not None, state.facts - before)
        for interrupted in state.interrupt_unsubmitted(self._clock()):
            journal.append(interrupted)
        journal.keep_history(*archive_rows(state.take_outboxes()))
        journal.start()
        self._searches = ThreadPoolExecutor(SEARCH_THREADS, thread_name_prefix="history")
        policy = self._snapshot_policy
        if policy.facts is not None or policy.seconds is not None:
            self.snapshotter = Snapshotter(
                self._store, policy, self._history_limit, self._history_window
            )
            self.snapshotter.start()
        self._journal = journal
        self._notes = {kind: list(data) for kind, data in state.notes.items()}
        return journal, state

    def notes(self, kind: str) -> list[str]:
        """The data of every note of `kind` kept so far, oldest first (nothing without a
        store)."""
        return list(self._notes.get(kind, ()))

    def _note(self, kind: str, data: str) -> pykka.Future[Any] | None:
        if not isinstance(kind, str) or not isinstance(data, str):
            raise ValidationError("note", "kind and data must be strings", (kind, data))
        self._notes.setdefault(kind, []).append(data)
        journal = self._journal
        return None if journal is None else journal.append(Note(kind, data))

    def note(self, kind: str, data: str) -> None:
        """Keep `data` under `kind` with the journal, for the tiers above the engine (the
        server keeps its API keys so); returns once it is durable (at once without a store).
        `notes(kind)` reads them back after a restart."""
        durable = self._note(kind, data)
        if durable is not None:
            self._wait(durable)

    async def anote(self, kind: str, data: str) -> None:
        """`note`, awaited."""
        durable = self._note(kind, data)
        if durable is not None:
            await settle(durable, self.timeout)

    def _watch_session(self) -> None:
        """Cancel the resting DAY orders each time the session goes from open to closed."""
        was_open = self._session.is_open(self._clock())
        while not self._closing.wait(self._session_poll):
            is_open = self._session.is_open(self._clock())
            if was_open and not is_open:
                try:
                    self.expire_day_orders()
                except BrokerStoppedError:
                    return
            was_open = is_open

    def _watch_margin(self) -> None:
        """Check the margin accounts every `margin_check_seconds` (`margin_calls`)."""
        assert self._margin_check_seconds is not None
        while not self._closing.wait(self._margin_check_seconds):
            if not self._margin_opened:
                continue
            try:
                self._sweep_margin()
            except BrokerStoppedError:
                return
            except Exception:  # a check that failed is tried again at the next
                self._log.exception("margin.check_failed")

    def close(self, *, snapshot: bool = True) -> None:
        """Stop every actor of this brokerage (accounts and symbols first, then the bus); with
        a store, flush the journal and (unless `snapshot` is False) write a snapshot, so that
        the next start replays nothing."""
        self._closing.set()
        watchers, self._watchers = self._watchers, []
        for watcher in watchers:
            if watcher is not threading.current_thread():
                watcher.join()
        engine, self._engine = self._engine, None
        self._found = None
        journal, self._journal = self._journal, None
        snapshotter, self.snapshotter = self.snapshotter, None
        if snapshotter is not None:
            snapshotter.stop()
        state = None
        if engine is not None:
            state = stop_engine(engine, self.timeout, keep=journal is not None)
        if journal is not None:
            journal.stop()  # every fact written: the state rests at the journal's last position
            # none after a failed write either: the state would be ahead of the journal
            if snapshot and state is not None and journal.failure is None:
                state.notes = {kind: list(data) for kind, data in self._notes.items()}
                journal.save_snapshot(state.to_snapshot())
            journal.shut()
        searches, self._searches = self._searches, None
        if searches is not None:
            searches.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        """`close()` from a coroutine (on the "asyncio" runtime's loop too)."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Brokerage:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """True between `start()` and `close()`."""
        return self._engine is not None

    @property
    def _gateway(self) -> pykka.ActorRef[Any] | None:
        """The gateway actor, while running."""
        return None if self._engine is None else self._engine.gateway

    def _running(self, operation: str) -> Engine:
        engine = self._engine
        if engine is None:
            raise BrokerStoppedError(operation)
        return engine

    def _send(self, operation: str, message: object, reply: pykka.Future[Any]) -> Call[Any]:
        try:
            send(self._running(operation).gateway, message)
        except pykka.ActorDeadError:
            raise BrokerStoppedError(operation) from None
        return Call(reply)

    def _changing(self) -> None:
        """Refuse a change once the journal failed (what it would change could not be kept)."""
        journal = self._journal
        if journal is not None and journal.failure is not None:
            raise JournalFailedError(journal.failure)

    def _request(self, command: Command) -> Call[Any]:
        """Send a domain command to the gateway actor."""
        self._changing()
        reply = new_future()
        return self._send(type(command).__name__, Request(command, reply), reply)

    def _ask(self, operation: str, make: Callable[[Reply], object]) -> Call[Any]:
        """Send the query `make(reply)` to the gateway actor."""
        reply = new_future()
        return self._send(operation, make(reply), reply)

    def _searched(
        self,
        call: Call[Any],
        search: Callable[[GroupCommitJournal, Any], Any],
        page: Callable[[Any], Any] = lambda answer: answer,
        complete: Callable[[Any], bool] = lambda answer: True,
    ) -> Call[Any]:
        """The `page` of what the account keeps if that is `complete`, else what `search`
        finds in the store once everything journaled so far is in it; an order the account no
        longer keeps is searched for too. Without a store, only what the account keeps.

        The account's answer is looked at in a callback, on the thread that answered (no hop
        when it suffices); a search runs on a search thread, so that no event loop and no
        actor waits for the disk."""
        journal, searches, timeout = self._journal, self._searches, self.timeout
        if journal is None or searches is None:
            return Call(call.reply, page)
        reply = new_future()

        def search_store(answer: Any, missing: UnknownOrderError | None) -> None:
            try:
                if missing is None:  # an answer to wait on still (none of these queries has one)
                    answer = resolve(answer, timeout)
                    if complete(answer):
                        reply.set(page(answer))
                        return
                journal.barrier().get(timeout=timeout)
                value = search(journal, answer)
                if value is None:
                    assert missing is not None
                    raise missing
                reply.set(value)
            except BaseException:
                reply.set_exception(sys.exc_info())

        def answered(future: LightFuture[Any]) -> None:
            try:
                answer = future.get(timeout=0)
            except UnknownOrderError as error:
                later(None, error)
                return
            except BaseException:
                reply.set_exception(sys.exc_info())
                return
            if isinstance(answer, Kept | OrderSnapshot) and complete(answer):
                try:
                    reply.set(page(answer))
                except BaseException:
                    reply.set_exception(sys.exc_info())
            else:
                later(answer, None)

        def later(answer: Any, missing: UnknownOrderError | None) -> None:
            try:
                searches.submit(search_store, answer, missing)
            except RuntimeError:  # shut down: the brokerage closed meanwhile
                reply.set_exception((BrokerStoppedError, BrokerStoppedError("search"), None))

        cast(LightFuture[Any], call.reply).add_done_callback(answered)
        return Call(reply)

    def _wait(self, reply: pykka.Future[Any]) -> Any:
        """Block until the reply, and what it depends on, is done; return the value."""
        engine = self._engine
        if engine is not None and engine.on_loop is not None and engine.on_loop():
            raise RuntimeError(
                "a blocking Brokerage call on the event loop the engine runs on would wait for "
                "itself: await the a* coroutine instead, or call from another thread"
            )
        return resolve(reply.get(timeout=self.timeout), self.timeout)

    # -- stocks --------------------------------------------------------------------------------

    @operation
    def list_stock(
        self, symbol: str, name: str, price: Any, mode: str = "market"
    ) -> Call[QuoteSnapshot]:
        """List a stock at an initial price; `mode` is "market" (fills at the feed's price) or
        "book" (orders match each other). Raises `DuplicateError` if already listed."""
        return self._request(ListStock.parse(symbol, name, price, mode))

    list_stock_async = list_stock.future()
    alist_stock = list_stock.coroutine()

    @operation
    def stocks(self) -> Call[list[QuoteSnapshot]]:
        """Quotes of every listed stock, in listing order."""
        return self._ask("stocks", GetStocks)

    stocks_async = stocks.future()
    astocks = stocks.coroutine()

    @operation
    def quote(self, symbol: str) -> Call[QuoteSnapshot]:
        """Last price, best bid and ask with sizes, day open/high/low, volume.

        The symbol's actor publishes the quote it last built until its next change
        (`actors.board`): while it stands, it is answered without a message."""
        key = symbol_key(symbol)
        published = self._running("quote").board.quotes.get(key)
        if published is not None:
            return Call(done_future(published))
        return self._ask("quote", lambda r: GetQuote(key, r))

    quote_async = quote.future()
    aquote = quote.coroutine()

    @operation
    def depth(self, symbol: str, levels: int = 10) -> Call[Depth]:
        """The best `levels` price levels of each side of the book: price, shares, orders."""
        key, count = symbol_key(symbol), parse_count(levels, "levels")
        return self._ask("depth", lambda r: GetDepth(key, count, r))

    depth_async = depth.future()
    adepth = depth.coroutine()

    @operation
    def trades(self, symbol: str, limit: int = 50) -> Call[list[Trade]]:
        """The last `limit` trades of a symbol (the tape), newest first."""
        key, count = symbol_key(symbol), parse_count(limit, "limit")
        return self._ask("trades", lambda r: GetTrades(key, count, r))

    trades_async = trades.future()
    atrades = trades.coroutine()

    @operation
    def bars(self, symbol: str, interval: str = "1m", limit: int = 100) -> Call[list[Bar]]:
        """The last `limit` OHLCV bars of `interval` ("1m", "5m" or "1d"), oldest first,
        built from price updates and trades."""
        key = symbol_key(symbol)
        if interval not in INTERVALS:
            raise ValidationError("interval", f"must be one of {', '.join(INTERVALS)}", interval)
        count = parse_count(limit, "limit", maximum=100_000)
        return self._ask("bars", lambda r: GetBars(key, interval, count, r))

    bars_async = bars.future()
    abars = bars.coroutine()

    @operation
    def search(self, query: str, limit: int = 10) -> Call[list[SearchResult]]:
        """Listed stocks matching `query`, best first: exact symbol, symbol prefix, a word of
        the company name starting with it, then the query anywhere (case-insensitive).

        An answer is kept while the listing stands (`actors.board`), so asking again needs no
        message."""
        call = self._searching(query, limit)
        return Call(call.reply, lambda found: list(call.finish(found)))

    search_async = search.future()
    asearch = search.coroutine()

    @operation
    def search_shared(self, query: str, limit: int = 10) -> Call[tuple[SearchResult, ...]]:
        """`search`'s answer as a tuple, the same object for every caller while it is kept: a
        server encodes it once (`gateway.server.encode.Encoded`)."""
        return self._searching(query, limit)

    asearch_shared = search_shared.coroutine()

    def _searching(self, query: str, limit: int) -> Call[tuple[SearchResult, ...]]:
        if not isinstance(query, str):
            raise ValidationError("query", "must be a string", query)
        count = parse_count(limit, "limit")
        found = self._found
        if found is None or len(query) > SEARCH_KEPT_QUERY:
            return Call(self._ask("search", lambda r: Search(query, count, r)).reply, tuple)
        key = (query, count)
        kept = found.get(key)
        if kept is not None:
            return Call(done_future(kept))
        mark = found.mark()  # before the ask: a listing in between is not trusted to be in it

        def keep(results: list[SearchResult]) -> tuple[SearchResult, ...]:
            answer = tuple(results)
            found.keep(key, mark, answer)
            return answer

        return Call(self._ask("search", lambda r: Search(query, count, r)).reply, keep)

    def list_universe(self, mode: str = "market") -> list[QuoteSnapshot]:
        """List every stock of the default universe (50 well-known US stocks) not listed yet."""
        listed = {q.symbol for q in self.stocks()}
        futures = [
            self.list_stock_async(symbol, name, price, mode)
            for symbol, name, price in DEFAULT_UNIVERSE
            if symbol not in listed
        ]
        return [self._wait(f) for f in futures]

    @operation
    def price_history(self, symbol: str) -> Call[list[PricePoint]]:
        """Every price the symbol has had (up to `history_limit`), oldest first."""
        key = symbol_key(symbol)
        return self._ask("price_history", lambda r: GetPriceHistory(key, r))

    price_history_async = price_history.future()
    aprice_history = price_history.coroutine()

    @operation
    def update_price(self, symbol: str, price: Any) -> Call[QuoteSnapshot]:
        """Move a stock's price (the price feed's entry point) and return its new quote.

        In `market` mode the move fills the resting limit orders it reaches, in price-time
        priority; this returns once those fills are settled in every account.
        """
        return self._request(UpdatePrice.parse(symbol, price))

    update_price_async = update_price.future()
    aupdate_price = update_price.coroutine()

    # -- accounts ------------------------------------------------------------------------------

    @operation
    def open_account(
        self,
        user_id: str,
        name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        *,
        initial_deposit: Any = None,
        account_id: str | None = None,
        new_user: bool = False,
        agent: bool = False,
        margin: bool = False,
    ) -> Call[AccountInfo]:
        """Open an account for a user; the first account of a user needs the user's `name`.

        `account_id` is generated ("A-000001", ...) unless given. With `new_user`, the user id
        must not exist yet (DuplicateError otherwise, saying nothing of that user): how a
        sign-up that proves no identity opens its account. `agent` marks a trader agent's
        account (a simulation's or a venue's): `accounts(agents=False)` leaves it out.
        `margin` opens a margin account: it may borrow against what it holds and sell short
        (`engine.margin`; the brokerage's `margin` rules); else a cash account.
        """
        command = OpenAccount.parse(
            user_id, name, email, phone, initial_deposit, account_id, new_user, agent, margin
        )
        if command.margin:
            self._margin_opened = True
        call = self._request(command)
        return Call(call.reply, self._opened)

    open_account_async = open_account.future()
    aopen_account = open_account.coroutine()

    def _opened(self, opened: AccountInfo) -> AccountInfo:
        self._know(opened.account_id, opened.user.user_id)
        return opened

    def _know(self, account_id: str, user_id: str) -> None:
        if self._engine is not None:
            send(self._engine.notifier, KnowAccount(account_id, user_id))

    @operation
    def accounts(
        self, user_id: str | None = None, *, agents: bool = True, margin_only: bool = False
    ) -> Call[list[AccountId]]:
        """Ids of the accounts of `user_id` (of every user if None), oldest first; with
        `agents=False`, not those of trader agents (`open_account(agent=True)`); with
        `margin_only`, only margin accounts."""
        user = None if user_id is None else user_key(user_id)
        include = parse_flag(agents, "agents")
        only = parse_flag(margin_only, "margin_only")
        return self._ask("accounts", lambda r: GetAccounts(user, r, include, only))

    accounts_async = accounts.future()
    aaccounts = accounts.coroutine()

    @operation
    def deposit(self, account_id: str, amount: Any) -> Call[Balance]:
        """Add cash; return the new balance."""
        return self._request(Deposit.parse(account_id, amount))

    deposit_async = deposit.future()
    adeposit = deposit.coroutine()

    @operation
    def set_self_trade_prevention(self, account_id: str, mode: str) -> Call[SelfTradePrevention]:
        """Set what the account's orders that name no `self_trade_prevention` do in `book` mode
        when they would trade with a resting order of the same account: "cancel_newest" (the
        default: the incoming order's rest is cancelled), "cancel_oldest" (the resting order
        is cancelled and matching goes on), "cancel_both" or "allow". Return the mode set."""
        return self._request(SetSelfTradePrevention.parse(account_id, mode))

    set_self_trade_prevention_async = set_self_trade_prevention.future()
    aset_self_trade_prevention = set_self_trade_prevention.coroutine()

    @operation
    def withdraw(self, account_id: str, amount: Any) -> Call[Balance]:
        """Take out cash, at most the available cash (cash minus what pending buys reserve).

        Raises `InsufficientAvailableCashError` beyond that; nothing moves.
        """
        return self._request(Withdraw.parse(account_id, amount))

    withdraw_async = withdraw.future()
    awithdraw = withdraw.coroutine()

    @operation
    def balance(self, account_id: str) -> Call[Balance]:
        """Cash, reserved and available."""
        key = account_key(account_id)
        return self._ask("balance", lambda r: GetBalance(key, r))

    balance_async = balance.future()
    abalance = balance.coroutine()

    @steps
    def reset_account(self, account_id: str, cash: Any) -> Steps[Balance]:
        """Start a (paper) account afresh with `cash` and no holdings: its open orders are
        cancelled, each holding goes out at its cost (a `removal`), its cash moves to `cash`
        (a deposit or withdrawal of the difference), its realized P/L starts again from 0, and
        a `reset` transaction marks the moment; its orders and transactions are kept. Raises
        `AccountBusyError` if orders placed meanwhile kept it from being done (after a few
        tries)."""
        command = ResetAccount.parse(account_id, cash)
        for _ in range(RESET_TRIES):
            # an entry's legs may begin to work as it ends: try again
            working: list[OrderSnapshot] = yield from self._cancel_open(command.account_id)
            try:
                balance: Balance = yield self._request(command)
            except AccountBusyError:
                continue
            return balance
        raise AccountBusyError(command.account_id, len(working))

    areset_account = reset_account.coroutine()

    @operation
    def grant_shares(
        self, account_id: str, symbol: str, quantity: Any, price: Any
    ) -> Call[Transaction]:
        """Credit shares at a stated cost per share (an allocation or a transfer in)."""
        return self._request(GrantShares.parse(account_id, symbol, quantity, price))

    grant_shares_async = grant_shares.future()
    agrant_shares = grant_shares.coroutine()

    @operation
    def portfolio(self, account_id: str) -> Call[Portfolio]:
        """Holdings valued at current prices, with unrealized and realized profit and loss."""
        key, prices = account_key(account_id), self._prices
        call = self._ask("portfolio", lambda r: GetAccountState(key, r))
        return Call(call.reply, lambda state: value_portfolio(state, prices))

    portfolio_async = portfolio.future()
    aportfolio = portfolio.coroutine()

    @operation
    def margin(self, account_id: str) -> Call[MarginFigures | None]:
        """A margin account's equity, requirements, excess equity and buying power at the
        last prices, in cents (`engine.margin.MarginFigures`); None for a cash account."""
        key = account_key(account_id)
        call = self._ask("margin", lambda r: CheckMargin(key, r, tell=False))
        return Call(call.reply, lambda check: None if check is None else check.figures)

    margin_async = margin.future()
    amargin = margin.coroutine()

    @steps
    def margin_calls(self) -> Steps[list[MarginCheck]]:
        """Check every margin account at the last prices now: return those below their
        maintenance requirement (each told once as a `MarginCall` event as it falls below);
        with `auto_liquidate`, each is liquidated (`liquidate`). The brokerage checks by
        itself every `margin_check_seconds` (`_sweep_margin`)."""
        ids: list[AccountId] = yield Brokerage.accounts.call(self, margin_only=True)
        calls: list[MarginCheck] = yield from self._check_margins(ids, None)
        return calls

    amargin_calls = margin_calls.coroutine()

    @steps
    def _sweep_margin(self) -> Steps[list[MarginCheck]]:
        """`margin_calls` as the brokerage's own sweep makes it: an account whose equity was
        more than `MARGIN_CUSHION_PERCENT` of its positions' value above maintenance at its
        last check (or that held nothing) is checked again only at every `MARGIN_REST`-th
        sweep: prices seldom move that far in so few sweeps, and a new order needs the
        initial requirement, above maintenance. Only this sweep's thread keeps the rests."""
        ids: list[AccountId] = yield Brokerage.accounts.call(self, margin_only=True)
        rests = self._margin_rests
        due = []
        for account_id in ids:
            rest = rests.get(account_id, 0)
            if rest:
                rests[account_id] = rest - 1
            else:
                due.append(account_id)
        calls: list[MarginCheck] = yield from self._check_margins(due, rests)
        return calls

    def _check_margins(
        self, ids: list[AccountId], rests: dict[AccountId, int] | None
    ) -> Steps[list[MarginCheck]]:
        calls = []
        for start in range(0, len(ids), MARGIN_CHECKS_AT_ONCE):  # asked together, in turn
            asks = [
                self._ask("margin_calls", partial(CheckMargin, account_id))
                for account_id in ids[start : start + MARGIN_CHECKS_AT_ONCE]
            ]
            for ask in asks:
                check: MarginCheck | None = yield ask
                if check is None:
                    continue
                figures = check.figures
                if figures.deficit:
                    calls.append(check)
                if rests is not None:
                    gross = figures.long_value + figures.short_value
                    cushion = (figures.equity - figures.maintenance) * 100
                    far = cushion > gross * MARGIN_CUSHION_PERCENT
                    rests[check.account_id] = MARGIN_REST - 1 if far else 0
        if self.auto_liquidate:
            for call in calls:
                yield from self._liquidate(call.account_id)
        return calls

    @steps
    def liquidate(self, account_id: str) -> Steps[list[OrderSnapshot]]:
        """Bring a margin account below maintenance back to it: cancel its open orders, then
        close its positions by market orders, largest market value first, the last in part
        (`Account.liquidation`). Return the orders placed (none when it meets maintenance)."""
        placed: list[OrderSnapshot] = yield from self._liquidate(account_key(account_id))
        return placed

    aliquidate = liquidate.coroutine()

    def _cancel_open(self, account_id: AccountId) -> Steps[list[OrderSnapshot]]:
        """Cancel every open order of an account (one that ends meanwhile is passed over);
        return those it found open."""
        working: list[OrderSnapshot] = yield Brokerage.orders.call(
            self, account_id, status=["pending", "partially_filled", "held"]
        )
        for order in working:
            with contextlib.suppress(OrderNotCancellableError):
                yield Brokerage.cancel_order.call(self, order.order_id)
        return working

    def _liquidate(self, account_id: AccountId) -> Steps[list[OrderSnapshot]]:
        yield from self._cancel_open(account_id)
        check: MarginCheck | None = yield self._ask(
            "liquidate", lambda r: CheckMargin(account_id, r)
        )
        if check is None:
            raise ValidationError("account_id", "must be a margin account", account_id)
        placed = []
        for symbol, side, quantity in check.liquidation:
            sent: OrderSnapshot = yield Brokerage.place_order.call(
                self, account_id, symbol, side.value, quantity, "market"
            )
            self._log.warning(
                "margin.liquidated",
                account_id=account_id,
                order_id=sent.order_id,
                symbol=symbol,
                side=side.value,
                quantity=quantity,
                status=sent.status.value,
            )
            placed.append(sent)
        return placed

    @steps
    def portfolio_history(
        self,
        account_id: str,
        period: str = "1M",
        timeframe: str | None = None,
        *,
        end: datetime | None = None,
        start: datetime | None = None,
    ) -> Steps[PortfolioHistory]:
        """The account's equity at each `timeframe` step ("1Min", "5Min", "15Min", "1H" or
        "1D"; None: as Alpaca chooses for the period) over the last `period` ("1D", "1W",
        "1M", "3M", "1A", ...: a number and D, W, M or A) up to `end` (None: now), or from
        `start` to it (then `period` is not read), and at its end, with P/L since the first
        step net of deposits, withdrawals and grants (`engine.equity`). Rebuilt from the
        account's transactions (from the store where it keeps them; without one only as far
        back as it still keeps them: `known_since` says) and its symbols' bars."""
        key = account_key(account_id)
        until = None if end is None else parse_moment(end, "end")
        begin = None if start is None else parse_moment(start, "start")
        window = HistoryWindow.parse(period, timeframe, self._clock(), until, begin)
        state: AccountState = yield self._ask("portfolio", lambda r: GetAccountState(key, r))
        since, known_from, _ = yield from self._transactions_since(key, window.start_ns, state)
        held = {p.symbol: p.quantity for p in state.positions if p.quantity}
        symbols = set(held)
        symbols |= {t.symbol for t in since if t.symbol is not None and t.quantity}
        interval = BAR_INTERVAL[window.timeframe]
        prices: dict[Symbol, Prices] = {}
        for symbol in sorted(symbols):
            found: list[Bar] = []
            for each in dict.fromkeys((interval, "1d")):
                found += yield Brokerage.bars.call(self, symbol, each, BAR_LIMIT)
            price = self._prices.get(symbol)
            if price is None:
                price = parse_price((yield Brokerage.quote.call(self, symbol)).last_price)
            prices[symbol] = Prices(
                (
                    (
                        datetime_to_ns(bar.start),
                        datetime_to_ns(bar.start) + INTERVALS[bar.interval],
                        parse_price(bar.close),
                    )
                    for bar in found
                ),
                price,
            )
        return equity_history(key, window, state.cash, held, since, known_from, prices)

    aportfolio_history = portfolio_history.coroutine()

    def _transactions_since(
        self, key: AccountId, start_ns: int, state: AccountState
    ) -> Generator[Call[Any], Any, tuple[list[Transaction], int, bool]]:
        """The transactions the account made after `start_ns` up to its `state` (asked
        before: those made since are left out, so undoing them from `state` is exact), newest
        first; the moment from which they tell everything (`start_ns`, or its first
        transaction's time when it made none before, or the oldest it still keeps when it keeps
        no older ones and has no store); and whether they are all it made since `start_ns`
        (transactions are numbered in turn in their account, so a gap shows)."""
        start = ns_to_datetime(start_ns)
        listed: list[Transaction] = yield Brokerage.transactions.call(
            self, key, after=start, newest_first=True
        )
        since = [t for t in listed if _number(t) <= state.transactions]
        if not since:
            return since, start_ns, True
        oldest = since[-1]
        number = _number(oldest)
        if number > 1:
            at_start = ns_to_datetime(start_ns + 1_000)  # (`until` is exclusive, to the µs)
            before: list[Transaction] = yield Brokerage.transactions.call(
                self, key, until=at_start, newest_first=True, limit=1
            )
            if before and _number(before[0]) == number - 1:
                return since, start_ns, True
        # its first transaction (complete), or the oldest it still keeps (a gap before it)
        return since, max(start_ns, datetime_to_ns(oldest.at)), number == 1

    @steps
    def today(self, account_id: str) -> Steps[Today]:
        """The account's day so far, from the start of the UTC day (as the day bars): its
        equity then at the previous day's closes (`last_equity`), and each holding's price then
        and P/L since, what it bought or was granted today counted at what that cost and what
        it sold today at what that brought in (`engine.equity.day_of`). Rebuilt from today's
        transactions; None where those are not all known."""
        key = account_key(account_id)
        now = self._clock()
        start_ns = now - now % INTERVALS["1d"]
        state: AccountState = yield self._ask("today", lambda r: GetAccountState(key, r))
        today, _, complete = yield from self._transactions_since(key, start_ns, state)
        held = {p.symbol: p.quantity for p in state.positions if p.quantity}
        symbols = set(held)
        symbols |= {t.symbol for t in today if t.symbol is not None and t.quantity}
        prices: dict[Symbol, tuple[int, int]] = {}
        for symbol in sorted(symbols):
            quote: QuoteSnapshot = yield Brokerage.quote.call(self, symbol)
            last = parse_price(quote.last_price)
            prices[symbol] = (parse_price(quote.last_price - quote.change), last)
        return day_of(key, start_ns, state.cash, held, today if complete else None, prices)

    atoday = today.coroutine()

    def net_worth(self, account_id: str) -> Decimal:
        """Cash plus holdings at current prices."""
        return self.portfolio(account_id).net_worth

    @operation
    def transactions(
        self,
        account_id: str,
        kind: str | Iterable[str] | None = None,
        symbol: str | None = None,
        *,
        after: datetime | None = None,
        until: datetime | None = None,
        newest_first: bool = False,
        offset: int = 0,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Call[list[Transaction]]:
        """Movements of cash or shares in the account, oldest first (or `newest_first`),
        optionally only of `kind` (one or several of "buy", "sell", "deposit", "withdrawal",
        "grant", "fee"), of `symbol`, made after `after` and before `until` (exclusive; a naive
        datetime is UTC); all of them, or `limit` from the `offset`-th match on, or after the
        transaction `cursor` (a page's last transaction id, in the listing's order)."""
        start, count = parse_page(offset, limit)
        key = account_key(account_id)
        query = TransactionQuery(
            key,
            parse_kinds(kind),
            None if symbol is None else parse_symbol(symbol),
            None if after is None else ns_to_datetime(parse_moment(after, "after") or 0),
            None if until is None else ns_to_datetime(parse_moment(until, "until") or 0),
            parse_flag(newest_first, "newest_first"),
            start,
            count,
            parse_cursor(cursor, f"{key}-"),
        )
        call = self._ask("transactions", lambda r: GetTransactions(query, r))

        def search(journal: GroupCommitJournal, _: Kept) -> list[Transaction]:
            return journal.find_transactions(query)[query.offset : query.end]

        return self._searched(
            call,
            search,
            lambda found: found.items[query.offset : query.end],
            lambda found: query.complete(found.items, found.dropped, found.oldest),
        )

    transactions_async = transactions.future()
    atransactions = transactions.coroutine()

    # -- alerts --------------------------------------------------------------------------------

    @operation
    def add_alert(
        self,
        account_id: str,
        symbol: str,
        condition: str,
        threshold: Any,
        *,
        one_shot: bool = True,
    ) -> Call[AlertSnapshot]:
        """Alert the account when `symbol`'s price goes at or "above", or at or "below",
        `threshold`: an `AlertTriggered` event. One-shot by default (it fires once and is
        gone); a standing alert (`one_shot=False`) fires each time the price crosses in."""
        return self._request(AddAlert.parse(account_id, symbol, condition, threshold, one_shot))

    add_alert_async = add_alert.future()
    aadd_alert = add_alert.coroutine()

    @operation
    def cancel_alert(self, alert_id: str) -> Call[AlertSnapshot]:
        """Remove an active alert. Raises `UnknownAlertError` if it fired or never was."""
        return self._request(CancelAlert.parse(alert_id))

    cancel_alert_async = cancel_alert.future()
    acancel_alert = cancel_alert.coroutine()

    @operation
    def alerts(self, account_id: str) -> Call[list[AlertSnapshot]]:
        """An account's active alerts, by symbol then age."""
        key = account_key(account_id)
        return Call(self._ask("alerts", lambda r: GetAlerts(key, r)).reply, _flatten)

    alerts_async = alerts.future()
    aalerts = alerts.coroutine()

    @operation
    def fired_alerts(self, account_id: str) -> Call[list[AlertSnapshot]]:
        """An account's latest alert firings (at most 20 per symbol, kept in memory), each
        with the price that fired it and when, newest first."""
        key = account_key(account_id)
        call = self._ask("fired_alerts", lambda r: GetAlerts(key, r, fired=True))
        return Call(call.reply, _newest_fired)

    afired_alerts = fired_alerts.coroutine()

    # -- watchlists ----------------------------------------------------------------------------

    @operation
    def create_watchlist(
        self, account_id: str, name: str, symbols: Iterable[str] = ()
    ) -> Call[Watchlist]:
        """Create a named watchlist of listed symbols (each kept once, in order)."""
        return self._request(CreateWatchlist.parse(account_id, name, symbols))

    create_watchlist_async = create_watchlist.future()
    acreate_watchlist = create_watchlist.coroutine()

    @operation
    def rename_watchlist(self, account_id: str, name: str, new_name: str) -> Call[Watchlist]:
        """Rename a watchlist."""
        return self._request(RenameWatchlist.parse(account_id, name, new_name))

    rename_watchlist_async = rename_watchlist.future()
    arename_watchlist = rename_watchlist.coroutine()

    @operation
    def replace_watchlist(
        self,
        account_id: str,
        name: str,
        symbols: Iterable[str] | None = None,
        new_name: str | None = None,
    ) -> Call[Watchlist]:
        """Replace a watchlist's symbols (None: keep them) and/or rename it, in one step: a
        refusal (an unknown symbol, a name taken) changes nothing."""
        listed = None if symbols is None else list(symbols)
        return self._request(ReplaceWatchlist.parse(account_id, name, listed, new_name))

    replace_watchlist_async = replace_watchlist.future()
    areplace_watchlist = replace_watchlist.coroutine()

    @operation
    def delete_watchlist(self, account_id: str, name: str) -> Call[None]:
        """Delete a watchlist."""
        return self._request(DeleteWatchlist.parse(account_id, name))

    delete_watchlist_async = delete_watchlist.future()
    adelete_watchlist = delete_watchlist.coroutine()

    @operation
    def add_to_watchlist(self, account_id: str, name: str, symbol: str) -> Call[Watchlist]:
        """Add a listed symbol to a watchlist (no change if it is there)."""
        return self._request(AddToWatchlist.parse(account_id, name, symbol))

    add_to_watchlist_async = add_to_watchlist.future()
    aadd_to_watchlist = add_to_watchlist.coroutine()

    @operation
    def remove_from_watchlist(self, account_id: str, name: str, symbol: str) -> Call[Watchlist]:
        """Remove a symbol from a watchlist."""
        return self._request(RemoveFromWatchlist.parse(account_id, name, symbol))

    remove_from_watchlist_async = remove_from_watchlist.future()
    aremove_from_watchlist = remove_from_watchlist.coroutine()

    @operation
    def watchlists(self, account_id: str) -> Call[list[Watchlist]]:
        """An account's watchlists with their symbols."""
        key = account_key(account_id)
        return self._ask("watchlists", lambda r: GetWatchlists(key, None, r))

    watchlists_async = watchlists.future()
    awatchlists = watchlists.coroutine()

    def watchlist(self, account_id: str, name: str) -> WatchlistQuotes:
        """One watchlist with a live quote for each of its symbols."""
        key, title = account_key(account_id), parse_watchlist_name(name)
        found: Watchlist = self._wait(
            self._ask("watchlist", lambda r: GetWatchlists(key, title, r)).reply
        )
        futures = [self._ask("watchlist", partial(GetQuote, s)) for s in found.symbols]
        return WatchlistQuotes(found.name, tuple(self._wait(f.reply) for f in futures))

    # -- orders --------------------------------------------------------------------------------

    @operation
    def place_order(
        self,
        account_id: str,
        symbol: str,
        side: str,
        quantity: Any,
        order_type: str = "market",
        limit_price: Any = None,
        time_in_force: str = "gtc",
        *,
        client_order_id: str | None = None,
        keep_refused: bool = True,
        stop_price: Any = None,
        trail_price: Any = None,
        trail_percent: Any = None,
        self_trade_prevention: str | None = None,
        order_class: str | None = None,
        take_profit: Any = None,
        stop_loss: Any = None,
    ) -> Call[OrderSnapshot]:
        """Place an order; return it once its immediate matching and settlement are done.

        `side` is "buy" or "sell", `order_type` "market" or "limit" (which needs
        `limit_price`), `time_in_force` "gtc", "ioc", "fok" or "day". The stop types wait for
        a trigger and are "gtc" or "day": "stop" (needs `stop_price`; a sell triggers when the
        price falls to it, a buy when it rises to it, then it is a market order), "stop_limit"
        (`stop_price` and `limit_price`: then a limit order) and "trailing_stop" (`trail_price`,
        an amount, or `trail_percent`: its stop follows the highest price since it was placed
        for a sell, the lowest for a buy, at that distance). A stop buy reserves cash as a
        market buy at its stop price would. In `market` mode the feed's price triggers stops,
        in `book` mode the last trade. A waiting stop comes back PENDING.
        `self_trade_prevention` (None: the account's, `set_self_trade_prevention`) says what
        happens in `book` mode when the order would trade with a resting order of its own
        account: "cancel_newest" cancels this order's rest, "cancel_oldest" the resting order,
        "cancel_both" both, "allow" lets them trade; a cancelled side carries the reason
        `self_trade`. A marketable order
        comes back EXECUTED or PARTIALLY_FILLED, a resting one PENDING, a refused one REJECTED
        with its `reject_reason`; a market or IOC/FOK order that could not fill comes back
        CANCELLED with its `cancel_reason`. `client_order_id` is the caller's own id for the
        order (1-128 characters), unique among the account's orders: a second order with it
        raises `DuplicateError`, and `order_by_client_id` finds the order. With `keep_refused`
        False an order the pre-trade check refuses is answered but not kept in the account's
        history (nor streamed), and its client order id is free again. An order refused as
        BUSY is never kept.

        `order_class` ties exit legs to the order (the answer names them in `legs`; each leg's
        `parent` is the order): "bracket" (an entry, market, limit, stop or stop limit, with a
        take-profit limit and a stop-loss stop, both on the other side), "oto" (an entry with
        one of them) or "oco" (a limit order at the take-profit's price that is itself the
        take-profit, with the stop-loss as its leg). `take_profit` is `{"limit_price": p}`,
        `stop_loss` is `{"stop_price": p}` with an optional `"limit_price"` (a stop limit).
        The legs of an entry are HELD until it ends; if it filled shares they then work for
        what it filled (REJECTED if the shares or cash they need are no longer free), else
        they are cancelled (`entry_unfilled`). The two exit legs are one-cancels-other: a fill
        of either takes as many shares off the other, and when either ends the other is
        cancelled (`oco`); they reserve once for both. Their time in force is the order's
        ("gtc" or "day"). A leg's prices may be replaced, held or working (`replace_order`);
        an entry with legs is not replaced (cancel and place again).
        """
        placed = time.perf_counter_ns()
        command = PlaceOrder.parse(
            account_id,
            symbol,
            side,
            quantity,
            order_type,
            limit_price,
            time_in_force,
            client_order_id,
            stop_price,
            trail_price,
            trail_percent,
            self_trade_prevention,
            order_class,
            take_profit,
            stop_loss,
        )
        keep = parse_flag(keep_refused, "keep_refused")
        self._changing()
        try:
            self._admission.pop()
            reply = _OrderFuture(self._admission, self.timeout)
            admitted = True
        except IndexError:  # too many in flight: the gateway rejects it as BUSY at once
            reply = _OrderFuture(None, self.timeout)
            admitted = False
        try:
            self._send("place_order", Place(command, reply, placed, admitted, keep), reply)
        except BaseException:
            if admitted:
                self._admission.append(None)
            raise
        return Call(reply, settled=True)

    place_order_async = place_order.future()
    aplace_order = place_order.coroutine()

    @operation
    def cancel_order(self, order_id: str) -> Call[OrderSnapshot]:
        """Cancel what remains of a pending or partially filled order and release its
        reservation. Raises `OrderNotCancellableError` if the order is already finished."""
        return self._request(CancelOrder.parse(order_id))

    cancel_order_async = cancel_order.future()
    acancel_order = cancel_order.coroutine()

    @operation
    def replace_order(
        self,
        order_id: str,
        quantity: Any = None,
        limit_price: Any = None,
        *,
        stop_price: Any = None,
        trail_price: Any = None,
        trail_percent: Any = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
    ) -> Call[OrderSnapshot]:
        """Replace an open order (a resting limit, a waiting stop, or an exit leg's prices) with
        the terms given, the others kept; return the new order, which carries on with
        `replaces` naming the old one (now REPLACED, `replaced_by` naming the new).
        `quantity` is the new total counting what the old order filled: the new order is for
        the rest. The new order keeps the old one's place in the book when it is a limit at
        the same price for no more shares; else it
        comes as a new order (and may trade at once). The reservation moves in one step: a
        replace the account cannot afford comes back REJECTED (and kept nowhere) and the old
        order stays. A replace racing a fill is settled after that fill: the fill counts
        toward the total, and no share is lost or counted twice.

        An exit leg of a bracket, OTO or OCO order (held or working) is replaced for new
        prices only: the new leg takes the old one's place under its entry and in its pair, for
        what the old one had left; its take-profit must stay beyond its stop-loss.

        Raises `OrderNotReplaceableError` for an order that is finished (it may have filled
        meanwhile), a market order, one with a replace pending, the entry of a bracket or OTO,
        or a leg whose other leg has a replace pending; `ValidationError` for a term its type
        does not use, a total not above what it filled, or a leg's new quantity, time in force
        or crossing prices."""
        command = ReplaceOrder.parse(
            order_id,
            quantity,
            limit_price,
            stop_price,
            trail_price,
            trail_percent,
            time_in_force,
            client_order_id,
        )
        return self._request(command)

    replace_order_async = replace_order.future()
    areplace_order = replace_order.coroutine()

    @operation
    def get_order(self, order_id: str) -> Call[OrderSnapshot]:
        """One order as it stands now."""
        key = order_key(order_id)
        call = self._ask("get_order", lambda r: GetOrder(key, r))
        return self._searched(call, lambda journal, _: journal.find_order(order_id=key))

    get_order_async = get_order.future()
    aget_order = get_order.coroutine()

    @operation
    def order_by_client_id(self, account_id: str, client_order_id: str) -> Call[OrderSnapshot]:
        """The account's order placed with this `client_order_id` (`UnknownOrderError` if
        none)."""
        key = account_key(account_id)
        client_id = parse_client_order_id(client_order_id)
        if client_id is None:
            raise ValidationError("client_order_id", "is required", client_order_id)
        call = self._ask("order_by_client_id", lambda r: GetOrderByClientId(key, client_id, r))
        return self._searched(call, lambda journal, _: journal.find_order(client=(key, client_id)))

    order_by_client_id_async = order_by_client_id.future()
    aorder_by_client_id = order_by_client_id.coroutine()

    @operation
    def orders(
        self,
        account_id: str,
        status: str | Iterable[str] | None = None,
        symbol: str | None = None,
        *,
        side: str | None = None,
        after: datetime | None = None,
        until: datetime | None = None,
        newest_first: bool = False,
        offset: int = 0,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Call[list[OrderSnapshot]]:
        """An account's orders, oldest first (or `newest_first`), optionally only of `status`
        (one or several), `symbol`, `side` ("buy" or "sell"), made after `after` and before
        `until` (exclusive; a naive datetime is UTC); all of them, or a page: `limit` orders
        from the `offset`-th match on, or after the order `cursor` (a page's last order id,
        in the listing's order: the next page however many orders came meanwhile). Open
        orders are indexed: asking only for them looks at no finished order."""
        start, count = parse_page(offset, limit)
        query = OrderQuery(
            account_key(account_id),
            parse_statuses(status),
            None if symbol is None else parse_symbol(symbol),
            None if side is None else Side.parse(side, "side"),
            parse_moment(after, "after"),
            parse_moment(until, "until"),
            parse_flag(newest_first, "newest_first"),
            start,
            count,
            parse_cursor(cursor, "O-"),
        )
        call = self._ask("orders", lambda r: GetOrders(query, r))

        def search(journal: GroupCommitJournal, found: Kept) -> list[OrderSnapshot]:
            return query.merge(found.items, journal.find_orders(query))

        return self._searched(
            call,
            search,
            lambda found: found.items[query.offset : query.end],
            lambda found: query.complete(found.items, found.dropped_ns, found.dropped_number),
        )

    orders_async = orders.future()
    aorders = orders.coroutine()

    # -- notifications -------------------------------------------------------------------------

    def set_notification_preferences(
        self,
        user_id: str,
        *,
        console: bool = False,
        email: str | None = None,
        push: str | None = None,
        sms: str | None = None,
        events: Iterable[str] = ("fill", "cancel", "reject", "alert", "margin_call"),
    ) -> Preferences:
        """Choose where a user's notifications go and which: console (a log event), email
        (an address), push (a webhook URL, sent a JSON POST) and SMS (a phone number, through
        the configured SMS gateway); `events` from "fill", "cancel", "reject", "alert",
        "margin_call".

        A push URL on a loopback, link-local or private address is refused unless the
        settings allow private addresses."""
        kinds = frozenset(events)
        if not kinds <= set(KINDS):
            raise ValidationError("events", f"must be some of {', '.join(KINDS)}", events)
        if email is not None and (
            not isinstance(email, str)
            or "@" not in email
            or len(email) > 254
            or any(c.isspace() or not c.isprintable() for c in email)
        ):
            raise ValidationError("email", "must be an email address", email)
        if push is not None:
            allowed = self._notification_settings.allow_private_addresses
            push = check_push_url(push, allow_private=allowed)
        if sms is not None and self._notification_settings.sms_gateway_url is None:
            raise ValidationError("sms", "needs an sms_gateway_url in the settings", sms)
        channels: dict[str, str | None] = {}
        if console:
            channels["console"] = None
        for name, address in (("email", email), ("push", push), ("sms", sms)):
            if address is not None:
                channels[name] = address
        accounts = self.accounts(user_id)  # raises UnknownUserError
        chosen = Preferences(channels, kinds)
        # kept with the journal first (a restart sets them again), then applied
        self.note(PREFERENCES_NOTE, json.dumps(_plain_preferences(user_id, chosen)))
        answers = self._prefer(user_id, chosen, accounts)
        for answer in answers:
            applied: Preferences = self._wait(answer)
        return applied

    def _prefer(
        self, user_id: str, preferences: Preferences, accounts: Iterable[str]
    ) -> list[pykka.Future[Any]]:
        """Tell the notifier a user's preferences (and accounts), and the bus (the first time)
        to send it the events: the futures of both answers, the preferences' last. Until the
        bus has answered, an event may still be left unbuilt."""
        notifier = self._running("set_notification_preferences").notifier
        for account_id in accounts:
            self._know(account_id, user_id)
        answers: list[pykka.Future[Any]] = []
        if not self._notifying:  # the first user to ask makes the bus send these events on
            self._notifying = True
            bus = self._running("set_notification_preferences").bus
            subscription = Subscription(
                next(self._subscription_ids),
                lambda event: send(notifier, Notify(event)),
                tuple(KINDS.values()),
                None,
                None,
            )
            answers.append(new_future())
            bus.tell(AddSubscription(subscription, answers[-1]))
        answers.append(new_future())
        send(notifier, SetPreferences(user_id, preferences, answers[-1]))
        return answers

    def _restore_preferences(self, state: State) -> None:
        """Set again the notification preferences the journal kept (each user's latest), and
        wait for them to hold, except on the event loop the engine runs on (which must not
        block: there the loop handles them, in order, before any request that follows)."""
        latest: dict[str, Preferences] = {}
        for text in self._notes.get(PREFERENCES_NOTE, ()):
            data = json.loads(text)
            latest[data["user_id"]] = Preferences(dict(data["channels"]), frozenset(data["kinds"]))
        answers = []
        for user_id, preferences in latest.items():
            accounts = [a for a, owner in state.owners.items() if owner == user_id]
            answers += self._prefer(user_id, preferences, accounts)
        engine = self._engine
        if engine is not None and engine.on_loop is not None and engine.on_loop():
            return
        for answer in answers:
            answer.get(timeout=self.timeout)

    def undelivered(self) -> list[Undelivered]:
        """Notifications that failed every attempt, oldest first."""
        notifier = self._running("undelivered").notifier
        reply = new_future()
        send(notifier, GetUndelivered(reply))
        undelivered: list[Undelivered] = self._wait(reply)
        return undelivered

    # -- the session ---------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        """The trading session orders are checked against."""
        return self._session

    def market_open(self) -> bool:
        """Whether the session takes orders now (by the brokerage's clock)."""
        return self._session.is_open(self._clock())

    @operation
    def expire_day_orders(self) -> Call[int]:
        """Cancel every DAY order still resting (reason EXPIRED); return how many. The
        session watcher calls this at each close; a simulation on its own clock may too."""
        return Call(self._request(ExpireDayOrders()).reply, sum)

    expire_day_orders_async = expire_day_orders.future()
    aexpire_day_orders = expire_day_orders.coroutine()

    # -- metrics -------------------------------------------------------------------------------

    def metrics(self) -> MetricsSnapshot:
        """Counters, latency percentiles, orders in flight, the deepest inbox and live actors.

        Finding the deepest inbox reads every actor's inbox length: O(actors).
        """
        runtime = self._running("metrics").runtime
        counters, latencies = self._metrics.read()
        rejected = {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("rejected:")}
        names = (
            "orders_accepted",
            "orders_rejected",
            "orders_filled",
            "orders_cancelled",
            "orders_replaced",
            "stops_triggered",
            "fills",
            "deposits",
            "withdrawals",
            "actors_restarted",
            "symbols_halted",
        )
        return MetricsSnapshot(
            counters={name: counters.get(name, 0) for name in names},
            rejected_by_reason=rejected,
            latency_us=latencies,
            orders_in_flight=self.max_in_flight - len(self._admission),
            deepest_inbox=runtime.deepest_inbox(),
            live_actors=runtime.live_actors,
        )

    def latency_histogram(self, name: str = "place_to_filled") -> list[tuple[int, int]]:
        """A latency's histogram ("place_to_accepted" or "place_to_filled"): pairs of a
        bucket's lowest value in microseconds (buckets are within 1 % wide) and its count."""
        if name not in LATENCIES:
            raise ValidationError("name", f"must be one of {', '.join(LATENCIES)}", name)
        return self._metrics.buckets(name)

    # -- invariants ----------------------------------------------------------------------------

    @operation
    def audit(self) -> Call[AuditReport]:
        """Check every invariant of every account and book and return the totals.

        Each account reconciles its cash and holdings with its own transaction log, and each
        book runs its `check()`. Across accounts it checks that shares and cash traded in
        `book` symbols are conserved and that every open order rests in a book; those
        cross-account rules hold once no request is in flight, so call it when the threads
        that trade are done. Raises AssertionError naming the first broken rule.
        """
        return Call(self._ask("audit", Audit).reply, _reconcile)

    audit_async = audit.future()
    aaudit = audit.coroutine()

    # -- events --------------------------------------------------------------------------------

    def subscribe(
        self,
        callback: Callable[[Event], Any],
        events: Iterable[type] | None = None,
        *,
        account_id: str | None = None,
        symbol: str | None = None,
    ) -> SubscriptionHandle:
        """Call `callback(event)` for each published event of the classes in `events` (all if
        None), optionally only for one account or one symbol.

        Callbacks run one at a time in the event bus's own thread, never on the matching
        path; one that raises is logged and the others go on.
        """
        if not callable(callback):
            raise ValidationError("callback", "must be callable", callback)
        kinds = tuple(events or ())
        if not all(isinstance(kind, type) for kind in kinds):
            raise ValidationError("events", "must be event classes", events)
        bus = self._running("subscribe").bus
        symbol_filter = None if symbol is None else symbol.upper()
        subscription = Subscription(
            next(self._subscription_ids), callback, kinds, account_id, symbol_filter
        )
        reply = new_future()
        bus.tell(AddSubscription(subscription, reply))
        return SubscriptionHandle(self._wait(reply), self)

    def _unsubscribe(self, subscription_id: int) -> bool:
        if self._engine is None:
            return False
        reply = new_future()
        self._engine.bus.tell(RemoveSubscription(subscription_id, reply))
        result: bool = self._wait(reply)
        return result

    def flush_events(self) -> None:
        """Wait until every event published before this call has been delivered.

        Events are published before the call that caused them returns, so after
        `flush_events()` every callback for those calls has run.
        """
        if self._engine is not None:
            reply = new_future()
            self._engine.bus.tell(Flush(reply))
            self._wait(reply)

"""The account actor: owns one account's cash, holdings, reservations, orders and transactions.

It makes the pre-trade check (reserve or reject), sends accepted orders to their symbol's actor,
and settles the fills that come back. Its logic lives in `engine.account.Account`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from typing import Any

from actors.base import BrokerActor, handles, send
from actors.futures import AfterAll, new_future
from actors.messages import (
    AcceptOrder,
    ActorRef,
    Audit,
    BookReplaced,
    CheckMargin,
    DescribeStop,
    DescribeStops,
    GetAccountState,
    GetBalance,
    GetOrder,
    GetOrderByClientId,
    GetOrders,
    GetTransactions,
    GetWatchlists,
    Kept,
    MarginCheck,
    OrderExpired,
    RemovedFromBook,
    RemoveFromBook,
    ReplaceAt,
    ReplaceInBook,
    Request,
    SettleFill,
    SettleMatch,
    SettleTriggered,
    SubmitOrder,
    SubmitPair,
)
from actors.services import Services
from engine.account import Account, filled_past
from engine.commands import (
    WATCHLIST_EDITS,
    CancelOrder,
    Deposit,
    GrantShares,
    ResetAccount,
    SetSelfTradePrevention,
    WatchlistEdit,
    Withdraw,
    encode,
)
from engine.errors import OrderNotCancellableError, OrderNotReplaceableError
from engine.events import (
    MarginCall,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
)
from engine.ids import OrderId
from engine.journal import (
    AccountReset,
    Applied,
    CashMoved,
    Granted,
    HeldCancelled,
    SelfTradeSet,
    WatchlistChanged,
    accepted,
    apply_watchlist_edit,
    refused,
    replaced,
)
from engine.matching import MatchResult, OrderTicket
from engine.money import cents_to_decimal
from engine.orders import (
    CancelReason,
    Order,
    OrderStatus,
    OrderType,
    RejectReason,
    ns_to_datetime,
)


def _done(done: Any, waits: tuple[Any, ...]) -> None:
    """Say an effect is applied; with `waits`, once they are done too."""
    done.set(AfterAll(None, waits) if waits else None)


def _accepted_event(order: Order) -> OrderAccepted:
    return OrderAccepted(order.snapshot())


def rejected(services: Services, order: Order, reason: RejectReason, log: Any) -> None:
    """Count and log one refused order (the gateway's refusals and the pre-trade check's)."""
    services.metrics.count("orders_rejected")
    services.metrics.count("rejected:" + reason.value)
    if services.verbose:
        log.info(
            "order.rejected", order_id=order.order_id, symbol=order.symbol, reason=reason.value
        )


class AccountActor(BrokerActor):
    """One account, one message at a time.

    Supervised: after a failure past a handler, or a stop request, it goes on from its state with
    its queued mail (the message that failed is answered with the error); the audit, which
    reconciles the account with its own ledger, reports the failure.
    """

    supervised = True

    def __init__(
        self,
        account: Account,
        services: Services,
        books: dict[OrderId, ActorRef] | None = None,
    ) -> None:
        super().__init__(services.log, account_id=account.account_id)
        self.account = account
        self.services = services
        self.clock = services.clock
        self.metrics = services.metrics
        self.verbose = services.verbose
        self.books: dict[OrderId, ActorRef] = books or {}  # open order -> its symbol's actor
        self.called = False
        """A margin account below maintenance when last checked (its call was told)."""
        if services.journal is None:
            account.outbox = None
        elif account.outbox is None:
            account.outbox = []

    def _finished(self, order: Order) -> None:
        if order.status.is_final:
            self.books.pop(order.order_id, None)

    # -- cash and shares -----------------------------------------------------------------------

    @handles(Deposit, Withdraw)
    def _move_cash(self, message: Request[Deposit | Withdraw]) -> None:
        now = self.clock()
        command = message.command
        if isinstance(command, Deposit):
            record = self.account.deposit(command.amount, now)
            self.metrics.count("deposits")
        else:
            record = self.account.withdraw(command.amount, now)
            self.metrics.count("withdrawals")
        if self.verbose:
            self.log.info("cash." + record.kind.value, amount=str(record.amount))
        cents = command.amount if isinstance(command, Deposit) else -command.amount
        fact = CashMoved(command.account_id, cents, now)
        self.services.answer(message.reply, self.account.balance(), fact, self._outbox())

    @handles(ResetAccount)
    def _reset(self, message: Request[ResetAccount]) -> None:
        command = message.command
        now = self.clock()
        self.account.reset(command.cash, now)
        self.metrics.count("resets")
        if self.verbose:
            self.log.info("account.reset", cash=command.cash)
        fact = AccountReset(command.account_id, command.cash, now)
        self.services.answer(message.reply, self.account.balance(), fact, self._outbox())

    @handles(SetSelfTradePrevention)
    def _set_self_trade(self, message: Request[SetSelfTradePrevention]) -> None:
        command = message.command
        self.account.self_trade = command.mode
        fact = SelfTradeSet(command.account_id, command.mode)
        self.services.answer(message.reply, command.mode, fact)

    @handles(GrantShares)
    def _grant_shares(self, message: Request[GrantShares]) -> None:
        command = message.command
        now = self.clock()
        record = self.account.grant(command.symbol, command.quantity, command.price, now)
        if self.verbose:
            self.log.info("shares.granted", symbol=command.symbol, quantity=command.quantity)
        fact = Granted(command.account_id, command.symbol, command.quantity, command.price, now)
        self.services.answer(message.reply, record, fact, self._outbox())

    # -- orders --------------------------------------------------------------------------------

    @handles(AcceptOrder)
    def _accept(self, message: AcceptOrder) -> None:
        order = message.order
        reason = order.reject_reason  # set already when the gateway refused it (and journaled)
        keep = message.keep_refused
        if reason is None:
            if message.legs:
                group = [order, *message.legs]
                reason = self.account.accept_group(group, order.created_ns, keep_refused=keep)
            else:
                reason = self.account.accept(order, order.created_ns, keep_refused=keep)
            journaled = False
        else:
            if keep:
                self.account.record_refused(order)
            journaled = True
        journal = self.services.journal
        if reason is not None:
            rejected(self.services, order, reason, self.log)
            if keep:
                self.services.publish(
                    OrderRejected, lambda: OrderRejected(order.snapshot(), reason)
                )
            if message.reply is not None:
                if journal is None or journaled:
                    message.reply.set(order.snapshot())
                else:
                    fact = refused(order, kept=keep)
                    durable = journal.append(fact, self._outbox())
                    message.reply.set(AfterAll(order.snapshot(), (durable,)))
            if journaled and keep:  # the gateway journaled its refusal: its row goes with this
                self._applied("kept", order.order_id)
            return
        if journal is not None:
            journal.append(accepted(order))  # the reply waits for the match, journaled later
            for leg in message.legs:
                journal.append(accepted(leg))
        self.metrics.count("orders_accepted")
        self.metrics.latency(
            "place_to_accepted", self.services.monotonic() - order.placed_monotonic_ns
        )
        if self.verbose:
            self.log.info(
                "order.accepted",
                order_id=order.order_id,
                symbol=order.symbol,
                side=order.side.value,
                quantity=order.quantity,
                order_type=order.order_type.value,
            )
        self.services.publish(OrderAccepted, lambda: OrderAccepted(order.snapshot()))
        self.books[order.order_id] = message.symbol_ref
        ticket = OrderTicket.of(order, self.actor_ref)
        if not message.legs:
            send(message.symbol_ref, SubmitOrder(ticket, message.reply))
            return
        for leg in message.legs:
            self.books[leg.order_id] = message.symbol_ref
        if order.sibling is None:  # an entry: its legs are held until it ends
            send(message.symbol_ref, SubmitOrder(ticket, message.reply))
        else:  # an OCO pair: both legs work at once
            second = OrderTicket.of(message.legs[0], self.actor_ref)
            send(message.symbol_ref, SubmitPair(ticket, second, message.reply))

    def _follow_up(self) -> tuple[Any, ...]:
        """Tell of the orders the last change ended in passing (a pair's other leg, an entry's
        held legs) and send the exit legs it set working to their book; return their replies,
        for the caller of the change to wait on (so that what it is told, legs working, is
        in the journal when it is told). Called after the change's `Applied` fact is in the
        journal, so that a replay finds the legs working before their book's fact of them."""
        account = self.account
        for order in account.take_knock_on():
            self._ended(order)
        waits = []
        for legs in account.take_activated():
            book = self.books[legs[0].order_id]
            for leg in legs:
                self.services.publish(OrderAccepted, partial(_accepted_event, leg))
                if self.verbose:
                    self.log.info("order.legs_working", order_id=leg.order_id, parent=leg.parent)
            first = OrderTicket.of(legs[0], self.actor_ref)
            done = new_future()
            if len(legs) == 1:
                send(book, SubmitOrder(first, done))
            else:
                send(book, SubmitPair(first, OrderTicket.of(legs[1], self.actor_ref), done))
            waits.append(done)
        return tuple(waits)

    def _ended(self, order: Order) -> None:
        """Count, log and publish an order cancelled or refused (itself, or in passing)."""
        if order.status is OrderStatus.REJECTED:
            reason = order.reject_reason
            assert reason is not None
            rejected(self.services, order, reason, self.log)
            self.services.publish(OrderRejected, lambda: OrderRejected(order.snapshot(), reason))
        else:
            cancel = order.cancel_reason
            assert cancel is not None
            self.metrics.count("orders_cancelled")
            if self.verbose:
                self.log.info(
                    "order.cancelled",
                    order_id=order.order_id,
                    symbol=order.symbol,
                    reason=cancel.value,
                    filled=order.filled_quantity,
                )
            self.services.publish(OrderCancelled, lambda: OrderCancelled(order.snapshot(), cancel))
        self._finished(order)

    def _settle(self, order_id: OrderId, fill: Any) -> Order:
        record = self.account.settle_fill(
            order_id, fill.trade_id, fill.quantity, fill.price, fill.at_ns
        )
        order = self.account.orders[order_id]
        if order.status is OrderStatus.EXECUTED:
            self.metrics.count("orders_filled")
            self.metrics.latency(
                "place_to_filled", self.services.monotonic() - order.placed_monotonic_ns
            )
        if self.verbose:
            self.log.info(
                "order.filled",
                order_id=order_id,
                symbol=order.symbol,
                trade_id=fill.trade_id,
                quantity=fill.quantity,
                price=str(record.price),
                status=order.status.value,
            )
        self.services.publish(OrderFilled, lambda: OrderFilled(order.snapshot(), record))
        self._finished(order)
        return order

    def _cancel(self, order_id: OrderId, reason: CancelReason, at_ns: int) -> Order:
        order = self.account.cancel_rest(order_id, reason, at_ns)
        self._ended(order)
        return order

    @handles(SettleMatch)
    def _settle_match(self, message: SettleMatch) -> None:
        result = message.result
        order = self._apply_result(message.order_id, result, message.at_ns, result.triggered)
        changed = result.fills or result.cancel_reason is not None or result.triggered is not None
        account = self.account
        if changed and (self.services.journal is not None or account.knock_on or account.activated):
            follow = self._applied("match", message.order_id)
        else:  # nothing to tell, or no one, and nothing to follow up: the common case
            follow = ()
        if message.reply is not None:
            if message.answer_for is not None:  # a pair: its first leg answers for both
                order = self.account.order(message.answer_for)
            waits = message.waits + follow if follow else message.waits
            message.reply.set(AfterAll(order.snapshot(), waits))

    @handles(SettleTriggered)
    def _settle_triggered(self, message: SettleTriggered) -> None:
        trigger = (message.stop_price, message.mark)
        self._apply_result(message.order_id, message.result, message.at_ns, trigger)
        _done(message.done, self._applied("triggered", message.order_id))

    def _apply_result(
        self,
        order_id: OrderId,
        result: MatchResult,
        at_ns: int,
        trigger: tuple[int, int | None] | None,
    ) -> Order:
        """Settle what the book did with one of this account's orders: a stop's trigger, the
        order's own fills, the cancel of its rest."""
        order = self.account.order(order_id)
        if trigger is not None:
            order.trigger(at_ns, *trigger)
            if self.verbose:
                self.log.info(
                    "order.triggered",
                    order_id=order_id,
                    symbol=order.symbol,
                    stop_price=str(order.snapshot().stop_price),
                )
        for fill in result.fills:
            self._settle(order_id, fill)
        if result.cancel_reason is not None:
            self._cancel(order_id, result.cancel_reason, at_ns)
        elif result.rested and self.verbose:
            self.log.info(
                "order.resting",
                order_id=order.order_id,
                symbol=order.symbol,
                remaining=order.remaining,
            )
        return order

    def _applied(self, kind: str, *ids: str) -> tuple[Any, ...]:
        """Tell the journal (if any) this account applied the effect `kind:id...` of a book's
        fact (with the orders it finished and the transactions it made, for the history), then
        follow up (`_follow_up`: what it returns, the caller waits on). The key is made only
        for a journal: this runs at every fill."""
        journal = self.services.journal
        if journal is not None:
            key = ":".join((kind, *ids))
            journal.append(Applied(self.account.account_id, key), self._outbox())
        account = self.account
        if account.knock_on or account.activated:
            return self._follow_up()
        return ()  # the common case: nothing to follow up

    def _outbox(self) -> list[Any]:
        """The orders finished and transactions made since the last fact, for the store."""
        return self.account.take_outbox()

    @handles(SettleFill)
    def _settle_fill(self, message: SettleFill) -> None:
        self._settle(message.order_id, message.fill)
        follow = self._applied("fill", message.fill.trade_id, message.order_id)
        if message.done is not None:  # (what _done does, inline: the order path)
            message.done.set(AfterAll(None, follow) if follow else None)

    @handles(OrderExpired)
    def _expired(self, message: OrderExpired) -> None:
        self._cancel(message.order_id, message.reason, message.at_ns)
        _done(message.done, self._applied("expired", message.order_id))

    @handles(CancelOrder)
    def _cancel_order(self, message: Request[CancelOrder]) -> None:
        order = self.account.order(message.command.order_id)
        book = self.books.get(order.order_id)
        if order.status.is_final or book is None:
            raise OrderNotCancellableError(order.order_id, order.status.value)
        if order.status is OrderStatus.HELD:  # in no book yet: it ends here
            now = self.clock()
            first, *others = self.account.cancel_held(order.order_id, now)
            for other in others:
                self._ended(other)
            self._ended(first)
            fact = HeldCancelled(self.account.account_id, order.order_id, now)
            self.services.answer(message.reply, first.snapshot(), fact, self._outbox())
            return
        book.tell(RemoveFromBook(order.order_id, self.actor_ref, message.reply))

    @handles(ReplaceAt)
    def _replace(self, message: ReplaceAt) -> None:
        command = message.command
        account = self.account
        old = account.order(command.order_id)
        book = self.books.get(old.order_id)
        if old.status.is_final or book is None or old.order_type is OrderType.MARKET:
            state = old.status.value if old.order_type is not OrderType.MARKET else "a market order"
            raise OrderNotReplaceableError(old.order_id, state)
        terms = command.terms(old)
        price = message.prices[old.symbol]
        new = message.factory.create(
            message.order_id, terms, message.created_ns, price, message.placed_monotonic_ns
        )
        if not message.market_open:  # refused as a new order would be; the old one stays
            reason: RejectReason | None = RejectReason.MARKET_CLOSED
        elif old.status is OrderStatus.HELD:
            reason = None
        else:
            reason = account.begin_replace(old.order_id, new)
        if reason is not None:  # answered, kept nowhere; its id is spent, durably
            new.reject(reason, message.created_ns)
            rejected(self.services, new, reason, self.log)
            self.services.answer(message.reply, new.snapshot(), refused(new, kept=False))
            return
        if old.status is OrderStatus.HELD:  # in no book yet: replaced here
            account.replace_held(old.order_id, new, message.created_ns)
            self.books[new.order_id] = self.books.pop(old.order_id)
            self._was_replaced(old, new, kept_priority=False)
            fact = replaced(old.symbol, old.order_id, new, message.created_ns)
            self.services.answer(message.reply, new.snapshot(), fact, self._outbox())
            return
        if self.verbose:
            self.log.info("order.replacing", order_id=old.order_id, by=new.order_id)
        book.tell(ReplaceInBook(old.order_id, old.quantity, new, self.actor_ref, message.reply))

    @handles(BookReplaced)
    def _book_replaced(self, message: BookReplaced) -> None:
        account, found = self.account, message.found
        if found is None:  # it finished meanwhile (its news came first) or filled the new total
            new = account.abort_replace(message.order_id)
            old = account.order(message.order_id)
            if old.status.is_final:
                raise OrderNotReplaceableError(old.order_id, old.status.value)
            raise filled_past(old, new.quantity)
        new = account.finish_replace(message.order_id, found.quantity, message.at_ns)
        old = account.order(message.order_id)
        book = self.books.pop(message.order_id)
        self.books[new.order_id] = book
        self._was_replaced(old, new, kept_priority=found.kept_priority)
        result = found.result
        self._apply_result(new.order_id, result, message.at_ns, result.triggered)
        self._finished(new)
        self._applied("replaced", message.order_id)
        message.reply.set(AfterAll(new.snapshot(), message.waits))

    def _was_replaced(self, old: Order, new: Order, *, kept_priority: bool) -> None:
        """Count, log and tell of `old` replaced by `new`."""
        self.metrics.count("orders_replaced")
        if self.verbose:
            self.log.info(
                "order.replaced",
                order_id=old.order_id,
                by=new.order_id,
                symbol=old.symbol,
                kept_priority=kept_priority,
            )
        self.services.publish(OrderReplaced, lambda: OrderReplaced(old.snapshot(), new.snapshot()))
        self.services.publish(OrderAccepted, lambda: OrderAccepted(new.snapshot()))

    @handles(RemovedFromBook)
    def _removed(self, message: RemovedFromBook) -> None:
        order = self.account.order(message.order_id)
        if not message.removed:
            # Not resting any more: the fills or cancel that finished it were sent to this
            # account before this answer, so they are settled and the order is final.
            assert order.status.is_final, f"{order.order_id} neither resting nor final"
            raise OrderNotCancellableError(order.order_id, order.status.value)
        cancelled = self._cancel(message.order_id, CancelReason.REQUESTED, message.at_ns)
        waits = self._applied("removed", message.order_id)
        if message.durable is not None:
            waits = (message.durable, *waits)
        message.reply.set(AfterAll(cancelled.snapshot(), waits) if waits else cancelled.snapshot())

    # -- watchlists ----------------------------------------------------------------------------

    @handles(*WATCHLIST_EDITS)
    def _edit_watchlist(self, message: Request[WatchlistEdit]) -> None:
        command = message.command
        answer = apply_watchlist_edit(self.account, command)
        fact = WatchlistChanged(command.account_id, json.dumps(encode(command)))
        self.services.answer(message.reply, answer, fact)

    @handles(GetWatchlists)
    def _watchlists(self, message: GetWatchlists) -> None:
        lists = self.account.watchlists
        message.reply.set(lists.all() if message.name is None else lists.get(message.name))

    # -- reads ---------------------------------------------------------------------------------

    def recover(self, message: Any, error: BaseException | None) -> str:
        """Go on from the state as it is (the audit checks it against the ledger)."""
        self.metrics.count("actors_restarted")
        return super().recover(message, error)

    @handles(Audit)
    def _audit(self, message: Audit) -> None:
        message.reply.set(replace(self.account.audit(), failures=self.failures))

    @handles(GetOrder)
    def _get_order(self, message: GetOrder) -> None:
        self._describe(self.account.order(message.order_id), message.reply)

    @handles(GetOrderByClientId)
    def _get_order_by_client_id(self, message: GetOrderByClientId) -> None:
        self._describe(self.account.order_by_client_id(message.client_order_id), message.reply)

    def _describe(self, order: Order, reply: Any) -> None:
        """Answer with `order`'s snapshot; a waiting trailing stop's stop price and mark move
        with the price in its symbol's stop book, so its symbol's actor completes it."""
        book = self.books.get(order.order_id)
        if (
            order.order_type is OrderType.TRAILING_STOP
            and order.triggered_ns is None
            and book is not None
        ):
            book.tell(DescribeStop(order.snapshot(), reply))
        else:
            reply.set(order.snapshot())

    @handles(GetOrders)
    def _orders(self, message: GetOrders) -> None:
        query, account = message.query, self.account
        orders = account.kept_orders(
            query.matches,
            only_open=query.only_open(),
            newest_first=query.newest_first,
            limit=query.end,
        )
        snapshots = [o.snapshot() for o in orders]
        kept = Kept(snapshots, account.dropped_ns, account.dropped_number)
        trailing: dict[Any, list[int]] = {}  # the waiting trailing stops, by their symbol
        for index, order in enumerate(orders):
            if order.order_type is OrderType.TRAILING_STOP and order.triggered_ns is None:
                book = self.books.get(order.order_id)
                if book is not None:
                    trailing.setdefault(book, []).append(index)
        if not trailing:
            message.reply.set(kept)
            return
        hops = tuple((book, tuple(indices)) for book, indices in trailing.items())
        send(hops[0][0], DescribeStops(kept, hops, message.reply))

    @handles(CheckMargin)
    def _check_margin(self, message: CheckMargin) -> None:
        account = self.account
        if account.margin is None:
            message.reply.set(None)
            return
        figures = account.margin_figures()
        called = figures.deficit > 0
        if not message.tell:
            message.reply.set(MarginCheck(account.account_id, figures, ()))
            return
        if called and not self.called:
            self.metrics.count("margin_calls")
            at = ns_to_datetime(self.clock())
            self.log.warning(
                "margin.call",
                equity=figures.equity,
                maintenance=figures.maintenance,
                deficit=figures.deficit,
            )
            self.services.publish(
                MarginCall,
                lambda: MarginCall(
                    account.account_id,
                    cents_to_decimal(figures.equity),
                    cents_to_decimal(figures.maintenance),
                    cents_to_decimal(figures.deficit),
                    at,
                ),
            )
        self.called = called
        plan = tuple(account.liquidation(figures)) if called else ()
        message.reply.set(MarginCheck(account.account_id, figures, plan))

    @handles(GetBalance)
    def _balance(self, message: GetBalance) -> None:
        message.reply.set(self.account.balance())

    @handles(GetAccountState)
    def _state(self, message: GetAccountState) -> None:
        message.reply.set(self.account.state())

    @handles(GetTransactions)
    def _transactions(self, message: GetTransactions) -> None:
        account = self.account
        kept = account.transactions
        page = replace(message.query, offset=0, limit=message.query.end).page(kept)
        dropped = account.transaction_count - len(kept)
        message.reply.set(Kept(page, dropped=dropped, oldest=kept[0].at if kept else None))

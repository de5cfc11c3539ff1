"""The symbol actor: owns one stock's order book, price, statistics, tape and history.

It matches the orders its accounts send, tells every account its fills, and moves the price on
the feed's request, filling the resting orders that the move triggers.

Supervised: a failure while it only read its state, or a stop request, restarts it from its
state with its queued mail. A failure while it was changing its book (matching, a price move,
a cancel, the close) may have left the book half-changed, so the symbol is halted instead:
every resting order goes back to its account to be cancelled (reason HALTED, reservation
released), the order that was being matched too, and from then on new orders are cancelled
the same way and price moves refused; quotes, bars, trades and the audit keep answering, and
the audit reports the halt.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

from actors.base import BrokerActor, handles, send
from actors.futures import AfterAll, new_future
from actors.messages import (
    Audit,
    BookReplaced,
    DescribeStop,
    DescribeStops,
    GetAlerts,
    GetBars,
    GetDepth,
    GetPriceHistory,
    GetQuote,
    GetTrades,
    OrderExpired,
    RemovedFromBook,
    RemoveFromBook,
    ReplaceInBook,
    Request,
    SetAlert,
    SettleFill,
    SettleMatch,
    SettleTriggered,
    SubmitOrder,
    SubmitPair,
)
from actors.services import Services
from engine.alerts import Alert, AlertBook
from engine.audit import MarketAudit
from engine.commands import CancelAlert, ExpireDayOrders, UpdatePrice
from engine.errors import SymbolHaltedError
from engine.events import AlertTriggered, PriceChanged
from engine.ids import Symbol
from engine.journal import (
    AlertAdded,
    AlertRemoved,
    Expired,
    Halted,
    Matched,
    PriceSet,
    Removed,
    replaced,
)
from engine.matching import Fill, Market, MatchResult, OrderTicket, TradeIdSequence
from engine.money import cents_to_decimal
from engine.orders import CancelReason, OrderSnapshot, ns_to_datetime

_F = TypeVar("_F", bound=Callable[..., Any])

_CHANGES_THE_BOOK = (
    SubmitOrder,
    SubmitPair,
    UpdatePrice,
    RemoveFromBook,
    ReplaceInBook,
    ExpireDayOrders,
)
"""The messages that change the book: a failure in one halts the symbol, and each clears the
published quote first."""
_HALTED = MatchResult((), rested=False, cancel_reason=CancelReason.HALTED)
_NOT_ENTERED = MatchResult((), rested=False, cancel_reason=None)


def _clears_the_quote_itself(handler: _F) -> _F:
    """Mark a handler of `_CHANGES_THE_BOOK` whose first step clears the published quote
    itself (the hot ones: cheaper than the wrapper `_clearing_the_quote` the others get)."""
    handler._clears_the_quote = True  # type: ignore[attr-defined]
    return handler


class SymbolActor(BrokerActor):
    """One symbol, one message at a time (supervised: see the module's docstring).

    Args:
        prices: The last-price board. This actor is the only writer of its own symbol's entry;
            the gateway reads it to set market-buy collars and callers to value portfolios.
    """

    supervised = True

    def __init__(
        self,
        market: Market,
        prices: MutableMapping[Symbol, int],
        services: Services,
        trade_ids: TradeIdSequence | None = None,
        alerts: AlertBook | None = None,
    ) -> None:
        super().__init__(services.log, symbol=market.symbol)
        self.market = market
        self.prices = prices
        self.services = services
        self.clock = services.clock
        self.verbose = services.verbose
        self.trade_ids = trade_ids or TradeIdSequence(market.symbol)
        self.alerts = alerts if alerts is not None else AlertBook()
        prices[market.symbol] = market.price
        self.quotes = services.board.quotes

    def _tell_makers(
        self,
        fills: list[Fill] | tuple[Fill, ...],
        result: MatchResult | None = None,
        at_ns: int = 0,
    ) -> tuple[Any, ...]:
        """Tell the resting orders' accounts their fills and, for `result`'s order, the
        cancels of those its self-trade prevention took out of the book."""
        waits = []
        if result is not None and result.cancelled:
            for entry in result.cancelled:
                done = new_future()
                expired = OrderExpired(entry.order_id, done, CancelReason.SELF_TRADE, at_ns)
                send(entry.owner, expired)
                waits.append(done)
        for fill in fills:
            if fill.maker_owner is None:
                continue
            maker_side = fill.taker_side.opposite
            order_id = fill.order_id_for(maker_side)
            assert order_id is not None
            done = new_future()
            send(fill.maker_owner, SettleFill(order_id, fill, done))
            waits.append(done)
        return tuple(waits)

    def _tell_triggered(self) -> tuple[Any, ...]:
        """Tell the accounts of the stops the last change triggered: first the makers their
        stops traded with, then each stop's own account."""
        if not self.market.triggered:
            return ()
        found = self.market.take_triggered()
        waits: list[Any] = []
        metrics = self.services.metrics
        for stop in found:
            metrics.count("stops_triggered")
            metrics.count("fills", len(stop.result.fills))
            if self.verbose:
                self.log.info(
                    "stop.triggered",
                    order_id=stop.order_id,
                    account_id=stop.account_id,
                    stop_price=str(cents_to_decimal(stop.stop_price)),
                )
            waits.extend(self._tell_makers(stop.result.fills, stop.result, stop.at_ns))
            done = new_future()
            settle = SettleTriggered(
                stop.order_id, stop.stop_price, stop.mark, stop.result, stop.at_ns, done
            )
            send(stop.owner, settle)
            waits.append(done)
        return tuple(waits)

    def _price_moved(self, old: int, now: int) -> None:
        new = self.market.price
        self.prices[self.market.symbol] = new
        if new != old and self.alerts:
            for alert in self.alerts.move(old, new):
                fired = alert.snapshot(new, now)
                self.alerts.remember(fired)
                self.services.metrics.count("alerts_triggered")
                if self.verbose:
                    self.log.info(
                        "alert.triggered",
                        alert_id=alert.alert_id,
                        account_id=alert.account_id,
                        price=str(cents_to_decimal(new)),
                    )
                self.services.publish(AlertTriggered, partial(AlertTriggered, fired))
        if new != old:
            self.services.publish(
                PriceChanged,
                lambda: PriceChanged(
                    self.market.symbol,
                    cents_to_decimal(old),
                    cents_to_decimal(new),
                    ns_to_datetime(now),
                ),
            )

    # -- supervision ---------------------------------------------------------------------------

    def recover(self, message: Any, error: BaseException | None) -> str:
        """Restart after a read or a stop request; halt after a failure that changed the book."""
        self.quotes[self.market.symbol] = None  # a halt changes the quote
        kind = type(message.command) if isinstance(message, Request) else type(message)
        if kind not in _CHANGES_THE_BOOK or self.market.halted:
            self.services.metrics.count("actors_restarted")
            return super().recover(message, error)
        self.services.metrics.count("symbols_halted")
        now = self.clock()
        self.services.durable(Halted(self.market.symbol, now))
        for entry in self.market.halt():  # every resting order back to its account
            expired = OrderExpired(entry.order_id, new_future(), CancelReason.HALTED, now)
            send(entry.owner, expired)
        self._handlers = {**type(self)._handlers, **_HALTED_HANDLERS}
        try:  # the failed message is answered as a halted symbol answers it
            _HALTED_HANDLERS[kind](self, message)
        except Exception as refusal:
            self._handler_failed(message, refusal)
        return "halted"

    def _submit_halted(self, message: SubmitOrder) -> None:
        ticket = message.ticket
        now = self.clock()
        waits = self.services.durable(Matched(self.market.symbol, ticket.order_id, now))
        send(ticket.owner, SettleMatch(ticket.order_id, _HALTED, message.reply, waits, now))

    def _submit_pair_halted(self, message: SubmitPair) -> None:
        first, second = message.first, message.second
        now = self.clock()
        waits = self.services.durable(Matched(self.market.symbol, first.order_id, now))
        send(first.owner, SettleMatch(first.order_id, _HALTED, None, (), now))
        answer = SettleMatch(
            second.order_id, _NOT_ENTERED, message.reply, waits, now, first.order_id
        )
        send(first.owner, answer)

    def _remove_halted(self, message: RemoveFromBook) -> None:
        # not resting: its account was told to cancel it when the symbol halted
        message.account_ref.tell(RemovedFromBook(message.order_id, False, message.reply))

    def _replace_halted(self, message: ReplaceInBook) -> None:
        # not resting: its account was told to cancel it when the symbol halted
        message.account_ref.tell(BookReplaced(message.order_id, None, message.reply))

    def _refuse_halted(self, message: Request[UpdatePrice | ExpireDayOrders]) -> None:
        if isinstance(message.command, ExpireDayOrders):
            message.reply.set(AfterAll(0, ()))
            return
        raise SymbolHaltedError(self.market.symbol, "a price move")

    # -- trading ---------------------------------------------------------------------------------

    @handles(SubmitOrder)
    @_clears_the_quote_itself
    def _submit(self, message: SubmitOrder) -> None:
        self.quotes[self.market.symbol] = None  # first: see `actors.board`
        ticket = message.ticket
        now = self.clock()
        old = self.market.price
        result = self.market.submit(ticket, now, self.trade_ids)
        self.services.metrics.count("fills", len(result.fills))
        durable = self.services.durable(Matched(self.market.symbol, ticket.order_id, now))
        waits = self._tell_makers(result.fills, result, now) + durable
        if self.market.triggered:
            waits += self._tell_triggered()
        self._price_moved(old, now)
        if result.rested and self.verbose:
            self.log.debug("book.rested", order_id=ticket.order_id, side=ticket.side.value)
        send(ticket.owner, SettleMatch(ticket.order_id, result, message.reply, waits, now))

    @handles(SubmitPair)
    @_clears_the_quote_itself
    def _submit_pair(self, message: SubmitPair) -> None:
        self.quotes[self.market.symbol] = None  # first: see `actors.board`
        first, second = message.first, message.second
        now = self.clock()
        old = self.market.price
        results = self.market.submit_pair(first, second, now, self.trade_ids)
        self.services.metrics.count("fills", len(results[0].fills) + len(results[1].fills))
        durable = self.services.durable(Matched(self.market.symbol, first.order_id, now))
        waits = self._tell_makers(results[0].fills, results[0], now)
        waits += self._tell_makers(results[1].fills, results[1], now) + durable
        if self.market.triggered:
            waits += self._tell_triggered()
        self._price_moved(old, now)
        send(first.owner, SettleMatch(first.order_id, results[0], None, (), now))
        answer = SettleMatch(second.order_id, results[1], message.reply, waits, now, first.order_id)
        send(first.owner, answer)

    @handles(ReplaceInBook)
    @_clears_the_quote_itself
    def _replace(self, message: ReplaceInBook) -> None:
        self.quotes[self.market.symbol] = None  # first: see `actors.board`
        now = self.clock()
        old = self.market.price
        ticket = OrderTicket.of(message.new, message.account_ref)
        found = self.market.replace(message.order_id, message.quantity, ticket, now, self.trade_ids)
        if found is None:
            message.account_ref.tell(BookReplaced(message.order_id, None, message.reply))
            return
        fact = replaced(self.market.symbol, message.order_id, message.new, now)
        waits = self._tell_makers(found.result.fills, found.result, now)
        waits += self.services.durable(fact)
        triggered = new_future() if self.market.triggered else None
        if triggered is not None:
            waits += (triggered,)
        answer = BookReplaced(message.order_id, found, message.reply, waits, now)
        # Its account learns of the new order first: the stops its trades triggered may trade
        # with it, or be its pair's other leg, and their news names it.
        message.account_ref.tell(answer)
        if triggered is not None:
            triggered.set(AfterAll(None, self._tell_triggered()))
        self._price_moved(old, now)

    @handles(RemoveFromBook)
    @_clears_the_quote_itself
    def _remove(self, message: RemoveFromBook) -> None:
        self.quotes[self.market.symbol] = None  # first: see `actors.board`
        removed = self.market.cancel(message.order_id) > 0
        now = self.clock()
        durable = (
            self.services.durable(Removed(self.market.symbol, message.order_id, now))
            if removed
            else ()
        )
        answer = RemovedFromBook(
            message.order_id, removed, message.reply, now, durable[0] if durable else None
        )
        message.account_ref.tell(answer)

    @handles(UpdatePrice)
    def _set_price(self, message: Request[UpdatePrice]) -> None:
        now = self.clock()
        old = self.market.price
        price = message.command.price
        fills = self.market.update_price(price, now, self.trade_ids)
        self.services.metrics.count("fills", len(fills))
        durable = self.services.durable(PriceSet(self.market.symbol, price, now))
        waits = self._tell_makers(fills) + durable
        if self.market.triggered:
            waits += self._tell_triggered()
        self._price_moved(old, now)
        if fills and self.verbose:
            self.log.info("price.triggered", price=str(cents_to_decimal(price)), fills=len(fills))
        quote = self.quotes[self.market.symbol] = self.market.quote()
        message.reply.set(AfterAll(quote, waits))

    @handles(Audit)
    def _audit(self, message: Audit) -> None:
        market = self.market
        if market.halted:  # its book was abandoned: nothing rests, nothing to check
            found = MarketAudit(market.symbol, market.mode, 0, market.volume)
        else:
            found = market.audit()
        message.reply.set(replace(found, failures=self.failures))

    @handles(ExpireDayOrders)
    def _expire(self, message: Request[ExpireDayOrders]) -> None:
        waits = []
        now = self.clock()
        expired = self.market.expire_day_orders()
        for entry in expired:
            done = new_future()
            send(entry.owner, OrderExpired(entry.order_id, done, CancelReason.EXPIRED, now))
            waits.append(done)
        durable = self.services.durable(Expired(self.market.symbol, now)) if expired else ()
        message.reply.set(AfterAll(len(waits), (*waits, *durable)))

    @handles(SetAlert)
    def _add_alert(self, message: SetAlert) -> None:
        command = message.command
        alert = Alert(
            message.alert_id,
            command.account_id,
            self.market.symbol,
            command.condition,
            command.threshold,
            command.one_shot,
            message.created_ns,
        )
        self.alerts.add(alert)
        fact = AlertAdded(
            alert.alert_id,
            alert.account_id,
            alert.symbol,
            alert.condition,
            alert.threshold,
            alert.one_shot,
            alert.created_ns,
        )
        message.reply.set(AfterAll(alert.snapshot(), self.services.durable(fact)))

    @handles(CancelAlert)
    def _cancel_alert(self, message: Request[CancelAlert]) -> None:
        alert = self.alerts.remove(message.command.alert_id)
        durable = self.services.durable(AlertRemoved(self.market.symbol, alert.alert_id))
        message.reply.set(AfterAll(alert.snapshot(), durable))

    @handles(GetAlerts)
    def _alerts(self, message: GetAlerts) -> None:
        if message.fired:
            message.reply.set(self.alerts.fired_of(message.account_id))
        else:
            message.reply.set([a.snapshot() for a in self.alerts.of(message.account_id)])

    def _now(self, snapshot: OrderSnapshot) -> OrderSnapshot:
        """`snapshot` of a waiting trailing stop with its stop price and mark as they are."""
        now = self.market.waiting(snapshot.order_id)
        if now is None:  # it triggered meanwhile: its account has the news
            return snapshot
        stop, mark = now
        return snapshot._replace(
            stop_price=cents_to_decimal(stop),
            hwm=None if mark is None else cents_to_decimal(mark),
        )

    @handles(DescribeStop)
    def _describe_stop(self, message: DescribeStop) -> None:
        message.reply.set(self._now(message.snapshot))

    @handles(DescribeStops)
    def _describe_stops(self, message: DescribeStops) -> None:
        items = message.kept.items
        for index in message.hops[0][1]:
            items[index] = self._now(items[index])
        rest = message.hops[1:]
        if rest:
            send(rest[0][0], DescribeStops(message.kept, rest, message.reply))
        else:
            message.reply.set(message.kept)

    @handles(GetQuote)
    def _quote(self, message: GetQuote) -> None:
        quote = self.quotes[self.market.symbol] = self.market.quote()
        message.reply.set(quote)

    @handles(GetDepth)
    def _depth(self, message: GetDepth) -> None:
        message.reply.set(self.market.depth(message.levels))

    @handles(GetTrades)
    def _trades(self, message: GetTrades) -> None:
        message.reply.set(self.market.trades(message.limit))

    @handles(GetBars)
    def _bars(self, message: GetBars) -> None:
        message.reply.set(self.market.bars[message.interval].bars(message.limit))

    @handles(GetPriceHistory)
    def _history(self, message: GetPriceHistory) -> None:
        message.reply.set(self.market.history())


def _clearing_the_quote(handler: Any) -> Any:
    def handle(actor: SymbolActor, message: Any) -> None:
        actor.quotes[actor.market.symbol] = None
        handler(actor, message)

    handle.__name__ = handler.__name__
    handle.__doc__ = handler.__doc__
    return handle


# The messages that change the book are the ones that may change the quote: each clears the
# published quote before anything else (`actors.board`). The hot handlers do it as their own
# first line (`_clears_the_quote_itself`): a wrapper's call cost 0.8 % of a plain order's
# instructions (`make order-path`).
SymbolActor._handlers = {
    kind: _clearing_the_quote(handler)
    if kind in _CHANGES_THE_BOOK and not getattr(handler, "_clears_the_quote", False)
    else handler
    for kind, handler in SymbolActor._handlers.items()
}

_HALTED_HANDLERS: dict[type, Any] = {
    SubmitOrder: SymbolActor._submit_halted,
    SubmitPair: SymbolActor._submit_pair_halted,
    RemoveFromBook: SymbolActor._remove_halted,
    ReplaceInBook: SymbolActor._replace_halted,
    UpdatePrice: SymbolActor._refuse_halted,
    ExpireDayOrders: SymbolActor._refuse_halted,
}

"""The symbol actor: owns one stock's order book, price, statistics, tape and history.

It matches the orders its accounts send, tells every account its fills, and moves the price on
the feed's request, filling the resting orders that the move triggers.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from functools import partial
from typing import Any

from actors.runtime import AfterAll, BrokerActor, handles, new_future, send
from actors.services import Services
from engine.alerts import Alert, AlertBook
from engine.commands import (
    AddAlert,
    Audit,
    CancelAlert,
    ExpireDayOrders,
    GetAlerts,
    GetBars,
    GetDepth,
    GetPriceHistory,
    GetQuote,
    GetTrades,
    OrderExpired,
    RemovedFromBook,
    RemoveFromBook,
    SetPrice,
    SettleFill,
    SettleMatch,
    SubmitOrder,
)
from engine.events import AlertTriggered, PriceChanged
from engine.ids import Symbol
from engine.matching import Fill, Market, TradeIdSequence
from engine.money import cents_to_decimal
from engine.orders import ns_to_datetime


class SymbolActor(BrokerActor):
    """One symbol, one message at a time.

    Args:
        prices: The last-price board. This actor is the only writer of its own symbol's entry;
            the gateway reads it to set market-buy collars and callers to value portfolios.
    """

    def __init__(
        self,
        market: Market,
        prices: MutableMapping[Symbol, int],
        services: Services,
    ) -> None:
        super().__init__(services.log, symbol=market.symbol)
        self.market = market
        self.prices = prices
        self.services = services
        self.clock = services.clock
        self.verbose = services.verbose
        self.trade_ids = TradeIdSequence(market.symbol)
        self.alerts = AlertBook()
        prices[market.symbol] = market.price

    def _tell_makers(self, fills: list[Fill] | tuple[Fill, ...]) -> tuple[Any, ...]:
        waits = []
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

    def _price_moved(self, old: int, now: int) -> None:
        new = self.market.price
        self.prices[self.market.symbol] = new
        if new != old and self.alerts:
            for alert in self.alerts.move(old, new):
                self.services.metrics.count("alerts_triggered")
                if self.verbose:
                    self.log.info(
                        "alert.triggered",
                        alert_id=alert.alert_id,
                        account_id=alert.account_id,
                        price=str(cents_to_decimal(new)),
                    )
                self.services.publish(
                    AlertTriggered, partial(lambda a: AlertTriggered(a.snapshot(new, now)), alert)
                )
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

    @handles(SubmitOrder)
    def _submit(self, message: SubmitOrder) -> None:
        ticket = message.ticket
        now = self.clock()
        old = self.market.price
        result = self.market.submit(ticket, now, self.trade_ids)
        self.services.metrics.count("fills", len(result.fills))
        waits = self._tell_makers(result.fills)
        self._price_moved(old, now)
        if result.rested and self.verbose:
            self.log.debug("book.rested", order_id=ticket.order_id, side=ticket.side.value)
        send(ticket.owner, SettleMatch(ticket.order_id, result, message.reply, waits))

    @handles(RemoveFromBook)
    def _remove(self, message: RemoveFromBook) -> None:
        removed = self.market.cancel(message.order_id) > 0
        message.account_ref.tell(RemovedFromBook(message.order_id, removed, message.reply))

    @handles(SetPrice)
    def _set_price(self, message: SetPrice) -> None:
        now = self.clock()
        old = self.market.price
        fills = self.market.update_price(message.price, now, self.trade_ids)
        self.services.metrics.count("fills", len(fills))
        waits = self._tell_makers(fills)
        self._price_moved(old, now)
        if fills and self.verbose:
            self.log.info(
                "price.triggered", price=str(cents_to_decimal(message.price)), fills=len(fills)
            )
        message.reply.set(AfterAll(self.market.quote(), waits))

    @handles(Audit)
    def _audit(self, message: Audit) -> None:
        message.reply.set(self.market.audit())

    @handles(ExpireDayOrders)
    def _expire(self, message: ExpireDayOrders) -> None:
        waits = []
        for entry in self.market.expire_day_orders():
            done = new_future()
            send(entry.owner, OrderExpired(entry.order_id, done))
            waits.append(done)
        message.reply.set(AfterAll(len(waits), tuple(waits)))

    @handles(AddAlert)
    def _add_alert(self, message: AddAlert) -> None:
        alert = Alert(
            message.alert_id,
            message.account_id,
            self.market.symbol,
            message.condition,
            message.threshold,
            message.one_shot,
            message.created_ns,
        )
        self.alerts.add(alert)
        message.reply.set(alert.snapshot())

    @handles(CancelAlert)
    def _cancel_alert(self, message: CancelAlert) -> None:
        message.reply.set(self.alerts.remove(message.alert_id).snapshot())

    @handles(GetAlerts)
    def _alerts(self, message: GetAlerts) -> None:
        message.reply.set([a.snapshot() for a in self.alerts.of(message.account_id)])

    @handles(GetQuote)
    def _quote(self, message: GetQuote) -> None:
        message.reply.set(self.market.quote())

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

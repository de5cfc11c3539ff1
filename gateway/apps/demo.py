"""The brief's five demo scenarios, run in order on an embedded `Brokerage`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from engine.events import (
    AlertTriggered,
    Event,
    MarginCall,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    PriceChanged,
)
from engine.orders import OrderSnapshot
from gateway.brokerage import Brokerage


def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def _describe(event: Event) -> str:
    if isinstance(event, PriceChanged):
        return f"price {event.symbol}: {_money(event.old_price)} -> {_money(event.new_price)}"
    if isinstance(event, AlertTriggered):
        alert = event.alert
        return f"alert {alert.alert_id}: {alert.symbol} {alert.condition} {_money(alert.threshold)}"
    if isinstance(event, MarginCall):
        return f"margin call {event.account_id}: {_money(event.deficit)} below maintenance"
    order = event.order
    if isinstance(event, OrderFilled):
        fill = event.transaction
        return (
            f"filled {order.order_id}: {fill.side} {fill.quantity} {fill.symbol} "
            f"@ {_money(fill.price)} ({order.status})"
        )
    if isinstance(event, OrderRejected | OrderCancelled):
        return f"{type(event).__name__} {order.order_id}: {event.reason}"
    return f"accepted {order.order_id}: {order.side} {order.quantity} {order.symbol}"


def _order_line(order: OrderSnapshot) -> str:
    price = (
        f"filled @ {_money(order.average_fill_price)}"
        if order.filled_quantity
        else f"limit {_money(order.limit_price)}"
    )
    return (
        f"{order.order_id} {order.order_type} {order.side} {order.quantity} {order.symbol}: "
        f"{order.status}, {price}"
    )


def _portfolio_table(broker: Brokerage, account_id: str) -> Table:
    portfolio = broker.portfolio(account_id)
    table = Table(title=f"Portfolio of {account_id}")
    for column in ("symbol", "qty", "avg cost", "price", "value", "P/L", "P/L %"):
        table.add_column(column, justify="right")
    for h in portfolio.holdings:
        table.add_row(
            h.symbol,
            str(h.quantity),
            _money(h.average_cost),
            _money(h.market_price),
            _money(h.market_value),
            _money(h.unrealized_pl),
            f"{h.unrealized_pl_percent}%",
        )
    table.add_row(
        "total",
        "",
        "",
        "",
        _money(portfolio.market_value),
        _money(portfolio.unrealized_pl),
        f"{portfolio.unrealized_pl_percent}%",
    )
    return table


def run_demo(console: Console, log_level: str = "warning") -> dict[str, Any]:
    """Run the five scenarios, narrating to `console`; return the final state for `--json`."""
    with Brokerage(log_level=log_level) as broker:
        events: list[str] = []
        broker.subscribe(lambda event: events.append(_describe(event)))

        def show_events() -> None:
            broker.flush_events()
            for line in events:
                console.print(f"   [dim]event[/dim] {line}")
            events.clear()

        console.rule("Demo 1: setup and deposit")
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        broker.list_stock("GOOGL", "Alphabet Inc.", "2800.00")
        others = broker.list_universe()  # the rest of the default universe, for searching
        console.print(
            f"Listed AAPL, GOOGL and {len(others)} more stocks; search 'alpha': "
            + ", ".join(r.symbol for r in broker.search("alpha"))
        )
        alice = broker.open_account(
            "U001", "Alice", "alice@email.com", "555-0001", initial_deposit="10000.00"
        )
        account = alice.account_id
        console.print(f"Deposit: account {account} for Alice with {_money(alice.balance.cash)}")
        show_events()

        console.rule("Demo 2: market order")
        buy = broker.place_order(account, "AAPL", "buy", 10)
        console.print(f"Market buy: {_order_line(buy)}")
        console.print(f"   total cost {_money(buy.filled_amount)}")
        show_events()

        console.rule("Demo 3: portfolio valuation")
        portfolio = broker.portfolio(account)
        console.print(_portfolio_table(broker, account))
        console.print(
            f"Portfolio value {_money(portfolio.market_value)}, "
            f"P/L {_money(portfolio.unrealized_pl)}, return {portfolio.unrealized_pl_percent}%"
        )

        console.rule("Demo 4: limit order")
        sell = broker.place_order(account, "AAPL", "sell", 5, "limit", "160.00")
        console.print(f"Limit sell: {_order_line(sell)} (price is $150.00)")
        broker.update_price("AAPL", "165.00")
        sell = broker.get_order(sell.order_id)
        console.print(f"Price moved to $165.00: {_order_line(sell)}")
        show_events()

        console.rule("Demo 5: full trading cycle")
        google_buy = broker.place_order(account, "GOOGL", "buy", 1)
        console.print(f"Market buy: {_order_line(google_buy)}")
        broker.update_price("GOOGL", "3000.00")
        console.print("Price moved to $3,000.00")
        google_sell = broker.place_order(account, "GOOGL", "sell", 1)
        console.print(f"Market sell: {_order_line(google_sell)}")
        show_events()
        portfolio = broker.portfolio(account)
        console.print(_portfolio_table(broker, account))
        console.print(
            f"Final balance {_money(portfolio.cash)}, net worth {_money(portfolio.net_worth)}, "
            f"realized P/L {_money(portfolio.realized_pl)}"
        )
        return {
            "account_id": account,
            "cash": str(portfolio.cash),
            "net_worth": str(portfolio.net_worth),
            "realized_pl": str(portfolio.realized_pl),
            "holdings": {
                h.symbol: {"quantity": h.quantity, "average_cost": str(h.average_cost)}
                for h in portfolio.holdings
            },
            "orders": [
                {
                    "order_id": o.order_id,
                    "symbol": o.symbol,
                    "side": o.side.value,
                    "order_type": o.order_type.value,
                    "quantity": o.quantity,
                    "limit_price": None if o.limit_price is None else str(o.limit_price),
                    "status": o.status.value,
                    "filled_quantity": o.filled_quantity,
                    "fill_price": (
                        None if o.average_fill_price is None else str(o.average_fill_price)
                    ),
                }
                for o in broker.orders(account)
            ],
        }

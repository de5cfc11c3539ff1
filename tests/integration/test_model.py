"""Random command sequences through `Brokerage`, compared after every step with a simple
single-threaded reference model of the same rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine import InsufficientAvailableCashError, OrderNotCancellableError
from gateway import Brokerage

ACCOUNTS = ("A", "B", "C")
SYMBOLS = {"MKT": "market", "BK": "book"}
START_PRICE = 10000  # cents


@dataclass
class ModelOrder:
    order_id: str
    account: str
    symbol: str
    side: str
    quantity: int
    limit: int | None
    reserve: int | None
    tif: str
    seq: int
    status: str = "pending"
    filled: int = 0

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled

    @property
    def final(self) -> bool:
        return self.status in ("executed", "cancelled", "rejected")


@dataclass
class ModelAccount:
    cash: int = 0
    reserved: int = 0
    shares: dict[str, int] = field(default_factory=dict)
    reserved_shares: dict[str, int] = field(default_factory=dict)


class Model:
    """The brokerage's rules, written as plainly as possible: lists, sorts and loops."""

    def __init__(self) -> None:
        self.accounts = {a: ModelAccount() for a in ACCOUNTS}
        self.prices = dict.fromkeys(SYMBOLS, START_PRICE)
        self.orders: dict[str, ModelOrder] = {}
        self.seq = 0

    def resting(self, symbol: str, side: str) -> list[ModelOrder]:
        mine = [
            o
            for o in self.orders.values()
            if o.symbol == symbol
            and o.side == side
            and not o.final
            and o.limit is not None
            and o.status in ("pending", "partially_filled")
            and o.seq >= 0
        ]
        sign = -1 if side == "buy" else 1
        return sorted(mine, key=lambda o: (sign * (o.limit or 0), o.seq))

    def fill(self, order: ModelOrder, quantity: int, price: int) -> None:
        account = self.accounts[order.account]
        if order.side == "buy":
            assert order.reserve is not None
            account.reserved -= quantity * order.reserve
            account.cash -= quantity * price
            account.shares[order.symbol] = account.shares.get(order.symbol, 0) + quantity
        else:
            account.reserved_shares[order.symbol] -= quantity
            account.shares[order.symbol] -= quantity
            account.cash += quantity * price
        order.filled += quantity
        order.status = "executed" if order.remaining == 0 else "partially_filled"

    def cancel(self, order: ModelOrder) -> None:
        account = self.accounts[order.account]
        if order.side == "buy":
            assert order.reserve is not None
            account.reserved -= order.remaining * order.reserve
        else:
            account.reserved_shares[order.symbol] -= order.remaining
        order.status = "cancelled"

    def place(self, order: ModelOrder, order_type: str) -> None:
        self.orders[order.order_id] = order
        account = self.accounts[order.account]
        if order.side == "buy":
            assert order.reserve is not None
            if order.quantity * order.reserve > account.cash - account.reserved:
                order.status = "rejected"
                return
            account.reserved += order.quantity * order.reserve
        else:
            free = account.shares.get(order.symbol, 0) - account.reserved_shares.get(
                order.symbol, 0
            )
            if order.quantity > free:
                order.status = "rejected"
                return
            account.reserved_shares[order.symbol] = (
                account.reserved_shares.get(order.symbol, 0) + order.quantity
            )
        bound = order.reserve if order.side == "buy" else order.limit

        def within(price: int) -> bool:
            if bound is None:
                return True
            return price <= bound if order.side == "buy" else price >= bound

        resting_limit = order_type == "limit" and order.tif == "gtc"
        if SYMBOLS[order.symbol] == "market":
            price = self.prices[order.symbol]
            if within(price):
                self.fill(order, order.quantity, price)
            elif not resting_limit:
                self.cancel(order)
            return
        other = "sell" if order.side == "buy" else "buy"
        makers = [o for o in self.resting(order.symbol, other) if o.order_id != order.order_id]
        if order.tif == "fok":
            available = sum(o.remaining for o in makers if within(o.limit or 0))
            if available < order.quantity:
                self.cancel(order)
                return
        for maker in makers:
            if order.remaining == 0 or not within(maker.limit or 0):
                break
            quantity = min(order.remaining, maker.remaining)
            assert maker.limit is not None
            self.fill(maker, quantity, maker.limit)
            self.fill(order, quantity, maker.limit)
            self.prices[order.symbol] = maker.limit
        if order.remaining and not resting_limit:
            self.cancel(order)

    def update_price(self, symbol: str, price: int) -> None:
        self.prices[symbol] = price
        if SYMBOLS[symbol] != "market":
            return
        for order in self.resting(symbol, "buy"):
            if order.limit is not None and order.limit >= price:
                self.fill(order, order.remaining, price)
        for order in self.resting(symbol, "sell"):
            if order.limit is not None and order.limit <= price:
                self.fill(order, order.remaining, price)


prices = st.integers(min_value=9000, max_value=11000)


class BrokerageMatchesModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.broker = Brokerage(timeout=20).start()
        self.model = Model()
        for symbol, mode in SYMBOLS.items():
            self.broker.list_stock(symbol, symbol, "100.00", mode=mode)
        for account in ACCOUNTS:
            self.broker.open_account(account, account, account_id=account)

    def teardown(self) -> None:
        self.broker.close()

    @rule(account=st.sampled_from(ACCOUNTS), cents=st.integers(1, 300_000))
    def deposit(self, account: str, cents: int) -> None:
        self.broker.deposit(account, Decimal(cents) / 100)
        self.model.accounts[account].cash += cents

    @rule(account=st.sampled_from(ACCOUNTS), cents=st.integers(1, 500_000))
    def withdraw(self, account: str, cents: int) -> None:
        state = self.model.accounts[account]
        try:
            self.broker.withdraw(account, Decimal(cents) / 100)
            refused = False
        except InsufficientAvailableCashError:
            refused = True
        assert refused == (cents > state.cash - state.reserved)
        if not refused:
            state.cash -= cents

    @rule(
        account=st.sampled_from(ACCOUNTS),
        symbol=st.sampled_from(list(SYMBOLS)),
        quantity=st.integers(1, 30),
    )
    def grant(self, account: str, symbol: str, quantity: int) -> None:
        self.broker.grant_shares(account, symbol, quantity, "100")
        shares = self.model.accounts[account].shares
        shares[symbol] = shares.get(symbol, 0) + quantity

    @rule(
        account=st.sampled_from(ACCOUNTS),
        symbol=st.sampled_from(list(SYMBOLS)),
        side=st.sampled_from(["buy", "sell"]),
        quantity=st.integers(1, 20),
        order_type=st.sampled_from(["market", "limit"]),
        limit=prices,
        tif=st.sampled_from(["gtc", "ioc", "fok"]),
    )
    def place(
        self,
        account: str,
        symbol: str,
        side: str,
        quantity: int,
        order_type: str,
        limit: int,
        tif: str,
    ) -> None:
        limit_price = Decimal(limit) / 100 if order_type == "limit" else None
        snapshot = self.broker.place_order(
            account, symbol, side, quantity, order_type, limit_price, tif
        )
        own_limit = limit if order_type == "limit" else None
        reserve = None
        if side == "buy":
            reserve = own_limit or -(-self.model.prices[symbol] * 105 // 100)
        self.model.seq += 1
        self.model.place(
            ModelOrder(
                snapshot.order_id,
                account,
                symbol,
                side,
                quantity,
                own_limit,
                reserve,
                tif,
                self.model.seq,
            ),
            order_type,
        )

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        order = self.model.orders[data.draw(st.sampled_from(sorted(self.model.orders)))]
        try:
            self.broker.cancel_order(order.order_id)
            refused = False
        except OrderNotCancellableError:
            refused = True
        assert refused == order.final
        if not refused:
            self.model.cancel(order)

    @rule(symbol=st.sampled_from(list(SYMBOLS)), price=prices)
    def update_price(self, symbol: str, price: int) -> None:
        self.broker.update_price(symbol, Decimal(price) / 100)
        self.model.update_price(symbol, price)

    @invariant()
    def everything_matches_the_model(self) -> None:
        for account, state in self.model.accounts.items():
            balance = self.broker.balance(account)
            assert (balance.cash, balance.reserved) == (
                Decimal(state.cash) / 100,
                Decimal(state.reserved) / 100,
            ), account
            held = {
                h.symbol: (h.quantity, h.reserved) for h in self.broker.portfolio(account).holdings
            }
            expected = {
                s: (q, state.reserved_shares.get(s, 0)) for s, q in state.shares.items() if q
            }
            assert held == expected, account
            for order in self.broker.orders(account):
                mine = self.model.orders[order.order_id]
                assert (order.status.value, order.filled_quantity) == (mine.status, mine.filled)
        for symbol, price in self.model.prices.items():
            assert self.broker.quote(symbol).last_price == Decimal(price) / 100
        self.broker.audit()


BrokerageMatchesModel.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_brokerage_matches_the_reference_model = BrokerageMatchesModel.TestCase

"""A living venue inside `brokerage serve --agents N`: the simulation's market makers and noise
traders trade beside the server's users, so that in `book` mode a user meets a book with
quotes on both sides and prices that move (in `market` mode the feed moves prices and the
agents add trades).

The agents are ordinary accounts of users named `venue-agent-N`, opened (with cash, and in
`book` mode shares of the symbols they trade) at the first start and found again at the next
one. They act through the same blocking API as any embedding program, from a few threads of
their own, each agent about once a second: the venue adds load, never a stall of the event
loop. An agent whose action fails is logged and goes on.
"""

from __future__ import annotations

import itertools
import random
import threading
from decimal import Decimal

import structlog

from engine.errors import BrokerageError, UnknownUserError
from engine.ids import Symbol
from gateway.apps.simulate import GRANTED_SHARES, Agent, MarketMaker, NoiseTrader
from gateway.brokerage import Brokerage

AGENT_USER = "venue-agent-{}"
"""The user id of the venue's agent N: what marks its accounts."""
AGENT_CASH = Decimal("100000")
THREADS = 4
"""Threads driving the agents (each drives every fourth one)."""


class Venue:
    """`count` agents trading `symbols` on `broker`: in `book` mode one market maker per
    symbol (as far as `count` goes: half of them at most) and noise traders for the rest; in
    `market` mode noise traders. Each acts about every `pace` seconds."""

    def __init__(
        self,
        broker: Brokerage,
        symbols: list[Symbol],
        count: int,
        mode: str,
        *,
        seed: int = 0,
        pace: float = 1.0,
    ) -> None:
        self.broker = broker
        self.symbols = symbols
        self.count = count
        self.mode = mode
        self.seed = seed
        self.pace = pace
        self.agents: list[Agent] = []
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.log = structlog.get_logger("brokerage.venue")

    def seen_price(self, symbol: Symbol, latency_ns: int) -> int | None:
        """Its agents have no latency: they see the last price."""
        return None

    def open(self) -> None:
        """Make the agents, opening the accounts of those new since the last start."""
        rng = random.Random(self.seed)
        makers = min(len(self.symbols), self.count // 2) if self.mode == "book" else 0
        for n in range(self.count):
            user = AGENT_USER.format(n)
            maker = n < makers
            symbols = [self.symbols[n % len(self.symbols)]] if maker else list(self.symbols)
            account: str
            try:
                account = self.broker.accounts(user)[0]  # opened at an earlier start
            except UnknownUserError:
                account = self._open(user, n, symbols)
            kind = MarketMaker if maker else NoiseTrader
            self.agents.append(kind(account, symbols, random.Random(rng.getrandbits(64))))

    def _open(self, user: str, n: int, symbols: list[Symbol]) -> str:
        account = self.broker.open_account(
            user, f"Venue agent {n}", initial_deposit=AGENT_CASH, agent=True
        ).account_id
        if self.mode == "book":  # someone must have shares to sell
            for symbol in sorted({symbols[0], self.symbols[n % len(self.symbols)]}):
                cost = self.broker.quote(symbol).last_price
                self.broker.grant_shares(account, symbol, GRANTED_SHARES, cost)
        return account

    def start(self) -> Venue:
        """Open the agents and start their threads; return self."""
        self.open()
        for n in range(min(THREADS, len(self.agents))):
            thread = threading.Thread(
                target=self._drive, args=(self.agents[n::THREADS],), daemon=True
            )
            thread.start()
            self.threads.append(thread)
        return self

    def _drive(self, agents: list[Agent]) -> None:
        pause = self.pace / len(agents)
        for agent in itertools.cycle(agents):
            if self.stopping.wait(pause):
                return
            try:
                agent.act(self)
            except BrokerageError as refused:  # a race it lost (a sell of shares just sold)
                self.log.debug("venue.refused", account_id=agent.account_id, error=repr(refused))
            except Exception as error:  # the server goes on; so does the venue
                self.log.warning("venue.failed", account_id=agent.account_id, error=repr(error))

    def stop(self) -> None:
        """Stop the agents (what they left resting stays: ordinary orders)."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=10)

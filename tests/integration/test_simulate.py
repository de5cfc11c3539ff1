from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from rich.console import Console

from engine.ids import Symbol
from engine.money import parse_price
from gateway.apps.simulate import PriceTape, Simulation, SimulationConfig, simulate


@pytest.mark.parametrize("mode", ["market", "book"])
def test_a_short_simulation_conserves_everything_and_finishes_every_order(mode: str) -> None:
    config = SimulationConfig(accounts=120, symbols=6, seconds=1.0, mode=mode, seed=2)

    report = simulate(config, Console(quiet=True), live=False)

    assert report["conservation"]["ok"], report["conservation"]
    assert report["conservation"]["open_orders"] == 0
    assert report["counters"]["orders_accepted"] > 0
    assert report["counters"]["fills"] > 0
    assert len(report["symbols"]) == 6
    assert len(report["profit_and_loss"]) == 120
    assert set(report["agents"]) <= {"noise", "maker", "momentum", "value"}


def test_momentum_traders_protect_entries_and_value_traders_replace() -> None:
    """Momentum traders place brackets and trailing stops, value traders replace limits;
    with fees, the book's cash is what came in less the fees paid."""
    config = SimulationConfig(
        accounts=200,
        symbols=4,
        seconds=2.0,
        mode="book",
        seed=5,
        fees="per_share=0.005,minimum=1,sec_per_million=27.80,taf_per_share=0.000166",
    )

    report = simulate(config, Console(quiet=True), live=False)

    assert report["orders"].get("trailing_stop sell", 0) > 0
    assert report["orders"].get("bracket buy", 0) > 0
    replaced = sum(n for kind, n in report["orders"].items() if kind.startswith("replace"))
    assert replaced > 0
    assert report["counters"]["orders_replaced"] > 0
    assert report["conservation"]["ok"], report["conservation"]
    assert Decimal(report["conservation"]["fees"]) > 0


def fingerprint(
    mode: str,
    feed: str = "walk",
    slippage: str | None = None,
    latency_ms: tuple[int, int] | None = None,
    margin: str | None = None,
) -> tuple[Any, ...]:
    sim = Simulation(
        SimulationConfig(
            accounts=40,
            symbols=4,
            mode=mode,
            feed=feed,
            seed=11,
            deterministic=True,
            steps=4,
            slippage=slippage,
            latency_ms=latency_ms,
            margin=margin,
            auto_liquidate=margin is not None,
        )
    )
    try:
        sim.setup()
        sim.run()
        report = sim.finish()
        balances = [
            (
                a.account_id,
                sim.broker.balance(a.account_id).cash,
                tuple((h.symbol, h.quantity) for h in sim.broker.portfolio(a.account_id).holdings),
            )
            for a in sim.agents
        ]
        trades = [
            (t.trade_id, t.price, t.quantity)
            for s in sim.symbols
            for t in sim.broker.trades(s, limit=1000)
        ]
        return balances, trades, report["symbols"], report["conservation"]["ok"]
    finally:
        sim.close()


@pytest.mark.parametrize(
    ("mode", "feed"), [("book", "walk"), ("market", "walk"), ("market", "csv")]
)
def test_the_deterministic_mode_repeats_exactly(mode: str, feed: str) -> None:
    first, second = fingerprint(mode, feed), fingerprint(mode, feed)

    assert first == second
    assert first[1]  # it traded
    assert first[3] is True


def test_a_deterministic_run_with_slippage_repeats_and_fills_off_the_last_price() -> None:
    model = "spread_bps=20,impact_bps=10,size=50,jitter_percent=50,seed=4"
    first, second = fingerprint("market", slippage=model), fingerprint("market", slippage=model)
    plain = fingerprint("market")

    assert first == second
    assert first[3] is True  # conserved
    assert first[0] != plain[0]  # the agents' cash: their fills slipped


@pytest.mark.parametrize("mode", ["market", "book"])
def test_a_deterministic_run_with_latency_repeats_and_decides_on_older_prices(mode: str) -> None:
    first = fingerprint(mode, latency_ms=(500, 2_500))
    second = fingerprint(mode, latency_ms=(500, 2_500))
    plain = fingerprint(mode)

    assert first == second
    assert first[3] is True
    assert first[1] != plain[1]  # other decisions, other trades


@pytest.mark.parametrize("mode", ["market", "book"])
def test_a_deterministic_run_on_margin_repeats_sells_short_and_conserves(mode: str) -> None:
    rules = "initial=50,long=25,short=30"
    first, second = fingerprint(mode, margin=rules), fingerprint(mode, margin=rules)

    assert first == second
    assert first[3] is True  # conserved: in book mode, shares sold short were bought
    held = [quantity for _, _, holdings in first[0] for _, quantity in holdings]
    assert any(quantity < 0 for quantity in held), "no agent sold short"


def test_an_agent_with_a_latency_sees_the_price_of_that_long_ago() -> None:
    config = SimulationConfig(
        accounts=10,
        symbols=2,
        mode="market",
        seed=3,
        deterministic=True,
        steps=3,
        latency_ms=(2_000, 2_000),
    )
    sim = Simulation(config)
    try:
        sim.setup()
        [agent, *_] = sim.agents
        assert agent.latency_ns == 2_000_000_000
        symbol = sim.symbols[0]
        assert agent.price(sim, symbol) == parse_price(sim.broker.quote(symbol).last_price)
        sim.run()  # three rounds, one simulated second each
        assert sim.tape is not None
        assert agent.price(sim, symbol) == sim.tape.seen(symbol, sim.clock() - 2 * 10**9)
        assert sim.seen_price(symbol, 10 * 10**9) is None  # nothing that old: the last price
    finally:
        sim.close()


def test_the_tape_answers_the_price_at_a_moment() -> None:
    tape = PriceTape()
    tape.record(Symbol("X"), 100, 10_00)
    tape.record(Symbol("X"), 200, 11_00)
    assert tape.seen(Symbol("X"), 99) is None
    assert tape.seen(Symbol("X"), 150) == 10_00
    assert tape.seen(Symbol("X"), 200) == 11_00
    assert tape.seen(Symbol("Y"), 500) is None


def test_the_report_directory_gets_json_and_charts(tmp_path: Any) -> None:
    config = SimulationConfig(accounts=30, symbols=3, seed=1, deterministic=True, steps=3)

    report = simulate(config, Console(quiet=True), report_dir=str(tmp_path))

    assert (tmp_path / "report.json").read_text().startswith("{")
    for chart in ("prices.png", "pl.png", "latency.png"):
        assert (tmp_path / chart).read_bytes()[:4] == b"\x89PNG"
    assert report["conservation"]["ok"]

"""The slippage model against worked examples, its bounds and its seeded draws, and a market
that fills arriving orders under it."""

from __future__ import annotations

import pytest

from engine.errors import ValidationError
from engine.ids import AccountId, OrderId, Symbol
from engine.matching import Market, OrderTicket, TradeIdSequence
from engine.orders import LiquidityMode, OrderType, Side, TimeInForce
from engine.slippage import Slippage

MODEL = Slippage(spread_bps=10, impact_bps=5, size=100)
S = Symbol("AAPL")


def test_a_fill_pays_half_the_spread_and_an_impact_growing_with_the_root_of_its_size() -> None:
    draws = MODEL.generator(S)
    # 100 shares: 5 bps of half spread + 5 bps of impact = 10 bps of $150.00 = 15 cents
    assert MODEL.fill_price(Side.BUY, 150_00, 100, None, draws) == 150_15
    # 400 shares: twice the impact, 15 bps = 22.5 cents, rounded against the order
    assert MODEL.fill_price(Side.SELL, 150_00, 400, None, draws) == 150_00 - 23
    assert MODEL.fill_price(Side.BUY, 150_00, 400, None, draws) == 150_00 + 23
    # 1 share: a tenth of the impact: 5.5 bps = 8.25 cents -> 9
    assert MODEL.fill_price(Side.BUY, 150_00, 1, None, draws) == 150_09


def test_a_fill_stays_within_the_orders_bound_and_the_models_cap() -> None:
    draws = MODEL.generator(S)
    assert MODEL.fill_price(Side.BUY, 150_00, 100, 150_05, draws) == 150_05  # its limit
    assert MODEL.fill_price(Side.SELL, 150_00, 100, 149_95, draws) == 149_95
    capped = Slippage(spread_bps=0, impact_bps=1_000, size=1, max_bps=200)
    assert capped.fill_price(Side.BUY, 100_00, 10_000, None, draws) == 102_00
    assert capped.fill_price(Side.SELL, 1, 10_000, None, draws) == 1  # never below a cent


def test_draws_are_seeded_per_model_and_symbol() -> None:
    model = Slippage(spread_bps=0, impact_bps=50, jitter_percent=50, seed=7)

    def prices(seed: int, symbol: str) -> list[int]:
        chosen = Slippage(spread_bps=0, impact_bps=50, jitter_percent=50, seed=seed)
        draws = chosen.generator(Symbol(symbol))
        return [chosen.fill_price(Side.BUY, 100_00, 100, None, draws) for _ in range(20)]

    assert prices(7, "AAPL") == prices(7, "AAPL")
    assert prices(7, "AAPL") != prices(8, "AAPL")
    assert prices(7, "AAPL") != prices(7, "MSFT")
    assert all(100_25 <= p <= 100_75 for p in prices(7, "AAPL"))  # 50 bps, within +-50 %
    assert Slippage.parse_text(model.text()) == model


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("spread_bps=-1", "slippage.spread_bps must be a whole number from 0 to 1000"),
        ("size=0", "slippage.size must be a whole number from 1 to 1000000"),
        ("jitter_percent=101", "slippage.jitter_percent must be"),
        ("spread_bps=1.5", "slippage.spread_bps must be a whole number"),
        ("drift=1", "unknown setting 'drift'"),
        ("spread_bps", "must be name=value pairs"),
        ("x" * 201, "slippage must be a text of at most 200 characters"),
    ],
)
def test_a_bad_model_is_refused_with_what_was_wrong(given: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Slippage.parse_text(given)
    assert Slippage.parse_text("none") is None


def ticket(n: int, side: Side, quantity: int, limit: int | None, bound: int | None) -> OrderTicket:
    kind = OrderType.MARKET if limit is None else OrderType.LIMIT
    return OrderTicket(
        OrderId(f"O-{n}"), AccountId("A-1"), side, kind, TimeInForce.GTC, quantity, limit, bound
    )


def test_a_market_fills_arriving_orders_under_it_and_resting_ones_at_their_price() -> None:
    market = Market(S, "Apple", 150_00, LiquidityMode.MARKET, 0)
    market.set_slippage(MODEL)
    ids = TradeIdSequence(S)
    bought = market.submit(ticket(1, Side.BUY, 100, None, 157_50), 1, ids)
    assert [f.price for f in bought.fills] == [150_15]
    assert market.price == 150_00  # the feed's price, not the fill's
    rests = market.submit(ticket(2, Side.BUY, 100, 149_00, 149_00), 2, ids)
    assert rests.rested
    moved = market.update_price(148_00, 3, ids)
    assert [f.price for f in moved] == [148_00]  # at the new price: a resting order no slip
    market.set_slippage(None)
    plain = market.submit(ticket(3, Side.SELL, 100, None, None), 4, ids)
    assert [f.price for f in plain.fills] == [148_00]

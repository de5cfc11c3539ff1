"""One-cancels-other pairs in a symbol's market: a fill of either leg takes as many shares off
the other in the same step, and when either ends the other goes; in both liquidity modes."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from engine.matching import Fill, MatchResult, OrderTicket
from engine.orders import CancelReason, LiquidityMode, Side
from tests.unit.test_matching_stops import BOOK, BUY, MARKET, SELL, limit, market, stop


def pair(side: Side, quantity: int, profit: int, loss: int) -> tuple[OrderTicket, OrderTicket]:
    """A take-profit limit and a stop-loss stop of account "P"."""
    return limit(side, quantity, profit, account="P"), stop(
        side, quantity, stop_price=loss, account="P"
    )


def test_market_mode_the_take_profit_filling_takes_the_stop_loss_out() -> None:
    m, ids = market(MARKET, 10_000)
    profit, loss = pair(SELL, 5, 11_000, 9_500)
    first, second = m.submit_pair(profit, loss, 1, ids)
    assert first.rested
    assert second.rested
    assert m.pairs == {profit.order_id: loss.order_id, loss.order_id: profit.order_id}
    fills = m.update_price(11_000, 2, ids)
    assert [(f.sell_order_id, f.quantity) for f in fills] == [(profit.order_id, 5)]
    assert m.pairs == {}
    assert loss.order_id not in m.stops
    assert m.update_price(9_000, 3, ids) == []
    assert m.take_triggered() == []
    m.audit()


def test_market_mode_the_stop_loss_triggering_takes_the_take_profit_out() -> None:
    m, ids = market(MARKET, 10_000)
    profit, loss = pair(SELL, 5, 11_000, 9_500)
    m.submit_pair(profit, loss, 1, ids)
    m.update_price(9_400, 2, ids)
    [triggered] = m.take_triggered()
    assert triggered.order_id == loss.order_id
    assert [f.quantity for f in triggered.result.fills] == [5]
    assert profit.order_id not in m.book
    assert m.pairs == {}
    m.audit()


def test_book_mode_a_partial_fill_of_one_leg_shrinks_the_other() -> None:
    m, ids = market(BOOK, 10_000)
    profit, loss = pair(SELL, 5, 10_100, 9_500)
    m.submit_pair(profit, loss, 1, ids)
    taken = m.submit(limit(BUY, 3, 10_100), 2, ids)
    assert [f.quantity for f in taken.fills] == [3]
    waiting = m.stops.get(loss.order_id)
    assert waiting is not None
    assert waiting.ticket.quantity == 2
    m.audit()
    m.submit(limit(BUY, 10, 9_400), 3, ids)
    m.submit(limit(SELL, 1, 9_400, account="X"), 4, ids)  # trades at 94.00: the stop triggers
    [triggered] = m.take_triggered()
    assert sum(f.quantity for f in triggered.result.fills) == 2
    assert profit.order_id not in m.book
    assert m.pairs == {}
    m.audit()


def test_a_leg_that_comes_already_reached_executes_and_the_other_is_what_it_left() -> None:
    m, ids = market(BOOK, 10_000)
    m.submit(limit(BUY, 2, 9_900, account="B"), 1, ids)
    profit, loss = pair(SELL, 5, 10_500, 10_000)  # the stop is already reached: it sells now
    first, second = m.submit_pair(profit, loss, 2, ids)
    assert first.rested
    assert second.triggered == (10_000, None)
    assert sum(f.quantity for f in second.fills) == 2
    assert second.cancel_reason is CancelReason.NO_LIQUIDITY  # a market order's rest
    assert profit.order_id not in m.book  # its other leg ended: it went too
    assert m.pairs == {}
    m.audit()


def test_the_second_leg_does_not_come_when_the_first_filled_everything() -> None:
    m, ids = market(BOOK, 10_000)
    m.submit(limit(BUY, 10, 10_500, account="B"), 1, ids)
    profit, loss = pair(SELL, 5, 10_500, 9_000)
    first, second = m.submit_pair(profit, loss, 2, ids)
    assert sum(f.quantity for f in first.fills) == 5
    assert second == MatchResult((), rested=False, cancel_reason=None)
    assert loss.order_id not in m.stops
    assert m.pairs == {}
    m.audit()


def test_cancelling_either_leg_takes_both_out() -> None:
    for mode in (MARKET, BOOK):
        m, ids = market(mode, 10_000)
        profit, loss = pair(SELL, 5, 10_500, 9_000)
        m.submit_pair(profit, loss, 1, ids)
        assert m.cancel(loss.order_id) == 5
        assert profit.order_id not in m.book
        assert m.pairs == {}
        m.audit()


def test_the_close_and_a_halt_hand_out_one_leg_per_pair() -> None:
    m, ids = market(BOOK, 10_000)
    profit, loss = pair(SELL, 5, 10_500, 9_000)
    day = profit._replace(time_in_force=profit.time_in_force.DAY)
    day_loss = loss._replace(time_in_force=loss.time_in_force.DAY)
    m.submit_pair(day, day_loss, 1, ids)
    assert [e.order_id for e in m.expire_day_orders()] == [day.order_id]
    assert m.pairs == {}
    other, other_loss = pair(SELL, 5, 10_500, 9_000)
    m.submit_pair(other, other_loss, 2, ids)
    assert [e.order_id for e in m.halt()] == [other.order_id]
    assert m.pairs == {}


def test_self_trade_prevention_taking_a_leg_out_takes_its_pair() -> None:
    from engine.orders import SelfTradePrevention

    m, ids = market(BOOK, 10_000)
    profit, loss = pair(SELL, 5, 10_100, 9_000)
    m.submit_pair(profit, loss, 1, ids)
    mine = limit(BUY, 5, 10_200, account="P")._replace(self_trade=SelfTradePrevention.CANCEL_OLDEST)
    result = m.submit(mine, 2, ids)
    assert [e.order_id for e in result.cancelled] == [profit.order_id]
    assert loss.order_id not in m.stops
    assert m.pairs == {}
    m.audit()


def test_a_replaced_leg_takes_its_place_in_the_pair_for_what_is_left() -> None:
    m, ids = market(BOOK, 10_000)
    profit, loss = pair(SELL, 5, 10_100, 9_500)
    m.submit_pair(profit, loss, 1, ids)
    m.submit(limit(BUY, 3, 10_100), 2, ids)  # the take-profit sells 3: 2 left of each
    new_loss = stop(SELL, 5, stop_price=9_600, account="P")

    # its account asks for the 5 it knew of: the new stop-loss is for the 2 left
    replaced = m.replace(loss.order_id, 5, new_loss, 3, ids)

    assert replaced is not None
    assert (replaced.quantity, replaced.kept_priority) == (2, False)
    assert m.pairs == {profit.order_id: new_loss.order_id, new_loss.order_id: profit.order_id}
    waiting = m.stops.get(new_loss.order_id)
    assert waiting is not None
    assert (waiting.ticket.quantity, waiting.ticket.stop_price) == (2, 9_600)
    m.audit()
    new_profit = limit(SELL, 5, 10_050, account="P")
    replaced = m.replace(profit.order_id, 5, new_profit, 4, ids)
    assert replaced is not None
    assert replaced.quantity == 2
    assert m.pairs == {
        new_profit.order_id: new_loss.order_id,
        new_loss.order_id: new_profit.order_id,
    }
    taken = m.submit(limit(BUY, 1, 10_050), 5, ids)  # one more off both
    assert [f.sell_order_id for f in taken.fills] == [new_profit.order_id]
    assert m.stops.get(new_loss.order_id).ticket.quantity == 1  # type: ignore[union-attr]
    m.submit(limit(BUY, 1, 10_050), 6, ids)
    assert new_loss.order_id not in m.stops
    assert m.pairs == {}
    m.audit()


@pytest.mark.parametrize("mode", [MARKET, BOOK])
@pytest.mark.parametrize("seed", range(6))
def test_random_trading_never_fills_a_pair_beyond_its_quantity(
    mode: LiquidityMode, seed: int
) -> None:
    """Pairs of both sides among other orders, prices and trades moving at random: after every
    step the market's own check passes (legs of a pair have equal remaining quantities), and
    no pair ever fills more than its quantity between its two legs."""
    rng = random.Random(seed)
    m, ids = market(mode, 10_000)
    pairs: list[tuple[OrderTicket, OrderTicket]] = []
    members: list[set[str]] = []
    """Each pair's legs, those replaced included."""
    filled_by: Counter[str] = Counter()

    def count(result: MatchResult, fills: list[Fill]) -> None:
        for fill in [*result.fills, *fills]:
            for order_id in (fill.buy_order_id, fill.sell_order_id):
                if order_id is not None:
                    filled_by[order_id] += fill.quantity

    def settle_triggered() -> None:
        for found in m.take_triggered():
            count(found.result, [])

    for step in range(300):
        roll = rng.random()
        price = m.price
        if roll < 0.2:
            side = rng.choice([BUY, SELL])
            away = rng.randint(1, 6) * 50
            profit, loss = (
                (price + away, price - away) if side is SELL else (price - away, price + away)
            )
            legs = pair(side, rng.randint(1, 8), max(profit, 1), max(loss, 1))
            first, second = m.submit_pair(*legs, step, ids)
            count(first, [])
            count(second, [])
            pairs.append(legs)
            members.append({legs[0].order_id, legs[1].order_id})
        elif roll < 0.6 and mode is BOOK:
            side = rng.choice([BUY, SELL])
            count(
                m.submit(
                    limit(side, rng.randint(1, 6), price + rng.randint(-300, 300), "T"), step, ids
                ),
                [],
            )
        elif roll < 0.7 and pairs:
            a, b = rng.choice(pairs)
            m.cancel(rng.choice([a, b]).order_id)
        elif roll < 0.8 and any(a.order_id in m.pairs for a, _ in pairs):
            # a leg replaced at a new price takes its place
            at = rng.choice([k for k, (a, _) in enumerate(pairs) if a.order_id in m.pairs])
            take, cut = pairs[at]
            away = rng.randint(1, 6) * 50
            up = away if take.side is SELL else -away
            if rng.random() < 0.5:
                new = limit(take.side, take.quantity, max(1, price + up), "P")
                old, now = take, (new, cut)
            else:
                new = stop(cut.side, cut.quantity, stop_price=max(1, price - up), account="P")
                old, now = cut, (take, new)
            result = m.replace(old.order_id, old.quantity, new, step, ids)
            if result is not None:
                count(result.result, [])
                pairs[at] = now
                members[at].add(new.order_id)
        else:
            fills = m.update_price(max(100, price + rng.randint(-250, 250)), step, ids)
            for fill in fills:
                for order_id in (fill.buy_order_id, fill.sell_order_id):
                    if order_id is not None:
                        filled_by[order_id] += fill.quantity
        settle_triggered()
        m.audit()
        for (a, b), versions in zip(pairs, members, strict=True):
            assert sum(filled_by[leg] for leg in versions) <= a.quantity, (a, b, versions)
    assert sum(filled_by[leg] for versions in members for leg in versions) > 0
    assert sum(len(versions) > 2 for versions in members) > 5  # legs were replaced

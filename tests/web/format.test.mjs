// The desk's own logic (gateway/web/format.js), run by `node --test` (tests/web/test_format.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  chartBar, estimate, fromCents, money, nextBar, orderBody, percent, refusal, signedMoney, toCents,
} from "../../gateway/web/format.js";

test("money is written from its text, in whole cents, with thousands marked", () => {
  assert.equal(money("1234.5"), "$1,234.50");
  assert.equal(money("-0.50"), "-$0.50");
  assert.equal(money(12), "$12.00");
  assert.equal(money("1000000"), "$1,000,000.00");
  assert.equal(money("0.005"), "$0.01"); // half away from zero past two places
  assert.equal(money(null), "—");
  assert.equal(money("n/a"), "n/a");
  // a float would lose this: 2^53 + 1 cents
  assert.equal(money("90071992547409.93"), "$90,071,992,547,409.93");
});

test("signed amounts and percentages show their sign", () => {
  assert.equal(signedMoney("12"), "+$12.00");
  assert.equal(signedMoney("-3.1"), "-$3.10");
  assert.equal(signedMoney("0.00"), "$0.00");
  assert.equal(percent("12.5"), "+12.50%");
  assert.equal(percent("-0.25"), "-0.25%");
  assert.equal(percent(null), "—");
});

test("cents go both ways exactly", () => {
  assert.equal(toCents("150.25"), 15025n);
  assert.equal(toCents("-1"), -100n);
  assert.equal(toCents("1e3"), null);
  assert.equal(fromCents(15025n), "150.25");
  assert.equal(fromCents(-5n), "-0.05");
});

test("an order's estimate is priced at its limit, its stop or the last price", () => {
  assert.deepEqual(estimate({ quantity: "10", type: "market" }, "150.25"),
    { amount: "1502.50", basis: "last price" });
  assert.deepEqual(estimate({ quantity: "3", type: "limit", limitPrice: "99.99" }, "150"),
    { amount: "299.97", basis: "limit price" });
  assert.deepEqual(estimate({ quantity: "2", type: "stop", stopPrice: "140" }, "150"),
    { amount: "280.00", basis: "stop price" });
  assert.equal(estimate({ quantity: "0", type: "market" }, "150"), null);
  assert.equal(estimate({ quantity: "1.5", type: "market" }, "150"), null);
  assert.equal(estimate({ quantity: "1", type: "market" }, null), null);
});

test("a ticket becomes the API's order terms, with only what its type uses", () => {
  const ticket = {
    symbol: "AAPL", side: "buy", quantity: "5", type: "stop_limit", timeInForce: "gtc",
    limitPrice: "101", stopPrice: "100", trailPercent: "2",
  };
  assert.deepEqual(orderBody(ticket), {
    symbol: "AAPL", side: "buy", quantity: 5, type: "stop_limit", time_in_force: "gtc",
    limit_price: "101", stop_price: "100",
  });
  assert.deepEqual(orderBody({ ...ticket, type: "trailing_stop" }).trail_percent, "2");
  assert.equal(orderBody({ ...ticket, type: "market" }).limit_price, undefined);
});

test("refusals are told in words", () => {
  assert.match(refusal("insufficient_funds"), /buying power/);
  assert.match(refusal("not_shortable"), /sold short/);
  assert.equal(refusal("something_new"), "Refused: something_new");
});

test("a price move extends the last bar or opens the next", () => {
  const bar = chartBar({ start: "2026-11-27T10:00:00Z", open: "10", high: "11", low: "9", close: "10.5" });
  assert.deepEqual(bar, { time: 1795773600, open: 10, high: 11, low: 9, close: 10.5 });
  const same = nextBar(bar, "12", bar.time + 30, 60);
  assert.deepEqual(same, { time: bar.time, open: 10, high: 12, low: 9, close: 12 });
  const next = nextBar(same, "8", bar.time + 61, 60);
  assert.deepEqual(next, { time: bar.time + 60, open: 8, high: 8, low: 8, close: 8 });
  assert.deepEqual(nextBar(null, "5", 125, 60), { time: 120, open: 5, high: 5, low: 5, close: 5 });
});

// The desk's own logic, kept apart from the page so that node's test runner checks it
// (tests/web/format.test.mjs). Money stays text and whole cents (BigInt): never a float.

/** "1234.5", "-0.50" or 12 as "$1,234.50", "-$0.50", "$12.00"; "—" for nothing. */
export function money(value) {
  if (value === null || value === undefined || value === "") return "—";
  const cents = toCents(value);
  if (cents === null) return String(value);
  const negative = cents < 0n;
  const size = negative ? -cents : cents;
  const whole = (size / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const part = (size % 100n).toString().padStart(2, "0");
  return `${negative ? "-" : ""}$${whole}.${part}`;
}

/** A signed amount with its sign always shown: "+$12.00", "-$3.10" (P/L, changes). */
export function signedMoney(value) {
  const cents = toCents(value);
  if (cents === null) return money(value);
  return cents > 0n ? `+${money(value)}` : money(value);
}

/** A percentage as the API gives it ("12.5", a number of percent) as "+12.50%". */
export function percent(value) {
  if (value === null || value === undefined || value === "") return "—";
  const hundredths = toCents(value);
  if (hundredths === null) return String(value);
  const text = money(value).replace("$", "");
  return `${hundredths > 0n ? "+" : ""}${text}%`;
}

/** Whole cents of a decimal text or integer, rounded half away from zero past two places;
 * null for anything that is no number. */
export function toCents(value) {
  const text = String(value).trim();
  const match = /^(-)?(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) return null;
  const [, sign, whole, fraction = ""] = match;
  let cents = BigInt(whole) * 100n + BigInt((fraction + "00").slice(0, 2));
  if (fraction.length > 2 && Number(fraction[2]) >= 5) cents += 1n;
  return sign ? -cents : cents;
}

/** Cents as a decimal text: 15025n -> "150.25". */
export function fromCents(cents) {
  const negative = cents < 0n;
  const size = negative ? -cents : cents;
  return `${negative ? "-" : ""}${size / 100n}.${(size % 100n).toString().padStart(2, "0")}`;
}

/** What an order would cost (a buy) or bring in (a sell) at its limit, or at `last` for a
 * market or stop order: {amount, basis} in decimal text, or null when it cannot be told. */
export function estimate({ quantity, type, limitPrice, stopPrice }, last) {
  const shares = /^\d+$/.test(String(quantity ?? "").trim()) ? BigInt(quantity) : null;
  if (shares === null || shares <= 0n) return null;
  let price = null;
  let basis = "last price";
  if ((type === "limit" || type === "stop_limit") && limitPrice) {
    price = toCents(limitPrice);
    basis = "limit price";
  } else if (type === "stop" && stopPrice) {
    price = toCents(stopPrice);
    basis = "stop price";
  } else {
    price = last === null || last === undefined ? null : toCents(last);
  }
  if (price === null || price <= 0n) return null;
  return { amount: fromCents(price * shares), basis };
}

const REFUSALS = {
  insufficient_funds: "Not enough buying power: the order needs more cash than is free.",
  insufficient_shares: "Not enough shares: you can sell only shares you hold and no open order holds.",
  not_shortable: "This stock cannot be sold short.",
  too_many_orders: "Too many open orders: cancel some first.",
  market_closed: "The market is closed: orders are taken during the session only.",
  busy: "The brokerage is busy: try again in a moment.",
};

/** A refused order's reason in words. */
export function refusal(reason) {
  return REFUSALS[reason] ?? `Refused: ${reason}`;
}

/** An order's terms for `POST /api/orders`, from the ticket's fields (only what its type
 * uses). */
export function orderBody(ticket) {
  const body = {
    symbol: ticket.symbol,
    side: ticket.side,
    quantity: Number.parseInt(ticket.quantity, 10),
    type: ticket.type,
    time_in_force: ticket.timeInForce,
  };
  if (ticket.type === "limit" || ticket.type === "stop_limit") body.limit_price = ticket.limitPrice;
  if (ticket.type === "stop" || ticket.type === "stop_limit") body.stop_price = ticket.stopPrice;
  if (ticket.type === "trailing_stop") body.trail_percent = ticket.trailPercent;
  return body;
}

/** A bar from the API (`{start, open, high, low, close}`) as the chart plots it. */
export function chartBar(bar) {
  return {
    time: Math.floor(Date.parse(bar.start) / 1000),
    open: Number(bar.open),
    high: Number(bar.high),
    low: Number(bar.low),
    close: Number(bar.close),
  };
}

/** The bar a trade at `price` (at `seconds`) makes of the `last` plotted one, or a new bar
 * when it falls past it (`step` seconds per bar). */
export function nextBar(last, price, seconds, step) {
  const value = Number(price);
  const start = seconds - (seconds % step);
  if (!last || start > last.time) {
    return { time: start, open: value, high: value, low: value, close: value };
  }
  return {
    time: last.time,
    open: last.open,
    high: Math.max(last.high, value),
    low: Math.min(last.low, value),
    close: value,
  };
}

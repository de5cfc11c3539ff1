// The trading desk: a client of the same JSON API and streams that programs use (docs/http.md).
// Views are chosen by the address's hash (#/portfolio, #/stock/AAPL, ...); the key lives in the
// browser tab's session storage only.
import {
  chartBar, estimate, money, nextBar, orderBody, percent, refusal, signedMoney,
} from "./format.js";

const KEY = "brokerage.key";
const view = document.getElementById("view");
const INTERVAL_SECONDS = { "1m": 60, "5m": 300, "1d": 86400 };
let cleanup = [];

// -- the key and the API ------------------------------------------------------------------

function key() {
  const kept = sessionStorage.getItem(KEY);
  return kept ? JSON.parse(kept) : null;
}

function keep(value) {
  if (value) sessionStorage.setItem(KEY, JSON.stringify(value));
  else sessionStorage.removeItem(KEY);
  showNav();
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const held = key();
  if (held) {
    headers["APCA-API-KEY-ID"] = held.id;
    headers["APCA-API-SECRET-KEY"] = held.secret;
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, answer?.message ?? `${response.status} ${response.statusText}`);
  }
  return answer;
}

// -- building the page ----------------------------------------------------------------------

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function field(label, input) {
  return h("label", {}, label, input);
}

function figure(label, value, id) {
  return h("div", { class: "figure" }, h("span", {}, label), h("strong", { id }, value));
}

function tone(value) {
  const text = String(value ?? "");
  if (text.startsWith("-")) return "down";
  return /^[0.]*$/.test(text) ? "" : "up";
}

function message(text, kind = "error") {
  return h("div", { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

function table(headers, rows) {
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, rows)));
}

function render(...nodes) {
  view.replaceChildren(...nodes);
}

function every(milliseconds, work) {
  const timer = setInterval(work, milliseconds);
  cleanup.push(() => clearInterval(timer));
}

/** A form's submit handler: `work(data, event)` with its fields, a failure told in
 * `outcome`. */
function submit(outcome, work) {
  return async (event) => {
    event.preventDefault();
    try {
      await work(new FormData(event.target), event);
    } catch (error) {
      outcome.replaceChildren(message(error.message));
    }
  };
}

function showNav() {
  const held = key();
  document.getElementById("nav").hidden = !held;
  document.getElementById("nav-admin").hidden = !held?.admin;
}

// -- streams --------------------------------------------------------------------------------

function streamUrl(path) {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
}

/** Market data for `symbols`: `onMessage(message)` for each price move and trade. Returns
 * what closes it (the view's cleanup closes it too). */
function marketStream(symbols, onMessage) {
  const held = key();
  if (!held || !symbols.length) return () => {};
  const socket = new WebSocket(streamUrl("/stream/market"));
  socket.onopen = () => {
    socket.send(JSON.stringify({ action: "auth", key: held.id, secret: held.secret }));
    socket.send(JSON.stringify({ action: "subscribe", quotes: symbols, trades: symbols }));
  };
  socket.onmessage = (event) => {
    for (const item of JSON.parse(event.data)) {
      if (item.T === "q" || item.T === "t") onMessage(item);
      else if (item.T === "subscription") view.dataset.market = "subscribed"; // (tests wait on it)
    }
  };
  const close = () => socket.close();
  cleanup.push(close);
  return close;
}

/** The account's trade updates (fills, cancels, ...): `onUpdate(update)` for each. */
function tradeStream(onUpdate) {
  const held = key();
  if (!held || held.admin) return;
  const socket = new WebSocket(streamUrl("/stream"));
  socket.onopen = () => {
    socket.send(JSON.stringify({ action: "auth", key: held.id, secret: held.secret }));
    socket.send(JSON.stringify({ action: "listen", data: { streams: ["trade_updates"] } }));
  };
  socket.onmessage = (event) => {
    const item = JSON.parse(event.data);
    if (item.stream === "trade_updates") onUpdate(item.data);
    else if (item.stream === "listening") view.dataset.trades = "listening";
  };
  cleanup.push(() => socket.close());
}

function debounce(milliseconds, work) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(work, milliseconds);
  };
}

// -- sign up and sign in --------------------------------------------------------------------

function signIn() {
  const shown = h("div", { id: "new-key" });
  const up = h("form", {
    "aria-labelledby": "signup-title",
    onsubmit: submit(shown, async (data) => {
      const opened = await api("/api/accounts", {
        method: "POST",
        body: {
          user_id: data.get("user_id"),
          name: data.get("name"),
          initial_deposit: data.get("deposit") || "0",
          margin: data.get("margin") === "on",
        },
      });
      keep({ id: opened.api_key_id, secret: opened.api_secret_key, account: opened.account_id });
      shown.replaceChildren(
        message("Your account is open. Keep this key: its secret is shown only now.", "ok"),
        h("p", {}, "Key id: ", h("span", { class: "secret", id: "key-id" }, opened.api_key_id)),
        h("p", {}, "Secret: ", h("span", { class: "secret", id: "key-secret" }, opened.api_secret_key)),
        h("a", { href: "#/portfolio", id: "to-portfolio" }, "Go to your portfolio"));
    }),
  },
  h("h2", { id: "signup-title" }, "Open an account"),
  h("div", { class: "row" },
    field("User id", h("input", { name: "user_id", id: "signup-user", required: true, maxlength: 64 })),
    field("Name", h("input", { name: "name", id: "signup-name", required: true, maxlength: 200 })),
    field("First deposit ($)", h("input", { name: "deposit", id: "signup-deposit", inputmode: "decimal", value: "10000" }))),
  h("label", { class: "check" }, h("input", { type: "checkbox", name: "margin" }), " A margin account (borrow and sell short)"),
  h("button", { type: "submit" }, "Sign up"));
  const inForm = h("form", {
    "aria-labelledby": "signin-title",
    onsubmit: async (event) => {
      event.preventDefault();
      const data = new FormData(event.target);
      keep({ id: data.get("key_id"), secret: data.get("secret") });
      try {
        const account = await api("/api/account");
        keep({ ...key(), account: account.account_id });
        location.hash = "#/portfolio";
      } catch (error) {
        if (error.status === 403) { // the admin key has no account of its own
          keep({ ...key(), admin: true });
          location.hash = "#/admin";
          return;
        }
        keep(null);
        failed.replaceChildren(message(`Sign-in failed: ${error.message}`));
      }
    },
  },
  h("h2", { id: "signin-title" }, "Sign in with a key"),
  h("div", { class: "row" },
    field("Key id", h("input", { name: "key_id", id: "signin-id", required: true, autocomplete: "username" })),
    field("Secret", h("input", { name: "secret", id: "signin-secret", type: "password", required: true, autocomplete: "current-password" }))),
  h("button", { type: "submit" }, "Sign in"));
  const failed = h("div");
  render(h("h1", {}, "Welcome"),
    h("div", { class: "grid" },
      h("section", { class: "card" }, up, shown),
      h("section", { class: "card" }, inForm, failed)));
}

// -- the portfolio --------------------------------------------------------------------------

async function portfolio() {
  const figures = h("div", { class: "figures" });
  const holdings = h("div");
  const cashMessage = h("div");
  const equity = h("div", { id: "equity-chart" });
  const cashForm = h("form", {
    onsubmit: submit(cashMessage, async (data, event) => {
      const path = event.submitter?.value === "withdraw" ? "/api/account/withdraw" : "/api/account/deposit";
      await api(path, { method: "POST", body: { amount: data.get("amount") } });
      cashMessage.replaceChildren(message("Done.", "ok"));
      refresh();
    }),
  },
  h("div", { class: "row" },
    field("Amount ($)", h("input", { name: "amount", id: "cash-amount", inputmode: "decimal", required: true })),
    h("button", { type: "submit", value: "deposit", id: "deposit" }, "Deposit"),
    h("button", { type: "submit", value: "withdraw", class: "quiet" }, "Withdraw")));
  render(h("h1", {}, "Portfolio"),
    h("section", { class: "card" }, figures),
    h("section", { class: "card" }, h("h2", {}, "Holdings"), holdings),
    h("div", { class: "grid" },
      h("section", { class: "card" }, h("h2", {}, "Cash"), cashForm, cashMessage),
      h("section", { class: "card" }, h("h2", {}, "Equity"), equity)));
  let symbols = null;
  let closeMarket = () => {};

  async function refresh() {
    const [held, margin] = await Promise.all([api("/api/account/portfolio"), api("/api/account/margin")]);
    figures.replaceChildren(
      figure("Cash", money(held.cash), "cash"),
      figure("Buying power", money(margin.buying_power), "buying-power"),
      figure("Net worth", money(held.net_worth), "net-worth"),
      figure("Unrealized P/L", signedMoney(held.unrealized_pl), "unrealized"),
      figure("Realized P/L", signedMoney(held.realized_pl), "realized"),
      figure("Fees paid", money(held.fees)));
    holdings.replaceChildren(held.holdings.length ? table(
      ["Symbol", "Shares", "Average cost", "Price", "Value", "Unrealized P/L", "%"],
      held.holdings.map((line) => h("tr", { "data-symbol": line.symbol },
        h("td", {}, h("a", { href: `#/stock/${line.symbol}` }, line.symbol)),
        h("td", { class: "shares" }, line.quantity),
        h("td", {}, money(line.average_cost)),
        h("td", { class: "price" }, money(line.market_price)),
        h("td", {}, money(line.market_value)),
        h("td", { class: `pl ${tone(line.unrealized_pl)}` }, signedMoney(line.unrealized_pl)),
        h("td", {}, percent(line.unrealized_pl_percent))))) : h("p", { id: "no-holdings" }, "No holdings yet: search a stock to buy."));
    const now = held.holdings.map((line) => line.symbol).sort().join(" ");
    if (symbols !== now) { // watch the prices of what is held
      symbols = now;
      closeMarket();
      closeMarket = marketStream(held.holdings.map((line) => line.symbol), debounce(200, refresh));
    }
  }

  await refresh();
  tradeStream(debounce(100, refresh));
  const history = await api("/api/account/portfolio/history?period=1D&timeframe=1Min");
  const chart = LightweightCharts.createChart(equity, { autoSize: true });
  const line = chart.addSeries(LightweightCharts.LineSeries, { color: "#1f5fbf" });
  const points = new Map(); // one point a second (the chart's finest), the last kept
  history.timestamps.forEach((at, i) => {
    points.set(Math.floor(Date.parse(at) / 1000), Number(history.equity[i]));
  });
  line.setData([...points].map(([time, value]) => ({ time, value })));
  view.dataset.equityPoints = String(points.size);
  cleanup.push(() => chart.remove());
}

// -- a stock --------------------------------------------------------------------------------

async function stock(symbol) {
  let quote;
  try {
    quote = await api(`/api/stocks/${encodeURIComponent(symbol)}`);
  } catch (error) {
    render(message(error.message));
    return;
  }
  const price = h("span", { class: "price", id: "last-price" }, money(quote.last_price));
  const change = h("span", { id: "change" });
  const showChange = (q) => {
    change.className = tone(q.change);
    change.textContent = ` ${signedMoney(q.change)} (${percent(q.change_percent)})`;
  };
  showChange(quote);
  const chartBox = h("div", { id: "chart" });
  const depth = h("div", { id: "depth" });
  const tape = h("div", { id: "tape" });
  const outcome = h("div", { id: "ticket-outcome" });
  const cost = h("p", { id: "estimate" });
  const power = h("p", { id: "ticket-power" });
  const typeSelect = h("select", { name: "type", id: "ticket-type" },
    ["market", "limit", "stop", "stop_limit", "trailing_stop"].map((t) => h("option", { value: t }, t.replace("_", " "))));
  const limitField = field("Limit price ($)", h("input", { name: "limit_price", id: "ticket-limit", inputmode: "decimal" }));
  const stopField = field("Stop price ($)", h("input", { name: "stop_price", id: "ticket-stop", inputmode: "decimal" }));
  const trailField = field("Trail (%)", h("input", { name: "trail_percent", id: "ticket-trail", inputmode: "decimal" }));
  const ticket = h("form", {
    "aria-labelledby": "ticket-title",
    oninput: () => update(),
    onsubmit: submit(outcome, async () => {
      const order = await api("/api/orders", { method: "POST", body: orderBody(read()) });
      if (order.status === "rejected") {
        outcome.replaceChildren(message(refusal(order.reject_reason)));
      } else {
        outcome.replaceChildren(message(
          `Order ${order.order_id}: ${order.side} ${order.quantity} ${order.symbol}, ${order.status}` +
          (order.filled_quantity ? ` (${order.filled_quantity} filled at ${money(order.average_fill_price)})` : ""), "ok"));
      }
    }),
  },
  h("h2", { id: "ticket-title" }, "Order ticket"),
  h("div", { class: "row" },
    field("Side", h("select", { name: "side", id: "ticket-side" }, h("option", { value: "buy" }, "buy"), h("option", { value: "sell" }, "sell"))),
    field("Shares", h("input", { name: "quantity", id: "ticket-quantity", inputmode: "numeric", required: true, value: "1" })),
    field("Type", typeSelect),
    field("Time in force", h("select", { name: "time_in_force", id: "ticket-tif" },
      ["day", "gtc", "ioc", "fok"].map((t) => h("option", { value: t }, t))))),
  h("div", { class: "row" }, limitField, stopField, trailField),
  cost, power,
  h("button", { type: "submit", id: "place" }, "Place order"));

  function read() {
    const data = new FormData(ticket);
    return {
      symbol, side: data.get("side"), quantity: data.get("quantity"), type: data.get("type"),
      timeInForce: data.get("time_in_force"), limitPrice: data.get("limit_price"),
      stopPrice: data.get("stop_price"), trailPercent: data.get("trail_percent"),
    };
  }

  function update() {
    const terms = read();
    limitField.hidden = !["limit", "stop_limit"].includes(terms.type);
    stopField.hidden = !["stop", "stop_limit"].includes(terms.type);
    trailField.hidden = terms.type !== "trailing_stop";
    const told = estimate(terms, quote.last_price);
    cost.textContent = told
      ? `Estimated ${terms.side === "buy" ? "cost" : "proceeds"}: ${money(told.amount)} (at the ${told.basis})`
      : "Estimated cost: —";
  }

  render(
    h("h1", {}, `${quote.symbol} · ${quote.name}`),
    h("section", { class: "card" }, price, change,
      h("div", { class: "intervals", role: "group", "aria-label": "Bar interval" },
        Object.keys(INTERVAL_SECONDS).map((name) =>
          h("button", { type: "button", class: "quiet", "aria-pressed": name === "1m" ? "true" : "false", "data-interval": name, onclick: () => plot(name) }, name))),
      chartBox),
    h("div", { class: "grid" },
      h("section", { class: "card" }, ticket, outcome),
      h("section", { class: "card" }, h("h2", {}, "Order book"), depth, h("h2", {}, "Tape"), tape)));
  update();
  api("/api/account/margin").then((m) => { power.textContent = `Buying power: ${money(m.buying_power)}`; }).catch(() => {});

  const chart = LightweightCharts.createChart(chartBox, { autoSize: true, timeScale: { timeVisible: true } });
  const candles = chart.addSeries(LightweightCharts.CandlestickSeries, {});
  cleanup.push(() => chart.remove());
  let interval = "1m";
  let last = null;
  async function plot(name) {
    interval = name;
    for (const button of document.querySelectorAll("[data-interval]")) {
      button.setAttribute("aria-pressed", button.dataset.interval === name ? "true" : "false");
    }
    const bars = (await api(`/api/stocks/${symbol}/bars?interval=${name}&limit=500`)).map(chartBar);
    candles.setData(bars);
    last = bars.at(-1) ?? null;
    view.dataset.bars = String(bars.length);
  }
  await plot("1m");

  async function book() {
    const [levels, trades] = await Promise.all([
      api(`/api/stocks/${symbol}/depth?levels=5`), api(`/api/stocks/${symbol}/trades?limit=10`)]);
    const side = (rows) => rows.map((l) => h("tr", {}, h("td", {}, money(l.price)), h("td", {}, l.quantity)));
    depth.replaceChildren(quote.mode === "book"
      ? h("div", { class: "grid" },
        table(["Bid", "Shares"], side(levels.bids)), table(["Ask", "Shares"], side(levels.asks)))
      : h("p", {}, "Market mode: orders fill at the feed's last price."));
    tape.replaceChildren(trades.length
      ? table(["Time", "Price", "Shares"], trades.map((t) => h("tr", {},
        h("td", {}, new Date(t.at).toLocaleTimeString()), h("td", {}, money(t.price)), h("td", {}, t.quantity))))
      : h("p", {}, "No trades yet."));
  }
  await book();
  const later = debounce(150, book);
  marketStream([symbol], (item) => {
    if (item.T === "q") {
      quote = { ...quote, last_price: item.p };
      price.textContent = money(item.p);
      const seconds = Math.floor(Date.parse(item.t) / 1000);
      last = nextBar(last, item.p, seconds, INTERVAL_SECONDS[interval]);
      candles.update(last);
      view.dataset.lastPrice = item.p;
      api(`/api/stocks/${symbol}`).then(showChange).catch(() => {});
      update();
    }
    later();
  });
}

// -- orders ---------------------------------------------------------------------------------

async function orders() {
  const open = h("div", { id: "open-orders" });
  const past = h("div", { id: "past-orders" });
  const outcome = h("div");
  const filter = h("select", { id: "history-status", onchange: () => refresh() },
    ["all", "executed", "cancelled", "rejected", "replaced"].map((s) => h("option", { value: s }, s)));
  render(h("h1", {}, "Orders"),
    h("section", { class: "card" }, h("h2", {}, "Open"), outcome, open),
    h("section", { class: "card" }, h("h2", {}, "History"), field("Status", filter), past));

  const line = (o, actions) => h("tr", { "data-order": o.order_id },
    h("td", {}, o.order_id), h("td", {}, h("a", { href: `#/stock/${o.symbol}` }, o.symbol)),
    h("td", {}, o.side), h("td", {}, o.order_type.replace("_", " ")), h("td", {}, o.quantity),
    h("td", {}, money(o.limit_price)), h("td", {}, o.filled_quantity), h("td", {}, o.status),
    h("td", {}, actions));

  async function act(work) {
    try {
      await work();
      outcome.replaceChildren();
    } catch (error) {
      outcome.replaceChildren(message(error.message));
    }
    refresh();
  }

  async function refresh() {
    const status = filter.value;
    const query = status === "all" ? "" : `&status=${status}`;
    const [working, done] = await Promise.all([
      api("/api/orders?status=pending&status=partially_filled&limit=200"),
      api(`/api/orders?limit=100&direction=desc${query}`)]);
    const headers = ["Order", "Symbol", "Side", "Type", "Shares", "Limit", "Filled", "Status", ""];
    open.replaceChildren(working.length ? table(headers, working.map((o) => line(o, [
      h("button", { type: "button", class: "quiet", "aria-label": `Cancel ${o.order_id}`, onclick: () => act(() => api(`/api/orders/${o.order_id}`, { method: "DELETE" })) }, "Cancel"),
      o.order_type === "limit" ? h("button", {
        type: "button", class: "quiet", "aria-label": `Replace ${o.order_id}`,
        onclick: () => {
          const limit = prompt(`New limit price for ${o.order_id}`, o.limit_price ?? "");
          if (limit) act(() => api(`/api/orders/${o.order_id}`, { method: "PATCH", body: { limit_price: limit } }));
        },
      }, "Replace") : null]))) : h("p", { id: "no-open-orders" }, "No open orders."));
    const finished = done.filter((o) => !["pending", "partially_filled", "held"].includes(o.status));
    past.replaceChildren(table(headers, finished.map((o) => line(o, o.reject_reason ? refusal(o.reject_reason) : ""))));
  }
  await refresh();
  tradeStream(debounce(100, refresh));
}

// -- watchlists and alerts ------------------------------------------------------------------

async function watchlists() {
  const lists = h("div", { id: "watchlists" });
  const outcome = h("div");
  const create = h("form", {
    onsubmit: submit(outcome, async (data, event) => {
      await api("/api/watchlists", { method: "POST", body: { name: data.get("name"), symbols: [] } });
      event.target.reset();
      refresh();
    }),
  }, h("div", { class: "row" }, field("New watchlist", h("input", { name: "name", id: "watchlist-name", required: true, maxlength: 100 })),
    h("button", { type: "submit" }, "Create")));
  render(h("h1", {}, "Watchlists"), h("section", { class: "card" }, create, outcome), lists);

  async function refresh() {
    const all = await api("/api/watchlists");
    const cards = [];
    for (const list of all) {
      const quoted = await api(`/api/watchlists/${encodeURIComponent(list.name)}`);
      const add = h("form", {
        onsubmit: submit(outcome, async (data) => {
          await api(`/api/watchlists/${encodeURIComponent(list.name)}/symbols`, { method: "POST", body: { symbol: data.get("symbol") } });
          refresh();
        }),
      }, h("div", { class: "row" }, field(`Add to ${list.name}`, h("input", { name: "symbol", required: true, maxlength: 10 })), h("button", { type: "submit" }, "Add")));
      cards.push(h("section", { class: "card", "data-watchlist": list.name }, h("h2", {}, list.name), add,
        table(["Symbol", "Price", "Change", ""], quoted.quotes.map((q) => h("tr", {},
          h("td", {}, h("a", { href: `#/stock/${q.symbol}` }, q.symbol)), h("td", {}, money(q.last_price)),
          h("td", { class: tone(q.change) }, signedMoney(q.change)),
          h("td", {}, h("button", {
            type: "button", class: "quiet", "aria-label": `Remove ${q.symbol} from ${list.name}`,
            onclick: async () => { await api(`/api/watchlists/${encodeURIComponent(list.name)}/symbols/${q.symbol}`, { method: "DELETE" }); refresh(); },
          }, "Remove")))))));
    }
    lists.replaceChildren(...cards);
  }
  await refresh();
  every(2000, refresh);
}

async function alerts() {
  const list = h("div", { id: "alerts" });
  const outcome = h("div");
  const add = h("form", {
    onsubmit: submit(outcome, async (data) => {
      await api("/api/alerts", { method: "POST", body: { symbol: data.get("symbol"), condition: data.get("condition"), threshold: data.get("threshold") } });
      refresh();
    }),
  }, h("div", { class: "row" },
    field("Symbol", h("input", { name: "symbol", id: "alert-symbol", required: true, maxlength: 10 })),
    field("When the price is", h("select", { name: "condition", id: "alert-condition" }, h("option", { value: "above" }, "above"), h("option", { value: "below" }, "below"))),
    field("Threshold ($)", h("input", { name: "threshold", id: "alert-threshold", inputmode: "decimal", required: true })),
    h("button", { type: "submit" }, "Add alert")));
  const fired = h("div", { id: "fired-alerts" });
  render(h("h1", {}, "Price alerts"), h("section", { class: "card" }, add, outcome),
    h("section", { class: "card" }, h("h2", {}, "Active"), list),
    h("section", { class: "card" }, h("h2", {}, "Fired"), fired));
  async function refresh() {
    const [active, done] = await Promise.all([api("/api/alerts"), api("/api/alerts/fired")]);
    list.replaceChildren(active.length ? table(["Symbol", "Condition", "Threshold", ""], active.map((a) => h("tr", {},
      h("td", {}, a.symbol), h("td", {}, a.condition), h("td", {}, money(a.threshold)),
      h("td", {}, h("button", {
        type: "button", class: "quiet", "aria-label": `Remove the ${a.symbol} alert at ${a.threshold}`,
        onclick: async () => { await api(`/api/alerts/${a.alert_id}`, { method: "DELETE" }); refresh(); },
      }, "Remove"))))) : h("p", {}, "No active alerts."));
    fired.replaceChildren(done.length ? table(["Symbol", "Condition", "Threshold", "Price", "At"], done.map((a) => h("tr", {},
      h("td", {}, a.symbol), h("td", {}, a.condition), h("td", {}, money(a.threshold)),
      h("td", {}, money(a.price)), h("td", {}, new Date(a.triggered_at).toLocaleTimeString())))) : h("p", {}, "None fired yet."));
  }
  await refresh();
  every(2000, refresh);
}

// -- the operator's view --------------------------------------------------------------------

async function admin() {
  const stocks = h("div", { id: "admin-stocks" });
  const metrics = h("div", { id: "admin-metrics" });
  const audit = h("div", { id: "admin-audit" });
  const run = h("section", { class: "card", id: "simulation", hidden: true });
  render(h("h1", {}, "Operator"), run,
    h("div", { class: "grid" },
      h("section", { class: "card" }, h("h2", {}, "Metrics"), metrics),
      h("section", { class: "card" }, h("h2", {}, "Audit"),
        h("button", { type: "button", id: "run-audit", onclick: runAudit }, "Run the audit"), audit)),
    h("section", { class: "card" }, h("h2", {}, "Listed stocks"), stocks));
  let before = null;
  async function runAudit() {
    try {
      const report = await api("/api/admin/audit");
      audit.replaceChildren(message(`Conserved: ${report.accounts} accounts, cash ${money(report.cash)}, ${report.open_orders} open orders, nothing left reserved.`, "ok"));
    } catch (error) {
      audit.replaceChildren(message(error.message));
    }
  }
  async function refresh() {
    const [quotes, taken, simulated] = await Promise.all([
      api("/api/stocks"), api("/api/admin/metrics"), api("/api/admin/simulation").catch(() => null)]);
    if (simulated) { // a served simulation's progress
      run.hidden = false;
      run.replaceChildren(h("h2", {}, "Simulation"), h("p", { id: "simulation-progress" },
        simulated.done
          ? `Done: ${simulated.agents} agents traded for ${simulated.elapsed} s (${simulated.mode} mode).`
          : `${simulated.elapsed} of ${simulated.seconds} s: ${simulated.agents} agents trading (${simulated.mode} mode).`),
      h("progress", { max: simulated.seconds, value: Math.min(simulated.elapsed, simulated.seconds), "aria-label": "Simulation progress" }));
    }
    const now = performance.now();
    const accepted = taken.counters.orders_accepted ?? 0;
    const rate = before ? ((accepted - before.accepted) * 1000) / (now - before.at) : 0;
    before = { accepted, at: now };
    const latency = taken.latency_us.place_to_filled;
    metrics.replaceChildren(h("div", { class: "figures" },
      figure("Orders/s", rate.toFixed(1), "orders-per-second"),
      figure("Accepted", accepted),
      figure("In flight", taken.orders_in_flight),
      figure("Fill latency p50", latency ? `${latency.p50} µs` : "—"),
      figure("p99", latency ? `${latency.p99} µs` : "—")),
    table(["Rejected because", "Orders"], Object.entries(taken.rejected_by_reason).map(([reason, count]) => h("tr", {}, h("td", {}, reason), h("td", {}, count)))));
    stocks.replaceChildren(table(["Symbol", "Mode", "Last", "Change", "Volume"], quotes.map((q) => h("tr", {},
      h("td", {}, q.symbol), h("td", {}, q.mode), h("td", {}, money(q.last_price)),
      h("td", { class: tone(q.change) }, signedMoney(q.change)), h("td", {}, q.volume)))));
  }
  await refresh();
  every(2000, refresh);
}

// -- search and routing ---------------------------------------------------------------------

function search() {
  const input = document.getElementById("search");
  const results = document.getElementById("search-results");
  let asked = 0;
  input.addEventListener("input", async () => {
    const query = input.value.trim();
    const mine = ++asked;
    if (!query || !key()) {
      results.hidden = true;
      return;
    }
    try {
      const found = await api(`/api/search?q=${encodeURIComponent(query)}&limit=8`);
      if (mine !== asked) return; // a later keystroke asked since
      results.replaceChildren(...found.map((r) => h("li", { role: "option" },
        h("a", { href: `#/stock/${r.symbol}`, onclick: () => { results.hidden = true; input.value = ""; } }, `${r.symbol} · ${r.name}`))));
      results.hidden = !found.length;
    } catch {
      results.hidden = true;
    }
  });
}

const ROUTES = { portfolio, orders, watchlists, alerts, admin, stock };

async function route() {
  for (const undo of cleanup) undo();
  cleanup = [];
  for (const name of Object.keys(view.dataset)) delete view.dataset[name];
  const held = key();
  const [name, argument] = location.hash.replace(/^#\//, "").split("/");
  if (!held) {
    signIn();
    return;
  }
  const show = ROUTES[name] ?? (held.admin ? admin : portfolio);
  try {
    await show(argument && decodeURIComponent(argument));
  } catch (error) {
    render(message(error.message));
  }
}

document.getElementById("sign-out").addEventListener("click", () => {
  keep(null);
  location.hash = "#/";
  route();
});
window.addEventListener("hashchange", route);
search();
showNav();
route();

"""The `brokerage` command line."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from importlib.metadata import entry_points
from typing import Any

from rich.console import Console
from rich.table import Table

from actors.log import LEVELS
from engine.errors import ValidationError
from engine.fees import FeeSchedule
from engine.margin import MarginRules
from engine.slippage import Slippage
from gateway.apps.demo import run_demo
from gateway.apps.replay import replay, report, store_of
from gateway.apps.simulate import AGENT_KINDS, SimulationConfig, simulate
from gateway.server.app import serve, serving_beside
from gateway.server.limits import Limits

PLUGINS = "brokerage.commands"
"""The entry-point group through which other packages add commands (`loadtest` adds bench):
a module with `NAME`, `HELP`, `add_arguments(parser)` and `run(args) -> int`."""


def _plugins() -> list[Any]:
    """The modules registered in the `brokerage.commands` entry-point group, by name."""
    found = entry_points(group=PLUGINS)
    return [found[name].load() for name in sorted(found.names)]


def _positive(kind: type[Any], *, zero: bool = False) -> Callable[[str], Any]:
    """An argparse type: a number of `kind` above 0 (or, with `zero`, at least 0)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text[:32])
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, was {text[:32]!r}") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            bound = "at least 0" if zero else "above 0"
            raise argparse.ArgumentTypeError(f"must be {bound}, was {text[:32]!r}")
        return value

    return parse


FEES_HELP = (
    "fees per order as name=dollars pairs: per_order, per_share, percent, minimum, maximum, "
    "sec_per_million, taf_per_share, taf_max (e.g. per_share=0.005,minimum=1; default none)"
)


def _checked(parse: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse type: a setting's text, checked by `parse` (its error becomes the flag's)."""

    def check(text: str) -> str:
        try:
            parse(text)
        except ValidationError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return text

    return check


_fees = _checked(FeeSchedule.parse_text)
_margin = _checked(MarginRules.parse_text)
MARGIN_RULES_HELP = (
    "margin requirements in percent: initial, long, short (maintenance), shortable (all, or "
    "symbols separated by spaces), SYMBOL.initial|long|short (default "
    "initial=50,long=25,short=30,shortable=all)"
)
_slippage = _checked(Slippage.parse_text)


SLIPPAGE_HELP = (
    "market mode: orders filling on arrival pay half a spread and a size-dependent impact, as "
    "name=number pairs: spread_bps, impact_bps, size, jitter_percent, max_bps, seed "
    "(e.g. spread_bps=10,impact_bps=5,size=100,jitter_percent=50; default none)"
)


def _latency(text: str) -> tuple[int, int]:
    """An argparse type: a latency range in milliseconds, "MIN-MAX" or "MS" (0 to 60,000)."""
    low, _, high = text[:32].partition("-")
    try:
        bounds = int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be MIN-MAX or MS, was {text[:32]!r}") from None
    if not 0 <= bounds[0] <= bounds[1] <= 60_000:
        raise argparse.ArgumentTypeError(
            f"must be milliseconds from 0 to 60000, the first no higher, was {text[:32]!r}"
        )
    return bounds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brokerage", description="An actor-model stock brokerage and matching engine."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the brief's five demo scenarios")
    demo.add_argument("--json", action="store_true", help="print the final state as JSON only")
    demo.add_argument(
        "--log-level",
        choices=LEVELS,
        default="warning",
        help="structured lifecycle logs on stderr at this level (default: warning)",
    )
    for command in _plugins():  # commands other packages register (the benchmark)
        command.add_arguments(commands.add_parser(command.NAME, help=command.HELP))
    rep = commands.add_parser("replay", help="rebuild a brokerage from its journal and show it")
    rep.add_argument(
        "where", help="a --data folder, or a store URL (sqlite:///..., postgresql://...)"
    )
    rep.add_argument("--until", type=int, metavar="N", help="stop after the first N facts")
    rep.add_argument(
        "--until-time",
        type=datetime.fromisoformat,
        metavar="ISO",
        help="stop after the last fact made at or before this time (naive: UTC)",
    )
    rep.add_argument("--json", action="store_true", help="print the state as JSON")
    sim = commands.add_parser("simulate", help="run an agent-based market simulation")
    sim.add_argument("--accounts", type=int, default=10_000, help="trader agents (default 10,000)")
    sim.add_argument(
        "--symbols",
        type=int,
        default=52,
        help="stocks of the default universe to trade (default: all 52)",
    )
    sim.add_argument("--seconds", type=float, default=30.0, help="how long (default 30)")
    sim.add_argument(
        "--mode",
        choices=("market", "book"),
        default="market",
        help="market: a price feed moves prices; book: the agents make them",
    )
    sim.add_argument(
        "--feed",
        choices=("walk", "csv"),
        default="walk",
        help="market mode's feed: a random walk or a CSV replay",
    )
    sim.add_argument("--csv", metavar="FILE", help="time,symbol,price rows (default: the sample)")
    sim.add_argument(
        "--mix",
        default="noise=0.6,maker=0.1,momentum=0.15,value=0.15",
        help="agent kinds and weights (maker quotes only in book mode)",
    )
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument(
        "--deterministic",
        action="store_true",
        help="agents act one at a time in order on a simulated clock (see --steps)",
    )
    sim.add_argument("--steps", type=int, default=20, help="rounds in deterministic mode")
    sim.add_argument("--threads", type=int, default=4, help="client threads driving the agents")
    sim.add_argument("--report", metavar="DIR", help="write report.json and PNG charts here")
    sim.add_argument("--json", action="store_true", help="print the report as JSON at the end")
    sim.add_argument("--no-live", action="store_true", help="no live view while it runs")
    sim.add_argument(
        "--store",
        metavar="URL",
        help="journal the run to this store (sqlite:///run.db) to inspect with brokerage replay",
    )
    sim.add_argument("--fees", type=_fees, metavar="SCHEDULE", help=FEES_HELP)
    sim.add_argument("--slippage", type=_slippage, metavar="MODEL", help=SLIPPAGE_HELP)
    sim.add_argument(
        "--margin",
        type=_margin,
        nargs="?",
        const="",
        metavar="RULES",
        help="the agents trade on margin accounts and noise traders sell short, checked against "
        "maintenance each round; RULES as serve's --margin (default Reg T)",
    )
    sim.add_argument(
        "--auto-liquidate",
        action="store_true",
        help="with --margin: close the positions of an account below maintenance, largest first",
    )
    sim.add_argument(
        "--latency",
        type=_latency,
        metavar="MS",
        help="each agent's latency, drawn from MIN-MAX milliseconds (or exactly MS): it decides "
        "on prices that old, and its orders meet the market as it is (default none)",
    )
    sim.add_argument(
        "--serve",
        type=_positive(int),
        metavar="PORT",
        help="serve the run over HTTP on this port while it runs (programs trade beside the "
        "agents: sign up with POST /api/accounts, the Alpaca base URL is the server's)",
    )
    sim.add_argument("--host", default="127.0.0.1", help="with --serve: address (127.0.0.1)")
    sim.add_argument(
        "--admin-key-id",
        default=os.environ.get("BROKERAGE_ADMIN_KEY_ID"),
        help="with --serve: the admin key id (default: $BROKERAGE_ADMIN_KEY_ID, else made)",
    )
    sim.add_argument(
        "--admin-secret",
        default=os.environ.get("BROKERAGE_ADMIN_SECRET"),
        help="with --serve: the admin secret (default: $BROKERAGE_ADMIN_SECRET, else made and "
        "printed)",
    )
    srv = commands.add_parser("serve", help="serve the HTTP and WebSocket API")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    srv.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    srv.add_argument(
        "--mode", choices=("market", "book"), default="market", help="how the universe trades"
    )
    srv.add_argument(
        "--feed-interval",
        type=float,
        default=1.0,
        help="seconds between random-walk price moves (0: no feed)",
    )
    srv.add_argument(
        "--agents",
        type=_positive(int, zero=True),
        default=0,
        help="trader agents (market makers and noise traders) trading beside the users (0)",
    )
    srv.add_argument(
        "--admin-key-id", default=os.environ.get("BROKERAGE_ADMIN_KEY_ID"), help="admin key id"
    )
    srv.add_argument(
        "--admin-secret",
        default=os.environ.get("BROKERAGE_ADMIN_SECRET"),
        help=(
            "admin secret (default: $BROKERAGE_ADMIN_SECRET, else made at the first start, "
            "printed once and kept with the data)"
        ),
    )
    srv.add_argument(
        "--threads", type=int, default=64, help="threads that run requests on the engine (64)"
    )
    srv.add_argument(
        "--workers",
        type=_positive(int, zero=True),
        default=0,
        help="HTTP front processes before the engine's (0: the engine's process serves HTTP "
        "itself; 1 on a 2-core machine under heavy load)",
    )
    kept = srv.add_mutually_exclusive_group()
    kept.add_argument(
        "--data",
        default="brokerage-data",
        metavar="DIR",
        help="keep the brokerage in DIR/brokerage.db, a SQLite journal (./brokerage-data)",
    )
    kept.add_argument(
        "--store", metavar="URL", help="keep it in this store instead (postgresql://...)"
    )
    kept.add_argument(
        "--memory", action="store_true", help="keep nothing: every start begins empty"
    )
    srv.add_argument(
        "--durability",
        choices=("fsync", "os"),
        default="fsync",
        help="fsync: answered once on disk (default); os: once handed to the OS",
    )
    srv.add_argument(
        "--max-in-flight", type=int, default=10_000, help="orders in flight before BUSY"
    )
    srv.add_argument("--session", choices=("always", "nyse"), default="always")
    srv.add_argument("--fees", type=_fees, metavar="SCHEDULE", help=FEES_HELP)
    srv.add_argument("--slippage", type=_slippage, metavar="MODEL", help=SLIPPAGE_HELP)
    srv.add_argument(
        "--margin",
        type=_margin,
        metavar="RULES",
        help="for accounts opened with margin=true: " + MARGIN_RULES_HELP,
    )
    srv.add_argument(
        "--auto-liquidate",
        action="store_true",
        help="close the positions of a margin account below maintenance, largest first",
    )
    srv.add_argument("--log-level", default="warning", help="engine and server log level")
    defaults = Limits()
    srv.add_argument(
        "--max-connections",
        type=_positive(int),
        default=defaults.max_connections,
        help=f"open connections at once; past it 503 ({defaults.max_connections})",
    )
    srv.add_argument(
        "--request-timeout",
        type=_positive(float),
        default=defaults.request_timeout,
        help=f"seconds a socket has to send a complete request ({defaults.request_timeout:g})",
    )
    srv.add_argument(
        "--keep-alive",
        type=_positive(int),
        default=defaults.keep_alive,
        help=f"seconds an idle connection is kept between requests ({defaults.keep_alive:g})",
    )
    srv.add_argument(
        "--signups-per-minute",
        type=_positive(int, zero=True),
        default=defaults.signups_per_minute,
        help=f"sign-ups per client address a minute, 0: no limit ({defaults.signups_per_minute})",
    )
    srv.add_argument(
        "--auth-failures-per-minute",
        type=_positive(int, zero=True),
        default=defaults.auth_failures_per_minute,
        help="failed authentications per client address a minute before 429, 0: no limit "
        f"({defaults.auth_failures_per_minute})",
    )
    srv.add_argument(
        "--allow-private-webhooks",
        action="store_true",
        help="accept push webhooks on loopback and private addresses (tests, local set-ups)",
    )
    return parser


def _serve(args: argparse.Namespace) -> int:
    serve(
        args.host,
        args.port,
        mode=args.mode,
        feed_interval=args.feed_interval or None,
        agents=args.agents,
        admin_key_id=args.admin_key_id,
        admin_secret=args.admin_secret,
        threads=args.threads,
        workers=args.workers,
        log_level=args.log_level,
        max_in_flight=args.max_in_flight,
        session=args.session,
        fees=args.fees,
        slippage=args.slippage,
        margin=args.margin,
        auto_liquidate=args.auto_liquidate,
        store=None if args.memory else (args.store or f"sqlite:///{args.data}/brokerage.db"),
        durability=args.durability,
        limits=Limits(
            max_connections=args.max_connections,
            request_timeout=args.request_timeout,
            keep_alive=args.keep_alive,
            signups_per_minute=args.signups_per_minute,
            auth_failures_per_minute=args.auth_failures_per_minute,
            allow_private_webhooks=args.allow_private_webhooks,
        ),
    )
    return 0


def _parse_mix(text: str) -> dict[str, float]:
    mix = {}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind.strip() not in AGENT_KINDS:
            raise SystemExit(f"--mix: unknown agent kind {kind.strip()!r}")
        mix[kind.strip()] = float(weight)
    return mix


def _replay(args: argparse.Namespace) -> int:
    state = replay(store_of(args.where), args.until, args.until_time)
    found = report(state)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    console = Console(width=None if sys.stdout.isatty() else 132)
    console.print(f"{found['facts']:,} facts replayed; state digest {found['digest'][:16]}")
    accounts = Table(title="accounts")
    for column in ("account", "user", "cash", "reserved", "net worth", "realized", "holdings"):
        accounts.add_column(column, justify="right")
    for row in found["accounts"]:
        held = ", ".join(f"{s} {q}" for s, q in row["holdings"].items())
        accounts.add_row(
            row["account_id"],
            row["user_id"],
            row["cash"],
            row["reserved"],
            row["net_worth"],
            row["realized_pl"],
            held,
        )
    console.print(accounts)
    books = Table(title="books")
    for column in ("symbol", "price", "volume", "resting", "best bid", "best ask"):
        books.add_column(column, justify="right")
    for row in found["books"]:
        bid, ask = row["best_bid"], row["best_ask"]
        books.add_row(
            row["symbol"],
            row["price"],
            f"{row['volume']:,}",
            str(row["resting"]),
            "" if bid is None else bid["price"],
            "" if ask is None else ask["price"],
        )
    console.print(books)
    audit = found["audit"]
    console.print(
        f"audit passed: {audit['accounts']} accounts, cash {audit['cash']} "
        f"(deposited {audit['deposited']}, withdrawn {audit['withdrawn']}, "
        f"fees paid {audit['fees']}), "
        f"{audit['open_orders']} open orders"
    )
    return 0


def _simulate(args: argparse.Namespace) -> int:
    config = SimulationConfig(
        accounts=args.accounts,
        symbols=args.symbols,
        seconds=args.seconds,
        mode=args.mode,
        feed=args.feed,
        csv_path=args.csv,
        mix=_parse_mix(args.mix),
        seed=args.seed,
        deterministic=args.deterministic,
        steps=args.steps,
        threads=args.threads,
        store=args.store,
        fees=args.fees,
        slippage=args.slippage,
        margin=args.margin,
        auto_liquidate=args.auto_liquidate,
        latency_ms=args.latency,
    )
    console = Console(stderr=args.json, width=None if sys.stdout.isatty() else 132)
    beside = None
    if args.serve is not None:
        if args.deterministic:
            raise SystemExit("--serve: a run served over HTTP keeps the real clock; drop one")
        beside = partial(
            serving_beside,
            host=args.host,
            port=args.serve,
            admin_key_id=args.admin_key_id,
            admin_secret=args.admin_secret,
            announce=console.print,
        )
    report = simulate(
        config,
        console,
        live=not args.no_live and not args.json,
        report_dir=args.report,
        beside=beside,
    )
    if args.json:
        print(json.dumps(report, indent=2))
    return 0 if report["conservation"]["ok"] else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "replay":
        return _replay(args)
    for command in _plugins():
        if args.command == command.NAME:
            return int(command.run(args))
    if args.command == "demo":
        if args.json:
            result = run_demo(Console(quiet=True), args.log_level)
            json.dump(result, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            run_demo(Console(), args.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`brokerage bench` as a command the CLI finds through the `brokerage.commands` entry point,
so that `gateway` never imports `loadtest` (the benchmark drives the public API from above).

Never: import the benchmark itself at module level; it loads only when the command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from rich.console import Console

RUNTIMES = ("mn", "threads", "lock")
DURABLE = ("mn-fsync", "mn-os", "mn-pg")
"""The M:N runtime journaling to SQLite each way (`--runtime mn-fsync`), or to PostgreSQL with
"fsync" durability (`mn-pg`: the server at $BROKERAGE_BENCH_POSTGRES, by default
postgresql://postgres@127.0.0.1:5432/test, in a schema of its own); not run by default."""
SCENARIOS = (
    "accounts",
    "scale",
    "hot-symbol",
    "hot-account",
    "latency",
    "search",
    "long-run",
    "stops",
)
DEFAULT_SCENARIOS = tuple(s for s in SCENARIOS if s not in ("long-run", "stops"))
"""What a bench without `--scenario` runs: all but `long-run` (a million orders per runtime)
and `stops` (100,000 stops placed and cancelled per runtime)."""
NAME = "bench"
HELP = "benchmark the engine on three runtimes"


def add_arguments(bench: argparse.ArgumentParser) -> None:
    """The command's options."""
    bench.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        help="run only this scenario (repeatable; default: all but long-run and stops)",
    )
    bench.add_argument(
        "--runtime",
        action="append",
        choices=RUNTIMES + DURABLE,
        help="run only on this runtime (repeatable; default: mn, threads and lock; mn-fsync and "
        "mn-os journal to a SQLite store)",
    )
    bench.add_argument(
        "--seconds", type=float, default=5.0, help="seconds of load per run (default: 5)"
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="a seconds-long smoke run at tiny sizes (figures mean nothing)",
    )
    bench.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker threads of the mn runtime (default: its default, 1)",
    )
    bench.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run each N times and report the median run (default: 1)",
    )
    bench.add_argument("--json", action="store_true", help="print the results as JSON only")
    bench.add_argument("--plot", metavar="FILE.png", help="write throughput and latency charts")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark as the options say; return the exit status."""
    from loadtest.bench import (  # noqa: PLC0415  (the benchmark loads only when asked for)
        Sizes,
        as_json,
        long_run_summary,
        plot,
        ratios,
        run_bench,
        stops_ratio,
        table,
    )

    sizes = Sizes.quick() if args.quick else Sizes.full(args.seconds)
    if args.workers is not None:
        sizes = dataclasses.replace(sizes, workers=args.workers)
    scenarios = tuple(args.scenario or DEFAULT_SCENARIOS)
    runtimes = tuple(args.runtime or RUNTIMES)
    console = Console(stderr=args.json, width=None if sys.stdout.isatty() else 132)
    runs = run_bench(scenarios, runtimes, sizes, console, max(1, args.repeat))
    if args.plot:
        plot(runs, args.plot)
    if args.json:
        print(as_json(runs))
        return 0
    console.print(table(runs))
    for key, entry in ratios(runs).items():
        console.print(f"{key}: " + ", ".join(f"{k} = {v}x" for k, v in entry.items()))
    for found in runs:
        if found.scenario == "long-run" and found.chunks:
            summary = long_run_summary(found, sizes.long_chunk)
            console.print(
                f"long-run on {found.runtime}: chunks of {sizes.long_chunk:,} orders at "
                + ", ".join(f"{c['orders_per_second']:,.0f}" for c in found.chunks)
                + f" orders/s; last/first = {summary['last/first']}x; resident memory grew "
                f"{summary['rss_bytes_per_order']:,} B per order after the first chunk"
            )
    for runtime, sizes_compared in stops_ratio(runs).items():
        most, fewest = sizes_compared["most"], sizes_compared["fewest"]
        console.print(
            f"stops on {runtime}: a price move with {most:,.0f} stops resting takes "
            f"{sizes_compared['ratio']}x the time of one with {fewest:,.0f} (p50 "
            f"{sizes_compared['p50_us_most']:,.0f} us vs {sizes_compared['p50_us_fewest']:,.0f}"
            " us; target: at most 2x)"
        )
    console.print("every run's audit passed: cash and shares conserved, nothing reserved")
    return 0

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
SCENARIOS = ("accounts", "scale", "hot-symbol", "hot-account", "latency", "search")
NAME = "bench"
HELP = "benchmark the engine on three runtimes"


def add_arguments(bench: argparse.ArgumentParser) -> None:
    """The command's options."""
    bench.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        help="run only this scenario (repeatable; default: all)",
    )
    bench.add_argument(
        "--runtime",
        action="append",
        choices=RUNTIMES,
        help="run only on this runtime (repeatable; default: all)",
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
        plot,
        ratios,
        run_bench,
        table,
    )

    sizes = Sizes.quick() if args.quick else Sizes.full(args.seconds)
    if args.workers is not None:
        sizes = dataclasses.replace(sizes, workers=args.workers)
    scenarios = tuple(args.scenario or SCENARIOS)
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
    console.print("every run's audit passed: cash and shares conserved, nothing reserved")
    return 0

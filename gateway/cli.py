"""The `brokerage` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from rich.console import Console

from actors.log import LEVELS
from gateway.demo import run_demo


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
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

"""`make loadtest`: start a fresh `brokerage serve`, run locust's `BrokerageUser` against it
headless, write locust's CSV and HTML reports, and fail if any request failed.

    python -m loadtest.run --users 1000 --seconds 60 --out loadtest-report

Users are started at `--spawn-rate` a second (a tenth of them by default); once all are up,
the statistics are reset and the run goes on for `--seconds`, so the figures are those of the
full load, not of the ramp. A failure at any time, the ramp included, fails the run. It then
prints each request's percentiles against the brief's targets (order placement p95 500 ms,
portfolio 1,000 ms, search 100 ms), the requests per second reached, and the CPU time the
server (with its child processes) and locust used over the measured window: requests per
second per server core is the requests answered per CPU-second the server spent on them.

`--tags quote` (or search, portfolio, order, limit, deposit) runs one endpoint alone; with
`--wait-min 0 --wait-max 0` and about 100 users that is its capacity with no think time.
`--null` runs the same users against `loadtest.null_server`, which answers with fixed JSON at
almost no cost: the CPU locust then uses is what the load generator alone takes.
`--server-code DIR` serves another checkout's code (`git worktree add DIR <commit>`) with this
driver and these users: a before-and-after comparison on one machine in one sitting.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import psutil

from gateway.server.app import free_port

ONE_PROCESS_USERS = 5_000
"""The most users one locust process drives here without queueing them itself: at 10,000, with
1-5 s think time, it saturates its core even against `loadtest.null_server` (2,995 requests/s,
p95 1.9 s), where two processes reach 3,907 requests/s at p95 3 ms."""
TARGETS_MS = {"order": 500, "portfolio": 1_000, "search": 100}
LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def _target(name: str) -> int | None:
    for prefix, limit in TARGETS_MS.items():
        if name.startswith(prefix):
            return limit
    return None


def _wait_healthy(url: str, server: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer on {url}")


FRONT = "gateway.server.front"
"""What a front process of `brokerage serve --workers` has in its command line."""


def cpu_seconds(process: psutil.Process) -> tuple[float, float]:
    """User and system CPU seconds a process and its living children have used so far: in
    all, and in the front processes among them."""
    total = fronts = 0.0
    for each in [process, *process.children(recursive=True)]:
        try:
            times = each.cpu_times()
            front = FRONT in " ".join(each.cmdline())
        except psutil.Error:  # it ended in between
            continue
        total += times.user + times.system
        if front:
            fronts += times.user + times.system
    return total, fronts


class CpuWindow:
    """The CPU seconds a process tree spends between `start()` and `stop()` (`spent`), and
    its front processes (`fronts`)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.started = (0.0, 0.0)
        self.spent = self.fronts = 0.0

    def start(self) -> None:
        self.started = cpu_seconds(self.process)

    def stop(self) -> None:
        with contextlib.suppress(psutil.Error):
            total, fronts = cpu_seconds(self.process)
            self.spent = total - self.started[0]
            self.fronts = fronts - self.started[1]


def report(stats_csv: Path) -> tuple[bool, list[str], int]:
    """Read locust's `_stats.csv`: whether every target was met, a line per request, and the
    requests of the measured window (the `Aggregated` row)."""
    met = True
    lines = []
    answered = 0
    with stats_csv.open(newline="") as rows:
        for row in csv.DictReader(rows):
            name = row["Name"]
            if name == "Aggregated":
                answered = int(row["Request Count"])
            p95 = float(row["95%"] or 0)
            limit = _target(name)
            verdict = ""
            if limit is not None:
                ok = p95 <= limit
                met = met and ok
                verdict = f"  target {limit} ms: {'met' if ok else 'MISSED'}"
            lines.append(
                f"{name:<22} {int(row['Request Count']):>9} reqs {int(row['Failure Count']):>6} "
                f"fails  p50 {row['50%']:>6} ms  p95 {row['95%']:>6} ms  p99 {row['99%']:>6} ms"
                f"  {float(row['Requests/s']):8.1f} rps{verdict}"
            )
    return met, lines, answered


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load test; return 0 only if no request failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--spawn-rate", type=float, default=None, help="users/s (default users/10)")
    parser.add_argument("--seconds", type=int, default=60, help="measured, once all users are up")
    parser.add_argument("--out", default="loadtest-report", help="directory for the reports")
    parser.add_argument("--wait-min", type=float, default=1.0, help="think time from (s)")
    parser.add_argument("--wait-max", type=float, default=5.0, help="think time to (s)")
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help=f"locust worker processes (default 1, or 2 past {ONE_PROCESS_USERS:,} users)",
    )
    parser.add_argument("--tags", nargs="*", default=None, help="run only these tasks")
    parser.add_argument(
        "--server-code",
        default=None,
        help="serve the code of this checkout (another commit, for a before-and-after run)",
    )
    parser.add_argument(
        "--null",
        action="store_true",
        help="against loadtest.null_server (fixed answers): what locust alone needs",
    )
    parser.add_argument(
        "--serve-args", default="", help="more `brokerage serve` options, as one string"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = out / "serve-data"  # the served brokerage's journal: fresh for every run
    shutil.rmtree(data, ignore_errors=True)
    bin_dir = Path(sys.executable).parent
    # Every simulated user signs up from this one address, where real users come from many:
    # the per-address sign-up limit is lifted for the run; every other limit stays as served.
    if args.null:
        serving = [sys.executable, "-m", "loadtest.null_server", "--port", str(port)]
    else:
        serving = [
            str(bin_dir / "brokerage"),
            "serve",
            "--port",
            str(port),
            "--admin-secret",
            "loadtest",
            "--signups-per-minute",
            "0",
            "--data",
            str(data),
            *args.serve_args.split(),
        ]
    served_env = dict(os.environ)
    if args.server_code:
        served_env["PYTHONPATH"] = str(Path(args.server_code).resolve())
    server = subprocess.Popen(serving, stdout=subprocess.DEVNULL, env=served_env)
    try:
        _wait_healthy(url, server)
        spawn = args.spawn_rate or max(1.0, args.users / 10)
        ramp = int(args.users / spawn + 0.999)
        command = [
            str(bin_dir / "locust"),
            "-f",
            str(LOCUSTFILE),
            "BrokerageUser",
            "--headless",
            "--host",
            url,
            "--users",
            str(args.users),
            "--spawn-rate",
            str(spawn),
            "--run-time",
            f"{ramp + args.seconds}s",
            "--reset-stats",
            "--csv",
            str(out / "loadtest"),
            "--html",
            str(out / "loadtest.html"),
            "--only-summary",
            "--stop-timeout",
            "10",
        ]
        processes = args.processes or (1 if args.users <= ONE_PROCESS_USERS else 2)
        if processes > 1:
            command += ["--processes", str(processes)]
        if args.tags:
            command += ["--tags", *args.tags]
        env = {
            **os.environ,
            "LOADTEST_WAIT_MIN": str(args.wait_min),
            "LOADTEST_WAIT_MAX": str(args.wait_max),
        }
        print(
            f"locust ({processes} process{'es' if processes > 1 else ''}): {args.users} users "
            f"started at {spawn:g}/s ({ramp} s), then measured for {args.seconds} s, against {url}"
        )
        served, driving = CpuWindow(server.pid), None
        log = (out / "locust.log").open("wb")  # locust's own output, for a failed run
        with log, subprocess.Popen(command, env=env, stdout=log, stderr=log) as locust:
            driving = CpuWindow(locust.pid)
            # the measured window: from when every user is up to the end, by this driver's clock
            # (locust's own starts a second or so later, once it has imported and connected)
            try:
                locust.wait(timeout=ramp)
            except subprocess.TimeoutExpired:
                served.start()
                driving.start()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    locust.wait(timeout=args.seconds)
                served.stop()
                driving.stop()
                workers = []
                with contextlib.suppress(psutil.Error):  # the master may be gone already
                    workers = driving.process.children(recursive=True)
                locust.wait()
                # the workers stop their users after the master has gone: the server stays up
                # until the last of them has, or their last requests would fail against it
                psutil.wait_procs(workers, timeout=30)
            status = locust.returncode
    finally:
        server.terminate()
        server.wait(timeout=30)
    met, lines, answered = report(out / "loadtest_stats.csv")
    print("\n".join(lines))
    if served.spent:
        print(
            f"server CPU {served.spent:.1f} s over the {args.seconds} s window "
            f"({served.spent / args.seconds:.2f} cores): "
            f"{answered / served.spent:,.0f} requests/s per server core; "
            f"locust CPU {driving.spent:.1f} s ({driving.spent / args.seconds:.2f} cores)"
        )
        if served.fronts:
            engine = served.spent - served.fronts
            print(
                f"  of which the front processes {served.fronts / args.seconds:.2f} cores, "
                f"the engine's {engine / args.seconds:.2f} "
                f"({engine / answered * 1e6:,.0f} us of its CPU a request)"
            )
    print(f"reports: {out / 'loadtest.html'}, {out}/loadtest_*.csv and {out / 'locust.log'}")
    print(f"targets: {'all met' if met else 'NOT all met'}")
    if status != 0:
        print(f"locust exited with {status}: some requests failed")
    return status


if __name__ == "__main__":
    raise SystemExit(main())

"""The locust users: the embedded one under gevent, and `make loadtest`'s driver end to end."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

LOCUSTFILE = Path(__file__).parents[2] / "loadtest" / "locustfile.py"
BIN = Path(sys.executable).parent
FAST = {**os.environ, "LOADTEST_WAIT_MIN": "0.05", "LOADTEST_WAIT_MAX": "0.2"}


def _drive(*options: str) -> subprocess.CompletedProcess[str]:
    """`python -m loadtest.run` with these options."""
    return subprocess.run(
        [sys.executable, "-m", "loadtest.run", *options],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as rows:
        return {row["Name"]: row for row in csv.DictReader(rows)}


def test_embedded_user_runs_under_gevent_and_the_engine_audits(tmp_path: Path) -> None:
    """Locust patches threading with gevent; the engine's threads then run as greenlets.
    Every call must still succeed, and the brokerage must reconcile at the end."""
    run = subprocess.run(
        [
            str(BIN / "locust"),
            "-f",
            str(LOCUSTFILE),
            "EmbeddedUser",
            "--headless",
            "-u",
            "40",
            "-r",
            "40",
            "-t",
            "4s",
            "--csv",
            str(tmp_path / "embedded"),
            "--only-summary",
        ],
        env=FAST,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "embedded audit: OK, 40 accounts" in run.stdout + run.stderr
    rows = _rows(tmp_path / "embedded_stats.csv")
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    assert int(rows["order: market buy"]["Request Count"]) > 0
    assert int(rows["cancel"]["Request Count"]) > 0
    assert rows["portfolio"]["Type"] == "embedded"


def test_loadtest_driver_serves_runs_reports_and_passes(tmp_path: Path) -> None:
    out = tmp_path / "report"
    options = "--users 30 --spawn-rate 30 --seconds 5 --wait-min 0.05 --wait-max 0.2"
    run = _drive(*options.split(), "--out", str(out))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "targets: " in run.stdout  # met or not: speed is the benchmark's, not a test's
    assert (out / "loadtest.html").stat().st_size > 0
    rows = _rows(out / "loadtest_stats.csv")
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    for name in ("search", "quote", "portfolio", "order: market buy", "deposit"):
        assert int(rows[name]["Request Count"]) > 0, name
    assert "requests/s per server core" in run.stdout


def test_the_null_server_answers_every_request_of_the_mix(tmp_path: Path) -> None:
    """`--null`: the same users, every response checked, against fixed answers; with two
    locust processes (their users' ids must not collide) and one task alone (`--tags`)."""
    out = tmp_path / "null"
    options = "--users 20 --spawn-rate 20 --seconds 4 --wait-min 0.05 --wait-max 0.2 --null"
    options += " --processes 2 --tags limit"
    run = _drive(*options.split(), "--out", str(out))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = _rows(out / "loadtest_stats.csv")
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    assert int(rows["cancel"]["Request Count"]) > 0
    assert "search" not in rows
    assert "locust (2 processes)" in run.stdout


def test_a_wrong_answer_counts_as_a_failed_request(tmp_path: Path) -> None:
    """`BrokerageUser` checks each answer's status: with sign-ups limited to one a minute per
    address, the refused sign-ups (429) fail the run."""
    out = tmp_path / "refused"
    options = "--users 6 --spawn-rate 6 --seconds 3 --wait-min 0.05 --wait-max 0.2"
    run = _drive(*options.split(), "--serve-args", "--signups-per-minute 1", "--out", str(out))
    assert run.returncode != 0, run.stdout[-3000:]
    assert "signup: 429" in run.stdout + (out / "locust.log").read_text()

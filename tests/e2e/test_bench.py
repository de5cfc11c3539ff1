from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

BROKERAGE = str(Path(sys.executable).parent / "brokerage")


def test_quick_bench_runs_every_scenario_on_every_runtime_and_audits_each(
    tmp_path: Path,
) -> None:
    chart = tmp_path / "bench.png"

    result = subprocess.run(
        [BROKERAGE, "bench", "--quick", "--json", "--plot", str(chart)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    runs = report["runs"]
    assert {(r["scenario"], r["runtime"]) for r in runs} == {
        (s, r)
        for s in ("accounts", "scale", "hot-symbol", "hot-account", "latency", "search")
        for r in ("mn", "threads", "lock")
    }
    for run in runs:
        assert run["orders"] > 0, run
        assert run["orders_per_second"] > 0, run
        assert set(run["latency_us"]) == {"p50", "p90", "p99", "p99.9", "max"}, run
        assert run["audit"]["accounts"] == run["accounts"], run
    assert {r["accounts"] for r in runs if r["scenario"] == "scale"} == {100, 300}
    assert all(r["rss_per_account_bytes"] is not None for r in runs if r["scenario"] == "scale")
    assert "mn/threads" in report["ratios"]["accounts@200"]
    assert "mn/lock" in report["ratios"]["accounts@200"]
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_table_and_ratios_print_without_json() -> None:
    result = subprocess.run(
        [
            BROKERAGE,
            "bench",
            "--quick",
            "--scenario",
            "hot-account",
            "--runtime",
            "mn",
            "--runtime",
            "lock",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "hot-account" in result.stdout
    assert "mn/lock" in result.stdout
    assert "audit passed" in result.stdout


def test_the_history_listing_benchmark_runs_and_finds_what_it_built() -> None:
    from loadtest.history import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["--orders", "2000"]) == 0

    sections: list[dict[str, int]] = []
    for line in printed.getvalue().splitlines():
        if line.endswith(":"):  # "with a store (SQLite):", "in memory (...):"
            sections.append({})
        else:
            sections[-1][line[:34].strip()] = int(line[34:].split()[0])
    stored, memory = sections
    assert stored == {
        "all orders": 2001,
        "open orders": 1,
        "open, newest 50": 1,
        "all, newest 50": 50,
        "all, oldest 50": 50,
        "50 after the middle (cursor)": 50,
    }
    assert memory == {**stored, "all orders": 1001}  # the window and the open order


def test_quick_long_run_reports_throughput_and_memory_per_chunk() -> None:
    result = subprocess.run(
        [BROKERAGE, "bench", "--quick", "--json", "--scenario", "long-run", "--runtime", "mn"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    (run,) = json.loads(result.stdout)["runs"]
    assert run["scenario"] == "long-run"
    assert run["orders"] == 2_000
    assert len(run["chunks"]) == 4
    assert all(c["orders_per_second"] > 0 and c["rss"] > 0 for c in run["chunks"])
    assert run["audit"]["accounts"] == 100


def test_quick_stops_scenario_moves_prices_over_resting_stops_and_compares_sizes() -> None:
    result = subprocess.run(
        [BROKERAGE, "bench", "--quick", "--json", "--scenario", "stops", "--runtime", "mn"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert [(r["scenario"], r["resting"]) for r in found["runs"]] == [
        ("stops", 100),
        ("stops", 1_000),
    ]
    assert all(r["orders"] > 0 and r["latency_us"]["p50"] > 0 for r in found["runs"])
    ratio = found["stops"]["mn"]
    assert (ratio["fewest"], ratio["most"]) == (100, 1_000)
    assert ratio["ratio"] > 0


def test_the_recovery_benchmark_journals_recovers_and_audits() -> None:
    from loadtest.recovery import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main(["--orders", "1000", "--tail", "100"])

    out = printed.getvalue()
    assert "1,100 orders (" in out
    assert out.count("audit passed") == 2
    replayed = [
        int(line.split(": ")[1].split()[0].replace(",", ""))
        for line in out.splitlines()
        if "facts replayed" in line
    ]
    assert len(replayed) == 2
    assert 0 < replayed[1] < replayed[0]  # from the snapshot: only the tail
    assert "/api/health answered" in out


def test_the_order_path_probe_places_its_rounds_and_they_trade() -> None:
    """`make order-path` counts instructions of `python -m loadtest.order_path --place N` runs
    (under valgrind); here a short run, without it: every round's orders trade, and the audit
    passes."""
    from loadtest import order_path

    report = order_path.place(4)

    assert report.shares == {"BK": 1_000_000, "MK": 4}  # granted and traded; one buy a round
    assert report.open_orders == 0

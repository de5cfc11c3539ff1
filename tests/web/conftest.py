"""A real `brokerage serve` on loopback and a real headless Chromium (Debian's, driven by
Playwright for Python: never a downloaded browser) for the desk's end-to-end tests.

Without /usr/bin/chromium these tests skip with a message, except under CI (`CI=true`), where
they fail: `.ci/run` installs Debian's chromium first."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BROKERAGE = str(Path(sys.executable).parent / "brokerage")
ADMIN_ID, ADMIN_SECRET = "ADMINDESK", "desk-admin-secret"


def need(program: str, what: str) -> None:
    """Skip without `program`, unless under CI, where it must be there."""
    if shutil.which(program) or Path(program).exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{program} is missing under CI: {what}")
    pytest.skip(f"{program} is not installed: {what}")


@dataclass
class Desk:
    """A running `brokerage serve` and how to reach it."""

    url: str
    admin: dict[str, str]

    def move(self, symbol: str, price: str) -> None:
        """Move a stock's price as the operator (the price feed's entry point)."""
        answer = httpx.put(
            f"{self.url}/api/admin/stocks/{symbol}/price",
            json={"price": price},
            headers=self.admin,
        )
        assert answer.status_code == 200, answer.text


def launch(command: str, *options: str, cwd: Path) -> tuple[subprocess.Popen[str], str]:
    """Run `brokerage <command> --port P --admin-key-id ... <options>` and wait until its
    universe is listed (AAPL answers); return it and its URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            BROKERAGE,
            command,
            "--serve" if command == "simulate" else "--port",
            str(port),
            "--admin-key-id",
            ADMIN_ID,
            "--admin-secret",
            ADMIN_SECRET,
            *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/api/stocks/AAPL", headers=_admin(), timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, f"brokerage {command} did not start serving"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """`brokerage serve` in market mode with the default universe and no price feed (the
    tests move prices), keeping nothing."""
    server, url = launch(
        "serve", "--memory", "--feed-interval", "0", cwd=tmp_path_factory.mktemp("desk")
    )
    try:
        yield Desk(url, _admin())
    finally:
        server.terminate()
        server.wait(timeout=30)


def _admin() -> dict[str, str]:
    return {"APCA-API-KEY-ID": ADMIN_ID, "APCA-API-SECRET-KEY": ADMIN_SECRET}


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's Chromium, headless, with an empty profile."""
    need(CHROMIUM, "the desk's browser tests run in Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A new tab (its own session storage: signed out); each expectation waits up to 10 s."""
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    tab = browser.new_page()
    tab.set_default_timeout(10_000)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield tab
        assert not errors, errors  # no script error on any view
    finally:
        tab.close()

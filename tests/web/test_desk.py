"""The trading desk in a real headless Chromium against a real `brokerage serve` (conftest.py):
what a person does at the page, checked as they would see it."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.web.conftest import ADMIN_ID, ADMIN_SECRET, Desk, launch, need

DOCS = Path(__file__).resolve().parents[2] / "docs"
SHOTS = os.environ.get("DESK_SCREENSHOTS") == "1"
"""`make screenshots` sets it: the tests then keep the main screens in docs/."""
users = itertools.count(1)


def shot(page: Any, name: str) -> None:
    if SHOTS:
        page.screenshot(path=str(DOCS / f"desk-{name}.png"), full_page=True)


def sign_up(page: Any, desk: Desk, deposit: str = "10000") -> str:
    """Sign up at the page; return the account's key id (the secret stays in the tab)."""
    page.goto(desk.url + "/")
    page.get_by_label("User id").fill(f"desk-user-{next(users)}-{os.getpid()}")
    page.get_by_label("Name").fill("Desk User")
    page.get_by_label("First deposit ($)").fill(deposit)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("Keep this key")).to_be_visible()
    shot(page, "signup")
    key_id: str = page.locator("#key-id").inner_text()
    page.get_by_role("link", name="Go to your portfolio").click()
    expect(page.locator("#cash")).to_have_text(f"${int(deposit):,}.00")
    return key_id


def open_stock(page: Any, query: str, symbol: str) -> None:
    page.get_by_label("Search stocks").fill(query)
    page.get_by_role("link", name=re.compile(f"^{re.escape(symbol)} ·")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(symbol)


def test_sign_up_deposit_search_buy_and_see_the_position_and_cash(page: Any, desk: Desk) -> None:
    sign_up(page, desk)
    page.get_by_label("Amount ($)").fill("500")
    page.get_by_role("button", name="Deposit").click()
    expect(page.locator("#cash")).to_have_text("$10,500.00")

    open_stock(page, "micro", "MSFT")
    expect(page.locator("#last-price")).to_have_text(re.compile(r"^\$[\d,]+\.\d\d$"))
    expect(page.locator("#view")).to_have_attribute("data-bars", re.compile(r"^[1-9]"))
    page.get_by_label("Shares").fill("10")
    expect(page.locator("#estimate")).to_contain_text("Estimated cost: $4,100.00")
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#ticket-outcome")).to_contain_text("executed")
    shot(page, "stock")

    page.get_by_role("link", name="Portfolio").click()
    row = page.locator("tr[data-symbol=MSFT]")
    expect(row.locator(".shares")).to_have_text("10")
    expect(page.locator("#cash")).to_have_text("$6,400.00")  # $10,500 - 10 * $410
    shot(page, "portfolio")


def test_a_limit_order_rests_and_is_cancelled_from_the_orders_page(page: Any, desk: Desk) -> None:
    sign_up(page, desk)
    open_stock(page, "AAPL", "AAPL")
    page.get_by_label("Type").select_option("limit")
    page.get_by_label("Limit price ($)").fill("100.00")
    page.get_by_label("Shares").fill("5")
    expect(page.locator("#estimate")).to_contain_text("$500.00 (at the limit price)")
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#ticket-outcome")).to_contain_text("pending")
    page.get_by_role("link", name="Orders").click()
    open_orders = page.locator("#open-orders tr[data-order]")
    expect(open_orders).to_have_count(1)
    page.once("dialog", lambda dialog: dialog.accept("101.50"))  # the replace asks a new limit
    page.get_by_role("button", name=re.compile("^Replace O-")).click()
    expect(open_orders).to_contain_text("$101.50")
    expect(page.locator("#past-orders")).to_contain_text("replaced")
    expect(open_orders).to_have_count(1)
    shot(page, "orders")
    page.get_by_role("button", name=re.compile("^Cancel O-")).click()
    expect(page.locator("#no-open-orders")).to_be_visible()
    expect(page.locator("#past-orders")).to_contain_text("cancelled")


def test_a_price_move_updates_the_chart_price_and_p_l_without_a_reload(
    page: Any, desk: Desk
) -> None:
    sign_up(page, desk)
    open_stock(page, "NVDA", "NVDA")
    page.get_by_label("Shares").fill("10")
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#ticket-outcome")).to_contain_text("executed")
    expect(page.locator("#view")).to_have_attribute("data-market", "subscribed")

    desk.move("NVDA", "132.00")  # from $120.00
    expect(page.locator("#last-price")).to_have_text("$132.00")
    expect(page.locator("#view")).to_have_attribute("data-last-price", "132.00")
    expect(page.locator("#change")).to_contain_text("+$12.00")

    page.get_by_role("link", name="Portfolio").click()
    row = page.locator("tr[data-symbol=NVDA]")
    expect(row.locator(".pl")).to_have_text("+$120.00")
    expect(page.locator("#view")).to_have_attribute("data-market", "subscribed")
    desk.move("NVDA", "110.00")
    expect(row.locator(".pl")).to_have_text("-$100.00")  # live: no reload
    expect(row.locator(".price")).to_have_text("$110.00")


def test_a_refused_order_says_why_in_words(page: Any, desk: Desk) -> None:
    sign_up(page, desk, deposit="100")
    open_stock(page, "TSLA", "TSLA")
    page.get_by_label("Shares").fill("1000")
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("alert")).to_contain_text("Not enough buying power")
    page.get_by_label("Side").select_option("sell")
    page.get_by_label("Shares").fill("1")
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("alert")).to_contain_text("Not enough shares")


def test_watchlists_and_alerts(page: Any, desk: Desk) -> None:
    sign_up(page, desk)
    page.get_by_role("link", name="Watchlists").click()
    page.get_by_label("New watchlist").fill("tech")
    page.get_by_role("button", name="Create").click()
    page.get_by_label("Add to tech").fill("AAPL")
    page.get_by_role("button", name="Add", exact=True).click()
    listed = page.locator("[data-watchlist=tech]")
    expect(listed).to_contain_text("AAPL")
    page.get_by_role("button", name="Remove AAPL from tech").click()
    expect(listed).not_to_contain_text("AAPL")

    page.get_by_role("link", name="Alerts").click()
    page.get_by_label("Symbol").fill("META")
    page.get_by_label("Threshold ($)").fill("510")
    page.get_by_role("button", name="Add alert").click()
    expect(page.locator("#alerts")).to_contain_text("$510.00")
    desk.move("META", "515.00")
    expect(page.locator("#fired-alerts")).to_contain_text("$515.00")
    expect(page.locator("#alerts")).to_contain_text("No active alerts")


def test_the_operator_signs_in_with_the_admin_key_and_sees_metrics_stocks_and_the_audit(
    page: Any, desk: Desk
) -> None:
    page.goto(desk.url + "/")
    page.get_by_label("Key id").fill(ADMIN_ID)
    page.get_by_label("Secret").fill(ADMIN_SECRET)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Operator")
    expect(page.locator("#admin-stocks")).to_contain_text("AAPL")
    expect(page.locator("#orders-per-second")).to_be_visible()
    page.get_by_role("button", name="Run the audit").click()
    expect(page.locator("#admin-audit")).to_contain_text("Conserved")
    shot(page, "operator")


def test_a_key_signs_in_again_and_a_phone_wide_page_fits(page: Any, desk: Desk) -> None:
    opened = httpx.post(
        desk.url + "/api/accounts",
        json={"user_id": f"phone-{os.getpid()}", "name": "Phone", "initial_deposit": "250"},
    ).json()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(desk.url + "/")
    page.get_by_label("Key id").fill(opened["api_key_id"])
    page.get_by_label("Secret").fill(opened["api_secret_key"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#cash")).to_have_text("$250.00")
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page is {wide} px wider than a phone"
    shot(page, "phone")


def test_the_desks_own_logic_passes_its_unit_tests() -> None:
    need("node", "the desk's JavaScript unit tests run under node --test")
    tests = Path(__file__).with_name("format.test.mjs")
    done = subprocess.run(
        ["node", "--test", str(tests)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_operator_watches_a_served_simulation(page: Any, tmp_path: Path) -> None:
    """`brokerage simulate --serve`: the operator's view shows the run's progress."""
    run, url = launch(
        "simulate",
        *("--mode", "book", "--accounts", "30", "--symbols", "3", "--seconds", "60"),
        "--no-live",
        cwd=tmp_path,
    )
    try:
        page.goto(url + "/")
        page.get_by_label("Key id").fill(ADMIN_ID)
        page.get_by_label("Secret").fill(ADMIN_SECRET)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#simulation-progress")).to_contain_text("30 agents trading")
        expect(page.locator("#admin-stocks")).to_contain_text("book")
        shot(page, "simulation")
    finally:
        run.send_signal(signal.SIGINT)
        try:
            run.wait(timeout=30)
        except subprocess.TimeoutExpired:
            run.kill()

"""The web app in a real Chromium against the whole platform: keys for Kraken and KuCoin, a paper key with starting
balances, a bot picked by Kraken's own id, the dashboard's live fill and unrealised PnL, the report and its CSV, a
bot edited, one stopped with its orders left open and then canceled, and one deleted from the dashboard, keyboard
use and a phone-sized screen.

The tests run in order on one signed-in tab, each page's full-page screenshot kept in test-artifacts/ui/.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import expect

from borsa_testing.sim import SimAdmin

from .conftest import ARTIFACTS, Platform, run_async

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

expect.set_options(timeout=15_000)  # the first key check and market load go through ccxt and the simulator

EMAIL = f"trader{uuid.uuid4().hex[:8]}@example.com"
PASSWORD = "correct horse battery"


@dataclass
class Ui:
    platform: Platform
    page: Any
    state: dict = field(default_factory=dict)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def go(self, link: str) -> None:
        """Follow a link of the main navigation (the page routes itself: no reload)."""
        self.page.get_by_role("navigation", name="Main").get_by_role("link", name=link).click()

    def add_key(self, listed: Any) -> None:
        """Click "Add key" until `listed` shows: discovery waits 0.3 s for connectors, and on a loaded machine one may
        answer late; the page then says the exchange is not online right now, next to the exchange, as it should."""
        exchange_error = self.page.locator("#key-exchange-error")
        for _ in range(3):
            self.page.get_by_role("button", name="Add key").click()
            expect(listed.or_(exchange_error.filter(has_text="not online right now"))).to_be_visible()
            if listed.count():
                return
        expect(listed).to_be_visible()

    def sim(self, call: Callable[[SimAdmin], Awaitable[Any]]) -> Any:
        """`call(admin)` against the platform's simulator, e.g. `ui.sim(lambda admin: admin.orders("kraken"))`."""
        return run_async(_with_admin(self.platform.sim_url, call))

    def price(self, exchange: str, symbol: str) -> Decimal:
        return Decimal(self.sim(lambda admin: admin.prices(exchange))[symbol])

    def api(self, method: str, path: str, body: dict | None = None) -> Any:
        """The API as the signed-in user, with the token the page keeps in sessionStorage."""
        token = self.page.evaluate("sessionStorage.getItem('borsa.token')")
        request = urllib.request.Request(
            f"{self.platform.url}/api/v1{path}",
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")


async def _with_admin(sim_url: str, call: Callable[[SimAdmin], Awaitable[Any]]) -> Any:
    async with SimAdmin(sim_url) as admin:
        return await call(admin)


async def _sim_accounts(sim_url: str) -> dict[str, dict]:
    async with SimAdmin(sim_url) as admin:
        kraken = await admin.create_account("kraken", {"USD": "50000", "BTC": "1"})
        kucoin = await admin.create_account("kucoin", {"USDT": "50000", "BTC": "1"})
    return {"kraken": kraken["credentials"], "kucoin": kucoin["credentials"]}


@pytest.fixture(scope="module")
def ui(platform, browser):
    accounts = run_async(_sim_accounts(platform.sim_url))
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield Ui(platform, page, {"accounts": accounts, "errors": errors})
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the pages: {errors}"


def _get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_the_gateway_serves_the_pages(platform: Platform) -> None:
    """Every page path answers with the app (a reload lands on the right page); the API keeps its own 404s."""
    for path in ("/", "/login", "/keys", "/bots/new", "/dashboard", "/reports"):
        status, headers, body = _get(platform.url + path)
        assert status == 200 and headers["content-type"].startswith("text/html"), path
        assert b'<script type="module" src="/static/js/app.js">' in body
        assert "script-src 'self'" in headers["content-security-policy"]
    status, headers, body = _get(platform.url + "/static/js/pages/bot_form.js")
    assert status == 200 and "javascript" in headers["content-type"]
    status, headers, body = _get(platform.url + "/api/v1/no-such-thing")
    assert status == 404 and json.loads(body)["detail"]["code"] == "not_found"
    status, _, _ = _get(platform.url + "/static/nothing.js")
    assert status == 404


def test_register_and_sign_in(ui: Ui) -> None:
    page = ui.page
    page.goto(ui.platform.url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    ui.shot("01-sign-in")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong email or password")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    assert page.evaluate("sessionStorage.getItem('borsa.token')")
    assert "token" not in page.url


def test_api_keys_for_kraken_and_kucoin(ui: Ui) -> None:
    page, accounts = ui.page, ui.state["accounts"]
    ui.go("API keys")
    expect(page.get_by_role("heading", level=1)).to_have_text("API keys")
    exchange = page.get_by_label("Exchange")
    options = exchange.locator("option").all_inner_texts()
    assert options[:2] == ["Kraken — online", "KuCoin — online"], options  # online first, each with its status
    assert "Binance — offline" in options

    exchange.select_option("kraken")
    info = page.locator("#exchange-info")
    expect(info).to_contain_text("0.25% maker")
    expect(info).to_contain_text("Typical minimum order")
    expect(page.get_by_label("API key", exact=True)).to_be_visible()
    expect(page.get_by_label("Private key (base64)")).to_be_visible()
    expect(page.get_by_label("API passphrase")).to_have_count(0)  # Kraken asks for no passphrase
    expect(page.locator("#key-mode-paper")).to_be_enabled()

    # A field-level error next to the field it concerns, tied to it for screen readers.
    page.get_by_role("button", name="Add key").click()
    label_input = page.get_by_label("Label")
    expect(page.locator("#key-label-error")).to_have_text("Give the key a label.")
    expect(label_input).to_have_attribute("aria-invalid", "true")
    assert "key-label-error" in label_input.get_attribute("aria-describedby")

    label_input.fill("Kraken main")
    page.get_by_label("API key", exact=True).fill(accounts["kraken"]["apiKey"])
    page.get_by_label("Private key (base64)").fill(accounts["kraken"]["secret"])
    kraken_key = page.locator("#key-list li[data-exchange=kraken]")
    ui.add_key(kraken_key)
    expect(kraken_key).to_contain_text("Kraken main")
    expect(kraken_key.locator(".badge")).to_have_text("Kraken")
    expect(kraken_key).to_contain_text(accounts["kraken"]["apiKey"][-4:])  # the hint, never the key
    expect(kraken_key).not_to_contain_text(accounts["kraken"]["apiKey"])
    expect(kraken_key).to_contain_text("active")

    exchange.select_option("kucoin")
    passphrase = page.get_by_label("API passphrase")
    expect(passphrase).to_be_visible()  # KuCoin's third credential
    expect(passphrase).to_have_attribute("type", "password")
    expect(page.locator("#key-mode-sandbox")).to_be_disabled()
    page.get_by_label("Label").fill("KuCoin main")
    page.get_by_label("API key", exact=True).fill(accounts["kucoin"]["apiKey"])
    page.get_by_label("API secret").fill(accounts["kucoin"]["secret"])
    passphrase.fill(accounts["kucoin"]["password"])
    kucoin_key = page.locator("#key-list li[data-exchange=kucoin]")
    ui.add_key(kucoin_key)
    expect(kucoin_key.locator(".badge")).to_have_text("KuCoin")
    expect(kucoin_key).to_contain_text("KuCoin main")

    # Back to Kraken: the passphrase field goes away again.
    exchange.select_option("kraken")
    expect(page.get_by_label("API passphrase")).to_have_count(0)

    # A wrong secret: the exchange's refusal, shown in the alert region.
    page.get_by_label("Label").fill("wrong")
    page.get_by_label("API key", exact=True).fill(accounts["kraken"]["apiKey"])
    page.get_by_label("Private key (base64)").fill("d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldA==")
    alert, exchange_error = page.get_by_role("alert"), page.locator("#key-exchange-error")
    for _ in range(3):  # see Ui.add_key
        page.get_by_role("button", name="Add key").click()
        expect(alert.or_(exchange_error.filter(has_text="not online right now"))).to_be_visible()
        if alert.count():
            break
    expect(alert).to_be_visible()
    expect(page.locator("#key-list li")).to_have_count(2)

    # A paper key, deleted after a confirmation: Cancel keeps it, Delete removes it.
    page.get_by_label("Label").fill("Scratch paper")
    page.locator("#key-mode-paper").check()
    expect(page.get_by_label("Private key (base64)")).to_have_count(0)
    scratch = page.locator("#key-list li", has_text="Scratch paper")
    ui.add_key(scratch)
    scratch.get_by_role("button", name=re.compile("^Delete key")).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    ui.shot("03-keys-confirm-delete")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(scratch).to_be_visible()
    scratch.get_by_role("button", name=re.compile("^Delete key")).click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(scratch).to_have_count(0)
    expect(page.locator("#key-list li")).to_have_count(2)
    ui.shot("02-keys")
    keys = {k["exchange"]: k["id"] for k in ui.api("GET", "/api-keys")}
    ui.state["keys"] = keys


def test_a_paper_key_with_starting_balances(ui: Ui) -> None:
    page = ui.page
    page.get_by_label("Exchange").select_option("kraken")
    page.locator("#key-mode-paper").check()
    balances = page.get_by_role("group", name="Starting balances")
    expect(balances).to_be_visible()
    expect(balances).to_contain_text("10000 each of USD, USDT, USDC, EUR")  # what leaving it empty gives
    expect(balances).to_contain_text(re.compile(r"Kraken quotes its markets in [A-Z, ]*USD"))
    assert "USD" in page.locator("datalist option").evaluate_all("os => os.map((o) => o.value)")
    first = balances.get_by_role("group", name="Balance 1")
    currency, amount = first.get_by_label("Currency"), first.get_by_label("Amount")
    currency.fill("USD")
    page.get_by_label("Label").fill("Paper with balances")

    # Checked as the API checks it, the message next to the amount.
    amount.fill("2,500")
    page.get_by_role("button", name="Add key").click()
    error = first.locator(".field-error").nth(1)
    expect(error).to_have_text("Enter an amount like 10000 or 0.5 (digits and one point).")
    expect(amount).to_have_attribute("aria-invalid", "true")
    expect(amount).to_be_focused()
    assert error.get_attribute("id") in amount.get_attribute("aria-describedby")

    amount.fill("2500")
    balances.get_by_role("button", name="Add a currency").click()
    second = balances.get_by_role("group", name="Balance 2")
    expect(second.get_by_label("Currency")).to_be_focused()  # keyboard: straight into the new row
    page.keyboard.type("btc")
    second.get_by_label("Amount").fill("0.1")
    balances.get_by_role("button", name="Add a currency").click()  # left without an amount: skipped
    expect(balances.get_by_role("group", name="Balance 3")).to_be_visible()
    # A full-page screenshot resizes the viewport, and Chromium then scrolls a focused text field back into view
    # between the next click's mousedown and mouseup: that click is lost. No field keeps the focus for the picture.
    page.evaluate("document.activeElement.blur()")
    ui.shot("09-keys-paper-balances")
    paper = page.locator("#key-list li", has_text="Paper with balances")
    ui.add_key(paper)
    expect(paper.locator("[data-role=paper-balances]")).to_have_text("0.1 BTC, 2500 USD")  # by currency
    (key,) = [k for k in ui.api("GET", "/api-keys") if k["label"] == "Paper with balances"]
    assert (key["exchange"], key["mode"], key["paper_balances"]) == ("kraken", "paper", {"USD": "2500", "BTC": "0.1"})
    expect(page.get_by_role("group", name="Starting balances")).to_have_count(0)  # the form is back to live


def test_bot_form_picks_xbtusd_from_krakens_list(ui: Ui) -> None:
    page = ui.page
    ui.go("New bot")
    expect(page.get_by_role("heading", level=1)).to_have_text("New bot")
    page.get_by_label("API key").select_option(ui.state["keys"]["kraken"])
    expect(page.locator("#bot-exchange .badge")).to_have_text("Kraken")

    picker = page.get_by_role("combobox", name="Market")
    listbox = page.get_by_role("listbox")
    # Keyboard only: type, move with the arrows (wrapping), close with Escape.
    expect(picker).to_be_enabled()  # the exchange's markets are in
    picker.focus()
    page.keyboard.type("USD")
    expect(picker).to_have_attribute("aria-expanded", "true")
    options = listbox.get_by_role("option")
    assert options.count() > 3
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    second = options.nth(1)
    expect(second).to_have_attribute("aria-selected", "true")
    expect(picker).to_have_attribute("aria-activedescendant", second.get_attribute("id"))
    page.keyboard.press("ArrowUp")
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowUp")
    expect(options.last).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Escape")
    expect(listbox).to_be_hidden()
    expect(picker).to_have_attribute("aria-expanded", "false")

    # Kraken's own id for BTC/USD: every option shows the unified symbol and the native id.
    picker.fill("")
    page.keyboard.type("XBTUSD")
    expect(listbox).to_be_visible()
    expect(options.first).to_have_text("BTC/USD · XXBTZUSD")
    ui.shot("04-bot-picker")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(picker).to_have_value("BTC/USD · XXBTZUSD")
    expect(listbox).to_be_hidden()
    info = page.locator("#market-info")
    expect(info).to_contain_text("Minimum order")
    expect(info).to_contain_text("0.5 USD")
    expect(info).to_contain_text("Amount step")
    expect(info).to_contain_text("0.25% maker")

    # The strategy's schema builds the fields; the market's rules sit next to the amount.
    page.get_by_label("Strategy").select_option("dca")
    amount = page.get_by_label("Quote amount (USD)")
    expect(page.get_by_label("Interval (seconds)")).to_have_attribute("type", "number")
    expect(page.get_by_label("Take profit (%) (optional)")).to_be_visible()
    expect(page.locator("#param-quote_amount-hint")).to_contain_text("Minimum order 0.5 USD")

    # The API's own check, inline next to the field, before any bot exists.
    amount.fill("0.01")
    page.get_by_label("Interval (seconds)").fill("3600")
    page.get_by_label("Start the bot once it is created").uncheck()
    page.get_by_role("button", name="Create bot").click()
    error = page.locator("#param-quote_amount-error")
    expect(error).to_contain_text("below kraken's minimum order value of 0.5 USD")
    expect(amount).to_have_attribute("aria-invalid", "true")
    assert "param-quote_amount-error" in amount.get_attribute("aria-describedby")
    expect(page).to_have_url(re.compile(r"/bots/new$"))
    assert ui.api("GET", "/bots") == []
    ui.shot("05-bot-form-error")

    amount.fill("25")
    page.get_by_role("button", name="Create bot").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    (bot,) = ui.api("GET", "/bots")
    assert (bot["exchange"], bot["symbol"], bot["market_id"], bot["status"]) == (
        "kraken",
        "BTC/USD",
        "XXBTZUSD",
        "stopped",
    )
    ui.state["bot"] = bot


def test_dashboard_shows_the_bot_and_a_fill_without_reloading(ui: Ui) -> None:
    page, bot = ui.page, ui.state["bot"]
    # A second exchange's bot, so the dashboard has two groups to filter.
    ui.api(
        "POST",
        "/bots",
        {"api_key_id": ui.state["keys"]["kucoin"], "symbol": "BTC-USDT", "strategy": "dca",
         "params": {"quote_amount": "20", "interval_seconds": 3600}},
    )  # fmt: skip
    ui.go("API keys")
    ui.go("Dashboard")
    live = page.locator("#live-status")
    expect(live).to_have_attribute("data-state", "live")
    kraken = page.locator("section.exchange-group[data-exchange=kraken]")
    kucoin = page.locator("section.exchange-group[data-exchange=kucoin]")
    expect(kraken.get_by_role("heading", level=2).locator(".badge")).to_have_text("Kraken")
    card = kraken.locator(f"li.bot[data-bot-id='{bot['id']}']")
    expect(card).to_contain_text("BTC/USD")
    expect(card).to_contain_text("XXBTZUSD")
    expect(card.locator(".badge")).to_have_text("Kraken")
    expect(card.locator("[data-role=status]")).to_have_text("Stopped")
    expect(kucoin.locator(".badge").first).to_have_text("KuCoin")

    # Filter by exchange.
    page.get_by_label("Exchange").select_option("kucoin")
    expect(kraken).to_be_hidden()
    expect(kucoin).to_be_visible()
    page.get_by_label("Exchange").select_option("")
    expect(kraken).to_be_visible()

    # No navigation from here on: the marker would be gone after any load.
    page.evaluate("window.__borsaMarker = 'still here'")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    fills = card.locator("[data-role=fills] li.fill")
    expect(fills).to_have_count(0)
    # Starting a DCA bot makes it buy at once (a market order the simulator fills): the fill arrives by the stream.
    card.get_by_role("button", name=re.compile("^Start")).click()
    expect(card.locator("[data-role=status]")).to_have_text("Running")
    expect(fills.first).to_contain_text("buy", timeout=30_000)
    expect(card.locator("[data-role=position]")).not_to_have_text("0 BTC", timeout=15_000)
    assert page.evaluate("window.__borsaMarker") == "still here"
    assert navigations == []
    ui.state["trade_id"] = fills.first.get_attribute("data-trade-id")
    ui.shot("06-dashboard")


def test_reports_tables_chart_history_and_csv(ui: Ui) -> None:
    page, trade_id = ui.page, ui.state["trade_id"]
    deadline = time.monotonic() + 30
    while not any(t["trade_id"] == trade_id for t in ui.api("GET", "/trades")):  # reporting ingests from the stream
        assert time.monotonic() < deadline, "reporting did not record the fill"
        time.sleep(0.3)
    ui.go("Reports")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reports")
    row = page.locator(f"#trades-table tr[data-trade-id='{trade_id}']")
    expect(row.locator(".badge")).to_have_text("Kraken")
    expect(row).to_contain_text("BTC/USD")
    expect(row).to_contain_text("buy")
    expect(page.locator("#summary-exchange tr[data-exchange=kraken]")).to_contain_text("Kraken")
    expect(page.locator("#summary-bot tbody tr")).to_contain_text("BTC/USD dca")
    expect(page.locator("#summary-symbol tbody tr").first).to_contain_text("BTC/USD")
    chart = page.get_by_role("img", name=re.compile("Cumulative realised PnL"))
    expect(chart.locator("path.series[data-quote=USD]")).to_have_count(1)
    # Money in cents for a USD quote, every digit in the cell's title (and in the CSV).
    (kraken,) = [r for r in ui.api("GET", "/reports/summary?group_by=exchange")["rows"] if r["exchange"] == "kraken"]
    volume = page.locator("#summary-exchange tr[data-exchange=kraken] td.num").nth(2)
    expect(volume).to_have_text(re.compile(r"^\d+\.\d\d USD$"))
    assert Decimal(volume.get_attribute("title").split()[0]) == Decimal(kraken["volume"])
    assert abs(Decimal(volume.inner_text().split()[0]) - Decimal(kraken["volume"])) <= Decimal("0.005")
    ui.shot("07-reports")

    # Filters: another exchange's history is empty.
    page.locator("#rep-exchange").select_option("kucoin")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#trades-table tbody")).to_contain_text("No fills match")
    page.locator("#rep-exchange").select_option("")
    page.get_by_role("button", name="Apply").click()
    expect(row).to_be_visible()

    with page.expect_download() as info:
        page.get_by_role("button", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == "borsa-trades.csv"
    path = ARTIFACTS / "borsa-trades.csv"
    download.save_as(str(path))
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    (fill,) = [r for r in rows if r["trade_id"] == trade_id]
    assert (fill["exchange"], fill["symbol"], fill["side"]) == ("kraken", "BTC/USD", "buy")
    assert fill["bot_id"] == ui.state["bot"]["id"]


def test_edit_a_bots_params_from_the_dashboard(ui: Ui) -> None:
    page = ui.page
    ui.go("Dashboard")
    card = page.locator("li.bot[data-exchange=kucoin]")
    expect(card.locator("[data-role=params]")).to_have_text("Quote amount 20 USDT · Interval 3600 s")
    (bot,) = [b for b in ui.api("GET", "/bots") if b["exchange"] == "kucoin"]
    edit = card.get_by_role("button", name="Edit the BTC/USDT bot on KuCoin")
    edit.click()
    dialog = page.get_by_role("dialog", name="Edit the BTC/USDT bot on KuCoin")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("combobox", name="Market")).to_have_value("BTC/USDT · BTC-USDT")  # its markets are in
    amount = dialog.get_by_label("Quote amount (USDT)")
    expect(amount).to_have_value("20")
    expect(amount).to_be_focused()
    expect(dialog.get_by_label("Interval (seconds)")).to_have_value("3600")
    expect(dialog.locator("#edit-param-quote_amount-hint")).to_contain_text("Minimum order")

    # The API's check, next to the field, and nothing saved.
    amount.fill("0.0001")
    dialog.get_by_role("button", name="Save").click()
    error = dialog.locator("#edit-param-quote_amount-error")
    expect(error).to_contain_text("minimum order")
    expect(amount).to_have_attribute("aria-invalid", "true")
    assert "edit-param-quote_amount-error" in amount.get_attribute("aria-describedby")
    expect(dialog).to_be_visible()
    assert ui.api("GET", f"/bots/{bot['id']}")["params"] == bot["params"]
    ui.shot("10-dashboard-edit-error")

    amount.fill("30")
    dialog.get_by_label("Interval (seconds)").fill("7200")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(card.locator("[data-role=params]")).to_have_text("Quote amount 30 USDT · Interval 7200 s")
    assert ui.api("GET", f"/bots/{bot['id']}")["params"] == {"quote_amount": "30", "interval_seconds": 7200}

    # Keyboard: Escape closes the dialog without saving, and the focus goes back to the Edit button.
    edit.click()
    expect(dialog.get_by_label("Quote amount (USDT)")).to_have_value("30")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(edit).to_be_focused()


def test_unrealised_pnl_follows_the_market_without_reloading(ui: Ui) -> None:
    page, bot = ui.page, ui.state["bot"]
    ui.go("API keys")
    ui.go("Dashboard")
    card = page.locator(f"li.bot[data-bot-id='{bot['id']}']")
    position = Decimal(card.locator("[data-role=position]").inner_text().split()[0])
    assert position > 0  # the DCA bot's first buy
    page.evaluate("window.__borsaMarker = 'still here'")
    price = ui.price("kraken", "BTC/USD")
    ui.sim(lambda admin: admin.set_price("kraken", "BTC/USD", price * 2))
    # Bought near `price`, now worth about twice as much: about position x price up, shown within a refresh.
    unrealised = card.locator("[data-role=unrealized]")
    floor = position * price / 2
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline:
        shown = Decimal(unrealised.inner_text().split()[0])
        if shown > floor:
            break
        time.sleep(0.5)
    assert shown > floor, (shown, floor)
    assert unrealised.inner_text().endswith(" USD")
    assert page.evaluate("window.__borsaMarker") == "still here"


MONEY_CASES = [
    ("-0.096666248444", "USD", "-0.10 USD"),  # unrealised PnL as reporting computes it
    ("0", "USD", "0.00 USD"),
    ("-0.004", "USD", "0.00 USD"),  # no "-0.00"
    ("1.005", "USDT", "1.01 USDT"),  # half away from zero, on the digits (a float would say 1.00)
    ("9.995", "USD", "10.00 USD"),
    ("99.999999999", "BTC", "100 BTC"),  # not a cent quote: 8 places, zeros trimmed
    ("0.000000015", "BTC", "0.00000002 BTC"),
    ("-1.23456789012", "ETH", "-1.23456789 ETH"),
    ("1E-9", "USD", "0.00 USD"),
]


def test_pnl_is_shown_rounded_on_the_decimal_string(ui: Ui) -> None:
    """The dashboard's money format, run in the browser itself; the card keeps the exact value in its title."""
    got = ui.page.evaluate(
        "async (cases) => { const { money } = await import('/static/js/dom.js');"
        " return cases.map(([value, unit]) => money(value, unit)); }",
        [[value, unit] for value, unit, _ in MONEY_CASES],
    )
    assert got == [want for _, _, want in MONEY_CASES]
    card = ui.page.locator(f"li.bot[data-bot-id='{ui.state['bot']['id']}']")
    unrealised = card.locator("[data-role=unrealized]")
    shown, exact = unrealised.inner_text(), unrealised.get_attribute("title")
    assert re.fullmatch(r"-?\d+\.\d\d USD", shown), shown
    assert abs(Decimal(exact.split()[0]) - Decimal(shown.split()[0])) <= Decimal("0.005")


def test_stop_a_bot_leaving_its_orders_open_then_canceling_them(ui: Ui) -> None:
    page = ui.page
    price = ui.price("kraken", "BTC/USD")
    before = {o["id"] for o in ui.sim(lambda admin: admin.orders("kraken"))}
    grid = ui.api(
        "POST",
        "/bots",
        {"api_key_id": ui.state["keys"]["kraken"], "symbol": "BTC/USD", "strategy": "grid",
         "params": {"low": str((price * Decimal("0.8")).quantize(Decimal(1))),
                    "high": str((price * Decimal("1.2")).quantize(Decimal(1))), "levels": 4, "quote_per_level": "10"}},
    )  # fmt: skip
    ui.api("POST", f"/bots/{grid['id']}/start")

    def resting() -> dict[str, str]:
        """The grid's limit orders at the simulator, by id: their status."""
        orders = ui.sim(lambda admin: admin.orders("kraken"))
        return {o["id"]: o["status"] for o in orders if o["id"] not in before and o["type"] == "limit"}

    deadline = time.monotonic() + 30
    while not (placed := resting()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert placed and set(placed.values()) == {"open"}, placed

    ui.go("API keys")
    ui.go("Dashboard")
    card = page.locator(f"li.bot[data-bot-id='{grid['id']}']")
    status = card.locator("[data-role=status]")
    expect(status).to_have_text("Running")
    confirm = page.get_by_role("dialog", name="Stop this bot?")
    option = confirm.get_by_label("Cancel its open orders on Kraken")

    # "Keep running" changes nothing.
    card.get_by_role("button", name="Stop the BTC/USD bot on Kraken").click()
    expect(confirm).to_contain_text("grid bot on Kraken stops acting")
    expect(option).to_be_checked()  # canceling is the default
    expect(confirm.get_by_role("button", name="Keep running")).to_be_focused()
    confirm.get_by_role("button", name="Keep running").click()
    expect(confirm).to_be_hidden()
    expect(status).to_have_text("Running")

    # Stopped with its orders left on the exchange: they stay open.
    card.get_by_role("button", name="Stop the BTC/USD bot on Kraken").click()
    option.uncheck()
    ui.shot("11-dashboard-stop-leave-orders")
    confirm.get_by_role("button", name="Stop").click()
    expect(status).to_have_text("Stopped")
    assert ui.api("GET", f"/bots/{grid['id']}")["status"] == "stopped"
    time.sleep(2)  # the runner has long handled the stop by now; nothing may have canceled the orders
    assert resting() == placed

    # Started again, it keeps the same orders (no second set); stopped with the default, they are canceled.
    card.get_by_role("button", name="Start the BTC/USD bot on Kraken").click()
    expect(status).to_have_text("Running")
    card.get_by_role("button", name="Stop the BTC/USD bot on Kraken").click()
    expect(option).to_be_checked()
    confirm.get_by_role("button", name="Stop").click()
    expect(status).to_have_text("Stopped")
    deadline = time.monotonic() + 30
    while set((now := resting()).values()) != {"canceled"} and time.monotonic() < deadline:
        time.sleep(0.2)
    assert now.keys() == placed.keys() and set(now.values()) == {"canceled"}, now
    # Deleted elsewhere (the API here; another tab alike): the card goes without a reload.
    page.evaluate("window.__borsaMarker = 'still here'")
    ui.api("DELETE", f"/bots/{grid['id']}")
    expect(card).to_have_count(0)
    expect(page.locator("section.exchange-group[data-exchange=kraken]")).to_contain_text("1 bot(s)")
    assert page.evaluate("window.__borsaMarker") == "still here"


def test_delete_a_bot_after_confirming(ui: Ui) -> None:
    page = ui.page
    kraken = page.locator("li.bot[data-exchange=kraken]")
    kucoin = page.locator("li.bot[data-exchange=kucoin]")
    confirm = page.get_by_role("dialog", name="Delete this bot?")

    # The running bot: the dialog says what deleting does to its orders; Cancel keeps it.
    kraken.get_by_role("button", name="Delete the BTC/USD bot on Kraken").click()
    expect(confirm).to_contain_text("It stops and its open orders are canceled.")
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    ui.shot("12-dashboard-confirm-delete")
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    expect(kraken).to_be_visible()
    assert len(ui.api("GET", "/bots")) == 2

    kucoin.get_by_role("button", name="Delete the BTC/USDT bot on KuCoin").click()
    expect(confirm).to_contain_text("It is not running")
    confirm.get_by_role("button", name="Delete").click()
    expect(kucoin).to_have_count(0)
    expect(page.locator("section.exchange-group[data-exchange=kucoin]")).to_have_count(0)
    expect(page.get_by_label("Exchange").locator("option[value=kucoin]")).to_have_count(0)
    expect(kraken).to_be_visible()
    assert [b["exchange"] for b in ui.api("GET", "/bots")] == ["kraken"]


@pytest.mark.parametrize("viewport", [{"width": 375, "height": 812}])
def test_phone_sized_screen(ui: Ui, viewport: dict) -> None:
    page = ui.page
    page.set_viewport_size(viewport)
    for path, name in (
        ("/keys", "keys"),
        ("/bots/new", "bot-form"),
        ("/dashboard", "dashboard"),
        ("/reports", "reports"),
    ):
        page.goto(ui.platform.url + path)  # a reload keeps the tab's session
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        if path == "/dashboard":
            expect(page.locator("li.bot").first).to_be_visible()
        if path == "/reports":
            expect(page.locator("#trades-table tbody tr").first).to_be_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 375px"
        expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports")).to_be_in_viewport()
        ui.shot(f"08-phone-{name}")
        if path == "/keys":  # a paper key's balance rows fit too
            page.locator("#key-mode-paper").check()
            expect(
                page.get_by_role("group", name="Balance 1").get_by_role("button", name="Remove balance 1")
            ).to_be_visible()
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"a paper key's balances scroll sideways by {overflow}px at 375px"
            ui.shot("08-phone-keys-paper")
        if path == "/dashboard":
            page.locator("li.bot").first.get_by_role("button", name=re.compile("^Edit")).click()
            dialog = page.get_by_role("dialog", name=re.compile("^Edit"))
            expect(dialog.get_by_role("combobox", name="Market")).to_be_enabled()
            box = dialog.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box
            assert dialog.evaluate("d => d.scrollWidth <= d.clientWidth"), "the edit dialog scrolls sideways"
            ui.shot("08-phone-dashboard-edit")
            page.keyboard.press("Escape")
            expect(dialog).to_be_hidden()
    page.set_viewport_size({"width": 1280, "height": 900})

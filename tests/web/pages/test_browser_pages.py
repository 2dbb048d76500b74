"""The ticket page and the charts in a real headless Chromium, on the fake exccd, at 1280 px.

Screenshots land in test-output/screenshots/ (pages-*.png; the path is
printed at the end of each test). Every public and admin page is also
measured: no word in a table header or cell may be split over two lines
when it would have fit on one (what "PAS S" and "I D" were).
"""

import asyncio

from selenium.webdriver.common.by import By

from browser import SHOTS, browser, pytestmark, shot, submit, text_of  # noqa: F401 (fixture, marks)
from conftest import SIMNET_XPUB  # noqa: F401 (the vsp fixture's xpub)
from ticketstates import walk
from yearbuilder import fill_year

WIDTH = 1280
ADMIN_TABS = ("status", "tickets", "unpaid", "missed", "xpubs", "revenue", "backup", "settings", "listing", "log",
              "record")

# Each word of each text in a th or td: split over lines (more than one line box)? A word may break only
# if it is wider than 3/4 of the table's container (a base64 signature or a JSON request fits no column);
# a word that could have had a line of its own in some column ("PAS S", "I D", a 64-hex hash) may not.
BROKEN_WORDS = """
const out = [];
for (const cell of document.querySelectorAll('th, td')) {
  const room = 0.75 * cell.closest('table').parentElement.clientWidth;
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.data.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const rects = [...range.getClientRects()].filter(r => r.width > 0);
      const tops = new Set(rects.map(r => Math.round(r.top)));
      const width = rects.reduce((s, r) => s + r.width, 0);
      if (tops.size > 1 && width <= room + 1) out.push(m[0] + ' in <' + cell.tagName.toLowerCase() + '> ' +
                                                       cell.textContent.trim().slice(0, 60));
    }
  }
}
return out;
"""


def broken_words(driver) -> list[str]:
    return driver.execute_script(BROKEN_WORDS)


async def in_browser(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def login(driver, url: str, password: str) -> None:
    driver.get(url + "/admin")
    driver.find_element(By.ID, "password").send_keys(password)
    submit(driver, "login")


async def test_ticket_page_through_every_state_in_chromium(vsp, browser):
    browser.set_window_size(WIDTH, 1000)
    vsp.ctx.ticketpage = True
    first = None
    async for step in walk(vsp):
        if first is None:  # the home page's search box: a plain GET form
            first = step.ticket

            def search() -> None:
                browser.get(vsp.url + "/")
                browser.find_element(By.ID, "ticket-search-hash").send_keys(f"  {step.ticket.upper()} ")
                submit(browser, "ticket-search-go")
            await in_browser(search)
            assert browser.current_url == f"{vsp.url}/ticket/{step.ticket}"
        else:
            await in_browser(browser.get, f"{vsp.url}/ticket/{step.ticket}")
        shot(browser, f"pages-{step.name}")
        assert text_of(browser, "ticket-state") == step.state, step.name
        page = browser.find_element(By.TAG_NAME, "main").text
        for words in step.words:
            assert words in page, (step.name, words)
        if step.spender:
            assert text_of(browser, "ticket-spend-tx") == step.spender
        assert broken_words(browser) == [], step.name
    await in_browser(browser.get, f"{vsp.url}/ticket/{'ab' * 32}")
    shot(browser, "pages-ticket-unknown")
    assert "404 Not Found" in browser.page_source and "does not know ticket" in browser.page_source
    await in_browser(browser.get, f"{vsp.url}/ticket/not-a-hash")
    shot(browser, "pages-ticket-malformed")
    assert "400 Bad Request" in browser.page_source
    print(f"\nscreenshots: {SHOTS}/pages-ticket-*.png")


async def test_charts_and_no_word_breaks_on_every_page(vsp, browser):
    browser.set_window_size(WIDTH, 1400)
    ctx = vsp.ctx
    ctx.ticketpage = True
    ctx.adminpass = "correct horse battery"
    ctx.cookie_secret = await vsp.store.get_key("cookiesecret")

    # no data yet: every chart says so
    await in_browser(browser.get, vsp.url + "/")
    shot(browser, "pages-home-no-data")
    assert "No ticket of this VSP was voted" in text_of(browser, "chart-votes-30")
    assert "No health checks recorded" in text_of(browser, "chart-uptime-30")
    assert broken_words(browser) == []
    await in_browser(login, browser, vsp.url, ctx.adminpass)
    await in_browser(browser.get, vsp.url + "/admin?tab=record")
    shot(browser, "pages-admin-charts-no-data")
    for chart in ("chart-states-90", "chart-fees-90", "chart-lag-90"):
        assert "No " in text_of(browser, chart), chart

    # a year of 100 000 tickets
    year = fill_year(vsp.store.path, 100_000, now=ctx.clock())
    await vsp.site.lane.home_pages.record.refresh(force=True)  # written beside the store
    await in_browser(browser.get, vsp.url + "/")
    shot(browser, "pages-home-year")
    summary = text_of(browser, "record-summary")
    assert f"{year.voted_30:,} voted, {year.missed_30:,} missed" in summary
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart-votes-30 g")
    assert len(bars) == 30 and all(b.rect["height"] > 0 for b in bars[-20:])  # drawn, with a height
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-uptime-30 rect title")) == 90  # 3 wallets x 30 days
    assert browser.execute_script("return document.documentElement.scrollWidth") <= WIDTH
    await in_browser(submit, browser, "record-90")  # the link under the charts
    shot(browser, "pages-record-90")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-votes-90 g")) == 90
    for days in (90, 365):
        await in_browser(browser.get, f"{vsp.url}/admin?tab=record&days={days}")
        shot(browser, f"pages-admin-charts-{days}")
        assert len(browser.find_elements(By.CSS_SELECTOR, f"#chart-states-{days} g")) == days
        assert len(browser.find_elements(By.CSS_SELECTOR, f"#chart-fees-{days} g")) == days
        assert len(browser.find_elements(By.CSS_SELECTOR, f"#chart-lag-{days} polyline")) == 3

    # every public and admin page at 1280 px: no word split that would have fit
    t = vsp.new_ticket(confirmations=1)
    await vsp.client.feeaddress(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex)
    found = {}
    for path in ("/", "/api", "/record", f"/ticket/{t.hash}", "/no-such-page"):
        await in_browser(browser.get, vsp.url + path)
        found[path] = broken_words(browser)
        shot(browser, "pages-1280-" + (path.strip("/").split("/")[0] or "home"))
    for tab in ADMIN_TABS:
        await in_browser(browser.get, f"{vsp.url}/admin?tab={tab}")
        found[tab] = broken_words(browser)
        shot(browser, f"pages-1280-admin-{tab}")

    def ticket_search() -> None:
        browser.get(vsp.url + "/admin?tab=tickets")
        browser.find_element(By.ID, "search-hash").send_keys(t.hash)
        submit(browser, "search")
    await in_browser(ticket_search)
    found["admin ticket"] = broken_words(browser)
    shot(browser, "pages-1280-admin-ticket")
    assert {page: words for page, words in found.items() if words} == {}

    # the measure sees a word broken when there is one: the old rule that split "Retired" and "current"
    await in_browser(browser.get, f"{vsp.url}/admin?tab=xpubs")
    browser.execute_script("const s = document.createElement('style'); s.textContent = "
                           "'th, td { word-break: break-all; }'; document.head.append(s);")
    shot(browser, "pages-measure-self-check")
    assert broken_words(browser), "a table squeezed by word-break: break-all went unnoticed"

    # on a phone: the charts and the ticket page fit the width
    browser.set_window_size(390, 844)
    for path, name in (("/", "pages-phone-home"), (f"/ticket/{t.hash}", "pages-phone-ticket")):
        await in_browser(browser.get, vsp.url + path)
        browser.execute_script("document.querySelector('#record-summary, #ticket-state').scrollIntoView()")
        shot(browser, name)
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 400, path
    print(f"\nscreenshots: {SHOTS}/pages-*.png")

"""The site and the admin in a real headless Chromium (Debian's chromium + chromedriver).

Screenshots of every page land in test-output/screenshots/.
"""

import asyncio
import base64
import html
import json
import re

import aiohttp

from browser import browser, pytestmark, shot, submit, text_of  # noqa: F401 (fixture, marks)
from chainbuilders import make_fee_tx
from procs import Network
from vspclient import VSPClient, quote_new_ticket
from vspd.chain import address
from vspd.chain.params import SIMNET

# Every word of every table cell on one line (measured in the DOM: a word's box has one top). Longer tokens
# are hashes, keys and URLs, which may break rather than widen a table past the page.
BROKEN_WORDS = """
const broken = [];
for (const cell of document.querySelectorAll('th, td')) {
  const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let node = walk.nextNode(); node; node = walk.nextNode()) {
    for (const m of node.data.matchAll(/\\S+/g)) {
      if (m[0].length > 32) continue;
      const r = document.createRange();
      r.setStart(node, m.index);
      r.setEnd(node, m.index + m[0].length);
      const tops = new Set([...r.getClientRects()].filter(b => b.width > 0).map(b => Math.round(b.top)));
      if (tops.size > 1) broken.push(m[0]);
    }
  }
}
return {broken, cells: document.querySelectorAll('th, td').length,
        overflow: document.documentElement.scrollWidth - window.innerWidth};
"""


def check_no_word_breaks(driver, page: str) -> None:
    found = driver.execute_script(BROKEN_WORDS)
    assert found["cells"] > 0, f"{page}: no table to measure"
    assert found["broken"] == [], f"{page}: words broken across lines at 1280 px: {found['broken']}"
    assert found["overflow"] <= 0, f"{page}: {found['overflow']} px wider than the window"


def shows_key(page: str, key: str) -> list[str]:
    """Where `key` is on the page: as text, or inside any base64 run (either alphabet, any alignment)."""
    found = [f"as text: {key}"] if key in html.unescape(page) else []
    for run in re.findall(r"[A-Za-z0-9+/_-]{16,}={0,2}", html.unescape(page)):
        for start in range(4):
            part = run[start:].rstrip("=")
            part = part[:len(part) - len(part) % 4]
            for alphabet in (None, b"-_"):
                try:
                    decoded = base64.b64decode(part, altchars=alphabet, validate=alphabet is None)
                except ValueError:
                    continue
                if key.encode() in decoded:
                    found.append(run)
    return found


def test_shows_key_finds_a_key_in_base64_inside_escaped_json():
    key = "PtWUAYnxzZxtWCVMVtPPaRqmEJBD7smLpm3WtyLVdMUJHrdBRzA4"
    echoed = base64.b64encode(('{"votingkey":"%s"}' % key).encode()).decode()
    assert shows_key(f"<pre>{{&#34;request&#34;:&#34;{echoed}&#34;}}</pre>", key)
    assert shows_key(f"x{key}y", key) and not shows_key(f"<pre>{echoed[:8]}</pre>", key)


async def test_site_and_admin_in_chromium(tmp_path, browser):
    from selenium.webdriver.common.by import By
    net = await Network.create(tmp_path, nvoters=3, extra_args=["--healthinterval=0.3"])
    try:
        await net.start_frontend(wait_healthy=3)
        async with aiohttp.ClientSession() as http:
            client = VSPClient(http, net.url)
            await client.vspinfo()
            nt = await quote_new_ticket(client, net.chain)
            voting, commit, t, r = nt.voting, nt.commitment, nt.tx, nt.reply
            fee = make_fee_tx(address.decode(r.json["feeaddress"], SIMNET), r.json["feeamount"])
            p = await client.payfee(commit.secret, t.txid(), fee.serialize().hex(), voting.wif)
            assert p.status == 200
            unpaid = await quote_new_ticket(client, net.chain)  # quoted, never paid: a row of the Unpaid tab
            info = (await client.vspinfo()).json
        loop = asyncio.get_running_loop()

        def go(path: str) -> None:
            browser.get(net.url + path)

        # home: the live numbers, the same as /vspinfo
        await loop.run_in_executor(None, go, "/")
        shot(browser, "home")
        assert text_of(browser, "stat-height") == f"{info['blockheight']:,}"
        assert text_of(browser, "stat-voting") == str(info["voting"])
        assert text_of(browser, "stat-fee") == "3%"
        assert text_of(browser, "vsp-pubkey") == info["pubkey"]
        assert text_of(browser, "stat-voters") == f"{info['votingwalletsonline']} / {info['totalvotingwallets']}"
        assert "online, synced, unlocked and voting" in text_of(browser, "voters")
        await loop.run_in_executor(None, go, "/api")
        shot(browser, "api")
        check_no_word_breaks(browser, "/api")
        await loop.run_in_executor(None, go, "/nothing-here")
        shot(browser, "404")
        assert "404 Not Found" in browser.page_source

        # login: wrong, then rate limited, then right
        def login(password: str) -> None:
            go("/admin")
            browser.find_element(By.ID, "password").send_keys(password)
            submit(browser, "login")
        await loop.run_in_executor(None, login, "wrong password")
        shot(browser, "login-wrong")
        assert "Incorrect password" in text_of(browser, "login-error")
        # repeated wrong passwords from this browser, faster than 3 per second: refused
        statuses = await loop.run_in_executor(None, browser.execute_script, """
            const tries = [1, 2, 3, 4].map(() => fetch('/admin', {method: 'POST',
                body: new URLSearchParams({password: 'guess'})}).then(r => r.status));
            return Promise.all(tries);""")
        assert 429 in statuses and 200 not in statuses, statuses
        await loop.run_in_executor(None, login, "one more guess")
        shot(browser, "login-after-guesses")
        await asyncio.sleep(0.5)
        await loop.run_in_executor(None, login, "Sup3rSecretAdm1n")
        shot(browser, "admin-status")
        assert "Everything is healthy" in text_of(browser, "overall")
        check_no_word_breaks(browser, "admin status")
        # the backups in words and units, not the code's names and Python values
        backups = text_of(browser, "backup-table")
        assert "Last sync" in backups and " s ago" in backups and "litestream running" in backups, backups
        assert not any(w in backups for w in ("True", "False", "None", "last_sync_age", "local_txid")), backups
        # Log out is a plain button, not filled like the selected tab
        colours = browser.execute_script("""return [getComputedStyle(document.getElementById('logout')).backgroundColor,
            getComputedStyle(document.querySelector('.tabs a.active')).backgroundColor];""")
        assert colours[0] != colours[1], colours
        # /admin/status in the same browser after the form login: the session cookie is honoured there
        await loop.run_in_executor(None, go, "/admin/status")
        shot(browser, "admin-status-json")
        status_json = json.loads(browser.find_element(By.TAG_NAME, "body").text)
        assert status_json["network"] == "simnet" and {v["name"] for v in status_json["voters"]} == {"v1", "v2", "v3"}
        for tab in ("unpaid", "missed", "xpubs", "revenue", "backup", "settings", "listing", "log"):
            await loop.run_in_executor(None, go, f"/admin?tab={tab}")
            shot(browser, f"admin-{tab}")
            check_no_word_breaks(browser, f"admin {tab}")
            if tab == "unpaid":
                assert unpaid.hash in text_of(browser, "unpaid")
            if tab == "log":  # nothing done yet: the empty table says so
                assert text_of(browser, "log-empty").startswith("No entries yet")
        # the listing rules as the running frontend sees them: three healthy voters, all on this one host
        await loop.run_in_executor(None, go, "/admin?tab=listing")
        rows = {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text
                for r in browser.find_elements(By.CSS_SELECTOR, "#listing tr")[1:]}
        assert all(rows[f"voter v{i} healthy"] == "PASS" for i in (1, 2, 3)), rows
        assert rows["fee xpub set"] == "PASS" and rows["voters on distinct hosts"] == "FAIL", rows
        notes = {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[2].text
                 for r in browser.find_elements(By.CSS_SELECTOR, "#listing tr")[1:]}
        for rule in ("voters on distinct hosts", "frontend apart from the voters"):  # expected on simnet: said so
            assert "expected here: every part runs on this one machine" in notes[rule], notes
        assert "expected here" not in notes["fee xpub set"], notes

        # ticket search shows the record and its signed history, never the voting key
        def search() -> None:
            go("/admin?tab=tickets")
            browser.find_element(By.ID, "search-hash").send_keys(t.txid())
            submit(browser, "search")
        await loop.run_in_executor(None, search)
        shot(browser, "admin-ticket")
        check_no_word_breaks(browser, "admin ticket")
        assert text_of(browser, "ticket-feestatus") == "received"
        assert "Initial choices" in browser.page_source and p.signature in browser.page_source
        assert not shows_key(browser.page_source, voting.wif)

        # close with a message: banner on home and in /vspinfo; then reopen. Only the button that applies is enabled.
        def enabled() -> tuple[bool, bool]:
            return browser.find_element(By.ID, "close").is_enabled(), browser.find_element(By.ID, "reopen").is_enabled()

        def close() -> None:
            go("/admin?tab=settings")
            assert enabled() == (True, False)
            box = browser.find_element(By.ID, "closed-message")
            box.clear()
            box.send_keys("Moving to new servers")
            submit(browser, "close")
        await loop.run_in_executor(None, close)
        shot(browser, "admin-settings-closed")
        assert enabled() == (False, True)
        await loop.run_in_executor(None, go, "/")
        shot(browser, "home-closed")
        assert "Moving to new servers" in text_of(browser, "closed-banner")
        async with aiohttp.ClientSession() as http:
            async with http.get(net.url + "/api/v3/vspinfo") as r:
                body = json.loads(await r.read())
        assert body["vspclosed"] is True and body["vspclosedmsg"] == "Moving to new servers"

        def reopen() -> None:
            go("/admin?tab=settings")
            submit(browser, "reopen")
        await loop.run_in_executor(None, reopen)
        assert text_of(browser, "open-state") == "open" and enabled() == (True, False)
        await loop.run_in_executor(None, go, "/admin?tab=log")
        shot(browser, "admin-log-entries")
        check_no_word_breaks(browser, "admin log")
        await loop.run_in_executor(None, go, "/")
        assert "closed-banner" not in browser.page_source

        def logout() -> None:
            go("/admin")
            submit(browser, "logout")
        await loop.run_in_executor(None, logout)
        shot(browser, "logged-out")
        assert browser.find_elements(By.ID, "password")

        # readable on a phone
        browser.set_window_size(390, 844)
        await loop.run_in_executor(None, go, "/")
        shot(browser, "home-phone")
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 400
    finally:
        await net.close()

"""Pages and admin through plain HTTP: status codes, sessions, CSRF, bad forms change nothing."""

from yarl import URL

from conftest import SIMNET_XPUB
from pageflows import admin, post  # noqa: F401 (admin is a fixture)
from web.http import csrf
from web.pages import session


async def get(vsp, path, **kw):
    async with vsp.client.http.get(vsp.url + path, allow_redirects=False, **kw) as r:
        body = await r.read()
        return r.status, body.decode("utf-8", "replace"), r


async def test_public_pages(vsp):
    status, text, r = await get(vsp, "/")
    assert status == 200 and "text/html" in r.headers["Content-Type"]
    assert vsp.ctx.signer.pubkey_b64 in text and 'id="stat-fee">2%' in text and "simnet" in text
    assert "<script" not in text and "googleapis" not in text  # no third-party anything
    status, text, _ = await get(vsp, "/api")
    assert status == 200 and "/api/v3/payfee" in text
    status, text, _ = await get(vsp, "/no/such/page")
    assert status == 404 and "404 Not Found" in text
    status, text, r = await post(vsp, "/", {})
    assert status == 405 and "GET" in r.headers["Allow"]
    status, text, _ = await get(vsp, "/public/style.css")
    assert status == 200 and "font" in text


async def test_login_wrong_then_rate_limited(vsp):
    vsp.ctx.adminpass = "right password"
    status, text, _ = await get(vsp, "/admin")
    assert status == 401 and 'id="password"' in text
    status, text, _ = await post(vsp, "/admin", {"password": "wrong"})
    assert status == 401 and "Incorrect password" in text
    status, text, _ = await post(vsp, "/admin", {"password": "right password"})
    assert status == 429 and "Rate limit" in text  # 3 per second, burst 1


async def test_session_cookie_is_signed():
    secret = b"k" * 32
    c = session.make(secret)
    assert session.is_admin(secret, c)
    assert not session.is_admin(b"x" * 32, c)
    assert not session.is_admin(secret, c[:-2] + "AA")
    assert not session.is_admin(secret, session.make(secret, now=1))  # expired
    assert not session.is_admin(secret, "garbage") and not session.is_admin(secret, None)
    assert not session.is_admin(secret, c, generation=1)  # issued before the last logout


def test_csrf_rules():
    assert csrf.allowed("GET", {"Origin": "https://evil"}, "vsp")
    assert csrf.allowed("POST", {}, "vsp")  # wallets send no Origin
    assert csrf.allowed("POST", {"Sec-Fetch-Site": "same-origin"}, "vsp")
    assert not csrf.allowed("POST", {"Sec-Fetch-Site": "cross-site"}, "vsp")
    assert csrf.allowed("POST", {"Origin": "https://vsp"}, "vsp")
    assert not csrf.allowed("POST", {"Origin": "https://evil.example"}, "vsp")


async def test_cross_site_post_is_refused(admin):
    vsp = admin
    status, text, _ = await post(vsp, "/admin/closed", {"closed": "true"}, headers={"Origin": "https://evil.example"})
    assert status == 400 and text == "CSRF failure"
    assert not vsp.ctx.vspclosed


async def test_admin_tabs_and_actions(admin):
    vsp = admin
    for tab in ("status", "tickets", "unpaid", "missed", "xpubs", "revenue", "backup", "settings", "listing", "log"):
        status, text, _ = await get(vsp, f"/admin?tab={tab}")
        assert status == 200, tab
    # close with a message: home and /vspinfo say so
    status, text, _ = await post(vsp, "/admin/closed", {"closed": "true", "message": "moving to new servers"})
    assert status == 200 and "closed to new tickets" in text
    _, home, _ = await get(vsp, "/")
    assert 'id="closed-banner"' in home and "moving to new servers" in home
    info = (await vsp.client.vspinfo()).json
    assert info["vspclosed"] is True and info["vspclosedmsg"] == "moving to new servers"
    # a bad form value changes nothing
    status, text, _ = await post(vsp, "/admin/closed", {"closed": "maybe"})
    assert status == 400 and "Choose close or reopen" in text and vsp.ctx.vspclosed
    await post(vsp, "/admin/closed", {"closed": "false"})
    assert (await vsp.client.vspinfo()).json["vspclosed"] is False
    # xpub rotation: bad value refused, good one accepted, repeat is harmless
    status, text, _ = await post(vsp, "/admin/xpub", {"xpub": "xpub-nonsense"})
    assert status == 400 and len(await vsp.store.all_xpubs()) == 1
    status, text, _ = await post(vsp, "/admin/xpub", {"xpub": SIMNET_XPUB})
    assert status == 200 and "already the current one" in text
    # searches
    status, text, _ = await post(vsp, "/admin/ticket", {"hash": "zz"})
    assert status == 400
    status, text, _ = await post(vsp, "/admin/ticket", {"hash": "ab" * 32})
    assert status == 200 and "No ticket found" in text
    status, body, r = await get(vsp, "/admin/backup")
    assert status == 200 and r.headers["Content-Disposition"] == 'attachment; filename="vspd.db"'
    assert body.startswith("SQLite format 3")
    _, log, _ = await get(vsp, "/admin?tab=log")
    assert "close" in log and "reopen" in log and "download backup" in log
    stolen = vsp.client.http.cookie_jar.filter_cookies(URL(vsp.url))[session.COOKIE].value
    status, _, r = await post(vsp, "/admin/logout", {})
    assert status == 302
    status, _, _ = await get(vsp, "/admin?tab=status")
    assert status == 401
    # a copy of the old cookie (another browser, or a thief) no longer works either
    status, _, _ = await get(vsp, "/admin?tab=status", headers={"Cookie": f"{session.COOKIE}={stolen}"})
    assert status == 401


async def test_new_admin_password_ends_every_session(admin):
    vsp = admin
    assert (await get(vsp, "/admin?tab=status"))[0] == 200
    vsp.ctx.adminpass = "a new password after a leak"  # what a restart with a new adminpass does
    assert (await get(vsp, "/admin?tab=status"))[0] == 401
    vsp.ctx.adminpass = "correct horse battery"
    assert (await get(vsp, "/admin?tab=status"))[0] == 200  # the key is the password's, nothing else changed


async def test_operator_ticket_without_fee(admin):
    vsp = admin
    t = vsp.new_ticket(confirmations=10)
    status, text, _ = await post(vsp, "/admin/ownticket", {"hash": t.hash, "votingkey": "cBad"})
    assert status == 400 and await vsp.store.get_ticket(t.hash) is None
    from chainbuilders import Key
    from vspd.chain.params import SIMNET
    status, text, _ = await post(vsp, "/admin/ownticket", {"hash": t.hash, "votingkey": Key(SIMNET).wif})
    assert status == 400 and "does not match" in text
    status, text, _ = await post(vsp, "/admin/ownticket", {"hash": t.hash, "votingkey": t.voting.wif})
    assert status == 200, text
    stored = await vsp.store.get_ticket(t.hash)
    assert stored.fee_waived and stored.confirmed and stored.fee_amount == 0
    status, text, _ = await post(vsp, "/admin/ownticket", {"hash": t.hash, "votingkey": t.voting.wif})
    assert status == 200 and "already registered" in text  # idempotent
    assert t.voting.wif not in (await get(vsp, "/admin?tab=settings"))[1]


async def test_fee_above_what_wallets_pay_is_warned_and_unpaid_quotes_are_listed(admin):
    """exccwallet pays no VSP fee above 0.2 EXCC: the operator hears of it before stakers do."""
    vsp = admin
    from vspclient import quote_new_ticket
    _, text, _ = await get(vsp, "/admin?tab=status")
    assert 'id="warning-1"' not in text  # 2 % at the 0.2 EXCC simnet price: about 0.003 EXCC
    _, home, _ = await get(vsp, "/")
    assert 'id="fee-warning"' not in home
    vsp.chain.sbits_next = 100.0  # the next window's price: 2 % of a 33 EXCC vote at 100 EXCC is ~0.5 EXCC
    _, text, _ = await get(vsp, "/admin?tab=status")
    assert 'id="warning-1"' in text and "next price 100 EXCC" in text and "lower vspfee" in text
    await vsp.ctx.stats.refresh()  # as each block does
    _, home, _ = await get(vsp, "/")
    assert 'id="fee-warning"' in home and "next price 100 EXCC" in home  # the home page's view of the voters too
    auth = {"Authorization": "Basic " + __import__("base64").b64encode(b"admin:correct horse battery").decode()}
    async with vsp.client.http.get(vsp.url + "/admin/status", headers=auth) as r:
        body = await r.json()
    assert any("0.2 EXCC" in w for w in body["warnings"]), body

    nt = await quote_new_ticket(vsp.client, vsp.chain)
    assert nt.reply.status == 200
    _, text, _ = await get(vsp, "/admin?tab=unpaid")
    assert nt.hash in text and f"{nt.reply.json['feeamount'] / 1e8:.8f} EXCC" in text


def test_the_voting_key_is_hidden_inside_the_echoed_request_too():
    import base64
    from web.pages.admin import redact_response
    wif = "PtWUAYnxzZxtWCVMVtPPaRqmEJBD7smLpm3WtyLVdMUJHrdBRzA4"
    req = '{"timestamp":1,"tickethash":"ab","feetx":"00","votingkey":"%s"}' % wif
    shown = redact_response('{"timestamp":2,"request":"%s"}' % base64.b64encode(req.encode()).decode())
    echoed = base64.b64decode(shown.split('"request":"')[1].split('"')[0]).decode()
    assert wif not in echoed and '"votingkey":"[voting key hidden]"' in echoed and '"feetx":"00"' in echoed
    assert redact_response('{"request":"not base64!"}') == '{"request":"[hidden]"}'


async def test_admin_status_takes_the_session_and_challenges_without_spending_the_budget(admin):
    vsp = admin  # logged in: its session cookie is in the client's jar
    status, text, _ = await get(vsp, "/admin/status")
    assert status in (200, 503) and '"voters"' in text
    vsp.client.http.cookie_jar.clear()
    for _ in range(3):  # no credentials: the challenge, as often as asked
        status, _, r = await get(vsp, "/admin/status")
        assert status == 401 and r.headers["WWW-Authenticate"].startswith("Basic ")
    auth = {"Authorization": "Basic " + __import__("base64").b64encode(b"admin:correct horse battery").decode()}
    status, _, _ = await get(vsp, "/admin/status", headers=auth)
    assert status in (200, 503)  # the budget is still there for the password

"""The hot paths answer exactly what the application would, and follow every change of their inputs."""

import re
from types import SimpleNamespace

from web.pages import HomePages
from web.wire import go_json


async def fetch(vsp, path: str, headers: dict | None = None):
    async with vsp.client.http.get(vsp.url + path, headers=headers or {}) as r:
        return r.status, await r.read(), r.headers.get("Content-Type"), r.headers.get("VSP-Server-Signature")


async def rendered(vsp, headers: dict | None = None) -> bytes:
    """The home page rendered afresh by the application (a query string passes the hot paths by)."""
    vsp.ctx.home_pages = HomePages()
    return (await fetch(vsp, "/?via=app", headers))[1]


async def test_hot_answers_are_the_applications(vsp):
    for path in ("/api/v3/vspinfo", "/"):
        hot = await fetch(vsp, path)
        assert hot == await fetch(vsp, path + "?via=app")
        assert hot[0] == 200
    assert (await fetch(vsp, "/"))[1] == await rendered(vsp)
    assert (await fetch(vsp, "/api/v3/vspinfo"))[3]  # signed


async def test_hot_answers_are_counted(vsp):
    for _ in range(3):
        await fetch(vsp, "/api/v3/vspinfo")
    status, body, _, _ = await fetch(vsp, "/metrics")
    m = re.search(rb'vspd_http_requests_total\{endpoint="/api/v3/vspinfo",status="200"\} (\d+)', body)
    assert status == 200 and m and int(float(m[1])) >= 3


async def test_home_page_follows_its_inputs(vsp):
    first = (await fetch(vsp, "/"))[1]
    assert (await fetch(vsp, "/"))[1] == first  # kept
    vsp.ctx.vspclosed, vsp.ctx.vspclosedmsg = True, "Back soon."
    closed = (await fetch(vsp, "/"))[1]
    assert b"Back soon." in closed and closed == await rendered(vsp)
    vsp.ctx.vspclosed, vsp.ctx.vspclosedmsg = False, ""
    voter = SimpleNamespace(name="v1", healthy=True, problems=[])
    vsp.ctx.voters = [voter]
    assert b"online, synced, unlocked and voting" in (await fetch(vsp, "/"))[1]
    voter.healthy, voter.problems = False, ["wallet locked"]
    page = (await fetch(vsp, "/"))[1]
    assert b"wallet locked" in page and page == await rendered(vsp)
    vsp.ctx.voters = None
    vsp.chain.height += 5
    await vsp.ctx.stats.refresh()
    later = (await fetch(vsp, "/"))[1]
    assert b'id="stat-height">205<' in later and later == await rendered(vsp)
    # The site URL comes from the Host header: one page per URL, each right
    other = (await fetch(vsp, "/", {"Host": "vsp.example.org"}))[1]
    assert b"http://vsp.example.org" in other and b"http://vsp.example.org" not in later
    assert other == await rendered(vsp, {"Host": "vsp.example.org"})


async def test_home_page_before_the_first_stats(vsp):
    vsp.ctx.stats.stats = None  # as right after start: the application refreshes, then renders
    status, body, _, _ = await fetch(vsp, "/")
    assert status == 200 and vsp.ctx.stats.stats is not None and b'id="stat-height">200<' in body


def test_home_pages_are_bounded():
    pages = HomePages(max_urls=2)
    for i in range(5):
        pages.put(f"http://h{i}", ("k",), b"page")
    assert pages.get("http://h4", ("k",)) == b"page" and pages.get("http://h0", ("k",)) is None
    assert pages.get("http://h4", ("other",)) is None  # out of date


async def test_unknown_ticket_status_is_the_applications(vsp):
    t = vsp.new_ticket()
    first = await vsp.client.ticketstatus(t.commitment.secret, t.hash)  # the application asks exccd
    hot = await vsp.client.ticketstatus(t.commitment.secret, t.hash)  # the cache answers ahead of it
    assert (hot.status, hot.body, hot.signature) == (first.status, first.body, first.signature) and hot.code == 6
    assert vsp.ctx.metrics.hot_requests["/api/v3/ticketstatus", 400] == 1
    # the CSRF rule holds ahead of the application too
    async with vsp.client.http.post(vsp.url + "/api/v3/ticketstatus", data=go_json({"tickethash": t.hash}),
                                    headers={"Origin": "https://evil.example"}) as r:
        assert (r.status, await r.read()) == (400, b"CSRF failure")

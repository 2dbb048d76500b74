"""Pages and admin steps shared by tests/web/pages/test_pages.py and tests/web/http/test_hostile_sizes.py:
a form POSTed through the vsp fixture's client, and the admin fixture (that vsp with an admin logged in)."""

import pytest

from web.pages import session


async def post(vsp, path, data, **kw):
    async with vsp.client.http.post(vsp.url + path, data=data, allow_redirects=False, **kw) as r:
        return r.status, await r.text(), r


@pytest.fixture
async def admin(vsp):
    vsp.ctx.adminpass = "correct horse battery"
    vsp.ctx.cookie_secret = await vsp.store.get_key("cookiesecret")
    status, _, r = await post(vsp, "/admin", {"password": "correct horse battery"})
    assert status == 302 and r.headers["Location"] == "/admin"
    cookie = r.cookies[session.COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    return vsp

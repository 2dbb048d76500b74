"""The staker's ticket page over plain HTTP, on the fake exccd: every state, the errors, privacy, the option."""

import re
from types import SimpleNamespace

import pytest

from ticketstates import walk


async def get(vsp, path):
    async with vsp.client.http.get(vsp.url + path, allow_redirects=False) as r:
        return r.status, await r.text(), r


def state_of(text: str) -> str:
    m = re.search(r'id="ticket-state">([^<]*)<', text)
    return m[1] if m else ""


async def test_ticket_page_through_every_state(vsp):
    seen = []
    async for step in walk(vsp):
        status, text, r = await get(vsp, f"/ticket/{step.ticket}")
        assert status == 200, (step.name, text)
        assert state_of(text) == step.state, (step.name, state_of(text))
        for words in step.words:
            assert words in text, (step.name, words)
        if step.spender:
            assert f'id="ticket-spend-tx">{step.spender}<' in text, step.name
        assert r.headers["Cache-Control"] == "no-store"
        t = await vsp.store.get_ticket(step.ticket)
        # nothing beyond "this ticket uses this VSP" and what the chain shows
        for private in (t.commitment_address, t.fee_address, t.voting_wif or "no key yet"):
            assert private not in text, step.name
        assert "<script" not in text
        seen.append(step.name)
    assert len(seen) == 9


async def test_search_box_unknown_malformed_and_off(vsp):
    vsp.ctx.ticketpage = True
    status, text, _ = await get(vsp, "/")
    assert status == 200 and 'action="/ticket"' in text and 'name="hash"' in text
    unknown = "ab" * 32
    status, _, r = await get(vsp, f"/ticket?hash=+{unknown.upper()}+")
    assert status == 303 and r.headers["Location"] == f"/ticket/{unknown}"
    status, text, _ = await get(vsp, f"/ticket/{unknown}")
    assert status == 404 and f"This VSP does not know ticket {unknown}" in text
    status, _, r = await get(vsp, f"/ticket/{unknown.upper()}")
    assert status == 301 and r.headers["Location"] == f"/ticket/{unknown}"
    for bad in ("/ticket/xyz", f"/ticket/{'g' * 64}", f"/ticket/{'a' * 65}", "/ticket?hash=", "/ticket?hash=12"):
        status, text, _ = await get(vsp, bad)
        assert status == 400 and "is not a ticket hash" in text, bad
    vsp.ctx.ticketpage = False
    status, text, _ = await get(vsp, "/")
    assert 'action="/ticket"' not in text
    for path in (f"/ticket/{unknown}", f"/ticket?hash={unknown}"):
        status, text, _ = await get(vsp, path)
        assert status == 404 and "does not offer ticket lookups" in text


async def test_lookups_are_rate_limited(vsp):
    """2 a second per client, 10 at once: a burst of 20 is cut short, and the refusal says so."""
    vsp.ctx.ticketpage = True
    statuses = [(await get(vsp, f"/ticket/{'cd' * 32}"))[0] for _ in range(20)]
    assert statuses[:10] == [404] * 10 and statuses.count(429) >= 5, statuses
    status, text, r = await get(vsp, f"/ticket/{'cd' * 32}")
    assert status == 429 and "Too many ticket lookups" in text and r.headers["Retry-After"] == "5"


async def test_voting_wallets_are_counted_never_named(vsp):
    """A fee-confirmed ticket: how many voting wallets hold it (answering, and not known to lack it)."""
    class Pool(list):
        total = 3

    steps = walk(vsp)
    async for step in steps:
        if step.name == "ticket-live":
            break
    names = ("ams-voter.example.org", "fra-voter", "nyc-voter")
    vsp.ctx.voters = Pool([SimpleNamespace(name=names[0], health=object(), missing=set()),
                           SimpleNamespace(name=names[1], health=object(), missing={step.ticket}),
                           SimpleNamespace(name=names[2], health=None, missing=set())])
    status, text, _ = await get(vsp, f"/ticket/{step.ticket}")
    assert status == 200 and 'id="ticket-voters">Held by 1 of this VSP&#39;s 3 voting wallets.<' in text
    assert not any(name in text for name in names)
    await steps.aclose()

"""The brief memory of unknown tickets: the same answers as asking, without asking each time."""

from chainbuilders import make_ticket
from vspd.chain import tx as txmod
from web.api.unknown_tickets import UnknownTickets


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_and_follow_the_store():
    clock = Clock()
    u = UnknownTickets(ttl=1.0, max_entries=3, clock=clock)
    u.add("a", 0)
    assert u.holds("a", 0)
    assert not u.holds("a", 1)  # the store stored a ticket since: ask again
    assert not u.holds("a", 0)  # and the stale entry is gone
    u.add("b", 0)
    clock.now += 1.5
    assert not u.holds("b", 0)  # too old: the ticket may have reached exccd since
    for h in "cdef":
        u.add(h, 0)
    assert len(u) == 3 and not u.holds("c", 0) and u.holds("f", 0)  # bounded: the oldest goes
    u.forget("f")
    assert not u.holds("f", 0)
    u.clear()
    assert len(u) == 0


async def test_unknown_ticket_is_asked_once_then_answered_alike(vsp):
    t = vsp.new_ticket()  # known to neither the database nor exccd
    first = await vsp.client.ticketstatus(t.commitment.secret, t.hash)
    assert (first.status, first.code) == (400, 6)
    asked = vsp.node.calls.count("getrawtransaction")
    again = await vsp.client.ticketstatus(t.commitment.secret, t.hash)
    assert (again.status, again.body, again.signature) == (first.status, first.body, first.signature)
    assert vsp.node.calls.count("getrawtransaction") == asked  # from the cache: no exccd round trip
    # payfee and setvotechoices check the same way, and answer the same
    r = await vsp.client.payfee(t.commitment.secret, t.hash, "00", t.voting.wif)
    assert (r.status, r.code) == (400, 6)
    assert vsp.node.calls.count("getrawtransaction") == asked


async def test_unknown_ticket_forgotten_when_it_becomes_known(vsp):
    t = vsp.new_ticket()
    assert (await vsp.client.ticketstatus(t.commitment.secret, t.hash)).code == 6
    # feeaddress broadcasts the ticket: from then on the VSP knows it, cache or not
    r = await vsp.client.feeaddress(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex)
    assert r.status == 200, r.json
    r = await vsp.client.ticketstatus(t.commitment.secret, t.hash)
    assert r.status == 200 and r.json["feetxstatus"] == "none"


async def test_cached_entry_does_not_outlive_an_insert_or_its_ttl(vsp):
    t = vsp.new_ticket()
    assert (await vsp.client.ticketstatus(t.commitment.secret, t.hash)).code == 6
    assert vsp.ctx.unknown_tickets.holds(t.hash, vsp.store.ticket_inserts)
    # another ticket stored by this VSP: "not in the database" must be checked again
    other = vsp.new_ticket()
    assert (await vsp.client.feeaddress(other.commitment.secret, other.hash, other.ticket_hex,
                                        other.parent_hex)).status == 200
    assert not vsp.ctx.unknown_tickets.holds(t.hash, vsp.store.ticket_inserts)
    # the wallet broadcast the ticket itself: once the entry has expired, the VSP sees it
    assert (await vsp.client.ticketstatus(t.commitment.secret, t.hash)).code == 6
    vsp.chain.add(txmod.from_hex(t.ticket_hex))
    vsp.ctx.unknown_tickets.clear()  # as the TTL or the next block does
    r = await vsp.client.ticketstatus(t.commitment.secret, t.hash)
    assert (r.status, r.code) == (400, 6)  # known to exccd now, still not registered here: code 6 ...
    stranger = make_ticket(t.voting, t.voting, txmod.from_hex(t.parent_hex))
    vsp.chain.add(stranger)
    r = await vsp.client.ticketstatus(t.commitment.secret, stranger.txid())
    assert (r.status, r.code) == (400, 10)  # ... and a known ticket is checked in full: wrong signer

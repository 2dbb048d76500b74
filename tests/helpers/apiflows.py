"""API v3 steps that many tests take (tests/web/api/test_api.py, tests/web/http/test_fastlane.py,
test_hostile_sizes.py): a ticket quoted a fee address, and its fee paid, through the vsp fixture's client."""

from chainbuilders import make_fee_tx
from vspd.chain import address
from vspd.chain.params import SIMNET


def fee_addr(reply):
    return address.decode(reply.json["feeaddress"], SIMNET)


async def quote(vsp, t):
    r = await vsp.client.feeaddress(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex)
    assert r.status == 200, r.json
    return r


async def paid(vsp, t, confirmations=None):
    r = await quote(vsp, t)
    fee = make_fee_tx(fee_addr(r), r.json["feeamount"])
    p = await vsp.client.payfee(t.commitment.secret, t.hash, fee.serialize().hex(), t.voting.wif)
    assert p.status == 200, p.json
    return fee

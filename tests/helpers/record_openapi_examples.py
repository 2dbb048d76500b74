"""Records the examples of the OpenAPI document (web/api/openapi_examples.py) from a real frontend process.

The frontend runs on the protocol fakes (tests/helpers/procs.py), a client signs
its requests as exccwallet does, and each request and answer is written
down as it went over the wire. Run it again when an answer's shape
changes: `.venv/bin/python tests/helpers/record_openapi_examples.py`.
"""

import asyncio
import base64
import json
import pprint
import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]  # helpers/, and tests/ for conftest, fakes

import aiohttp  # noqa: E402

from chainbuilders import Key, make_fee_tx, make_parent, make_ticket  # noqa: E402
from procs import Network  # noqa: E402
from vspclient import VSPClient, quote_new_ticket  # noqa: E402
from vspd.chain import address  # noqa: E402
from vspd.chain.message import sign_message  # noqa: E402
from vspd.chain.params import SIMNET  # noqa: E402

OUT = Path(__file__).parents[2] / "web" / "api" / "openapi_examples.py"


class Recorder(VSPClient):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.exchanges: list[tuple[str, bytes, str, object]] = []

    async def post(self, path, body, signing_key, **kw):
        signature = base64.b64encode(sign_message(signing_key, body)).decode()
        reply = await super().post(path, body, None, sig_override=signature, **kw)
        self.exchanges.append((path, body, signature, reply))
        return reply


async def record() -> dict:
    with tempfile.TemporaryDirectory(prefix="openapi-examples-") as home:
        net = await Network.create(Path(home), nvoters=1)
        try:
            await net.start_frontend(wait_healthy=1)
            async with aiohttp.ClientSession() as http:
                c = Recorder(http, net.url)
                info = await c.vspinfo()
                nt = await quote_new_ticket(c, net.chain)
                fee = make_fee_tx(address.decode(nt.reply.json["feeaddress"], SIMNET), nt.reply.json["feeamount"])
                await c.payfee(nt.commitment.secret, nt.hash, fee.serialize().hex(), nt.voting.wif)
                await c.ticketstatus(nt.commitment.secret, nt.hash)
                await asyncio.sleep(1.1)  # setvotechoices wants a timestamp above payfee's
                await c.setvotechoices(nt.commitment.secret, nt.hash, {})
                await set_alt_sign_address(c, net)
                await c.ticketstatus(Key(SIMNET).secret, "00" * 32)  # unknown ticket: code 6
                await c.ticketstatus(Key(SIMNET).secret, nt.hash)  # someone else's signature: code 10
        finally:
            await net.close()
    ex = {"VspInfo": ("An answer of a frontend on simnet.", json.loads(info.body))}
    names = {"/api/v3/feeaddress": "FeeAddress", "/api/v3/payfee": "PayFee", "/api/v3/ticketstatus": "TicketStatus",
             "/api/v3/setvotechoices": "SetVoteChoices", "/api/v3/setaltsignaddr": "SetAltSignAddr"}
    signatures = {}
    for path, body, signature, reply in c.exchanges:
        name = names[path]
        if reply.status == 200 and name not in ex:
            ex[name + "Req"] = ("A request as exccwallet sends it (signed).", json.loads(body))
            signatures[name + "Req"] = signature
            ex[name] = ("The answer to that request.", reply.json)
    errors = [r for _, _, _, r in c.exchanges if r.status != 200]
    ex["UnknownTicket"] = ("A ticket neither the VSP nor its node knows.", errors[0].json)
    ex["BadSignature"] = ("A request not signed by the ticket's commitment or alternate address.", errors[1].json)
    return ex, signatures


async def set_alt_sign_address(c: Recorder, net: Network):
    """setaltsignaddr of a fresh ticket, signed by its commitment address."""
    voting, commit = Key(SIMNET), Key(SIMNET)
    parent = make_parent()
    net.chain.add(parent, block=net.chain.height - 20)
    t = make_ticket(voting, commit, parent)
    return await c.setaltsignaddr(commit.secret, t.txid(), t.serialize().hex(), parent.serialize().hex(),
                                  str(Key(SIMNET).address))


def main() -> None:
    ex, signatures = asyncio.run(record())
    OUT.write_text('"""Examples of web/api/openapi.py: real requests and answers of a frontend on the fakes, recorded by\n'
                   'tests/helpers/record_openapi_examples.py (run it again to refresh them)."""\n\n'
                   f"EXAMPLES = {pprint.pformat(ex, width=120, sort_dicts=False)}\n\n"
                   "# The VSP-Client-Signature header of each request above.\n"
                   f"SIGNATURES = {pprint.pformat(signatures, width=120, sort_dicts=False)}\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

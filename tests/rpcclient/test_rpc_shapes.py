"""The protocol fakes answer every call the VSP makes in the shape the real exccd and exccwallet do.

tests/data/rpc_shapes.json holds the real answers, per situation, written
by `python -m vspd.simnet.shapes` from exccd 2.7.6 and exccwallet 2.7.6 on
simnet (tests/e2e/test_rpc_shapes_real.py records them again from the live
network and compares). Here the same calls, in the same situations, made
with the recorder's own code over the VSP's websocket client, go to the
fakes; each situation's answer must have the recorded shape (tests/helpers/rpcshapes.py).
"""

import copy
import re
from pathlib import Path

import pytest
import pytest_asyncio

from chainbuilders import Key, make_parent, make_ticket
from fakes.exccd import FakeChain, FakeExccd
from fakes.exccwallet import FakeWallet
from fakes.jsonrpc import FakeJSONRPCServer
from rpcshapes import answer_shape, differences, load, shape
from vspd.chain import tx as txmod
from vspd.chain.params import COIN, SIMNET
from vspd.simnet.nodes import wait_until
from vspd.simnet.shapes import REDACTED, SITUATIONS, Endpoint, Recorder, getblock_kept, static_calls, ticketinfo_entry

ROOT = Path(__file__).resolve().parents[2]
RECORDED = load()["situations"]


def endpoint(server: FakeJSONRPCServer) -> Endpoint:
    return Endpoint(server.name, "127.0.0.1", server.port, server.user, server.password, server.cert_pem)


def spending(parent: txmod.Tx, index: int) -> txmod.Tx:
    """A signed-looking payment spending one output of `parent`, as a wallet would sign it."""
    value = parent.outputs[index].value
    sig = b"\x48" + bytes(71) + b"\x21\x02" + bytes(32)
    return txmod.Tx(inputs=[txmod.TxIn(bytes.fromhex(parent.txid())[::-1], index, 0, value_in=value,
                                       block_height=140, block_index=2, sig_script=sig)],
                    outputs=[txmod.TxOut(value - 100_000, parent.outputs[index].script)])


async def ticket_calls(r: Recorder, chain: FakeChain, node: FakeExccd) -> None:
    """The recorder's ticket situations (vspd/simnet/shapes.py), set up on the fake chain instead of mined."""
    e, w = r.exccd, r.wallet
    voting, commit = Key(SIMNET), Key(SIMNET)
    parent = make_parent()
    chain.add(parent, block=chain.height - 5)
    ticket = make_ticket(voting, commit, parent)
    ours = chain.add(ticket)  # in the mempool, as the staker wallet's purchase
    await r.call("exccd getrawtransaction ticket in mempool", e, "getrawtransaction", ours, 1)
    await r.call("exccd existslivetickets not live", e, "existslivetickets", [ours])

    funding = make_parent(value=20 * COIN)
    chain.add(funding, block=chain.height - 3)
    signed = spending(funding, 0).serialize().hex()
    txid = await r.call("exccd sendrawtransaction", e, "sendrawtransaction", signed, False)
    await r.call("exccd sendrawtransaction duplicate in mempool", e, "sendrawtransaction", signed, False)
    chain.known_inputs_only = True
    await r.call("exccd sendrawtransaction unknown inputs", e, "sendrawtransaction",
                 spending(make_parent(), 0).serialize().hex(), False)
    chain.known_inputs_only = False

    height = chain.height + 1  # the block of the ticket and the payment, with two votes
    for other in ("11" * 32, "12" * 32):
        chain.spend(other, vote=True, height=height)
    before = len(r.notifications)
    await node.mine()
    await wait_until(lambda: _more(r.notifications, before), 5, "a blockconnected notification")
    r.keep_notification("exccd blockconnected", "blockconnected", r.notifications[-1])
    mined = await r.call("exccd getrawtransaction ticket mined", e, "getrawtransaction", ours, 1)
    await r.call("exccd getrawtransaction tx mined", e, "getrawtransaction", txid, 1)
    await r.call("exccd sendrawtransaction duplicate mined", e, "sendrawtransaction", signed, False)

    shown = (REDACTED, "imported", False, 0)
    await r.call("exccwallet gettransaction none", w, "gettransaction", ours)
    await r.call("exccwallet importprivkey", w, "importprivkey", voting.wif, "imported", False, 0, shown=shown)
    await r.call("exccwallet importprivkey again", w, "importprivkey", voting.wif, "imported", False, 0, shown=shown)
    await r.call("exccwallet addtransaction", w, "addtransaction", mined["blockhash"], mined["hex"])
    await r.call("exccwallet addtransaction again", w, "addtransaction", mined["blockhash"], mined["hex"])
    await r.call("exccwallet gettransaction ticket", w, "gettransaction", ours)
    await r.call("exccwallet setvotechoice", w, "setvotechoice", "someagenda", "yes", ours)
    await ticketinfo_entry(r, "exccwallet ticketinfo immature", w, height, ticket=ours)
    await r.call("exccwallet ticketinfo none", w, "ticketinfo", height + 100_000)

    await node.mine(SIMNET.ticket_maturity)
    chain.live.add(ours)
    await r.call("exccd existslivetickets live", e, "existslivetickets", [ours])
    await node.mine()  # the wallet calls it live a block later
    await ticketinfo_entry(r, "exccwallet ticketinfo live", r.keeper, height - 40, status="unspent")

    chain.spend(ours, vote=True)
    chain.live.discard(ours)
    await node.mine()
    await ticketinfo_entry(r, "exccwallet ticketinfo voted", w, height, ticket=ours)

    revoked_in = chain.height + 1
    for spent, vote in (("21" * 32, True), ("22" * 32, True), ("23" * 32, False)):
        chain.spend(spent, vote=vote, height=revoked_in)
    await node.mine(2)
    await getblock_kept(r, "exccd getblock revocation", chain.block_hash(revoked_in), ("vote", "revocation"))
    await getblock_kept(r, "exccd getblock votes and tickets", mined["blockhash"], ("regular", "vote", "ticket"))


async def _more(items: list, than: int) -> bool:
    return len(items) > than


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake_answers() -> dict:
    """Every situation's answer from the fakes: a voter's exccd and wallet, the frontend's exccd."""
    chain = FakeChain(SIMNET, height=160)
    node, wallet = FakeExccd(chain), FakeWallet(chain)
    await node.start()
    await wallet.start()
    try:
        async with Recorder(endpoint(node), endpoint(node), endpoint(wallet), endpoint(wallet)) as r:
            await static_calls(r)
            await ticket_calls(r, chain, node)
        return r.result()["situations"]
    finally:
        await wallet.stop()
        await node.stop()


def test_the_file_holds_every_situation_and_no_secret():
    assert list(RECORDED) == list(SITUATIONS)
    for name in ("exccwallet importprivkey", "exccwallet importprivkey again"):
        assert RECORDED[name]["params"][0] == REDACTED
    text = (ROOT / "tests" / "data" / "rpc_shapes.json").read_text()
    assert not re.search(r'"P[a-zA-Z1-9]{50}"', text), "a simnet WIF (P...) in the file"


@pytest.mark.parametrize("situation", list(SITUATIONS))
def test_the_fake_answers_in_the_real_shape(fake_answers, situation):
    real, fake = answer_shape(RECORDED[situation]), answer_shape(fake_answers[situation])
    assert real == fake, f"{situation}: the fake's answer differs from the real one:\n" + \
        "\n".join(differences(real, fake))


def test_every_call_the_code_makes_is_recorded():
    """Every method name the VSP's code sends to exccd or exccwallet (rpc.call("...")) has a recorded answer."""
    called = set()
    for folder in ("rpcclient", "vspd", "web"):
        for path in (ROOT / folder).rglob("*.py"):
            if "simnet" not in path.parts:  # the harness's own calls run the simnet; the VSP never makes them
                called |= set(re.findall(r"""\.call\(\s*["'](\w+)["']""", path.read_text()))
    recorded = {entry["method"] for entry in RECORDED.values()}
    assert called and not called - recorded, f"calls with no recorded answer: {sorted(called - recorded)}"


def _paths(value, path=()):
    """Every place in a JSON value where a key can be lost or a value changed."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield path + (k,)
            yield from _paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, path + (i,))


def _mutants(entry: dict):
    """The entry with one key lost, or one value of another JSON type, at every place in turn."""
    body = "error" if "error" in entry else "params" if entry.get("notification") else "result"
    for path in _paths(entry[body]):
        for change in ("lose", "retype"):
            m = copy.deepcopy(entry)
            parent = m[body]
            for step in path[:-1]:
                parent = parent[step]
            if change == "lose" and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                old = parent[path[-1]]
                parent[path[-1]] = 0 if isinstance(old, str) else "0" if not isinstance(old, (dict, list)) else None
            yield f"{change} {'/'.join(map(str, path))}", m
    if body == "result" and not isinstance(entry["result"], (dict, list)):
        yield "retype the result", {**entry, "result": [entry["result"]]}


@pytest.mark.parametrize("situation", list(SITUATIONS))
def test_a_lost_or_changed_key_changes_the_shape(situation):
    """The comparison above cannot pass a fake that loses a key or changes a type, anywhere in the answer."""
    real = answer_shape(RECORDED[situation])
    for what, mutant in _mutants(RECORDED[situation]):
        assert answer_shape(mutant) != real, f"{situation}: {what} went unnoticed"


def test_shape_rules():
    assert shape({"a": 1, "b": 1.5, "c": None, "d": [1, "x", 2]}) == \
        {"a": "number", "b": "number", "c": "null", "d": ["number", "string"]}
    assert shape({"status": "unspent"}) != shape({"status": "live"})
    assert shape([{"a": 1}, {"a": 2, "b": 3}, {"a": 4}]) == [{"a": "number", "b": "number"}, {"a": "number"}]
    lines = differences(shape({"x": {"a": 1, "b": 2}}), shape({"x": {"a": "1", "c": 2}}))
    assert lines == [".x.b: missing", ".x.c: not in the real answer", '.x.a: real "number", here "string"']

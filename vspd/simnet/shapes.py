"""Every exccd and exccwallet call the VSP makes, answered by the real peers of a running simnet.

The answers, per situation that gives a different shape, are written to
tests/data/rpc_shapes.json. The fast tests hold the protocol fakes to the
same shapes (tests/rpcclient/test_rpc_shapes.py), and the end-to-end suite records
again from its live network and compares (tests/e2e/test_rpc_shapes_real.py),
so neither the fakes nor that file can drift from the real peers.

The calls go over the VSP's own transport (rpcclient's websocket client).
The miner's exccd answers the frontend's calls, voter v1's exccd and voting
wallet the voter's. Two tickets are made on the way: one the staker wallet
buys through the VSP (mempool, immature, voted; v1 imports it before the
VSP does, as the voter would), and one the keeper buys for an address no
wallet holds, so that it is missed and revoked. Where an answer lists more
than its situation needs (a block's transactions, a wallet's tickets), one
of each kind is kept. `python -m vspd.simnet.shapes --out FILE` starts a
simnet of its own for it (about three minutes).
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpcclient.errors import RPCError
from rpcclient.wsrpc import WSRPCClient
from vspd.chain.address import P2PKH, Address
from vspd.chain.params import SIMNET
from vspd.simnet.network import SimnetVSP
from vspd.simnet.nodes import HOST, Daemon, wait_until
from vspd.simnet.peers import find_peers

# Every situation the file holds, and what it is. Tests check the file has exactly these.
SITUATIONS = {
    "exccd version": "version",
    "exccd getcurrentnet": "getcurrentnet",
    "exccd getinfo": "getinfo (the frontend checks txindex)",
    "exccd notifyblocks": "notifyblocks",
    "exccd getblockcount": "getblockcount",
    "exccd getbestblockhash": "getbestblockhash",
    "exccd getblockheader": "getblockheader of the best block, verbose",
    "exccd getblockhash": "getblockhash of a height",
    "exccd getblock votes and tickets": "getblock verbose with rawtx and rawstx of a block below the tip, kept: "
                                        "coinbase, a regular transaction, the first vote, a vote, a ticket",
    "exccd getblock revocation": "getblock verbose with rawtx and rawstx of a block below the tip that revokes a "
                                 "missed ticket, kept: coinbase, the first vote, a vote, the revocation",
    "exccd getrawtransaction ticket in mempool": "getrawtransaction verbose of a ticket not yet mined",
    "exccd getrawtransaction ticket mined": "getrawtransaction verbose of a mined ticket",
    "exccd getrawtransaction tx mined": "getrawtransaction verbose of a mined regular transaction",
    "exccd getrawtransaction unknown": "getrawtransaction of a transaction exccd does not know",
    "exccd sendrawtransaction": "sendrawtransaction of a new transaction",
    "exccd sendrawtransaction duplicate in mempool": "sendrawtransaction of a transaction in the mempool",
    "exccd sendrawtransaction duplicate mined": "sendrawtransaction of a transaction already mined",
    "exccd sendrawtransaction unknown inputs": "sendrawtransaction of a transaction spending unknown outputs",
    "exccd existslivetickets live": "existslivetickets of a live ticket",
    "exccd existslivetickets not live": "existslivetickets of an immature ticket",
    "exccd getstakedifficulty": "getstakedifficulty",
    "exccd getblockchaininfo": "getblockchaininfo (the voter's health)",
    "exccd blockconnected": "the blockconnected notification after notifyblocks",
    "exccwallet version": "version (a voting wallet in RPC mode)",
    "exccwallet getcurrentnet": "getcurrentnet",
    "exccwallet walletinfo": "walletinfo of a voting wallet",
    "exccwallet getbestblock": "getbestblock",
    "exccwallet gettransaction none": "gettransaction of a ticket the wallet does not hold (before the add)",
    "exccwallet importprivkey": "importprivkey of a new voting key, as the voter calls it",
    "exccwallet importprivkey again": "importprivkey of a key the wallet has",
    "exccwallet addtransaction": "addtransaction of a mined ticket the wallet does not know",
    "exccwallet addtransaction again": "addtransaction of a ticket the wallet has",
    "exccwallet gettransaction ticket": "gettransaction of a ticket the wallet holds (after the add)",
    "exccwallet setvotechoice": "setvotechoice of a ticket (EXCC has no agendas)",
    "exccwallet ticketinfo immature": "ticketinfo, the entry of an immature ticket",
    "exccwallet ticketinfo live": "ticketinfo, the entry of a live ticket",
    "exccwallet ticketinfo voted": "ticketinfo, the entry of a voted ticket",
    "exccwallet ticketinfo none": "ticketinfo from a height above the wallet's tickets",
}
REDACTED = "<redacted>"
MAX_BLOCKS = 80  # a ticket is voted, or missed, within maturity (16) plus a few draws of a pool near 15


@dataclass(frozen=True)
class Endpoint:
    """Where one peer answers JSON-RPC, and the login."""
    name: str
    host: str
    port: int
    user: str
    password: str
    cert_pem: bytes


def endpoint(peer: Daemon) -> Endpoint:
    return Endpoint(peer.name, HOST, peer.rpc_port, peer.user, peer.password, peer.cert_path.read_bytes())


class Recorder:
    """The answers so far, one per situation, and the websocket clients that get them.

    `exccd` answers the frontend's calls, `voter_exccd` and `wallet` a voter's;
    `keeper` is another voting wallet (see "exccwallet ticketinfo live").
    """

    def __init__(self, exccd: Endpoint, voter_exccd: Endpoint, wallet: Endpoint, keeper: Endpoint):
        self.answers: dict[str, dict] = {}
        self.notifications: list[list] = []
        self.exccd = self._client(exccd, self._notified)
        self.voter_exccd = self._client(voter_exccd)
        self.wallet = self._client(wallet)
        self.keeper = self._client(keeper)
        self.tasks: list[asyncio.Task] = []

    @classmethod
    def of(cls, net: SimnetVSP) -> "Recorder":
        """On a SimnetVSP: the miner (the frontend's exccd), voter v1's exccd and wallet, the keeper."""
        v1 = net.vsp.voters[0]
        return cls(endpoint(net.chain.miner), endpoint(v1.node), endpoint(v1.wallet), endpoint(net.chain.keeper))

    @staticmethod
    def _client(peer: Endpoint, on_notification=None) -> WSRPCClient:
        return WSRPCClient(f"record-{peer.name}", peer.host, peer.port, peer.user, peer.password, peer.cert_pem,
                           on_notification=on_notification, timeout=60.0)

    async def _notified(self, method: str, params: list) -> None:
        if method == "blockconnected":
            self.notifications.append(params)

    async def __aenter__(self) -> "Recorder":
        clients = (self.exccd, self.voter_exccd, self.wallet, self.keeper)
        self.tasks = [asyncio.create_task(c.run(), name=c.name) for c in clients]
        for c in clients:
            if not await c.wait_connected(30):
                raise RuntimeError(f"{c.name}: cannot connect: {c.last_error}")
        return self

    async def __aexit__(self, *exc) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def call(self, situation: str, client: WSRPCClient, method: str, *params: Any,
                   shown: tuple | None = None) -> Any:
        """Call and keep the answer under `situation`; an error answer is kept too, and returns None."""
        assert situation in SITUATIONS, situation
        entry: dict = {"method": method, "params": list(shown if shown is not None else params)}
        try:
            result = await client.call(method, *params)
            entry["result"] = result
        except RPCError as e:
            entry["error"] = {"code": e.code, "message": e.message}
            result = None
        self.answers[situation] = entry
        return result

    def keep_notification(self, situation: str, method: str, params: list) -> None:
        self.answers[situation] = {"method": method, "params": params, "notification": True}

    def result(self) -> dict:
        """Every situation's answer, in SITUATIONS order, and the versions that gave them."""
        missing = set(SITUATIONS) - set(self.answers)
        if missing:
            raise RuntimeError(f"situations not recorded: {sorted(missing)}")
        return {"recorded": {"exccd": _version(self.answers["exccd version"], "exccd"),
                             "exccwallet": _version(self.answers["exccwallet version"], "exccwalletjsonrpcapi"),
                             "at": time.strftime("%Y-%m-%d")},
                "situations": {name: self.answers[name] for name in SITUATIONS}}


async def record(net: SimnetVSP) -> dict:
    """Make every call the VSP makes, in every situation, on a running SimnetVSP; the answers."""
    async with Recorder.of(net) as r:
        await static_calls(r)
        await _tickets_and_transactions(r, net)
    return r.result()


def _version(entry: dict, key: str) -> str:
    return entry["result"][key]["versionstring"]


async def static_calls(r: Recorder) -> None:
    """The calls whose answer depends on no ticket."""
    e, w = r.exccd, r.wallet
    await r.call("exccd version", e, "version")
    await r.call("exccd getcurrentnet", e, "getcurrentnet")
    await r.call("exccd getinfo", e, "getinfo")
    await r.call("exccd notifyblocks", e, "notifyblocks")
    height = await r.call("exccd getblockcount", e, "getblockcount")
    best = await r.call("exccd getbestblockhash", e, "getbestblockhash")
    await r.call("exccd getblockheader", e, "getblockheader", best, True)
    await r.call("exccd getblockhash", e, "getblockhash", height)
    await r.call("exccd getstakedifficulty", e, "getstakedifficulty")
    await r.call("exccd getblockchaininfo", r.voter_exccd, "getblockchaininfo")
    await r.call("exccwallet version", w, "version")
    await r.call("exccwallet getcurrentnet", w, "getcurrentnet")
    await r.call("exccwallet walletinfo", w, "walletinfo")
    await r.call("exccwallet getbestblock", w, "getbestblock")
    await r.call("exccd getrawtransaction unknown", e, "getrawtransaction", "ab" * 32, 1)


async def _tickets_and_transactions(r: Recorder, net: SimnetVSP) -> None:
    chain, e, w = net.chain, r.exccd, r.wallet
    # A ticket through the VSP, and one for an address no wallet holds (missed, then revoked).
    ours = (await net.staker.rpc.call("purchaseticket", "default", 0, 1, "", 1))[0]
    nobody = Address(SIMNET, P2PKH, os.urandom(20)).encode()
    missed = (await chain.keeper.rpc.call("purchaseticket", "default", 0, 1, nobody, 1))[0]
    await r.call("exccd getrawtransaction ticket in mempool", e, "getrawtransaction", ours, 1)
    await r.call("exccd existslivetickets not live", e, "existslivetickets", [ours])

    signed = await chain.keeper.signed_payment({})  # one output: its change
    txid = await r.call("exccd sendrawtransaction", e, "sendrawtransaction", signed, False)
    await r.call("exccd sendrawtransaction duplicate in mempool", e, "sendrawtransaction", signed, False)
    await r.call("exccd sendrawtransaction unknown inputs", e, "sendrawtransaction",
                 await _spending_unknown_outputs(chain.keeper), False)

    before = len(r.notifications)
    await _mine_until(chain, lambda: _mined(e, [ours, missed, txid]), "the tickets and the transaction mined")
    await wait_until(lambda: _more(r.notifications, before), 30, "a blockconnected notification")
    r.keep_notification("exccd blockconnected", "blockconnected", r.notifications[-1])
    mined = await r.call("exccd getrawtransaction ticket mined", e, "getrawtransaction", ours, 1)
    await r.call("exccd getrawtransaction tx mined", e, "getrawtransaction", txid, 1)
    await r.call("exccd sendrawtransaction duplicate mined", e, "sendrawtransaction", signed, False)

    # The voter's calls for the VSP's ticket, on voter v1's wallet (the VSP's own later add finds it known).
    await wait_until(lambda: _wallet_at(w, mined["blockheight"]), 60, "voter v1's wallet to reach the ticket")
    voting_address = mined["vout"][0]["scriptPubKey"]["addresses"][0]
    wif = await net.staker.rpc.call("dumpprivkey", voting_address)
    shown = (REDACTED, "imported", False, 0)
    await r.call("exccwallet gettransaction none", w, "gettransaction", ours)
    await r.call("exccwallet importprivkey", w, "importprivkey", wif, "imported", False, 0, shown=shown)
    await r.call("exccwallet importprivkey again", w, "importprivkey", wif, "imported", False, 0, shown=shown)
    await r.call("exccwallet addtransaction", w, "addtransaction", mined["blockhash"], mined["hex"])
    await r.call("exccwallet addtransaction again", w, "addtransaction", mined["blockhash"], mined["hex"])
    await r.call("exccwallet gettransaction ticket", w, "gettransaction", ours)
    await r.call("exccwallet setvotechoice", w, "setvotechoice", "someagenda", "yes", ours)
    await ticketinfo_entry(r, "exccwallet ticketinfo immature", w, mined["blockheight"], ticket=ours)
    await r.call("exccwallet ticketinfo none", w, "ticketinfo", mined["blockheight"] + 100_000)

    await _mine_until(chain, lambda: _live(e, ours), "the VSP's ticket live")
    await r.call("exccd existslivetickets live", e, "existslivetickets", [ours])
    # The wallet calls a ticket live one block after exccd does, and exccd may call it in that very block:
    # a live entry is taken from the keeper, a voting wallet that always has some.
    await ticketinfo_entry(r, "exccwallet ticketinfo live", r.keeper, mined["blockheight"] - 40, status="unspent")

    await _mine_until(chain, lambda: _voted(w, mined["blockheight"], ours), "the VSP's ticket voted")
    await ticketinfo_entry(r, "exccwallet ticketinfo voted", w, mined["blockheight"], ticket=ours)
    revoked_in = await _revocation_block(chain, e, missed, mined["blockheight"])
    await getblock_kept(r, "exccd getblock revocation", revoked_in, ("vote", "revocation"))
    await getblock_kept(r, "exccd getblock votes and tickets", await _block_with_every_kind(e, mined["blockheight"]),
                 ("regular", "vote", "ticket"))


async def _mine_until(chain, predicate, what: str) -> None:
    await chain.mine_until(predicate, what, MAX_BLOCKS, settle=0.5)


async def _more(items: list, than: int) -> bool:
    return len(items) > than


async def _mined(e: WSRPCClient, txids: list[str]) -> bool:
    for txid in txids:
        try:
            if not (await e.call("getrawtransaction", txid, 1)).get("blockhash"):
                return False
        except RPCError as err:  # "transaction index: index not synced" for a moment after a block
            if "index not synced" not in err.message:
                raise
            return False
    return True


async def _live(e: WSRPCClient, ticket: str) -> bool:
    return bool(bytes.fromhex(await e.call("existslivetickets", [ticket]))[0] & 1)


async def _wallet_at(w: WSRPCClient, height: int) -> bool:
    return (await w.call("getbestblock"))["height"] >= height


async def _entry(w: WSRPCClient, start: int, ticket: str) -> dict | None:
    return next((t for t in await w.call("ticketinfo", start) if t["hash"] == ticket), None)


async def _voted(w: WSRPCClient, start: int, ticket: str) -> bool:
    t = await _entry(w, start, ticket)
    return t is not None and t["status"] == "voted"


async def ticketinfo_entry(r: Recorder, situation: str, wallet: WSRPCClient, start: int, *, ticket: str = "",
                        status: str = "") -> None:
    """ticketinfo from `start`, kept with the first entry of that ticket or status (a wallet has others)."""
    answer = await r.call(situation, wallet, "ticketinfo", start)
    kept = [t for t in answer if (t["hash"] == ticket if ticket else t["status"] == status)][:1]
    if not kept:
        raise RuntimeError(f"{situation}: no ticket {ticket or status} in ticketinfo: {answer}")
    r.answers[situation]["result"] = kept


async def _revocation_block(chain, e: WSRPCClient, ticket: str, since: int) -> str:
    """The hash of the block that revokes `ticket` (exccd revokes a missed ticket itself)."""
    found: list[str] = []
    scanned = since

    async def revoked() -> bool:
        nonlocal scanned
        tip = await e.call("getblockcount")
        while scanned < tip:
            scanned += 1
            block = await e.call("getblock", await e.call("getblockhash", scanned), True, True)
            if any(_kind(tx) == "revocation" and tx["vin"][0].get("txid") == ticket for tx in block["rawstx"]):
                found.append(block["hash"])
        return bool(found)
    await _mine_until(chain, revoked, f"the missed ticket {ticket} revoked")
    if (await e.call("getblockheader", found[0], True))["height"] == await e.call("getblockcount"):
        await chain.mine(1)  # below the tip, as the other block: a nextblockhash
    return found[0]


def _kind(tx: dict) -> str:
    """What a transaction of a block is: coinbase, regular, vote, ticket or revocation."""
    if "coinbase" in tx["vin"][0]:
        return "coinbase"
    if "stakebase" in tx["vin"][0]:
        return "vote"
    script_type = tx["vout"][0]["scriptPubKey"]["type"]
    for prefix, kind in (("stakesubmission", "ticket"), ("stakerevoke", "revocation")):
        if script_type.startswith(prefix):
            return kind
    return "regular"


def _one_per_kind(block: dict, kinds: tuple[str, ...]) -> dict:
    """The block with the first transaction of each tree (index 0: no blockindex), then one of each of `kinds`.

    A block's mix of transactions depends on what the wallets did; keeping
    the same kinds each run keeps the same shapes each run.
    """
    kept = dict(block)
    for tree in ("rawtx", "rawstx"):
        txs = block.get(tree) or []
        kept[tree] = txs[:1]
        for kind in kinds:
            kept[tree] += [tx for tx in txs[1:] if _kind(tx) == kind][:1]
    return kept


async def getblock_kept(r: Recorder, situation: str, block_hash: str, kinds: tuple[str, ...]) -> None:
    await r.call(situation, r.exccd, "getblock", block_hash, True, True)
    r.answers[situation]["result"] = _one_per_kind(r.answers[situation]["result"], kinds)


async def _block_with_every_kind(e: WSRPCClient, since: int) -> str:
    """A block below the tip with the coinbase and a regular transaction, two votes and a ticket, no revocation."""
    tip = await e.call("getblockcount")
    for height in range(since, tip):
        block = await e.call("getblock", await e.call("getblockhash", height), True, True)
        kinds = [_kind(tx) for tx in block["rawtx"] + block["rawstx"]]
        if "regular" in kinds and kinds.count("vote") >= 2 and "ticket" in kinds and "revocation" not in kinds:
            return block["hash"]
    raise RuntimeError(f"no block from {since} to {tip} has a regular transaction, votes and tickets")


async def _spending_unknown_outputs(keeper) -> str:
    """An unsigned transaction spending an output of a transaction that never existed."""
    return await keeper.rpc.call("createrawtransaction", [{"txid": os.urandom(32).hex(), "vout": 0, "tree": 0,
                                                          "amount": 1.0}], {await keeper.new_address(): 0.5})


def write(answers: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(answers, indent=1, sort_keys=False) + "\n")


async def _main(out: Path) -> int:
    binaries = await asyncio.to_thread(find_peers)
    with tempfile.TemporaryDirectory(prefix="vspd-record-") as tmp:
        net = SimnetVSP(binaries, Path(tmp))
        try:
            await net.start()
            answers = await record(net)
        finally:
            await net.stop()
    write(answers, out)
    print(f"wrote {len(answers['situations'])} situations to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vspd.simnet.shapes",
                                description="Record the real exccd and exccwallet answers to every call the VSP "
                                            "makes, from a simnet of its own.")
    p.add_argument("--out", type=Path, required=True, help="the JSON file to write (tests/data/rpc_shapes.json)")
    return asyncio.run(_main(p.parse_args(argv).out))


if __name__ == "__main__":
    sys.exit(main())

"""A protocol-level fake exccwallet (voting wallet) for the voter's fast tests.

It keeps imported keys and tickets in memory, follows a FakeChain's height
(less `lag`), and answers like exccwallet 2.7.6 on EXCC, held to the answers
recorded from the real wallet (tests/data/rpc_shapes.json): a live ticket
is "unspent" (one block after exccd calls it live), empty fields are left
out, and `setvotechoice` fails with "no agendas to set for this network".
"""

import asyncio
from dataclasses import dataclass, field

from vspd.chain import tx as txmod
from vspd.chain import wif as wifmod
from vspd.chain.params import COIN

from .exccd import FakeChain
from .jsonrpc import FakeJSONRPCServer, RPCFail, version_entry


WRITES = ("importprivkey", "addtransaction", "setvotechoice")


@dataclass
class WalletTicket:
    hash: str
    block_height: int
    tx_hex: str = ""
    status: str = ""  # "" follows the chain (immature, unspent, voted, revoked); else set by a test
    choices: dict = field(default_factory=dict)
    spender: str = ""


class FakeWallet(FakeJSONRPCServer):
    name = "fakewallet"

    def __init__(self, chain: FakeChain, user: str = "wuser", password: str = "wpass"):
        super().__init__(user, password)
        self.chain = chain
        self.unlocked = True
        self.voting = True
        self.spv = False
        self.lag = 0
        self.daemon_connected = True
        self.keys: set[str] = set()
        self.tickets: dict[str, WalletTicket] = {}
        self.api_version = (8, 9, 0)
        # exccwallet's bbolt hang (rpcclient/exccwallet.py): a write while a ticketinfo reads hangs the
        # wallet for good when the write grows the file. `ticketinfo_seconds` > 0 makes every such write do so.
        self.ticketinfo_seconds = 0.0
        self._reading = 0
        self.hung = False
        self._stopped = asyncio.Event()  # a hung call ends only with the fake

    async def stop(self) -> None:
        self._stopped.set()
        await super().stop()

    @property
    def height(self) -> int:
        return self.chain.height - self.lag

    async def dispatch(self, ws, method: str, params: list):
        if self.hung:
            await self._stopped.wait()  # answers nothing, ever: the client's timeout ends the call
        if method in WRITES and self._reading:
            self.hung = True
            await self._stopped.wait()
        if method == "ticketinfo" and self.ticketinfo_seconds:
            self._reading += 1
            try:
                await asyncio.sleep(self.ticketinfo_seconds)
            finally:
                self._reading -= 1
            if self.hung:
                await self._stopped.wait()
        if method == "version":  # in RPC mode, exccd's two entries too; there is no "exccwallet" entry
            return {"exccd": version_entry(2, 7, 6, "release.local"), "exccdjsonrpcapi": version_entry(7, 0, 0),
                    "exccwalletjsonrpcapi": version_entry(*self.api_version)}
        if method == "getcurrentnet":
            return self.chain.net.net_magic
        if method == "walletinfo":
            return {"daemonconnected": self.daemon_connected, "spv": self.spv, "unlocked": self.unlocked,
                    "cointype": 1, "txfee": 0.001, "votebits": 1, "votebitsextended": "0a000000", "voteversion": 10,
                    "voting": self.voting, "manualtickets": True}
        if method == "getbestblock":
            return {"hash": self.chain.block_hash(self.height), "height": self.height}
        if method == "importprivkey":
            if not self.unlocked:
                raise RPCFail(-13, "Enter the wallet passphrase with walletpassphrase first")
            wifmod.decode(params[0], self.chain.net)
            self.keys.add(params[0])
            return None
        if method == "addtransaction":
            t = txmod.from_hex(params[1])
            height = int(params[0], 16)
            self.tickets.setdefault(t.txid(), WalletTicket(t.txid(), height, params[1]))
            return None
        if method == "setvotechoice":
            raise RPCFail(-4, "no agendas to set for this network")
        if method == "gettransaction":
            t = self.tickets.get(params[0])
            if t is None:
                raise RPCFail(-5, "no information for transaction")
            return self._transaction(t)
        if method == "ticketinfo":
            start = int(params[0]) if params else 0
            return [self._info(t) for t in self.tickets.values() if t.block_height >= start]
        if method == "rescanwallet":
            return None
        raise RPCFail(-32601, f"Method not found: {method}")

    def _status(self, t: WalletTicket) -> tuple[str, str]:
        """The ticket's status and the vote or revocation that spent it, as of the wallet's height."""
        if t.status:
            return t.status, t.spender
        spent = self.chain.spender_of(t.hash, self.height)
        if spent is not None:
            return ("voted" if spent[1] else "revoked"), spent[0]
        if self.height - t.block_height > self.chain.net.ticket_maturity:  # the wallet's count: one past exccd's
            return "unspent", ""
        return "immature", ""

    def _transaction(self, t: WalletTicket) -> dict:
        """A gettransaction answer for a ticket the voter added (a receive of its voting output)."""
        ticket = txmod.from_hex(t.tx_hex)
        value = ticket.outputs[0].value / COIN
        return {"amount": value, "confirmations": max(0, self.height - t.block_height + 1),
                "blockhash": self.chain.block_hash(t.block_height), "blockindex": 0,
                "blocktime": self.chain.block_time(t.block_height), "txid": t.hash, "walletconflicts": [],
                "time": self.chain.block_time(t.block_height), "timereceived": self.chain.block_time(t.block_height),
                "details": [{"account": "imported", "address": str(txmod.voting_address(ticket, self.chain.net)),
                             "amount": value, "category": "receive", "vout": 0}],
                "hex": t.tx_hex, "type": ""}

    def _info(self, t: WalletTicket) -> dict:
        """A ticketinfo entry: blockhash, vote, revocation and choices only when there is one."""
        ticket = txmod.from_hex(t.tx_hex) if t.tx_hex else None
        status, spender = self._status(t)
        out = {"hash": t.hash, "cost": ticket.outputs[0].value / COIN if ticket else 0.2,
               "votingaddress": str(txmod.voting_address(ticket, self.chain.net)) if ticket else "",
               "status": status}
        if t.block_height >= 0:
            out["blockhash"] = self.chain.block_hash(t.block_height)
        out["blockheight"] = t.block_height
        if spender and status == "voted":
            out["vote"] = spender
        if spender and status == "revoked":
            out["revocation"] = spender
        if t.choices:
            out["choices"] = [{"agendaid": a, "choiceid": c} for a, c in t.choices.items()]
        return out

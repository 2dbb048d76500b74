"""The exccwallet calls a voter makes, with typed results (spec §4.5).

exccwallet's `ticketinfo` opens a read transaction of its bbolt database
for each ticket inside the one it ranges with. When a write in between
grows the database file, bbolt's remap waits for every open reader, and
the nested reader waits behind the remap: the wallet hangs for good
(goroutine dump of a voting wallet in the soak: `ImportPrivateKey` in
`DB.mmap`, `ticketInfo` → `VSPHostForTicket` in `RLock`). So no write of
ours ever runs beside our own `ticketinfo`, and no frequent path asks for
`ticketinfo` at all: whether the wallet holds a ticket is `gettransaction`,
which reads without nesting.
"""

import asyncio
from dataclasses import dataclass

from vspd.chain.semver import SemVer

from .errors import ERR_NO_TX_INFO, NodeUnavailable, RPCError
from .peer import Peer

REQUIRED_API = SemVer(8, 8, 0)
API_KEY = "exccwalletjsonrpcapi"


async def holds_transaction(rpc, txid: str) -> bool:
    """`gettransaction`, which reads without nesting: -5 is "not held"."""
    try:
        await rpc.call("gettransaction", txid)
    except RPCError as e:
        if e.code == ERR_NO_TX_INFO:
            return False
        raise
    return True


@dataclass(frozen=True)
class WalletInfo:
    daemon_connected: bool
    unlocked: bool
    voting: bool
    manual_tickets: bool
    spv: bool
    vote_version: int


@dataclass(frozen=True)
class WalletTicket:
    hash: str
    status: str
    block_height: int
    choices: tuple  # ((agendaid, choiceid), ...)
    spender: str


class ExccWallet(Peer):
    name = "exccwallet"
    api_key = API_KEY
    required_api = REQUIRED_API

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._ticketinfo_apart = asyncio.Lock()  # our writes and our ticketinfo never overlap (module docstring)

    async def wallet_info(self) -> WalletInfo:
        r = await self.rpc.call("walletinfo")
        try:
            return WalletInfo(bool(r["daemonconnected"]), bool(r["unlocked"]), bool(r["voting"]),
                              bool(r.get("manualtickets", False)), bool(r.get("spv", False)),
                              int(r.get("voteversion", 0)))
        except (KeyError, TypeError, ValueError):
            raise NodeUnavailable("exccwallet returned a malformed walletinfo") from None

    async def best_height(self) -> int:
        r = await self.rpc.call("getbestblock")
        return int(r["height"])

    async def has_transaction(self, txid: str) -> bool:
        """Whether the wallet holds the transaction (a ticket it will vote, once its key is in too)."""
        return await holds_transaction(self.rpc, txid)

    async def _write(self, method: str, *params) -> None:
        async with self._ticketinfo_apart:
            await self.rpc.call(method, *params)

    async def import_key(self, wif: str) -> None:
        await self._write("importprivkey", wif, "imported", False, 0)

    async def add_transaction(self, block_hash: str, tx_hex: str) -> None:
        await self._write("addtransaction", block_hash, tx_hex)

    async def set_vote_choice(self, agenda: str, choice: str, ticket_hash: str) -> None:
        await self._write("setvotechoice", agenda, choice, ticket_hash)

    async def tickets(self, start_height: int) -> list[WalletTicket]:
        """Every ticket from `start_height` on: for listings on request only (see the module docstring)."""
        async with self._ticketinfo_apart:
            rows = await self.rpc.call("ticketinfo", start_height)
        out = []
        for r in rows or []:
            try:
                choices = tuple((c["agendaid"], c["choiceid"]) for c in r.get("choices") or [])
                out.append(WalletTicket(r["hash"], r["status"], int(r.get("blockheight", -1)), choices,
                                        r.get("vote") or r.get("revocation") or ""))
            except (KeyError, TypeError, ValueError):
                raise NodeUnavailable("exccwallet returned a malformed ticketinfo entry") from None
        return out


__all__ = ["ExccWallet", "WalletInfo", "WalletTicket", "RPCError", "holds_transaction"]

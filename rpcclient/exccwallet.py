"""The exccwallet calls a voter makes, with typed results (spec §4.5)."""

from dataclasses import dataclass

from vspd.chain.semver import SemVer

from .errors import NodeUnavailable, RPCError
from .peer import Peer

REQUIRED_API = SemVer(8, 8, 0)
API_KEY = "exccwalletjsonrpcapi"


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

    async def import_key(self, wif: str) -> None:
        await self.rpc.call("importprivkey", wif, "imported", False, 0)

    async def add_transaction(self, block_hash: str, tx_hex: str) -> None:
        await self.rpc.call("addtransaction", block_hash, tx_hex)

    async def set_vote_choice(self, agenda: str, choice: str, ticket_hash: str) -> None:
        await self.rpc.call("setvotechoice", agenda, choice, ticket_hash)

    async def tickets(self, start_height: int) -> list[WalletTicket]:
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


__all__ = ["ExccWallet", "WalletInfo", "WalletTicket", "RPCError"]

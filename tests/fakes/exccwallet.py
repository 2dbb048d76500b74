"""A protocol-level fake exccwallet (voting wallet) for the voter's fast tests.

It keeps imported keys and tickets in memory, follows a FakeChain's height
(less `lag`), and answers like exccwallet 2.8 on EXCC: `setvotechoice`
fails with "no agendas to set for this network".
"""

from dataclasses import dataclass, field

from vspd.chain import tx as txmod
from vspd.chain import wif as wifmod

from .exccd import FakeChain
from .jsonrpc import FakeJSONRPCServer, RPCFail, version_entry


@dataclass
class WalletTicket:
    hash: str
    block_height: int
    status: str = "live"
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

    @property
    def height(self) -> int:
        return self.chain.height - self.lag

    async def dispatch(self, ws, method: str, params: list):
        if method == "version":
            return {"exccwallet": version_entry(2, 8, 5), "exccwalletjsonrpcapi": version_entry(*self.api_version),
                    "exccd": version_entry(2, 7, 6), "exccdjsonrpcapi": version_entry(7, 0, 0)}
        if method == "getcurrentnet":
            return self.chain.net.net_magic
        if method == "walletinfo":
            return {"daemonconnected": self.daemon_connected, "unlocked": self.unlocked, "voting": self.voting,
                    "manualtickets": True, "spv": self.spv, "voteversion": 0, "txfee": 0.0001}
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
            self.tickets.setdefault(t.txid(), WalletTicket(t.txid(), height))
            return None
        if method == "setvotechoice":
            raise RPCFail(-4, "no agendas to set for this network")
        if method == "ticketinfo":
            start = int(params[0]) if params else 0
            return [{"hash": t.hash, "cost": 0.2, "votingaddress": "", "status": t.status,
                     "blockheight": t.block_height, "vote": t.spender if t.status == "voted" else None,
                     "choices": [{"agendaid": a, "choiceid": c} for a, c in t.choices.items()]}
                    for t in self.tickets.values() if t.block_height >= start]
        if method == "rescanwallet":
            return None
        raise RPCFail(-32601, f"Method not found: {method}")

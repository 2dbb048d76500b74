"""The signed VSP client (vspd/simnet/vspclient.py) and the tests' helpers that register tickets with it."""

from dataclasses import dataclass

from vspd.simnet.vspclient import BadServerSignature, Reply, VSPClient, now  # noqa: F401  (the tests import them here)


@dataclass
class NewTicket:
    voting: object
    commitment: object
    tx: object
    parent: object
    reply: Reply

    @property
    def hash(self) -> str:
        return self.tx.txid()


async def quote_new_ticket(client: VSPClient, chain, parent_height: int | None = None) -> NewTicket:
    """A fresh solo ticket (its parent on chain), sent to /feeaddress as a wallet would."""
    from chainbuilders import Key, make_parent, make_ticket
    voting, commit = Key(chain.net), Key(chain.net)
    parent = make_parent()
    chain.add(parent, block=chain.height - 20 if parent_height is None else parent_height)
    t = make_ticket(voting, commit, parent)
    r = await client.feeaddress(commit.secret, t.txid(), t.serialize().hex(), parent.serialize().hex())
    return NewTicket(voting, commit, t, parent, r)


async def register_real_ticket(client: VSPClient, ticket, voting_wif: str, payer=None) -> None:
    """A real ticket (vspd.simnet.chain.BoughtTicket) registered as exccwallet does: feeaddress, then, given a
    `payer` wallet (vspd.simnet.nodes.WalletNode), payfee with a transaction it signs but does not publish."""
    from vspd.chain.params import COIN
    r = await client.feeaddress(ticket.commitment_key, ticket.hash, ticket.hex, ticket.parent_hex)
    if r.status != 200:
        raise AssertionError(f"{client.base}: feeaddress refused: {r.json}")
    if payer is not None:
        fee = await payer.signed_payment({r.json["feeaddress"]: round(r.json["feeamount"] / COIN, 8)})
        p = await client.payfee(ticket.commitment_key, ticket.hash, fee, voting_wif)
        if p.status != 200:
            raise AssertionError(f"{client.base}: payfee refused: {p.json}")

"""The voter's carrier: takes handed-over tickets to the wallet without the frontend.

The rules are the frontend's own (vspd/frontend/pipeline.py), applied through the
voter's own exccd, so a frontend outage no longer decides which tickets
are voted:
  - the fee is broadcast once the ticket has REQUIRED_CONFS confirmations
    (an "already have / already exists" answer is success: the frontend or
    another voter sent it first);
  - the ticket and its voting key go into the wallet only once the fee has
    REQUIRED_CONFS confirmations, and the fee transaction still pays the
    address and amount the frontend expected. A fee that never confirms is
    never voted.
Every voter carries every paid ticket, so the same fee is sent up to N+1
times; that is harmless, and one of them is enough. The frontend stays the
record: it learns the outcome from the chain (the fee it finds mined) and
from the wallets (its repairs list them), exactly as before.
"""

import asyncio
import logging

from rpcclient import NodeUnavailable, RPCError
from rpcclient.errors import ERR_NO_TX_INFO
from rpcclient.exccd import Exccd, send_fee
from rpcclient.exccwallet import ExccWallet
from vspd.chain import address
from vspd.chain import tx as txmod
from vspd.chain.errors import ChainError
from vspd.chain.params import NetParams
from vspd.chain.rules import REQUIRED_CONFS, pays_fee
from vspd.voter.pending import FEE_BROADCAST, PendingStore, PendingTicket

log = logging.getLogger("voter.carrier")
IDLE_PASS = 10.0  # a pass at least this often even when no block notification arrives


async def import_ticket(wallet: ExccWallet, ticket_hash: str, ticket_hex: str, block_hash: str, block_height: int,
                        voting_wif: str, choices: dict) -> bool | None:
    """Put a mined ticket and its key into the wallet and set its choices.

    True if the wallet knew it already, False if imported now, None while
    the wallet has not reached the ticket's block (try again later).
    """
    if await wallet.best_height() < block_height:
        return None
    known = await wallet.has_transaction(ticket_hash)  # not ticketinfo: it can hang the wallet (exccwallet.py)
    if not known:
        await wallet.import_key(voting_wif)
        await wallet.add_transaction(block_hash, ticket_hex)
    for agenda, choice in sorted(choices.items()):
        await wallet.set_vote_choice(agenda, choice, ticket_hash)
    return known


def fee_pays(fee_tx_hex: str, fee_address: str, fee_amount: int, net: NetParams) -> bool:
    """The frontend's payfee rule (vspd/chain/rules.py pays_fee), on the fee as hex and its address as text."""
    try:
        return pays_fee(txmod.from_hex(fee_tx_hex), address.decode(fee_address, net), fee_amount)
    except ChainError:
        return False


class Carrier:
    def __init__(self, store: PendingStore, exccd: Exccd, wallet: ExccWallet, net: NetParams):
        self.store = store
        self.exccd = exccd
        self.wallet = wallet
        self.net = net
        self.wake = asyncio.Event()  # set per block (exccd's notification) and per HandOver
        self.passes = 0

    def keep_for(self) -> int:
        """Blocks a handed-over ticket is kept at most: past this its ticket has expired unvoted."""
        return self.net.ticket_maturity + self.net.ticket_expiry + 2 * REQUIRED_CONFS

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.wake.wait(), IDLE_PASS)
            except TimeoutError:
                pass
            self.wake.clear()
            if self.store.tickets:
                await self.run_pass()

    async def run_pass(self) -> None:
        try:
            tip = await self.exccd.block_count()
        except (NodeUnavailable, RPCError) as e:
            log.warning("carrying paused: %s", e)
            return
        for p in list(self.store.tickets.values()):
            try:
                await self._step(p, tip)
            except NodeUnavailable as e:
                log.warning("carrying paused: %s", e)
                break
            except RPCError as e:
                log.warning("ticket %s: %s", p.ticket_hash, e)
                self._note(p, str(e))
        self.passes += 1

    def _note(self, p: PendingTicket, error: str, state: str | None = None) -> None:
        """Record progress or an error only when it changed (one write per change, not per block)."""
        state = state or p.state
        if (p.error, p.state) != (error, state):
            p.error, p.state = error, state
            self.store.put(p)

    async def _step(self, p: PendingTicket, tip: int) -> None:
        if p.handed_height <= 0:  # taken while our exccd was away: its clock starts now
            p.handed_height = tip
            self.store.put(p)
        if tip > p.handed_height + self.keep_for():
            log.warning("ticket %s: fee %s never confirmed in %d blocks; forgotten", p.ticket_hash,
                        p.fee_tx_hash, self.keep_for())
            self.store.drop(p.ticket_hash)
            return
        try:
            ticket = await self.exccd.get_raw_transaction(p.ticket_hash)
        except RPCError as e:
            if e.code != ERR_NO_TX_INFO:
                raise
            self._note(p, "ticket not known to this voter's exccd yet")
            return
        if ticket.confirmations < REQUIRED_CONFS:
            return
        try:
            fee = await self.exccd.get_raw_transaction(p.fee_tx_hash)
        except RPCError as e:
            if e.code != ERR_NO_TX_INFO:
                raise
            # raises on a real refusal, noted by the pass; no look-up: our exccd has just said it does not know the fee
            await send_fee(self.exccd, p.fee_tx_hex, p.fee_tx_hash, look_up=False)
            log.info("fee %s of ticket %s broadcast", p.fee_tx_hash, p.ticket_hash)
            self._note(p, "", FEE_BROADCAST)
            return
        if fee.confirmations < REQUIRED_CONFS:
            self._note(p, "", FEE_BROADCAST)
            return
        if not fee_pays(fee.hex, p.fee_address, p.fee_amount, self.net):  # checked at HandOver; the chain's copy too
            log.error("ticket %s: the mined fee %s does not pay %d atoms to %s; not voted", p.ticket_hash,
                      p.fee_tx_hash, p.fee_amount, p.fee_address)
            self.store.drop(p.ticket_hash)
            return
        known = await import_ticket(self.wallet, p.ticket_hash, p.ticket_hex, ticket.blockhash, ticket.blockheight,
                                    p.voting_wif, p.vote_choices)
        if known is None:
            self._note(p, "wallet has not reached the ticket's block")
            return
        log.info("ticket %s %s: fee %s confirmed", p.ticket_hash, "was already in the wallet" if known
                 else "imported", p.fee_tx_hash)
        self.store.drop(p.ticket_hash)

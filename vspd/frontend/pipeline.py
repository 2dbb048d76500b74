"""The block pipeline: the single writer that moves tickets through their lifecycle.

Driven by exccd's block-connected notification (and run once at start):
  1. tickets reaching 6 confirmations become confirmed; never-mined ones go;
  2. fees of confirmed tickets are broadcast;
  3. fees reaching 6 confirmations become confirmed, and the ticket is added
     to every voter;
  4. each new block's votes and revocations are matched to our tickets:
     voted, missed or expired (from the revocation height).
Before those steps, each pass checks the node's chain still holds the last
block it read; when it does not (a reorganisation), it finds the fork point
among the blocks it kept and undoes everything recorded from the blocks above
it (vspd/store/blocks.py), so the steps redo them on the new branch: outcomes,
ticket confirmations and fee confirmations follow the chain (docs/reorgs.md).
Paid tickets whose fee is not confirmed yet are handed over to every voter
(at payfee, and again by each pass to any voter that does not carry them
yet): each voter then broadcasts the fee and imports the ticket by these same
rules through its own exccd (vspd/voter/carrier.py), so a frontend outage inside
a ticket's window misses nothing. The frontend stays the record: its own
steps above run as before, and every step is idempotent on both sides (an
"already have" broadcast, an "already known" add).
The pass never waits on a voter: hand-overs and adds go to each voter's
own queue (vspd/frontend/voterpool.py), so a hung voter delays nobody.
Every query reads only the rows that can change (partial indexes), so a
block with nothing for us costs a few indexed lookups, whatever the table
size. Consistency with the voters is checked at start, every 30 minutes,
whenever a voter becomes healthy again, and as soon as an add to a voter
fails (vspd/frontend/repairs.py retries it with backoff).
"""

import asyncio
import logging
import time
from dataclasses import dataclass

from rpcclient import NodeUnavailable, RPCError
from rpcclient.errors import ERR_NO_TX_INFO
from rpcclient.exccd import Exccd, is_orphan_error, send_fee
from vspd.chain.params import NetParams
from vspd.chain.rules import REQUIRED_CONFS
from vspd.frontend.voterpool import VoterPool, VoterState, VoterUnavailable
from vspd.store import Store, Ticket
from vspd.store.blocks import Undone
from vspd.store.models import EXPIRED, FEE_BROADCAST, FEE_CONFIRMED, FEE_ERROR, FEE_RECEIVED, MISSED, VOTED

log = logging.getLogger("pipeline")
MAX_BLOCKS_PER_PASS = 500
CONSISTENCY_INTERVAL = 30 * 60
LAST_SCANNED = "last_scanned_height"
CHECK_PAGE = 1000  # tickets per database read of a consistency check
HAND_OVER_WAIT = 2.0  # payfee waits at most this long for a first voter to hold the ticket


@dataclass
class PassReport:
    confirmed_tickets: int = 0
    deleted_tickets: int = 0
    fees_broadcast: int = 0
    fees_confirmed: int = 0
    outcomes: int = 0
    blocks_scanned: int = 0
    reorg_depth: int = 0  # blocks of ours that left the main chain this pass (0: none)
    undone: int = 0  # facts taken back by that reorganisation
    queries: int = 0
    seconds: float = 0.0

    @property
    def changes(self) -> int:
        return (self.confirmed_tickets + self.deleted_tickets + self.fees_broadcast + self.fees_confirmed
                + self.outcomes + self.undone)


def _undone_text(undone: Undone) -> str:
    parts = [f"{len(hashes)} {what} ({', '.join(hashes[:5])}{', ...' if len(hashes) > 5 else ''})"
             for what, hashes in (("outcome(s)", undone.outcomes), ("ticket confirmation(s)", undone.tickets),
                                  ("fee confirmation(s)", undone.fees)) if hashes]
    return "; ".join(parts) or "nothing of ours"


def classify_revocation(t: Ticket, spent_height: int, net: NetParams) -> str:
    """missed or expired, from where the revocation sits against the expiry height."""
    expiry = t.purchase_height + net.ticket_maturity + net.ticket_expiry
    return EXPIRED if expiry <= spent_height <= expiry + 1 else MISSED


class Pipeline:
    def __init__(self, store: Store, exccd: Exccd, voters: VoterPool | None, net: NetParams,
                 on_changed=None):
        self.store = store
        self.exccd = exccd
        self.voters = voters
        self.net = net
        self.on_changed = on_changed
        self.lock = asyncio.Lock()
        self.last_report = PassReport()
        self.passes = 0
        self.reorgs = 0  # reorganisations seen since start (the metrics count them)

    # -- one pass ----------------------------------------------------------
    async def run_pass(self) -> PassReport:
        async with self.lock:
            report = PassReport()
            q0, t0 = self.store.query_count, time.perf_counter()
            try:
                await self._follow_chain(report)
                await self._confirm_tickets(report)
                await self._broadcast_fees(report)
                await self._hand_over_paid()
                await self._confirm_fees(report)
                await self._activate_waived(report)
                await self._scan_blocks(report)
            except NodeUnavailable as e:
                log.warning("pass stopped: exccd unavailable: %s", e)
            report.seconds = time.perf_counter() - t0
            report.queries = self.store.query_count - q0
            self.last_report = report
            self.passes += 1
        if report.changes:
            log.info("pass: %s", report)
        if self.on_changed is not None:
            await self.on_changed(report)
        return report

    async def _confirm_tickets(self, report: PassReport) -> None:
        for t in await self.store.tickets_where("confirmed = 0"):
            try:
                raw = await self.exccd.get_raw_transaction(t.hash)
            except RPCError as e:
                if e.code == ERR_NO_TX_INFO and t.fee_tx_status != "none" and time.time() < t.fee_expiration:
                    # Paid, and our exccd does not know it: its mempool was lost in a restart (the soak's
                    # exccd restart made the pass forget two acknowledged fees whose tickets were mined a
                    # block later). An acknowledged fee is kept until its quote expires; by then a ticket
                    # still never mined is gone for good (a purchase expires in the mempool long before).
                    log.debug("paid ticket %s not known to our exccd yet: kept", t.hash)
                elif e.code == ERR_NO_TX_INFO:
                    log.info("ticket %s was never mined: forgetting it", t.hash)
                    await self.store.delete_ticket(t.hash)
                    report.deleted_tickets += 1
                else:
                    log.warning("getrawtransaction %s: %s", t.hash, e)
                continue
            if raw.confirmations >= REQUIRED_CONFS:
                if await self.store.update_fields(t.hash, {"confirmed": True, "purchase_height": raw.blockheight,
                                                           "purchase_block": raw.blockhash}, {"confirmed": False}):
                    report.confirmed_tickets += 1

    async def _broadcast_fees(self, report: PassReport) -> None:
        for t in await self.store.tickets_where("fee_tx_status = ? AND confirmed = 1", (FEE_RECEIVED,)):
            try:  # a refusal of a fee our node knows is no error: a voter's node sent it first, and it is mined
                sent_now = await send_fee(self.exccd, t.fee_tx_hex, t.fee_tx_hash, look_up=True)
            except RPCError as e:
                status = FEE_ERROR
                log.warning("fee %s of ticket %s could not be broadcast%s: %s", t.fee_tx_hash, t.hash,
                            " (unknown outputs)" if is_orphan_error(e) else "", e)
            else:
                status = FEE_BROADCAST
                if sent_now:
                    log.info("fee %s of ticket %s broadcast", t.fee_tx_hash, t.hash)
                else:
                    log.info("fee %s of ticket %s was already sent (by a voter)", t.fee_tx_hash, t.hash)
            if await self.store.update_fields(t.hash, {"fee_tx_status": status},
                                              {"fee_tx_status": FEE_RECEIVED, "fee_tx_hash": t.fee_tx_hash}):
                report.fees_broadcast += 1

    async def _confirm_fees(self, report: PassReport) -> None:
        for t in await self.store.tickets_where("fee_tx_status = ?", (FEE_BROADCAST,)):
            try:
                raw = await self.exccd.get_raw_transaction(t.fee_tx_hash)
            except RPCError as e:
                if e.code == ERR_NO_TX_INFO:
                    await self._send_again(t)
                else:  # a node's passing trouble (its index not synced yet): asked again next block
                    log.warning("fee %s of ticket %s not looked up: %s", t.fee_tx_hash, t.hash, e)
                continue
            if raw.confirmations < REQUIRED_CONFS:
                continue
            if not await self.store.confirm_fee(t.hash, t.fee_tx_hash, 0 if t.fee_waived else t.fee_amount,
                                                height=raw.blockheight, block=raw.blockhash):
                continue
            report.fees_confirmed += 1
            log.info("fee of ticket %s confirmed", t.hash)
            self.queue_add(t)

    async def _send_again(self, t: Ticket) -> None:
        """A broadcast fee the node no longer knows (its mempool lost in a restart, or evicted) is sent again
        from the hex we keep until it confirms; only a node that refuses it makes the fee an error."""
        try:  # no look-up: our node has just said it does not know the fee
            await send_fee(self.exccd, t.fee_tx_hex, t.fee_tx_hash, look_up=False)
        except RPCError as e:
            log.warning("fee %s of ticket %s vanished and was refused when sent again: %s", t.fee_tx_hash,
                        t.hash, e)
            await self.store.update_fields(t.hash, {"fee_tx_status": FEE_ERROR},
                                           {"fee_tx_status": FEE_BROADCAST, "fee_tx_hash": t.fee_tx_hash})
            return
        log.info("fee %s of ticket %s had left the node's mempool: sent again", t.fee_tx_hash, t.hash)

    async def _activate_waived(self, report: PassReport) -> None:
        """The operator's own tickets: no fee to wait for, voted once confirmed."""
        for t in await self.store.tickets_where("fee_waived = 1 AND confirmed = 1 AND fee_tx_status = 'none'"):
            if not await self.store.update_fields(t.hash, {"fee_tx_status": FEE_CONFIRMED},
                                                  {"fee_tx_status": "none", "fee_waived": True}):
                continue
            report.fees_confirmed += 1
            log.info("operator ticket %s is votable (fee waived)", t.hash)
            self.queue_add(t)

    # -- work for the voters (queued: the pass never waits on one) ---------
    async def _hand_over_paid(self) -> None:
        """Every paid ticket whose fee is unconfirmed, to every voter that does not carry it yet."""
        if self.voters is None:
            return
        paid = [t for status in (FEE_RECEIVED, FEE_BROADCAST)  # one query per partial index
                for t in await self.store.tickets_where("fee_tx_status = ? AND fee_waived = 0", (status,))]
        self.voters.keep_handed({t.hash for t in paid})  # forget what needs no carrying any more
        for t in paid:
            self.hand_over(t)

    async def hand_over_now(self, t: Ticket) -> bool:
        """Hand over at payfee, waiting (bounded) until a first voter holds the ticket.

        So a frontend killed just after its payfee answer has already put the
        ticket where it gets voted; a slow or absent voter costs the answer at
        most HAND_OVER_WAIT, and the passes keep handing it over after that.
        """
        if self.voters is None or not self.voters.reachable() or t.fee_waived or not t.fee_tx_hex:
            return False
        held = asyncio.Event()
        self.hand_over(t, held)
        try:
            await asyncio.wait_for(held.wait(), HAND_OVER_WAIT)
            return True
        except TimeoutError:
            log.warning("ticket %s: no voter took it within %.0f s; the next passes hand it over", t.hash,
                        HAND_OVER_WAIT)
            return False

    def hand_over(self, t: Ticket, held: asyncio.Event | None = None) -> None:
        """Queue a paid ticket for every voter that does not carry it with this fee (a plain call)."""
        if self.voters is None or t.fee_waived or not t.fee_tx_hex:
            return
        for state in self.voters:
            if state.handed.get(t.hash) != t.fee_tx_hash:
                self.voters.submit(state, ("hand over", t.hash), self._hand_over_job(t, held))
            elif held is not None:
                held.set()

    def _hand_over_job(self, t: Ticket, held: asyncio.Event | None):
        async def job(state: VoterState) -> None:
            if state.health is None or state.handed.get(t.hash) == t.fee_tx_hash:
                return  # unreachable: the first pass after it answers again queues it anew
            try:
                raw = await self.exccd.get_raw_transaction(t.hash)
            except (RPCError, NodeUnavailable) as e:
                log.warning("cannot fetch ticket %s to hand it over: %s", t.hash, e)
                return
            try:
                where = await state.client.hand_over(t.hash, raw.hex, t.voting_wif, t.vote_choices, t.fee_tx_hex,
                                                     t.fee_tx_hash, t.fee_address, t.fee_amount)
            except VoterUnavailable as e:
                log.warning("ticket %s not handed over to voter %s: %s", t.hash, state.name, e)
                return
            self.voters.mark_handed(state, t.hash, t.fee_tx_hash)
            if held is not None:
                held.set()
            log.debug("ticket %s handed over to voter %s (%s)", t.hash, state.name, where)
        return job

    def queue_add(self, t: Ticket) -> None:
        """Queue a votable ticket for every voter; a failed add is noted and its voter's repair asked for."""
        if self.voters is None:
            return

        async def job(state: VoterState) -> None:
            if await self.add_to_voters(t, [state], unreachable_too=False):
                self.voters.forget_handed(state, t.hash)
            else:
                self.voters.request_repair(state)
        for state in self.voters:
            self.voters.submit(state, ("add", t.hash), job)

    async def add_to_voters(self, t: Ticket, voters: list[VoterState] | None = None,
                            unreachable_too: bool = True) -> int:
        """Add a votable ticket to voters now (all reachable ones by default); returns successes.

        The block pass queues its adds instead (queue_add); this is for repairs and the queued jobs.
        """
        if self.voters is None:
            return 0
        def missed(state: VoterState) -> None:
            self.voters.mark_missing(state, t.hash)
            if voters is None:  # a repair's own adds are retried by that repair
                self.voters.request_repair(state)

        try:
            raw = await self.exccd.get_raw_transaction(t.hash)
        except (RPCError, NodeUnavailable) as e:
            log.warning("cannot fetch ticket %s for the voters: %s", t.hash, e)
            for state in voters if voters is not None else self.voters:
                missed(state)
            return 0
        targets = voters if voters is not None else self.voters.reachable()
        if not unreachable_too:
            for state in [s for s in targets if s.health is None]:
                missed(state)
                targets.remove(state)
        for state in self.voters if voters is None else ():
            if state not in targets:  # unreachable now: its repair adds it when it answers again
                missed(state)

        async def add(state: VoterState) -> bool:
            try:
                await state.client.add_ticket(t.hash, raw.hex, raw.blockhash, raw.blockheight, t.voting_wif,
                                              t.vote_choices)
            except VoterUnavailable as e:
                log.warning("ticket %s not added to voter %s: %s", t.hash, state.name, e)
                missed(state)
                return False
            self.voters.mark_held(state, t.hash)
            return True
        return sum(await asyncio.gather(*(add(s) for s in targets)))

    async def _scan_blocks(self, report: PassReport) -> None:
        tip = await self.exccd.block_count()
        stored = last = await self.store.get_state(LAST_SCANNED, -1)
        if last < 0:  # first run: start where our oldest votable ticket could first be spent
            earliest = await self.store.earliest_votable_height()
            last = min(tip, earliest + self.net.ticket_maturity) if earliest else tip
        start, end = last + 1, min(tip, last + MAX_BLOCKS_PER_PASS)
        previous = await self.store.scanned_hash(last)
        for height in range(start, end + 1):
            try:
                block_hash = await self.exccd.block_hash(height)
                block = await self.exccd.stake_block(block_hash)
            except RPCError as e:  # past a tip that just got lower, or a block that just left: the chain moved
                log.info("block %d not read (%s): the chain is reorganising; the next pass follows it", height, e)
                return
            if previous is not None and block.previous != previous:  # the chain moved under this pass
                log.info("block %d (%s) does not follow the block read before it: the chain is reorganising; "
                         "the next pass follows it", height, block_hash)
                return
            outcomes = []
            for spend in block.spends:
                t = await self.store.get_ticket(spend.ticket_hash)
                if t is None or t.outcome:
                    continue
                outcome = VOTED if spend.is_vote else classify_revocation(t, height, self.net)
                outcomes.append((t.hash, outcome, spend.spender))
            report.outcomes += await self.store.record_block(height, block_hash, outcomes, LAST_SCANNED)
            for ticket_hash, outcome, spender in outcomes:
                log.info("ticket %s %s at height %d (%s)", ticket_hash, outcome, height, spender)
            previous = block_hash
            report.blocks_scanned += 1
        if stored < 0 and start > end:  # the first block we know: a reorganisation is found against it too
            await self.store.record_block(last, await self.exccd.block_hash(last), [], LAST_SCANNED)
        elif start > end and last != stored:
            await self.store.set_state(LAST_SCANNED, last)

    async def _follow_chain(self, report: PassReport) -> None:
        """When the node's chain no longer holds the last block we read, undo what the blocks above the fork
        point gave us; the steps of this pass then redo it from the new branch (docs/reorgs.md)."""
        top = await self.store.scanned_top()
        if top is None:
            return
        height, kept = top
        if await self._node_hash(height) == kept:
            return  # one lookup a pass when nothing changed
        below = await self.store.scanned_below(height)  # those past a shorter node's tip match nothing
        fork = None
        for h, hash_kept in below:
            if await self._node_hash(h) == hash_kept:
                fork = (h, hash_kept)
                break
        if fork is None:  # deeper than the blocks we keep: undo all they cover
            fork_height = (below[-1][0] if below else height) - 1
            log.warning("chain reorganisation deeper than the %d blocks kept: undoing everything above %d",
                        len(below) + 1, fork_height)
            fork = (fork_height, "")
        undone = await self.store.undo_above(fork[0], LAST_SCANNED)
        self.reorgs += 1
        report.reorg_depth, report.undone = height - fork[0], undone.count
        log.warning("chain reorganisation: %d block(s) after %d (%s) left the main chain (our last was %d %s); "
                    "undone: %s", report.reorg_depth, fork[0], fork[1] or "?", height, kept, _undone_text(undone))

    async def _node_hash(self, height: int) -> str | None:
        """The node's main-chain block at `height`; None past its tip (it may be shorter mid-reorganisation)."""
        try:
            return await self.exccd.block_hash(height)
        except RPCError:
            return None

    # -- consistency -------------------------------------------------------
    async def check_voter(self, state: VoterState) -> bool:
        """Add missing tickets and fix vote choices on one voter; True when it holds every votable one.

        Runs beside the pipeline, not under its lock: a slow voter must not
        hold up block processing, and every voter call is idempotent. It
        also sets the voter's count of missing tickets to the truth. With
        100 000 tickets it stays small: the voter's list is kept as hash ->
        choices only, and our tickets are read a page of two columns at a time.
        """
        try:  # what it carries now, in its own words: what it lost (a new data folder) is handed over again
            self.voters.reset_handed(state, {p.ticket_hash: p.fee_tx_hash
                                             for p in await state.client.list_pending()})
        except VoterUnavailable as e:
            log.info("voter %s: pending tickets not listed: %s", state.name, e)
        noted_before = set(state.missing)
        page = await self.store.votable_choices(limit=CHECK_PAGE)
        listed: dict[bytes, tuple] = {}  # hash -> its (agenda, choice) pairs
        if page:
            start = await self.store.earliest_votable_height()
            try:
                async for w in state.client.iter_tickets(start):
                    listed[bytes.fromhex(w.hash)] = tuple((c.agenda_id, c.choice_id) for c in w.choices)
            except VoterUnavailable as e:
                log.warning("consistency check of voter %s skipped: %s", state.name, e)
                return False
        absent: set[str] = set()
        added = fixed = 0
        while page:
            for ticket_hash, choices in page:
                have = listed.get(bytes.fromhex(ticket_hash))
                if have is None:
                    absent.add(ticket_hash)
                elif choices and any(dict(have).get(a) != c for a, c in choices.items()):
                    try:
                        await state.client.set_vote_choices(ticket_hash, choices)
                        fixed += 1
                    except VoterUnavailable as e:
                        log.warning("vote choices of %s not fixed on %s: %s", ticket_hash, state.name, e)
            page = await self.store.votable_choices(page[-1][0], CHECK_PAGE)
        self.voters.reset_missing(state, absent, noted_before)
        for ticket_hash in sorted(absent):
            t = await self.store.get_ticket(ticket_hash)
            if t is not None:
                added += await self.add_to_voters(t, [state])
        if added or fixed:
            log.info("voter %s repaired: %d tickets added, %d choice sets fixed", state.name, added, fixed)
        return not state.missing

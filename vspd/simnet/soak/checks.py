"""The soak's invariants (issue 21, a–e) over what it gathered from the chain, the wallets and the VSP.

Pure (no I/O; the clock only to read a log line's local time): the soak collects facts into these records; the functions here judge
them and format the end table and the last line. Every violation carries
its evidence, so the report says what went wrong without reading logs.
"""

import bisect
import time
from collections import Counter
from dataclasses import dataclass, field

from vspd.chain.params import SIMNET
from vspd.chain.rules import REQUIRED_CONFS
from vspd.simnet.soak.plan import UNSEEN, VOTER_SIDE

PAID = ("received", "broadcast", "confirmed")
DETECT_WITHIN = 30.0    # /status must report a fault within this many seconds of its start ...
RECOVER_WITHIN = 90.0   # ... and answer 200 again within this many seconds of its end
RSS_SLOPE_MAX = 100.0   # MB per hour after warm-up, judged only over MIN_SLOPE_SPAN of samples
MIN_SLOPE_SPAN = 600.0
LOG_RATE_MAX = 50.0     # MB per hour of log, any one process
FDS_MAX = 1000
# A paid ticket's fate is settled in the blocks between its mining and its call (fee sent at 6
# confirmations, added at the fee's 6th, live at maturity), so a miss is caused up to that long before it
# is seen: the evidence names the faults of that span, not only those on at the call (issue 21's first
# finding read "every voter up" for misses a voter hang 10 s earlier had caused).
WINDOW_BLOCKS = SIMNET.ticket_maturity + 2
CALL_SEEN_WITHIN = 5.0  # the soak polls the staker wallets this often: a call is seen up to this late
# A fee acknowledged at height A is mined at A+1 at the earliest and has its REQUIRED_CONFS-th confirmation
# at A+REQUIRED_CONFS, when the voters may import the ticket. A missed ticket is revoked in the block after
# the one its vote belonged in, chosen by the block before that, which the voting wallet must
# already hold the ticket when it sees: A + REQUIRED_CONFS <= R - 3. A fee acknowledged later cannot be
# voted by any VSP keeping the protocol's fee rule (nor by EXCCoin/vspd or decred/vspd).
LATE_MARGIN = REQUIRED_CONFS + 3


@dataclass
class Ticket:
    """One staker ticket: the staker wallet's and the chain's view beside the VSP's."""
    hash: str
    wallet: str
    fate: str = "unmined"         # staker wallet's ticketinfo status; "revoked" resolved to missed or expired
    called_at: float | None = None  # soak seconds at which the soak saw it leave the live pool
    vsp_fee: str = ""             # the VSP's fee_tx_status ("" = the VSP does not know the ticket)
    fee_address: str = ""
    fee_txid: str = ""
    choices_set: dict | None = None    # the last vote choices the VSP acknowledged for it
    vote_txid: str = ""
    votebits: int | None = None        # the vote's bits as mined
    expected_votebits: int | None = None
    wallet_paid: bool = False  # the wallet says its fee is paid (its log, or the soak client got 200)
    paid_height: int | None = None   # chain height when the wallet's payfee was first acknowledged
    spender: str = ""                # the vote or revocation that spent it (the staker wallet's ticketinfo)
    spent_height: int | None = None  # the height of that vote or revocation
    refused: str = ""                # the staker wallet's first logged VSP error for it, with its time
    vote_cast: str = ""              # for a miss: which voting wallets cast its vote, when, on which block
    bought_at: float | None = None   # soak seconds of the staker wallet's "Published ticket purchase" line
    paid_at: float | None = None     # soak seconds of its first "successfully processed" line

    @property
    def vote_not_mined(self) -> bool:
        """Missed though our voting wallets cast its vote: the miner built the block without it."""
        return self.fate == "missed" and bool(self.vote_cast) and not self.paid_too_late

    @property
    def paid_too_late(self) -> bool:
        """Missed because its fee reached the VSP too late for the fee rule's confirmations."""
        return (self.fate == "missed" and self.paid_height is not None and self.spent_height is not None
                and self.paid_height > self.spent_height - LATE_MARGIN)


@dataclass
class FaultRecord:
    kind: str
    target: str
    start: float
    end: float | None = None
    detected_at: float | None = None  # first /status not 200 (or no answer) after start
    healthy_at: float | None = None   # first /status 200 after end
    note: str = ""
    problems: str = ""  # what /status named while the fault was on, or last named if it never came back
    depth: int = 0      # a reorganisation's: blocks that left the main chain (0: not one, or it failed)
    orphaned_votes: list[str] = field(default_factory=list)  # VSP tickets whose vote was in a block that left
    orphaned_fees: list[str] = field(default_factory=list)   # VSP tickets whose fee transaction was in one


@dataclass
class Sample:
    t: float
    rss_kb: int
    fds: int


@dataclass
class Facts:
    seconds: float = 0.0
    blocks: int = 0
    bought: int = 0
    buy_errors: int = 0
    tickets: dict[str, Ticket] = field(default_factory=dict)
    faults: list[FaultRecord] = field(default_factory=list)
    fee_receipts: list[tuple[str, str]] = field(default_factory=list)  # (txid, address) the fee wallet received
    missing_on_voters: list[str] = field(default_factory=list)         # "ticket on v2 (why)" evidence lines
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    log_bytes: dict[str, int] = field(default_factory=dict)
    warmup: float = 120.0
    extra: list[str] = field(default_factory=list)  # violations found while running (evidence lines)
    recorded_fee_txids: set[str] = field(default_factory=set)  # every fee_tx_hash in the VSP's database
    vsp_share: float = 0.0  # the VSP's share of the live ticket pool, averaged over the run
    staker_restarts: list[str] = field(default_factory=list)  # staker wallets that hung, restarted (not the VSP's)
    chain_mismatches: list[str] = field(default_factory=list)  # f: the VSP's record against the main chain
    # f's reach: (VSP tickets compared, first height, last height, votes and revocations of them on chain)
    chain_compared: tuple[int, int, int, int, int] | None = None


def follow(t: Ticket, status: str, now: float, ended: tuple[str, ...]) -> bool:
    """The staker wallet's status of a ticket taken in; True when it was just called (it left the live pool).

    A ticket whose vote a reorganisation orphaned is live again in the wallet's view; when it is called again
    it is called anew (its call time the new one), and its new vote makes it voted, not missed. One that is
    never called again before the end is live: neither called nor missed.
    """
    called = status in ended and t.fate not in ended
    if called:
        t.called_at = now
    if not (t.fate == "missed" and status == "revoked"):  # the wallet says revoked for a miss once revoked
        t.fate = status
    return called


def voter_down_at(faults: list[FaultRecord], t: float, voters: list[str]) -> list[str]:
    """The voters a voter-side fault had down at soak time `t` (with a block's slack either side)."""
    return sorted({f.target for f in faults if f.kind in VOTER_SIDE and f.start - 2 <= t <= (f.end or 1e18) + 2
                   and f.target in voters})


def counts(f: Facts) -> dict[str, int]:
    vsp = [t for t in f.tickets.values() if t.vsp_fee in PAID or t.wallet_paid]
    c = Counter(t.fate for t in vsp)
    late = sum(t.paid_too_late for t in vsp)
    unmined = sum(t.vote_not_mined for t in vsp)
    return {"bought": f.bought, "paid": len(vsp), "called": c["voted"] + c["missed"] - late,
            "voted": c["voted"] + unmined, "mined": c["voted"], "unmined": unmined,
            "missed": c["missed"] - late - unmined, "late": late, "expired": c["expired"],
            "revoked": c["revoked"] + c["missed"] + c["expired"], "unpaid": len(f.tickets) - len(vsp)}


def lost(f: Facts) -> list[str]:
    """b: fees paid (acknowledged to a wallet, or received on chain) that the VSP has no record of."""
    out = []
    for t in f.tickets.values():
        if t.wallet_paid and t.vsp_fee not in PAID:
            out.append(f"lost: fee of {t.hash} paid in the wallet's view, "
                       f"the VSP says fee status {t.vsp_fee or 'unknown'}")
    recorded = f.recorded_fee_txids | {t.fee_txid for t in f.tickets.values() if t.fee_txid}
    for txid, address in f.fee_receipts:
        if txid not in recorded:
            out.append(f"lost: fee {txid} paid to {address} is on chain, no ticket of the VSP records it")
    return out


def violations(f: Facts, voters: list[str]) -> list[str]:
    out = list(f.extra)
    for t in f.tickets.values():  # a: no miss while a voter was up
        if t.fate == "missed" and (t.vsp_fee in PAID or t.wallet_paid) and not t.paid_too_late \
                and not t.vote_not_mined:
            down = voter_down_at(f.faults, t.called_at, voters) if t.called_at is not None else []
            if len(down) < len(voters):
                at = f"{t.called_at:.0f} s" if t.called_at is not None else "an unknown time"
                out.append(f"a: missed {t.hash} (fee {t.vsp_fee}) called at {at}; voters down then: "
                           f"{', '.join(down) or 'none'}; faults then: {_faults_at(f.faults, t.called_at)}"
                           f"{_faults_before(f, t.called_at)}")
    out += lost(f)
    out += [f"b: {m}" for m in f.missing_on_voters]
    addresses = Counter(t.fee_address for t in f.tickets.values() if t.fee_address)  # c
    out += [f"c: fee address {a} given to {n} tickets" for a, n in addresses.items() if n > 1]
    feetx = Counter(t.fee_txid for t in f.tickets.values() if t.fee_txid)
    out += [f"c: fee transaction {x} recorded for {n} tickets" for x, n in feetx.items() if n > 1]
    paid_to = Counter(a for _, a in f.fee_receipts)
    out += [f"c: fee address {a} paid {n} times on chain" for a, n in paid_to.items() if n > 1]
    for t in f.tickets.values():
        if t.fate == "voted" and t.votebits is not None and t.expected_votebits is not None \
                and t.votebits & ~1 != t.expected_votebits & ~1:  # bit 0 approves the previous block
            out.append(f"c: {t.hash} voted bits {t.votebits:#06x}, choices set {t.choices_set} "
                       f"give {t.expected_votebits:#06x}")
    for r in f.faults:  # d
        if r.kind in UNSEEN:
            pass  # nothing is down: nothing for /status to report, but it must be 200 again after
        elif r.detected_at is None:
            out.append(f"d: /status never reported {r.kind} on {r.target} (started at {r.start:.0f} s)")
        elif r.detected_at - r.start > DETECT_WITHIN:
            out.append(f"d: /status reported {r.kind} on {r.target} {r.detected_at - r.start:.0f} s after it began")
        if r.end is not None and r.healthy_at is None:
            out.append(f"d: /status did not return to 200 after {r.kind} on {r.target} (ended at {r.end:.0f} s)"
                       + (f"; it said: {r.problems}" if r.problems else ""))
        elif r.end is not None and r.healthy_at - r.end > RECOVER_WITHIN:
            out.append(f"d: /status returned to 200 {r.healthy_at - r.end:.0f} s after {r.kind} on {r.target} ended")
    for name, (slope, fds, rate) in resources(f).items():  # e
        if slope is not None and slope > RSS_SLOPE_MAX:
            out.append(f"e: {name} RSS grows {slope:.0f} MB/h after warm-up (bound {RSS_SLOPE_MAX:.0f})")
        if fds > FDS_MAX:
            out.append(f"e: {name} held {fds} descriptors (bound {FDS_MAX})")
        if rate > LOG_RATE_MAX:
            out.append(f"e: {name} logs {rate:.1f} MB/h (bound {LOG_RATE_MAX:.0f})")
    out += f.chain_mismatches  # f
    return out


# -- f: the VSP's record of each ticket against the main chain's blocks ---------------------------------

@dataclass(frozen=True)
class Spend:
    """A vote or revocation of a ticket, as one record or one block holds it."""
    spender: str
    height: int
    vote: bool


@dataclass(frozen=True)
class Record:
    """The VSP's record of one ticket: its outcome ('' while live) and the spend it names (ticket_spends)."""
    outcome: str
    spender: str = ""
    height: int | None = None


def block_spends(block: dict) -> list[tuple[str, str, bool]]:
    """(ticket, spender, is a vote) for each vote and revocation in a block (getblock verbose, with its
    transactions): a vote or revocation spends output 0 of a ticket, in the stake tree; a vote has a stakebase."""
    out = []
    for stx in block.get("rawstx") or []:
        vins = stx.get("vin") or []
        vote = any("stakebase" in v for v in vins)
        out += [(v["txid"], stx["txid"], vote) for v in vins
                if "txid" in v and v.get("vout") == 0 and v.get("tree") == 1]
    return out


def block_txids(block: dict) -> set[str]:
    """The regular transactions of a block (getblock verbose, with its transactions)."""
    return {tx["txid"] for tx in block.get("rawtx") or [] if "txid" in tx}


def chain_spends(blocks: list[tuple[int, dict]], tickets: set[str]) -> dict[str, Spend]:
    """The spend of each of `tickets` in the main chain's `blocks` ((height, block), one pass)."""
    out: dict[str, Spend] = {}
    for height, block in blocks:
        for ticket, spender, vote in block_spends(block):
            if ticket in tickets:
                out[ticket] = Spend(spender, height, vote)
    return out


def chain_outcome(spend: Spend | None, expired: bool) -> str:
    if spend is None:
        return "live"
    return "voted" if spend.vote else "expired" if expired else "missed"


def record_vs_chain(records: dict[str, Record], chain: dict[str, Spend], at: int,
                    expired: set[str] = frozenset()) -> list[str]:
    """f: each ticket's outcome and spender in the VSP's record against the main chain's blocks up to height
    `at` (the last block the record had read). `expired`: tickets the chain says expired (their revocation is
    no miss). A record of 'revoked' is any revocation."""
    out = []
    for h, rec in sorted(records.items()):
        spend = chain.get(h)
        if spend is not None and spend.height > at:
            spend = None  # past the block the record had read: not a fact it could hold yet
        want = chain_outcome(spend, h in expired)
        have = rec.outcome or "live"
        same = have == want or (have == "revoked" and spend is not None and not spend.vote)
        if spend is None:
            same = same and not rec.spender
        else:
            same = same and rec.spender == spend.spender and rec.height in (None, spend.height)
        if not same:
            said = have + (f" by {rec.spender} at {rec.height}" if rec.spender else "")
            truth = want + (f" by {spend.spender} at {spend.height}" if spend else "")
            out.append(f"f: {h}: the VSP's record says {said}; the main chain (to height {at}) says {truth}")
    return out


def wall_time(stamp: str) -> float | None:
    """A wallet log line's time ("2026-12-03 18:51:41.702", local time, as exccwallet logs) as a Unix time."""
    try:
        return time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")) + float("0" + stamp[19:23])
    except ValueError:
        return None


def height_at(block_times: list[tuple[float, int]], stamp: str) -> int | None:
    """The chain height at a wallet log line's time, from the (wall time, height) of each block the soak
    mined; None before the first."""
    wall = wall_time(stamp)
    if wall is None:
        return None
    i = bisect.bisect_right(block_times, (wall, 1 << 62))
    return block_times[i - 1][1] if i else None


def unmined_evidence(f: Facts) -> list[str]:
    """Each miss whose vote our voting wallets cast, with when and on which block."""
    return [f"{t.hash}: revoked at {t.spent_height}; cast by {t.vote_cast}" for t in f.tickets.values()
            if t.vote_not_mined and (t.vsp_fee in PAID or t.wallet_paid)]


def late_evidence(f: Facts) -> list[str]:
    """Each miss whose fee the VSP was paid too late to vote, with the wallet's own account of why."""
    out = []
    for t in f.tickets.values():
        if not t.paid_too_late:
            continue
        span = ""
        if t.bought_at is not None and t.paid_at is not None:
            on = [f"{r.kind}@{r.target} ({r.start:.0f}-{'?' if r.end is None else f'{r.end:.0f}'} s)"
                  for r in f.faults if r.start <= t.paid_at and (r.end is None or r.end + 2 >= t.bought_at)]
            span = (f"; bought at {t.bought_at:.0f} s, paid at {t.paid_at:.0f} s, "
                    f"faults between: {', '.join(on) or 'none'}")
        out.append(f"{t.hash}: fee acknowledged at height {t.paid_height}, revoked at {t.spent_height} "
                   f"(needs {LATE_MARGIN} blocks between){span}; the wallet's first VSP error: "
                   f"{t.refused or 'none logged with the ticket'}")
    return out


def _faults_at(faults: list[FaultRecord], t: float | None) -> str:
    if t is None:
        return "?"
    on = [f"{r.kind}@{r.target}" for r in faults if r.start - 2 <= t <= (r.end or 1e18) + 2]
    return ", ".join(on) or "none"


def _faults_before(f: Facts, t: float | None) -> str:
    """The faults of the span in which a ticket called at `t` was carried to its voters."""
    if t is None:
        return ""
    span = WINDOW_BLOCKS * (f.seconds / f.blocks if f.blocks else 1.0) + CALL_SEEN_WITHIN
    on = [f"{r.kind}@{r.target} ({r.start:.0f}-{'?' if r.end is None else f'{r.end:.0f}'} s)"
          for r in f.faults if r.start <= t and (r.end is None or r.end >= t - span)]
    return f"; faults in its last {span:.0f} s: {', '.join(on) or 'none'}"


def slope_mb_per_hour(samples: list[Sample], warmup: float) -> float | None:
    """Least-squares RSS slope after warm-up, or None when the samples span less than MIN_SLOPE_SPAN."""
    pts = [(s.t, s.rss_kb / 1024) for s in samples if s.t >= warmup]
    if len(pts) < 3 or pts[-1][0] - pts[0][0] < MIN_SLOPE_SPAN:
        return None
    n = len(pts)
    mt, mr = sum(p[0] for p in pts) / n, sum(p[1] for p in pts) / n
    var = sum((p[0] - mt) ** 2 for p in pts)
    return sum((p[0] - mt) * (p[1] - mr) for p in pts) / var * 3600 if var else 0.0


def resources(f: Facts) -> dict[str, tuple[float | None, int, float]]:
    """name: (RSS slope MB/h or None, most descriptors seen, log MB/h)."""
    hours = max(f.seconds, 1.0) / 3600
    out = {}
    for name in sorted(set(f.samples) | set(f.log_bytes)):
        s = f.samples.get(name, [])
        out[name] = (slope_mb_per_hour(s, f.warmup), max((x.fds for x in s), default=0),
                     f.log_bytes.get(name, 0) / 1e6 / hours)
    return out


def reorg_row(faults: list[FaultRecord]) -> str:
    """One line: the reorganisations made, their depths, and how many VSP votes and fees they orphaned."""
    done = [r for r in faults if r.kind == "reorg" and r.depth]
    failed = sum(1 for r in faults if r.kind == "reorg" and not r.depth)
    depths = ", ".join(str(r.depth) for r in done) or "-"
    return (f"reorganisations     {len(done)}   (depths {depths}; {sum(len(r.orphaned_votes) for r in done)} VSP "
            f"votes and {sum(len(r.orphaned_fees) for r in done)} VSP fees orphaned"
            + (f"; {failed} could not be made" if failed else "") + ")")


def last_line(called: int, voted: int, missed: int, lost_: int, violations_: int) -> str:
    return f"soak: {called} called, {voted} voted, {missed} missed, {lost_} lost, {violations_} violations"


def table(f: Facts, voters: list[str]) -> tuple[list[str], int]:
    """The end report's lines (ending with the last line) and the number of violations."""
    c = counts(f)
    found = violations(f, voters)
    nlost = len(lost(f))
    share = f"   (the VSP held {f.vsp_share:.0%} of the live pool on average)"
    lines = [f"duration            {f.seconds / 60:.1f} min", f"blocks              {f.blocks}",
             f"tickets bought      {c['bought']} ({f.buy_errors} purchase calls failed)",
             f"  paid              {c['paid']}   (never paid: {c['unpaid']})",
             f"  called            {c['called']}{share}",
             f"  voted             {c['voted']}   ({c['mined']} mined; {c['unmined']} cast by our voting wallets "
             "but left out of the block, listed below)",
             f"  missed            {c['missed']}   (no voting wallet of ours cast the vote)",
             f"  paid too late     {c['late']}   (missed: fee acknowledged < {LATE_MARGIN} blocks before "
             "the ticket's revocation, listed below)",
             f"  expired           {c['expired']}",
             f"  revoked           {c['revoked']}", "faults"]
    by_kind = Counter(r.kind for r in f.faults)
    lines += [f"  {k:24s}{n}" for k, n in sorted(by_kind.items())]
    lines.append(reorg_row(f.faults))
    if f.chain_compared:
        n, low, high, votes, revs = f.chain_compared
        lines.append(f"record vs chain     {n} VSP tickets against blocks {low}-{high} ({votes} votes, {revs} "
                     f"revocations of them; mismatches are violations f)")
    if f.staker_restarts:
        lines.append(f"staker wallets restarted {len(f.staker_restarts)} (hung in exccwallet itself; load, not the VSP)")
        lines += [f"  {x}" for x in f.staker_restarts]
    lines.append("resources           RSS slope MB/h   max fds   log MB/h")
    for name, (slope, fds, rate) in resources(f).items():
        last = f.samples.get(name, [Sample(0, 0, 0)])[-1].rss_kb / 1024 if f.samples.get(name) else 0
        lines.append(f"  {name:18s}{'n/a (short)' if slope is None else f'{slope:+.1f}':>14s}   {fds:7d}   "
                     f"{rate:8.2f}   (RSS now {last:.0f} MB)")
    unmined = unmined_evidence(f)
    if unmined:
        lines.append("votes cast but not mined (no violation: the miner built the block without them)")
        lines += [f"  {x}" for x in unmined]
    late = late_evidence(f)
    if late:
        lines.append("paid too late to vote (no violation: the fee rule forbids voting them)")
        lines += [f"  {x}" for x in late]
    lines.append(f"violations          {len(found)}")
    lines += [f"  {v}" for v in found]
    lines.append(last_line(c["called"], c["voted"], c["missed"], nlost, len(found)))
    return lines, len(found)

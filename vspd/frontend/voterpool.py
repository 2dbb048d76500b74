"""The frontend's view of its voters: their health, polled, judged against the tip.

A voter is healthy when it answers and its node is connected and synced,
its wallet is connected to that node, unlocked, voting, not SPV, and
neither lags the chain tip by more than `maxlag` blocks. One voter failing
never stops the others: every call to a voter is made and judged alone.

Work for a voter (hand-overs, adds) goes to that voter's own queue, run by
its own worker task that the pool owns: the block pass only queues, so a
voter that hangs on a call costs its own queue the call's timeout and
nobody else anything. A queue holds at most one job per (kind, ticket):
what a pass queues again while a voter is stuck replaces, not piles up.

The pool alone writes its VoterStates: the pipeline, its jobs and the
repairs read them and tell the pool what a voter was seen to hold
(mark_handed, mark_missing, ...), so every change to a state is made here.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from rpcclient.voterclient import NO_ANSWER, VoterAddress, VoterClient, VoterUnavailable
from schema import voter_pb2 as pb

log = logging.getLogger("voters")
HEALTH_INTERVAL = 5.0
JOB_TIMEOUT = 60.0  # a whole queued job (a few calls, each with its own timeout) never holds its worker longer


@dataclass
class VoterState:
    """One voter as the pool sees it; read by anyone, written only by its VoterPool."""
    client: VoterClient
    health: pb.HealthReply | None = None
    error: str = "not polled yet"
    checked: float = 0.0
    healthy: bool = False
    problems: list[str] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)  # votable tickets known not to be on this voter
    handed: dict[str, str] = field(default_factory=dict)  # ticket hash -> fee txid this voter carries
    jobs: dict = field(default_factory=dict)  # (kind, ticket hash) -> queued job, oldest first
    work: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def name(self) -> str:
        return self.client.name

    def as_dict(self) -> dict:
        h = self.health
        d = {"name": self.name, "address": self.client.addr.target, "reachable": h is not None,
             "healthy": self.healthy, "problems": list(self.problems), "checked": int(self.checked),
             "missing_tickets": len(self.missing), "queued_jobs": len(self.jobs)}
        if h is not None:
            d.update(version=h.voter_version, node_connected=h.node_connected, node_synced=h.node_synced,
                     node_height=h.node_height, node_version=h.node_version,
                     wallet_connected=h.wallet_connected, wallet_daemon_connected=h.wallet_daemon_connected,
                     wallet_unlocked=h.wallet_unlocked, wallet_voting=h.wallet_voting, wallet_spv=h.wallet_spv,
                     wallet_manual_tickets=h.wallet_manual_tickets, wallet_height=h.wallet_height,
                     wallet_lag=h.wallet_lag, wallet_version=h.wallet_version)
        else:
            d["error"] = self.error
        return d


def judge(h: pb.HealthReply | None, error: str, tip: int, maxlag: int, network: str) -> list[str]:
    """Everything wrong with a voter, in words an operator can act on.

    A voter answers Health within its deadline even when its wallet or node
    hangs (it bounds each, vspd/voter/service.py), so a missed deadline
    means the voter process itself is stuck or the network to it silently drops
    everything (a partition: nothing is refused); a refused connection, that
    it is down or cut off.
    """
    if h is None:
        if "DEADLINE_EXCEEDED" in error:
            return [f"voter process not answering (hung or overloaded; its wallet and node are not the cause) "
                    f"or the network to it silent: {error}"]
        return [f"unreachable: {error}"]
    problems = []
    if h.network != network:
        problems.append(f"on {h.network}, not {network}")
    if not h.node_connected:
        problems.append(f"exccd {_unanswered(h.node_error)}: {h.node_error}")
    elif not h.node_synced:
        problems.append("exccd not synced")
    if not h.wallet_connected:
        problems.append(f"exccwallet {_unanswered(h.wallet_error)}: {h.wallet_error}")
    else:
        if not h.wallet_daemon_connected:
            problems.append("exccwallet not connected to its exccd")
        if not h.wallet_unlocked:
            problems.append("wallet locked")
        if not h.wallet_voting:
            problems.append("voting disabled")
        if h.wallet_spv:
            problems.append("wallet in SPV mode")
        lag = tip - h.wallet_height
        if lag > maxlag:
            problems.append(f"lagging {lag} blocks")
    if h.node_connected and tip - h.node_height > maxlag:
        problems.append(f"exccd lagging {tip - h.node_height} blocks")
    return problems


def _unanswered(error: str) -> str:
    """'not answering' for a peer that is connected but hung, 'unreachable' for one that is gone."""
    return "not answering" if error.startswith(NO_ANSWER) else "unreachable"


class VoterPool:
    def __init__(self, addresses: list[VoterAddress], ca: bytes, cert: bytes, key: bytes, network: str,
                 maxlag: int, minvoters: int, local_height: Callable[[], int],
                 interval: float = HEALTH_INTERVAL):
        self.states = [VoterState(VoterClient(a, ca, cert, key)) for a in addresses]
        self.ca, self.cert = ca, cert  # public: the preflight reads their expiry
        self.network = network
        self.maxlag = maxlag
        self.minvoters = minvoters
        self.local_height = local_height
        self.interval = interval
        self.on_repair: Callable[[VoterState], None] | None = None  # set by the frontend's repairs

    def __iter__(self):
        return iter(self.states)

    @property
    def total(self) -> int:
        return len(self.states)

    def healthy(self) -> list[VoterState]:
        return [s for s in self.states if s.healthy]

    def reachable(self) -> list[VoterState]:
        return [s for s in self.states if s.health is not None]

    def tip(self) -> int:
        heights = [self.local_height()] + [s.health.node_height for s in self.states
                                           if s.health is not None and s.health.node_connected]
        return max(heights)

    async def poll(self) -> None:
        results = await asyncio.gather(*(self._health(s) for s in self.states))
        tip = self.tip()
        for state, was_healthy in zip(self.states, results):
            state.problems = judge(state.health, state.error, tip, self.maxlag, self.network)
            state.healthy = not state.problems
            if state.healthy and not was_healthy:
                log.info("voter %s is healthy", state.name)
                self.request_repair(state)
            elif was_healthy and not state.healthy:
                log.warning("voter %s is unhealthy: %s", state.name, "; ".join(state.problems))

    async def _health(self, state: VoterState) -> bool:
        was = state.healthy
        try:
            state.health = await state.client.health()
            state.error = ""
        except VoterUnavailable as e:
            state.health, state.error = None, str(e)
        state.checked = time.time()
        return was

    def request_repair(self, state: VoterState) -> None:
        """Ask for this voter's tickets and choices to be checked and fixed now."""
        if self.on_repair is not None:
            self.on_repair(state)

    # -- what each voter holds, as its calls showed (the one writer of handed and missing) ----
    def mark_handed(self, state: VoterState, ticket_hash: str, fee_txid: str) -> None:
        """The voter took the paid ticket with this fee: no hand-over of it to this voter again."""
        state.handed[ticket_hash] = fee_txid

    def forget_handed(self, state: VoterState, ticket_hash: str) -> None:
        """The ticket is added (votable): it needs no carrying by this voter any more."""
        state.handed.pop(ticket_hash, None)

    def keep_handed(self, ticket_hashes: set[str]) -> None:
        """Forget, on every voter, what needs no carrying any more (confirmed, failed)."""
        for state in self.states:
            for h in [h for h in state.handed if h not in ticket_hashes]:
                del state.handed[h]

    def reset_handed(self, state: VoterState, handed: dict[str, str]) -> None:
        """What the voter carries, in its own words (a voter with a new data folder lost the rest)."""
        state.handed = handed

    def mark_missing(self, state: VoterState, ticket_hash: str) -> None:
        """A votable ticket known not to be on the voter (an add failed or was not tried)."""
        state.missing.add(ticket_hash)

    def mark_held(self, state: VoterState, ticket_hash: str) -> None:
        """The voter took the votable ticket."""
        state.missing.discard(ticket_hash)

    def reset_missing(self, state: VoterState, absent: set[str], noted_before: set[str]) -> None:
        """A listing's truth: what was noted before it is replaced by what it shows; a failure noted
        meanwhile (a ticket confirmed during the listing) is kept."""
        state.missing = absent | (state.missing - noted_before)

    def submit(self, state: VoterState, key: tuple, job: Callable[[VoterState], Awaitable[None]]) -> None:
        """Queue work for one voter and return at once (a plain call: the block pass never waits on a voter)."""
        state.jobs.pop(key, None)  # the newer job replaces the older and goes to the back
        state.jobs[key] = job
        state.work.set()

    async def _worker(self, state: VoterState) -> None:
        """This voter's queue, one job at a time; a job's failure is its own to report."""
        while True:
            await state.work.wait()
            state.work.clear()
            while state.jobs:
                key = next(iter(state.jobs))
                job = state.jobs.pop(key)
                try:
                    async with asyncio.timeout(JOB_TIMEOUT):
                        await job(state)
                except TimeoutError:
                    log.warning("voter %s: %s %s took over %.0f s; dropped", state.name, key[0], key[1], JOB_TIMEOUT)
                except Exception:
                    log.exception("voter %s: %s %s failed", state.name, key[0], key[1])

    async def run(self) -> None:
        """The health poll and every voter's worker, owned here: cancelling this ends them all."""
        async with asyncio.TaskGroup() as tg:
            for state in self.states:
                tg.create_task(self._worker(state))
            tg.create_task(self._poll_loop())

    async def _poll_loop(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception:
                log.exception("voter health poll failed")
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        for s in self.states:
            await s.client.close()

    def intake_problem(self) -> str | None:
        """Why new tickets must be refused now, or None."""
        healthy = len(self.healthy())
        if healthy < self.minvoters:
            return f"only {healthy} of {self.total} voters healthy (need {self.minvoters})"
        lag = self.tip() - self.local_height()
        if lag > self.maxlag:
            return f"the frontend's exccd lags the chain tip by {lag} blocks"
        return None


__all__ = ["VoterPool", "VoterState", "VoterUnavailable", "judge"]

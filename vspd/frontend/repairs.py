"""Voter repairs: asked for the moment a voter may have drifted, retried with backoff until done.

A repair (Pipeline.check_voter) compares one voter's wallet with the
database and adds what is missing. It is asked for when an AddTicket to
that voter fails, when the voter turns healthy, and by the 30-minute
timer. One task per voter: a repair that leaves tickets missing (the
voter is still down, an add failed again) runs again after 1, 2, 4 ... 60
seconds, or at once when asked again, until none is missing.
"""

import asyncio
import logging
from typing import Awaitable, Callable

from vspd.frontend.voterpool import VoterPool, VoterState

log = logging.getLogger("repairs")
FIRST_RETRY = 1.0
MAX_RETRY = 60.0


class Repairs:
    def __init__(self, voters: VoterPool, repair: Callable[[VoterState], Awaitable[bool]], interval: float,
                 first_retry: float = FIRST_RETRY, max_retry: float = MAX_RETRY):
        self.voters = voters
        self.repair = repair  # True when the voter is known to hold every votable ticket
        self.interval = interval  # every voter is checked this often, drift or not
        self.first_retry, self.max_retry = first_retry, max_retry
        self._wanted = {s.name: asyncio.Event() for s in voters}
        self.runs = 0

    def request(self, state: VoterState) -> None:
        """Repair this voter as soon as its task is free (a plain call: safe from anywhere in the loop)."""
        self._wanted[state.name].set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for state in self.voters:
                tg.create_task(self._voter_loop(state))
            tg.create_task(self._timer())

    async def _timer(self) -> None:
        """The first check comes from the voters turning healthy; then one every interval."""
        while True:
            await asyncio.sleep(self.interval)
            for state in self.voters:
                self.request(state)

    async def _voter_loop(self, state: VoterState) -> None:
        wanted = self._wanted[state.name]
        delay = self.first_retry
        await wanted.wait()
        while True:
            wanted.clear()
            try:
                done = await self.repair(state)
            except Exception:
                log.exception("repair of voter %s failed", state.name)
                done = False
            self.runs += 1
            if done or not state.missing:  # nothing known to be missing: the next request will come
                delay = self.first_retry
                await wanted.wait()
                continue
            log.info("voter %s: repair not finished (%d tickets missing); again in %.0f s",
                     state.name, len(state.missing), delay)
            try:
                await asyncio.wait_for(wanted.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, self.max_retry)

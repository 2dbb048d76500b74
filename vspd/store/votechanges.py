"""Vote changes: the signed requests and responses a ticket's voting choices came from.

Its own module, as decred/vspd's database/votechange.go: kept per ticket,
bounded (`MAX_VOTE_CHANGES`), the requests sealed (a payfee carries the
voting key), and their timestamps read again on every setvotechoices.
"""

import json

from .common import _now
from .models import VoteChange

MAX_VOTE_CHANGES = 10
_VOTE_CHANGES_OF = ("SELECT seq, request, request_sig, response, response_sig, created FROM vote_changes "
                    "WHERE ticket_hash = ? ORDER BY seq")


class VoteChangesPart:
    """The vote_changes table."""

    async def save_vote_change(self, ticket_hash: str, request: str, request_sig: str,
                               response: str, response_sig: str) -> int:
        async with self.transaction() as db:
            rows = await (await db.execute(
                "SELECT seq FROM vote_changes WHERE ticket_hash = ? ORDER BY seq", (ticket_hash,))).fetchall()
            seqs = [r[0] for r in rows]
            excess = len(seqs) - self.max_vote_changes + 1
            if excess > 0:
                await self._exec(db, "DELETE FROM vote_changes WHERE ticket_hash = ? AND seq <= ?",
                                 (ticket_hash, seqs[excess - 1]))
            seq = seqs[-1] + 1 if seqs else 0
            # The payfee request carries the voting key: requests are sealed like every secret.
            await self._exec(db, "INSERT INTO vote_changes VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (ticket_hash, seq, self.sealer.seal(request.encode(), f"req:{ticket_hash}"),
                              request_sig, response, response_sig, _now()))
        return seq

    async def vote_changes(self, ticket_hash: str) -> list[VoteChange]:
        rows = await self._rows(_VOTE_CHANGES_OF, ticket_hash)
        return [VoteChange(r[0], self.sealer.open(r[1], f"req:{ticket_hash}").decode(), *r[2:]) for r in rows]

    async def request_timestamps(self, ticket_hash: str) -> tuple[int | None, ...]:
        """The timestamp each kept request of the ticket carries (None: not an integer, or not JSON).

        Kept like the rows it comes from (until the next write): a replayed
        setvotechoices would otherwise open and parse every stored request.
        """
        stamps = self._hot.get(("timestamps", ticket_hash))
        if stamps is None:
            async def read() -> tuple[int | None, ...]:
                return tuple(_timestamp_of(c.request) for c in await self.vote_changes(ticket_hash))
            stamps = await self._keep_unless_written("timestamps", ticket_hash, read)
        return stamps


def _timestamp_of(request: str) -> int | None:
    try:
        stamp = json.loads(request)["timestamp"]
    except (ValueError, KeyError, TypeError):
        return None
    return stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None

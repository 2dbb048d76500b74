"""Ticket hashes that neither our database nor exccd knew, remembered for a moment.

Asking again and again about a ticket nobody knows (a wallet retrying, a
load test) would cost a database read and an exccd round trip each time,
for the same answer: code 6. That answer holds until the ticket reaches
exccd, which can happen at any moment, so an entry lives TTL seconds at
most, every entry goes when a block arrives, and an entry no longer counts
once this VSP has stored any ticket since it was made (the store's
`ticket_inserts` has moved on).
"""

import time
from typing import Callable

TTL = 1.0
MAX_ENTRIES = 10_000


class UnknownTickets:
    def __init__(self, ttl: float = TTL, max_entries: int = MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl, self.max_entries, self.clock = ttl, max_entries, clock
        self._entries: dict[str, tuple[float, int]] = {}  # hash -> (expiry, store generation); oldest first

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, ticket_hash: str, generation: int) -> None:
        """exccd said it does not know `ticket_hash`; our store was at `generation` before we looked."""
        self._entries.pop(ticket_hash, None)
        if len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[ticket_hash] = (self.clock() + self.ttl, generation)

    def holds(self, ticket_hash: str, generation: int) -> bool:
        """True if `ticket_hash` is still known to be unknown, with the store at `generation`."""
        entry = self._entries.get(ticket_hash)
        if entry is None:
            return False
        if entry[0] < self.clock() or entry[1] != generation:
            del self._entries[ticket_hash]
            return False
        return True

    def forget(self, ticket_hash: str) -> None:
        self._entries.pop(ticket_hash, None)

    def clear(self) -> None:
        self._entries.clear()

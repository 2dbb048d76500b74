"""Per-client token buckets (upstream: 3 per second, burst 1) for login and status."""

import time


class RateLimiter:
    def __init__(self, rate: float = 3.0, burst: float = 1.0, max_clients: int = 10000):
        self.rate, self.burst, self.max_clients = rate, burst, max_clients
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if len(self._buckets) > self.max_clients:  # forget everyone rather than grow without bound
            self._buckets.clear()
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return False
        self._buckets[client] = (tokens - 1.0, now)
        return True

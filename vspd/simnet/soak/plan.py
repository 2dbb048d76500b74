"""The soak's fault schedule: drawn from a seed, so the same seed replays the same faults in the same order.

Pure: no I/O, no clock. Faults run one at a time, each part repaired before
the next fault starts, so two voter-side parts are never down at once and
all voters down is never scheduled. The first round holds every kind once
(in an order drawn from the seed), so even a short soak covers them all.
"""

import random
from dataclasses import dataclass

# kind: (what it does, which part it takes down)
KINDS: dict[str, str] = {
    "voter-kill": "kill -9 of a voter's vspd, restarted after the down time",
    "wallet-kill": "kill -9 of a voting exccwallet, restarted after the down time",
    "exccd-kill": "kill -9 of a voter's exccd, restarted after the down time",
    "voter-hang": "SIGSTOP of a voter's vspd, SIGCONT after the down time",
    "wallet-hang": "SIGSTOP of a voting exccwallet, SIGCONT after the down time",
    "frontend-kill": "kill -9 of the frontend, restarted after the down time",
    "frontend-lost": "right after an acknowledged payfee: kill -9 of the frontend and its litestream, "
                     "data folder deleted, `vspadmin restore`, start",
    "frontend-exccd-restart": "restart of the frontend's exccd (the miner), down for the down time",
    "disk-full": "the frontend's data folder out of space for the down time",
    "replica-down": "the backup replica unreachable (read-only) for the down time",
    "reorg": "the last 1-3 blocks leave the main chain for a longer branch (vspd-simnet reorg), once a block "
             "holding a VSP ticket's vote or fee transaction is among them (waited for, bounded)",
}
VOTER_SIDE = {"voter-kill", "wallet-kill", "exccd-kill", "voter-hang", "wallet-hang"}
HANGS = {"voter-hang", "wallet-hang"}
# Faults that take no part down: /status has nothing to report while they are on (it must still be 200 after).
UNSEEN = {"reorg"}
REORG_DEPTHS = (1, 3)  # the depth of a reorganisation is drawn from these, both included


@dataclass(frozen=True)
class Planned:
    kind: str
    target: str      # voter name for voter-side faults, "chain" for a reorganisation, else "frontend"
    down: float      # seconds the part stays down (0: the fault is one act, e.g. a restart)
    gap: float       # seconds of quiet after the part is repaired, before the next fault
    depth: int = 0   # a reorganisation's depth in blocks (REORG_DEPTHS); 0 for every other kind


def _down(rng: random.Random, kind: str, short: bool) -> float:
    if kind in HANGS:
        return rng.uniform(10, 15 if short else 60)
    if kind == "frontend-kill":
        return rng.uniform(5, 10 if short else 60)
    if kind in ("frontend-lost", "reorg"):
        return 0.0
    if kind == "frontend-exccd-restart":  # long enough for /status to see it, as a real restart is
        return rng.uniform(5, 10 if short else 30)
    if kind in ("disk-full", "replica-down"):
        return rng.uniform(10, 15 if short else 90)
    return rng.uniform(5, 10 if short else 45)  # the kills of voter-side parts


def schedule(seed: int, count: int, voters: list[str], short: bool = False) -> list[Planned]:
    """`count` faults (at least one round of every kind); targets among `voters`."""
    if not voters:
        raise ValueError("a soak needs at least one voter")
    rng = random.Random(seed)
    kinds = sorted(KINDS)
    plan: list[Planned] = []
    first = kinds[:]
    rng.shuffle(first)
    for n in range(max(count, len(kinds))):
        kind = first[n] if n < len(first) else rng.choice(kinds)
        target = rng.choice(voters) if kind in VOTER_SIDE else "chain" if kind == "reorg" else "frontend"
        depth = rng.randint(*REORG_DEPTHS) if kind == "reorg" else 0
        plan.append(Planned(kind, target, round(_down(rng, kind, short), 1),
                            round(rng.uniform(3, 6) if short else rng.uniform(10, 40), 1), depth))
    return plan


def intervals(plan: list[Planned], repair: float) -> list[tuple[float, float, Planned]]:
    """(start, end of repair, fault) on a nominal clock: each fault starts after the previous is repaired."""
    out, t = [], 0.0
    for p in plan:
        end = t + p.down + repair
        out.append((t, end, p))
        t = end + p.gap
    return out


def voter_side_overlaps(plan: list[Planned], repair: float) -> list[tuple[Planned, Planned]]:
    """Pairs of voter-side faults whose down times (with repair) overlap: must be none."""
    spans = [(s, e, p) for s, e, p in intervals(plan, repair) if p.kind in VOTER_SIDE]
    return [(a, b) for i, (s1, e1, a) in enumerate(spans) for s2, e2, b in spans[i + 1:] if s2 < e1 and s1 < e2]

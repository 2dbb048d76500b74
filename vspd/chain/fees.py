"""EXCC subsidy schedule and the VSP fee formula (StakePoolTicketFee).

DCP-0010 is treated as inactive, as exccwallet and EXCCoin/vspd do: the
wallet computes the same number and refuses a quote above its limit, so this
must match it exactly (see decred/vspd #454 for what a mismatch does).
"""

import math

from .errors import ChainError
from .params import NetParams

DEFAULT_RELAY_FEE = 10_000  # atoms/kB, hard-coded in vspd for this formula only


def block_subsidy(height: int, net: NetParams) -> int:
    """Total block subsidy at `height` (work + stake), in atoms."""
    if height <= 0:
        return 0
    if height == 1:
        if net.block_one_subsidy is None:
            raise ChainError(f"block one subsidy of {net.name} is not known")
        return net.block_one_subsidy
    s = net.base_subsidy
    for _ in range(height // net.subsidy_reduction_interval):
        s = s * net.mul_subsidy // net.div_subsidy
        if s == 0:
            break
    return s


def vote_subsidy(height: int, net: NetParams) -> int:
    """Subsidy paid to one vote at `height` (0 before SVH-1)."""
    if height < net.stake_validation_height - 1:
        return 0
    total = net.work_proportion + net.stake_proportion
    return block_subsidy(height, net) * net.stake_proportion // (total * net.tickets_per_block)


def vsp_fee(stake_diff: int, height: int, fee_percent: float, net: NetParams,
            relay_fee: int = DEFAULT_RELAY_FEE) -> int:
    """The minimum VSP fee in atoms for a ticket bought at `stake_diff`."""
    if stake_diff < 0 or relay_fee < 0:
        raise ChainError("stake difficulty and relay fee must not be negative")
    p = int(math.floor(fee_percent * 100.0))
    adjs = math.ceil(net.ticket_pool_size / net.subsidy_reduction_interval)
    s = vote_subsidy(height, net)
    for _ in range(adjs):
        s = s * 100 // 101
    if s + stake_diff == 0:
        return 0
    return (p * s * (stake_diff + relay_fee)) // (10000 * (s + stake_diff))


def coins_to_atoms(coins: float) -> int:
    """Round half away from zero, as dcrutil.NewAmount does for sbits."""
    if not isinstance(coins, (int, float)) or math.isnan(coins) or math.isinf(coins):
        raise ChainError(f"invalid coin amount {coins!r}")
    x = coins * 1e8
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


# exccwallet's purchaseticket pays no VSP fee above this (hard-coded on its RPC path, and the default
# of --vsp.maxfee): it publishes the ticket, is quoted more, and silently never pays.
WALLET_MAX_FEE = 20_000_000


def atoms_to_coins_text(atoms: int) -> str:
    return f"{atoms / 1e8:.8f}".rstrip("0").rstrip(".") + " EXCC"

"""Would exccwallet pay the fee this VSP quotes? Its purchaseticket refuses any quote above 0.2 EXCC.

A VSP whose quote is above that cap takes tickets whose fees are never
paid: the wallet publishes the ticket, gets the quote, and gives up without
a word. The operator is warned (preflight, /admin/status, the admin page,
the home page) for the ticket price now and for the next stake difficulty
window.
"""

from dataclasses import dataclass

from rpcclient import NodeUnavailable, RPCError
from rpcclient.exccd import Exccd
from vspd.chain.fees import WALLET_MAX_FEE, atoms_to_coins_text, vsp_fee
from vspd.chain.params import NetParams


@dataclass(frozen=True)
class FeeQuotes:
    height: int
    price_now: int
    price_next: int
    fee_now: int
    fee_next: int

    def problem(self) -> str | None:
        over = [f"{label} price {atoms_to_coins_text(price)}: fee {atoms_to_coins_text(fee)}"
                for label, price, fee in (("current", self.price_now, self.fee_now),
                                          ("next", self.price_next, self.fee_next)) if fee > WALLET_MAX_FEE]
        if not over:
            return None
        return (f"exccwallet pays no VSP fee above {atoms_to_coins_text(WALLET_MAX_FEE)} and this VSP would quote more "
                f"({'; '.join(over)}): lower vspfee, or tickets bought here are never paid for")

    def detail(self) -> str:
        return (f"fee {atoms_to_coins_text(self.fee_now)} at the current price {atoms_to_coins_text(self.price_now)}, "
                f"{atoms_to_coins_text(self.fee_next)} at the next {atoms_to_coins_text(self.price_next)}; "
                f"exccwallet pays at most {atoms_to_coins_text(WALLET_MAX_FEE)}")


def quotes(height: int, price_now: int, price_next: int, vspfee: float, net: NetParams) -> FeeQuotes:
    return FeeQuotes(height, price_now, price_next, vsp_fee(price_now, height, vspfee, net),
                     vsp_fee(price_next, height + 1, vspfee, net))


async def current_quotes(exccd: Exccd, vspfee: float, net: NetParams) -> FeeQuotes | str:
    """The quotes from exccd's view of the chain, or why they cannot be known now."""
    try:
        height = await exccd.block_count()
        now, nxt = await exccd.stake_difficulty()
    except (NodeUnavailable, RPCError) as e:
        return f"exccd cannot tell the ticket price: {e}"
    return quotes(height, now, nxt, vspfee, net)

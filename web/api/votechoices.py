"""Validation of the three preference maps, shared by payfee and setvotechoices."""

from vspd.chain.errors import ChainError
from vspd.chain.params import NetParams
from vspd.chain.votes import check_treasury_policy, check_tspend_policy, check_vote_choices


def problems(req: dict, net: NetParams) -> dict[str, str]:
    """{field: error} for each map in the request that does not validate."""
    found = {}
    for name, check in (("votechoices", lambda m: check_vote_choices(m, net)),
                        ("treasurypolicy", check_treasury_policy),
                        ("tspendpolicy", check_tspend_policy)):
        try:
            check(req[name])
        except ChainError as e:
            found[name] = str(e)
    return found

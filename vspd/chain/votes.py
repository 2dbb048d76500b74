"""Validation of vote preferences (spec §3.4.3).

EXCC defines no consensus deployments and no treasury, so today only `{}`
is a valid set of consensus choices; the checks stay generic over the
network's deployment table so agendas can be added as data later.
"""

from .errors import ChainError
from .params import NetParams

POLICY_VALUES = frozenset({"yes", "no", "abstain", "invalid", ""})
MAX_POLICIES = 3
MAX_SHOWN = 100  # characters of a client's key or value quoted back in an error (and so in the log)


def _shown(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}… ({len(text)} characters)"


def current_vote_version(net: NetParams) -> int:
    return max(net.deployments, default=0)


def check_vote_choices(choices: dict, net: NetParams) -> None:
    version = current_vote_version(net)
    agendas = net.deployments.get(version, {})
    for agenda, choice in choices.items():
        if agenda not in agendas:
            raise ChainError(f'agenda "{_shown(agenda)}" not found for vote version {version}')
        if choice not in agendas[agenda]:
            raise ChainError(f'choice "{_shown(choice)}" not found for agenda "{agenda}"')


def check_treasury_policy(policy: dict) -> None:
    for key, value in policy.items():
        try:
            raw = bytes.fromhex(key)
        except ValueError as e:
            raise ChainError(f'error decoding treasury key "{_shown(key)}": {e}') from None
        if len(raw) != 33:
            raise ChainError(f'treasury key "{_shown(key)}" is not 33 bytes')
        if value not in POLICY_VALUES:
            raise ChainError(f'"{_shown(value)}" is not a valid policy option')


def check_tspend_policy(policy: dict) -> None:
    for key, value in policy.items():
        if len(key) != 64:
            raise ChainError(f"wrong tspend hash length, expected 64 got {len(key)}")
        try:
            bytes.fromhex(key)
        except ValueError as e:
            raise ChainError(f'error decoding tspend hash "{key}": {e}') from None
        if value not in POLICY_VALUES:
            raise ChainError(f'"{_shown(value)}" is not a valid policy option')

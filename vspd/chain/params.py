"""EXCC network parameters, one record per network (spec §3.3, §5.2).

Networks are data, not `if` statements: every difference between mainnet,
testnet and simnet that the VSP cares about lives in this table.
"""

from dataclasses import dataclass, field
from typing import Mapping, Optional

from .errors import ChainError

COIN = 100_000_000
MAX_ATOMS = 21_000_000 * COIN


@dataclass(frozen=True, eq=False)  # one object per network: identity is equality
class NetParams:
    name: str
    net_magic: int
    node_rpc_port: int
    wallet_rpc_port: int
    p2p_port: int
    pkh_prefix: bytes
    sh_prefix: bytes
    wif_id: int
    hd_public: bytes
    hd_private: bytes
    base_subsidy: int
    mul_subsidy: int
    div_subsidy: int
    subsidy_reduction_interval: int
    work_proportion: int
    stake_proportion: int
    tickets_per_block: int
    ticket_pool_size: int
    ticket_maturity: int
    ticket_expiry: int
    stake_validation_height: int
    coinbase_maturity: int
    max_tx_size: int
    target_block_seconds: int
    min_voters: int
    explorer: str
    # Sum of the block-one ledger; only known where the spec gives it.
    block_one_subsidy: Optional[int] = None
    # Consensus deployments by vote version: {version: {agenda: {choices}}}.
    # EXCC defines none on any network.
    deployments: Mapping[int, Mapping[str, frozenset]] = field(default_factory=dict)

    @property
    def blocks_per_day(self) -> int:
        return 86400 // self.target_block_seconds


MAINNET = NetParams(
    name="mainnet", net_magic=0x9917D7E1,
    node_rpc_port=9109, wallet_rpc_port=9110, p2p_port=9666,
    pkh_prefix=bytes.fromhex("21b9"), sh_prefix=bytes.fromhex("34af"), wif_id=0x80,
    hd_public=bytes.fromhex("0488b21e"), hd_private=bytes.fromhex("0488ade4"),
    base_subsidy=38 * COIN, mul_subsidy=100000, div_subsidy=103183,
    subsidy_reduction_interval=16128, work_proportion=7, stake_proportion=3,
    tickets_per_block=5, ticket_pool_size=8192, ticket_maturity=256,
    ticket_expiry=40960, stake_validation_height=768, coinbase_maturity=256,
    max_tx_size=393216, target_block_seconds=150, min_voters=3,
    explorer="https://explorer.excc.co",
)

TESTNET = NetParams(
    name="testnet", net_magic=0x5AA4752A,
    node_rpc_port=19109, wallet_rpc_port=19110, p2p_port=11999,
    pkh_prefix=bytes.fromhex("0f21"), sh_prefix=bytes.fromhex("0efc"), wif_id=0xEF,
    hd_public=bytes.fromhex("043587d1"), hd_private=bytes.fromhex("04358397"),
    base_subsidy=38 * COIN, mul_subsidy=100000, div_subsidy=103183,
    subsidy_reduction_interval=16128, work_proportion=7, stake_proportion=3,
    tickets_per_block=5, ticket_pool_size=1024, ticket_maturity=16,
    ticket_expiry=6144, stake_validation_height=192, coinbase_maturity=16,
    max_tx_size=393216, target_block_seconds=150, min_voters=1,
    explorer="https://testnet-explorer.excc.co",
)

SIMNET = NetParams(
    name="simnet", net_magic=0xBC8776FF,
    node_rpc_port=19556, wallet_rpc_port=19557, p2p_port=11998,
    pkh_prefix=bytes.fromhex("0e91"), sh_prefix=bytes.fromhex("0e6c"), wif_id=0xEF,
    hd_public=bytes.fromhex("0420bd3d"), hd_private=bytes.fromhex("0420b903"),
    base_subsidy=50_000_000_000, mul_subsidy=100, div_subsidy=101,
    subsidy_reduction_interval=128, work_proportion=6, stake_proportion=3,
    tickets_per_block=5, ticket_pool_size=64, ticket_maturity=16,
    ticket_expiry=384, stake_validation_height=144, coinbase_maturity=16,
    max_tx_size=1_000_000, target_block_seconds=1, min_voters=1,
    explorer="", block_one_subsidy=3 * 100_000 * COIN,
)

NETWORKS: dict[str, NetParams] = {p.name: p for p in (MAINNET, TESTNET, SIMNET)}


def by_name(name: str) -> NetParams:
    try:
        return NETWORKS[name]
    except KeyError:
        raise ChainError(
            f"unknown network {name!r} (expected one of {', '.join(NETWORKS)})") from None

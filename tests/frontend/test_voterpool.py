"""Judging voter health and the intake rule (pure parts of vspd.voters)."""

from rpcclient.voterclient import VoterAddress
from schema import voter_pb2 as pb
from vspd.frontend.voterpool import VoterPool, judge


def reply(**kw) -> pb.HealthReply:
    base = dict(network="simnet", node_connected=True, node_synced=True, node_height=100, wallet_connected=True,
                wallet_daemon_connected=True, wallet_unlocked=True, wallet_voting=True, wallet_height=100)
    base.update(kw)
    return pb.HealthReply(**base)


def test_judge_names_each_problem():
    assert judge(reply(), "", 100, 6, "simnet") == []
    assert judge(None, "UNAVAILABLE", 100, 6, "simnet") == ["unreachable: UNAVAILABLE"]
    assert judge(reply(node_connected=False, node_error="refused"), "", 100, 6, "simnet")[0] == \
        "exccd unreachable: refused"
    assert judge(reply(node_synced=False), "", 100, 6, "simnet") == ["exccd not synced"]
    assert judge(reply(wallet_daemon_connected=False), "", 100, 6, "simnet") == \
        ["exccwallet not connected to its exccd"]
    assert judge(reply(wallet_voting=False, wallet_spv=True), "", 100, 6, "simnet") == \
        ["voting disabled", "wallet in SPV mode"]
    assert judge(reply(network="mainnet"), "", 100, 6, "simnet") == ["on mainnet, not simnet"]
    assert judge(reply(), "", 107, 6, "simnet") == ["lagging 7 blocks", "exccd lagging 7 blocks"]


def test_intake_refuses_while_degraded_or_lagging():
    from vspd.frontend.voterpool import VoterState

    class FakeClient:
        def __init__(self, name):
            self.name, self.addr = name, VoterAddress(name, "127.0.0.1", 1)
    p = VoterPool([], b"", b"", b"", "simnet", maxlag=6, minvoters=2, local_height=lambda: 100)
    p.states = [VoterState(FakeClient(n)) for n in ("a", "b")]
    for s in p.states:
        s.health, s.healthy = reply(), True
    assert p.intake_problem() is None
    p.states[1].healthy = False
    assert p.intake_problem() == "only 1 of 2 voters healthy (need 2)"
    p.states[1].healthy = True
    p.states[0].health = reply(node_height=120)  # the chain moved on; our exccd did not
    assert p.intake_problem() == "the frontend's exccd lags the chain tip by 20 blocks"

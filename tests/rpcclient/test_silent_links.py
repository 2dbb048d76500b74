"""The websocket links to exccd and exccwallet against a silent peer: noticed within the stated bound, and back
by themselves when the network is (docs/reliability.md, "Silent links: how long until each is noticed").

A silent peer closes nothing: tests/helpers/silentlink.py stops every byte and keeps the sockets open. Both
clients share rpcclient/wsrpc.py, so one test covers both. The ping bound is scaled down here (PING_INTERVAL and
PING_TIMEOUT and CLOSE_TIMEOUT patched to SCALED seconds each); the production values give the documented bound.
"""

import asyncio
import time

import pytest

from fakes.exccd import FakeChain, FakeExccd
from fakes.exccwallet import FakeWallet
from rpcclient import Exccd, NodeUnavailable
from rpcclient import wsrpc
from rpcclient.exccwallet import ExccWallet
from silentlink import SilentLink
from vspd.chain.params import SIMNET

SCALED = 1.0  # seconds of ping interval and of ping timeout in these tests
CALL_TIMEOUT = 3.0
SLACK = 3.0  # scheduling on 2 shared cores, the close of the dead transport


def test_production_bound_is_the_documented_one():
    assert wsrpc.PING_INTERVAL + wsrpc.PING_TIMEOUT + wsrpc.CLOSE_TIMEOUT == wsrpc.SILENT_PEER_BOUND == 45.0


@pytest.mark.parametrize("kind", ["exccd", "exccwallet"])
async def test_silent_peer_is_noticed_and_the_link_comes_back(kind, monkeypatch):
    monkeypatch.setattr(wsrpc, "PING_INTERVAL", SCALED)
    monkeypatch.setattr(wsrpc, "PING_TIMEOUT", SCALED)
    monkeypatch.setattr(wsrpc, "CLOSE_TIMEOUT", SCALED)
    chain = FakeChain(SIMNET)
    server = FakeExccd(chain) if kind == "exccd" else FakeWallet(chain)
    await server.start()
    link = SilentLink(server.port)
    await link.start()
    peer_class = Exccd if kind == "exccd" else ExccWallet
    peer = peer_class(SIMNET, "127.0.0.1", link.port, server.user, server.password, server.cert_pem,
                      timeout=CALL_TIMEOUT)
    runner = asyncio.create_task(peer.run())
    try:
        assert await peer.wait_connected(5)
        assert await peer.rpc.call("getblockcount" if kind == "exccd" else "getbestblock")
        method = "getblockcount" if kind == "exccd" else "getbestblock"

        link.silence()
        t0 = time.monotonic()
        with pytest.raises(NodeUnavailable, match="in time"):
            await peer.rpc.call(method)
        failed = time.monotonic() - t0
        assert CALL_TIMEOUT - 0.5 <= failed <= CALL_TIMEOUT + 1
        while peer.connected:
            assert time.monotonic() - t0 < 3 * SCALED + SLACK, "the silent peer was not noticed in time"
            await asyncio.sleep(0.05)
        noticed = time.monotonic() - t0
        with pytest.raises(NodeUnavailable, match="not connected"):  # callers now fail at once
            await peer.rpc.call(method)
        await asyncio.sleep(CALL_TIMEOUT + 0.5)  # reconnects meanwhile hang on the silent link and time out
        assert not peer.connected

        link.heal(resume_old=False)  # the old connection stays silent for good; new ones pass
        t1 = time.monotonic()
        assert await peer.wait_connected(wsrpc.RETRY_MAX + CALL_TIMEOUT + SLACK), peer.rpc.last_error
        back = time.monotonic() - t1
        assert await peer.rpc.call(method)
        print(f"\n{kind}: call failed {failed:.1f}s, link down {noticed:.1f}s after silence "
              f"(bound {3 * SCALED:.0f}s scaled); back {back:.1f}s after heal")
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await link.stop()
        await server.stop()


async def test_half_open_connect_fails_in_bounded_time_and_is_retried(monkeypatch):
    """A connect our kernel completes but nothing answers (TLS never starts): given up after the call timeout."""
    server = FakeExccd(FakeChain(SIMNET))
    await server.start()
    link = SilentLink(server.port)
    await link.start()
    link.half_open()
    peer = Exccd(SIMNET, "127.0.0.1", link.port, server.user, server.password, server.cert_pem,
                 timeout=CALL_TIMEOUT)
    runner = asyncio.create_task(peer.run())
    try:
        t0 = time.monotonic()
        while len(link.conns) < 2:  # the first attempt was given up and a second made
            assert time.monotonic() - t0 < CALL_TIMEOUT + wsrpc.RETRY_MAX + SLACK
            await asyncio.sleep(0.05)
        assert not peer.connected and "Timeout" in peer.rpc.last_error
        link.heal()
        assert await peer.wait_connected(CALL_TIMEOUT + wsrpc.RETRY_MAX + SLACK)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await link.stop()
        await server.stop()

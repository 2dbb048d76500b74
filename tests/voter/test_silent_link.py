"""The frontend's gRPC link to a voter against a silent network: noticed within the stated bounds by both ends,
and back by itself when the network is (docs/reliability.md, "Silent links: how long until each is noticed").

A silent network closes nothing: tests/helpers/silentlink.py stops every byte and keeps the sockets open. The
keepalive times are scaled down here (KEEPALIVE_MS for ping time and timeout, both ends, in the production
ratios); test_production_bounds holds the production values to the documented ones.
"""

import asyncio
import time

import pytest

from conftest import served_voter
from rpcclient import voterclient
from rpcclient.voterclient import VoterAddress, VoterClient, VoterUnavailable
from silentlink import SilentLink
from vspd.frontend.voterpool import VoterPool
from vspd.voter import service

KEEPALIVE_MS = 1000  # scaled: ping time and ping timeout of both ends
SLACK = 3.0  # scheduling on 2 shared cores
POLL = 1.0  # the pool's health interval here
HEALTH_DEADLINE = 5.0  # VoterClient.health's


def test_production_bounds():
    assert voterclient.SILENT_VOTER_BOUND == 30.0 and voterclient.CONNECT_TIMEOUT_MS == 10_000
    assert (service.KEEPALIVE_TIME_MS + service.KEEPALIVE_TIMEOUT_MS) / 1000 == 30.0
    # the voter never counts the frontend's keepalive pings as abuse (GOAWAY too_many_pings)
    assert service.MIN_CLIENT_PING_INTERVAL_MS <= voterclient.KEEPALIVE_TIME_MS / 2


@pytest.fixture
async def scaled_voter(tmp_path, monkeypatch):
    for module in (voterclient, service):
        monkeypatch.setattr(module, "KEEPALIVE_TIME_MS", KEEPALIVE_MS)
        monkeypatch.setattr(module, "KEEPALIVE_TIMEOUT_MS", KEEPALIVE_MS)
    monkeypatch.setattr(service, "MIN_CLIENT_PING_INTERVAL_MS", KEEPALIVE_MS // 2)
    monkeypatch.setattr(voterclient, "CONNECT_TIMEOUT_MS", 3 * KEEPALIVE_MS)
    async with served_voter(tmp_path) as (port, d, chain, wallet, _):
        link = SilentLink(port)
        await link.start()
        try:
            yield link, d
        finally:
            await link.stop()


def _pool(link, d) -> VoterPool:
    return VoterPool([VoterAddress("v1", "127.0.0.1", link.port)], (d / "ca.pem").read_bytes(),
                     (d / "frontend.pem").read_bytes(), (d / "frontend.key").read_bytes(), "simnet", 6, 1,
                     lambda: 200, interval=POLL)


async def _until(predicate, limit: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < limit, f"{what}: not within {limit:.1f} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def _closed(state: str) -> bool:
    return state in ("CLOSE_WAIT", "CLOSE", "CLOSED")


async def test_silent_voter_is_noticed_and_the_link_comes_back(scaled_voter):
    link, d = scaled_voter
    pool = _pool(link, d)
    state = pool.states[0]
    runner = asyncio.create_task(pool.run())
    try:
        await _until(lambda: state.healthy, 10, "healthy at first")
        first = link.conns[0]

        link.silence()
        t0 = time.monotonic()
        # the deadline, or (scaled keepalive being shorter) the ping timeout that drops the connection under it
        with pytest.raises(VoterUnavailable, match="DEADLINE_EXCEEDED|UNAVAILABLE: .*ping timeout"):
            await state.client.health(timeout=2)
        failed = time.monotonic() - t0
        assert failed < 2 + SLACK
        await _until(lambda: not state.healthy, POLL + HEALTH_DEADLINE + SLACK, "marked unhealthy")
        unhealthy = time.monotonic() - t0
        assert "or the network to it silent" in state.problems[0] or "ping timeout" in state.problems[0]
        # both ends drop the dead connection by their own keepalive pings; nothing was closed by the network
        bound = 2 * KEEPALIVE_MS / 1000 + SLACK
        await _until(lambda: _closed(first.states()[0]), bound, "the frontend dropped it")
        client_drop = time.monotonic() - t0
        await _until(lambda: _closed(first.states()[1]), bound, "the voter dropped it")
        server_drop = time.monotonic() - t0
        assert client_drop < bound and server_drop < bound

        await asyncio.sleep(1)
        link.heal(resume_old=False)  # the old connection stays silent for good (a NAT that forgot it)
        t1 = time.monotonic()
        back = await _until(lambda: state.healthy, POLL + HEALTH_DEADLINE + SLACK, "healthy after healing")
        await state.client.health(timeout=2)
        print(f"\ngRPC voter: Health failed {failed:.1f}s, pool unhealthy {unhealthy:.1f}s, frontend dropped the "
              f"connection {client_drop:.1f}s, voter dropped it {server_drop:.1f}s "
              f"after silence (bound {2 * KEEPALIVE_MS / 1000:.0f}s scaled); healthy {back:.1f}s after heal")
        assert time.monotonic() - t1 < POLL + HEALTH_DEADLINE + SLACK
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await pool.close()


async def test_keepalive_pings_on_an_idle_link_are_not_punished(scaled_voter):
    """No GOAWAY too_many_pings: one connection carries pings both ways for many keepalive periods, no calls."""
    link, d = scaled_voter
    c = VoterClient(VoterAddress("v1", "127.0.0.1", link.port), (d / "ca.pem").read_bytes(),
                    (d / "frontend.pem").read_bytes(), (d / "frontend.key").read_bytes())
    try:
        await c.health()
        await asyncio.sleep(8 * KEEPALIVE_MS / 1000)
        await c.health()
        assert len(link.conns) == 1 and link.conns[0].states() == ("ESTABLISHED", "ESTABLISHED")
    finally:
        await c.close()


async def test_half_open_connect_is_given_up_and_retried(scaled_voter):
    """A connect our kernel completes but nothing answers (TLS never starts) holds calls no longer than their
    deadline, and the channel gives it up within its connect timeout (CONNECT_TIMEOUT_MS) and dials again."""
    link, d = scaled_voter
    link.half_open()
    c = VoterClient(VoterAddress("v1", "127.0.0.1", link.port), (d / "ca.pem").read_bytes(),
                    (d / "frontend.pem").read_bytes(), (d / "frontend.key").read_bytes())
    try:
        t0 = time.monotonic()
        with pytest.raises(VoterUnavailable, match="DEADLINE_EXCEEDED"):
            await c.health(timeout=2)
        assert time.monotonic() - t0 < 2 + SLACK
        link.heal()
        t1 = time.monotonic()
        while True:
            try:
                await c.health(timeout=2)
                break
            except VoterUnavailable:
                assert time.monotonic() - t1 < voterclient.CONNECT_TIMEOUT_MS / 1000 + SLACK
        print(f"\ngRPC voter: back {time.monotonic() - t1:.1f}s after a half-open connect healed")
    finally:
        await c.close()

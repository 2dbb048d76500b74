"""The exccd websocket client against the protocol-level fake exccd."""

import asyncio
import contextlib

import pytest

from chainbuilders import Key, make_ticket
from fakes.exccd import FakeChain, FakeExccd
from rpcclient import Exccd, NodeUnavailable, RPCError
from rpcclient.errors import ERR_NO_TX_INFO
from vspd.chain.params import SIMNET


@contextlib.asynccontextmanager
async def running(client):
    task = asyncio.create_task(client.run())
    try:
        yield client
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def fake():
    f = FakeExccd(FakeChain(SIMNET))
    await f.start()
    yield f
    await f.stop()


def client_for(fake, **kw):
    return Exccd(SIMNET, "127.0.0.1", fake.port, fake.user, fake.password, fake.cert_pem, **kw)


async def test_connects_validates_and_answers_typed(fake):
    blocks = []

    async def on_block(header):
        blocks.append(header)

    async with running(client_for(fake, on_block=on_block)) as c:
        assert await c.wait_connected(5)
        assert str(c.version) == "7.0.0"
        t = make_ticket(Key(SIMNET), Key(SIMNET))
        txid = fake.chain.add(t)
        raw = await c.get_raw_transaction(txid)
        assert raw.confirmations == 0 and raw.hex == t.serialize().hex()
        with pytest.raises(RPCError) as e:
            await c.get_raw_transaction("00" * 32)
        assert e.value.code == ERR_NO_TX_INFO
        await fake.mine(2)
        for _ in range(100):
            if len(blocks) == 3:
                break
            await asyncio.sleep(0.02)
        # one catch-up call on connecting, then one per block with its 280-byte header
        assert blocks[0] == "" and len(blocks) == 3 and len(blocks[1]) == 560
        assert (await c.get_raw_transaction(txid)).confirmations == 2
        best = await c.best_block()
        assert best.height == 202 and best.sbits == 20_000_000 and best.pool_size == 64
        # a duplicate broadcast counts as success
        await c.send_raw_transaction(t.serialize().hex())


@pytest.mark.parametrize("change,reason", [
    (lambda ch: setattr(ch, "api_version", (6, 9, 0)), "not compatible"),
    (lambda ch: setattr(ch, "net_magic", 0x9917D7E1), "not simnet"),
    (lambda ch: setattr(ch, "txindex", False), "txindex"),
])
async def test_unfit_node_is_refused(fake, change, reason):
    change(fake.chain)
    c = client_for(fake)
    async with running(c):
        assert not await c.wait_connected(0.5)
        assert reason in c.rpc.last_error
        with pytest.raises(NodeUnavailable):
            await c.block_count()


async def test_wrong_password_and_wrong_cert_are_unavailable(fake):
    c = Exccd(SIMNET, "127.0.0.1", fake.port, "user", "wrong", fake.cert_pem)
    async with running(c):
        assert not await c.wait_connected(0.5)
    other = FakeExccd(FakeChain(SIMNET))
    c2 = Exccd(SIMNET, "127.0.0.1", fake.port, fake.user, fake.password, other.cert_pem)
    async with running(c2):
        assert not await c2.wait_connected(0.5)
        assert "CERTIFICATE_VERIFY_FAILED" in c2.rpc.last_error


async def test_reconnects_after_the_node_drops_and_returns(fake):
    c = client_for(fake)
    c.rpc.max_backoff = 0.2
    async with running(c):
        assert await c.wait_connected(5)
        await fake.drop_connections()
        for _ in range(50):
            if c.rpc.connects >= 2:
                break
            await asyncio.sleep(0.05)
        assert c.rpc.connects >= 2
        assert await c.block_count() == 200


async def test_request_timeout_is_unavailable(fake):
    c = client_for(fake, timeout=0.3)
    async with running(c):
        assert await c.wait_connected(5)
        fake.paused = True
        with pytest.raises(NodeUnavailable, match="in time"):
            await c.block_count()
        fake.paused = False


async def test_not_connected_is_unavailable():
    c = Exccd(SIMNET, "127.0.0.1", 1, "u", "p", FakeExccd(FakeChain(SIMNET)).cert_pem)
    with pytest.raises(NodeUnavailable, match="not connected"):
        await c.block_count()


async def test_library_tuning_lines_stay_out_of_the_info_log(fake, tmp_path):
    """aiorpcx reports each change of its request concurrency at INFO: noise at debug only."""
    from vspd.base import logs
    logs.setup("info", tmp_path)
    try:
        async with running(client_for(fake)) as c:
            assert await c.wait_connected(5)
            c.rpc._session.logger.info("changing outgoing request concurrency to 55 from 50")
            c.rpc.log.info("a line of ours")
    finally:
        logs.setup("info", None)
    text = (tmp_path / "vspd.log").read_text()
    assert "a line of ours" in text and "concurrency" not in text


async def test_stake_spends_are_votes_and_revocations_only(fake):
    """A block's stake tree also holds ticket purchases, whose inputs spend regular outputs (tree 0)."""
    chain = fake.chain
    voted, revoked = "aa" * 32, "bb" * 32
    chain.spend(voted, vote=True, height=chain.height)
    chain.spend(revoked, vote=False, height=chain.height)
    # a ticket purchase, which the real exccd lists in rawstx too: its input is output 0 of a split tx
    chain.add(make_ticket(Key(SIMNET), Key(SIMNET)), block=chain.height)
    async with running(client_for(fake)) as c:
        assert await c.wait_connected(5)
        spends = (await c.stake_block(chain.block_hash(chain.height))).spends
    assert {(s.ticket_hash, s.is_vote) for s in spends} == {(voted, True), (revoked, False)}


async def test_answers_that_move_with_blocks_are_asked_once_per_block(fake):
    c = client_for(fake)
    c.rpc.max_backoff = 0.2

    async def settled(generation: int) -> None:
        for _ in range(200):
            if c.memo.generation > generation:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the memo was not cleared")

    async with running(c):
        assert await c.wait_connected(5)
        t = make_ticket(Key(SIMNET), Key(SIMNET))
        txid = fake.chain.add(t)
        for _ in range(3):
            assert (await c.get_raw_transaction(txid)).confirmations == 0
            assert await c.exists_live_ticket(txid) is False
        assert fake.calls.count("getrawtransaction") == 1 and fake.calls.count("existslivetickets") == 1
        with pytest.raises(RPCError):  # refusals are not kept: the next asking asks again
            await c.get_raw_transaction("00" * 32)
        with pytest.raises(RPCError):
            await c.get_raw_transaction("00" * 32)
        assert fake.calls.count("getrawtransaction") == 3
        generation = c.memo.generation
        await fake.mine()  # a block: asked again
        await settled(generation)
        assert (await c.get_raw_transaction(txid)).confirmations == 1
        assert fake.calls.count("getrawtransaction") == 4
        generation = c.memo.generation
        await fake.drop_connections()  # a new connection (exccd may have restarted, its mempool gone): asked again
        await settled(generation)
        assert await c.wait_connected(5)
        assert (await c.get_raw_transaction(txid)).confirmations == 1
        assert fake.calls.count("getrawtransaction") == 5


async def test_an_answer_asked_before_a_block_and_received_after_is_not_kept(fake):
    c = client_for(fake)
    async with running(c):
        assert await c.wait_connected(5)
        txid = fake.chain.add(make_ticket(Key(SIMNET), Key(SIMNET)))
        ask = asyncio.create_task(c.get_raw_transaction(txid))
        await asyncio.sleep(0)  # asked; then a block is announced before the answer is taken
        c.memo.clear()
        assert (await ask).confirmations == 0
        assert c.memo.answers == {}


async def test_no_kept_answer_while_the_node_is_unreachable(fake):
    c = client_for(fake)
    c.rpc.max_backoff = 30
    async with running(c):
        assert await c.wait_connected(5)
        txid = fake.chain.add(make_ticket(Key(SIMNET), Key(SIMNET)))
        await c.get_raw_transaction(txid)
        await fake.stop()
        for _ in range(200):
            if not c.connected:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(NodeUnavailable):
            await c.get_raw_transaction(txid)


async def test_reconnects_within_seconds_of_a_long_outage(fake):
    """The node is gone long enough for a 30 s backoff cap to matter, then back: found again in ~2 s."""
    c = client_for(fake)
    async with running(c):
        assert await c.wait_connected(5)
        port = fake.port
        await fake.stop()
        await asyncio.sleep(9)  # attempts at 0.5, 1, 2, 2, 2 ... s: no wait grows past RETRY_MAX
        assert not c.connected
        await fake.start(port)
        back = asyncio.get_running_loop().time()
        assert await c.wait_connected(10)
        took = asyncio.get_running_loop().time() - back
        print(f"\nreconnected {took:.2f} s after the node returned")
        assert took < 5, took  # generous slack over RETRY_MAX (2 s) on a loaded machine

"""`vspd-simnet reorg`: the pure parts (what a vote votes on and with which bits, the forker's winners
notification, when every node is on the side branch, the depth bounds, the pause and busy files the mining loop
and the command share, the state folder's topology and the summary line)."""

import asyncio
import time

import pytest

from vspd.simnet import reorg
from vspd.simnet.reorg import NodeRef, ReorgError, Result, Topology

BLOCK = "000858d50f9b8d23fd8efd96e9a7b131566b1265d1569c912d354cf373d5a153"


def vote_script(block: str, height: int) -> str:
    return "6a24" + bytes.fromhex(block)[::-1].hex() + height.to_bytes(4, "little").hex()


def test_a_vote_names_the_block_it_votes_on():
    assert reorg.voted_block(vote_script(BLOCK, 154)) == (BLOCK, 154)
    tx = {"vout": [{"scriptPubKey": {"hex": vote_script(BLOCK, 154)}}, {}]}
    assert reorg.vote_target(tx) == BLOCK


def test_anything_else_is_no_vote():
    assert reorg.voted_block("76a914" + "00" * 20 + "88ac") is None
    assert reorg.voted_block("6a20" + "00" * 32) is None
    assert reorg.vote_target({"vout": []}) is None
    assert reorg.vote_target({}) is None
    assert reorg.vote_target({"vout": [{"scriptPubKey": {"hex": "zz" * 38}}]}) is None


def test_depth_bounds():
    assert reorg.check_depth(1, 200) == 199
    assert reorg.check_depth(reorg.MAX_DEPTH, 200) == 200 - reorg.MAX_DEPTH
    for bad in (0, -1, reorg.MAX_DEPTH + 1):
        with pytest.raises(ReorgError, match="depth must be"):
            reorg.check_depth(bad, 200)
    with pytest.raises(ReorgError, match="only 2 blocks"):
        reorg.check_depth(2, 2)


def test_done_only_when_every_node_has_the_side_tip_at_its_height():
    assert reorg.off_branch({"miner": "s", "v1": "s"}, "s") == []
    assert reorg.off_branch({"miner": "s", "v1": "m", "v2": None}, "s") == ["v1", "v2"]


def test_a_votes_bits_come_from_its_second_output():
    tx = {"vout": [{"scriptPubKey": {"hex": vote_script(BLOCK, 154)}}, {"scriptPubKey": {"hex": "6a0601000a000000"}}]}
    assert reorg.vote_bits(tx) == (1, "0a000000")
    short = {"vout": [{}, {"scriptPubKey": {"hex": "6a020100"}}]}
    assert reorg.vote_bits(short) == (1, "")
    assert reorg.vote_bits({"vout": [{}, {"scriptPubKey": {"hex": "6a0701000a000000"}}]}) is None  # wrong push
    assert reorg.vote_bits({"vout": [{}]}) is None
    assert reorg.vote_bits({}) is None


def test_the_winners_notification_lists_the_tickets_in_order():
    t = ["%064x" % i for i in range(5)]
    assert reorg.winners([BLOCK, 154, {str(i): t[i] for i in (3, 0, 4, 1, 2)}]) == (BLOCK, 154, t)
    assert reorg.winners([BLOCK, "154", t]) == (BLOCK, 154, t)
    assert reorg.winners([BLOCK]) is None
    assert reorg.winners([BLOCK, 154, {"x": t[0]}]) is None


def test_the_pause_holds_mining_until_its_deadline_only(tmp_path):
    now = time.time()
    assert reorg.pause_in_force(reorg.pause_text(now + 5, 1), now)
    assert not reorg.pause_in_force(reorg.pause_text(now - 1, 1), now)  # a killed reorg stops nothing for long
    assert not reorg.pause_in_force("garbage", now)
    assert not reorg.mining_paused(tmp_path)

    async def paused():
        async with reorg.Paused(tmp_path, 30):
            assert reorg.mining_paused(tmp_path)
            with reorg.mining_busy(tmp_path) as free:
                assert not free  # the loop mines nothing
    asyncio.run(paused())
    assert not reorg.mining_paused(tmp_path)
    with reorg.mining_busy(tmp_path) as free:
        assert free and (tmp_path / reorg.BUSY).exists()
    assert not (tmp_path / reorg.BUSY).exists()


def test_the_pause_waits_for_the_block_in_flight_and_no_longer_than_told(tmp_path):
    async def block_in_flight():
        with reorg.mining_busy(tmp_path) as free:
            assert free
            await asyncio.sleep(0.3)

    async def both():
        miner = asyncio.create_task(block_in_flight())
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        async with reorg.Paused(tmp_path, 30):
            assert miner.done() and time.monotonic() - t0 >= 0.2
    asyncio.run(both())

    async def stuck():
        with reorg.mining_busy(tmp_path):
            with pytest.raises(ReorgError, match="mining one block"):
                async with reorg.Paused(tmp_path, 30, wait=0.2):
                    pass
        assert not reorg.mining_paused(tmp_path)  # the pause is withdrawn
    asyncio.run(stuck())


def test_the_topology_round_trips_and_is_private(tmp_path):
    t = Topology("/bin/exccd", "SsX", (NodeRef("miner", "127.0.0.1", 1, "u", "p", "/c"),
                                        NodeRef("v1-exccd", "127.0.0.1", 2, "u2", "p2", "/c2")),
                 (NodeRef("keeper", "127.0.0.1", 3, "u3", "p3", "/c3"),))
    reorg.write_topology(tmp_path, t)
    assert reorg.read_topology(tmp_path) == t
    assert (tmp_path / reorg.TOPOLOGY).stat().st_mode & 0o777 == 0o600
    with pytest.raises(ReorgError, match="missing"):
        reorg.read_topology(tmp_path / "nothing")
    with pytest.raises(ReorgError, match="unreadable"):
        reorg.parse_topology("{}")
    older = '{"exccd": "/bin/exccd", "miningaddr": "SsX", "nodes": []}'  # before the wallets were written
    with pytest.raises(ReorgError, match="restart the network"):
        reorg.parse_topology(older)


def test_the_summary_is_one_line_with_everything_asked():
    r = Result(old_tip=(160, "a" * 64), fork=(158, "b" * 64), new_tip=(161, "c" * 64), orphaned=2, side_blocks=3,
               side_votes=15, tip_votes=5, seconds=12.34, nodes=["miner", "v1-exccd"])
    line = reorg.summary(r)
    assert "\n" not in line
    for part in ("old tip 160 " + "a" * 64, "fork point 158 " + "b" * 64, "new tip 161 " + "c" * 64, "depth 2",
                 "12.3 s", "2 nodes agree", "15 votes", "holds 5 votes on the new tip"):
        assert part in line


def test_the_subcommand_refuses_a_bad_depth_at_once(tmp_path, capsys):
    from vspd.simnet.main import main
    assert main(["reorg", "--root", str(tmp_path), "--depth", "9"]) == 1
    assert "depth must be" in capsys.readouterr().err
    assert main(["reorg", "--root", str(tmp_path), "--depth", "2"]) == 1
    assert "missing" in capsys.readouterr().err

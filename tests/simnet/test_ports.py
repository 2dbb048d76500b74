"""Ports for the simnet's children: never from the ephemeral range, never twice, never a busy one; and a
child that finds its port taken is started again on fresh ports (a CI run lost exccd to a taken port)."""

import asyncio
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from vspd.simnet import ports
from vspd.simnet.children import ChildError


def outside_default_pool() -> range:
    return ports.pool_outside(ports.ephemeral_range())


def test_the_ephemeral_range_is_read_and_defaults_to_linux_s(tmp_path):
    f = tmp_path / "range"
    f.write_text("40000\t50000\n")
    assert ports.ephemeral_range(f) == (40000, 50000)
    assert ports.ephemeral_range(tmp_path / "missing") == (32768, 60999)
    f.write_text("garbage\n")
    assert ports.ephemeral_range(f) == (32768, 60999)


def test_the_pool_lies_outside_the_range_whatever_the_range():
    assert ports.pool_outside((32768, 60999)) == range(20000, 32768)
    assert ports.pool_outside((15000, 60999)) == range(1024, 15000)  # no room above 20000: lower
    assert ports.pool_outside((1024, 60999)) == range(61000, 65536)  # none below: above
    with pytest.raises(RuntimeError):
        ports.pool_outside((1024, 65000))


def test_no_port_comes_from_the_ephemeral_range_and_none_twice():
    """Many draws from the shared allocator, as a whole network's children make."""
    lo, hi = ports.ephemeral_range()
    got = [ports.free_port() for _ in range(300)]
    assert not [p for p in got if lo <= p <= hi]
    assert len(set(got)) == len(got)
    assert all(1024 <= p <= 65535 for p in got)


def test_a_small_pool_is_used_up_rather_than_repeated():
    pool = outside_default_pool()
    a = ports.PortAllocator(pool=range(pool.start + 100, pool.start + 110), offset=3)
    got = []
    with pytest.raises(RuntimeError, match="no free port left"):
        while True:
            got.append(a.take())
    assert len(got) == len(set(got)) and len(got) >= 5  # each at most once, busy ones skipped


def test_concurrent_runs_start_at_different_places():
    starts = {ports.PortAllocator().next for _ in range(20)}
    assert len(starts) > 10


@pytest.mark.parametrize("reuseaddr", [0, 1])  # Go servers listen with SO_REUSEADDR on
def test_a_port_someone_listens_on_is_skipped(reuseaddr):
    pool = outside_default_pool()
    for offset in range(0, len(pool), 97):
        a = ports.PortAllocator(offset=offset)
        busy = a.peek()
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, reuseaddr)
            try:
                s.bind((ports.HOST, busy))
            except OSError:
                continue  # taken already: try another spot
            s.listen()
            assert not ports.is_free(busy)
            got = a.take()
            assert got != busy and got not in range(*ports.ephemeral_range())
            return
    pytest.fail("found no port to occupy")


# -- a child whose port was taken is started again --------------------------------

def exited_child(status: int | None = 1) -> SimpleNamespace:
    return SimpleNamespace(proc=SimpleNamespace(returncode=status))


def test_the_retry_decision_reads_only_this_start_s_log(tmp_path):
    log = tmp_path / "exccd.log"
    log.write_text("[ERR] RPCS: Can't listen on 127.0.0.1:46253: listen tcp 127.0.0.1:46253: "
                   "bind: address already in use\n")
    mark = ports.log_size(log)
    assert ports.port_was_taken(exited_child(), log, 0)
    assert not ports.port_was_taken(exited_child(), log, mark)  # an earlier start's line
    with open(log, "a") as f:
        f.write("[CRT] EXCC: Unable to start server: no usable rpc listen addresses\n")
    assert ports.port_was_taken(exited_child(), log, mark)
    assert not ports.port_was_taken(exited_child(None), log, mark)  # still running: not our case
    assert not ports.port_was_taken(None, log, mark)
    other = tmp_path / "vspd.log"
    other.write_text("vspd: option grpclisten: cannot listen on 127.0.0.1:23456: Address already in use\n")
    assert ports.port_was_taken(exited_child(), other, 0)
    other.write_text("vspd: the database is locked\n")
    assert not ports.port_was_taken(exited_child(), other, 0)


class FakeChild:
    """Starts as many times as asked; the first `fail` starts log a taken port and exit."""

    def __init__(self, log: Path, fail: int, line: str = "bind: address already in use"):
        self.log, self.fail, self.line = log, fail, line
        self.starts, self.moves, self.child = 0, 0, None

    async def start(self) -> None:
        self.starts += 1
        if self.starts <= self.fail:
            with open(self.log, "a") as f:
                f.write(f"start {self.starts}: {self.line}\n")
            self.child = exited_child()
            raise ChildError("exited with status 1")
        self.child = exited_child(None)

    async def move(self) -> bool:
        self.moves += 1
        return True

    def run(self, tries: int = 3) -> None:
        asyncio.run(ports.start_with_fresh_ports(self.start, lambda: self.child, self.log, self.move, tries))


def test_a_taken_port_means_fresh_ports_and_another_start(tmp_path):
    c = FakeChild(tmp_path / "log", fail=2)
    c.run()
    assert (c.starts, c.moves) == (3, 2)


def test_the_tries_are_bounded(tmp_path):
    c = FakeChild(tmp_path / "log", fail=10)
    with pytest.raises(ChildError):
        c.run(tries=3)
    assert (c.starts, c.moves) == (3, 2)


def test_another_failure_is_not_retried(tmp_path):
    c = FakeChild(tmp_path / "log", fail=1, line="wallet.db: permission denied")
    with pytest.raises(ChildError):
        c.run()
    assert (c.starts, c.moves) == (1, 0)


def test_ports_that_may_not_move_are_not_retried(tmp_path):
    c = FakeChild(tmp_path / "log", fail=1)

    async def pinned() -> bool:
        c.moves += 1
        return False
    c.move = pinned
    with pytest.raises(ChildError):
        c.run()
    assert c.starts == 1


def test_a_daemon_moves_its_ports_only_before_its_first_start(tmp_path):
    """After the first start others hold its address (a voter's conf, a peer's --connect): it stays."""
    from vspd.simnet.nodes import ExccdNode, WalletNode

    node = ExccdNode("n", tmp_path / "exccd", tmp_path / "n", tmp_path)
    rpc, p2p = node.rpc_port, node.p2p_port
    assert asyncio.run(node.move_ports())
    assert node.rpc_port not in (rpc, p2p) and node.p2p_port not in (rpc, p2p)
    assert node.rpc.url == f"https://127.0.0.1:{node.rpc_port}/"
    node.started = True
    assert not asyncio.run(node.move_ports())
    kept = WalletNode("w", tmp_path / "w", tmp_path / "w", tmp_path, node, seed="", passphrase="", rpc_port=21000)
    assert not asyncio.run(kept.move_ports()) and kept.rpc_port == 21000

"""The soak's own parts: the schedule from a seed, the invariant checks on crafted facts, the last line, and
the staker-wallet watch on fakes."""

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vspd.simnet.soak import run as soakmod
from vspd.simnet.soak.checks import (Facts, FaultRecord, Record, Sample, Spend, Ticket, block_spends, chain_spends,
    counts, follow, height_at, last_line, lost, record_vs_chain, reorg_row, slope_mb_per_hour, table, violations)
from vspd.simnet.soak.faults import fill, mount_tmpfs, unmount
from vspd.simnet.soak.plan import KINDS, REORG_DEPTHS, VOTER_SIDE, Planned, schedule, voter_side_overlaps

VOTERS = ["v1", "v2", "v3"]


def test_the_same_seed_replays_the_same_schedule_and_another_seed_does_not():
    assert schedule(7, 40, VOTERS) == schedule(7, 40, VOTERS)
    assert schedule(7, 40, VOTERS) != schedule(8, 40, VOTERS)
    assert schedule(7, 40, VOTERS, short=True) == schedule(7, 40, VOTERS, short=True)


@pytest.mark.parametrize("seed", range(25))
def test_every_kind_comes_in_the_first_round_and_targets_are_sound(seed):
    plan = schedule(seed, 30, VOTERS, short=seed % 2 == 0)
    assert {p.kind for p in plan[:len(KINDS)]} == set(KINDS)
    for p in plan:
        assert (p.target in VOTERS) == (p.kind in VOTER_SIDE), p
        assert p.down >= 0 and p.gap > 0
        if p.kind.endswith("hang"):
            assert 10 <= p.down <= 60


@pytest.mark.parametrize("seed", range(25))
def test_a_reorganisation_comes_in_the_first_round_with_a_depth_of_1_to_3(seed):
    plan = schedule(seed, 60, VOTERS, short=seed % 2 == 1)
    first = [p for p in plan[:len(KINDS)] if p.kind == "reorg"]
    assert len(first) == 1 and first[0].target == "chain" and first[0].down == 0
    assert REORG_DEPTHS == (1, 3)
    for p in plan:
        assert (1 <= p.depth <= 3) if p.kind == "reorg" else p.depth == 0, p
    assert schedule(seed, 60, VOTERS) == schedule(seed, 60, VOTERS)  # depths too come from the seed


def test_the_depths_drawn_cover_1_to_3():
    assert {p.depth for s in range(40) for p in schedule(s, 60, VOTERS) if p.kind == "reorg"} == {1, 2, 3}


@pytest.mark.parametrize("seed", range(25))
def test_no_two_voter_side_parts_are_ever_down_at_once(seed):
    assert voter_side_overlaps(schedule(seed, 200, VOTERS), repair=30.0) == []


def test_the_overlap_check_itself_sees_an_overlap():
    a, b = Planned("voter-kill", "v1", 10, 0.0), Planned("wallet-hang", "v2", 10, 5)
    assert voter_side_overlaps([a, b], repair=1.0) == []  # one after the other
    assert voter_side_overlaps([Planned("voter-kill", "v1", 10, -8.0), b], repair=1.0) == [
        (Planned("voter-kill", "v1", 10, -8.0), b)]  # a negative gap starts b while a is down


def facts(*tickets: Ticket, faults=(), receipts=()) -> Facts:
    f = Facts(seconds=600, blocks=500, bought=len(tickets))
    f.tickets = {t.hash: t for t in tickets}
    f.faults = list(faults)
    f.fee_receipts = list(receipts)
    return f


def t(h: str, **kw) -> Ticket:
    base = dict(wallet="staker", fate="voted", vsp_fee="confirmed", fee_address="addr" + h, fee_txid="fee" + h,
                wallet_paid=True)
    return Ticket(h, **{**base, **kw})


def test_a_clean_run_has_no_violation_and_counts_what_was_called():
    f = facts(t("1"), t("2"), t("3", fate="live"), t("4", fate="expired"), t("5", vsp_fee="", wallet_paid=False,
                                                                         fate="missed", fee_address="", fee_txid=""),
              receipts=[("fee1", "addr1"), ("fee2", "addr2")],
              faults=[FaultRecord("voter-kill", "v1", 10, 20, detected_at=12, healthy_at=25)])
    assert violations(f, VOTERS) == []
    c = counts(f)
    assert (c["called"], c["voted"], c["missed"], c["expired"], c["paid"], c["unpaid"]) == (2, 2, 0, 1, 4, 1)


def test_a_miss_with_a_voter_up_is_a_violation_naming_the_faults_then():
    f = facts(t("1", fate="missed", called_at=15.0),
              faults=[FaultRecord("wallet-hang", "v2", 10, 30, detected_at=11, healthy_at=33)])
    (v,) = violations(f, VOTERS)
    assert v.startswith("a: missed 1") and "voters down then: v2" in v and "wallet-hang@v2" in v


def test_a_miss_names_the_faults_of_the_ticket_s_last_blocks_not_only_those_on_at_the_call():
    # soak-run3: a wallet hang held the block pass 10 s; the tickets it delayed were called after it ended
    spans = (("voter-kill", "v1", 0, 5), ("wallet-hang", "v2", 10, 25), ("frontend-kill", "frontend", 45, 50))
    f = facts(t("1", fate="missed", called_at=40.0),  # 600 s / 500 blocks: the span is 18 x 1.2 + 5 s
              faults=[FaultRecord(k, who, a, b, detected_at=a + 1, healthy_at=b + 1) for k, who, a, b in spans])
    (v,) = violations(f, VOTERS)
    assert "voters down then: none; faults then: none" in v
    assert v.endswith("faults in its last 27 s: wallet-hang@v2 (10-25 s)"), v


def test_a_miss_whose_fee_came_too_late_for_the_fee_rule_is_counted_apart_and_explained():
    # soak-integ3: a wallet refused during replica-down paid on its own retry 37 s later, 3 blocks before
    # the revocation; 6 + 6 confirmations cannot fit, so no VSP could have voted it
    late = t("1", fate="missed", called_at=50.0, paid_height=307, spent_height=310,
             refused="18:50:58.900 vsp is temporarily not accepting tickets: the backup replica is unreachable")
    edge = t("2", fate="missed", called_at=50.0, paid_height=301, spent_height=310)  # imported at 307: in time
    f = facts(late, edge, t("3"))
    (v,) = violations(f, VOTERS)
    assert v.startswith("a: missed 2")
    c = counts(f)
    assert (c["called"], c["voted"], c["missed"], c["late"]) == (2, 1, 1, 1)
    lines, _ = table(f, VOTERS)
    (evidence,) = [x for x in lines if x.strip().startswith("1:")]
    assert "acknowledged at height 307, revoked at 310" in evidence and "backup replica" in evidence
    assert lines[-1] == last_line(2, 1, 1, 0, 1)
    edge.paid_height = 302  # its 6th fee confirmation at 308, the block that chose it: too late
    assert violations(f, VOTERS) == [] and counts(f)["late"] == 2


def test_a_miss_our_voting_wallets_voted_counts_as_voted_not_mined_and_is_no_violation():
    # soak seed 7: the miner (the frontend's exccd) restarted as the vote went out, and its peers saw the
    # next block 2 s late: the votes were cast, and blocks were built without them
    cast = t("1", fate="missed", spent_height=299, vote_cast="v1 at 20:25:37.928 on block 298")
    f = facts(cast, t("2", fate="missed", spent_height=299), t("3"))
    (v,) = violations(f, VOTERS)
    assert v.startswith("a: missed 2")
    c = counts(f)
    assert (c["called"], c["voted"], c["mined"], c["unmined"], c["missed"]) == (3, 2, 1, 1, 1)
    lines, _ = table(f, VOTERS)
    assert any("1: revoked at 299; cast by v1 at 20:25:37.928 on block 298" in x for x in lines)
    assert lines[-1] == last_line(3, 2, 1, 0, 1)


def test_a_wallet_log_time_maps_to_the_height_the_chain_had_then():
    at = time.mktime(time.strptime("2026-12-03 18:51:35", "%Y-%m-%d %H:%M:%S"))
    blocks = [(at - 0.3, 307), (at + 0.2, 308), (at + 3.1, 309)]
    assert height_at(blocks, "2026-12-03 18:51:35.100") == 307
    assert height_at(blocks, "2026-12-03 18:51:35.250") == 308
    assert height_at(blocks, "2026-12-03 18:51:30.000") is None
    assert height_at(blocks, "garbage") is None


def test_a_miss_while_every_voter_was_down_is_explained():
    faults = [FaultRecord("voter-kill", n, 10, 30, detected_at=11, healthy_at=33) for n in VOTERS]
    assert violations(facts(t("1", fate="missed", called_at=20.0), faults=faults), VOTERS) == []


def test_a_fee_the_wallet_paid_and_the_vsp_forgot_is_lost():
    f = facts(t("1", vsp_fee="", fee_txid="", fee_address=""), t("2"),
              receipts=[("fee2", "addr2"), ("stray", "addrX")])
    found = lost(f)
    assert len(found) == 2 and "1 paid in the wallet's view" in found[0] and "stray" in found[1]
    assert table(f, VOTERS)[0][-1] == last_line(2, 2, 0, 2, 2)


def test_duplicates_of_fee_addresses_and_fee_transactions_and_wrong_vote_bits_are_violations():
    f = facts(t("1", fee_address="same"), t("2", fee_address="same", fee_txid="fee1"),
              t("3", choices_set={}, votebits=0x0005, expected_votebits=0x0001),
              t("4", choices_set={}, votebits=0x0000, expected_votebits=0x0001),  # bit 0 is the block's, not ours
              receipts=[("fee1", "same"), ("fee9", "same")])
    found = violations(f, VOTERS)
    assert any("fee address same given to 2" in v for v in found)
    assert any("fee transaction fee1 recorded for 2" in v for v in found)
    assert any("fee address same paid 2 times" in v for v in found)
    assert [v for v in found if "voted bits" in v] == ["c: 3 voted bits 0x0005, choices set {} give 0x0001"]


def test_status_must_see_each_fault_and_come_back():
    faults = [FaultRecord("disk-full", "frontend", 100, 120),  # never seen
              FaultRecord("voter-hang", "v1", 200, 230, detected_at=250),  # seen late, never healthy again
              FaultRecord("frontend-kill", "frontend", 300, 310, detected_at=301, healthy_at=311)]
    found = violations(facts(faults=faults), VOTERS)
    assert found == ["d: /status never reported disk-full on frontend (started at 100 s)",
                     "d: /status did not return to 200 after disk-full on frontend (ended at 120 s)",
                     "d: /status reported voter-hang on v1 50 s after it began",
                     "d: /status did not return to 200 after voter-hang on v1 (ended at 230 s)"]


def test_rss_slope_descriptors_and_log_rate_are_bounded():
    f = facts()
    f.seconds, f.warmup = 3600, 100
    f.samples = {"frontend": [Sample(s, 100_000 + s * 100, 40) for s in range(100, 3600, 10)],  # ~350 MB/h
                 "v1-vspd": [Sample(s, 80_000, 2000) for s in range(100, 3600, 10)]}
    f.log_bytes = {"frontend": 1_000_000, "v1-vspd": 200_000_000}
    assert slope_mb_per_hour(f.samples["frontend"], 100) == pytest.approx(100 * 3600 / 1024)
    assert slope_mb_per_hour(f.samples["frontend"][:30], 100) is None  # too short a span to judge
    found = violations(f, VOTERS)
    assert any(v.startswith("e: frontend RSS grows 352 MB/h") for v in found)
    assert "e: v1-vspd held 2000 descriptors (bound 1000)" in found
    assert any(v.startswith("e: v1-vspd logs 200.0 MB/h") for v in found)
    assert len(found) == 3


def test_the_last_line_is_exactly_as_the_issue_says():
    lines, n = table(facts(t("1"), t("2", fate="missed", called_at=5.0)), VOTERS)
    assert n == 1
    assert lines[-1] == "soak: 2 called, 1 voted, 1 missed, 0 lost, 1 violations"
    assert re.fullmatch(r"soak: \d+ called, \d+ voted, \d+ missed, \d+ lost, \d+ violations", lines[-1])


A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)
VOTE_A, VOTE_A2, REV_B = ("1" * 64, "2" * 64, "3" * 64)


def vote(ticket: str, txid: str) -> dict:
    return {"txid": txid, "vin": [{"stakebase": "00"}, {"txid": ticket, "vout": 0, "tree": 1}]}


def revocation(ticket: str, txid: str) -> dict:
    return {"txid": txid, "vin": [{"txid": ticket, "vout": 0, "tree": 1}]}


def test_the_spends_of_tickets_are_read_from_the_blocks_in_one_pass():
    ticket_buy = {"txid": "9" * 64, "vin": [{"txid": "8" * 64, "vout": 2, "tree": 0}]}  # spends no ticket
    blocks = [(100, {"rawstx": [ticket_buy, vote(A, VOTE_A), vote("e" * 64, "4" * 64)]}),
              (101, {"rawstx": [revocation(B, REV_B)], "rawtx": [{"txid": "5" * 64}]})]
    assert block_spends(blocks[0][1]) == [(A, VOTE_A, True), ("e" * 64, "4" * 64, True)]
    assert chain_spends(blocks, {A, B, C}) == {A: Spend(VOTE_A, 100, True), B: Spend(REV_B, 101, False)}


CHAIN = {A: Spend(VOTE_A, 100, True), B: Spend(REV_B, 101, False)}


def test_a_record_equal_to_the_main_chain_has_no_violation():
    records = {A: Record("voted", VOTE_A, 100), B: Record("missed", REV_B, 101), C: Record("")}
    assert record_vs_chain(records, CHAIN, at=120) == []
    assert record_vs_chain({**records, B: Record("expired", REV_B, 101)}, CHAIN, at=120, expired={B}) == []


def test_a_record_keeping_an_orphaned_vote_is_one_violation_naming_it():
    # A's vote in block 100 left the main chain; the new branch holds its second vote at 103
    chain = {**CHAIN, A: Spend(VOTE_A2, 103, True)}
    records = {A: Record("voted", VOTE_A, 100), B: Record("missed", REV_B, 101)}
    (v,) = record_vs_chain(records, chain, at=120)
    assert v.startswith(f"f: {A}:") and f"says voted by {VOTE_A} at 100" in v and f"voted by {VOTE_A2} at 103" in v


def test_a_ticket_live_on_chain_but_voted_in_the_record_is_a_violation():
    (v,) = record_vs_chain({A: Record("voted", VOTE_A, 100), C: Record("voted", "6" * 64, 104)}, CHAIN, at=120)
    assert v.startswith(f"f: {C}:") and "says voted by 666" in v and "(to height 120) says live" in v


def test_other_mismatches_with_the_chain_are_violations_too():
    records = {A: Record(""), B: Record("expired", REV_B, 101), D: Record("voted", VOTE_A, 99)}
    found = record_vs_chain(records, {**CHAIN, D: Spend(VOTE_A, 100, True)}, at=120)
    assert [v[:68] for v in found] == [f"f: {h}:" for h in (A, B, D)]  # live vs voted; expired vs missed; height
    assert "says live; the main chain (to height 120) says voted" in found[0]


def test_a_spend_above_the_block_the_record_had_read_is_not_held_against_it():
    assert record_vs_chain({A: Record("")}, CHAIN, at=99) == []


def test_a_vote_orphaned_then_cast_again_is_voted_and_one_never_called_again_is_live():
    ended = ("voted", "missed", "revoked", "expired")
    again, never = Ticket(A, "staker", fate="live"), Ticket(B, "staker", fate="live")
    for tk in (again, never):
        assert follow(tk, "voted", 10.0, ended) and tk.called_at == 10.0
        assert not follow(tk, "live", 12.0, ended)  # its vote's block left the main chain
    assert follow(again, "voted", 40.0, ended) and (again.fate, again.called_at) == ("voted", 40.0)
    for tk in (again, never):
        tk.vsp_fee, tk.wallet_paid = "confirmed", True
    f = facts(again, never)
    c = counts(f)
    assert (c["called"], c["voted"], c["missed"]) == (1, 1, 0) and never.fate == "live"
    assert violations(f, VOTERS) == []
    miss = Ticket(C, "staker", fate="missed")  # a miss later reported revoked stays missed
    assert not follow(miss, "revoked", 50.0, ended) and miss.fate == "missed"


def test_a_reorganisation_needs_no_status_report_but_a_healthy_status_after_and_is_counted():
    ok = FaultRecord("reorg", "chain", 10, 16, healthy_at=18, depth=2, orphaned_votes=[A, B], orphaned_fees=[C])
    f = facts(t("1"), faults=[ok, FaultRecord("reorg", "chain", 30, 35, healthy_at=37, depth=1)])
    assert violations(f, VOTERS) == []
    lines, n = table(f, VOTERS)
    assert n == 0 and "reorganisations     2   (depths 2, 1; 2 VSP votes and 1 VSP fees orphaned)" in lines
    assert lines[-1] == last_line(1, 1, 0, 0, 0)
    f.faults.append(FaultRecord("reorg", "chain", 50, 55))  # failed, and /status never 200 again
    assert [v[:40] for v in violations(f, VOTERS)] == ["d: /status did not return to 200 after r"]
    assert reorg_row(f.faults).endswith("; 1 could not be made)")


def test_a_record_mismatch_found_at_the_end_is_a_violation_in_the_table():
    f = facts(t("1"))
    f.chain_mismatches = record_vs_chain({C: Record("voted", VOTE_A, 100)}, {}, at=120)
    lines, n = table(f, VOTERS)
    assert n == 1 and lines[-1] == last_line(1, 1, 0, 0, 1) and any(x.startswith(f"  f: {C}") for x in lines)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_the_disk_filler_fills_to_enospc_without_raising_and_its_removal_frees_the_space(tmp_path):
    # the first filler wrote through a buffer whose flush at close raised ENOSPC, so the soak never removed it
    mount_tmpfs(tmp_path / "small", "2m")
    try:
        filler = tmp_path / "small" / "filler"
        fill(filler)
        assert shutil.disk_usage(tmp_path / "small").free == 0
        with pytest.raises(OSError):
            (tmp_path / "small" / "one-more").write_bytes(b"x" * 4096)
        filler.unlink()
        assert shutil.disk_usage(tmp_path / "small").free > 1_000_000
    finally:
        unmount(tmp_path / "small")


class FakeStakerRPC:
    """A staker wallet's RPC: hung (every call times out) until it is started again, then at the tip."""

    def __init__(self, node: "FakeStaker"):
        self.node = node

    async def call(self, method: str, *params, timeout=None):
        assert method == "getbestblock"
        if self.node.hung:
            raise asyncio.TimeoutError()
        return {"height": self.node.tip - self.node.behind}


class FakeChild:
    def __init__(self):
        self.signals: list[int] = []

    async def stop(self, timeout: float = 30.0, sig: int = signal.SIGTERM):
        self.signals.append(sig)


class FakeStaker:
    def __init__(self, hung: bool, behind: int = 0):
        self.name, self.log_path = "staker2", Path("/nonexistent/staker2.log")
        self.hung, self.behind, self.tip, self.starts = hung, behind, 500, 0
        self.child, self.rpc = FakeChild(), FakeStakerRPC(self)

    async def start(self):
        self.starts += 1
        self.hung = False
        self.behind = 0


class FakeChain:
    def __init__(self, staker: FakeStaker, miner_up: bool = True):
        self.staker, self.miner_up = staker, miner_up

    async def height(self) -> int:
        if not self.miner_up:
            raise OSError("connection refused")
        return self.staker.tip


async def watch(staker: FakeStaker, seconds: float, miner_up: bool = True) -> Facts:
    """Soak.staker_watch over `seconds` of a fake clock (a poll every 5 s), with fakes around it."""
    soak = object.__new__(soakmod.Soak)
    now = [0.0]
    soak.clock = lambda: now[0]
    soak.chain, soak.facts = FakeChain(staker, miner_up), Facts()
    soak.apart = {staker.name: asyncio.Lock()}
    real_sleep = asyncio.sleep

    async def sleep(dt):
        now[0] += soakmod.STAKER_POLL
        if now[0] > seconds:
            raise asyncio.CancelledError()
        await real_sleep(0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(soakmod.asyncio, "sleep", sleep)
        with contextlib.suppress(asyncio.CancelledError):
            await soak.staker_watch(staker)
    return soak.facts


async def test_a_staker_wallet_hung_for_a_minute_is_dumped_and_restarted_once():
    staker = FakeStaker(hung=True)
    facts = await watch(staker, 300)
    assert staker.starts == 1 and staker.child.signals == [signal.SIGQUIT]
    assert len(facts.staker_restarts) == 1 and "staker2" in facts.staker_restarts[0]
    assert not facts.extra  # the load's own wallet, not a violation of the VSP's
    assert "staker wallets restarted 1" in "\n".join(table(facts, ["v1", "v2", "v3"])[0])


async def test_a_staker_wallet_left_behind_by_its_node_is_restarted_too():
    staker = FakeStaker(hung=False, behind=40)  # answers, but its sync is stuck (address discovery deadlock)
    facts = await watch(staker, 300)
    assert staker.starts == 1 and len(facts.staker_restarts) == 1


async def test_a_staker_briefly_behind_or_a_miner_restarting_is_left_alone():
    staker = FakeStaker(hung=True)
    facts = await watch(staker, soakmod.STAKER_HUNG_AFTER - 5)
    assert staker.starts == 0 and not facts.staker_restarts
    facts = await watch(staker, 600, miner_up=False)
    assert staker.starts == 0 and not facts.staker_restarts
    healthy = FakeStaker(hung=False, behind=2)
    facts = await watch(healthy, 600)
    assert healthy.starts == 0 and not facts.staker_restarts


def test_a_process_left_behind_is_named_without_its_passwords(tmp_path):
    root = tmp_path / "root"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "--pass=s3cret-pass",
                              "--password=s3cret", "--exccdpassword=s3cret2", "--rpcpass=s3", f"--appdata={root}/w"])
    try:
        deadline = time.monotonic() + 10
        found = []
        while not found and time.monotonic() < deadline:
            found = [(pid, cmd) for pid, cmd in soakmod.leftovers(root) if pid == child.pid]
            time.sleep(0.05)
        assert found, "the child naming the root was not found"
        cmd = found[0][1]
        assert "s3" not in cmd and cmd.count("<redacted>") == 4  # masked before the line is cut to 160
    finally:
        child.kill()
        child.wait()

"""The SQLite store: migrations, tickets, history, xpubs, sealing at rest."""

import asyncio
import os
import sqlite3

import pytest

from conftest import SIMNET_XPUB, make_store
from vspd.store import SchemaError, Store, StoreError, Ticket, WriteFailed
from vspd.store.db import latest_version, migrations
from vspd.store.models import AltSignAddr
from vspd.base.sealing import SealError, Sealer


def ticket(h="ab" * 32, **kw):
    return Ticket(hash=h, commitment_address="Ss" + "x" * 33, fee_xpub_id=0, fee_address_index=0,
                  fee_address="", fee_amount=10_000_000, fee_expiration=4, **kw)


def derive(xpub, last):
    return last + 1, f"addr{last + 1}"


async def test_migrations_set_user_version_and_wal(tmp_path):
    store = await make_store(tmp_path / "v.db")
    await store.close()
    con = sqlite3.connect(tmp_path / "v.db")
    assert con.execute("PRAGMA user_version").fetchone()[0] == latest_version() == len(migrations())
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


async def test_newer_schema_is_refused_and_left_alone(tmp_path):
    store = await make_store(tmp_path / "v.db")
    await store.close()
    con = sqlite3.connect(tmp_path / "v.db")
    con.execute(f"PRAGMA user_version = {latest_version() + 1}")
    con.commit()
    con.close()
    with pytest.raises(SchemaError, match="newer than this vspd supports"):
        await Store.open(tmp_path / "v.db", Sealer(os.urandom(32)))
    con = sqlite3.connect(tmp_path / "v.db")
    assert con.execute("PRAGMA user_version").fetchone()[0] == latest_version() + 1
    con.close()


async def test_missing_database_is_clear(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        await Store.open(tmp_path / "none.db", Sealer(os.urandom(32)))


async def test_ticket_roundtrip_duplicate_update_delete(tmp_path):
    store = await make_store(tmp_path / "v.db")
    t = ticket(vote_choices={"AgendaID": "yes"}, tspend_policy={"a" * 64: "no"},
               treasury_policy={"b" * 66: "abstain"}, fee_tx_status="broadcast", voting_wif="cVsecretwif")
    await store.insert_new_ticket(t, derive)
    got = await store.get_ticket(t.hash)
    assert got == t and got.fee_address == "addr1"
    with pytest.raises(StoreError):
        await store.insert_new_ticket(ticket(), derive)
    assert (await store.current_xpub()).last_index == 1  # the failed insert consumed nothing
    with pytest.raises(StoreError, match="does not exist"):
        await store.update_ticket(ticket("cd" * 32))
    assert not t.fee_expired(3) and t.fee_expired(5)
    await store.save_vote_change(t.hash, "{}", "s", "{}", "r")
    await store.insert_alt_sign(AltSignAddr(t.hash, "addr", "req", "rs", "rsp", "rsps", 1))
    await store.delete_ticket(t.hash)
    assert await store.get_ticket(t.hash) is None
    assert await store.vote_changes(t.hash) == [] and await store.get_alt_sign(t.hash) is None
    await store.close()


async def test_counts_only_fee_confirmed(tmp_path):
    store = await make_store(tmp_path / "v.db")
    for i, (status, outcome) in enumerate([("received", ""), ("confirmed", ""), ("confirmed", "voted"),
                                           ("confirmed", "expired"), ("confirmed", "missed"),
                                           ("confirmed", "revoked")]):
        await store.insert_new_ticket(ticket(f"{i:064x}", fee_tx_status=status, outcome=outcome), derive)
    assert await store.ticket_counts() == {"": 1, "voted": 1, "revoked": 1, "expired": 1, "missed": 1}
    await store.close()


async def test_vote_changes_keep_newest(tmp_path):
    store = await make_store(tmp_path / "v.db")
    store.max_vote_changes = 3
    for _ in range(4):
        await store.save_vote_change("MyHash", "Request", "RequestSignature", "Response", "ResponseSignature")
    assert [c.seq for c in await store.vote_changes("MyHash")] == [1, 2, 3]
    await store.close()


async def test_alt_sign_rejects_empty_and_second(tmp_path):
    store = await make_store(tmp_path / "v.db")
    with pytest.raises(StoreError):
        await store.insert_alt_sign(AltSignAddr("h", "a", "", "rs", "rsp", "rsps", 1))
    await store.insert_alt_sign(AltSignAddr("h", "a", "r", "rs", "rsp", "rsps", 1))
    with pytest.raises(StoreError):
        await store.insert_alt_sign(AltSignAddr("h", "b", "r", "rs", "rsp", "rsps", 1))
    assert (await store.get_alt_sign("h")).address == "a"
    await store.close()


async def test_xpub_rotation(tmp_path):
    store = await make_store(tmp_path / "v.db")
    first = await store.current_xpub()
    assert (first.id, first.last_index, first.retired) == (0, 0, 0)
    await store.insert_new_ticket(ticket(), derive)
    with pytest.raises(StoreError, match="already been used"):
        await store.add_xpub(SIMNET_XPUB)
    await store.add_xpub("another")
    xs = await store.all_xpubs()
    assert [(x.id, x.last_index) for x in xs] == [(1, 0), (0, 1)] and xs[1].retired > 0
    t2 = await store.insert_new_ticket(ticket("cd" * 32), derive)
    assert (t2.fee_xpub_id, t2.fee_address_index) == (1, 1)
    await store.close()


async def test_secrets_are_sealed_at_rest(tmp_path):
    store = await make_store(tmp_path / "v.db")
    wif = "cVQpSLDcUt77NPiPSmdoMpcRQcHahHyCJSd8mDdRLtGo8Pq269yF"
    seed = await store.get_key("signingseed")
    await store.insert_new_ticket(ticket(voting_wif=wif), derive)
    await store.backup_to(tmp_path / "copy.db")
    await store.close()
    for f in (tmp_path / "v.db", tmp_path / "v.db-wal", tmp_path / "copy.db"):
        if f.exists():
            data = f.read_bytes()
            assert wif.encode() not in data and seed not in data and seed.hex().encode() not in data
    # a different key cannot open them
    other = await Store.open(tmp_path / "copy.db", Sealer(os.urandom(32)))
    with pytest.raises(SealError, match="wrong key file"):
        await other.get_ticket("ab" * 32)
    await other.close()


async def test_update_fields_is_conditional_and_column_checked(tmp_path):
    store = await make_store(tmp_path / "v.db")
    await store.insert_new_ticket(ticket(), derive)
    assert not await store.update_fields("ab" * 32, {"fee_tx_status": "broadcast"}, {"fee_tx_status": "received"})
    assert await store.update_fields("ab" * 32, {"fee_tx_status": "received", "voting_wif": "cWIF"},
                                     {"fee_tx_status": ("none", "error")})
    got = await store.get_ticket("ab" * 32)
    assert got.fee_tx_status == "received" and got.voting_wif == "cWIF"
    with pytest.raises(StoreError, match="cannot update"):
        await store.update_fields("ab" * 32, {"hash = hash; --": 1})
    with pytest.raises(StoreError, match="cannot match"):
        await store.update_fields("ab" * 32, {"outcome": "voted"}, {"1=1 OR hash": "x"})
    await store.close()


async def test_a_read_sees_a_commit_made_while_another_read_is_half_done(tmp_path):
    """Read-after-write: a read issued after a commit returns to its caller must see it.

    The event loop runs other tasks between the thread calls that make up one
    read on the shared reader connection. Here one read is held at that point
    (as a slow or busy loop would leave it) while a ticket is committed and
    then read back: the second read must not join the first one's older
    snapshot (issue #14, 'unknown ticket' right after a 200 from feeaddress).
    """
    store = await make_store(tmp_path / "v.db")
    reader = store._r
    real_execute = reader._execute
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_after_first_call(fn, *args, **kwargs):
        result = await real_execute(fn, *args, **kwargs)
        if not held.is_set():
            held.set()
            await release.wait()
        return result

    reader._execute = hold_after_first_call
    try:
        first = asyncio.create_task(store.all_xpubs())  # one row: a statement that has not finished yet
        await asyncio.wait_for(held.wait(), 5)
        await store.insert_new_ticket(ticket(), derive)  # committed before it returns
        seen = await asyncio.wait_for(store.get_ticket("ab" * 32), 5)
        release.set()
        assert [x.id for x in await first] == [0]
        assert seen is not None and seen.fee_address == "addr1"
    finally:
        release.set()
        await store.close()


async def test_concurrent_insert_then_read_back_never_misses(tmp_path):
    """Many writers each reading their own fresh row back, beside readers of many rows."""
    store = await make_store(tmp_path / "v.db")
    misses, stop = [], asyncio.Event()

    async def writer(w: int) -> None:
        for i in range(80):
            h = f"{w:032x}{i:032x}"
            await store.insert_new_ticket(ticket(h), derive)
            if await store.get_ticket(h) is None:
                misses.append(h)

    async def background_reader() -> None:
        for _ in range(100_000):  # bounded; stops when the writers are done
            if stop.is_set():
                return
            await store.tickets_where("fee_tx_status = 'none'", limit=50)

    readers = [asyncio.create_task(background_reader()) for _ in range(4)]
    try:
        await asyncio.gather(*(writer(w) for w in range(6)))
    finally:
        stop.set()
        await asyncio.gather(*readers)
        await store.close()
    assert misses == [], f"{len(misses)} of 480 fresh tickets not found right after their commit"


async def test_kept_rows_are_forgotten_by_every_write(tmp_path):
    store = await make_store(tmp_path / "v.db")
    t = ticket(voting_wif="cVsecretwif")
    await store.insert_new_ticket(t, derive)
    await store.get_ticket(t.hash)
    queries = store.query_count
    assert (await store.get_ticket(t.hash)).fee_tx_status == "none" and store.query_count == queries  # kept
    writes = [
        lambda: store.update_fields(t.hash, {"fee_tx_status": "received"}),
        lambda: store.set_outcome(t.hash, "voted"),
        lambda: store.insert_alt_sign(AltSignAddr(t.hash, "SsAlt", "{}", "sig", "{}", "sig", 0)),
        lambda: store.save_vote_change(t.hash, '{"timestamp":1}', "s", "{}", "s"),
        lambda: store.delete_ticket(t.hash),
    ]
    seen = []
    for write in writes:
        before = (await store.ticket_and_alt_sign(t.hash), len(await store.vote_changes(t.hash)))
        await write()
        after = (await store.ticket_and_alt_sign(t.hash), len(await store.vote_changes(t.hash)))
        assert after != before  # the very next read sees the write
        seen.append(after)
    assert seen[-1] == ((None, None), 0)
    with pytest.raises(StoreError):  # a failed write transaction forgets them too
        await store.insert_alt_sign(AltSignAddr("cd" * 32, "", "{}", "", "{}", "", 0))
    assert not store._hot
    await store.close()


async def test_a_read_that_a_write_ended_during_keeps_nothing(tmp_path, monkeypatch):
    store = await make_store(tmp_path / "v.db")
    t = ticket()
    await store.insert_new_ticket(t, derive)

    class Busy:
        def execute(self, sql, params):
            raise sqlite3.OperationalError("database is locked")
    point, read = store._point, store._read

    async def read_then_write(sql, params):
        rows = await read(sql, params)  # what SQLite said before the write below
        await store.update_fields(t.hash, {"fee_tx_status": "received"})
        return rows
    monkeypatch.setattr(store, "_point", Busy())
    monkeypatch.setattr(store, "_read", read_then_write)
    assert (await store.get_ticket(t.hash)).fee_tx_status == "none"
    assert not store._hot  # not kept: a write ended meanwhile
    monkeypatch.setattr(store, "_point", point)
    monkeypatch.setattr(store, "_read", read)
    assert (await store.get_ticket(t.hash)).fee_tx_status == "received"
    await store.close()


async def test_kept_rows_are_bounded_and_the_voting_key_is_opened_only_when_asked(tmp_path, monkeypatch):
    from vspd.store import db
    monkeypatch.setattr(db, "HOT_ROWS", 3)
    store = await make_store(tmp_path / "v.db")
    hashes = [f"{i:02x}" * 32 for i in range(5)]
    for h in hashes:
        await store.insert_new_ticket(ticket(h, voting_wif=f"wif{h[:4]}"), derive)
    for h in hashes:
        assert (await store.get_ticket(h)).voting_wif == f"wif{h[:4]}"
        assert len(store._hot) <= 3
    ticket_of_request, alt = await store.ticket_and_alt_sign(hashes[0])
    assert ticket_of_request.voting_wif == "" and alt is None
    await store.close()


async def test_request_timestamps_follow_the_vote_change_records(tmp_path):
    store = await make_store(tmp_path / "v.db")
    t = ticket()
    await store.insert_new_ticket(t, derive)
    assert await store.request_timestamps(t.hash) == ()
    await store.save_vote_change(t.hash, '{"timestamp":5,"votingkey":"secret"}', "s", "{}", "s")
    assert await store.request_timestamps(t.hash) == (5,)
    assert await store.request_timestamps(t.hash) == (5,)  # kept: no query
    await store.save_vote_change(t.hash, '{"timestamp":true}', "s", "{}", "s")
    await store.save_vote_change(t.hash, 'not json', "s", "{}", "s")
    assert await store.request_timestamps(t.hash) == (5, None, None)
    assert all("secret" not in repr(v) for v in store._hot.values())  # only what the requests say is kept
    await store.close()


async def test_a_write_the_disk_refuses_is_rolled_back_and_the_next_one_works(tmp_path):
    """SQLITE_FULL (here from max_page_count, as from ENOSPC) is a WriteFailed that keeps nothing, leaves no
    transaction open behind it, and is reported until a write commits again."""
    store = await make_store(tmp_path / "v.db")
    try:
        await store.insert_new_ticket(ticket("01" * 32), derive)
        pages = (await (await store._w.execute("PRAGMA page_count")).fetchone())[0]
        await store._w.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StoreError) as e:
            for i in range(2, 200):  # each new ticket row grows the tables until no page is left
                await store.insert_new_ticket(ticket(f"{i:064x}", fee_tx_hex="00" * 2000), derive)
        assert isinstance(e.value, WriteFailed) and str(e.value) == "the database's disk is full"
        assert store.write_problem == "the database's disk is full" and store.write_problem_since > 0
        assert not store._w.in_transaction
        kept = {t.hash for t in await store.tickets_where("1")}
        await store.set_state("x", 1)  # a write with room (a page already there) commits
        assert store.write_problem is None
        await store._w.execute("PRAGMA max_page_count = 1073741823")
        await store.insert_new_ticket(ticket("ff" * 32), derive)
        after = {t.hash for t in await store.tickets_where("1")}
        assert after == kept | {"ff" * 32} and "01" * 32 in kept
        indexes = [t.fee_address_index for t in await store.tickets_where("1 ORDER BY fee_address_index")]
        assert indexes == list(range(1, len(indexes) + 1))  # a refused insert spent no fee address
    finally:
        await store.close()

"""vspadmin importvspd: the Go vspd's databases become ours, same key, every ticket, every record;
and every refusal, with its message, leaving the source's bytes and the target folder as they were."""

import base64
import hashlib
import json
import sqlite3

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import godatabases
from boltwriter import write
from conftest import SIMNET_XPUB
from godatabases import go_dbs, scenario  # noqa: F401  (fixture)
from procs import vspadmin
from vspd.admin.fromgo.govspd import Refused
from vspd.admin.fromgo.importvspd import import_vspd
from vspd.base.paths import key_file
from vspd.store import Store
from vspd.base.sealing import Sealer, read_key_file


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def opened(home) -> Store:
    datadir = home / "data" / "simnet"
    return await Store.open(datadir / "vspd.db", Sealer(read_key_file(key_file(datadir))))


def pubkey_of(seed: bytes) -> str:
    from vspd.admin.fromgo.importvspd import pubkey_b64
    return pubkey_b64(seed)


@pytest.mark.parametrize("name", ["created", "started"])
async def test_the_vsp_key_carries_over(go_dbs, tmp_path, name):
    """The pubkey the Go vspd served is the one our frontend will sign with."""
    src = go_dbs.path(name)
    before = sha(src)
    report = await import_vspd(src, tmp_path, "simnet")
    assert sha(src) == before
    assert report.pubkey == go_dbs.answers["started"]["pubkey"]  # one Go home: created, then started
    store = await opened(tmp_path)
    try:
        assert pubkey_of(await store.get_key("signingseed")) == report.pubkey
        xpub = await store.current_xpub()
        assert (xpub.id, xpub.xpub, xpub.last_index) == (0, SIMNET_XPUB, 0)
        assert len(await store.get_key("cookiesecret")) == 32
        assert await store.tickets_where("1") == []
    finally:
        await store.close()


async def test_every_ticket_of_the_go_vspd_upgrade(go_dbs, tmp_path):
    """Tickets the Go vspd itself rewrote (schema 1 -> 4): every field, and what the Go vspd answered."""
    report = await import_vspd(go_dbs.path("upgraded"), tmp_path, "simnet")
    specs = {t.hash: t for t in scenario()}
    assert report.tickets == len(specs) and report.last_fee_index == godatabases.LAST_INDEX
    assert report.fee_status == {"none": 1, "received": 2, "broadcast": 1, "confirmed": 27, "error": 1}
    assert report.outcomes == {"live": 30, "voted": 1, "revoked": 1}
    assert (report.votable, report.voted, report.revoked) == (25, 1, 1)
    store = await opened(tmp_path)
    try:
        tickets = {t.hash: t for t in await store.tickets_where("1")}
        assert tickets.keys() == specs.keys()
        for h, t in tickets.items():
            s, go = specs[h], go_dbs.answers["upgraded"]["tickets"][h]
            assert (t.commitment_address, t.fee_address, t.fee_address_index, t.fee_amount, t.fee_expiration) == (
                str(s.commitment.address), s.fee_address, s.index, 1000 * s.index, s.expiration)
            assert (t.purchase_height, t.confirmed, t.fee_tx_status, t.outcome) == (s.height, s.confirmed, s.status,
                                                                                   s.outcome)
            assert t.voting_wif == s.wif and t.fee_tx_hash == s.fee_hash
            assert t.fee_tx_hex == ("" if s.status == "confirmed" else s.fee_hex)  # Go's upgrade to 2 dropped it
            assert (t.confirmed, t.fee_tx_status, t.fee_tx_hash) == (go["ticketconfirmed"], go["feetxstatus"],
                                                                     go["feetxhash"])
            assert (t.vote_choices, t.tspend_policy, t.treasury_policy) == (
                go["votechoices"], go["tspendpolicy"], go["treasurypolicy"])
        votable = await store.tickets_where("fee_tx_status = 'confirmed' AND outcome = ''")  # what check_voter adds
        assert len(votable) == 25 and all(t.voting_wif for t in votable)
        live = specs[next(h for h, s in specs.items() if s.name == "live")]
        changes = await store.vote_changes(live.hash)
        assert [c.seq for c in changes] == [3, 4, 5]
        pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(report.pubkey))
        for c in changes:
            pub.verify(base64.b64decode(c.response_sig), c.response.encode())  # the old VSP's word still holds
            assert json.loads(c.response)["timestamp"] == c.created
        assert tickets[live.hash].created == live.expiration - 3600 and tickets[live.hash].updated == changes[-1].created
    finally:
        await store.close()


async def test_schema_1_reads_as_the_go_vspd_upgrades_it(go_dbs, tmp_path):
    """Our reading of a schema-1 file equals our reading of the Go vspd's own upgrade of it."""
    v1 = godatabases.write_v1(tmp_path / "v1.db")
    a, b = tmp_path / "a", tmp_path / "b"
    await import_vspd(v1, a, "simnet")
    await import_vspd(go_dbs.path("upgraded"), b, "simnet")
    rows = []
    for home in (a, b):
        con = sqlite3.connect(home / "data" / "simnet" / "vspd.db")
        rows.append(con.execute("SELECT hash, purchase_height, commitment_address, fee_address_index, fee_address, "
                                "fee_amount, fee_expiration, confirmed, vote_choices, tspend_policy, "
                                "treasury_policy, fee_tx_hex, fee_tx_hash, fee_tx_status, outcome, created, updated "
                                "FROM tickets ORDER BY hash").fetchall())
        con.close()
    assert rows[0] == rows[1] and len(rows[0]) == len(scenario())


async def test_alternate_signing_addresses(go_dbs, tmp_path):
    path = godatabases.write_v4(tmp_path / "v4.db")
    report = await import_vspd(path, tmp_path / "home", "simnet")
    assert report.alt_signs == 1
    live = next(t for t in scenario() if t.alt)
    store = await opened(tmp_path / "home")
    try:
        alt = await store.get_alt_sign(live.hash)
    finally:
        await store.close()
    assert alt.address == str(live.alt_key.address)
    assert alt.address == go_dbs.answers["crafted-v4"]["alt-signed ticketstatus"]["altsignaddress"]
    assert json.loads(alt.request)["altsignaddress"] == alt.address and alt.created == godatabases.T0 + 51


async def test_secrets_are_sealed_at_rest(go_dbs, tmp_path):
    await import_vspd(go_dbs.path("upgraded"), tmp_path, "simnet")
    raw = (tmp_path / "data" / "simnet" / "vspd.db").read_bytes()
    assert godatabases.SEED not in raw and base64.b64encode(godatabases.SEED) not in raw
    for t in scenario():
        if t.wif:
            assert t.wif.encode() not in raw
    con = sqlite3.connect(tmp_path / "data" / "simnet" / "vspd.db")
    try:
        assert all(v.startswith("v1:") for (v,) in con.execute("SELECT voting_wif FROM tickets WHERE voting_wif <> ''"))
        assert all(v.startswith("v1:") for (v,) in con.execute("SELECT request FROM vote_changes"))
        assert con.execute("SELECT who, action FROM admin_log").fetchall() == [("vspadmin", "importvspd")]
    finally:
        con.close()


async def test_dry_run_writes_nothing(go_dbs, tmp_path):
    report = await import_vspd(go_dbs.path("upgraded"), tmp_path / "home", "simnet", dry_run=True)
    assert not (tmp_path / "home").exists()
    text = report.render()
    assert text.startswith("dry run: nothing written") and "tickets: 32" in text
    assert "as /vspinfo counts them: voting 25, voted 1, revoked 1" in text
    assert f"pubkey: {go_dbs.answers['upgraded']['pubkey']}" in text and "the next is 65" in text


async def test_force_replaces_after_a_backup(go_dbs, tmp_path):
    await import_vspd(go_dbs.path("started"), tmp_path, "simnet")
    datadir = tmp_path / "data" / "simnet"
    with pytest.raises(Refused, match="already exists; add --force"):
        await import_vspd(go_dbs.path("upgraded"), tmp_path, "simnet")
    report = await import_vspd(go_dbs.path("upgraded"), tmp_path, "simnet", force=True)
    assert report.backup.parent == datadir and report.backup.name.startswith("vspd.db.before-import-")
    old = sqlite3.connect(report.backup)
    assert old.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == 0
    old.close()
    store = await opened(tmp_path)
    try:
        assert len(await store.tickets_where("1")) == 32
    finally:
        await store.close()
    assert not list(datadir.glob(".vspd.db.import-*"))


def tampered(tmp_path, name: str, change) -> object:
    """The scenario in schema 4 with one thing changed by `change(vspbkt)`."""
    specs = scenario()
    tree = godatabases.root(4, {t.hash.encode(): godatabases.v3_ticket(t) for t in specs}, specs, {b"altsigbkt": {}})
    change(tree[b"vspbkt"])
    return write(tmp_path / f"{name}.db", tree)


def first(vsp) -> dict:
    return vsp[b"ticketbkt"][sorted(vsp[b"ticketbkt"])[0]]


def other_net_xpub() -> str:
    from vspd.chain import bip32
    from vspd.chain.params import NETWORKS, SIMNET
    x = bip32.decode_xpub(SIMNET_XPUB, SIMNET)
    return str(bip32.ExtendedPublicKey(NETWORKS["testnet"], x.depth, x.parent_fingerprint, x.child_number,
                                       x.chain_code, x.pubkey))


REFUSALS = [
    ("version5", lambda v: v.update({b"version": (5).to_bytes(4, "little")}), "unknown EXCCoin/vspd schema version 5"),
    ("version0", lambda v: v.update({b"version": (0).to_bytes(4, "little")}), "unknown EXCCoin/vspd schema version 0"),
    ("noversion", lambda v: v.pop(b"version"), "no valid schema version"),
    ("testnetxpub", lambda v: v.update({b"feeXPub": other_net_xpub().encode()}),
     "belongs to testnet, not simnet: its fee xpub is a testnet key"),
    ("seed64", lambda v: v.update({b"privatekey": bytes(64)}), "the signing key is 64 bytes, not a 32-byte ed25519"),
    ("unknownkey", lambda v: v.update({b"xpubbkt": {}}), "should hold buckets"),
    ("confirmedbyte", lambda v: first(v).update({b"Confirmed": b"\x02"}), "Confirmed is 02, not 00 or 01"),
    ("shortheight", lambda v: first(v).update({b"PurchaseHeight": b"\x01"}), "PurchaseHeight is 1 bytes, not 8"),
    ("status", lambda v: first(v).update({b"FeeTxStatus": b"paid"}), "FeeTxStatus 'paid' is unknown"),
    ("outcome", lambda v: first(v).update({b"Outcome": b"expired"}), "Outcome 'expired' is unknown"),
    ("feeaddress", lambda v: first(v).update({b"FeeAddressIndex": (999).to_bytes(4, "little")}),
     "is not fee address 999 of the fee xpub"),
    ("choices", lambda v: first(v).update({b"VoteChoices": b"{\"a\":1}"}), "VoteChoices is not a map of strings"),
    ("extrafield", lambda v: first(v).update({b"FeeAddressXPubID": bytes(4)}), "unknown fields"),
    ("missingfield", lambda v: first(v).pop(b"FeeAmount"), "FeeAmount is missing"),
]


@pytest.mark.parametrize("name,change,message", REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_refusals(tmp_path, name, change, message):
    src = tampered(tmp_path, name, change)
    before = sha(src)
    with pytest.raises(Refused) as e:
        await import_vspd(src, tmp_path / "home", "simnet")
    assert message in str(e.value)
    assert sha(src) == before and not (tmp_path / "home").exists()


async def test_every_malformed_record_is_listed(tmp_path):
    def change(v):
        tickets = sorted(v[b"ticketbkt"])
        v[b"ticketbkt"][tickets[0]][b"Outcome"] = b"lost"
        v[b"ticketbkt"][tickets[1]][b"FeeTxHex"] = b"XYZ"
        v[b"ticketbkt"][tickets[2]][b"VotingWIF"] = b"not-a-key"
        v[b"votechangebkt"][tickets[3]] = {bytes(4): b"{\"req\":\"{}\"}"}
        v[b"altsigbkt"][tickets[4]] = {b"altsig": b"x"}
    src = tampered(tmp_path, "many", change)
    with pytest.raises(Refused) as e:
        await import_vspd(src, tmp_path / "home", "simnet")
    lines = str(e.value).splitlines()
    assert lines[0].endswith("5 malformed record(s); nothing was imported")
    assert len(lines) == 6 and all(line.startswith("  - ") for line in lines[1:])
    for text in ("Outcome 'lost' is unknown", "FeeTxHex is not lowercase hex", "VotingWIF: ",
                 "its request has no integer timestamp", "fields are ['altsig'], not"):
        assert sum(text in line for line in lines) == 1, (text, lines)


def test_cli(go_dbs, tmp_path):
    src = go_dbs.path("upgraded")
    r = vspadmin(tmp_path, "importvspd", "--dry-run", src)
    assert r.returncode == 0 and "dry run: nothing written" in r.stdout and not (tmp_path / "data").exists()
    r = vspadmin(tmp_path, "importvspd", src, network="testnet")
    assert r.returncode == 2 and r.stderr.startswith("vspadmin: ") and "belongs to simnet, not testnet" in r.stderr
    r = vspadmin(tmp_path, "importvspd", tmp_path / "nothing.db")
    assert r.returncode == 2 and "is not a file" in r.stderr
    (tmp_path / "text.db").write_text("not bolt\n" * 500)
    r = vspadmin(tmp_path, "importvspd", tmp_path / "text.db")
    assert r.returncode == 2 and "not a bbolt database" in r.stderr
    r = vspadmin(tmp_path, "importvspd", src)
    assert r.returncode == 0 and "imported" in r.stdout and "tickets: 32" in r.stdout
    r = vspadmin(tmp_path, "importvspd", src)
    assert r.returncode == 2 and "add --force" in r.stderr


def test_refused_while_the_go_vspd_runs(tmp_path):
    exe, src = godatabases.binary(), godatabases.source_dir()
    if exe is None or src is None:
        pytest.skip("the Go vspd is not here (VSPD_GO_BIN)")
    go = godatabases.GoVspd(tmp_path / "go", exe, src)
    go.create()
    go.start()
    try:
        r = vspadmin(tmp_path / "home", "importvspd", go.db)
        assert r.returncode == 2 and "stop it first" in r.stderr
    finally:
        go.stop()
    assert vspadmin(tmp_path / "home", "importvspd", go.db).returncode == 0


def test_refused_while_our_frontend_holds_the_folder(go_dbs, tmp_path):
    from vspd.base.runlock import RunLock
    lock = RunLock(tmp_path / "data" / "simnet", "vspd frontend")
    lock.acquire()
    try:
        r = vspadmin(tmp_path, "importvspd", go_dbs.path("started"))
        assert r.returncode == 2 and "stop it first" in r.stderr
    finally:
        lock.release()
    assert not (tmp_path / "data" / "simnet" / "vspd.db").exists()

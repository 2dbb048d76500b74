"""Moving an EXCCoin/vspd deployment here: its database becomes ours, its stakers notice nothing.

The Go database is read (never written), checked whole, and written into a
new database of ours in one transaction: the same signing key (so /vspinfo's
pubkey and every signature stay the same), the fee xpub with its last index
(no fee address is ever given out twice), every ticket with its voting key
sealed at rest, the vote-change records and alternate signing addresses.
The cookie secret is new: the old admin sessions have another format and
are worth nothing here. The new file is built beside the live path and
moved into place at the end, after a backup of any database it replaces,
so a refusal or a failure leaves everything as it was.
"""

import base64
import os
import shutil
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from vspd.admin.fromgo.govspd import FEE_QUOTE_SECONDS, FEE_STATUSES, GoDatabase, Refused, load
from vspd.base.paths import key_file
from vspd.base.runlock import AlreadyRunning, RunLock
from vspd.base.sealing import Sealer, SealError, create_key_file, read_key_file
from vspd.chain.params import NETWORKS
from vspd.store import Store, StoreError
from vspd.store.models import FEE_CONFIRMED

OUTCOME_NAMES = {"": "live", "voted": "voted", "revoked": "revoked"}


@dataclass
class ImportReport:
    source: Path
    destination: Path
    network: str
    schema_version: int
    pubkey: str               # base64, as /api/v3/vspinfo shows it
    fee_xpub: str
    last_fee_index: int       # the next fee address uses the index after this one
    fee_status: dict[str, int]
    outcomes: dict[str, int]  # live, voted, revoked
    votable: int              # fee confirmed and no outcome: what the voters must hold
    voted: int                # fee confirmed and voted, as /vspinfo counts them
    revoked: int              # fee confirmed and revoked, as /vspinfo counts them
    vote_changes: int
    alt_signs: int
    orphans: list[str] = field(default_factory=list)
    dry_run: bool = False
    backup: Path | None = None

    @property
    def tickets(self) -> int:
        return sum(self.fee_status.values())

    def render(self) -> str:
        head = "dry run: nothing written; importing would give" if self.dry_run else "imported"
        lines = [f"{head} {self.destination} ({self.network}) from {self.source} (EXCCoin/vspd schema "
                 f"{self.schema_version})",
                 f"pubkey: {self.pubkey} (unchanged: wallets keep trusting the answers)",
                 f"fee xpub: {self.fee_xpub}",
                 f"last fee address index: {self.last_fee_index}; the next is {self.last_fee_index + 1}",
                 "cookie secret: new (admin sessions of the old VSP do not carry over)",
                 f"tickets: {self.tickets}",
                 "  by fee status: " + ", ".join(f"{s} {self.fee_status[s]}" for s in FEE_STATUSES),
                 "  by outcome: " + ", ".join(f"{n} {self.outcomes[n]}" for n in OUTCOME_NAMES.values()),
                 f"  as /vspinfo counts them: voting {self.votable}, voted {self.voted}, revoked {self.revoked}",
                 f"vote-change records: {self.vote_changes}",
                 f"alternate signing addresses: {self.alt_signs}"]
        lines += [f"  kept, of a ticket not in the database: {o}" for o in self.orphans]
        if self.backup:
            lines.append(f"the database it replaced is backed up at {self.backup}")
        if not self.dry_run:
            lines.append(f"start the frontend: its first consistency pass gives the {self.votable} live paid "
                         f"tickets to every voter")
        return "\n".join(lines)


def pubkey_b64(seed: bytes) -> str:
    raw = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def last_fee_index(go: GoDatabase) -> int:
    """The old VSP's last index, or a ticket's if higher: never hand out an address twice."""
    return max([go.last_address_index, *(t.fee_address_index for t in go.tickets)])


def _stamp_times(go: GoDatabase, now: int) -> None:
    """created/updated from what the old database knows: its fee quotes and its signed responses.

    EXCCoin/vspd keeps no times. A fee quote is given FEE_QUOTE_SECONDS
    before it expires, and every stored response carries its timestamp; the
    earliest of these is when the ticket was at least known, the latest when
    it last changed. Nothing later than now, so an old vote never looks recent.
    """
    alt = {a.ticket_hash: a.created for a in go.alt_signs}
    for t in go.tickets:
        known = [x for x in (t.fee_expiration - FEE_QUOTE_SECONDS, alt.get(t.hash, 0),
                             *(c.created for c in go.vote_changes.get(t.hash, []))) if 0 < x <= now]
        t.created, t.updated = (min(known), max(known)) if known else (now, now)


def build_report(go: GoDatabase, destination: Path, network: str, dry_run: bool) -> ImportReport:
    fee = Counter(t.fee_tx_status for t in go.tickets)
    outcomes = Counter(OUTCOME_NAMES[t.outcome] for t in go.tickets)
    paid = Counter(t.outcome for t in go.tickets if t.fee_tx_status == FEE_CONFIRMED)
    hashes = {t.hash for t in go.tickets}
    orphans = [f"alternate signing address of {a.ticket_hash}" for a in go.alt_signs if a.ticket_hash not in hashes]
    orphans += [f"{len(r)} vote-change record(s) of {h}" for h, r in go.vote_changes.items() if h not in hashes]
    return ImportReport(
        source=go.path, destination=destination, network=network, schema_version=go.version,
        pubkey=pubkey_b64(go.signing_seed), fee_xpub=go.fee_xpub, last_fee_index=last_fee_index(go),
        fee_status={s: fee[s] for s in FEE_STATUSES}, outcomes={n: outcomes[n] for n in OUTCOME_NAMES.values()},
        votable=paid[""], voted=paid["voted"], revoked=paid["revoked"],
        vote_changes=sum(len(r) for r in go.vote_changes.values()), alt_signs=len(go.alt_signs),
        orphans=orphans, dry_run=dry_run)


async def import_vspd(src: Path, dest_home: Path, network: str, force: bool = False,
                      dry_run: bool = False) -> ImportReport:
    """Import the EXCCoin/vspd database `src` as {dest_home}/data/{network}/vspd.db.

    Refused (one line, then every problem) when the file is not a bbolt
    database, not EXCCoin/vspd's, of an unknown schema version, of another
    network, holds a malformed record, or when the target database exists
    and `force` is not given; nothing is written then. With `force`, the
    database it replaces is backed up first. `dry_run` checks everything and
    returns the report, writing nothing.
    """
    if network not in NETWORKS:
        raise Refused(f"unknown network {network!r} (expected one of {', '.join(NETWORKS)})")
    net = NETWORKS[network]
    src = Path(src).expanduser().resolve()
    datadir = Path(dest_home).expanduser().resolve() / "data" / net.name
    target = datadir / "vspd.db"
    if not src.is_file():
        raise Refused(f"{src} is not a file")
    if target.exists() and not force:
        raise Refused(f"database {target} already exists; add --force to replace it (it is backed up first)")
    go = load(src, net)
    report = build_report(go, target, net.name, dry_run)
    if dry_run:
        return report
    lock = RunLock(datadir, "vspadmin importvspd")
    try:
        lock.acquire()
    except AlreadyRunning as e:
        raise Refused(f"{e}; stop it first") from None
    try:
        report.backup = await _write(go, datadir, target)
    finally:
        lock.release()
    return report


async def _write(go: GoDatabase, datadir: Path, target: Path) -> Path | None:
    kf = key_file(datadir)
    made_key = not kf.exists()
    try:
        sealer = Sealer(create_key_file(kf) if made_key else read_key_file(kf))
    except (SealError, OSError) as e:
        raise Refused(f"key file {kf}: {e}") from None
    work = datadir / f".vspd.db.import-{os.getpid()}"
    _remove_sqlite(work)
    try:
        now = int(time.time())
        _stamp_times(go, now)
        store = await Store.open(work, sealer, create=True)
        try:
            await store.import_records(
                go.fee_xpub, last_fee_index(go), {"signingseed": go.signing_seed, "cookiesecret": os.urandom(32)},
                go.tickets, go.vote_changes, go.alt_signs, "vspadmin",
                f"from {go.path} (EXCCoin/vspd schema {go.version}): {len(go.tickets)} tickets")
        except (StoreError, sqlite3.Error) as e:
            raise Refused(f"cannot write the new database: {e}") from None
        finally:
            await store.close()
        backup = _backup(target) if target.exists() else None
        _remove_sqlite(target, keep_main=True)
        shutil.rmtree(datadir / f".{target.name}-litestream", ignore_errors=True)  # the old file's WAL shadow
        os.replace(work, target)
        target.chmod(0o600)
        return backup
    except BaseException:
        _remove_sqlite(work)
        if made_key:
            kf.unlink(missing_ok=True)
        raise


def _backup(db: Path) -> Path:
    """A consistent copy (WAL included) of the database about to be replaced."""
    dest = db.with_name(f"{db.name}.before-import-{time.strftime('%Y%m%dT%H%M%S')}")
    try:
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            out = sqlite3.connect(dest)
            try:
                src.backup(out)
            finally:
                out.close()
        finally:
            src.close()
    except sqlite3.Error as e:
        dest.unlink(missing_ok=True)
        raise Refused(f"cannot back up {db} before replacing it ({e}); move it away yourself") from None
    dest.chmod(0o600)
    return dest


def _remove_sqlite(db: Path, keep_main: bool = False) -> None:
    for path in ([] if keep_main else [db]) + [Path(f"{db}-wal"), Path(f"{db}-shm")]:
        path.unlink(missing_ok=True)


__all__ = ["ImportReport", "Refused", "import_vspd"]

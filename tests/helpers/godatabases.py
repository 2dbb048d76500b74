"""The reference Go vspd (EXCCoin/vspd) as a test peer, and the databases it writes.

The binary comes from VSPD_GO_BIN, else from the simnet harness's build cache;
it serves its pages from its module source (webapi/templates), found in the Go
module cache or named by VSPD_GO_SRC. Without the binary, the tests use the
files under tests/data/govspd/, which regenerate.py there made with it.

It runs on 127.0.0.1 only, with an exccd and a wallet address where nothing
listens: it creates its database, opens it (upgrading it to schema 4) and
answers /vspinfo and /ticketstatus for the tickets it knows, without them.

The scenario is deterministic (keys from fixed seeds, fixed times), so the
files regenerate byte for byte apart from what bbolt itself varies.
"""

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from boltwriter import write as write_bolt
from chainbuilders import Key
from conftest import SIMNET_XPUB
from vspd.base import tls as certs
from vspd.chain import bip32
from vspd.chain.message import sign_message
from vspd.chain.params import SIMNET
from vspd.simnet import peers
from web.api.wire import go_json

DATA = Path(__file__).parents[1] / "data" / "govspd"
T0 = 1_790_000_000
SEED = hashlib.sha256(b"govspd fixture signing seed").digest()
COOKIE = hashlib.sha256(b"govspd fixture cookie secret").digest()


def binary() -> Path | None:
    """The reference Go vspd as the simnet harness finds it (named, on PATH or built); None if not built."""
    try:
        return peers.find(peers.VSPD_GO, build_missing=False)
    except peers.PeerError:
        if os.environ.get("VSPD_REQUIRE_PEERS") == "1":
            raise
        return None


def source_dir() -> Path | None:
    named = os.environ.get("VSPD_GO_SRC")
    if named:
        return Path(named)
    try:
        src = peers.module_source(peers.VSPD_GO)
    except peers.PeerError:
        return None
    return src if (src / "webapi" / "templates").is_dir() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GoVspd:
    """One Go vspd home folder on simnet, started and stopped by its owner."""

    def __init__(self, home: Path, exe: Path, src: Path):
        self.home, self.exe, self.src = home, exe, src
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = home / "go-vspd.out"
        home.mkdir(parents=True, exist_ok=True)
        cert = home / "nobody.pem"  # read at start, used only to dial: nothing listens there
        cert.write_bytes(certs.make_ca().cert_pem)
        (home / "vspd.conf").write_text(
            "[Application Options]\nnetwork = simnet\nloglevel = debug\n"
            f"listen = 127.0.0.1:{self.port}\nsupportemail = ops@example.org\nadminpass = go-admin-pass\n"
            f"exccdhost = 127.0.0.1:1\nexccduser = u\nexccdpass = p\nexccdcert = {cert}\n"
            f"wallethost = 127.0.0.1:2\nwalletuser = u\nwalletpass = p\nwalletcert = {cert}\n")

    @property
    def db(self) -> Path:
        return self.home / "data" / "simnet" / "vspd.db"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def create(self, xpub: str = SIMNET_XPUB) -> Path:
        """`vspd --feexpub`: writes a schema-1 database and exits."""
        p = subprocess.run([str(self.exe), f"--homedir={self.home}", f"--feexpub={xpub}"], cwd=self.src,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and self.db.exists(), p.stdout + p.stderr
        return self.db

    def start(self) -> "GoVspd":
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([str(self.exe), f"--homedir={self.home}"], cwd=self.src,
                                         stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"Go vspd exited: {self.log.read_text(errors='replace')[-2000:]}"
            try:
                self.vspinfo()
                return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"Go vspd did not answer in 30 s: {self.log.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def vspinfo(self) -> tuple[bytes, str]:
        with urllib.request.urlopen(self.url + "/api/v3/vspinfo", timeout=5) as r:
            return r.read(), r.headers["VSP-Server-Signature"]

    def post(self, path: str, body: bytes, signer: Key) -> tuple[int, dict, bytes, str]:
        sig = base64.b64encode(sign_message(signer.secret, body)).decode()
        req = urllib.request.Request(self.url + path, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "VSP-Client-Signature": sig})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                raw, status, rsig = r.read(), r.status, r.headers["VSP-Server-Signature"]
        except urllib.error.HTTPError as e:
            raw, status, rsig = e.read(), e.code, e.headers.get("VSP-Server-Signature", "")
        return status, json.loads(raw), raw, rsig

    def ticketstatus(self, t: "Spec", signer: Key | None = None) -> tuple[int, dict]:
        status, data, _, _ = self.post("/api/v3/ticketstatus", go_json({"tickethash": t.hash}), signer or t.commitment)
        return status, data


# -- the scenario: tickets in every state the Go vspd gives them ------------------------------------

@dataclass
class Spec:
    name: str
    index: int
    status: str = "none"
    outcome: str = ""
    confirmed: bool = False
    height: int = 0
    fee_hex_bytes: int = 0
    choices: dict | None = None
    records: list[int] = field(default_factory=list)  # vote-change sequence numbers
    alt: bool = False

    def key(self, role: str) -> Key:
        return Key(SIMNET, hashlib.sha256(f"{self.name}/{role}".encode()).digest())

    @property
    def commitment(self) -> Key:
        return self.key("commitment")

    @property
    def voting(self) -> Key:
        return self.key("voting")

    @property
    def alt_key(self) -> Key:
        return self.key("alt")

    @property
    def hash(self) -> str:
        return hashlib.sha256(f"{self.name}/ticket".encode()).hexdigest()

    @property
    def fee_address(self) -> str:
        return str(bip32.fee_address(bip32.decode_xpub(SIMNET_XPUB, SIMNET), self.index))

    @property
    def fee_hash(self) -> str:
        return hashlib.sha256(f"{self.name}/fee".encode()).hexdigest() if self.status != "none" else ""

    @property
    def fee_hex(self) -> str:
        if self.status == "none":
            return ""
        n = self.fee_hex_bytes or 200
        return (hashlib.sha256(f"{self.name}/feetx".encode()).digest() * (n // 32 + 1))[:n].hex()

    @property
    def wif(self) -> str:
        return self.voting.wif if self.status != "none" else ""

    @property
    def expiration(self) -> int:
        return T0 + 3600 + self.index * 60


def scenario() -> list[Spec]:
    specs = [
        Spec("unpaid", 1),
        Spec("received", 2, "received", confirmed=True, height=40, choices={}, records=[0]),
        Spec("broadcast", 3, "broadcast", confirmed=True, height=41, choices={}, records=[0]),
        Spec("live", 4, "confirmed", confirmed=True, height=42, choices={}, records=[3, 4, 5], alt=True),
        Spec("voted", 5, "confirmed", "voted", True, 43, choices={}, records=[0]),
        Spec("revoked", 6, "confirmed", "revoked", True, 44, choices={}),
        Spec("error", 7, "error", confirmed=True, height=45, choices={}, records=[0]),
        Spec("bigfee", 9, "received", confirmed=True, height=46, fee_hex_bytes=6000, choices={}),
    ]
    specs += [Spec(f"filler{i:02d}", 20 + i, "confirmed", confirmed=True, height=50 + i, choices={}) for i in range(24)]
    return specs


LAST_INDEX = 64  # addresses up to 64 given out: some tickets were never mined and went


def signed_pair(t: Spec, request: dict, at: int, signer: Key | None = None) -> tuple[str, str, str, str]:
    """A request as the wallet signs it and the answer as the Go vspd signs it (SEED)."""
    req = go_json(request)
    rsp = go_json({"timestamp": at + 1, "request": base64.b64encode(req).decode()})
    reqs = base64.b64encode(sign_message((signer or t.commitment).secret, req)).decode()
    rsps = base64.b64encode(Ed25519PrivateKey.from_private_bytes(SEED).sign(rsp)).decode()
    return req.decode(), reqs, rsp.decode(), rsps


def vote_change_records(t: Spec) -> dict[bytes, bytes]:
    out = {}
    for seq in t.records:
        at = T0 + 100 * seq + t.index
        req, reqs, rsp, rsps = signed_pair(t, {"timestamp": at, "tickethash": t.hash, "votechoices": {},
                                               "tspendpolicy": {}, "treasurypolicy": {}}, at)
        out[seq.to_bytes(4, "little")] = json.dumps({"req": req, "reqs": reqs, "rsp": rsp, "rsps": rsps},
                                                    separators=(",", ":")).encode()
    return out


def alt_sign_record(t: Spec) -> dict[bytes, bytes]:
    at = T0 + 50
    req, reqs, rsp, rsps = signed_pair(t, {"timestamp": at, "tickethash": t.hash, "tickethex": "00",
                                           "parenthex": "00", "altsignaddress": str(t.alt_key.address)}, at)
    return {b"altsig": str(t.alt_key.address).encode(), b"req": req.encode(), b"reqsig": reqs.encode(),
            b"res": rsp.encode(), b"ressig": rsps.encode()}


def v1_ticket(t: Spec) -> bytes:
    """Schema 1: one JSON value per ticket, Go's field order and short names."""
    return json.dumps({"hsh": t.hash, "phgt": t.height, "cmtaddr": str(t.commitment.address),
                       "faddridx": t.index, "faddr": t.fee_address, "famt": 1000 * t.index,
                       "fexp": t.expiration, "conf": t.confirmed, "vwif": t.wif, "vchces": t.choices,
                       "fhex": t.fee_hex, "fhsh": t.fee_hash, "fsts": t.status, "otcme": t.outcome},
                      separators=(",", ":")).encode()


def v3_ticket(t: Spec) -> dict[bytes, bytes]:
    """Schema 3+: a bucket of named fields, as putTicketInBucket writes them."""
    def i64(v):
        return v.to_bytes(8, "little", signed=True)
    return {b"Hash": t.hash.encode(), b"CommitmentAddress": str(t.commitment.address).encode(),
            b"FeeAddress": t.fee_address.encode(), b"VotingWIF": t.wif.encode(), b"FeeTxHex": t.fee_hex.encode(),
            b"FeeTxHash": t.fee_hash.encode(), b"FeeTxStatus": t.status.encode(), b"Outcome": t.outcome.encode(),
            b"PurchaseHeight": i64(t.height), b"FeeAddressIndex": t.index.to_bytes(4, "little"),
            b"FeeAmount": i64(1000 * t.index), b"FeeExpiration": i64(t.expiration),
            b"Confirmed": b"\x01" if t.confirmed else b"\x00",
            b"TSpendPolicy": json.dumps(t.choices).encode(), b"TreasuryPolicy": json.dumps(t.choices).encode(),
            b"VoteChoices": json.dumps(t.choices).encode()}


def root(version: int, tickets: dict, specs: list[Spec], extra: dict | None = None) -> dict:
    vsp = {b"version": version.to_bytes(4, "little"), b"privatekey": SEED, b"cookieSecret": COOKIE,
           b"feeXPub": SIMNET_XPUB.encode(), b"lastaddressindex": LAST_INDEX.to_bytes(4, "little"),
           b"ticketbkt": tickets,
           b"votechangebkt": {t.hash.encode(): vote_change_records(t) for t in specs if t.records}}
    vsp.update(extra or {})
    return {b"vspbkt": vsp}


def write_v1(path: Path, specs: list[Spec] | None = None) -> Path:
    specs = scenario() if specs is None else specs
    return write_bolt(path, root(1, {t.hash.encode(): v1_ticket(t) for t in specs}, specs))


def write_v4(path: Path, specs: list[Spec] | None = None, **options) -> Path:
    specs = scenario() if specs is None else specs
    alt = {t.hash.encode(): alt_sign_record(t) for t in specs if t.alt}
    return write_bolt(path, root(4, {t.hash.encode(): v3_ticket(t) for t in specs}, specs, {b"altsigbkt": alt}),
                      **options)


def go_answers(go: GoVspd, specs: list[Spec]) -> dict:
    """What the running Go vspd says of its database: pubkey and every ticket's status."""
    body, sig = go.vspinfo()
    out = {"pubkey": json.loads(body)["pubkey"], "tickets": {}}
    for t in specs:
        status, data = go.ticketstatus(t)
        assert status == 200, (t.name, data)
        out["tickets"][t.hash] = {k: data[k] for k in ("ticketconfirmed", "feetxstatus", "feetxhash",
                                                       "altsignaddress", "votechoices", "tspendpolicy",
                                                       "treasurypolicy")}
    return out


def run(go: GoVspd, ask) -> dict:
    """Start the Go vspd on its database, ask it, stop it, whatever happens."""
    go.start()
    try:
        return ask(go)
    finally:
        go.stop()


def alt_signed_status(go: GoVspd, specs: list[Spec]) -> dict:
    live = next(t for t in specs if t.alt)
    status, data = go.ticketstatus(live, signer=live.alt_key)  # the Go vspd takes the alt key's word
    assert status == 200, data
    return {"alt-signed ticketstatus": data}


def make_databases(out: Path, exe: Path, src: Path, work: Path) -> dict:
    """Run the real Go vspd to write every database the tests read; returns what it answered."""
    out.mkdir(parents=True, exist_ok=True)
    specs = scenario()
    fresh, tickets, crafted = (GoVspd(work / name, exe, src) for name in ("fresh", "tickets", "crafted"))
    (out / "created.db").write_bytes(fresh.create().read_bytes())
    answers = {"started": run(fresh, lambda go: {"pubkey": json.loads(go.vspinfo()[0])["pubkey"]})}
    (out / "started.db").write_bytes(fresh.db.read_bytes())
    tickets.db.parent.mkdir(parents=True)
    write_v1(tickets.db, specs)
    answers["upgraded"] = run(tickets, lambda go: go_answers(go, specs))
    (out / "upgraded.db").write_bytes(tickets.db.read_bytes())
    crafted.db.parent.mkdir(parents=True)
    write_v4(crafted.db, specs)
    answers["crafted-v4"] = run(crafted, lambda go: alt_signed_status(go, specs))
    (out / "answers.json").write_text(json.dumps(answers, indent=1, sort_keys=True) + "\n")
    return answers


@dataclass
class GoDatabases:
    folder: Path
    answers: dict
    live: bool  # made just now by the real Go vspd, not the checked-in copies

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.db"


@pytest.fixture(scope="session")
def go_dbs(tmp_path_factory) -> GoDatabases:
    """The Go vspd's own databases: freshly written by it when it is here, else the checked-in ones."""
    exe, src = binary(), source_dir()
    folder = tmp_path_factory.mktemp("govspd")
    if exe is not None and src is not None:
        return GoDatabases(folder, make_databases(folder, exe, src, tmp_path_factory.mktemp("govspd-work")), True)
    for f in DATA.glob("*.db"):
        (folder / f.name).write_bytes(f.read_bytes())
    return GoDatabases(folder, json.loads((DATA / "answers.json").read_text()), False)

"""An EXCCoin/vspd database (bbolt, schema 1 to 4), decoded into our models with every value checked.

The layout, from EXCCoin/vspd's database package: one top-level bucket
`vspbkt` holding `version` (u32), `privatekey` (the 32-byte ed25519 seed),
`cookieSecret`, `feeXPub` (text), `lastaddressindex` (u32, absent until the
first fee address), and the buckets `ticketbkt`, `votechangebkt` and (from
schema 4) `altsigbkt`. Integers are little-endian. Schema 1 and 2 keep each
ticket as one JSON value under its hash; schema 3 and 4 give each ticket a
bucket of named fields. The database does not record its network: the fee
xpub's version bytes, every address and every voting key do, and all must
match the network asked for.

Nothing here is guessed or dropped: a value that EXCCoin/vspd would not
have written, a key we do not know, or a field of the wrong size is a
problem, and every problem is listed, not only the first.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from vspd.admin.fromgo.bbolt import BoltError, Bucket, read
from vspd.chain import address, bip32, wif
from vspd.chain.errors import ChainError
from vspd.chain.params import NETWORKS, NetParams
from vspd.chain.rules import is_hash
from vspd.store.models import FEE_BROADCAST, FEE_CONFIRMED, FEE_NONE, FEE_RECEIVED, AltSignAddr, Ticket, VoteChange

KNOWN_VERSIONS = (1, 2, 3, 4)
FEE_STATUSES = ("none", "received", "broadcast", "confirmed", "error")
OUTCOMES = ("", "voted", "revoked")  # all EXCCoin/vspd ever writes
FEE_QUOTE_SECONDS = 3600  # EXCCoin/vspd's feeAddressExpiration
_HEX = re.compile(r"^(?:[0-9a-f]{2})*$")

ROOT_KEYS = {b"version", b"privatekey", b"cookieSecret", b"feeXPub", b"lastaddressindex"}
# Schema 3+ ticket fields: name -> kind. u32/i64/bool must be there (Go cannot read a ticket without
# them); a missing text field reads as "" and a missing map as {} in Go, and so here.
TICKET_FIELDS = {"Hash": "text", "PurchaseHeight": "i64", "CommitmentAddress": "text", "FeeAddressIndex": "u32",
                 "FeeAddress": "text", "FeeAmount": "i64", "FeeExpiration": "i64", "Confirmed": "bool",
                 "VotingWIF": "text", "VoteChoices": "map", "TSpendPolicy": "map", "TreasuryPolicy": "map",
                 "FeeTxHex": "text", "FeeTxHash": "text", "FeeTxStatus": "text", "Outcome": "text"}
# Schema 1-2 JSON tickets: short name -> (field, kind). Go's encoder writes every one of them.
V1_FIELDS = {"hsh": ("Hash", str), "phgt": ("PurchaseHeight", int), "cmtaddr": ("CommitmentAddress", str),
             "faddridx": ("FeeAddressIndex", int), "faddr": ("FeeAddress", str), "famt": ("FeeAmount", int),
             "fexp": ("FeeExpiration", int), "conf": ("Confirmed", bool), "vwif": ("VotingWIF", str),
             "vchces": ("VoteChoices", dict), "fhex": ("FeeTxHex", str), "fhsh": ("FeeTxHash", str),
             "fsts": ("FeeTxStatus", str), "otcme": ("Outcome", str)}
ALT_SIGN_FIELDS = {b"altsig", b"req", b"reqsig", b"res", b"ressig"}
VOTE_CHANGE_FIELDS = ("req", "reqs", "rsp", "rsps")
INT64 = (-(1 << 63), (1 << 63) - 1)


class Refused(Exception):
    """The database cannot be imported: a one-line reason, then every problem found."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.problems = problems or []

    def __str__(self) -> str:
        shown = self.problems[:50]
        more = [f"  ... and {len(self.problems) - len(shown)} more"] if len(self.problems) > len(shown) else []
        return "\n".join([self.message, *(f"  - {p}" for p in shown), *more])


class Malformed(Exception):
    """One record is not what EXCCoin/vspd writes."""


@dataclass
class GoDatabase:
    path: Path
    version: int
    signing_seed: bytes
    cookie_secret: bytes
    fee_xpub: str
    last_address_index: int
    tickets: list[Ticket] = field(default_factory=list)
    vote_changes: dict[str, list[VoteChange]] = field(default_factory=dict)
    alt_signs: list[AltSignAddr] = field(default_factory=list)

    def __repr__(self) -> str:  # the seed and the voting keys stay out of logs
        return (f"GoDatabase({self.path}, version={self.version}, tickets={len(self.tickets)}, "
                f"last_address_index={self.last_address_index})")


def _u32(raw: bytes, what: str) -> int:
    if len(raw) != 4:
        raise Malformed(f"{what} is {len(raw)} bytes, not 4")
    return int.from_bytes(raw, "little")


def _i64(raw: bytes, what: str) -> int:
    if len(raw) != 8:
        raise Malformed(f"{what} is {len(raw)} bytes, not 8")
    return int.from_bytes(raw, "little", signed=True)


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed(f"{what} is not UTF-8 text") from None


def _string_map(value, what: str) -> dict:
    """A Go map[string]string: a JSON object of strings, or null."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise Malformed(f"{what} is not a map of strings")
    return value


def _json(raw: bytes | str, what: str):
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Malformed(f"{what} is not JSON") from None


def _ticket_fields_v3(bkt: Bucket) -> dict:
    if bkt.buckets:
        raise Malformed(f"holds buckets {sorted(k.decode(errors='replace') for k in bkt.buckets)}")
    unknown = sorted(k.decode(errors="replace") for k in bkt.values if k.decode(errors="replace") not in TICKET_FIELDS)
    if unknown:
        raise Malformed(f"unknown fields {unknown}")
    out = {}
    for name, kind in TICKET_FIELDS.items():
        raw = bkt.get(name.encode())
        if raw is None and kind in ("u32", "i64", "bool"):
            raise Malformed(f"{name} is missing")
        if kind == "u32":
            out[name] = _u32(raw, name)
        elif kind == "i64":
            out[name] = _i64(raw, name)
        elif kind == "bool":
            if raw not in (b"\x00", b"\x01"):
                raise Malformed(f"{name} is {raw.hex() or 'empty'}, not 00 or 01")
            out[name] = raw == b"\x01"
        elif kind == "map":
            out[name] = {} if raw is None else _string_map(_json(raw, name), name)
        else:
            out[name] = "" if raw is None else _text(raw, name)
    return out


def _ticket_fields_v1(raw: bytes) -> dict:
    obj = _json(raw, "the ticket")
    if not isinstance(obj, dict):
        raise Malformed("the ticket is not a JSON object")
    unknown = sorted(set(obj) - set(V1_FIELDS))
    if unknown:
        raise Malformed(f"unknown fields {unknown}")
    out = {"TSpendPolicy": {}, "TreasuryPolicy": {}}
    for short, (name, kind) in V1_FIELDS.items():
        value = obj.get(short)
        if kind is dict:
            out[name] = _string_map(value, short)
            continue
        if value is None:
            value = kind()  # Go's zero value for a missing field
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise Malformed(f"{short} is not {'a string' if kind is str else kind.__name__}")
        out[name] = value
    return out


def _is_hash(text: str) -> bool:
    """A lower-case ticket or fee hash (rules.is_hash), taken as the "^...$" match it was: one final newline passes."""
    return is_hash(text.removesuffix("\n"))


class _Checker:
    """Every value checked against the network, the fee xpub and our schema's rules."""

    def __init__(self, net: NetParams, xpub: bip32.ExtendedPublicKey):
        self.net = net
        self.external = xpub.child(0)

    def ticket(self, key: str, f: dict, version: int) -> Ticket:
        if not _is_hash(key):
            raise Malformed("its key is not a lowercase ticket hash")
        if f["Hash"] != key:
            raise Malformed(f"Hash {f['Hash']!r} differs from its key")
        for name in ("PurchaseHeight", "FeeAmount"):
            if not 0 <= f[name] <= INT64[1]:
                raise Malformed(f"{name} {f[name]} is out of range")
        if not INT64[0] <= f["FeeExpiration"] <= INT64[1]:
            raise Malformed(f"FeeExpiration {f['FeeExpiration']} is out of range")
        if not 0 <= f["FeeAddressIndex"] < bip32.HARDENED:
            raise Malformed(f"FeeAddressIndex {f['FeeAddressIndex']} is out of range")
        try:
            address.decode(f["CommitmentAddress"], self.net)
        except ChainError as e:
            raise Malformed(f"CommitmentAddress: {e}") from None
        try:
            expected = str(self.external.child(f["FeeAddressIndex"]).address())
        except ChainError as e:
            raise Malformed(f"FeeAddressIndex {f['FeeAddressIndex']}: {e}") from None
        if f["FeeAddress"] != expected:
            raise Malformed(f"FeeAddress {f['FeeAddress']!r} is not fee address {f['FeeAddressIndex']} of the fee xpub")
        status, outcome = f["FeeTxStatus"], f["Outcome"]
        if status not in FEE_STATUSES:
            raise Malformed(f"FeeTxStatus {status!r} is unknown")
        if outcome not in OUTCOMES:
            raise Malformed(f"Outcome {outcome!r} is unknown")
        if status != FEE_NONE and not f["VotingWIF"]:
            raise Malformed(f"fee status {status} without a voting key")
        if f["VotingWIF"]:
            try:
                wif.decode(f["VotingWIF"], self.net).pubkey()
            except ChainError as e:
                raise Malformed(f"VotingWIF: {e}") from None
        if not _HEX.match(f["FeeTxHex"]):
            raise Malformed("FeeTxHex is not lowercase hex")
        if f["FeeTxHash"] and not _is_hash(f["FeeTxHash"]):
            raise Malformed("FeeTxHash is not a lowercase hash")
        if status == FEE_RECEIVED and not (f["FeeTxHex"] and f["FeeTxHash"]):
            raise Malformed("fee status received without the fee transaction")
        if status in (FEE_BROADCAST, FEE_CONFIRMED) and not f["FeeTxHash"]:
            raise Malformed(f"fee status {status} without a fee transaction hash")
        fee_hex = "" if version == 1 and status == FEE_CONFIRMED else f["FeeTxHex"]  # as its upgrade to 2 does
        return Ticket(hash=key, commitment_address=f["CommitmentAddress"], fee_xpub_id=0,
                      fee_address_index=f["FeeAddressIndex"], fee_address=f["FeeAddress"],
                      fee_amount=f["FeeAmount"], fee_expiration=f["FeeExpiration"],
                      purchase_height=f["PurchaseHeight"], confirmed=f["Confirmed"], voting_wif=f["VotingWIF"],
                      vote_choices=f["VoteChoices"], tspend_policy=f["TSpendPolicy"],
                      treasury_policy=f["TreasuryPolicy"], fee_tx_hex=fee_hex, fee_tx_hash=f["FeeTxHash"],
                      fee_tx_status=status, outcome=outcome)

    def vote_change(self, seq: int, raw: bytes) -> VoteChange:
        record = _json(raw, "the record")
        if not isinstance(record, dict) or set(record) - set(VOTE_CHANGE_FIELDS):
            raise Malformed("the record is not an object of req, reqs, rsp, rsps")
        values = {k: record.get(k, "") for k in VOTE_CHANGE_FIELDS}
        if not all(isinstance(v, str) for v in values.values()):
            raise Malformed("a field of the record is not a string")
        _timestamp(values["req"], "its request")
        created = _timestamp(values["rsp"], "its response")
        return VoteChange(seq, values["req"], values["reqs"], values["rsp"], values["rsps"], created)

    def alt_sign(self, key: str, bkt: Bucket) -> AltSignAddr:
        if not _is_hash(key):
            raise Malformed("its key is not a lowercase ticket hash")
        if bkt.buckets or set(bkt.values) != ALT_SIGN_FIELDS:
            raise Malformed(f"fields are {sorted(k.decode(errors='replace') for k in [*bkt.values, *bkt.buckets])}, "
                            f"not {sorted(k.decode() for k in ALT_SIGN_FIELDS)}")
        v = {k.decode(): _text(bkt.values[k], k.decode()) for k in ALT_SIGN_FIELDS}
        empty = sorted(k for k, text in v.items() if not text)
        if empty:
            raise Malformed(f"empty fields {empty}")
        try:
            if address.decode(v["altsig"], self.net).kind != address.P2PKH:
                raise Malformed(f"altsig {v['altsig']} is not a P2PKH address")
        except ChainError as e:
            raise Malformed(f"altsig: {e}") from None
        _timestamp(v["req"], "its request")
        return AltSignAddr(key, v["altsig"], v["req"], v["reqsig"], v["res"], v["ressig"],
                           _timestamp(v["res"], "its response"))


def _timestamp(text: str, what: str) -> int:
    """The integer `timestamp` of a signed API request or response (replay checks need it)."""
    obj = _json(text, what)
    value = obj.get("timestamp") if isinstance(obj, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise Malformed(f"{what} has no integer timestamp")
    return value


def _root(db: Bucket, path: Path) -> tuple[Bucket, int]:
    """vspbkt and its schema version, or Refused: not EXCCoin/vspd's, or a version we do not know."""
    vsp = db.bucket(b"vspbkt")
    if vsp is None or db.values or set(db.buckets) != {b"vspbkt"}:
        raise Refused(f"{path} is a bbolt database but not an EXCCoin/vspd one (its top level is "
                      f"{sorted(k.decode(errors='replace') for k in db.keys())}, not vspbkt)")
    raw = vsp.get(b"version")
    if raw is None or len(raw) != 4:
        raise Refused(f"{path}: the vspd database has no valid schema version")
    version = int.from_bytes(raw, "little")
    if version not in KNOWN_VERSIONS:
        raise Refused(f"{path}: unknown EXCCoin/vspd schema version {version} (known: "
                      f"{', '.join(map(str, KNOWN_VERSIONS))}); decred/vspd databases (version 5 and up) are not "
                      f"EXCC ones")
    expected = {b"ticketbkt", b"votechangebkt"} | ({b"altsigbkt"} if version >= 4 else set())
    unknown = sorted(k.decode(errors="replace") for k in set(vsp.values) - ROOT_KEYS)
    if set(vsp.buckets) != expected or unknown:
        raise Refused(f"{path}: schema version {version} should hold buckets "
                      f"{sorted(k.decode() for k in expected)} and no unknown keys; it holds "
                      f"{sorted(k.decode(errors='replace') for k in vsp.keys())}")
    return vsp, version


def _keys(vsp: Bucket, path: Path, net: NetParams) -> tuple[bytes, bytes, str, bip32.ExtendedPublicKey, int]:
    seed = vsp.get(b"privatekey")
    if seed is None or len(seed) != 32:
        raise Refused(f"{path}: the signing key is {'missing' if seed is None else f'{len(seed)} bytes'}, "
                      f"not a 32-byte ed25519 seed")
    try:
        text = _text(vsp.get(b"feeXPub") or b"", "feeXPub")
    except Malformed as e:
        raise Refused(f"{path}: {e}") from None
    try:
        xpub = bip32.decode_xpub(text, net)
    except ChainError as e:
        other = [n for n in NETWORKS.values() if n is not net and _decodes(text, n)]
        if other:
            raise Refused(f"{path} belongs to {other[0].name}, not {net.name}: its fee xpub is a "
                          f"{other[0].name} key") from None
        raise Refused(f"{path}: the fee xpub is invalid: {e}") from None
    raw = vsp.get(b"lastaddressindex")
    if raw is not None and len(raw) != 4:
        raise Refused(f"{path}: lastaddressindex is {len(raw)} bytes, not 4")
    last = 0 if raw is None else int.from_bytes(raw, "little")
    return seed, vsp.get(b"cookieSecret") or b"", text, xpub, last


def _decodes(text: str, net: NetParams) -> bool:
    try:
        bip32.decode_xpub(text, net)
        return True
    except ChainError:
        return False


def load(path: Path, net: NetParams) -> GoDatabase:
    """Read and check the whole database; Refused, listing every problem, if any part is wrong."""
    path = Path(path)
    try:
        db = read(path)
    except BoltError as e:
        raise Refused(str(e)) from None
    vsp, version = _root(db, path)
    seed, cookie, xpub_text, xpub, last = _keys(vsp, path, net)
    out = GoDatabase(path, version, seed, cookie, xpub_text, last)
    check = _Checker(net, xpub)
    problems: list[str] = []
    tickets = vsp.bucket(b"ticketbkt")
    for key in tickets.keys():
        name = key.decode(errors="replace")
        try:
            if version >= 3:
                if key not in tickets.buckets:
                    raise Malformed("is a value, not a ticket bucket")
                fields = _ticket_fields_v3(tickets.buckets[key])
            else:
                if key not in tickets.values:
                    raise Malformed("is a bucket, not a JSON ticket")
                fields = _ticket_fields_v1(tickets.values[key])
            out.tickets.append(check.ticket(name, fields, version))
        except Malformed as e:
            problems.append(f"ticket {name}: {e}")
    changes = vsp.bucket(b"votechangebkt")
    for key in changes.keys():
        name = key.decode(errors="replace")
        bkt = changes.bucket(key)
        if bkt is None or not _is_hash(name) or bkt.buckets:
            problems.append(f"vote changes {name}: not a bucket of records named by a ticket hash")
            continue
        records = []
        for seq_key, raw in bkt.values.items():
            try:
                records.append(check.vote_change(_u32(seq_key, "its sequence number"), raw))
            except Malformed as e:
                problems.append(f"vote change {seq_key.hex()} of {name}: {e}")
        out.vote_changes[name] = sorted(records, key=lambda r: r.seq)
    alt = vsp.bucket(b"altsigbkt")
    for key in alt.keys() if alt else []:
        name = key.decode(errors="replace")
        try:
            if key not in alt.buckets:
                raise Malformed("is a value, not a bucket")
            out.alt_signs.append(check.alt_sign(name, alt.buckets[key]))
        except Malformed as e:
            problems.append(f"alternate sign address {name}: {e}")
    seen: dict[int, str] = {}
    for t in out.tickets:
        if t.fee_address_index in seen:
            problems.append(f"tickets {seen[t.fee_address_index]} and {t.hash} share fee address index "
                            f"{t.fee_address_index}")
        seen[t.fee_address_index] = t.hash
    if problems:
        raise Refused(f"{path}: {len(problems)} malformed record(s); nothing was imported", problems)
    return out

"""EXCC transactions: Decred's wire format with SHA-256 transaction ids.

Also the two recognisers the VSP needs: a solo ticket purchase (and the
commitment and voting addresses inside it) and a context-free sanity check
of a fee transaction.
"""

from dataclasses import dataclass, field

from .address import P2PKH, P2SH, Address, script_address
from .errors import ChainError
from .hashes import sha256
from .message import varint
from .params import MAX_ATOMS, NETWORKS, NetParams

SER_FULL, SER_NO_WITNESS, SER_ONLY_WITNESS = 0, 1, 2
MAX_SCRIPT_SIZE = 16384
OP_RETURN, OP_SSTX, OP_SSTXCHANGE = 0x6A, 0xBA, 0xBD
MAX_SSTX_INPUTS = 64
MAX_SSTX_OUTPUTS = 2 * MAX_SSTX_INPUTS + 1
MAX_TX_BYTES = max(n.max_tx_size for n in NETWORKS.values())  # nothing larger is a transaction anywhere


@dataclass
class TxIn:
    prev_hash: bytes  # internal byte order
    prev_index: int
    tree: int
    sequence: int = 0xFFFFFFFF
    value_in: int = 0
    block_height: int = 0
    block_index: int = 0xFFFFFFFF
    sig_script: bytes = b""

    @property
    def prev_txid(self) -> str:
        return self.prev_hash[::-1].hex()


@dataclass
class TxOut:
    value: int
    script: bytes
    version: int = 0


@dataclass
class Tx:
    version: int = 1
    inputs: list[TxIn] = field(default_factory=list)
    outputs: list[TxOut] = field(default_factory=list)
    locktime: int = 0
    expiry: int = 0

    # -- serialization --------------------------------------------------
    def _prefix(self) -> bytes:
        out = [varint(len(self.inputs))]
        for i in self.inputs:
            out.append(i.prev_hash + i.prev_index.to_bytes(4, "little") + bytes([i.tree])
                       + i.sequence.to_bytes(4, "little"))
        out.append(varint(len(self.outputs)))
        for o in self.outputs:
            out.append(o.value.to_bytes(8, "little", signed=True) + o.version.to_bytes(2, "little")
                       + varint(len(o.script)) + o.script)
        out.append(self.locktime.to_bytes(4, "little") + self.expiry.to_bytes(4, "little"))
        return b"".join(out)

    def _witness(self) -> bytes:
        out = [varint(len(self.inputs))]
        for i in self.inputs:
            out.append(i.value_in.to_bytes(8, "little", signed=True)
                       + i.block_height.to_bytes(4, "little") + i.block_index.to_bytes(4, "little")
                       + varint(len(i.sig_script)) + i.sig_script)
        return b"".join(out)

    def serialize(self) -> bytes:
        return (self.version | SER_FULL << 16).to_bytes(4, "little") + self._prefix() + self._witness()

    def prefix_serialization(self) -> bytes:
        return (self.version | SER_NO_WITNESS << 16).to_bytes(4, "little") + self._prefix()

    def txid(self) -> str:
        """Transaction id: byte-reversed single SHA-256 of the prefix."""
        return sha256(self.prefix_serialization())[::-1].hex()


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise ChainError(f"transaction truncated while reading {what} at byte {self.pos}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def uint(self, n: int, what: str) -> int:
        return int.from_bytes(self.take(n, what), "little")

    def varint(self, what: str) -> int:
        first = self.uint(1, what)
        if first < 0xFD:
            return first
        size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
        n = self.uint(size, what)
        if n < {2: 0xFD, 4: 0x10000, 8: 0x100000000}[size]:
            raise ChainError(f"non-canonical varint for {what} at byte {self.pos - size - 1}")
        return n

    def count(self, what: str, min_item_size: int) -> int:
        n = self.varint(what)
        if n * min_item_size > len(self.data) - self.pos:
            raise ChainError(f"transaction truncated: {n} {what} cannot fit in the remaining bytes")
        return n

    def varbytes(self, what: str) -> bytes:
        n = self.varint(what)
        if n > MAX_SCRIPT_SIZE:
            raise ChainError(f"{what} of {n} bytes exceeds the maximum of {MAX_SCRIPT_SIZE}")
        return self.take(n, what)


def deserialize(raw: bytes) -> Tx:
    """Parse a full (or prefix-only) serialized transaction; no trailing bytes."""
    if not isinstance(raw, (bytes, bytearray)):
        raise ChainError("transaction must be bytes")
    if len(raw) > MAX_TX_BYTES:
        raise ChainError(f"transaction of {len(raw)} bytes exceeds the maximum of {MAX_TX_BYTES}")
    r = _Reader(bytes(raw))
    ver = r.uint(4, "version")
    version, ser = ver & 0xFFFF, ver >> 16
    if ser not in (SER_FULL, SER_NO_WITNESS):
        raise ChainError(f"unsupported transaction serialization type {ser}")
    tx = Tx(version=version)
    for _ in range(r.count("inputs", 41)):
        tx.inputs.append(TxIn(r.take(32, "input outpoint hash"), r.uint(4, "input outpoint index"),
                              r.uint(1, "input tree"), r.uint(4, "input sequence")))
    for _ in range(r.count("outputs", 11)):
        value = int.from_bytes(r.take(8, "output value"), "little", signed=True)
        tx.outputs.append(TxOut(value, version=r.uint(2, "output script version"),
                                script=r.varbytes("output script")))
    tx.locktime = r.uint(4, "locktime")
    tx.expiry = r.uint(4, "expiry")
    if ser == SER_FULL:
        n = r.count("witnesses", 17)
        if n != len(tx.inputs):
            raise ChainError(f"witness count {n} does not match input count {len(tx.inputs)}")
        for txin in tx.inputs:
            txin.value_in = int.from_bytes(r.take(8, "witness value"), "little", signed=True)
            txin.block_height = r.uint(4, "witness block height")
            txin.block_index = r.uint(4, "witness block index")
            txin.sig_script = r.varbytes("signature script")
    if r.pos != len(r.data):
        raise ChainError(f"{len(r.data) - r.pos} trailing bytes after the transaction")
    return tx


def from_hex(text: str) -> Tx:
    if not isinstance(text, str):
        raise ChainError("transaction hex must be a string")
    if len(text) > 2 * MAX_TX_BYTES:
        raise ChainError(f"transaction hex of {len(text)} characters exceeds the maximum of {MAX_TX_BYTES} bytes")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ChainError("transaction is not valid hex") from None
    return deserialize(raw)


# -- tickets -------------------------------------------------------------

def _tagged_address(script: bytes, tag: int, net: NetParams) -> Address | None:
    if not script or script[0] != tag:
        return None
    return script_address(script[1:], net)


def _is_commitment(script: bytes) -> bool:
    return (32 <= len(script) <= 77 and script[0] == OP_RETURN
            and 30 <= script[1] <= 75 and script[1] == len(script) - 2)


def ticket_problem(tx: Tx, net: NetParams) -> str | None:
    """Why `tx` is not a solo ticket purchase vspd accepts, or None."""
    nin, nout = len(tx.inputs), len(tx.outputs)
    if nout == 0 or nin == 0:
        return "ticket has no inputs or no outputs"
    if nin > MAX_SSTX_INPUTS or nout > MAX_SSTX_OUTPUTS:
        return "ticket has too many inputs or outputs"
    if nout != 2 * nin + 1:
        return "ticket output count is not 2 x inputs + 1"
    if any(o.version != 0 for o in tx.outputs):
        return "ticket has a non-zero script version"
    if _tagged_address(tx.outputs[0].script, OP_SSTX, net) is None:
        return "ticket output 0 is not an OP_SSTX payment"
    for i in range(1, nout):
        script = tx.outputs[i].script
        if i % 2 == 1 and not _is_commitment(script):
            return f"ticket output {i} is not a commitment"
        if i % 2 == 0 and _tagged_address(script, OP_SSTXCHANGE, net) is None:
            return f"ticket output {i} is not an OP_SSTXCHANGE payment"
    if nout != 3:
        return "ticket is not a solo ticket (exactly 3 outputs)"
    return None


def is_ticket(tx: Tx, net: NetParams) -> bool:
    return ticket_problem(tx, net) is None


def commitment_address(tx: Tx, net: NetParams) -> Address:
    """The address committed in output 1 (it signs the staker's requests)."""
    if len(tx.outputs) < 2 or not _is_commitment(tx.outputs[1].script):
        raise ChainError("transaction has no ticket commitment in output 1")
    s = tx.outputs[1].script
    kind = P2SH if s[29] & 0x80 else P2PKH
    return Address(net, kind, s[2:22])


def voting_address(tx: Tx, net: NetParams) -> Address:
    """The address in output 0 whose key votes the ticket."""
    addr = _tagged_address(tx.outputs[0].script, OP_SSTX, net) if tx.outputs else None
    if addr is None:
        raise ChainError("transaction has no OP_SSTX output 0")
    return addr


def voting_script(addr: Address) -> bytes:
    """The ticket output-0 script that gives `addr` the voting rights."""
    return bytes([OP_SSTX]) + addr.script()


# -- fee transactions ----------------------------------------------------

def sanity_problem(tx: Tx, net: NetParams) -> str | None:
    """Context-free checks exccd applies to any transaction, or None."""
    if not tx.inputs:
        return "transaction has no inputs"
    if not tx.outputs:
        return "transaction has no outputs"
    if len(tx.serialize()) > net.max_tx_size:
        return f"transaction is larger than {net.max_tx_size} bytes"
    total = 0
    for i, o in enumerate(tx.outputs):
        if not 0 <= o.value <= MAX_ATOMS:
            return f"output {i} value {o.value} is out of range"
        total += o.value
        if total > MAX_ATOMS:
            return "total output value is out of range"
    seen = set()
    for txin in tx.inputs:
        key = (txin.prev_hash, txin.prev_index, txin.tree)
        if key in seen:
            return "transaction spends the same outpoint twice"
        seen.add(key)
    return None


def paid_to(tx: Tx, addr: Address) -> int:
    """Value of the first version-0 output paying `addr` (0 if none)."""
    script = addr.script()
    for o in tx.outputs:
        if o.version == 0 and o.script == script:
            return o.value
    return 0

"""exccd's verbose JSON of a transaction, from its wire bytes, as exccd 2.7.6 writes it.

The fake exccd answers getrawtransaction and getblock with it, so that its
answers have the real shape (tests/data/rpc_shapes.json): the same keys,
left out where exccd leaves them out (omitempty), values that could be real.
"""

from dataclasses import dataclass

from vspd.chain import tx as txmod
from vspd.chain.address import P2PKH, P2SH, Address, script_address
from vspd.chain.params import COIN, NetParams

OP_SSGEN, OP_SSRTX = 0xBB, 0xBC
_NAMES = {0x00: "OP_0", 0x6A: "OP_RETURN", 0x76: "OP_DUP", 0x87: "OP_EQUAL", 0x88: "OP_EQUALVERIFY",
          0xA9: "OP_HASH160", 0xAC: "OP_CHECKSIG", txmod.OP_SSTX: "OP_SSTX", OP_SSGEN: "OP_SSGEN",
          OP_SSRTX: "OP_SSRTX", txmod.OP_SSTXCHANGE: "OP_SSTXCHANGE"}
_STAKE_TAGS = {txmod.OP_SSTX: "stakesubmission", OP_SSGEN: "stakegen", OP_SSRTX: "stakerevoke",
               txmod.OP_SSTXCHANGE: "stakechange"}
NO_PREVIOUS = (b"\x00" * 32, 0xFFFFFFFF)


@dataclass(frozen=True)
class Mined:
    """Where a transaction is in the chain, as getrawtransaction reports it."""
    block_hash: str
    height: int
    index: int
    confirmations: int
    time: int


def disasm(script: bytes) -> str:
    """Opcodes by name, pushed data as hex, as exccd's asm fields."""
    out, i = [], 0
    while i < len(script):
        op = script[i]
        i += 1
        if 0x01 <= op <= 0x4B:
            out.append(script[i:i + op].hex())
            i += op
        elif op in (0x4C, 0x4D):
            width = 1 if op == 0x4C else 2
            n = int.from_bytes(script[i:i + width], "little")
            out.append(script[i + width:i + width + n].hex())
            i += width + n
        else:
            out.append(_NAMES.get(op, f"OP_UNKNOWN{op}"))
    return " ".join(out)


def _payment(script: bytes, net: NetParams) -> tuple[str, Address | None]:
    addr = script_address(script, net)
    return ("pubkeyhash" if addr is None or addr.kind == P2PKH else "scripthash"), addr


def script_pubkey(script: bytes, net: NetParams, commitment: bool = False) -> dict:
    """An output script as exccd describes it: type, addresses, and (`commitment`: a ticket's odd output) the amount."""
    kind, addresses, req_sigs, commit = "nonstandard", [], 0, None
    addr = script_address(script, net)
    if addr is not None:
        kind, addresses, req_sigs = _payment(script, net)[0], [str(addr)], 1
    elif script and script[0] in _STAKE_TAGS and script_address(script[1:], net) is not None:
        suffix, addr = _payment(script[1:], net)
        kind, addresses, req_sigs = f"{_STAKE_TAGS[script[0]]}-{suffix}", [str(addr)], 1
    elif commitment and txmod._is_commitment(script):
        amount = int.from_bytes(script[22:30], "little")
        addr = Address(net, P2SH if amount >> 63 else P2PKH, script[2:22])
        kind, addresses, commit = "sstxcommitment", [str(addr)], (amount & ~(1 << 63)) / COIN
    elif script[:1] == bytes([txmod.OP_RETURN]):
        kind = "nulldata"
    out: dict = {"asm": disasm(script)}
    if script:
        out["hex"] = script.hex()
    if req_sigs:
        out["reqSigs"] = req_sigs
    out["type"] = kind
    if addresses:
        out["addresses"] = addresses
    if commit is not None:
        out["commitamt"] = commit
    out["version"] = 0
    return out


def is_vote(t: txmod.Tx) -> bool:
    return any(o.script[:1] == bytes([OP_SSGEN]) for o in t.outputs)


def is_revocation(t: txmod.Tx) -> bool:
    return bool(t.outputs) and all(o.script[:1] == bytes([OP_SSRTX]) for o in t.outputs)


def is_stake(t: txmod.Tx, net: NetParams) -> bool:
    return txmod.is_ticket(t, net) or is_vote(t) or is_revocation(t)


def vin(t: txmod.Tx, i: txmod.TxIn) -> dict:
    """An input: a coinbase's or a vote's stakebase have no previous output and no scriptSig."""
    common = {"sequence": i.sequence, "amountin": i.value_in / COIN, "blockheight": i.block_height,
              "blockindex": i.block_index}
    if (i.prev_hash, i.prev_index) == NO_PREVIOUS:
        return {("stakebase" if is_vote(t) else "coinbase"): i.sig_script.hex(), **common}
    return {"txid": i.prev_txid, "vout": i.prev_index, "tree": i.tree, **common,
            "scriptSig": {"asm": disasm(i.sig_script), "hex": i.sig_script.hex()}}


def tx_json(t: txmod.Tx, net: NetParams, mined: Mined | None = None) -> dict:
    """getrawtransaction's verbose answer (and an element of getblock's rawtx and rawstx)."""
    ticket = txmod.is_ticket(t, net)
    out = {"hex": t.serialize().hex(), "txid": t.txid(), "version": t.version, "locktime": t.locktime,
           "expiry": t.expiry, "vin": [vin(t, i) for i in t.inputs],
           "vout": [{"value": o.value / COIN, "n": n, "version": o.version,
                     "scriptPubKey": script_pubkey(o.script, net, commitment=ticket and n % 2 == 1)}
                    for n, o in enumerate(t.outputs)]}
    if mined is not None:  # every one of these is omitempty
        out.update(blockhash=mined.block_hash, blockheight=mined.height)
        if mined.index:
            out["blockindex"] = mined.index
        if mined.confirmations:
            out["confirmations"] = mined.confirmations
        out.update(time=mined.time, blocktime=mined.time)
    return out

"""Vectors of spec §7.2 and §7.1 for the EXCC chain layer."""

import base64

import coincurve
import pytest

from vspd.chain import address, base58, bip32, fees, message, tx, wif
from vspd.chain.errors import ChainError
from vspd.chain.hashes import _ripemd160_pure, hash160, sha256
from vspd.chain.params import MAINNET, SIMNET, TESTNET
from vspd.chain.semver import SemVer, at_least, compatible


@pytest.mark.parametrize("text,encoded", [
    ("", "Axhppa8m"), (" ", "kxg8SBkM8"), ("-", "kxhWpA6cc"), ("0", "kxhu1ybpU"),
    ("1", "kxhxbz7Yy"), ("-1", "4M2qnPwaJCF"), ("11", "4M2smyQkogP"), ("abc", "FmT72s7MpKqS"),
    ("1234598760", "3UFLKR4oYrL1hSX1DmPYSM"),
    ("abcdefghijklmnopqrstuvwxyz", "2M5VSfthNqvveeGWTcKRgY4Rm258o4ZDKBZGkAQBHEUE"),
    ("0" * 62, "3cmTs9hNQGCVmurJUgS7UokKFYZCCJWvWfYRBCaox5hXDn3Giiy1u9AEKn7vLS8K87BcDr6Ckr4JYRnnaSMRDsB6p2HvZ"),
])
def test_base58check_vectors(text, encoded):
    assert base58.check_encode(bytes([20, 0]) + text.encode()) == encoded
    assert base58.check_decode(encoded, 2) == (bytes([20, 0]), text.encode())


def test_base58check_errors():
    with pytest.raises(ChainError, match="checksum"):
        base58.check_decode("Axk2WA6M", 2)
    with pytest.raises(ChainError, match="invalid format"):
        base58.check_decode("3MNQE1X", 2)  # decodes to fewer than 6 bytes
    with pytest.raises(ChainError, match="invalid character"):
        base58.b58decode("0OIl")


def test_ripemd_fallback_matches():
    assert _ripemd160_pure(b"").hex() == "9c1185a5c5e9fc54612808977ee8f548b2258d31"
    assert _ripemd160_pure(b"abc").hex() == "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"
    long = bytes(range(200))
    assert _ripemd160_pure(sha256(long)) == hash160(long)


def test_message_signature_vectors():
    msg = b"verifymessage test"
    preimage = bytes.fromhex("1d45786368616e6765436f696e205369676e6564204d6573736167653a0a127665726966796d6573736167652074657374")
    assert message.varint(len(message.MAGIC)) + message.MAGIC + message.varint(len(msg)) + msg == preimage
    assert message.message_digest(msg).hex() == "f2dfd48ab54d9e2a6f4217948cb7911174c609c85ae22736ea562b5c5a4a5fda"
    good = "HxvjYfirrn3ccDhg26XSi/6y5+tIbuuOFLgF70pTeDSvWYE9/II6pZFaIvp95pfyaBhFhht7Dt5TvRe7g5BTwfQ="
    assert message.verify_message("TsULH3kCRvDjwTh9CoMnhiNMUkk2JvaecRB", good, msg, TESTNET)
    sig = base64.b64decode(good)
    assert sig[0] == 31
    assert str(message.recover_address(sig, msg, TESTNET)) == "TsULH3kCRvDjwTh9CoMnhiNMUkk2JvaecRB"
    assert str(message.recover_address(sig, msg, MAINNET)) == "22to9Rtd1oYwSWGroZJMFjwBxEdtQNt48K2R"
    # wrong address
    assert not message.verify_message(
        "TsakkhCjU7t4D46AkeNoCshtunX5rSfghJX",
        "IHJ2BFnXaXgvKsBvdNTTlHYmbM8Dy/xihFNLq/F+9LbcPYicaSy7+wwNU7LliD4PJyy9rKSqeOQDl0xAV416CKI=", msg, TESTNET)
    wrong_sig = "IAmUid56BTjvPYSuwgv1n8tDl8f7dqNZOhpvie4H3OaYVjdhRWFeRSjsUN3D7mfRhiV/9OIsWKepJ9ghrvHUbh8="
    # wrong signature
    assert not message.verify_message("TsVGSmQMRDX8wQu82SuWQedmXCWW9hEPApz", wrong_sig, msg, TESTNET)
    assert str(message.recover_address(base64.b64decode(wrong_sig), msg, TESTNET)) == "TsVRVzw5Nbjp4eVVhq2y9ankcNp78imTGKd"
    # wrong params: a testnet address checked against mainnet fails to decode
    assert message.verify_message("TsVRVzw5Nbjp4eVVhq2y9ankcNp78imTGKd", wrong_sig, msg, TESTNET)
    assert not message.verify_message("TsVRVzw5Nbjp4eVVhq2y9ankcNp78imTGKd", wrong_sig, msg, MAINNET)


def test_recovered_pubkey_vector():
    sig = base64.b64decode("HxvjYfirrn3ccDhg26XSi/6y5+tIbuuOFLgF70pTeDSvWYE9/II6pZFaIvp95pfyaBhFhht7Dt5TvRe7g5BTwfQ=")
    pub = coincurve.PublicKey.from_signature_and_message(
        sig[1:] + bytes([sig[0] - 31]), message.message_digest(b"verifymessage test"), hasher=None)
    assert pub.format().hex() == "02b4d7b0e67d96cf9bcf7253a43342177e5c2a0b10322aea025d85f893ec06fd20"
    assert hash160(pub.format()).hex() == "2457053586efd8465cd871a0d0ce506e359efa5a"


def test_sign_then_verify_roundtrip():
    key = bytes(range(1, 33))
    addr = address.Address.from_pubkey(coincurve.PrivateKey(key).public_key.format(), SIMNET)
    sig = message.sign_message(key, b"hello")
    assert message.verify_message(str(addr), base64.b64encode(sig).decode(), b"hello", SIMNET)
    assert not message.verify_message(str(addr), base64.b64encode(sig).decode(), b"hellO", SIMNET)


def test_txid_vector():
    prefix = bytes.fromhex(
        "01000100010000000000000000000000000000000000000000000000000000000000000000ffffffff00ffffffff"
        "0100f2052a01000000f0f0434104d64bdfd09eb1c5fe295abdeb1dca4281be988e2da0b6c1c6a59dc226c28624e1"
        "8175e851c96b973d81b01cc31f047834bc06d6d6edf620d184241a6aed8b63a6ac0000000000000000")
    t = tx.deserialize(prefix)
    assert t.prefix_serialization() == prefix
    assert t.txid() == "1cc7d871e65acac617d0cc9e01a49bc3a5fb31d2c222c65b6b041caa6e1aff47"
    assert sha256(prefix)[::-1].hex() == t.txid()
    # full serialization round-trips too
    full = t.serialize()
    assert tx.deserialize(full).txid() == t.txid()
    assert tx.deserialize(full).serialize() == full


def test_tx_errors_are_precise():
    full = tx.Tx(inputs=[tx.TxIn(b"\x11" * 32, 0, 0)], outputs=[tx.TxOut(5, b"\x51")]).serialize()
    with pytest.raises(ChainError, match="truncated"):
        tx.deserialize(full[:-3])
    with pytest.raises(ChainError, match="2 trailing bytes"):
        tx.deserialize(full + b"\x00\x00")
    with pytest.raises(ChainError, match="serialization type"):
        tx.deserialize(b"\x01\x00\x05\x00" + full[4:])
    with pytest.raises(ChainError, match="not valid hex"):
        tx.from_hex("zz")


@pytest.mark.parametrize("key,net,text", [
    ("0c28fca386c7a227600b2fe50b7cae11ec86d3bf1fbe471be89827e19d72aa1d", MAINNET, "5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ"),
    ("0c28fca386c7a227600b2fe50b7cae11ec86d3bf1fbe471be89827e19d72aa1d", MAINNET, "KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98617"),
    ("0c28fca386c7a227600b2fe50b7cae11ec86d3bf1fbe471be89827e19d72aa1d", MAINNET, "KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvWxyf5d"),
    ("0c28fca386c7a227600b2fe50b7cae11ec86d3bf1fbe471be89827e19d72aa1d", MAINNET, "KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvbMrQyG"),
    ("dda35a1488fb97b6eb3fe6e9ef2a25814e396fb5dc295fe994b96789b21a0398", TESTNET, "93GXcP5BqkAxXrV7N2EjmjAeGwfvrX7ALLXTnfZExxtn4QXMjjs"),
    ("dda35a1488fb97b6eb3fe6e9ef2a25814e396fb5dc295fe994b96789b21a0398", TESTNET, "cV1Y7ARUr9Yx7BR55nTdnR7ZXNJphZtCCMBTEZBJe1hXt2kB684q"),
    ("dda35a1488fb97b6eb3fe6e9ef2a25814e396fb5dc295fe994b96789b21a0398", TESTNET, "cV1Y7ARUr9Yx7BR55nTdnR7ZXNJphZtCCMBTEZBJe1hXt32Z7LP9"),
])
def test_wif_vectors(key, net, text):
    w = wif.decode(text, net)
    assert w.privkey.hex() == key
    assert w.encode() == text


def test_wif_key_types_and_network():
    assert wif.decode("KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98617").key_type == wif.SECP256K1
    assert wif.decode("KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvWxyf5d").key_type == wif.ED25519
    assert wif.decode("KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvbMrQyG").key_type == wif.SCHNORR
    assert not wif.decode("5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ").compressed
    with pytest.raises(ChainError, match="not for testnet"):
        wif.decode("KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98617", TESTNET)
    with pytest.raises(ChainError, match="checksum"):
        wif.decode("KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98618")
    assert "0c28" not in repr(wif.decode("KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98617"))


M = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8"
M0H = "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw"
M0H1 = "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ"


def test_bip32_vectors():
    assert str(bip32.decode_xpub(M, MAINNET)) == M
    k = bip32.decode_xpub(M0H, MAINNET)
    assert str(k.child(1)) == M0H1
    addrs = [str(bip32.fee_address(k, i)) for i in (1, 2, 3)]
    assert addrs == ["22tuqje77QEvTJcy4t3J1sGYU3NuPCWMfqQh", "22twrdEyFeYPq3BPLfpc25V2TiASmUePNjvQ",
                     "22u4wHdE6i9bS3mtKtwjWNxdwTVi3ya21CRS"]
    assert k.child(0).child(1).pubkey.hex() == "02c8a17867e2cadc451a3071eff3499769a8dc1f25f407acd8d71f7938a8160de7"


def test_bip32_rejects():
    with pytest.raises(ChainError, match="for mainnet, not testnet"):
        bip32.decode_xpub(M0H, TESTNET)
    xprv = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"
    with pytest.raises(ChainError, match="private"):
        bip32.decode_xpub(xprv, MAINNET)
    with pytest.raises(ChainError, match="checksum"):
        bip32.decode_xpub(M[:-1] + "9", MAINNET)
    with pytest.raises(ChainError, match="hardened"):
        bip32.decode_xpub(M, MAINNET).child(bip32.HARDENED)


def test_address_decoding():
    a = address.decode("22tvpZDn7JdAdZHRUass8eXYK3xzDp6YaVc8", MAINNET)
    assert a.kind == address.P2PKH and str(a) == "22tvpZDn7JdAdZHRUass8eXYK3xzDp6YaVc8"
    with pytest.raises(ChainError, match="is for testnet, not mainnet"):
        address.decode("Tsn4pQV6i5HQz53cWM8Y4HkqnmY2o7qm4bz", MAINNET)
    with pytest.raises(ChainError, match='failed to decode address "xxx": invalid format'):
        address.decode("xxx", MAINNET)
    p2sh = address.Address(SIMNET, address.P2SH, b"\x01" * 20)
    assert str(p2sh).startswith("Sc")
    assert address.decode(str(p2sh), SIMNET) == p2sh
    assert str(address.Address(SIMNET, address.P2PKH, b"\x01" * 20)).startswith("Ss")


@pytest.mark.parametrize("net,height,sdiff,pct,fee", [
    (MAINNET, 1_000_000, 10_000_000_000, 3.0, 967_446),
    (MAINNET, 500_000, 5_000_000_000, 2.0, 1_680_472),
    (MAINNET, 100_000, 200_000_000, 0.5, 483_298),
    (TESTNET, 200_000, 1_000_000_000, 3.0, 4_025_885),
])
def test_fee_vectors(net, height, sdiff, pct, fee):
    assert fees.vsp_fee(sdiff, height, pct, net) == fee


def test_subsidy_vectors():
    assert fees.block_subsidy(1_000_000, MAINNET) == 544_600_762
    assert fees.vote_subsidy(1_000_000, MAINNET) == 32_676_045
    assert fees.vote_subsidy(142, SIMNET) == 0  # below SVH-1: fee is zero
    assert fees.vote_subsidy(143, SIMNET) > 0
    assert fees.coins_to_atoms(0.29999999) == 29_999_999
    assert fees.coins_to_atoms(2.5) == 250_000_000


@pytest.mark.parametrize("req,act,ok", [
    ("1.2.3", "1.2.3", True), ("0.0.0", "0.0.0", True), ("450.378.210", "450.378.210", True),
    ("1.2.3", "2.2.3", False), ("2.2.3", "1.2.3", False),
    ("1.2.0", "1.3.0", True), ("1.2.9", "1.3.0", True), ("1.3.0", "1.2.9", False),
    ("1.2.3", "1.2.4", True), ("1.2.4", "1.2.3", False),
    ("7.0.0", "7.0.0", True), ("8.8.0", "8.9.0", True),
])
def test_semver_compatibility(req, act, ok):
    assert compatible(SemVer.parse(req), SemVer.parse(act)) is ok


def test_semver_strings_and_order():
    assert str(SemVer(1, 2, 3)) == "1.2.3" and str(SemVer(2, 0, 1)) == "2.0.1"
    assert str(SemVer.parse("1.2.0-pre+98d3d3a55")) == "1.2.0-pre+98d3d3a55"
    assert at_least(SemVer.parse("1.2.0-pre"), SemVer.parse("1.1.0"))
    assert not at_least(SemVer.parse("1.1.0-pre"), SemVer.parse("1.1.0"))
    for bad in ("1.2", "v1.2.3", "01.2.3", "1.2.3-", ""):
        with pytest.raises(ChainError):
            SemVer.parse(bad)

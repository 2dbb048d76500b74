"""vspd/admin/fromgo/bbolt.py on files the real Go vspd wrote, on files of our writer that bbolt's layout rules
accept, and on damaged copies: a clean BoltError every time, never a crash, a hang or a write."""

import fcntl
import hashlib
import os
import random
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boltwriter import write
from godatabases import go_dbs, scenario  # noqa: F401  (fixture)
from vspd.admin.fromgo import bbolt
from vspd.admin.fromgo.bbolt import BoltError

PS = 4096


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reads_what_the_go_vspd_wrote(go_dbs):
    created = bbolt.read(go_dbs.path("created")).bucket(b"vspbkt")
    assert created.get(b"version") == (1).to_bytes(4, "little")  # CreateNew writes schema 1 ...
    assert sorted(created.buckets) == [b"ticketbkt", b"votechangebkt"]
    assert len(created.get(b"privatekey")) == 32 and len(created.get(b"cookieSecret")) == 32
    started = bbolt.read(go_dbs.path("started")).bucket(b"vspbkt")
    assert started.get(b"version") == (4).to_bytes(4, "little")  # ... and its first start upgrades it to 4
    assert sorted(started.buckets) == [b"altsigbkt", b"ticketbkt", b"votechangebkt"]
    upgraded = bbolt.read(go_dbs.path("upgraded")).bucket(b"vspbkt")
    tickets = upgraded.bucket(b"ticketbkt")
    assert sorted(tickets.buckets) == sorted(t.hash.encode() for t in scenario()) and not tickets.values
    big = next(t for t in scenario() if t.fee_hex_bytes)
    assert tickets.bucket(big.hash.encode()).get(b"FeeTxHex") == big.fee_hex.encode()  # an overflow page


def test_the_upgraded_file_has_every_kind_of_page(go_dbs):
    """Branch pages, overflow, inline and page buckets, a freelist: the reader has walked them all."""
    path = go_dbs.path("upgraded")
    buf = path.read_bytes()
    meta = bbolt._find_meta(buf, path)
    reader = bbolt._Reader(buf, meta, path)
    reader.bucket(meta.root, 0, None, 0, "root")
    reader.check_freelist()
    kinds = {struct.unpack_from("<H", buf, p * PS + 8)[0] for p in reader.used}
    overflow = [p for p in reader.used if struct.unpack_from("<I", buf, p * PS + 12)[0] and
                struct.unpack_from("<Q", buf, p * PS)[0] == p]
    assert {bbolt.BRANCH, bbolt.LEAF, bbolt.FREELIST} <= kinds and overflow


def test_reading_changes_nothing(go_dbs, tmp_path):
    path = tmp_path / "copy.db"
    path.write_bytes(go_dbs.path("upgraded").read_bytes())
    before, mtime = sha(path), path.stat().st_mtime_ns
    bbolt.read(path)
    assert sha(path) == before and path.stat().st_mtime_ns == mtime


def test_a_file_held_by_a_writer_is_refused(go_dbs):
    """bbolt takes an exclusive flock for as long as a writer (the Go vspd) has the file open."""
    path = go_dbs.path("started")
    with open(path, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        with pytest.raises(BoltError, match="open in a running program .* stop it first"):
            bbolt.read(path)
    bbolt.read(path)


keys = st.binary(min_size=1, max_size=40)
values = st.binary(max_size=6000)
trees = st.recursive(st.dictionaries(keys, values, max_size=30),
                     lambda inner: st.dictionaries(keys, st.one_of(values, inner), max_size=12), max_leaves=200)


@settings(max_examples=40, deadline=None)
@given(tree=st.dictionaries(keys, trees, min_size=1, max_size=4), leaf_items=st.sampled_from([None, 2, 5]),
       inline=st.booleans())
def test_round_trip_of_any_tree(tmp_path_factory, tree, leaf_items, inline):
    path = write(tmp_path_factory.mktemp("rt") / "t.db", tree, leaf_items=leaf_items, inline=inline)

    def plain(b: bbolt.Bucket) -> dict:
        return {**b.values, **{k: plain(v) for k, v in b.buckets.items()}}
    assert plain(bbolt.read(path)) == tree


# -- damaged files ---------------------------------------------------------------------------------------

@pytest.fixture
def sample(tmp_path):
    """A many-page file: branch pages, overflow, inline and page buckets."""
    tree = {b"vspbkt": {b"k%04d" % i: os.urandom(i % 300) for i in range(400)} | {
        b"big": os.urandom(9000), b"sub": {b"s%03d" % i: {b"x": b"y" * i} for i in range(60)}}}
    return write(tmp_path / "sample.db", tree, leaf_items=6), tree


def expect_clean_error(path, match: str | None = None) -> str:
    t0 = time.monotonic()
    with pytest.raises(BoltError, match=match) as e:
        bbolt.read(path)
    assert time.monotonic() - t0 < 5
    assert "\n" not in str(e.value)
    return str(e.value)


@pytest.mark.parametrize("content,match", [
    (b"", "not a bbolt database"), (b"hello\n" * 100, "not a bbolt database"),
    (bytes(8192), "not a bbolt database"), (b"SQLite format 3\x00" + bytes(20000), "not a bbolt database"),
])
def test_not_a_bbolt_file(tmp_path, content, match):
    path = tmp_path / "x.db"
    path.write_bytes(content)
    expect_clean_error(path, match)


def test_missing_file(tmp_path):
    expect_clean_error(tmp_path / "none.db", "cannot open")


def test_every_truncation_is_a_clean_error(sample, tmp_path):
    path, _ = sample
    data = path.read_bytes()
    cut = tmp_path / "cut.db"
    for size in sorted({*range(0, len(data), PS // 2), *random.Random(1).sample(range(len(data)), 40)}):
        cut.write_bytes(data[:size])
        expect_clean_error(cut)


def test_random_damage_never_escapes_as_anything_but_a_bolt_error(sample, tmp_path):
    path, tree = sample
    data = path.read_bytes()
    bad = tmp_path / "bad.db"
    rng = random.Random(7)
    outcomes = {"error": 0, "read": 0}
    for _ in range(400):
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(2 * PS, len(b))  # the metas are checksummed; the tree is what can lie
            b[at] = rng.randrange(256)
        bad.write_bytes(bytes(b))
        t0 = time.monotonic()
        try:
            bbolt.read(bad)
            outcomes["read"] += 1
        except BoltError:
            outcomes["error"] += 1
        assert time.monotonic() - t0 < 5
    assert outcomes["error"] > 50, outcomes


def patch(path, offset: int, fmt: str, *values) -> None:
    b = bytearray(path.read_bytes())
    struct.pack_into(fmt, b, offset, *values)
    path.write_bytes(bytes(b))


def meta_fields(path) -> bbolt.Meta:
    return bbolt.parse_meta(path.read_bytes(), 0)


def rewrite_meta(path, page: int, **changes) -> None:
    """Change meta fields and re-seal the checksum, as a lying but well-formed meta would be."""
    b = bytearray(path.read_bytes())
    at = page * PS + 16
    fields = list(struct.unpack_from("<IIIIQQQQQ", b, at))
    names = ["magic", "version", "page_size", "flags", "root", "seq", "freelist", "high", "txid"]
    for k, v in changes.items():
        fields[names.index(k)] = v
    body = struct.pack("<IIIIQQQQQ", *fields)
    b[at:at + 64] = body + struct.pack("<Q", bbolt.fnv1a64(body))
    path.write_bytes(bytes(b))


def test_meta_choice(sample):
    path, tree = sample
    assert bbolt.read(path).bucket(b"vspbkt").get(b"k0005") == tree[b"vspbkt"][b"k0005"]
    patch(path, PS + 16 + 56, "<Q", 0)  # the newer meta's checksum broken: the older one is used
    assert bbolt.read(path).bucket(b"vspbkt").get(b"k0005") == tree[b"vspbkt"][b"k0005"]
    patch(path, 16 + 56, "<Q", 0)
    expect_clean_error(path, "no valid meta page")


def test_wrong_bbolt_version_or_magic(sample):
    path, _ = sample
    rewrite_meta(path, 0, version=3)
    rewrite_meta(path, 1, magic=0x12345678)
    expect_clean_error(path, "not a bbolt database")


@pytest.mark.parametrize("page_size", [0, 1000, 3000, 1 << 30])
def test_absurd_page_size(sample, page_size):
    path, _ = sample
    rewrite_meta(path, 0, page_size=page_size)
    rewrite_meta(path, 1, page_size=page_size)
    expect_clean_error(path)


def test_meta_claims_more_pages_than_the_file_has(sample):
    path, _ = sample
    high = meta_fields(path).high_water
    for page in (0, 1):
        rewrite_meta(path, page, high=high + 1000)
    expect_clean_error(path, "truncated")


def test_root_outside_the_file(sample):
    path, _ = sample
    for page in (0, 1):
        rewrite_meta(path, page, root=1 << 40)
    expect_clean_error(path, "outside the file's pages")


def first_page_of(path, flags: int) -> int:
    data = path.read_bytes()
    return next(p for p in range(3, len(data) // PS) if struct.unpack_from("<QH", data, p * PS) == (p, flags))


def test_a_branch_that_points_at_itself(sample):
    path, _ = sample
    p = first_page_of(path, bbolt.BRANCH)
    patch(path, p * PS + 16 + 8, "<Q", p)
    expect_clean_error(path, "used twice")


def test_a_deep_chain_of_branches(tmp_path):
    """70 branch pages, each the only child of the one before: refused for depth, not for the stack."""
    path = write(tmp_path / "deep.db", {b"b": {b"k": b"v"}})
    data = bytearray(path.read_bytes())
    meta = bbolt.parse_meta(bytes(data), 0)
    first = meta.high_water
    n = 70
    for i in range(n):
        pg = bytearray(PS)
        struct.pack_into("<QHHI", pg, 0, first + i, bbolt.BRANCH, 1, 0)
        struct.pack_into("<IIQ", pg, 16, 16, 1, first + i + 1 if i < n - 1 else meta.root)
        pg[32] = ord("b")
        data += pg
    path.write_bytes(bytes(data))
    for page in (0, 1):
        rewrite_meta(path, page, root=first, high=first + n)
    expect_clean_error(path, "deeper than")


def test_a_page_that_says_it_is_another(sample):
    path, _ = sample
    p = first_page_of(path, bbolt.LEAF)
    patch(path, p * PS, "<Q", p + 1)
    expect_clean_error(path, f"page {p} says it is page {p + 1}")


def test_an_element_pointing_outside_its_page(sample):
    path, _ = sample
    p = first_page_of(path, bbolt.LEAF)
    patch(path, p * PS + 16 + 4, "<I", 10 * PS)
    expect_clean_error(path, "points outside its page")


def test_an_element_count_larger_than_the_page(sample):
    path, _ = sample
    p = first_page_of(path, bbolt.LEAF)
    patch(path, p * PS + 10, "<H", 0xFFFF)
    expect_clean_error(path, "elements do not fit")


def test_overflow_past_the_last_page(sample):
    path, _ = sample
    p = first_page_of(path, bbolt.LEAF)
    patch(path, p * PS + 12, "<I", 0xFFFFFFFF)
    expect_clean_error(path, "overflows past the last page")


def test_keys_out_of_order(tmp_path):
    path = write(tmp_path / "o.db", {b"b": {b"aa": b"1", b"ab": b"2"}}, inline=False)
    data = path.read_bytes()
    at = data.index(b"aa1ab2")
    patch(path, at, "6s", b"ab1aa2")
    expect_clean_error(path, "keys out of order")


def test_a_free_page_still_in_the_tree(sample):
    path, _ = sample
    p = first_page_of(path, bbolt.LEAF)
    patch(path, 2 * PS + 10, "<H", 1)
    patch(path, 2 * PS + 16, "<Q", p)
    expect_clean_error(path, f"page {p} is both free and in use")


def test_a_freelist_count_beyond_its_page(sample):
    path, _ = sample
    patch(path, 2 * PS + 10, "<H", 0xFFFF)
    patch(path, 2 * PS + 16, "<Q", 1 << 60)
    expect_clean_error(path, "more than its page holds")


def test_inline_buckets_nested_too_deep(tmp_path):
    tree: dict = {b"v": b"x"}
    for _ in range(80):
        tree = {b"n": tree}
    path = tmp_path / "nest.db"
    # our writer never inlines a bucket holding buckets (bbolt does not): build the inline chain by hand
    value = b""
    for _ in range(80):
        page = struct.pack("<QHHI", 0, bbolt.LEAF, 1, 0) + struct.pack("<IIII", 1 if value else 0, 16, 1,
                                                                       len(value) or 1) + b"n" + (value or b"x")
        value = struct.pack("<QQ", 0, 0) + page
    leaf = struct.pack("<QHHI", 3, bbolt.LEAF, 1, 0) + struct.pack("<IIII", 1, 16, 1, len(value)) + b"n" + value
    write(path, {b"a": {b"b": b"c"}})
    data = bytearray(path.read_bytes())
    meta = bbolt.parse_meta(bytes(data), 0)
    data += leaf.ljust(-(-len(leaf) // PS) * PS, b"\0")
    struct.pack_into("<Q", data, meta.high_water * PS, meta.high_water)
    struct.pack_into("<I", data, meta.high_water * PS + 12, -(-len(leaf) // PS) - 1)
    path.write_bytes(bytes(data))
    for page in (0, 1):
        rewrite_meta(path, page, root=meta.high_water, high=meta.high_water + -(-len(leaf) // PS))
    expect_clean_error(path, "nested deeper than")

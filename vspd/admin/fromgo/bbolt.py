"""A read-only reader of bbolt (BoltDB) files, strict about every bound.

Written from the bbolt v1.3 page format, to read the database of an
EXCCoin/vspd deployment that moves to this project. It opens the file
read-only under a shared lock (so it refuses while a program that writes
the file holds it, as a running Go vspd does), picks the newest meta page
whose checksum holds, and reads the whole tree into memory once. Every
offset is checked against its page or value before use, every page may be
visited only once and trees may only be so deep, so a damaged file gives a
BoltError naming what is wrong, never a crash, a loop or a huge allocation.

Format, as used here (all integers little-endian):
- page header (16 bytes): id u64, flags u16, count u16, overflow u32; a page
  spans (1 + overflow) * page size bytes. Flags: branch 0x01, leaf 0x02,
  meta 0x04, freelist 0x10.
- meta (after the header of pages 0 and 1): magic u32 0xED0CDAED, version
  u32 2, page size u32, flags u32, root bucket (root u64, sequence u64),
  freelist u64, high-water page id u64, txid u64, FNV-1a 64 of the previous
  56 bytes.
- branch element (16 bytes): pos u32, ksize u32, child page u64; leaf
  element (16 bytes): flags u32, pos u32, ksize u32, vsize u32. pos counts
  from the element itself. Leaf flag 0x01 marks a sub-bucket, whose value is
  a bucket header (root u64, sequence u64) followed, when root is 0, by the
  bucket's single leaf page inline.
"""

import fcntl
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = 0xED0CDAED
VERSION = 2
BRANCH, LEAF, META, FREELIST = 0x01, 0x02, 0x04, 0x10
BUCKET_LEAF = 0x01
NO_FREELIST = 0xFFFFFFFFFFFFFFFF
MIN_PAGE_SIZE, MAX_PAGE_SIZE = 1024, 1 << 24  # the sizes bbolt itself probes for
MAX_DEPTH = 64  # tree levels and bucket nesting; real files use a handful

_HEADER = struct.Struct("<QHHI")
_META = struct.Struct("<IIIIQQQQQQ")
_BRANCH_ELEM = struct.Struct("<IIQ")
_LEAF_ELEM = struct.Struct("<IIII")
_BUCKET = struct.Struct("<QQ")
HEADER_SIZE, ELEM_SIZE, BUCKET_HEADER_SIZE = _HEADER.size, 16, _BUCKET.size
Buffer = bytes | mmap.mmap  # slicing either gives bytes: nothing keeps the map exported


class BoltError(Exception):
    """The file is not a readable bbolt database; the message says why."""


@dataclass
class Bucket:
    """One bucket's plain values and sub-buckets, keys in file order."""
    sequence: int = 0
    values: dict[bytes, bytes] = field(default_factory=dict)
    buckets: dict[bytes, "Bucket"] = field(default_factory=dict)

    def get(self, key: bytes) -> bytes | None:
        return self.values.get(key)

    def bucket(self, key: bytes) -> "Bucket | None":
        return self.buckets.get(key)

    def keys(self) -> list[bytes]:
        return sorted([*self.values, *self.buckets])


@dataclass(frozen=True)
class Meta:
    page_size: int
    root: int
    root_sequence: int
    freelist: int
    high_water: int
    txid: int


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def parse_meta(buf: Buffer, offset: int) -> Meta | None:
    """The meta stored in the page at `offset`, or None if it is not a valid one."""
    start = offset + HEADER_SIZE
    if offset < 0 or start + _META.size > len(buf):
        return None
    _, flags, _, _ = _HEADER.unpack_from(buf, offset)
    magic, version, page_size, _, root, seq, freelist, high, txid, checksum = _META.unpack_from(buf, start)
    if flags != META or magic != MAGIC or version != VERSION:
        return None
    if fnv1a64(buf[start:start + _META.size - 8]) != checksum:
        return None
    return Meta(page_size, root, seq, freelist, high, txid)


class _Reader:
    def __init__(self, buf: Buffer, meta: Meta, path: Path):
        self.buf, self.meta, self.path = buf, meta, path
        self.ps = meta.page_size
        self.used: set[int] = set()

    def fail(self, what: str) -> BoltError:
        return BoltError(f"{self.path}: damaged bbolt file: {what}")

    def page(self, pgid: int, kinds: tuple[int, ...]) -> tuple[int, bytes, int]:
        """(flags, bytes of the page with its overflow, element count), after every check; marks it used."""
        if not 2 <= pgid < self.meta.high_water:
            raise self.fail(f"page {pgid} is outside the file's pages 2..{self.meta.high_water - 1}")
        start = pgid * self.ps
        pid, flags, count, overflow = _HEADER.unpack_from(self.buf, start)  # in the file: high_water was checked
        if pid != pgid:
            raise self.fail(f"page {pgid} says it is page {pid}")
        if flags not in kinds:
            raise self.fail(f"page {pgid} has flags {flags:#x}, expected one of {', '.join(map(hex, kinds))}")
        last = pgid + overflow
        if last >= self.meta.high_water:
            raise self.fail(f"page {pgid} overflows past the last page")
        for p in range(pgid, last + 1):
            if p in self.used:
                raise self.fail(f"page {p} is used twice")
            self.used.add(p)
        return flags, self.buf[start:(last + 1) * self.ps], count

    def tree(self, pgid: int, depth: int) -> list[tuple[int, bytes, bytes]]:
        """(flags, key, value) of every leaf element under page `pgid`, in order."""
        if depth > MAX_DEPTH:
            raise self.fail(f"tree deeper than {MAX_DEPTH} levels at page {pgid}")
        flags, data, count = self.page(pgid, (BRANCH, LEAF))
        if flags == LEAF:
            return leaf_elements(data, count, self.fail, f"page {pgid}")
        if count == 0:
            raise self.fail(f"branch page {pgid} is empty")
        if HEADER_SIZE + count * ELEM_SIZE > len(data):
            raise self.fail(f"branch page {pgid}: {count} elements do not fit")
        out = []
        for i in range(count):
            child = _BRANCH_ELEM.unpack_from(data, HEADER_SIZE + i * ELEM_SIZE)[2]
            out += self.tree(child, depth + 1)
        return out

    def bucket(self, root: int, sequence: int, inline: bytes | None, depth: int, where: str) -> Bucket:
        if depth > MAX_DEPTH:
            raise self.fail(f"buckets nested deeper than {MAX_DEPTH} at {where}")
        if root == 0:
            if inline is None or len(inline) < HEADER_SIZE:
                raise self.fail(f"{where}: inline bucket without its page")
            flags, count = _HEADER.unpack_from(inline, 0)[1:3]
            if flags != LEAF:
                raise self.fail(f"{where}: inline bucket page has flags {flags:#x}")
            elements = leaf_elements(inline, count, self.fail, f"inline bucket {where}")
        else:
            elements = self.tree(root, 0)
        b = Bucket(sequence)
        previous = None
        for flags, key, value in elements:
            if previous is not None and key <= previous:
                raise self.fail(f"{where}: keys out of order at {key!r}")
            previous = key
            if flags & BUCKET_LEAF:
                if len(value) < BUCKET_HEADER_SIZE:
                    raise self.fail(f"{where}: sub-bucket {key!r} has a short header")
                sub_root, sub_seq = _BUCKET.unpack_from(value, 0)
                b.buckets[key] = self.bucket(sub_root, sub_seq, value[BUCKET_HEADER_SIZE:] if sub_root == 0 else None,
                                             depth + 1, f"{where}/{key!r}")
            else:
                b.values[key] = value
        return b

    def check_freelist(self) -> None:
        """No page of the tree may also be listed as free."""
        if self.meta.freelist == NO_FREELIST:
            return
        _, data, count = self.page(self.meta.freelist, (FREELIST,))
        first = HEADER_SIZE
        if count == 0xFFFF:  # the real count is the first id's slot
            if HEADER_SIZE + 8 > len(data):
                raise self.fail("freelist page is too short")
            count = struct.unpack_from("<Q", data, HEADER_SIZE)[0]
            first += 8
        if count > (len(data) - first) // 8:
            raise self.fail(f"freelist lists {count} pages, more than its page holds")
        for i in range(count):
            pgid = struct.unpack_from("<Q", data, first + 8 * i)[0]
            if pgid >= self.meta.high_water:
                raise self.fail(f"freelist names page {pgid}, past the last page")
            if pgid in self.used:
                raise self.fail(f"page {pgid} is both free and in use")


def leaf_elements(data: bytes, count: int, fail, where: str) -> list[tuple[int, bytes, bytes]]:
    """The elements of a leaf page held in `data` (a page with its overflow, or an inline value)."""
    end_of_elements = HEADER_SIZE + count * ELEM_SIZE
    if end_of_elements > len(data):
        raise fail(f"{where}: {count} elements do not fit")
    out = []
    for i in range(count):
        at = HEADER_SIZE + i * ELEM_SIZE
        flags, pos, ksize, vsize = _LEAF_ELEM.unpack_from(data, at)
        if flags & ~BUCKET_LEAF:
            raise fail(f"{where}: element {i} has unknown flags {flags:#x}")
        k0 = at + pos
        if k0 < end_of_elements or k0 + ksize + vsize > len(data):
            raise fail(f"{where}: element {i} points outside its page")
        out.append((flags, data[k0:k0 + ksize], data[k0 + ksize:k0 + ksize + vsize]))
    return out


def _find_meta(buf: Buffer, path: Path) -> Meta:
    """The valid meta with the highest txid, as bbolt picks it."""
    first = parse_meta(buf, 0)
    page_size = first.page_size if first else None
    if page_size is None:  # page 0 is damaged: look for page 1 where bbolt would
        for shift in range(15):
            pos = 1024 << shift
            if pos >= len(buf) - 1024:
                break
            second = parse_meta(buf, pos)
            if second:
                page_size = second.page_size
                break
    if page_size is None:
        raise BoltError(f"{path}: not a bbolt database (no valid meta page)")
    if not (MIN_PAGE_SIZE <= page_size <= MAX_PAGE_SIZE and page_size & (page_size - 1) == 0):
        raise BoltError(f"{path}: damaged bbolt file: page size {page_size}")
    metas = [m for m in (parse_meta(buf, 0), parse_meta(buf, page_size)) if m and m.page_size == page_size]
    if not metas:
        raise BoltError(f"{path}: not a bbolt database (no valid meta page)")
    meta = max(metas, key=lambda m: m.txid)
    if meta.high_water * page_size > len(buf):
        raise BoltError(f"{path}: truncated bbolt file: its meta counts {meta.high_water} pages of {page_size} "
                        f"bytes, the file has {len(buf)} bytes")
    return meta


def read(path: Path) -> Bucket:
    """The whole database as nested Buckets; the root bucket's buckets are the top-level ones.

    Opens read-only and never writes. BoltError if the file is not a bbolt
    database, is damaged, or is held open for writing by another program.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise BoltError(f"cannot open {path}: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BoltError(f"{path} is open in a running program (a Go vspd?); stop it first") from None
        size = os.fstat(fd).st_size
        if size < 2 * MIN_PAGE_SIZE:
            raise BoltError(f"{path}: not a bbolt database ({size} bytes)")
        with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mm:
            meta = _find_meta(mm, path)
            reader = _Reader(mm, meta, path)
            root = reader.bucket(meta.root, meta.root_sequence, None, 0, "root")
            reader.check_freelist()
            return root
    finally:
        os.close(fd)  # also drops the lock

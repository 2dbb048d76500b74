"""A small bbolt file writer for tests: nested dicts in, a database bbolt (and the Go vspd) opens out.

Our product only reads bbolt; the tests need files with tickets in them,
and EXCCoin/vspd accepts tickets only through its API with real ticket
transactions. So tests write the Go vspd's layout themselves, and the Go
vspd itself then reads (and for schema 1, upgrades) what they wrote: a
mistake here shows up as the real program refusing or misreading the file.
Small buckets are inlined as bbolt does; `leaf_items` splits leaves early to
make branch pages; a value larger than a page gets overflow pages.
"""

import struct
from pathlib import Path

from vspd.admin.fromgo.bbolt import BRANCH, FREELIST, LEAF, MAGIC, META, VERSION, fnv1a64


def _leaf(pgid: int, elems: list[tuple[int, bytes, bytes]]) -> bytes:
    head = struct.pack("<QHHI", pgid, LEAF, len(elems), 0)
    table, data = b"", b""
    start = 16 + 16 * len(elems)
    for i, (flags, key, value) in enumerate(elems):
        pos = start + len(data) - (16 + 16 * i)
        table += struct.pack("<IIII", flags, pos, len(key), len(value))
        data += key + value
    return head + table + data


def _branch(pgid: int, children: list[tuple[bytes, int]]) -> bytes:
    head = struct.pack("<QHHI", pgid, BRANCH, len(children), 0)
    table, data = b"", b""
    start = 16 + 16 * len(children)
    for i, (key, child) in enumerate(children):
        table += struct.pack("<IIQ", start + len(data) - (16 + 16 * i), len(key), child)
        data += key
    return head + table + data


class Writer:
    def __init__(self, page_size: int = 4096, leaf_items: int | None = None, inline: bool = True):
        self.ps = page_size
        self.leaf_items = leaf_items
        self.inline = inline
        self.pages: dict[int, bytes] = {}
        self.next = 3  # 0 and 1 are the metas, 2 the freelist

    def _put(self, build) -> int:
        """Allocate and store a page built by build(pgid); returns its id."""
        pgid = self.next
        raw = build(pgid)
        count = -(-len(raw) // self.ps)
        raw = raw[:12] + struct.pack("<I", count - 1) + raw[16:]  # the overflow field
        self.pages[pgid] = raw.ljust(count * self.ps, b"\0")
        self.next += count
        return pgid

    def _tree(self, elems: list[tuple[int, bytes, bytes]]) -> int:
        groups, size = [[]], 16
        for e in elems:
            grow = 16 + len(e[1]) + len(e[2])
            full = (self.leaf_items and len(groups[-1]) >= self.leaf_items) or size + grow > self.ps
            if groups[-1] and full:
                groups.append([])
                size = 16
            groups[-1].append(e)
            size += grow
        level = [(g[0][1] if g else b"", self._put(lambda p, g=g: _leaf(p, g))) for g in groups]
        while len(level) > 1:
            step = self.leaf_items or 64
            level = [(chunk[0][0], self._put(lambda p, c=chunk: _branch(p, c)))
                     for chunk in (level[i:i + step] for i in range(0, len(level), step))]
        return level[0][1]

    def bucket_value(self, items: dict) -> bytes:
        elems = self.elements(items)
        if self.inline and all(f == 0 for f, _, _ in elems):
            page = _leaf(0, elems)
            if len(page) <= self.ps // 4:
                return struct.pack("<QQ", 0, 0) + page
        return struct.pack("<QQ", self._tree(elems), 0)

    def elements(self, items: dict) -> list[tuple[int, bytes, bytes]]:
        out = []
        for key in sorted(items):
            value = items[key]
            out.append((1, key, self.bucket_value(value)) if isinstance(value, dict) else (0, key, value))
        return out

    def write(self, path: Path, tree: dict, txid: int = 7) -> None:
        root = self._tree(self.elements(tree))
        freelist = struct.pack("<QHHI", 2, FREELIST, 0, 0).ljust(self.ps, b"\0")
        metas = []
        for pgid in (0, 1):
            body = struct.pack("<IIIIQQQQQ", MAGIC, VERSION, self.ps, 0, root, 0, 2, self.next, txid - 1 + pgid)
            metas.append((struct.pack("<QHHI", pgid, META, 0, 0) + body + struct.pack("<Q", fnv1a64(body)))
                         .ljust(self.ps, b"\0"))
        with open(path, "wb") as f:
            f.write(metas[0] + metas[1] + freelist)
            for pgid in range(3, self.next):
                if pgid in self.pages:
                    f.write(self.pages[pgid])


def write(path: Path, tree: dict, **options) -> Path:
    Writer(**options).write(Path(path), tree)
    return Path(path)

"""Rewrite the Go vspd databases of this folder by running the real EXCCoin/vspd.

    VSPD_GO_BIN=/path/to/vspd .venv/bin/python tests/data/govspd/regenerate.py

The tests use these files only where the Go vspd is not available; where it
is, they make fresh ones the same way (tests/helpers/godatabases.py).
"""

import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2] / "helpers"), str(Path(__file__).resolve().parents[2])]

import godatabases  # noqa: E402


def main() -> int:
    exe, src = godatabases.binary(), godatabases.source_dir()
    if exe is None or src is None:
        print("needs the Go vspd: set VSPD_GO_BIN (and VSPD_GO_SRC if its module source is not in the Go cache)")
        return 2
    with tempfile.TemporaryDirectory() as work:
        godatabases.make_databases(godatabases.DATA, exe, src, Path(work))
    for f in sorted(godatabases.DATA.glob("*")):
        print(f"{f.stat().st_size:>8}  {f.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

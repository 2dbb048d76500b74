"""Start-up and vspadmin on bad files and values (#14 item 4): refuse cleanly, change nothing.

Each case takes a copy of a good home folder (a simnet frontend's vspd.conf,
database, key file and certificates), spoils one thing, runs the real
command and expects: an exit code other than 0, one line on stderr that
names the file or option, no traceback, and every file of the home folder
byte for byte as it was, and no file added (logs, the run lock and
SQLite's shared-memory index aside).
"""

import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from chainbuilders import Key
from conftest import SIMNET_XPUB, make_certs
from procs import free_port
from vspd.admin import vspadmin as admin
from vspd.chain.bip32 import ExtendedPublicKey
from vspd.chain.params import SIMNET
from vspd.store.db import latest_version
from vspd.base.tls import self_signed

BIN = Path(sys.executable).parent
OTHER_XPUB = str(ExtendedPublicKey(SIMNET, 3, b"\x01\x02\x03\x04", 0, b"\x07" * 32, Key(SIMNET).pubkey))
CONF = {"network": "simnet", "exccduser": "user", "exccdpass": "rpcPa55-xyz", "supportemail": "ops@example.org",
        "adminpass": "Sup3rSecretAdm1n", "voters": "v1@127.0.0.1:1", "listen": "127.0.0.1:1"}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A good home folder: every command below succeeds on it (see the first test)."""
    home = tmp_path_factory.mktemp("home")
    make_certs(home, "v1,v2")
    (home / "rpc.cert").write_bytes(self_signed("exccd", ["127.0.0.1"])[0])
    write_conf(home, {})
    assert admin.main([f"--homedir={home}", "--network=simnet", "createdatabase", SIMNET_XPUB]) == 0
    return home


def write_conf(home: Path, changes: dict) -> None:
    values = {**CONF, "exccdcert": str(home / "rpc.cert"), **changes}
    text = "[Application Options]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
    (home / "vspd.conf").write_text(text.replace("HOME", str(home)))
    (home / "vspd.conf").chmod(0o600)


def db(home: Path) -> Path:
    return home / "data" / "simnet" / "vspd.db"


def snapshot(home: Path) -> dict[str, str]:
    """sha256 of every file that a refusal must leave alone."""
    out = {}
    for p in sorted(home.rglob("*")):
        rel = p.relative_to(home).as_posix()
        if p.is_file() and not (rel.startswith("logs/") or "/logs/" in rel or p.name == "vspd.lock"
                                or p.name.endswith("-shm")):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run(home: Path, argv: str, busy_port: int) -> subprocess.CompletedProcess:
    """argv: the program (vspd or vspadmin) and its words; HOME and the like are filled in here."""
    fill = {"HOME": str(home), "OTHER_XPUB": OTHER_XPUB, "BUSY_PORT": str(busy_port), "FREE_PORT": str(free_port())}
    words = argv.split()
    for name, value in fill.items():
        words = [w.replace(name, value) for w in words]
    return subprocess.run([str(BIN / words[0]), *words[1:]], capture_output=True, text=True, timeout=40,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


FRONTEND = "vspd --homedir=HOME --role=frontend"
VOTER = ("vspd --homedir=HOME/voterhome --role=voter --network=simnet --exccduser=u --exccdpass=pass "
         "--exccdcert=HOME/rpc.cert --walletuser=w --walletpass=wpass --walletcert=HOME/rpc.cert "
         "--voterca=HOME/certs/voter-v1/ca.pem --tlscert=HOME/certs/voter-v1/voter.pem")
ADMIN = "vspadmin --homedir=HOME --network=simnet"


# -- how to spoil a copy of the good home folder ------------------------------

def conf(**changes):
    return lambda home: write_conf(home, changes)


def not_a_database(home):
    db(home).write_bytes(b"this is not an SQLite database, just text. " * 200)


def truncated(home):
    data = db(home).read_bytes()
    db(home).write_bytes(data[:len(data) // 2])


def malformed(home):
    data = bytearray(db(home).read_bytes())
    page = 4096
    assert len(data) >= 4 * page
    data[2 * page:3 * page] = os.urandom(page)  # a page in the middle: the header still reads
    db(home).write_bytes(bytes(data))


def empty(home):
    db(home).write_bytes(b"")


def newer_schema_rollback_journal(home):
    con = sqlite3.connect(db(home))
    con.execute("PRAGMA journal_mode = DELETE")
    con.execute(f"PRAGMA user_version = {latest_version() + 1}")
    con.commit()
    con.close()


def key_not_utf8(home):
    key = home / "data" / "simnet" / "vspd.key"
    key.write_bytes(b"\xff\xfe\x00" + os.urandom(60))
    key.chmod(0o600)


def conf_not_utf8(home):
    (home / "vspd.conf").write_bytes(b"[Application Options]\nnetwork = simnet\ndesignation = \xff\xfe\n")


def conf_no_section(home):
    (home / "vspd.conf").write_text("network = simnet\n")


def conf_is_a_folder(home):
    (home / "vspd.conf").unlink()
    (home / "vspd.conf").mkdir()


def nothing(home):
    pass


DB_COMMANDS = (FRONTEND, f"{ADMIN} backup HOME/snapshot.db", f"{ADMIN} rotatekey", f"{ADMIN} retirexpub OTHER_XPUB")
CASES = [
    ("vspfee 1e308", FRONTEND, conf(vspfee="1e308"), "option vspfee"),
    ("vspfee 1e308, preflight", f"{ADMIN} preflight", conf(vspfee="1e308"), "option vspfee"),
    ("NUL in a path option", FRONTEND, conf(exccdcert="/tmp/rpc\0.cert"), "option exccdcert"),
    ("NUL in a path option, preflight", f"{ADMIN} preflight", conf(backupsftpkey="/tmp/k\0ey"),
     "option backupsftpkey"),
    ("maxlogsize 10^30", FRONTEND, conf(maxlogsize=str(10**30)), "option maxlogsize"),
    ("designation of 4 MB", FRONTEND, conf(designation="x" * (4 << 20)), "option designation"),
    ("designation with a line break", FRONTEND, conf(designation="a\n  b"), "option designation"),
    ("frontend tlskey not of its tlscert", FRONTEND, conf(tlskey="HOME/certs/voter-v1/voter.key"),
     "option tlskey"),
    ("voter grpclisten in use", f"{VOTER} --tlskey=HOME/certs/voter-v1/voter.key --grpclisten=127.0.0.1:BUSY_PORT",
     nothing, "option grpclisten"),
    ("voter tlskey not of its tlscert",
     f"{VOTER} --tlskey=HOME/certs/voter-v2/voter.key --grpclisten=127.0.0.1:FREE_PORT", nothing, "option tlskey"),
    ("key file not UTF-8", FRONTEND, key_not_utf8, "vspd.key"),
    ("key file not UTF-8, rotatekey", f"{ADMIN} rotatekey", key_not_utf8, "vspd.key"),
    ("key file not UTF-8, backup", f"{ADMIN} backup HOME/snapshot.db", key_not_utf8, "vspd.key"),
    ("writeconfig into a missing folder", f"{ADMIN} writeconfig --output HOME/no/such/folder/vspd.conf", nothing,
     "no/such/folder"),
    ("writeconfig under a file", f"{ADMIN} writeconfig --output HOME/rpc.cert/vspd.conf", nothing, "rpc.cert"),
    ("backup into a missing folder", f"{ADMIN} backup HOME/no/such/folder/snapshot.db", nothing, "no/such/folder"),
    ("backup, vspd.conf not UTF-8", "vspadmin --homedir=HOME backup HOME/snapshot.db", conf_not_utf8, "vspd.conf"),
    ("backup, vspd.conf without section", "vspadmin --homedir=HOME backup HOME/snapshot.db", conf_no_section,
     "vspd.conf"),
    ("backup, vspd.conf a folder", "vspadmin --homedir=HOME backup HOME/snapshot.db", conf_is_a_folder,
     "vspd.conf"),
] + [(f"{name}, {'vspd' if cmd == FRONTEND else cmd.split()[3]}", cmd, spoil, needle)
     for name, spoil, needle in (
         ("not a database", not_a_database, "vspd.db"), ("truncated database", truncated, "vspd.db"),
         ("malformed database", malformed, "vspd.db"), ("0-byte database", empty, "vspd.db"),
         ("newer schema, rollback journal", newer_schema_rollback_journal, "newer than this vspd"))
     for cmd in DB_COMMANDS]


@pytest.fixture(scope="module")
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("command", [f"{ADMIN} backup HOME/snapshot.db", f"{ADMIN} rotatekey",
                                     f"{ADMIN} retirexpub OTHER_XPUB", "vspadmin --homedir=HOME backup HOME/s.db",
                                     f"{ADMIN} writeconfig --output HOME/new.conf"])
def test_the_good_home_folder_is_good(template, tmp_path, busy_port, command):
    """The control: on the unspoilt copy each command does its work (so a refusal below is the spoil's)."""
    home = tmp_path / "home"
    shutil.copytree(template, home)
    r = run(home, command, busy_port)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name,command,spoil,needle", CASES, ids=[c[0] for c in CASES])
def test_bad_file_or_value_is_refused_in_one_line_and_changes_nothing(template, tmp_path, busy_port, name, command,
                                                                      spoil, needle):
    home = tmp_path / "home"
    shutil.copytree(template, home)
    spoil(home)
    before = snapshot(home)
    r = run(home, command, busy_port)
    lines = r.stderr.strip().splitlines()
    assert r.returncode not in (0, None), (r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stdout + r.stderr, r.stdout[-3000:] + r.stderr[-3000:]
    assert len(lines) == 1 and needle in lines[0], r.stderr[-2000:]
    assert len(lines[0]) < 400, lines[0][:500]
    assert snapshot(home) == before

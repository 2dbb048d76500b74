"""The backup tests' shared parts (tests/frontend/test_replication*.py, test_diskfull.py, and
contrib/bench/durability_bench.py): the frontend's database files and their loss, a wait for a
healthy /status, and a real OpenSSH server on 127.0.0.1 as an SFTP replica."""

import os
import shutil
import subprocess
from pathlib import Path

import aiohttp

from procs import Network, free_port, status, wait_for

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def db_files(home: Path) -> list[Path]:
    d = home / "data" / "simnet"
    return [d / "vspd.db", d / "vspd.db-wal", d / "vspd.db-shm"]


def lose_the_machine(home: Path) -> None:
    """The frontend's host is gone: its litestream with it, and the disk."""
    pidfile = home / "data" / "simnet" / "litestream.pid"
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text()), 9)
        except ProcessLookupError:
            pass
    for f in db_files(home):
        f.unlink(missing_ok=True)
    shutil.rmtree(home / "data" / "simnet" / ".vspd.db-litestream", ignore_errors=True)


async def wait_status_ok(http: aiohttp.ClientSession, net: Network, seconds: float, what: str) -> None:
    async def ok():
        code, _ = await status(http, net)
        return code == 200
    await wait_for(ok, seconds, what, interval=0.5)


class SSHServer:
    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        for name in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
        (root / "authorized_keys").write_text((root / "client.pub").read_text())
        (root / "authorized_keys").chmod(0o600)
        self.host_key = " ".join((root / "host.pub").read_text().split()[:2])
        (root / "sshd_config").write_text(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {root / 'host'}
AuthorizedKeysFile {root / 'authorized_keys'}
PidFile {root / 'sshd.pid'}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
""")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        Path("/run/sshd").mkdir(exist_ok=True)
        self.log = open(self.root / "sshd.log", "wb")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.root / "sshd_config")],
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()

"""docs/operator-guide.md, walked on one machine, with the peers as a parameter.

Every `vspadmin` and `vspd` command of the guide runs, in the guide's order
and as written, but for these stand-ins: /var/lib/vspd is the home of the
machine the step is for (a frontend, three voters, then new frontend
machines for the restore); testnet is simnet; a placeholder gets a real
value; a local folder is the off-site replica. systemd's part is played by
the units' ExecStart lines, run as written. What exccd and exccwallet are,
and who buys the ticket the walk follows, is the `GuidePeers` given: the
protocol fakes (tests/docs/test_operator_guide.py) or the real peers of the
session's simnet (tests/e2e/test_operator_guide_real.py). The walk fails if
the guide has a command it did not run.
"""

import asyncio
import re
import shlex
import shutil
import types
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import aiohttp

from conftest import SIMNET_XPUB
from procs import BIN, Proc, free_port, status, wait_for
from vspclient import VSPClient
from vspd.chain import bip32
from vspd.chain.params import SIMNET

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "operator-guide.md"
UNITS = ROOT / "contrib" / "systemd"
VOTERS = ("ams", "fra", "nyc")


@dataclass(frozen=True)
class Login:
    """Where a vspd process finds one exccd or exccwallet: what its vspd.conf says."""
    host: str  # host:port
    user: str
    password: str
    cert: Path


@dataclass(frozen=True)
class PaidTicket:
    hash: str
    key: bytes  # the private key of the ticket's commitment address: it signs the staker's requests


class GuidePeers(Protocol):
    """The exccd and exccwallet the walk's vspd processes use, and the staker whose ticket it follows."""

    def frontend_node(self) -> Login:
        """The frontend's exccd."""

    def voter_peers(self, name: str) -> tuple[Login, Login]:
        """Voter `name`'s exccd and voting wallet."""

    async def buy_and_pay(self, url: str, http: aiohttp.ClientSession) -> PaidTicket:
        """A ticket registered and paid at the frontend at `url`."""

    async def until_fee_confirmed(self, ticket: PaidTicket, confirmed) -> None:
        """Mine (or wait) until `await confirmed()` is true."""

    async def in_every_wallet(self, ticket: PaidTicket) -> bool:
        """Every voter's wallet holds the ticket."""


def guide_commands() -> list[str]:
    """Indented code lines and inline code of the guide that start with vspadmin or vspd."""
    found = []
    for line in GUIDE.read_text().splitlines():
        if line.startswith("    ") and line.strip().split(" ")[0] in ("vspadmin", "vspd"):
            found.append(line.strip())
        found += re.findall(r"`((?:vspadmin|vspd) [^`]+)`", line)
    return found


def set_options(conf: Path, **values) -> None:
    """Edit a file written by `vspadmin writeconfig` as an operator would: uncomment and fill in."""
    text = conf.read_text()
    for name, value in values.items():
        line = re.compile(rf"^; {name} = .*$", re.M)
        assert len(line.findall(text)) == 1, f"{conf} has no commented-out line for {name}"
        text = line.sub(lambda _: f"{name} = {value}", text)
    conf.write_text(text)


def copy_frontend_secrets(old: Path, new: Path, key_to: Path | None = None) -> None:
    """What the guide says to keep safe and put back on a new machine: vspd.conf, certs/, the key file
    (in data/simnet/, or at `key_to` for restore --keyfile to put in place)."""
    new.mkdir(parents=True)
    shutil.copy(old / "vspd.conf", new / "vspd.conf")
    shutil.copytree(old / "certs", new / "certs")
    if key_to is None:
        (new / "data" / "simnet").mkdir(parents=True)
    shutil.copy2(old / "data" / "simnet" / "vspd.key", key_to or new / "data" / "simnet" / "vspd.key")


def state(preflight_output: str, rule: str) -> str:
    return preflight_output.split(rule, 1)[1].split()[0]


def login_options(prefix: str, login: Login) -> dict:
    return {f"{prefix}host": login.host, f"{prefix}user": login.user, f"{prefix}pass": login.password,
            f"{prefix}cert": login.cert}


class Walk:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.commands = guide_commands()
        self.ran: set[str] = set()

    def command(self, start: str) -> str:
        matches = [c for c in self.commands if c.startswith(start)]
        assert len(matches) == 1, f"the guide should have one command starting {start!r}: {matches}"
        return matches[0]

    async def run(self, start: str, home: Path, subs: dict[str, str] | None = None,
                  optional: bool = False, ok: bool = True) -> str:
        """Run the guide's command; `optional` keeps what is in [brackets], else it is left out."""
        text = self.command(start)
        self.ran.add(text)
        cmd = re.sub(r"\s*\[([^\]]*)\]", (lambda m: " " + m.group(1)) if optional else "", text)
        cmd = cmd.replace("/var/lib/vspd", str(home)).replace("--network=testnet", "--network=simnet")
        for pattern, value in (subs or {}).items():
            assert re.search(pattern, cmd), f"{pattern!r} not in {cmd!r}"
            cmd = re.sub(pattern, lambda _: value, cmd)
        argv = shlex.split(cmd)
        proc = await asyncio.create_subprocess_exec(str(BIN / argv[0]), *argv[1:], stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        output = out.decode() + err.decode()
        assert (proc.returncode == 0) == ok, f"{cmd}: exit {proc.returncode}\n{output}"
        return output

    def start_unit(self, unit: str, home: Path, name: str) -> Proc:
        """A systemd unit's ExecStart, as written, with the home folder and the install path put here."""
        execstart = next(line for line in (UNITS / unit).read_text().splitlines() if line.startswith("ExecStart="))
        argv = shlex.split(execstart.removeprefix("ExecStart=").replace("/var/lib/vspd", str(home)))
        assert argv[0] == "/opt/vspd/.venv/bin/vspd", "the guide installs vspd in /opt/vspd/.venv"
        as_typed = " ".join(["vspd", *argv[1:]])
        self.ran.update(c for c in self.commands if c.startswith("vspd ") and as_typed.startswith(c))
        return Proc(name, [BIN / "vspd", *argv[1:]], self.tmp).start()

    def missing(self) -> list[str]:
        return [c for c in self.commands if c not in self.ran]


async def walk_the_guide(tmp_path: Path, go_dbs, peers: GuidePeers) -> None:
    """The whole guide, in order, on `peers`; every process it starts is stopped before it returns."""
    walk = Walk(tmp_path)
    procs: dict[str, Proc] = {}
    frontend = tmp_path / "frontend"
    url = f"http://127.0.0.1:{free_port()}"
    site = types.SimpleNamespace(url=url)  # what procs.status needs
    try:
        # 2. Certificates of the voter link.
        await walk.run("vspadmin --homedir=/var/lib/vspd gencerts", frontend)
        # 3. Each voter: its certificate folder copied over, a written config filled in, the unit started.
        grpc = {}
        for name in VOTERS:
            home = tmp_path / name
            node, wallet = peers.voter_peers(name)
            shutil.copytree(frontend / "certs" / f"voter-{name}", home / "certs")
            await walk.run("vspadmin --homedir=/var/lib/vspd writeconfig --role=voter", home)
            grpc[name] = free_port()
            set_options(home / "vspd.conf", network="simnet", **login_options("exccd", node),
                        **login_options("wallet", wallet), grpclisten=f"127.0.0.1:{grpc[name]}")
            procs[name] = walk.start_unit("vspd-voter.service", home, name)
        # 4. The frontend.
        await walk.run("vspadmin --homedir=/var/lib/vspd writeconfig --role=frontend", frontend)
        await walk.run("vspadmin --homedir=/var/lib/vspd --network=testnet createdatabase", frontend,
                       {"<fee account xpub>": SIMNET_XPUB})
        set_options(frontend / "vspd.conf", network="simnet", **login_options("exccd", peers.frontend_node()),
                    listen=url.removeprefix("http://"), supportemail="ops@example.org",
                    adminpass="Guide-Adm1n-pass", vspfee="2.5", designation="Guide VSP",
                    voters=",".join(f"{n}@127.0.0.1:{grpc[n]}" for n in VOTERS),
                    backupreplica=tmp_path / "offsite", healthinterval="0.3")
        procs["frontend"] = walk.start_unit("vspd-frontend.service", frontend, "frontend")

        async with aiohttp.ClientSession() as http:
            async def healthy(proc: Proc):
                assert proc.running, proc.output()
                try:
                    return (await status(http, site))[0] == 200
                except aiohttp.ClientError:
                    return False
            await wait_for(lambda: healthy(procs["frontend"]), 60, "frontend healthy with three voters", 0.4)
            client = VSPClient(http, url)
            await client.vspinfo()  # pins the pubkey every later answer is checked against
            pubkey = client.pubkey
            ticket = await peers.buy_and_pay(url, http)

            async def fee_confirmed() -> bool:
                r = await client.ticketstatus(ticket.key, ticket.hash)
                return r.status == 200 and r.json["feetxstatus"] == "confirmed"
            await peers.until_fee_confirmed(ticket, fee_confirmed)
            await wait_for(lambda: peers.in_every_wallet(ticket), 30, "the ticket in every voting wallet", 0.5)

            # 5. The listing rules: true of this one-machine deployment.
            out = await walk.run("vspadmin --homedir=/var/lib/vspd preflight", frontend)
            for name in VOTERS:
                assert state(out, f"voter {name} healthy") == "PASS", out
            assert state(out, "voters configured") == "PASS" and state(out, "fee xpub set") == "PASS", out
            assert state(out, "voters on distinct hosts") == "FAIL", out  # all on 127.0.0.1: the truth

            # Upgrades: one voter down, named by /status, back, and /status is 200 again.
            assert await procs["ams"].halt() == 0

            async def ams_named():
                code, body = await status(http, site)
                return code == 503 and any(p.startswith("voter ams: unreachable") for p in body["problems"])
            await wait_for(ams_named, 15, "/status names the stopped voter")
            procs["ams"] = walk.start_unit("vspd-voter.service", tmp_path / "ams", "ams")
            await wait_for(lambda: healthy(procs["frontend"]), 30, "/status 200 again")

            # Backups: a snapshot of the live database; rotatekey refuses while the frontend runs.
            snapshot = tmp_path / "snapshot.db"
            await walk.run("vspadmin --homedir=/var/lib/vspd backup", frontend,
                           {re.escape("/root/vspd-snapshot.db"): str(snapshot)})
            con = sqlite3.connect(snapshot)
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert con.execute("SELECT 1 FROM tickets WHERE hash = ?", (ticket.hash,)).fetchone()
            con.close()
            out = await walk.run("vspadmin --homedir=/var/lib/vspd rotatekey", frontend, ok=False)
            assert "stop it first" in out
            await asyncio.sleep(1.5)  # past backupsyncinterval (1 s): what was acknowledged is on the replica
            assert await procs.pop("frontend").halt() == 0

            # Losing the frontend: a new machine gets vspd.conf, certs/ and the key file, then restores.
            new, other = tmp_path / "new-frontend", tmp_path / "other-frontend"
            copy_frontend_secrets(frontend, new)
            safe_key = tmp_path / "safe-storage-vspd.key"
            copy_frontend_secrets(frontend, other, key_to=safe_key)
            out = await walk.run("vspadmin --homedir=/var/lib/vspd restore", new)
            assert "fee address index moved on by 100" in out
            now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            out = await walk.run("vspadmin --homedir=/var/lib/vspd restore", other,
                                 {r"--timestamp \S+": f"--timestamp {now}", r"--keyfile \S+": f"--keyfile {safe_key}"},
                                 optional=True)
            assert f"key file installed as {other / 'data' / 'simnet' / 'vspd.key'}" in out
            for home in (new, other):
                con = sqlite3.connect(home / "data" / "simnet" / "vspd.db")
                assert con.execute("SELECT fee_tx_status FROM tickets WHERE hash = ?", (ticket.hash,)).fetchone()
                con.close()
            key_before = (new / "data" / "simnet" / "vspd.key").read_bytes()
            out = await walk.run("vspadmin --homedir=/var/lib/vspd rotatekey", new)
            assert (new / "data" / "simnet" / "vspd.key").read_bytes() != key_before
            xpub = str(bip32.decode_xpub(SIMNET_XPUB, SIMNET).child(1))
            await walk.run("vspadmin --homedir=/var/lib/vspd retirexpub", new, {"<xpub>": xpub})

            # The restored frontend, under its new key: same VSP key, the staker's ticket known and voting.
            procs["frontend"] = walk.start_unit("vspd-frontend.service", new, "frontend-restored")
            await wait_for(lambda: healthy(procs["frontend"]), 60, "the restored frontend healthy", 0.4)
            r = await client.vspinfo()  # checks the signature against the first frontend's key
            assert client.pubkey == pubkey and r.json["voting"] == 1, r.json
            r = await client.ticketstatus(ticket.key, ticket.hash)
            assert r.status == 200 and r.json["feetxstatus"] == "confirmed", r.json

            # Moving from EXCCoin/vspd: a database the real Go vspd wrote, on a new frontend machine.
            moved = tmp_path / "moved-frontend"
            moved.mkdir()
            shutil.copy(frontend / "vspd.conf", moved / "vspd.conf")
            old_db = {re.escape("/home/vspd/.vspd/data/testnet/vspd.db"): str(go_dbs.path("upgraded"))}
            out = await walk.run("vspadmin --homedir=/var/lib/vspd --network=testnet importvspd --dry-run", moved, old_db)
            assert "dry run: nothing written" in out and not (moved / "data").exists()
            assert f"pubkey: {go_dbs.answers['upgraded']['pubkey']}" in out
            assert "as /vspinfo counts them: voting 25, voted 1, revoked 1" in out
            out = await walk.run("vspadmin --homedir=/var/lib/vspd --network=testnet importvspd /", moved, old_db)
            con = sqlite3.connect(moved / "data" / "simnet" / "vspd.db")
            assert con.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == 32
            con.close()
    finally:
        for proc in procs.values():
            await proc.halt()
    assert not walk.missing(), f"the guide has commands this walk does not run: {walk.missing()}"

"""docs/operator-guide.md, walked on one machine, so that the guide cannot rot.

Every `vspadmin` and `vspd` command of the guide runs here, in the guide's
order and as written, but for these stand-ins: /var/lib/vspd is the home of
the machine the step is for (a frontend, three voters, then new frontend
machines for the restore); testnet is simnet; exccd and exccwallet are
protocol-level fakes; a placeholder gets a real value; a local folder is the
off-site replica. systemd's part is played by the units' ExecStart lines, run
as written. The walk fails if the guide has a command it did not run, and the
table test fails if /status can say something the guide's table does not
explain, or the table explains something /status never says.
"""

import asyncio
import re
import shlex
import shutil
import sqlite3
import time
import types
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import pytest

from conftest import SIMNET_XPUB
from govspd import go_dbs  # noqa: F401  (fixture)
from fakes.exccd import FakeChain, FakeExccd
from fakes.exccwallet import FakeWallet
from procs import BIN, Proc, Staker, free_port, status, wait_for
from schema import voter_pb2 as pb
from vspd.chain import bip32
from vspd.chain.params import SIMNET
from vspd.replication import Replicator
from vspd.voters import VoterPool, judge
from web import health

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "operator-guide.md"
UNITS = ROOT / "contrib" / "systemd"
VOTERS = ("ams", "fra", "nyc")


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


def copy_frontend_secrets(old: Path, new: Path) -> None:
    """What the guide says to keep safe and put back on a new machine: vspd.conf, certs/, the key file."""
    (new / "data" / "simnet").mkdir(parents=True)
    shutil.copy(old / "vspd.conf", new / "vspd.conf")
    shutil.copytree(old / "certs", new / "certs")
    shutil.copy(old / "data" / "simnet" / "vspd.key", new / "data" / "simnet" / "vspd.key")


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


def state(preflight_output: str, rule: str) -> str:
    return preflight_output.split(rule, 1)[1].split()[0]


@pytest.mark.slow
async def test_walk_the_operator_guide(tmp_path, go_dbs):
    walk = Walk(tmp_path)
    chain = FakeChain(SIMNET)
    node = FakeExccd(chain, password="guide-rpc-pass")
    await node.start()
    site = types.SimpleNamespace(url="", chain=chain, mine=node.mine)  # what the staker helpers need
    peers = {name: (FakeExccd(chain), FakeWallet(chain)) for name in VOTERS}
    procs: dict[str, Proc] = {}
    for vnode, wallet in peers.values():
        await vnode.start()
        await wallet.start()
    frontend = tmp_path / "frontend"
    try:
        # 2. Certificates of the voter link.
        await walk.run("vspadmin --homedir=/var/lib/vspd gencerts", frontend)
        # 3. Each voter: its certificate folder copied over, a written config filled in, the unit started.
        grpc = {}
        for name in VOTERS:
            home, (vnode, wallet) = tmp_path / name, peers[name]
            shutil.copytree(frontend / "certs" / f"voter-{name}", home / "certs")
            await walk.run("vspadmin --homedir=/var/lib/vspd writeconfig --role=voter", home)
            grpc[name] = free_port()
            set_options(home / "vspd.conf", network="simnet", exccdhost=f"127.0.0.1:{vnode.port}",
                        exccduser=vnode.user, exccdpass=vnode.password, exccdcert=vnode.cert_path,
                        wallethost=f"127.0.0.1:{wallet.port}", walletuser=wallet.user,
                        walletpass=wallet.password, walletcert=wallet.cert_path,
                        grpclisten=f"127.0.0.1:{grpc[name]}")
            procs[name] = walk.start_unit("vspd-voter.service", home, name)
        # 4. The frontend.
        await walk.run("vspadmin --homedir=/var/lib/vspd writeconfig --role=frontend", frontend)
        await walk.run("vspadmin --homedir=/var/lib/vspd --network=testnet createdatabase", frontend,
                       {"<fee account xpub>": SIMNET_XPUB})
        port = free_port()
        site.url = f"http://127.0.0.1:{port}"
        set_options(frontend / "vspd.conf", network="simnet", exccdhost=f"127.0.0.1:{node.port}",
                    exccduser=node.user, exccdpass=node.password, exccdcert=node.cert_path,
                    listen=f"127.0.0.1:{port}", supportemail="ops@example.org", adminpass="Guide-Adm1n-pass",
                    vspfee="2.5", designation="Guide VSP",
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
            staker = Staker(site, http)
            await staker.client.vspinfo()
            pubkey = staker.client.pubkey
            commit, t = await staker.buy_and_pay()

            await staker.mine_until_confirmed(commit, t)

            async def in_every_wallet():
                return all(t.txid() in wallet.tickets for _, wallet in peers.values())
            await wait_for(in_every_wallet, 10, "the ticket in every voting wallet")

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
            assert con.execute("SELECT 1 FROM tickets WHERE hash = ?", (t.txid(),)).fetchone()
            con.close()
            out = await walk.run("vspadmin --homedir=/var/lib/vspd rotatekey", frontend, ok=False)
            assert "stop it first" in out
            await asyncio.sleep(1.5)  # past backupsyncinterval (1 s): what was acknowledged is on the replica
            assert await procs.pop("frontend").halt() == 0

            # Losing the frontend: a new machine gets vspd.conf, certs/ and the key file, then restores.
            new, other = tmp_path / "new-frontend", tmp_path / "other-frontend"
            copy_frontend_secrets(frontend, new)
            copy_frontend_secrets(frontend, other)
            out = await walk.run("vspadmin --homedir=/var/lib/vspd restore", new)
            assert "fee address index moved on by 100" in out
            now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            await walk.run("vspadmin --homedir=/var/lib/vspd restore", other, {r"--timestamp \S+": f"--timestamp {now}"},
                           optional=True)
            for home in (new, other):
                con = sqlite3.connect(home / "data" / "simnet" / "vspd.db")
                assert con.execute("SELECT fee_tx_status FROM tickets WHERE hash = ?", (t.txid(),)).fetchone()
                con.close()
            key_before = (new / "data" / "simnet" / "vspd.key").read_bytes()
            out = await walk.run("vspadmin --homedir=/var/lib/vspd rotatekey", new)
            assert (new / "data" / "simnet" / "vspd.key").read_bytes() != key_before
            xpub = str(bip32.decode_xpub(SIMNET_XPUB, SIMNET).child(1))
            await walk.run("vspadmin --homedir=/var/lib/vspd retirexpub", new, {"<xpub>": xpub})

            # The restored frontend, under its new key: same VSP key, the staker's ticket known and voting.
            procs["frontend"] = walk.start_unit("vspd-frontend.service", new, "frontend-restored")
            await wait_for(lambda: healthy(procs["frontend"]), 60, "the restored frontend healthy", 0.4)
            r = await staker.client.vspinfo()  # checks the signature against the first frontend's key
            assert staker.client.pubkey == pubkey and r.json["voting"] == 1, r.json
            r = await staker.client.ticketstatus(commit.secret, t.txid())
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
        for vnode, wallet in peers.values():
            await vnode.stop()
            await wallet.stop()
        await node.stop()
    missing = [c for c in walk.commands if c not in walk.ran]
    assert not missing, f"the guide has commands this walk does not run: {missing}"


def table_patterns() -> list[str]:
    """The first column of the guide's /status table, X, N, NET and ... made into regular expressions."""
    text = GUIDE.read_text().split("## What /status says", 1)[1]
    patterns = []
    for cell in re.findall(r"^\| `([^`]+)` \|", text, re.M):
        rx = re.escape(cell).replace(r"\.\.\.", ".+")
        rx = re.sub(r"\bX\b", "[a-z0-9-]+", rx)
        rx = re.sub(r"\bNET\b", "[a-z]+", rx)
        patterns.append(re.sub(r"\bN\b", "[0-9]+", rx))
    return patterns


def status_messages() -> list[str]:
    """Every kind of message /status can give, from the code that writes them."""
    good = dict(network="simnet", node_connected=True, node_synced=True, node_height=100, wallet_connected=True,
                wallet_daemon_connected=True, wallet_unlocked=True, wallet_voting=True, wallet_spv=False,
                wallet_height=100)
    broken = [dict(network="mainnet"), dict(node_connected=False, node_error="connection refused"),
              dict(node_synced=False), dict(wallet_connected=False, wallet_error="connection refused"),
              dict(wallet_daemon_connected=False), dict(wallet_unlocked=False), dict(wallet_voting=False),
              dict(wallet_spv=True), dict(wallet_height=90), dict(node_height=90)]
    voter_problems = [judge(None, "deadline exceeded", 100, 6, "simnet")]
    voter_problems += [judge(pb.HealthReply(**{**good, **change}), "", 100, 6, "simnet") for change in broken]
    assert all(len(p) == 1 for p in voter_problems), voter_problems
    now = time.time()
    voters = [types.SimpleNamespace(name=f"v{i}", checked=now, problems=p, missing=set())
              for i, p in enumerate(voter_problems)]
    voters.append(types.SimpleNamespace(name="stale", checked=now - 600, problems=[], missing=set()))
    voters.append(types.SimpleNamespace(name="behind", checked=now, problems=[], missing={"ab" * 32}))

    class Pool(list):
        interval, minvoters, maxlag, total = 5.0, 2, 6, 3

        def healthy(self):
            return []

        def tip(self):
            return 100

        def local_height(self):
            return 100

        intake_problem = VoterPool.intake_problem

    replicator = types.SimpleNamespace(last_sync_age=lambda: None, last_sync=now - 120, started_at=now - 300,
                                       _failing_since=now - 120, max_failing=30, running=True,
                                       last_error="connection refused", problem=None)
    replicator.problem = lambda: Replicator.problem(replicator)
    exccd = types.SimpleNamespace(connected=False, rpc=types.SimpleNamespace(last_error="connection refused"))
    ctx = types.SimpleNamespace(exccd=exccd, voters=Pool(voters), replication=replicator)
    found = health.problems(ctx)
    lag = Pool()
    lag.minvoters, lag.local_height = 0, lambda: 80
    found.append("not accepting tickets: " + VoterPool.intake_problem(lag))
    return found


def test_status_table_explains_every_message():
    patterns, messages = table_patterns(), status_messages()
    assert len(messages) == 17, messages
    for message in messages:
        assert any(re.fullmatch(p, message) for p in patterns), f"the guide's /status table lacks {message!r}"
    for p in patterns:
        assert any(re.fullmatch(p, m) for m in messages), f"the guide's /status table row {p!r} is never said"


def test_closing_timeline_matches_the_chain():
    from vspd.chain.params import MAINNET
    days = (MAINNET.ticket_maturity + MAINNET.ticket_expiry) * MAINNET.target_block_seconds / 86400
    text = " ".join(GUIDE.read_text().split())
    assert f"{MAINNET.ticket_maturity} + {MAINNET.ticket_expiry:,} blocks (about {round(days)} days at " \
           f"{MAINNET.target_block_seconds} s a block)" in text

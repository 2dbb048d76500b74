"""`vspadmin preflight`: the EXCC listing rules, checked against the running deployment.

The EXCC "Operating a VSP" guide lists what must be true before a VSP is
listed: three or more voting wallets, each with its own exccd, in distinct
places, the frontend apart from them, a week on testnet, mainnet in test
mode until one of the operator's own tickets has voted, monitoring. This
gathers the facts (voter health over the voter link, the database, the
backup replica) and judges each rule; judging is a pure function.
"""

import asyncio
import datetime
import time
from dataclasses import dataclass, field

from rpcclient.exccd import Exccd
from rpcclient.voterclient import VoterAddress, VoterClient, VoterUnavailable
from schema import voter_pb2 as pb
from vspd.base import tls as certs
from vspd.base.config import Config
from vspd.base.identity import host_id
from vspd.base.paths import key_file
from vspd.base.sealing import Sealer, read_key_file
from vspd.chain.errors import ChainError
from vspd.chain.params import NetParams
from vspd.chain.semver import SemVer, compatible
from vspd.frontend.feecap import FeeQuotes, current_quotes
from vspd.frontend.replication import Replicator
from vspd.frontend.voterpool import VoterPool, judge
from vspd.store import Store

NODE_API, WALLET_API = SemVer(7, 0, 0), SemVer(8, 8, 0)
CERT_WARN_DAYS = 30
LOOPBACK = ("127.0.0.1", "::1", "localhost")
WEEK = 7 * 86400


ONE_MACHINE_NOTE = ("expected here: every part runs on this one machine; on mainnet each voter and the "
                    "frontend need machines of their own")


@dataclass
class Check:
    rule: str
    ok: bool
    detail: str
    note: str = ""  # why a FAIL is expected where this deployment runs (simnet, or everything on loopback)


@dataclass
class Facts:
    network: str
    min_voters: int
    maxlag: int
    frontend_host: str
    voters: list[tuple[VoterAddress, pb.HealthReply | None, str]] = field(default_factory=list)
    frontend_cert_days: float = 0.0
    ca_days: float = 0.0
    xpub: str = ""
    closed: bool = False
    own_voted: int = 0
    own_total: int = 0
    uptime_hours_7d: int = 0
    outcomes_7d: dict = field(default_factory=dict)
    replica_age: float | None = None
    replica_error: str = ""
    local_height: int = 0
    fee_quotes: FeeQuotes | str = "not asked"  # the quotes, or why they are unknown


def _version_ok(text: str, required: SemVer) -> bool:
    try:
        v = SemVer.parse(text)
    except ChainError:
        return False
    return compatible(required, SemVer(v.major, v.minor, v.patch))


def evaluate(f: Facts) -> list[Check]:
    checks: list[Check] = []
    n = len(f.voters)
    checks.append(Check("voters configured", n >= f.min_voters, f"{n} configured, {f.min_voters} required"))
    tip = max([f.local_height] + [h.node_height for _, h, _ in f.voters if h is not None and h.node_connected])
    healthy = 0
    for addr, h, err in f.voters:
        problems = judge(h, err, tip, f.maxlag, f.network)
        if h is not None:
            if h.node_connected and not _version_ok(h.node_version, NODE_API):
                problems.append(f"exccd RPC API {h.node_version or '?'} is not {NODE_API}-compatible")
            if h.wallet_connected and not _version_ok(h.wallet_version, WALLET_API):
                problems.append(f"exccwallet RPC API {h.wallet_version or '?'} is not {WALLET_API}-compatible")
            if h.cert_days_left < CERT_WARN_DAYS:
                problems.append(f"its certificate expires in {h.cert_days_left:.0f} days")
        healthy += not problems
        checks.append(Check(f"voter {addr.name} healthy", not problems, "; ".join(problems) or
                            f"height {h.wallet_height}, exccd {h.node_version}, exccwallet {h.wallet_version}, "
                            f"certificate {h.cert_days_left:.0f} days"))
    checks.append(Check("voters healthy", healthy >= f.min_voters and healthy == n, f"{healthy} of {n} healthy"))
    reports = [(a, h) for a, h, _ in f.voters if h is not None]
    node_ids = [h.node_id for _, h in reports]
    checks.append(Check("each voter has its own exccd", len(set(node_ids)) == len(node_ids) == n,
                        f"{len(set(node_ids))} distinct exccd identities among {n} voters"))
    hosts = {h.host_id for _, h in reports}
    addrs = {a.host for a, _, _ in f.voters}
    local = f.network == "simnet" or (f.network != "mainnet" and all(a.host in LOOPBACK for a, _, _ in f.voters))
    distinct = len(hosts) == len(reports) == n and len(addrs) == n
    checks.append(Check("voters on distinct hosts", distinct,
                        f"{len(hosts)} distinct hosts, {len(addrs)} distinct addresses among {n} voters",
                        ONE_MACHINE_NOTE if local and not distinct else ""))
    shared = [a.name for a, h in reports if h.host_id == f.frontend_host] + \
        [a.name for a, _, _ in f.voters if a.host in LOOPBACK]
    checks.append(Check("frontend apart from the voters", not shared,
                        "shares its host with " + ", ".join(sorted(set(shared))) if shared else "no voter on this host",
                        ONE_MACHINE_NOTE if local and shared else ""))
    checks.append(Check("voter-link certificates valid", min(f.frontend_cert_days, f.ca_days) >= CERT_WARN_DAYS,
                        f"frontend certificate {f.frontend_cert_days:.0f} days, CA {f.ca_days:.0f} days left"))
    checks.append(Check("fee xpub set", bool(f.xpub), f.xpub[:20] + "…" if f.xpub else "none"))
    if isinstance(f.fee_quotes, FeeQuotes):
        too_high = f.fee_quotes.problem()
        checks.append(Check("fee within exccwallet's limit", too_high is None, too_high or f.fee_quotes.detail()))
    else:
        checks.append(Check("fee within exccwallet's limit", False, f.fee_quotes))
    if f.replica_age is None:
        checks.append(Check("backups replicating", False, f.replica_error or "nothing on the replica"))
    else:
        checks.append(Check("backups replicating", f.replica_age < 3600,
                            f"newest replica file {f.replica_age:.0f} s old"))
    if f.network == "mainnet":
        checks.append(Check("mainnet test mode (closed) until an own ticket voted", f.closed or f.own_voted > 0,
                            f"VSP {'closed' if f.closed else 'open'}, {f.own_voted} of {f.own_total} operator tickets voted"))
        checks.append(Check("an operator ticket has voted", f.own_voted > 0,
                            f"{f.own_voted} of {f.own_total} fee-waived operator tickets voted"))
    if f.network == "testnet":
        voted, missed = f.outcomes_7d.get("voted", 0), f.outcomes_7d.get("missed", 0)
        checks.append(Check("a week on testnet", f.uptime_hours_7d >= 160,
                            f"up {f.uptime_hours_7d} of the last 168 hours; voted {voted}, missed {missed}, "
                            f"expired {f.outcomes_7d.get('expired', 0)} in 7 days"))
        checks.append(Check("no missed votes on testnet", missed == 0, f"voted {voted}, missed {missed} in 7 days"))
    return checks


def render(checks: list[Check]) -> str:
    width = max(len(c.rule) for c in checks)
    lines = [f"{'rule'.ljust(width)}  state  detail", f"{'-' * width}  -----  ------"]
    lines += [f"{c.rule.ljust(width)}  {'PASS' if c.ok else 'FAIL'}   {c.detail}" + (f" ({c.note})" if c.note else "")
              for c in checks]
    return "\n".join(lines)


async def _replica_age(cfg: Config) -> tuple[float | None, str]:
    rep = Replicator(cfg.dbpath, cfg.backupreplica, cfg.datadir / "preflight-litestream.yml",
                     cfg.logdir / "preflight-litestream.log", cfg.backupsyncinterval, cfg.backupmaxfailing,
                     cfg.backupsftpkey, cfg.backupsftphostkey)
    rep.write_config()
    try:
        proc = await asyncio.create_subprocess_exec(rep.binary, "ltx", "-config", str(rep.config_path),
                                                    str(cfg.dbpath), stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    except asyncio.TimeoutError:
        return None, "the replica did not answer in 30 s"
    finally:
        rep.config_path.unlink(missing_ok=True)
    created = []
    for line in out.decode(errors="replace").splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5:
            try:
                created.append(datetime.datetime.fromisoformat(parts[4].replace("Z", "+00:00")).timestamp())
            except ValueError:
                continue
    if not created:
        lines = out.decode(errors="replace").strip().splitlines()
        return None, lines[-1] if lines else "empty replica"
    return time.time() - max(created), ""


async def _database_facts(f: Facts, store: Store, closed: bool) -> None:
    """The fee xpub, test mode, the operator's tickets, and the last week, from the database."""
    f.xpub = (await store.current_xpub()).xpub
    f.closed = closed or await store.get_setting("vspclosed") == "true"
    own = await store.tickets_where("fee_waived = 1")
    f.own_total, f.own_voted = len(own), sum(t.outcome == "voted" for t in own)
    f.uptime_hours_7d = await store.uptime_hours(time.time() - WEEK)
    f.outcomes_7d = await store.outcomes_since(time.time() - WEEK)
    f.local_height = max(f.local_height, await store.get_state("last_scanned_height", 0))


async def gather(cfg: Config) -> Facts:
    """For `vspadmin preflight`: asks every voter itself, and the replica through litestream."""
    f = Facts(cfg.net.name, cfg.net.min_voters, cfg.maxlag, host_id())
    clients = [VoterClient(VoterAddress(*v), cfg.voterca, cfg.tlscert, cfg.tlskey) for v in cfg.voters]
    try:
        async def one(c: VoterClient):
            try:
                return c.addr, await c.health(timeout=10), ""
            except VoterUnavailable as e:
                return c.addr, None, str(e)
        f.voters = list(await asyncio.gather(*(one(c) for c in clients)))
    finally:
        for c in clients:
            await c.close()
    f.frontend_cert_days, f.ca_days = certs.days_left(cfg.tlscert), certs.days_left(cfg.voterca)
    store = await Store.open(cfg.dbpath, Sealer(read_key_file(key_file(cfg.datadir))))
    try:
        await _database_facts(f, store, cfg.vspclosed)
    finally:
        await store.close()
    f.replica_age, f.replica_error = await _replica_age(cfg)
    f.fee_quotes = await _fee_quotes(cfg)
    return f


async def _fee_quotes(cfg: Config) -> FeeQuotes | str:
    host, port = cfg.exccdhost
    exccd = Exccd(cfg.net, host, port, cfg.exccduser, cfg.exccdpass, cfg.exccdcert)
    link = asyncio.create_task(exccd.run())
    try:
        if not await exccd.wait_connected(15):
            return f"exccd at {host}:{port} unreachable: {exccd.rpc.last_error}"
        return await current_quotes(exccd, cfg.vspfee, cfg.net)
    finally:
        link.cancel()
        await asyncio.gather(link, return_exceptions=True)


async def running_facts(network: NetParams, voters: VoterPool, replicator: Replicator | None, store: Store,
                        closed: bool, exccd: Exccd, vspfee: float) -> Facts:
    """For the admin page of a running frontend: what it already knows, and the ticket price from its exccd."""
    f = Facts(network.name, network.min_voters, voters.maxlag, host_id(), local_height=voters.local_height())
    f.fee_quotes = await current_quotes(exccd, vspfee, network)
    f.voters = [(s.client.addr, s.health, s.error) for s in voters]
    f.frontend_cert_days, f.ca_days = certs.days_left(voters.cert), certs.days_left(voters.ca)
    await _database_facts(f, store, closed)
    if replicator is None:
        f.replica_error = "backups are off"
    else:
        f.replica_age = replicator.last_sync_age()
        f.replica_error = replicator.last_error or "no sync yet"
    return f

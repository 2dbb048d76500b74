"""`vspadmin`: one-off operator commands.

Each command validates its input first and changes nothing when refusing.
backup, retirexpub and preflight are safe beside a running frontend;
rotatekey and a restore over the live database hold the frontend's run lock
and refuse while it runs.
"""

import argparse
import asyncio
import configparser
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from vspd.base import tls as certs
from vspd.base.config import OPTIONS, ROLES, SECTION, ConfigError
from vspd.base.paths import key_file
from vspd.base.runlock import AlreadyRunning, RunLock
from vspd.base.sealing import Sealer, SealError, create_key_file, install_key_file, read_key_file
from vspd.chain import bip32
from vspd.chain.errors import ChainError
from vspd.chain.params import NETWORKS, NetParams
from vspd.frontend import replication
from vspd.store import Store, StoreError
from vspd.store.db import latest_version

TEST_MODE_MESSAGE = "This VSP is being tested and does not take tickets yet."


class AdminError(Exception):
    """A refusal, printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise AdminError(message)


def _conf_value(homedir: Path, name: str, default: str = "") -> str:
    """An option of {homedir}/vspd.conf; the default when there is no such file, a refusal when it is unreadable."""
    path = homedir / "vspd.conf"
    cp = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            cp.read_file(f)
    except FileNotFoundError:
        return default
    except (OSError, UnicodeDecodeError) as e:
        raise AdminError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    except configparser.Error as e:
        raise AdminError(f"cannot read {path}: {str(e).splitlines()[0]}") from None
    return cp.get(SECTION, name, fallback=default).strip()


def _not_a_folder(path: Path) -> str:
    return f"{path} is not a folder" if path.exists() else f"folder {path} does not exist"


def _paths(args) -> tuple[NetParams, Path, Path]:
    homedir = Path(os.path.expanduser(args.homedir)).resolve()
    name = args.network or _conf_value(homedir, "network", "mainnet").lower()
    if name not in NETWORKS:
        raise AdminError(f"--network: unknown network {name!r} (expected one of {', '.join(NETWORKS)})")
    net = NETWORKS[name]
    return net, homedir, homedir / "data" / net.name


def _check_xpub(text: str, net: NetParams) -> str:
    try:
        return str(bip32.decode_xpub(text.strip(), net))
    except ChainError as e:
        raise AdminError(f"invalid fee xpub for {net.name}: {e}") from None


async def _open(datadir: Path) -> Store:
    try:
        return await Store.open(datadir / "vspd.db", Sealer(read_key_file(key_file(datadir))))
    except (SealError, StoreError) as e:
        raise AdminError(str(e)) from None


async def create_database(args) -> str:
    net, _, datadir = _paths(args)
    xpub = _check_xpub(args.xpub, net)
    db = datadir / "vspd.db"
    if db.exists():
        raise AdminError(f"database {db} already exists")
    kf = key_file(datadir)
    try:
        key = read_key_file(kf) if kf.exists() else create_key_file(kf)
    except (SealError, OSError) as e:
        raise AdminError(f"key file {kf}: {e}") from None
    store = await Store.open(db, Sealer(key), create=True)
    try:
        await store.add_xpub(xpub)
        await store.set_key("signingseed", os.urandom(32))
        await store.set_key("cookiesecret", os.urandom(32))
        if net.name == "mainnet":  # the EXCC listing rule: test mode until an own ticket has voted
            await store.set_settings({"vspclosed": "true", "vspclosedmsg": TEST_MODE_MESSAGE}, "vspadmin",
                                     "close", "test mode of a new mainnet VSP")
    except BaseException:
        await store.close()
        db.unlink(missing_ok=True)
        raise
    await store.close()
    text = (f"created {net.name} database {db}\nkey file {kf} (keep it safe and out of backups "
            f"that leave this machine together with the database)")
    if net.name == "mainnet":
        text += ("\nmainnet: the VSP starts closed (test mode). Register one of your own tickets on the admin "
                 "page, and reopen there once `vspadmin preflight` shows it voted.")
    return text


async def retire_xpub(args) -> str:
    net, _, datadir = _paths(args)
    xpub = _check_xpub(args.xpub, net)
    store = await _open(datadir)
    try:
        old = await store.current_xpub()
        new = await store.add_xpub(xpub)
    except StoreError as e:
        raise AdminError(str(e)) from None
    finally:
        await store.close()
    return f"retired fee xpub {old.id} (last index {old.last_index}); fee xpub {new.id} is now current"


def gen_certs(args) -> str:
    """CA, the frontend's client certificate, and one folder per voter to copy to its host."""
    homedir = Path(os.path.expanduser(args.homedir)).resolve()
    certdir = homedir / "certs"
    try:
        names = [certs.check_name(n.strip()) for n in args.voters.split(",") if n.strip()]
    except certs.CertError as e:
        raise AdminError(str(e)) from None
    if not names:
        raise AdminError("--voters: give at least one voter name")
    if len(set(names)) != len(names):
        raise AdminError("--voters: names must be distinct")
    hosts: dict[str, list[str]] = {}
    for item in args.hosts or []:
        name, sep, host = item.partition("=")
        if not sep or name not in names or not host:
            raise AdminError(f"--host {item!r}: expected NAME=HOST with NAME among --voters")
        hosts.setdefault(name, []).append(host)
    done = []
    try:
        ca_cert, ca_key = certdir / "ca.pem", certdir / "ca.key"
        if ca_cert.exists() and ca_key.exists():
            ca = certs.Issued(ca_cert.read_bytes(), ca_key.read_bytes())
        else:
            ca = certs.make_ca()
            certs.write(certdir, ca, "ca")
            done.append(f"CA {ca_cert}")
        if not (certdir / "frontend.pem").exists():
            certs.write(certdir, certs.issue(ca, certs.FRONTEND_CN, server=False), "frontend")
            done.append(f"frontend client certificate {certdir / 'frontend.pem'}")
        for name in names:
            vdir = certdir / f"voter-{name}"
            if (vdir / "voter.pem").exists():
                continue
            certs.write(vdir, certs.issue(ca, name, server=True, hosts=hosts.get(name, [])), "voter")
            (vdir / "ca.pem").write_bytes(ca.cert_pem)
            done.append(f"voter {name}: copy {vdir}/ to that voter's {{homedir}}/certs/")
    except (certs.CertError, OSError, ValueError) as e:
        raise AdminError(str(e)) from None
    return "\n".join(done) if done else "all certificates already exist"


def _replica(args, homedir: Path, net: NetParams) -> tuple[replication.Replica, str, str]:
    text = args.replica or _conf_value(homedir, "backupreplica") or str(homedir / "replica" / net.name)
    try:
        replica = replication.Replica.parse(text)
    except replication.ReplicaError as e:
        raise AdminError(f"replica: {e}") from None
    key = os.path.expanduser(_conf_value(homedir, "backupsftpkey"))
    return replica, key, _conf_value(homedir, "backupsftphostkey")


def _check_restored(db: Path, key: bytes) -> int:
    """Integrity, schema version and the key file, on the restored copy only."""
    import sqlite3
    con = sqlite3.connect(db)
    try:
        result = con.execute("PRAGMA integrity_check").fetchone()[0]
        version = con.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise AdminError(f"the restored database is unreadable: {e}") from None
    finally:
        con.close()
    if result != "ok":
        raise AdminError(f"the restored database fails its integrity check: {result}")
    if version < 1:
        raise AdminError("the restored file is not a vspd database (schema version 0)")
    if version > latest_version():
        raise AdminError(f"the restored database has schema version {version}, newer than this vspd "
                         f"({latest_version()}); upgrade vspd first")
    return version


async def _finish_restore(db: Path, key: bytes, skip: int) -> int:
    try:
        store = await Store.open(db, Sealer(key))
    except StoreError as e:
        raise AdminError(str(e)) from None
    try:
        try:
            await store.get_key("signingseed")
        except SealError as e:
            raise AdminError(f"{e}: the key file does not belong to this database") from None
        return await store.skip_fee_indexes(skip)
    finally:
        await store.close()


async def restore(args) -> str:
    net, homedir, datadir = _paths(args)
    live = datadir / "vspd.db"
    output = Path(args.output).resolve() if args.output else live
    if output.exists() and not args.force:
        raise AdminError(f"{output} exists; stop vspd and add --force to overwrite it")
    if args.skipindexes < 0:
        raise AdminError("--skipindexes must not be negative")
    kf = key_file(datadir)
    given = Path(args.keyfile).resolve() if args.keyfile else None
    try:
        key = read_key_file(given or kf)
    except SealError as e:
        raise AdminError(f"{e}: copy the key file from safe storage to {kf} (mode 600, its folder created "
                         f"first), or name it with --keyfile PATH and restore puts it there") from None
    if given is not None and given != kf and kf.exists():
        try:
            if read_key_file(kf) != key:
                raise AdminError(f"{kf} exists and holds another key than {given}; move it away first")
        except SealError as e:
            raise AdminError(f"{e}; move it away first") from None
    replica, sftp_key, host_key = _replica(args, homedir, net)
    with _exclusive(datadir, "restore") if output == live else contextlib.nullcontext():
        said = await _restore(args, replica, sftp_key, host_key, live, output, key)
    if given is not None and given != kf and not kf.exists():
        install_key_file(kf, key)  # only once it has opened the restored database
        said += f"; key file installed as {kf}"
    return said


async def _restore(args, replica: replication.Replica, sftp_key: str, host_key: str, live: Path, output: Path,
                   key: bytes) -> str:
    work = Path(tempfile.mkdtemp(prefix=".restore-", dir=output.parent if output.parent.exists() else None))
    try:
        cfg = work / "litestream.yml"
        replication.write_config(cfg, replication.litestream_config(live, replica, 1.0, None, sftp_key, host_key))
        cmd = [replication.litestream_binary(), "restore", "-config", str(cfg), "-o", str(work / "vspd.db")]
        if args.timestamp:
            cmd += ["-timestamp", args.timestamp]
        proc = await asyncio.create_subprocess_exec(*cmd, str(live), stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 600)
        if proc.returncode != 0 or not (work / "vspd.db").exists():
            text = out.decode(errors="replace").strip().splitlines()
            raise AdminError(f"litestream could not restore from {replica.public()}: "
                             f"{text[-1] if text else 'no output'}")
        version = _check_restored(work / "vspd.db", key)
        last = await _finish_restore(work / "vspd.db", key, args.skipindexes)
        output.parent.mkdir(parents=True, exist_ok=True)
        for side in ("-wal", "-shm"):
            Path(str(output) + side).unlink(missing_ok=True)
        shutil.rmtree(output.parent / f".{output.name}-litestream", ignore_errors=True)
        os.replace(work / "vspd.db", output)
        output.chmod(0o600)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return (f"restored {output} from {replica.public()} (schema version {version}); "
            f"fee address index moved on by {args.skipindexes} to {last}")


async def backup(args) -> str:
    net, _, datadir = _paths(args)
    dest = Path(args.path).resolve()
    if dest.exists():
        raise AdminError(f"{dest} exists; not overwriting it")
    if not dest.parent.is_dir():
        raise AdminError(_not_a_folder(dest.parent))
    store = await _open(datadir)
    try:
        await store.backup_to(dest)
    except StoreError as e:
        raise AdminError(str(e)) from None
    finally:
        await store.close()
    dest.chmod(0o600)
    return f"wrote a consistent snapshot of {datadir / 'vspd.db'} to {dest}"


@contextlib.contextmanager
def _exclusive(datadir: Path, command: str) -> Iterator[None]:
    """The data folder's run lock, so that no frontend runs while `command` replaces what it uses."""
    lock = RunLock(datadir, f"vspadmin {command}")
    try:
        lock.acquire()
    except AlreadyRunning as e:
        raise AdminError(f"{e}; stop it first") from None
    try:
        yield
    finally:
        lock.release()


async def rotate_key(args) -> str:
    """New key file, every secret re-sealed in one transaction; safe to re-run after a crash."""
    net, _, datadir = _paths(args)
    if not (datadir / "vspd.db").exists():
        raise AdminError(f"database {datadir / 'vspd.db'} does not exist")
    with _exclusive(datadir, "rotatekey"):
        return await _rotate_key(datadir)


async def _rotate_key(datadir: Path) -> str:
    kf = key_file(datadir)
    pending = kf.with_name(kf.name + ".new")
    store = await _open(datadir)
    try:
        try:
            await store.get_key("signingseed")
        except SealError:
            # The database no longer opens with the old key: a rotation committed but did not
            # get to replace the key file. Finish it, if the pending key is the right one.
            if not pending.exists():
                raise AdminError(f"{kf} does not open this database and there is no {pending.name}") from None
            store.sealer = Sealer(read_key_file(pending))
            await store.get_key("signingseed")
            os.replace(pending, kf)
            return f"finished an interrupted rotation: {kf} is the new key"
        pending.unlink(missing_ok=True)  # an interrupted rotation that never committed
        new_key = create_key_file(pending)
        n = await store.reseal(Sealer(new_key))
        os.replace(pending, kf)
    except SealError as e:
        raise AdminError(str(e)) from None
    finally:
        await store.close()
    return f"re-encrypted {n} secrets under a new key in {kf}"


async def preflight(args) -> str:
    from vspd.base import config as vconfig
    from vspd.frontend import preflight as pf
    homedir = Path(os.path.expanduser(args.homedir)).resolve()
    if not homedir.is_dir():  # say so, rather than name the first option a missing file lacks
        raise AdminError(f"--homedir: {_not_a_folder(homedir)}")
    if not (homedir / "vspd.conf").is_file():
        raise AdminError(f"{homedir / 'vspd.conf'} does not exist: preflight checks a configured frontend "
                         f"(`vspadmin --homedir={args.homedir} writeconfig --role=frontend` writes one to fill in)")
    argv = [f"--homedir={args.homedir}", "--role=frontend"] + ([f"--network={args.network}"] if args.network else [])
    try:
        cfg = vconfig.load(argv)
    except ConfigError as e:
        raise AdminError(f"vspd.conf: {e}") from None
    try:
        facts = await pf.gather(cfg)
    except (StoreError, SealError, OSError) as e:
        raise AdminError(str(e)) from None
    checks = pf.evaluate(facts)
    table = pf.render(checks)
    failed = [c for c in checks if not c.ok]
    if failed and cfg.net.name == "mainnet":
        raise PreflightFailed(f"{table}\n\n{len(failed)} listing rule(s) fail on mainnet")
    return f"{table}\n\n{cfg.net.name}: {len(failed)} rule(s) fail" if failed else f"{table}\n\nall rules pass"


async def import_vspd(args) -> str:
    """An EXCCoin/vspd database (bbolt) becomes this frontend's database; see vspd/admin/fromgo/importvspd.py."""
    from vspd.admin.fromgo import importvspd
    net, homedir, _ = _paths(args)
    try:
        report = await importvspd.import_vspd(Path(args.path), homedir, net.name, args.force, args.dry_run)
    except importvspd.Refused as e:
        raise AdminError(str(e)) from None
    return report.render()


class PreflightFailed(Exception):
    """Printed in full on stdout, then exit 1."""


def config_text(role: str | None) -> str:
    lines = ["; vspd configuration (written by vspadmin writeconfig).",
             "; Every option can also be given on the command line as --name=value.",
             f"[{SECTION}]", ""]
    for o in OPTIONS:
        if o.cli_only or (role and role not in o.roles):
            continue
        lines.append(f"; {o.help}. Roles: {', '.join(o.roles)}."
                     + (" Required." if o.required else "")
                     + (f" One of: {', '.join(o.choices)}." if o.choices else ""))
        default = (str(o.default).lower() if isinstance(o.default, bool)
                   else ",".join(o.default) if isinstance(o.default, list) else o.default)
        if o.name == "role" and role:
            lines.append(f"role = {role}")
        else:
            lines.append(f"; {o.name} = {default}")
        lines.append("")
    return "\n".join(lines)


def write_config(args) -> str:
    homedir = Path(os.path.expanduser(args.homedir)).resolve()
    path = Path(args.output) if args.output else homedir / "vspd.conf"
    if path.exists():
        raise AdminError(f"{path} already exists; not overwriting it")
    if args.output and not path.parent.is_dir():  # the home folder is made; a folder named by hand must exist
        raise AdminError(f"--output: {_not_a_folder(path.parent)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(config_text(args.role))
    return f"wrote {path}"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vspadmin", description="vspd operator commands", allow_abbrev=False)
    p.add_argument("--homedir", default="~/.vspd", help="vspd home folder (default ~/.vspd)")
    p.add_argument("--network", choices=sorted(NETWORKS), default=None,
                   help="network (default: from vspd.conf, else mainnet)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    c = sub.add_parser("createdatabase", help="create a new database with a fee xpub")
    c.add_argument("xpub")
    r = sub.add_parser("retirexpub", help="replace the fee xpub (the old one stays for lookups)")
    r.add_argument("xpub")
    rs = sub.add_parser("restore", help="rebuild the database from the litestream replica")
    rs.add_argument("--timestamp", default=None, help="point in time, e.g. 2026-01-01T00:00:00Z (default: latest)")
    rs.add_argument("--output", default=None, help="write here instead of the live database path")
    rs.add_argument("--force", action="store_true", help="overwrite an existing database (vspd stopped)")
    rs.add_argument("--replica", default=None, help="replica URL (default: backupreplica of vspd.conf)")
    rs.add_argument("--keyfile", default=None,
                    help="the key file from safe storage, checked against the replica and put in place "
                         "(default: the one already at data/<network>/vspd.key)")
    rs.add_argument("--skipindexes", type=int, default=100,
                    help="fee address indexes to skip, for any handed out after the last sync (default 100)")
    b = sub.add_parser("backup", help="write a consistent snapshot of the database")
    b.add_argument("path")
    sub.add_parser("rotatekey", help="re-encrypt every stored secret under a new key file")
    sub.add_parser("preflight", help="check the EXCC listing rules against this deployment")
    g = sub.add_parser("gencerts", help="CA and certificates of the frontend -> voter link")
    g.add_argument("--voters", required=True, help="comma-separated voter names (DNS labels)")
    g.add_argument("--host", dest="hosts", action="append", help="NAME=HOST: extra SAN for a voter")
    iv = sub.add_parser("importvspd", help="import the database of an EXCCoin/vspd (Go) deployment")
    iv.add_argument("path", help="its vspd.db (the Go vspd stopped)")
    iv.add_argument("--force", action="store_true", help="replace an existing database (backed up first)")
    iv.add_argument("--dry-run", action="store_true", help="check and report; write nothing")
    w = sub.add_parser("writeconfig", help="write a commented vspd.conf with every option")
    w.add_argument("--role", choices=ROLES, default=None)
    w.add_argument("--output", default=None, help="path (default {homedir}/vspd.conf)")
    return p


COMMANDS = {"preflight": preflight, "restore": restore, "backup": backup, "rotatekey": rotate_key, "gencerts": gen_certs, "createdatabase": create_database, "retirexpub": retire_xpub, "writeconfig": write_config,
            "importvspd": import_vspd}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        if args.command is None:  # a first try with no command: show what there is
            parser.print_help(sys.stderr)
            return 2
        result = COMMANDS[args.command](args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
    except (AdminError, ConfigError) as e:
        print(f"vspadmin: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file the checks above did not foresee: still one line that names it
        print(f"vspadmin: {e}", file=sys.stderr)
        return 2
    except PreflightFailed as e:
        print(e)
        return 1
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

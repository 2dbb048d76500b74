"""Configuration: one table of options, read from vspd.conf and the command line.

Everything is validated here, once, before anything starts (ElectrumX's
env.py); the rest of the code trusts the Config object. A bad value stops
start-up with one line naming the option.
"""

import argparse
import configparser
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vspd.base import tls
from vspd.base.logs import WHOLE_WORD_BELOW
from vspd.base.tls import NAME_RE
from vspd.chain.errors import ChainError
from vspd.chain.params import NetParams, by_name

SECTION = "Application Options"
ROLES = ("frontend", "voter")
BOTH = ROLES
FRONTEND = ("frontend",)
VOTER = ("voter",)
LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "critical")
MAX_VALUE_CHARS = 4096  # any one option's value; a few have tighter limits below
MAX_DESIGNATION_CHARS = 64
MAX_CLOSEDMSG_CHARS = 500  # as the admin page's close form
MIN_SECRET_CHARS = WHOLE_WORD_BELOW  # shorter: refused on mainnet, warned about elsewhere (the log hides less)


class ConfigError(Exception):
    """A user mistake in configuration: printed as one line, exit non-zero."""


@dataclass(frozen=True)
class Option:
    name: str
    kind: str  # str, int, float, bool, path, choice, hostport, list
    default: Any
    roles: tuple
    help: str
    secret: bool = False
    required: bool = False
    choices: tuple = ()
    cli_only: bool = False


OPTIONS: tuple[Option, ...] = (
    Option("homedir", "path", "~/.vspd", BOTH, "Home folder for data, logs and vspd.conf", cli_only=True),
    Option("configfile", "path", "", BOTH, "Path to the config file (default {homedir}/vspd.conf)", cli_only=True),
    Option("role", "choice", "", BOTH, "Which node this is", choices=ROLES, required=True),
    Option("network", "choice", "testnet", BOTH, "Network", choices=("mainnet", "testnet", "simnet")),
    Option("loglevel", "choice", "debug", BOTH, "Logging level", choices=LOG_LEVELS),
    Option("maxlogsize", "int", 10, BOTH, "Size in MiB at which the log file rotates"),
    Option("logstokeep", "int", 20, BOTH, "Number of rotated log files to keep"),
    Option("exccdhost", "hostport", "127.0.0.1", BOTH, "exccd RPC host[:port] (default port per network)"),
    Option("exccduser", "str", "", BOTH, "exccd RPC user name", required=True),
    Option("exccdpass", "str", "", BOTH, "exccd RPC password", secret=True, required=True),
    Option("exccdcert", "path", "", BOTH, "exccd RPC certificate (rpc.cert)", required=True),
    Option("listen", "hostport", "127.0.0.1:8800", FRONTEND, "HTTP listen address (put nginx in front)"),
    Option("vspfee", "float", 3.0, FRONTEND, "Fee percentage charged per ticket (0.01 to 100)"),
    Option("supportemail", "str", "", FRONTEND, "Support e-mail shown on the site", required=True),
    Option("adminpass", "str", "", FRONTEND, "Admin password", secret=True, required=True),
    Option("designation", "str", "Voting Service Provider", FRONTEND, "Short name shown on the site"),
    Option("vspclosed", "bool", False, FRONTEND, "Refuse new tickets (existing ones are still voted)"),
    Option("vspclosedmsg", "str", "", FRONTEND, "Message shown while the VSP is closed"),
    Option("ticketpage", "bool", False, FRONTEND,
           "Public ticket page /ticket/<hash>: shows anyone that a ticket uses this VSP (see the operator guide)"),
    Option("webserverdebug", "bool", False, FRONTEND, "Reload templates, refresh stats every second"),
    Option("voters", "list", [], FRONTEND,
           "Voters as name@host:port, comma-separated (name = the one in its certificate)"),
    Option("minvoters", "int", 0, FRONTEND,
           "Healthy voters needed to accept new tickets (default: 2 on mainnet, else 1)"),
    Option("maxlag", "int", 6, FRONTEND, "Blocks a node or wallet may lag before intake stops"),
    Option("healthinterval", "float", 5.0, FRONTEND, "Seconds between voter health checks"),
    Option("grpclisten", "hostport", ":9113", VOTER, "gRPC listen address for the frontend's calls"),
    Option("wallethost", "hostport", "127.0.0.1", VOTER, "exccwallet RPC host[:port] (default port per network)"),
    Option("walletuser", "str", "", VOTER, "exccwallet RPC user name", required=True),
    Option("walletpass", "str", "", VOTER, "exccwallet RPC password", secret=True, required=True),
    Option("walletcert", "path", "", VOTER, "exccwallet RPC certificate (rpc.cert)", required=True),
    Option("voterca", "path", "", BOTH, "CA of the voter link (default {homedir}/certs/ca.pem)"),
    Option("tlscert", "path", "", BOTH,
           "This node's voter-link certificate (default {homedir}/certs/frontend.pem or voter.pem)"),
    Option("tlskey", "path", "", BOTH, "Key of tlscert (default {homedir}/certs/frontend.key or voter.key)"),
    Option("backupreplica", "str", "", FRONTEND,
           "Where litestream streams the database: a folder, file:///path, sftp://user@host[:port]/path "
           "or s3://bucket/path (default: the folder {homedir}/replica/{network})"),
    Option("backupsyncinterval", "float", 1.0, FRONTEND,
           "Seconds between background replica syncs (feeaddress and payfee sync at once: backupackwait)"),
    Option("backupsftpkey", "path", "", FRONTEND, "SSH private key for an sftp:// replica"),
    Option("backupsftphostkey", "str", "", FRONTEND,
           "The SFTP server's public host key line (e.g. 'ssh-ed25519 AAAA...'), pinned"),
    Option("backupmaxfailing", "float", 300.0, FRONTEND,
           "Seconds replication may fail before /status reports it"),
    Option("backupackwait", "float", 5.0, FRONTEND,
           "Seconds feeaddress and payfee wait for the replica to hold their write before refusing"),
    Option("trustedproxies", "list", ["127.0.0.1", "::1"], FRONTEND,
           "Proxies whose X-Forwarded-For is believed (comma-separated IPs)"),
    Option("headtimeout", "float", 10.0, FRONTEND,
           "Seconds a client has to send a request's head (nginx: client_header_timeout)"),
    Option("bodytimeout", "float", 30.0, FRONTEND,
           "Seconds a request's body may go without a byte arriving (nginx: client_body_timeout)"),
    Option("idletimeout", "float", 75.0, FRONTEND,
           "Seconds a connection may wait idle for its next request (nginx: keepalive_timeout)"),
    Option("sendtimeout", "float", 60.0, FRONTEND,
           "Seconds a client may leave an answer unread before it is cut off (nginx: send_timeout)"),
    Option("maxclientconns", "int", 100, FRONTEND,
           "Open connections one client address may hold, its real address behind trustedproxies (0: no cap)"),
)
BY_NAME = {o.name: o for o in OPTIONS}
SECRET_OPTIONS = tuple(o.name for o in OPTIONS if o.secret)


@dataclass
class Config:
    role: str
    net: NetParams
    homedir: Path
    configfile: Path
    values: dict = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)

    @property
    def datadir(self) -> Path:
        return self.homedir / "data" / self.net.name

    @property
    def logdir(self) -> Path:
        return self.homedir / "logs" / self.net.name

    @property
    def dbpath(self) -> Path:
        return self.datadir / "vspd.db"

    def secrets(self) -> list[str]:
        return [self.values[n] for n in SECRET_OPTIONS if self.values.get(n)]

    def short_secrets(self) -> list[str]:
        """Names of the secret options whose value is too short to be a secret (not the values)."""
        return [n for n in SECRET_OPTIONS if 0 < len(self.values.get(n) or "") < MIN_SECRET_CHARS]


# -- value parsers: each returns the typed value or raises ValueError -------

def _one_line(text: str) -> str:
    """Every value: at most MAX_VALUE_CHARS, and no control characters (a NUL in a path, a line break)."""
    if len(text) > MAX_VALUE_CHARS:
        raise ValueError(f"{len(text)} characters, more than {MAX_VALUE_CHARS}")
    bad = next((c for c in text if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise ValueError(f"control character {bad!r} in the value")
    return text


def _parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _parse_int(text: str) -> int:
    return int(text.strip(), 10)


def _parse_float(text: str) -> float:
    v = float(text.strip())
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")
    return v


def split_hostport(text: str, default_port: int | None) -> tuple[str, int]:
    """Parse host[:port] or [v6]:port; raises ValueError with a reason."""
    text = text.strip()
    if not text:
        raise ValueError("empty address")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError("unclosed [ in IPv6 address")
        host, rest = text[1:end], text[end + 1:]
        port_text = rest[1:] if rest.startswith(":") else (None if not rest else "bad")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1:
        host, port_text = text, None  # bare IPv6
    else:
        host, port_text = text, None
    if port_text is None:
        if default_port is None:
            raise ValueError("a port is required")
        port = default_port
    else:
        if not port_text.isdigit():
            raise ValueError(f"bad port {port_text!r}")
        port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    if host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not all(part and len(part) < 64 and part.replace("-", "").isalnum()
                       for part in host.split(".")):
                raise ValueError(f"bad host name {host!r}") from None
    return host, port


def _parse_list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


PARSERS: dict[str, Callable[[str], Any]] = {
    "str": lambda s: s, "path": lambda s: s.strip(), "choice": lambda s: s.strip().lower(),
    "int": _parse_int, "float": _parse_float, "bool": _parse_bool, "hostport": lambda s: s.strip(),
    "list": _parse_list,
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise ConfigError(message)


def build_arg_parser(prog: str = "vspd") -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="ExchangeCoin Voting Service Provider", allow_abbrev=False,
                argument_default=argparse.SUPPRESS)
    p.add_argument("--version", action="store_true", help="print the version and exit")
    for o in OPTIONS:
        extra = {"nargs": "?", "const": "true"} if o.kind == "bool" else {}
        metavar = "{" + ",".join(o.choices) + "}" if o.choices else o.kind.upper()
        p.add_argument(f"--{o.name}", metavar=metavar, help=_help(o), **extra)
    return p


def _help(o: Option) -> str:
    """The --help line of an option: its roles, what it does, and its default unless the text already says it."""
    text = f"[{'/'.join(o.roles)}] {o.help}"
    default = ",".join(o.default) if isinstance(o.default, list) else o.default
    if o.required:
        text += " (required)"
    elif default not in ("", False) and "default" not in o.help:
        text += f" (default {default})"
    return text.replace("%", "%%")  # argparse formats help strings


def _read_file(path: Path) -> dict[str, str]:
    cp = configparser.ConfigParser(interpolation=None, strict=True, delimiters=("=",),
                                   comment_prefixes=(";", "#"), inline_comment_prefixes=None)
    try:
        with open(path, encoding="utf-8") as f:
            cp.read_file(f)
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"configfile {path}: cannot read: {e}") from None
    except configparser.Error as e:
        first = str(e).splitlines()[0]
        raise ConfigError(f"configfile {path}: {first}") from None
    out: dict[str, str] = {}
    for section in cp.sections():
        if section != SECTION:
            raise ConfigError(f"configfile {path}: unknown section [{section}] (expected [{SECTION}])")
        for key, value in cp.items(section):
            if key not in BY_NAME:
                raise ConfigError(f"configfile {path}: unknown option {key!r}")
            if BY_NAME[key].cli_only:
                raise ConfigError(f"configfile {path}: option {key!r} can only be given on the command line")
            out[key] = value
    return out


def exposed(configfile: Path) -> str | None:
    """A warning when the config file, which holds passwords, can be read by other users."""
    try:
        mode = configfile.stat().st_mode
    except OSError:
        return None
    if mode & 0o077:
        return (f"{configfile} can be read by other users (mode {mode & 0o777:o}) and holds passwords: "
                f"chmod 600 it")
    return None


def load(argv: list[str], prog: str = "vspd") -> Config | None:
    """Parse and validate; None means --version was asked for."""
    ns = vars(build_arg_parser(prog).parse_args(argv))
    if ns.pop("version", False):
        return None
    homedir = Path(os.path.expanduser(ns.get("homedir", BY_NAME["homedir"].default))).resolve()
    explicit_cfg = "configfile" in ns and ns["configfile"]
    configfile = Path(os.path.expanduser(ns["configfile"])) if explicit_cfg else homedir / "vspd.conf"
    try:
        file_values = _read_file(configfile)
    except FileNotFoundError:
        if explicit_cfg:
            raise ConfigError(f"configfile {configfile}: file not found") from None
        file_values = {}
    raw = {**file_values, **{k: v for k, v in ns.items() if k not in ("homedir", "configfile")}}
    return validate(raw, homedir, configfile)


def validate(raw: dict[str, str], homedir: Path, configfile: Path) -> Config:
    values: dict[str, Any] = {}
    for o in OPTIONS:
        if o.cli_only:
            continue
        if o.name in raw:
            try:
                values[o.name] = PARSERS[o.kind](_one_line(raw[o.name]))
            except ValueError as e:
                shown = "(hidden)" if o.secret else repr(raw[o.name]) if len(raw[o.name]) <= 100 else "given"
                raise ConfigError(f"option {o.name}: invalid value {shown}: {e}") from None
        else:
            values[o.name] = list(o.default) if isinstance(o.default, list) else o.default
        if o.kind == "choice" and values[o.name] and values[o.name] not in o.choices:
            raise ConfigError(f"option {o.name}: {values[o.name]!r} is not one of {', '.join(o.choices)}")
    role = values["role"]
    if not role:
        raise ConfigError("option role: required (--role=frontend or --role=voter)")
    for name in raw:
        o = BY_NAME[name]
        if role not in o.roles:
            raise ConfigError(f"option {name}: only applies to the {'/'.join(o.roles)} role, not {role}")
    for o in OPTIONS:
        if role in o.roles and o.required and values.get(o.name) in ("", None):
            raise ConfigError(f"option {o.name}: required for the {role} role")
        if o.secret and values["network"] == "mainnet" and 0 < len(values[o.name] or "") < MIN_SECRET_CHARS:
            raise ConfigError(f"option {o.name}: must be at least {MIN_SECRET_CHARS} characters on mainnet")
    try:
        net = by_name(values["network"])
    except ChainError as e:
        raise ConfigError(f"option network: {e}") from None
    _check_values(values, role, net, homedir)
    _check_tls(values, role, homedir)
    return Config(role=role, net=net, homedir=homedir, configfile=configfile, values=values)


def _read_pem(name: str, path: Path, marker: bytes) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"option {name}: cannot read {path}: {e.strerror}") from None
    if marker not in data:
        raise ConfigError(f"option {name}: {path} is not a PEM {marker.decode().strip('-').lower()}")
    return data


def _check_tls(values: dict, role: str, homedir: Path) -> None:
    stem = "frontend" if role == "frontend" else "voter"
    defaults = {"voterca": "ca.pem", "tlscert": f"{stem}.pem", "tlskey": f"{stem}.key"}
    for name, default in defaults.items():
        path = Path(os.path.expanduser(values[name])) if values[name] else homedir / "certs" / default
        marker = b"PRIVATE KEY-----" if name == "tlskey" else b"-----BEGIN CERTIFICATE-----"
        values[name] = _read_pem(name, path, marker)
        if name == "tlskey" and path.stat().st_mode & 0o077:
            raise ConfigError(f"option tlskey: {path} can be read by other users; chmod 600 it")
    problem = tls.pair_problem(values["tlscert"], values["tlskey"])
    if problem:
        raise ConfigError(f"option tlskey: {problem}")


def _check_backup(values: dict, homedir: Path, net: NetParams) -> None:
    from vspd.base.replica import Replica, ReplicaError
    text = values["backupreplica"] or str(homedir / "replica" / net.name)
    try:
        values["backupreplica"] = Replica.parse(text)
    except ReplicaError as e:
        raise ConfigError(f"option backupreplica: {e}") from None
    if not 0.1 <= values["backupsyncinterval"] <= 3600:
        raise ConfigError("option backupsyncinterval: must be between 0.1 and 3600 seconds")
    if not 1 <= values["backupmaxfailing"] <= 7 * 86400:
        raise ConfigError("option backupmaxfailing: must be between 1 second and 7 days (604800)")
    if not 0.5 <= values["backupackwait"] <= 60:
        raise ConfigError("option backupackwait: must be between 0.5 and 60 seconds")
    if values["backupreplica"].kind == "sftp":
        key = values["backupsftpkey"]
        if not key or not os.access(os.path.expanduser(key), os.R_OK):
            raise ConfigError(f"option backupsftpkey: an sftp:// replica needs a readable SSH key ({key or 'unset'})")
        values["backupsftpkey"] = str(Path(os.path.expanduser(key)).resolve())
        if not values["backupsftphostkey"].strip():
            raise ConfigError("option backupsftphostkey: an sftp:// replica needs the server's host key")


def parse_voter(text: str) -> tuple[str, str, int]:
    """name@host:port -> (name, host, port)."""
    name, sep, addr = text.partition("@")
    if not sep or not name:
        raise ValueError(f"{text!r} is not name@host:port")
    if not NAME_RE.match(name):
        raise ValueError(f"voter name {name!r} must be the DNS label in its certificate (a-z, 0-9, -)")
    host, port = split_hostport(addr, None)
    if not host:
        raise ValueError(f"{text!r} has no host")
    return name, host, port


def _check_values(values: dict, role: str, net: NetParams, homedir: Path) -> None:
    if not 1 <= values["maxlogsize"] <= 10240:
        raise ConfigError("option maxlogsize: must be between 1 and 10240 (MiB)")
    if not 0 <= values["logstokeep"] <= 1000:
        raise ConfigError("option logstokeep: must be between 0 and 1000")
    try:
        values["exccdhost"] = split_hostport(values["exccdhost"], net.node_rpc_port)
    except ValueError as e:
        raise ConfigError(f"option exccdhost: {e}") from None
    values["exccdcert"] = _read_pem("exccdcert", Path(os.path.expanduser(values["exccdcert"])),
                                    b"-----BEGIN CERTIFICATE-----")
    if role == "voter":
        for name, default_port in (("wallethost", net.wallet_rpc_port), ("grpclisten", None)):
            try:
                values[name] = split_hostport(values[name], default_port)
            except ValueError as e:
                raise ConfigError(f"option {name}: {e}") from None
        values["walletcert"] = _read_pem("walletcert", Path(os.path.expanduser(values["walletcert"])),
                                         b"-----BEGIN CERTIFICATE-----")
    if role == "frontend":
        try:
            values["listen"] = split_hostport(values["listen"], None)
        except ValueError as e:
            raise ConfigError(f"option listen: {e}") from None
        fee = values["vspfee"]
        if not (0 < fee < 101 and 1 <= int(fee * 100) <= 10000):  # the range first: int(1e308 * 100) overflows
            raise ConfigError("option vspfee: invalid vspfee - should be greater than 0.01 and less than 100.0")
        if len(values["designation"]) > MAX_DESIGNATION_CHARS:
            raise ConfigError(f"option designation: at most {MAX_DESIGNATION_CHARS} characters (a short name)")
        if len(values["vspclosedmsg"]) > MAX_CLOSEDMSG_CHARS:
            raise ConfigError(f"option vspclosedmsg: at most {MAX_CLOSEDMSG_CHARS} characters")
        if "@" not in values["supportemail"] or any(c.isspace() for c in values["supportemail"]):
            raise ConfigError("option supportemail: not an e-mail address")
        if not values["vspclosed"]:
            values["vspclosedmsg"] = ""
        voters = []
        for v in values["voters"]:
            try:
                voters.append(parse_voter(v))
            except ValueError as e:
                raise ConfigError(f"option voters: {e}") from None
        names = [v[0] for v in voters]
        if len(set(names)) != len(names):
            raise ConfigError("option voters: voter names must be distinct")
        if len(voters) < net.min_voters:
            raise ConfigError(f"option voters: {net.name} needs at least {net.min_voters} voter(s), "
                              f"{len(voters)} configured")
        values["voters"] = voters
        if values["minvoters"] == 0:
            values["minvoters"] = 2 if net.name == "mainnet" else 1
        if not 1 <= values["minvoters"] <= max(1, len(voters)):
            raise ConfigError(f"option minvoters: must be between 1 and the number of voters ({len(voters)})")
        if not 0.2 <= values["healthinterval"] <= 300:
            raise ConfigError("option healthinterval: must be between 0.2 and 300 seconds")
        if not 0 <= values["maxlag"] <= 4096:
            raise ConfigError("option maxlag: must be between 0 and 4096 blocks")
        for name in ("headtimeout", "bodytimeout", "idletimeout", "sendtimeout"):
            if not 0.1 <= values[name] <= 3600:
                raise ConfigError(f"option {name}: must be between 0.1 and 3600 seconds")
        if not 0 <= values["maxclientconns"] <= 1_000_000:
            raise ConfigError("option maxclientconns: must be between 0 (no cap) and 1000000")
        _check_backup(values, homedir, net)
        for ip in values["trustedproxies"]:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise ConfigError(f"option trustedproxies: {ip!r} is not an IP address") from None

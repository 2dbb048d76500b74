"""Configuration: file and flags, per-role validation, one clear line per mistake."""

import subprocess
import sys
from pathlib import Path

import pytest

from vspd.base import config
from vspd.base.config import ConfigError

from conftest import make_certs


@pytest.fixture
def cert(tmp_path) -> Path:
    from vspd.base.tls import self_signed
    p = tmp_path / "rpc.cert"
    p.write_bytes(self_signed("x", ["127.0.0.1"])[0])
    return p


def base(tmp_path, cert, *extra):
    if not (tmp_path / "certs").exists():
        make_certs(tmp_path, "v1,v2,v3")
    return [f"--homedir={tmp_path}", "--role=frontend", "--network=simnet", "--exccduser=u",
            "--exccdpass=secretpass", f"--exccdcert={cert}", "--supportemail=a@b.c",
            "--adminpass=adminadmin", "--voters=v1@127.0.0.1:9113", *extra]


def voter_args(tmp_path, cert, *extra):
    if not (tmp_path / "certs").exists():
        make_certs(tmp_path, "v1")
    vdir = tmp_path / "certs" / "voter-v1"
    return [f"--homedir={tmp_path}", "--role=voter", "--network=simnet", "--exccduser=u", "--exccdpass=p",
            f"--exccdcert={cert}", "--walletuser=w", "--walletpass=wp", f"--walletcert={cert}",
            f"--voterca={vdir}/ca.pem", f"--tlscert={vdir}/voter.pem", f"--tlskey={vdir}/voter.key", *extra]


def test_flags_parse_and_defaults(tmp_path, cert):
    cfg = config.load(base(tmp_path, cert))
    assert cfg.role == "frontend" and cfg.net.name == "simnet"
    assert cfg.exccdhost == ("127.0.0.1", 19556)
    assert cfg.listen == ("127.0.0.1", 8800)
    assert cfg.vspfee == 3.0 and cfg.vspclosed is False
    assert cfg.dbpath == tmp_path / "data" / "simnet" / "vspd.db"
    assert cfg.logdir == tmp_path / "logs" / "simnet"
    assert "secretpass" in cfg.secrets() and "adminadmin" in cfg.secrets()


def test_file_then_flags_override(tmp_path, cert):
    (tmp_path / "vspd.conf").write_text(
        "[Application Options]\nvspfee = 1.5\nvspclosed = true\nvspclosedmsg = moving\nlisten = :9000\n")
    cfg = config.load(base(tmp_path, cert, "--vspfee=2"))
    assert cfg.vspfee == 2.0 and cfg.vspclosed is True and cfg.vspclosedmsg == "moving"
    assert cfg.listen == ("", 9000)


@pytest.mark.parametrize("extra,needle", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--network=testnet3"], "option network: 'testnet3' is not one of"),
    (["--vspfee=0"], "option vspfee: invalid vspfee"),
    (["--vspfee=101"], "option vspfee: invalid vspfee"),
    (["--vspfee=abc"], "option vspfee: invalid value 'abc'"),
    (["--maxlogsize=0"], "option maxlogsize"),
    (["--listen=127.0.0.1:99999"], "option listen: port 99999 out of range"),
    (["--listen=127.0.0.1"], "option listen: a port is required"),
    (["--exccdhost=bad host:1"], "option exccdhost: bad host name"),
    (["--supportemail=nobody"], "option supportemail"),
    (["--trustedproxies=1.2.3.4,nope"], "option trustedproxies: 'nope'"),
    (["--vspclosed=maybe"], "option vspclosed: invalid value"),
    (["--loglevel=loud"], "option loglevel"),
    (["--headtimeout=0"], "option headtimeout: must be between 0.1 and 3600"),
    (["--sendtimeout=1e9"], "option sendtimeout: must be between 0.1 and 3600"),
    (["--bodytimeout=nan"], "option bodytimeout"),
    (["--maxclientconns=-1"], "option maxclientconns"),
])
def test_bad_values_name_the_option(tmp_path, cert, extra, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        config.load(base(tmp_path, cert, *extra))


def test_missing_required_and_role_mismatch(tmp_path, cert):
    args = [a for a in base(tmp_path, cert) if not a.startswith("--adminpass")]
    with pytest.raises(ConfigError, match="option adminpass: required for the frontend role"):
        config.load(args)
    with pytest.raises(ConfigError, match="option role: required"):
        config.load([a for a in base(tmp_path, cert) if not a.startswith("--role")])
    with pytest.raises(ConfigError, match="option supportemail: only applies to the frontend role"):
        config.load(voter_args(tmp_path, cert, "--supportemail=a@b.c"))
    with pytest.raises(ConfigError, match="option walletuser: required for the voter role"):
        config.load([a for a in voter_args(tmp_path, cert) if not a.startswith("--walletuser")])


def test_voter_config(tmp_path, cert):
    cfg = config.load(voter_args(tmp_path, cert))
    assert cfg.role == "voter" and cfg.wallethost == ("127.0.0.1", 19557) and cfg.grpclisten == ("", 9113)
    assert b"PRIVATE KEY" in cfg.tlskey and b"CERTIFICATE" in cfg.voterca
    with pytest.raises(ConfigError, match="option tlskey: .* is not a PEM private key"):
        config.load(voter_args(tmp_path, cert, f"--tlskey={cert}"))
    with pytest.raises(ConfigError, match="option grpclisten: bad port"):
        config.load(voter_args(tmp_path, cert, "--grpclisten=:x"))


def test_voters_list_rules(tmp_path, cert):
    cfg = config.load(base(tmp_path, cert, "--voters=a@127.0.0.1:1,b@localhost:2"))
    assert cfg.voters == [("a", "127.0.0.1", 1), ("b", "localhost", 2)] and cfg.minvoters == 1
    with pytest.raises(ConfigError, match="option voters: 'x' is not name@host:port"):
        config.load(base(tmp_path, cert, "--voters=x"))
    with pytest.raises(ConfigError, match="must be the DNS label"):
        config.load(base(tmp_path, cert, "--voters=Bad_Name@h:1"))
    with pytest.raises(ConfigError, match="distinct"):
        config.load(base(tmp_path, cert, "--voters=a@h:1,a@h:2"))
    with pytest.raises(ConfigError, match="needs at least 1 voter"):
        config.load(base(tmp_path, cert, "--voters="))
    with pytest.raises(ConfigError, match="option minvoters"):
        config.load(base(tmp_path, cert, "--voters=a@h:1", "--minvoters=2"))
    main = [a.replace("--network=simnet", "--network=mainnet") for a in base(tmp_path, cert)]
    with pytest.raises(ConfigError, match="mainnet needs at least 3 voter"):
        config.load(main)
    cfg = config.load(main[:-1] + ["--voters=a@h:1,b@h:2,c@h:3"])
    assert cfg.minvoters == 2


def test_secrets_are_not_echoed(tmp_path, cert):
    with pytest.raises(ConfigError) as e:
        config.load(base(tmp_path, cert, "--exccdcert=/nonexistent/rpc.cert"))
    assert "cannot read /nonexistent/rpc.cert" in str(e.value)
    (tmp_path / "vspd.conf").write_text("[Application Options]\nmaxlogsize = s3cr3t\n")
    with pytest.raises(ConfigError, match="maxlogsize"):
        config.load(base(tmp_path, cert))


def test_config_file_mistakes(tmp_path, cert):
    (tmp_path / "vspd.conf").write_text("[Application Options]\nnosuch = 1\n")
    with pytest.raises(ConfigError, match="unknown option 'nosuch'"):
        config.load(base(tmp_path, cert))
    (tmp_path / "vspd.conf").write_text("[Other]\nnetwork = simnet\n")
    with pytest.raises(ConfigError, match=r"unknown section \[Other\]"):
        config.load(base(tmp_path, cert))
    (tmp_path / "vspd.conf").write_text("no section here\n")
    with pytest.raises(ConfigError, match="configfile"):
        config.load(base(tmp_path, cert))
    (tmp_path / "vspd.conf").write_text("[Application Options]\nhomedir = /x\n")
    with pytest.raises(ConfigError, match="only be given on the command line"):
        config.load(base(tmp_path, cert))
    with pytest.raises(ConfigError, match="file not found"):
        config.load(base(tmp_path, cert, f"--configfile={tmp_path}/missing.conf"))


def run_vspd(*args):
    exe = Path(sys.executable).parent / "vspd"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)


def test_cli_version_and_one_line_errors(tmp_path, cert):
    r = run_vspd("--version")
    assert r.returncode == 0 and r.stdout.strip() == "vspd version 1.3.0"
    r = run_vspd("--role=frontend", "--network=simnet", "--bogus", f"--homedir={tmp_path}")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "--bogus" in r.stderr
    r = run_vspd(*base(tmp_path, cert))  # no database yet: one line, non-zero
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "does not exist; create it with `vspadmin" in r.stderr.strip().splitlines()[-1]


def test_readable_config_file_is_warned_about(tmp_path, cert):
    conf = tmp_path / "vspd.conf"
    conf.write_text("[Application Options]\nadminpass = Sup3rSecretAdm1n\n")
    args = [a for a in base(tmp_path, cert) if not a.startswith("--adminpass")]
    conf.chmod(0o644)
    r = run_vspd(*args)
    assert "can be read by other users (mode 644) and holds passwords: chmod 600 it" in r.stdout
    assert "Sup3rSecretAdm1n" not in r.stdout + r.stderr
    conf.chmod(0o600)
    r = run_vspd(*args)
    assert r.returncode == 1 and "can be read by other users" not in r.stdout  # the same start, quiet on this


def test_readable_tls_key_is_refused(tmp_path, cert):
    key = tmp_path / "certs" / "voter-v1" / "voter.key"
    config.load(voter_args(tmp_path, cert))
    key.chmod(0o640)
    with pytest.raises(ConfigError, match="option tlskey: .* can be read by other users; chmod 600 it"):
        config.load(voter_args(tmp_path, cert))


def test_version_is_semver_at_least_1_1_0():
    from vspd.chain.semver import SemVer, at_least
    from vspd.version import __version__
    assert at_least(SemVer.parse(__version__), SemVer(1, 1, 0))


def test_log_filter_scrubs_secrets_and_keys(tmp_path):
    import logging

    from vspd.base import logs
    logs.setup("debug", tmp_path, secrets=["hunter2hunter2"])
    log = logging.getLogger("t")
    log.info("password %s and key %s", "hunter2hunter2", "cVQpSLDcUt77NPiPSmdoMpcRQcHahHyCJSd8mDdRLtGo8Pq269yF")
    try:
        raise ValueError("boom hunter2hunter2")
    except ValueError:
        log.exception("failed")
    text = (tmp_path / "vspd.log").read_text()
    assert "hunter2hunter2" not in text and "cVQpSLDc" not in text
    assert "password *** and key [private key]" in text and "boom ***" in text
    logs.setup("info", None)


def test_help_shows_choices_and_defaults():
    """`vspd --help` is a new operator's first page: the choices of each choice and the defaults."""
    text = " ".join(config.build_arg_parser().format_help().split())  # argparse wraps lines at the terminal width
    assert "--role {frontend,voter}" in text and "--network {mainnet,testnet,simnet}" in text
    assert "Which node this is (required)" in text
    assert "(put nginx in front) (default 127.0.0.1:8800)" in text
    assert "Home folder for data, logs and vspd.conf (default ~/.vspd)" in text
    assert "(default testnet)" in text and "(default 5.0)" in text


def test_connection_bounds_default_and_set(tmp_path, cert):
    cfg = config.load(base(tmp_path, cert))
    assert (cfg.headtimeout, cfg.bodytimeout, cfg.idletimeout, cfg.sendtimeout, cfg.maxclientconns) == (
        10.0, 30.0, 75.0, 60.0, 100)
    cfg = config.load(base(tmp_path, cert, "--headtimeout=2.5", "--maxclientconns=0"))
    assert cfg.headtimeout == 2.5 and cfg.maxclientconns == 0

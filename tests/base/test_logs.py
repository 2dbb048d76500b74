"""Masking secrets in the log (#14 item 5): whole values hidden, the rest of the line left readable."""

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_certs
from vspd.base import config
from vspd.base.config import ConfigError
from vspd.base.logs import ClientFaults, LogFile, RepeatLimit, SecretFilter
from vspd.base.tls import self_signed


@pytest.mark.parametrize("secrets,line,expected", [
    (["p"], "vspd version 1.3.0, home /tmp/pytest/x", "vspd version 1.3.0, home /tmp/pytest/x"),
    (["p"], "pubkey of p2p peers", "pubkey of p2p peers"),
    (["p"], "connecting as user:p@127.0.0.1, password p.", "connecting as user:***@127.0.0.1, password ***."),
    (["rpcPa55-xyz"], 'auth "rpcPa55-xyz", pass%3DrpcPa55-xyz2', 'auth "***", pass%3D***2'),  # long: anywhere
    (["-x-"], "a-x-b and -x-", "a***b and ***"),  # no word character at its edges: hidden wherever it is
    (["secret", "secretpass"], "secretpass, secret, secrets", "***, ***, secrets"),
    (["a.b"], "aXb a.b", "aXb ***"),  # a secret is text, not a pattern
])
def test_secrets_are_masked_as_whole_values_only(secrets, line, expected):
    assert SecretFilter(secrets).scrub(line) == expected


def test_short_secrets_are_refused_on_mainnet_and_named_elsewhere(tmp_path):
    cert = tmp_path / "rpc.cert"
    cert.write_bytes(self_signed("x", ["127.0.0.1"])[0])
    make_certs(tmp_path, "v1,v2,v3")
    args = [f"--homedir={tmp_path}", "--role=frontend", "--exccduser=u", "--exccdpass=p", f"--exccdcert={cert}",
            "--supportemail=a@b.c", "--adminpass=Sup3rSecretAdm1n", "--voters=a@h:1,b@h:2,c@h:3"]
    assert config.load(args + ["--network=simnet"]).short_secrets() == ["exccdpass"]
    with pytest.raises(ConfigError, match="option exccdpass: must be at least 8 characters on mainnet"):
        config.load(args + ["--network=mainnet"])
    with pytest.raises(ConfigError, match="option adminpass: must be at least 8 characters on mainnet"):
        config.load([a.replace("Sup3rSecretAdm1n", "short") for a in args] + ["--network=mainnet",
                                                                           "--exccdpass=longenough"])


def test_a_one_letter_password_does_not_garble_the_log(tmp_path):
    cert = tmp_path / "rpc.cert"
    cert.write_bytes(self_signed("x", ["127.0.0.1"])[0])
    make_certs(tmp_path, "v1")
    vspd = Path(sys.executable).parent / "vspd"
    r = subprocess.run([vspd, f"--homedir={tmp_path}", "--role=frontend", "--network=simnet", "--exccduser=u",
                        "--exccdpass=p", f"--exccdcert={cert}", "--supportemail=a@b.c", "--adminpass=Sup3rSecretAdm1n",
                        "--voters=v1@127.0.0.1:1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1  # no database: the start ends early, after its first log lines
    log = (tmp_path / "logs" / "simnet" / "vspd.log").read_text()
    assert "vspd version" in log and f"home {tmp_path}" in log and "***" not in log
    assert "option exccdpass: shorter than 8 characters, too short to be a secret" in log


def record(name: str, level: int, msg: str, *args, exc: BaseException | None = None) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, (type(exc), exc, None) if exc else None)


def test_a_line_repeated_fast_is_held_back_then_counted():
    now = [0.0]
    limit = RepeatLimit(burst=3, window=60, clock=lambda: now[0])
    lines = [record("web.api", logging.DEBUG, "%s from %s: %d", "/api/v3/payfee", f"10.0.0.{i}", 4) for i in range(50)]
    assert sum(limit.filter(r) for r in lines) == 3  # one message, whatever its arguments
    assert limit.filter(record("web.api", logging.DEBUG, "another message"))  # counted apart
    assert all(limit.filter(record("vspd.pipeline", logging.INFO, "pass %d", i)) for i in range(50))  # ours: all
    now[0] = 61.0
    later = record("web.api", logging.DEBUG, "%s from %s: %d", "/api/v3/payfee", "10.0.0.9", 4)
    assert limit.filter(later) and later.getMessage().endswith("(47 more like it held back)")
    assert sum(limit.filter(record("vspd.x", logging.ERROR, "boom")) for _ in range(20)) == 3  # errors too


def test_a_clients_fault_logged_by_aiohttp_is_one_debug_line():
    faults = ClientFaults()
    logging.getLogger("aiohttp.server").setLevel(logging.DEBUG)
    try:
        gone = record("aiohttp.server", logging.ERROR, "Error handling request from %s", "10.0.0.1",
                      exc=ConnectionResetError("Connection lost"))
        assert faults.filter(gone) and gone.levelno == logging.DEBUG and gone.exc_info is None
        assert gone.getMessage() == "Error handling request from 10.0.0.1: ConnectionResetError: Connection lost"
        ours = record("aiohttp.server", logging.ERROR, "Error handling request", exc=KeyError("x"))
        assert faults.filter(ours) and ours.levelno == logging.ERROR and ours.exc_info  # our fault stays an ERROR
        logging.getLogger("aiohttp.server").setLevel(logging.INFO)
        assert not faults.filter(record("aiohttp.server", logging.ERROR, "Error handling request",
                                        exc=ConnectionResetError()))  # below the level: not written at all
    finally:
        logging.getLogger("aiohttp.server").setLevel(logging.NOTSET)


class FillingStream:
    """A log file's stream on a disk that is full until `room` is set."""

    def __init__(self):
        self.room, self.text = False, ""

    def write(self, s: str) -> int:
        if not self.room:
            raise OSError(28, "No space left on device")
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass

    def tell(self) -> int:
        return len(self.text)

    def seek(self, *args) -> int:
        return len(self.text)

    def close(self) -> None:
        pass


def test_a_full_disk_drops_log_lines_quietly_and_counts_them(tmp_path, capsys):
    handler = LogFile(tmp_path / "vspd.log", maxBytes=1 << 20, backupCount=2)
    stream = handler.stream = FillingStream()
    log = logging.getLogger("test.fulldisk")
    log.addHandler(handler)
    log.propagate = False
    try:
        for i in range(500):
            log.warning("pass %d failed", i)  # must not raise, nor print a traceback per line
        err = capsys.readouterr().err
        assert err.count("cannot write the log file") == 1 and "Traceback" not in err, err
        stream.room = True
        log.warning("back")
        assert stream.text.splitlines()[0].endswith("500 log lines lost: the log file could not be written")
        assert stream.text.splitlines()[1].endswith("back")
        assert handler.dropped == 0 and capsys.readouterr().err == ""
    finally:
        log.removeHandler(handler)
        handler.stream = None
        handler.close()

"""vspadmin commands of the guide that other tests do not already run."""

import sqlite3

from conftest import MAINNET_XPUB, SIMNET_XPUB
from procs import vspadmin



def test_createdatabase_and_retirexpub(tmp_path):
    r = vspadmin(tmp_path, "createdatabase", MAINNET_XPUB)
    assert r.returncode == 2 and "is for mainnet, not simnet" in r.stderr
    assert not (tmp_path / "data" / "simnet" / "vspd.db").exists()
    assert vspadmin(tmp_path, "createdatabase", SIMNET_XPUB).returncode == 0
    r = vspadmin(tmp_path, "createdatabase", SIMNET_XPUB)
    assert r.returncode == 2 and "already exists" in r.stderr
    r = vspadmin(tmp_path, "retirexpub", SIMNET_XPUB)
    assert r.returncode == 2 and "already been used" in r.stderr
    r = vspadmin(tmp_path, "retirexpub", "not-an-xpub")
    assert r.returncode == 2 and "invalid fee xpub" in r.stderr


def test_a_new_mainnet_vsp_starts_in_test_mode(tmp_path):
    """Closed until the operator reopens it: the EXCC listing rule made the default."""
    def settings(network):
        con = sqlite3.connect(tmp_path / "data" / network / "vspd.db")
        try:
            return dict(con.execute("SELECT name, value FROM vsp_settings")), con.execute(
                "SELECT who, action, detail FROM admin_log").fetchall()
        finally:
            con.close()
    r = vspadmin(tmp_path, "createdatabase", MAINNET_XPUB, network="mainnet")
    assert r.returncode == 0 and "starts closed (test mode)" in r.stdout
    values, log = settings("mainnet")
    assert values["vspclosed"] == "true" and "tested" in values["vspclosedmsg"]
    assert log == [("vspadmin", "close", "test mode of a new mainnet VSP")]
    r = vspadmin(tmp_path, "createdatabase", SIMNET_XPUB)
    assert r.returncode == 0 and "test mode" not in r.stdout
    assert settings("simnet") == ({}, [])


def test_writeconfig_and_gencerts_refuse_bad_input(tmp_path):
    assert vspadmin(tmp_path, "writeconfig", "--role=voter").returncode == 0
    r = vspadmin(tmp_path, "writeconfig")
    assert r.returncode == 2 and "not overwriting" in r.stderr
    r = vspadmin(tmp_path, "gencerts", "--voters=Bad_Name")
    assert r.returncode == 2 and "DNS label" in r.stderr and not (tmp_path / "certs").exists()
    r = vspadmin(tmp_path, "gencerts", "--voters=a,a")
    assert r.returncode == 2 and "distinct" in r.stderr
    r = vspadmin(tmp_path, "gencerts", "--voters=a", "--host=b=1.2.3.4")
    assert r.returncode == 2 and "NAME=HOST" in r.stderr
    assert vspadmin(tmp_path, "gencerts", "--voters=a,b").returncode == 0
    r = vspadmin(tmp_path, "gencerts", "--voters=a,b,c")
    assert r.returncode == 0 and "voter c" in r.stdout and "voter a" not in r.stdout


def test_first_contact_no_command_prints_usage_and_preflight_names_what_is_missing(tmp_path):
    r = vspadmin(tmp_path, network=None)
    assert r.returncode == 2 and r.stderr.startswith("usage: vspadmin"), r.stderr
    assert all(c in r.stderr for c in ("preflight", "createdatabase", "restore", "writeconfig")), r.stderr
    missing = tmp_path / "no-such-home"
    r = vspadmin(missing, "preflight", network=None)
    assert r.returncode == 2 and r.stderr.strip() == f"vspadmin: --homedir: folder {missing} does not exist"
    r = vspadmin(tmp_path, "preflight", network=None)  # a folder, but nothing configured in it
    assert r.returncode == 2 and f"{tmp_path / 'vspd.conf'} does not exist" in r.stderr, r.stderr
    assert "exccduser" not in r.stderr and not missing.exists()

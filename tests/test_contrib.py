"""The deployment files pass their checkers, and the examples match what the code writes."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from vspd.admin import config_text
from vspd.replication import Replica, litestream_config

ROOT = Path(__file__).resolve().parents[1]
CONTRIB = ROOT / "contrib"


@pytest.mark.skipif(not shutil.which("systemd-analyze") and not os.environ.get("CI"),
                    reason="systemd-analyze not available (.ci/run installs it)")
def test_systemd_units_verify(tmp_path):
    # The units name the install paths of a real host; point them at binaries that exist here.
    here = {"/opt/vspd/.venv/bin/vspd": str(Path(sys.executable).parent / "vspd"),
            "/usr/local/bin/exccd": "/bin/true", "/usr/local/bin/exccwallet": "/bin/true"}
    units = []
    for unit in sorted((CONTRIB / "systemd").glob("*.service")):
        text = unit.read_text()
        for k, v in here.items():
            text = text.replace(k, v)
        (tmp_path / unit.name).write_text(text)
        units.append(str(tmp_path / unit.name))
        for option in ("NoNewPrivileges=true", "ProtectSystem=strict", "PrivateTmp=true", "Restart=on-failure"):
            assert option in text, (unit.name, option)
        assert "User=" in text and "User=root" not in text
    r = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.mark.skipif(not os.path.exists(NGINX) and not os.environ.get("CI"),
                    reason="nginx not installed (.ci/run installs it)")
def test_nginx_site_passes_nginx_t(tmp_path):
    tls = tmp_path / "tls"
    tls.mkdir()
    from vspd.tlsutil import self_signed
    cert, key = self_signed("vsp.example.org", ["vsp.example.org"])
    (tls / "c.crt").write_bytes(cert)
    (tls / "k.key").write_bytes(key)
    site = (CONTRIB / "nginx" / "vspd.conf").read_text()
    assert "client_max_body_size 1m;" in site and "proxy_set_header X-Forwarded-For $remote_addr;" in site
    site = site.replace("/etc/nginx/tls/vsp.example.org.crt", str(tls / "c.crt"))
    site = site.replace("/etc/nginx/tls/vsp.example.org.key", str(tls / "k.key"))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
                                         f"events {{}}\nhttp {{\n access_log off;\n include {tmp_path}/site.conf;\n}}\n")
    r = subprocess.run([NGINX, "-t", "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr


@pytest.mark.parametrize("role", ["frontend", "voter"])
def test_example_configs_are_what_writeconfig_writes(role):
    assert (CONTRIB / "examples" / f"vspd-{role}.conf").read_text() == config_text(role)


def test_litestream_examples_are_what_vspd_writes():
    db = "/var/lib/vspd/data/mainnet/vspd.db"
    sftp = litestream_config(db, Replica.parse("sftp://vspdbackup@backup.example.org:22/srv/vspd/mainnet"), 1.0,
                             "127.0.0.1:9099", "/var/lib/vspd/.ssh/id_ed25519",
                             "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleHostKeyExampleHostKeyExampleKey")
    s3 = litestream_config(db, Replica.parse("s3://example-vspd-backups/mainnet"), 1.0, "127.0.0.1:9099")
    assert (CONTRIB / "litestream" / "sftp.yml").read_text().endswith(sftp)
    assert (CONTRIB / "litestream" / "s3.yml").read_text().endswith(s3)


def test_release_install_carries_every_file(tmp_path):
    """The guide installs with a plain `pip install /path/to/vspd`, not an editable one: the
    wheel must carry every module, SQL migration, proto, template and static file, and both commands."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", "test-output", "tests", "contrib"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {p.relative_to(src).as_posix() for pkg in ("vspd", "web", "rpcclient", "schema")
              for p in (src / pkg).rglob("*") if p.is_file()}
    assert len(wanted) > 60 and not wanted - names, sorted(wanted - names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "vspd = vspd.main:main" in text and "vspadmin = vspd.admin:main" in text

"""The deployment files pass their checkers, and the examples match what the code writes."""

import asyncio
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import aiohttp
import pytest

from procs import free_port
from vspd.admin.vspadmin import config_text
from vspd.frontend.replication import Replica, litestream_config
from vspd.base.tls import self_signed

ROOT = Path(__file__).resolve().parents[2]
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
        execstart = next(line for line in text.splitlines() if line.startswith("ExecStart="))
        assert not re.search(r"pass|secret", execstart, re.I), f"{unit.name}: a secret on the command line"
    r = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    # systemd's own exposure score, 0 (locked down) to 10: each unit at "OK" (2.0) or better.
    for unit in units:
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=20", "--no-pager", unit],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


NEEDS_NGINX = pytest.mark.skipif(not os.path.exists(NGINX) and not os.environ.get("CI"),
                                 reason="nginx not installed (.ci/run installs it)")


def nginx_conf(tmp_path: Path, edits: dict[str, str] | None = None) -> Path:
    """contrib's site with a self-signed certificate (and `edits`), in a main config of its own."""
    tls = tmp_path / "tls"
    tls.mkdir()
    cert, key = self_signed("vsp.example.org", ["vsp.example.org"])
    (tls / "c.crt").write_bytes(cert)
    (tls / "k.key").write_bytes(key)
    site = (CONTRIB / "nginx" / "vspd.conf").read_text()
    edits = {"/etc/nginx/tls/vsp.example.org.crt": str(tls / "c.crt"),
             "/etc/nginx/tls/vsp.example.org.key": str(tls / "k.key"), **(edits or {})}
    for old, new in edits.items():
        assert old in site, f"contrib/nginx/vspd.conf no longer has {old!r}"
        site = site.replace(old, new)
    (tmp_path / "site.conf").write_text(site)
    temp = " ".join(f"{kind}_temp_path {tmp_path}/{kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                       "uwsgi", "scgi"))
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nworker_processes 1;\n"
                    f"events {{}}\nhttp {{\n access_log off;\n {temp}\n include {tmp_path}/site.conf;\n}}\n")
    return conf


@NEEDS_NGINX
def test_nginx_site_passes_nginx_t(tmp_path):
    site = (CONTRIB / "nginx" / "vspd.conf").read_text()
    assert "client_max_body_size 1m;" in site and "proxy_set_header X-Forwarded-For $remote_addr;" in site
    r = subprocess.run([NGINX, "-t", "-c", str(nginx_conf(tmp_path))], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr


@NEEDS_NGINX
async def test_nginx_site_in_front_of_vspd(tmp_path, vsp, caplog):
    """The real nginx with contrib's site before a frontend: clients on 127.0.0.2 are the outside world,
    127.0.0.1 is the monitor of the site's geo block."""
    https, http_port = free_port(), free_port()
    vsp_port = vsp.url.rsplit(":", 1)[1]
    conf = nginx_conf(tmp_path, {
        "    listen 80;\n": f"    listen 127.0.0.1:{http_port};\n", "    listen [::]:80;\n": "",
        "    listen 443 ssl http2;\n": f"    listen 127.0.0.1:{https} ssl http2;\n",
        "    listen [::]:443 ssl http2;\n": "", "127.0.0.1:8800": f"127.0.0.1:{vsp_port}"})
    vsp.ctx.trusted_proxies = frozenset({"127.0.0.1"})  # vspd's default, which the site is written for
    vsp.ctx.adminpass = "the right one"
    nginx = subprocess.Popen([NGINX, "-c", str(conf), "-g", "daemon off;"], stderr=subprocess.PIPE)
    base = f"https://127.0.0.1:{https}"

    def client(addr: str) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(addr, 0), ssl=False))
    try:
        async with client("127.0.0.2") as outside, client("127.0.0.1") as monitor:
            for _ in range(100):  # nginx up: at most 10 s
                try:
                    async with outside.get(base + "/") as r:
                        break
                except aiohttp.ClientConnectionError:
                    assert nginx.poll() is None, nginx.stderr.read().decode()
                    await asyncio.sleep(0.1)
            async with outside.get(base + "/") as r:
                assert r.status == 200 and "max-age" in r.headers["Strict-Transport-Security"]
                assert r.headers["X-Content-Type-Options"] == "nosniff"
            async with outside.get(base + "/public/style.css") as r:  # cached, and still with the security headers
                assert r.status == 200 and "max-age=3600" in r.headers["Cache-Control"]
                assert "Strict-Transport-Security" in r.headers and "X-Content-Type-Options" in r.headers
            for path in ("/status", "/metrics"):
                async with outside.get(base + path) as r:
                    assert r.status == 403, path
                async with monitor.get(base + path) as r:
                    assert r.status in (200, 503) and r.headers.get("Content-Length") != "0", path
            async with outside.post(base + "/api/v3/feeaddress", data=b"x" * (2 << 20)) as r:
                assert r.status == 413
            # vspd sees the client's address, never one the client made up
            async with outside.post(base + "/admin", data={"password": "a guess"},
                                    headers={"X-Forwarded-For": "203.0.113.66"}) as r:
                assert r.status == 401
            async with outside.get(f"http://127.0.0.1:{http_port}/api/v3/vspinfo", allow_redirects=False) as r:
                assert r.status == 301 and r.headers["Location"].startswith("https://")
    finally:
        nginx.terminate()
        nginx.wait(10)
    logins = [rec.getMessage() for rec in caplog.records if "failed admin login" in rec.getMessage()]
    assert logins == ["failed admin login from 127.0.0.2"], logins


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
    assert "vspd = vspd.main:main" in text and "vspadmin = vspd.admin.vspadmin:main" in text
    assert "vspd-simnet = vspd.simnet.main:main" in text


PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


@pytest.mark.skipif(not os.path.exists(PROMTOOL) and not os.environ.get("CI"),
                    reason="promtool not installed (.ci/run installs Debian's prometheus)")
async def test_prometheus_alerts_are_valid_tested_and_use_real_metrics(vsp):
    prom = CONTRIB / "prometheus"
    r = subprocess.run([PROMTOOL, "check", "config", str(prom / "prometheus.yml")], capture_output=True, text=True)
    assert r.returncode == 0 and "1 rule files found" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([PROMTOOL, "test", "rules", str(prom / "vspd-alerts.test.yml")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # Every vspd_ series an alert reads is one the frontend's /metrics really exposes.
    async with vsp.client.http.get(vsp.url + "/metrics") as resp:
        exposed = set(re.findall(r"^# TYPE (\w+) ", await resp.text(), re.M))
    used = set(re.findall(r"\bvspd_\w+", "\n".join(re.findall(r"expr: (.+)", (prom / "vspd-alerts.yml").read_text()))))
    assert len(used) >= 6 and not used - exposed, sorted(used - exposed)

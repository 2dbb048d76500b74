#!/usr/bin/env python3
"""Our frontend and the reference Go vspd side by side, on one real simnet exccd.

Starts a real exccd 2.7.6 on simnet, our frontend (`vspd --role=frontend`,
with N tickets in its database) and the reference Go vspd (EXCCoin/vspd)
with the same fee xpub, both as a new operator would run them (one
unreachable voting wallet each, log level info), then drives every path
with wrk (one thread), interleaving the two (A/B, then B/A, ...), and
prints one table: requests/s and p99 of each with their ranges, and the
ratio; then memory and start-up time. Prints figures; asserts nothing
about speed.

    python contrib/bench/side_by_side.py [--short] [--rounds N] [--seconds S] [--tickets N]
                                         [--only ours|go] [--ours-venv DIR] [--before DIR]

The peers come from vspd.simnet: the pinned exccd and Go vspd are found
(EXCCD_BIN, VSPD_GO_BIN, PATH, ~/.cache/vspd/peers) or built there from the
module mirror, and the Go vspd's templates from its module source. Skipped
with a message when they cannot be had. --ours-venv runs another
installation of this project; --before interleaves one more (e.g. main's
venv, for a before/after).
"""

import argparse
import asyncio
import base64
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "contrib" / "bench"), str(ROOT / "tests" / "helpers"), str(ROOT / "tests"),
                 str(ROOT)]

import wrk  # noqa: E402
from chainbuilders import Key  # noqa: E402
from conftest import SIMNET_XPUB  # noqa: E402
from pipeline_bench import fill  # noqa: E402
from vspd.chain.params import SIMNET  # noqa: E402
from vspd.simnet import peers  # noqa: E402
from vspd.simnet.children import ChildError  # noqa: E402
from vspd.simnet.nodes import ExccdNode, free_port  # noqa: E402

BLOCKS = 16  # a chain with some height; mining stops at 126 without tickets anyway
UNKNOWN_TICKET = "ab" * 32


@dataclass(frozen=True)
class BenchPath:
    label: str
    path: str
    connections: int
    body: bytes | None = None


PATHS = (
    BenchPath("GET /api/v3/vspinfo", "/api/v3/vspinfo", 16),
    BenchPath("GET /api/v3/vspinfo", "/api/v3/vspinfo", 64),
    BenchPath("GET / (home page)", "/", 16),
    BenchPath("POST /api/v3/ticketstatus, unknown", "/api/v3/ticketstatus", 16,
              b'{"tickethash":"' + UNKNOWN_TICKET.encode() + b'"}'),
)


@dataclass
class Target:
    name: str
    port: int
    args: list
    cwd: Path
    log: Path
    proc: subprocess.Popen | None = None
    start_s: float = 0.0
    rss_start_kb: int = 0
    rss_end_kb: int = 0
    results: dict = field(default_factory=dict)  # BenchPath -> [WrkResult]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        """Spawn, then poll vspinfo until it answers 200: that time is the start-up time."""
        t0 = time.perf_counter()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT)
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/api/v3/vspinfo", timeout=1) as r:
                    if r.status == 200:
                        self.start_s = time.perf_counter() - t0
                        self.rss_start_kb = rss_kb(self.proc.pid)
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.005)
        raise SystemExit(f"{self.name} did not answer within {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children_rss_kb(pid: int) -> int:
    total = 0
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        total += rss_kb(int(child))
    return total


def probe(target: Target, p: BenchPath) -> str:
    """One request, to show what each side answers on this path."""
    req = urllib.request.Request(target.url + p.path, data=p.body, method="POST" if p.body else "GET")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    return f"{status} {body[:60].decode('utf-8', 'replace')!r}"


def ours(name: str, venv: Path, home: Path, exccd: ExccdNode, tickets: int) -> Target:
    vspadmin, vspd = venv / "bin" / "vspadmin", venv / "bin" / "vspd"
    for args in (["createdatabase", SIMNET_XPUB], ["gencerts", "--voters=v1"]):
        r = subprocess.run([vspadmin, f"--homedir={home}", "--network=simnet", *args], capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit(f"vspadmin {args[0]} failed: {r.stdout}{r.stderr}")
    if tickets:
        fill(home / "data" / "simnet" / "vspd.db", tickets, BLOCKS)
    port = free_port()
    return Target(name, port, [
        vspd, "--role=frontend", f"--homedir={home}", "--network=simnet", f"--exccdhost={exccd.rpc_address}",
        f"--exccduser={exccd.user}", f"--exccdpass={exccd.password}", f"--exccdcert={exccd.cert_path}",
        f"--listen=127.0.0.1:{port}", "--supportemail=ops@example.org", "--adminpass=bench-admin",
        f"--voters=v1@127.0.0.1:{free_port()}", "--loglevel=info"], home, home / "vspd.out")


def go(binary: Path, src: Path, home: Path, exccd: ExccdNode) -> Target:
    workdir = home / "work"
    for part in ("templates", "public"):  # Go vspd reads webapi/templates relative to its working folder
        shutil.copytree(src / "webapi" / part, workdir / "webapi" / part)
    (home / "vspd.conf").write_text("[Application Options]\n")
    port = free_port()
    args = [binary, f"--homedir={home}", f"--configfile={home / 'vspd.conf'}", "--network=simnet",
            f"--exccdhost={exccd.rpc_address}", f"--exccduser={exccd.user}", f"--exccdpass={exccd.password}",
            f"--exccdcert={exccd.cert_path}", f"--wallethost=127.0.0.1:{free_port()}",
            "--walletuser=bench", "--walletpass=bench", f"--walletcert={exccd.cert_path}",
            "--supportemail=ops@example.org", "--adminpass=bench-admin", f"--listen=127.0.0.1:{port}",
            "--loglevel=info"]
    r = subprocess.run(args + [f"--feexpub={SIMNET_XPUB}"], cwd=workdir, capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        raise SystemExit(f"Go vspd --feexpub failed: {r.stdout}{r.stderr}")
    return Target("go", port, args, workdir, home / "vspd.out")


def measure(targets: list[Target], rounds: int, seconds: float, scripts: dict,
            paths: tuple[BenchPath, ...] = PATHS) -> None:
    for p in paths:
        for t in targets:  # warm-up, not counted
            wrk.run(t.url + p.path, p.connections, 1, scripts.get(p))
    for r in range(rounds):
        for p in paths:
            for t in targets if r % 2 == 0 else targets[::-1]:
                res = wrk.run(t.url + p.path, p.connections, seconds, scripts.get(p))
                t.results.setdefault(p, []).append(res)
                print(f"  round {r + 1} {t.name:6s} {p.label:36s} c{p.connections:<3d} {res.rps:9.0f} req/s  "
                      f"p99 {res.p99_ms:7.2f} ms  non-2xx {res.non2xx}  socket errors {res.socket_errors}", flush=True)


def span(values: list[float], fmt: str) -> str:
    return (fmt.format(statistics.median(values)) + " (" + fmt.format(min(values)) + "–"
            + fmt.format(max(values)) + ")")


def table(targets: list[Target], paths: tuple[BenchPath, ...] = PATHS, processes: bool = True) -> None:
    """One row per path: each target's req/s and p99 (median of the rounds, and their range), and the ratios;
    then, of the `processes` this benchmark started, memory and start-up time."""
    by = {t.name: t for t in targets}
    ratios = [(a, b) for a, b in (("ours", "go"), ("ours", "before")) if a in by and b in by]
    head = f"| {'path':36s} | conns |" + "".join(f" {t.name + ' req/s (range)':26s} | {t.name + ' p99 ms':22s} |"
                                                  for t in targets)
    head += "".join(f" {a} ÷ {b} (range) |" for a, b in ratios)
    print()
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|")
    for p in paths:
        row = f"| {p.label:36s} | {p.connections:5d} |"
        for t in targets:
            rs = t.results[p]
            row += f" {span([x.rps for x in rs], '{:.0f}'):26s} | {span([x.p99_ms for x in rs], '{:.2f}'):22s} |"
        for a, b in ratios:
            ra, rb = by[a].results[p], by[b].results[p]
            each = [x.rps / y.rps for x, y in zip(ra, rb)]
            median = statistics.median(x.rps for x in ra) / statistics.median(x.rps for x in rb)
            cell = f"{median:.2f}× ({min(each):.2f}–{max(each):.2f})"
            row += f" {cell:{len(f'{a} ÷ {b} (range)')}s} |"
        print(row)
    print()
    for t in targets if processes else ():
        extra = ""
        if t.name != "go":
            extra = f" (+ litestream child {children_rss_kb(t.proc.pid) / 1024:.0f} MB)"
        print(f"{t.name:6s}: start to first vspinfo {t.start_s:.2f} s; RSS after start {t.rss_start_kb / 1024:.0f} MB, "
              f"after the load {t.rss_end_kb / 1024:.0f} MB{extra}")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", action="store_true", help="a quick run for CI")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--tickets", type=int, default=100_000, help="tickets in our database")
    ap.add_argument("--only", choices=("ours", "go"))
    ap.add_argument("--ours-venv", type=Path, default=Path(sys.executable).parent.parent)
    ap.add_argument("--before", type=Path, metavar="VENV", help="another installation to interleave, as 'before'")
    args = ap.parse_args()
    if args.rounds < 1 or not 1 <= args.seconds <= 600:
        ap.error("--rounds must be at least 1 and --seconds from 1 to 600")
    if args.tickets < 0:
        ap.error("--tickets must not be negative")
    rounds, seconds = (2, 3.0) if args.short else (args.rounds, args.seconds)
    tickets = args.tickets
    try:
        exccd_bin = peers.find(peers.EXCCD)
        go_bin = go_src = None
        if args.only != "ours":
            go_bin, go_src = peers.find(peers.VSPD_GO), peers.module_source(peers.VSPD_GO)
    except peers.PeerError as e:
        print(f"side_by_side: skipped: {e}")
        return
    root = Path(tempfile.mkdtemp(prefix="vspd-sidebyside-"))
    exccd = ExccdNode("exccd", exccd_bin, root / "exccd", root / "logs", miningaddr=str(Key(SIMNET).address))
    targets: list[Target] = []
    try:
        try:
            await exccd.start()
        except ChildError as e:
            raise SystemExit(f"side_by_side: exccd did not start: {e}") from None
        await exccd.rpc.call("generate", BLOCKS, timeout=120)
        if args.only != "go":
            targets.append(ours("ours", args.ours_venv, root / "ours", exccd, tickets))
        if args.before is not None:
            targets.append(ours("before", args.before, root / "before", exccd, tickets))
        if args.only != "ours":
            targets.append(go(go_bin, go_src, root / "go", exccd))
        for t in targets:
            t.start()
        scripts = {p: wrk.post_script(root / f"post{i}.lua", p.body, {
            "Content-Type": "application/json",
            "VSP-Client-Signature": base64.b64encode(b"\x1f" + bytes(64)).decode()})
            for i, p in enumerate(PATHS) if p.body is not None}
        print(f"side_by_side: real exccd simnet at height {BLOCKS}; our database holds {tickets} tickets; "
              f"wrk -t1, {rounds} rounds of {seconds:g} s, interleaved; load average "
              f"{os.getloadavg()[0]:.2f} at start")
        for p in PATHS:
            print(f"  {p.label:36s} " + "; ".join(f"{t.name}: {probe(t, p)}" for t in targets))
        measure(targets, rounds, seconds, scripts)
        for t in targets:
            t.rss_end_kb = rss_kb(t.proc.pid)
        table(targets)
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
    finally:
        for t in targets:
            t.stop()
        await exccd.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())

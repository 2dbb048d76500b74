"""Running wrk (the HTTP load generator) and reading its figures.

Kept apart from the benchmarks so each of them reads as a list of paths
and targets, not as text parsing.
"""

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


class WrkError(Exception):
    """wrk is missing, failed, or printed something this parser does not know."""


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    socket_errors: int


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise WrkError(f"cannot read the latency {text!r}")
    return float(m[1]) * _UNITS[m[2]]


def parse(out: str) -> WrkResult:
    """The figures of `wrk --latency` output."""
    try:
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
        p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1])
        p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1])
        requests = int(re.search(r"(\d+) requests in", out)[1])
    except TypeError:
        raise WrkError(f"unexpected wrk output:\n{out}") from None
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(rps, p50, p99, requests, int(non2xx[1]) if non2xx else 0,
                     sum(map(int, errors.groups())) if errors else 0)


def post_script(path: Path, body: bytes, headers: dict[str, str]) -> Path:
    """A wrk Lua script that POSTs `body` with `headers` on every request."""
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body)}"]
    lines += [f"wrk.headers[{_lua_string(k.encode())}] = {_lua_string(v.encode())}" for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _lua_string(data: bytes) -> str:
    # three digits always: a shorter escape would take the digits after it ("\\347" is not '"' then "7")
    return '"' + "".join(f"\\{b:03d}" if not 32 <= b < 127 or b in b'"\\' else chr(b) for b in data) + '"'


def run(url: str, connections: int, seconds: float, script: Path | None = None, threads: int = 1,
        timeout_s: int = 2) -> WrkResult:
    """One wrk run, bounded in time: `seconds` of load plus a margin to start and stop."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkError("wrk is not installed (Debian: apt-get install wrk)")
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
           f"--timeout={timeout_s}s"]
    if script is not None:
        cmd += ["-s", str(script)]
    try:
        p = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        raise WrkError(f"wrk on {url} did not finish") from None
    if p.returncode != 0:
        raise WrkError(f"wrk on {url} failed: {p.stderr.strip() or p.stdout.strip()}")
    return parse(p.stdout)

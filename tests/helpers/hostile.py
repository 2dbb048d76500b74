"""Hostile clients on raw sockets to 127.0.0.1, for tests/web/http/test_hostile_clients.py and
contrib/bench/hostile_bench.py.

The amplifier runs in its own process (`python tests/helpers/hostile.py amplify ...`)
so that the client measuring the frontend is not slowed by it.
"""

import json
import os
import select
import socket
import statistics
import sys
import time

FIELDS_AT_CAP = 128  # header fields, Host included: the most aiohttp takes
ISSUE_FIELDS = 1401  # #22's probe: 1,399 empty fields besides Host and Content-Length, 8,188 bytes
BODY = 16384  # the lane's largest body


def head(fields: int = FIELDS_AT_CAP, size: int = 8100, length: int = BODY,
         path: bytes = b"/api/v3/feeaddress") -> bytes:
    """A POST head of `fields` header fields (Host and Content-Length among them) padded to about `size` bytes."""
    lines = [b"POST %s HTTP/1.1" % path, b"Host: 127.0.0.1", b"Content-Length: %d" % length]
    extra = fields - 2
    if extra > FIELDS_AT_CAP:  # the issue's head: 1,399 empty fields of distinct short names, 8 KB
        lines += [b"%s:" % _short_name(i) for i in range(extra)]
    elif extra > 0:
        base = sum(len(x) + 2 for x in lines) + 2 + extra * 9
        pad = max(0, (size - base) // extra)
        lines += [b"X-F%03d: %s" % (i, b"a" * pad) for i in range(extra)]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _short_name(i: int) -> bytes:
    """A distinct field name of 2-3 characters that is no real header's (it starts with a digit or a symbol)."""
    first, rest = b"0123456789!#$%&'*+-.^_`|~", b"0123456789abcdefghijklmnopqrstuvwxyz"
    if i < len(first) * len(rest):
        return bytes([first[i // len(rest)], rest[i % len(rest)]])
    i -= len(first) * len(rest)
    return bytes([first[i // len(rest) ** 2], rest[i // len(rest) % len(rest)], rest[i % len(rest)]])


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def amplify(port: int, conns: int, seconds: float, fields: int = FIELDS_AT_CAP, size: int = 8100,
            pace: float = 0.0, max_segments: int = 10_000_000) -> int:
    """`conns` connections each send a large head, then its body one byte per send; the segments sent.

    A body done, its connection sends the next request. Answers are read and dropped.
    """
    first = head(fields, size)
    socks = [connect(port) for _ in range(conns)]
    left = {s: BODY for s in socks}
    for s in socks:
        s.sendall(first)
    sent, end = 0, time.monotonic() + seconds
    while time.monotonic() < end and sent < max_segments:
        for i, s in enumerate(socks):
            try:
                if left[s] == 0:
                    s.sendall(first)
                    left[s] = BODY
                s.send(b"{")
                left[s] -= 1
                sent += 1
            except OSError:  # refused and closed (a head aiohttp would not take): again, on a new connection
                s.close()
                del left[s]
                s = socks[i] = connect(port)
                s.sendall(first)
                left[s] = BODY
        readable, _, _ = select.select(socks, [], [], 0)
        for s in readable:
            try:
                s.recv(65536)
            except OSError:
                pass
        if pace:
            time.sleep(pace)
    for s in socks:
        s.close()
    return sent


VSPINFO = b"GET /api/v3/vspinfo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def read_answer(s: socket.socket) -> tuple[bytes, bytes]:
    """One answer's head and body (Content-Length framed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    h, _, body = data.partition(b"\r\n\r\n")
    length = int(h.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        body += chunk
    return h, body


def probe(port: int, seconds: float, pause: float = 0.01) -> list[float]:
    """Another client's vspinfo, asked on one keep-alive connection for `seconds`: each answer's time."""
    times = []
    s = connect(port)
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            s.sendall(VSPINFO)
            h, _ = read_answer(s)
            times.append(time.perf_counter() - t0)
            assert h.startswith(b"HTTP/1.1 200 "), h
            time.sleep(pause)
    finally:
        s.close()
    return times


def closed_after(s: socket.socket, t0: float, limit: float) -> float | None:
    """Seconds from t0 until the server ended the connection (reading and dropping what it sent), or None."""
    s.settimeout(0.1)
    while time.monotonic() - t0 < limit:
        try:
            if s.recv(1 << 20) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except ConnectionError:
            return time.monotonic() - t0
    return None


def summary(times: list[float]) -> dict:
    return {"n": len(times), "median_ms": statistics.median(times) * 1000, "max_ms": max(times) * 1000}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    os.nice(19)  # an attacker has a machine of its own: here it must not take the frontend's share of the cores
    cmd, args = sys.argv[1], [float(a) for a in sys.argv[2:]]
    if cmd == "amplify":
        port, conns, seconds, fields, size, pace, most = args
        print(json.dumps({"segments": amplify(int(port), int(conns), seconds, int(fields), int(size), pace,
                                              int(most))}))

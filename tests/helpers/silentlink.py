"""A TCP proxy on 127.0.0.1 that can fall silent: a network partition without a reset.

    link = SilentLink(server_port); await link.start()   # clients connect to link.port
    link.silence()   # no byte moves either way, nothing is read; every socket stays open (ESTABLISHED)
    link.heal()      # bytes move again on the same connections (held bytes arrive late, like retransmissions)
    link.heal(resume_old=False)  # only connections made from now on move: the old ones stay silent for good
                                 # (a NAT or firewall that forgot them)
    link.half_open() # connections already through keep flowing; new ones are accepted and never forwarded
    await link.stop()

Nothing is ever closed or reset while the link is silent, so neither side's kernel reports an error: only the
peers' own timers (keepalives, pings, deadlines) can notice. Sockets are read only while their connection flows,
so a silent peer's kernel buffers fill and the sender's window closes as over a real partition (at most one read
of READ_BYTES already under way is held back and delivered on healing, like a packet in flight).
A connection accepted while the link is silent is held (no upstream connection yet) and goes through when the
link heals, like a SYN retransmitted across a partition; one accepted while half-open never does.
"""

import asyncio
import socket
import struct

READ_BYTES = 65536
_TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
               7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}


def tcp_state(sock: socket.socket) -> str:
    """The kernel's TCP state of a socket (Linux TCP_INFO), e.g. ESTABLISHED, or CLOSE_WAIT once the peer closed."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    except OSError:
        return "CLOSED"
    return _TCP_STATES.get(struct.unpack("B", info[:1])[0], "?")


class _Conn:
    def __init__(self, client: socket.socket, gate: asyncio.Event):
        self.client = client
        self.upstream: socket.socket | None = None
        self.gate = gate  # set while this connection's bytes may move
        self.tasks: list[asyncio.Task] = []
        self.never = False  # accepted while half-open: never forwarded

    def states(self) -> tuple[str, str]:
        """(our client-facing socket's TCP state, our server-facing one's): CLOSE_WAIT means that peer closed."""
        return tcp_state(self.client), tcp_state(self.upstream) if self.upstream is not None else "NONE"


class SilentLink:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = 0
        self.conns: list[_Conn] = []
        self._gate = asyncio.Event()  # the gate of connections accepted in the current period
        self._gate.set()
        self._half_open = False
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task | None = None

    async def start(self) -> int:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._accepting = asyncio.create_task(self._accept(), name="silentlink-accept")
        return self.port

    async def stop(self) -> None:
        tasks = [self._accepting] if self._accepting else []
        for c in self.conns:
            tasks += c.tasks
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in self.conns:
            for s in (c.client, c.upstream):
                if s is not None:
                    s.close()
        if self._listener is not None:
            self._listener.close()

    # -- what a test tells the link ----
    def silence(self) -> None:
        """Stop every byte both ways on every connection, and hold new ones; close nothing."""
        for c in self.conns:
            c.gate.clear()
        self._gate = asyncio.Event()  # held until heal()

    def heal(self, resume_old: bool = True) -> None:
        """Let bytes move again: on the old connections too, or (resume_old=False) only on new ones."""
        self._half_open = False
        held = self._gate
        for c in self.conns:
            if c.never:
                continue
            if resume_old or c.gate is held:  # those accepted while silent go through either way
                c.gate.set()
        held.set()
        self._gate = asyncio.Event()
        self._gate.set()

    def half_open(self) -> None:
        """New connections are accepted by our kernel and then never forwarded (a connect that half-succeeds)."""
        self._half_open = True

    @property
    def live(self) -> list[_Conn]:
        """The connections whose bytes may move now."""
        return [c for c in self.conns if c.gate.is_set()]

    # -- the proxy ----
    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            client, _ = await loop.sock_accept(self._listener)
            client.setblocking(False)
            conn = _Conn(client, asyncio.Event() if self._half_open else self._gate)
            conn.never = self._half_open
            self.conns.append(conn)
            conn.tasks.append(asyncio.create_task(self._serve(conn), name="silentlink-conn"))

    async def _serve(self, conn: _Conn) -> None:
        loop = asyncio.get_running_loop()
        await conn.gate.wait()
        up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        up.setblocking(False)
        try:
            await loop.sock_connect(up, self.target)
        except OSError:
            up.close()
            conn.client.close()
            return
        conn.upstream = up
        await asyncio.gather(self._pump(conn, conn.client, up), self._pump(conn, up, conn.client))

    async def _pump(self, conn: _Conn, src: socket.socket, dst: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                await conn.gate.wait()
                data = await loop.sock_recv(src, READ_BYTES)
                await conn.gate.wait()
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                await loop.sock_sendall(dst, data)
        except OSError:  # a peer reset: pass it on as a close
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

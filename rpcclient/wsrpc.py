"""A persistent websocket JSON-RPC connection to one peer, reconnecting itself.

Modelled on ElectrumX's daemon.py: the connection is owned by `run()`, which
the role's controller runs in its task group; callers only ever `call()`.
A lost connection is logged once when it goes and once when it returns.
"""

import asyncio
import base64
import logging
import ssl
from typing import Any, Awaitable, Callable

import aiorpcx
from aiorpcx.websocket import WSTransport

from .errors import NodeUnavailable, PeerMismatch, RPCError

Notification = Callable[[str, list], Awaitable[None]]
RETRY_MAX = 2.0  # a local peer back from a restart is found within this; a refused connect costs little
UNFIT_RETRY = 30.0  # a peer that answers but is the wrong one (network, version) changes only by hand
# A silent peer (a partition: no close, no reset) is noticed by websocket pings alone. exccd and exccwallet
# answer pings from their read loop, beside the calls they are busy with, so a long call does not delay a pong.
PING_INTERVAL = 20.0  # a ping goes out this often, busy link or idle
PING_TIMEOUT = 20.0  # a ping unanswered this long closes the link: a round trip over any sane network is far less
CLOSE_TIMEOUT = 5.0  # a closing peer answers our close at once; a silent one has its TCP connection aborted after this
SILENT_PEER_BOUND = PING_INTERVAL + PING_TIMEOUT + CLOSE_TIMEOUT  # the link is down at most this long after silence


class _Session(aiorpcx.RPCSession):
    """aiorpcx session speaking exccd's loose JSON-RPC dialect."""

    def __init__(self, transport, *, on_notification: Notification):
        super().__init__(transport, connection=aiorpcx.JSONRPCConnection(aiorpcx.JSONRPCLoose))
        # aiorpcx names its logger after the class and reports every change of its request
        # concurrency at INFO; under the library's name, vspd's log setup keeps that at debug.
        self.logger = logging.getLogger("aiorpcx.session")
        self._on_notification = on_notification

    def default_framer(self):  # websocket messages are already framed
        return None

    async def handle_request(self, request):
        if isinstance(request, aiorpcx.Notification):
            await self._on_notification(request.method, list(request.args or []))
            return None
        raise aiorpcx.RPCError(aiorpcx.JSONRPC.METHOD_NOT_FOUND, "client accepts no requests")


def tls_context(cert_pem: bytes) -> ssl.SSLContext:
    """Trust exactly the peer's self-signed rpc.cert; TLS 1.2 or newer."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=cert_pem.decode("ascii", "replace"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class WSRPCClient:
    """One peer, one connection, reconnect with exponential backoff."""

    def __init__(self, name: str, host: str, port: int, user: str, password: str, cert_pem: bytes,
                 *, on_connect: Callable[["WSRPCClient"], Awaitable[None]] | None = None,
                 on_notification: Notification | None = None, timeout: float = 30.0,
                 max_backoff: float = RETRY_MAX):
        self.name = name
        self.url = f"wss://{'[' + host + ']' if ':' in host else host}:{port}/ws"
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._ssl = tls_context(cert_pem)
        self._on_connect = on_connect
        self._on_notification = on_notification
        self.timeout = timeout
        self.max_backoff = max_backoff
        self._session: _Session | None = None
        self._ready = asyncio.Event()
        self.last_error: str = "not connected yet"
        self.connects = 0
        self.log = logging.getLogger(f"rpc.{name}")

    def __repr__(self) -> str:
        return f"WSRPCClient({self.name}, {self.url})"

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    async def wait_connected(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def run(self) -> None:
        """Keep the connection up until cancelled."""
        backoff = 0.5
        while True:
            try:
                await self._connect_and_serve()
                self.log.warning("connection to %s lost; reconnecting", self.url)
                self.last_error = "connection lost"
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except PeerMismatch as e:
                if str(e) != self.last_error:
                    self.log.error("%s is unfit: %s", self.url, e)
                self.last_error = str(e)
                backoff = max(UNFIT_RETRY, self.max_backoff)
            except Exception as e:  # network errors of every kind: retry
                msg = f"{type(e).__name__}: {e}"
                if msg != self.last_error:
                    self.log.warning("cannot connect to %s: %s", self.url, msg)
                self.last_error = msg
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def _connect_and_serve(self) -> None:
        transport = await asyncio.wait_for(WSTransport.ws_client(
            self.url, session_factory=lambda t: _Session(t, on_notification=self._notify),
            ssl=self._ssl, additional_headers={"Authorization": self._auth},
            open_timeout=self.timeout, max_size=64 * 1024 * 1024, ping_interval=PING_INTERVAL,
            ping_timeout=PING_TIMEOUT, close_timeout=CLOSE_TIMEOUT),
            self.timeout)
        session: _Session = transport.session
        session.sent_request_timeout = self.timeout
        reader = asyncio.create_task(transport.process_messages(), name=f"{self.name}-reader")
        try:
            self._session = session
            if self._on_connect is not None:
                await self._on_connect(self)
            self.connects += 1
            self.last_error = ""
            self._ready.set()
            self.log.info("connected to %s", self.url)
            await reader
        finally:
            self._ready.clear()
            self._session = None
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            try:
                await asyncio.wait_for(transport.close(), 5)
            except Exception:
                pass

    async def _notify(self, method: str, params: list) -> None:
        if self._on_notification is not None:
            await self._on_notification(method, params)

    async def call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        """Call `method`; NodeUnavailable if not connected or no answer in time."""
        session = self._session
        if session is None:
            raise NodeUnavailable(f"{self.name} is not connected: {self.last_error}")
        try:
            return await asyncio.wait_for(session.send_request(method, list(params)),
                                          timeout or self.timeout)
        except aiorpcx.RPCError as e:
            raise RPCError(e.code, e.message) from None
        except (asyncio.TimeoutError, aiorpcx.TaskTimeout):
            raise NodeUnavailable(f"{self.name} did not answer {method} in time") from None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise NodeUnavailable(f"{self.name} connection lost during {method}") from None
        except (OSError, aiorpcx.ProtocolError, Exception) as e:
            if isinstance(e, (NodeUnavailable, RPCError)):
                raise
            raise NodeUnavailable(f"{self.name}: {method} failed: {type(e).__name__}: {e}") from None

"""What exccd and exccwallet clients share: one connection, checked on every connect."""

from vspd.chain.params import NetParams
from vspd.chain.semver import SemVer, compatible

from .errors import PeerMismatch
from .wsrpc import Notification, WSRPCClient


def check_version(result: dict, key: str, required: SemVer) -> SemVer:
    """The peer's API version from a `version` answer, if compatible."""
    info = result.get(key) if isinstance(result, dict) else None
    if not isinstance(info, dict):
        raise PeerMismatch(f"peer does not report {key}")
    try:
        actual = SemVer(int(info["major"]), int(info["minor"]), int(info["patch"]))
    except (KeyError, TypeError, ValueError):
        raise PeerMismatch(f"peer reports a malformed {key} version") from None
    if not compatible(required, actual):
        raise PeerMismatch(f"{key} {actual} is not compatible with the required {required}")
    return actual


class Peer:
    """A typed client of one exccd or exccwallet; subclasses add their calls."""
    name = "peer"
    api_key = ""
    required_api = SemVer(0, 0, 0)

    def __init__(self, net: NetParams, host: str, port: int, user: str, password: str, cert_pem: bytes,
                 timeout: float = 30.0, on_notification: Notification | None = None):
        self.net = net
        self.version: SemVer | None = None
        self.rpc = WSRPCClient(self.name, host, port, user, password, cert_pem, on_connect=self._validate,
                               on_notification=on_notification, timeout=timeout)

    @property
    def connected(self) -> bool:
        return self.rpc.connected

    async def run(self) -> None:
        await self.rpc.run()

    async def wait_connected(self, timeout: float | None = None) -> bool:
        return await self.rpc.wait_connected(timeout)

    async def _validate(self, rpc: WSRPCClient) -> None:
        self.version = check_version(await rpc.call("version"), self.api_key, self.required_api)
        net = await rpc.call("getcurrentnet")
        if net != self.net.net_magic:
            shown = f"{net:#x}" if isinstance(net, int) else repr(net)
            raise PeerMismatch(f"{self.name} is on network {shown}, not {self.net.name} ({self.net.net_magic:#x})")
        await self.validated(rpc)

    async def validated(self, rpc: WSRPCClient) -> None:
        """Further checks and set-up on a new connection."""

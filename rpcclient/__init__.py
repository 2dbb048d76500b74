"""Clients for the VSP's peers: exccd and exccwallet over websocket JSON-RPC.

Each client keeps one persistent, self-healing connection (aiorpcx over
websockets, TLS pinned to the peer's rpc.cert, HTTP basic auth) and gives
callers typed results and two error classes: the peer is unreachable
(`NodeUnavailable`) or the peer said no (`RPCError`).
"""

import os

# vspd forks only to exec (litestream, spawned by uvloop's fork): gRPC's fork handlers have nothing to do
# there, and with a voter call in flight they logged "Other threads are currently calling into gRPC,
# skipping fork() handlers" into the frontend's log. Read by grpc when it loads, so set before any import of it.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

from .errors import NodeUnavailable, PeerMismatch, RPCError  # noqa: E402
from .exccd import Exccd  # noqa: E402
from .wsrpc import WSRPCClient  # noqa: E402

__all__ = ["Exccd", "WSRPCClient", "NodeUnavailable", "RPCError", "PeerMismatch"]

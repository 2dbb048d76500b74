"""Clients for the VSP's peers: exccd and exccwallet over websocket JSON-RPC.

Each client keeps one persistent, self-healing connection (aiorpcx over
websockets, TLS pinned to the peer's rpc.cert, HTTP basic auth) and gives
callers typed results and two error classes: the peer is unreachable
(`NodeUnavailable`) or the peer said no (`RPCError`).
"""

from .errors import NodeUnavailable, PeerMismatch, RPCError
from .exccd import Exccd
from .wsrpc import WSRPCClient

__all__ = ["Exccd", "WSRPCClient", "NodeUnavailable", "RPCError", "PeerMismatch"]

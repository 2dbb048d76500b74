"""The two ways a call to a peer fails, plus a peer that is the wrong one."""

# exccd / exccwallet JSON-RPC error codes the VSP acts on.
ERR_NO_TX_INFO = -5
ERR_DUPLICATE_TX = -40


class NodeUnavailable(Exception):
    """The peer could not be reached or did not answer in time."""


class RPCError(Exception):
    """The peer answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str):
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message


class PeerMismatch(Exception):
    """The peer is reachable but unfit: wrong network, old version, no txindex."""

"""Stable, non-secret identities of a node and of a host, for the listing rules."""

import hashlib
import socket
from pathlib import Path


def host_id() -> str:
    """SHA-256 of the machine id (or the host name): equal only on the same host."""
    for p in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            text = Path(p).read_text().strip()
            if text:
                return hashlib.sha256(b"vspd-host:" + text.encode()).hexdigest()[:16]
        except OSError:
            continue
    return hashlib.sha256(b"vspd-host:" + socket.gethostname().encode()).hexdigest()[:16]


def node_id(cert_pem: bytes) -> str:
    """exccd makes its own RPC certificate: its hash names the node."""
    return hashlib.sha256(cert_pem).hexdigest()[:16]

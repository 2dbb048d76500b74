"""Where the off-site replica lives: the `backupreplica` option, parsed and checked.

Config validates it at start-up (vspd/base/config.py); the frontend's replication
(vspd/frontend/replication.py) and `vspadmin restore` use the parsed value.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit


class ReplicaError(Exception):
    """A replica URL or the litestream binary is unusable."""



@dataclass(frozen=True)
class Replica:
    """Where the replica lives, parsed and checked from `backupreplica`."""
    kind: str  # file, sftp, s3
    url: str
    path: str
    host: str = ""
    user: str = ""

    @classmethod
    def parse(cls, text: str) -> "Replica":
        text = text.strip()
        if not text:
            raise ReplicaError("empty replica URL")
        if text.startswith("/"):
            return cls("file", f"file://{text}", text)
        u = urlsplit(text)
        if u.scheme == "file":
            if not u.path.startswith("/") or u.netloc:
                raise ReplicaError(f"{text!r}: a file replica needs an absolute path, file:///path")
            return cls("file", text, u.path)
        if u.scheme == "sftp":
            if not u.hostname or not u.username or not u.path or u.password:
                raise ReplicaError(f"{text!r}: expected sftp://user@host[:port]/path "
                                   "(no password in the URL: use backupsftpkey)")
            port = u.port or 22
            return cls("sftp", text, u.path, f"{u.hostname}:{port}", u.username)
        if u.scheme == "s3":
            if not u.netloc:
                raise ReplicaError(f"{text!r}: expected s3://bucket/path (credentials from the environment)")
            return cls("s3", text, u.path)
        raise ReplicaError(f"{text!r}: replica must be a folder, file://, sftp:// or s3:// URL")

    def public(self) -> str:
        return self.url

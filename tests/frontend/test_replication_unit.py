"""Replica URLs, litestream's config, and the rotate/backup/restore refusals."""

import pytest

from vspd.frontend.replication import Replica, ReplicaError, litestream_config, parse_metrics


@pytest.mark.parametrize("text,kind", [
    ("/var/backups/vspd", "file"), ("file:///var/backups/vspd", "file"),
    ("sftp://backup@10.0.0.5:2222/srv/vspd", "sftp"), ("s3://bucket/vspd", "s3"),
])
def test_replica_urls(text, kind):
    r = Replica.parse(text)
    assert r.kind == kind


@pytest.mark.parametrize("text", ["", "relative/path", "file://host/x", "sftp://host/x", "ftp://x/y",
                                  "sftp://u:secret@h/p", "s3://"])
def test_bad_replica_urls(text):
    with pytest.raises(ReplicaError):
        Replica.parse(text)


def test_config_text():
    sftp = Replica.parse("sftp://backup@127.0.0.1:2222/srv/vspd")
    text = litestream_config("/h/vspd.db", sftp, 1.0, "127.0.0.1:9999", "/k/id", "ssh-ed25519 AAAA")
    assert 'host: "127.0.0.1:2222"' in text and 'key-path: "/k/id"' in text
    assert 'host-key: "ssh-ed25519 AAAA"' in text and "sync-interval: 1s" in text
    assert 'addr: "127.0.0.1:9999"' in text
    assert parse_metrics('litestream_txid{db="x"} 5\nother 1\n') == {"litestream_txid": 5.0}

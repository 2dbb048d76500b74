"""Where the frontend keeps files under its home folder."""

from pathlib import Path


def key_file(datadir: Path) -> Path:
    """The database sealing key: never inside the database, never replicated."""
    return datadir / "vspd.key"

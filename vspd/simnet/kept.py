"""What a `--keep` restart must not change: the addresses and passwords already handed out.

The staker wallet stores its VSP's URL with every ticket it registers, and a
user may have pasted the banner's admin password or the staker wallet's RPC
address and password into a script; so the site's port, the admin password
and the staker wallet's RPC port and password are drawn once per state folder
and read back by every later run. A fresh run wipes the folder, and this file
with it.
"""

import json
import os
from pathlib import Path
from typing import Callable

FILE = "kept.json"


class KeptError(Exception):
    """The file is there but unusable; the message names it."""


class Kept:
    """Named values of this state folder, each drawn once by its `make` and saved at once (mode 600)."""

    def __init__(self, root: Path):
        self.path = root / FILE
        try:
            self.values = json.loads(self.path.read_text())
        except FileNotFoundError:
            self.values = {}
        except (OSError, ValueError) as e:
            raise KeptError(f"{self.path}: unreadable ({e}); start without --keep for a new network") from None
        if not isinstance(self.values, dict):
            raise KeptError(f"{self.path}: not a JSON object; start without --keep for a new network")
        self.drawn: set[str] = set()  # drawn by this run: handed out to no one yet, so a taken port may move

    def get(self, name: str, make: Callable[[], int | str]):
        if name not in self.values:
            self.values[name] = make()
            self.drawn.add(name)
            self._save()
        return self.values[name]

    def put(self, name: str, value: int | str) -> None:
        """Replace a value this run drew (a port found taken at the first start)."""
        self.values[name] = value
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.path, json.dumps(self.values, indent=1, sort_keys=True))


def write_private(path: Path, text: str) -> None:
    """A state file holding passwords: mode 600 from its creation, replaced whole (a reader never sees half)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)

"""The state folder of `vspd-simnet` and of its soak: where it is, made fresh or kept, locked while in use."""

import shutil
from pathlib import Path

from vspd.base.runlock import AlreadyRunning, RunLock, lock_path

from .peers import default_cache

MARKER = ".vspd-simnet"


def default_root() -> Path:
    return default_cache().parent / "simnet"


def prepare_root(root: Path, keep: bool) -> None:
    """A fresh state folder, or the kept one; never wipe a folder this command did not make.

    Its run lock (see claim_root) is never wiped: it is held by the caller, or by nobody.
    """
    if root.exists() and any(p.name != lock_path(root).name for p in root.iterdir()):
        if not (root / MARKER).exists():
            raise SystemExit(f"vspd-simnet: {root} is not empty and was not made by vspd-simnet; "
                             f"name another folder with --root")
        if keep:
            return
        for p in root.iterdir():
            if p.name == lock_path(root).name:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    (root / MARKER).write_text("state of vspd-simnet; deleted by its next run unless --keep\n")


def claim_root(root: Path, keep: bool) -> RunLock:
    """Lock the state folder for this run, then prepare it: a second run refuses, naming the first.

    Without the lock a second start wiped the folder under the running network (issue 21).
    """
    prepare_root(root, keep=True)  # refuses a foreign folder before putting a lock file in it
    lock = RunLock(root, "vspd-simnet")
    try:
        lock.acquire()
    except AlreadyRunning as e:
        raise SystemExit(f"vspd-simnet: {e}; stop it first (Ctrl-C), or name another folder with --root") from None
    prepare_root(root, keep)
    return lock

"""Child processes of the simnet: started, logged to a file, stopped and awaited by their owner.

Every child runs under the orphan guard, so it dies with the harness even
when the harness is killed with -9, and in its own process group, so a
Ctrl-C at the terminal reaches the harness only, which then stops the
children in order.
"""

import asyncio
import os
import signal
import sys
from pathlib import Path


class ChildError(Exception):
    """A child exited or misbehaved; the message carries the end of its log."""


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:])


class Child:
    def __init__(self, name: str, args: list, log_path: Path, env: dict | None = None, cwd: Path | None = None,
                 death_signal: str = "TERM"):
        self.name = name
        self.death_signal = death_signal  # what it gets if the harness dies (see orphanguard)
        self.args = [str(a) for a in args]
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.proc: asyncio.subprocess.Process | None = None

    def __repr__(self) -> str:
        return f"Child({self.name}, pid={self.pid})"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> "Child":
        if self.running:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        guard = [sys.executable, "-m", "vspd.simnet.orphanguard", str(os.getpid()), self.death_signal, "--"]
        with open(self.log_path, "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *guard, *self.args, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                env=self.env, cwd=self.cwd, start_new_session=True)
        return self

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.returncode is not None:
            raise ChildError(f"{self.name} exited with status {self.proc.returncode}; its log ends:\n"
                             f"{tail(self.log_path)}")

    async def stop(self, timeout: float = 30.0, sig: int = signal.SIGTERM) -> int | None:
        """Ask it to stop (SIGTERM), wait, then SIGKILL if it did not."""
        if not self.running:
            return self.proc.returncode if self.proc else None
        try:
            self.proc.send_signal(sig)
            await asyncio.wait_for(self.proc.wait(), timeout)
        except ProcessLookupError:
            pass
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        return self.proc.returncode

    async def kill(self) -> None:
        """kill -9, as a crash would."""
        if self.running:
            self.proc.kill()
            await self.proc.wait()


async def run_once(name: str, args: list, log_path: Path, stdin: bytes = b"", timeout: float = 120.0,
                   check: bool = True, cwd: Path | None = None) -> str:
    """Run a command to completion (e.g. `exccwallet --create`); its output, or ChildError if `check`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(*map(str, args), stdin=asyncio.subprocess.PIPE, cwd=cwd,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise ChildError(f"{name} did not finish in {timeout:.0f} s") from None
    except asyncio.CancelledError:  # Ctrl-C: not left running after the harness is gone
        proc.kill()
        await proc.wait()
        raise
    text = out.decode(errors="replace")
    log_path.write_text(text)
    if check and proc.returncode != 0:
        raise ChildError(f"{name} failed (status {proc.returncode}):\n{text[-2000:]}")
    return text

"""Run a command that dies with the process that started it, even after kill -9 of that process.

`python -m vspd.simnet.orphanguard PARENT_PID SIGNAL -- COMMAND...` asks the
kernel to send SIGNAL when the parent goes (PR_SET_PDEATHSIG, kept across
exec), checks the parent did not go first, then becomes COMMAND. SIGTERM lets
vspd stop cleanly (it stops its own litestream); exccwallet can hang on
SIGTERM mid-way through its start-up, so the Go daemons get SIGKILL, which
their databases are built to survive.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    if len(sys.argv) < 5 or sys.argv[3] != "--" or sys.argv[2] not in ("TERM", "KILL"):
        sys.exit("usage: python -m vspd.simnet.orphanguard PARENT_PID TERM|KILL -- COMMAND...")
    parent, sig, command = int(sys.argv[1]), signal.Signals[f"SIG{sys.argv[2]}"], sys.argv[4:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, sig) != 0:
        sys.exit(f"orphanguard: prctl failed: {os.strerror(ctypes.get_errno())}")
    if os.getppid() != parent:  # the parent died before the guard was set
        sys.exit(1)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()

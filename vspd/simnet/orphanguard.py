"""Run a command that dies with the process that started it, even after kill -9 of that process.

`python -m vspd.simnet.orphanguard PARENT_PID -- COMMAND...` asks the kernel
to send SIGTERM when the parent goes (PR_SET_PDEATHSIG, kept across exec),
checks the parent did not go first, then becomes COMMAND.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit("usage: python -m vspd.simnet.orphanguard PARENT_PID -- COMMAND...")
    parent, command = int(sys.argv[1]), sys.argv[3:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        sys.exit(f"orphanguard: prctl failed: {os.strerror(ctypes.get_errno())}")
    if os.getppid() != parent:  # the parent died before the guard was set
        sys.exit(1)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()

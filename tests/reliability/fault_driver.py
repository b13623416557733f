"""Run the metastress CLI, cutting one atomic write short: `python fault_driver.py NAME N ARGS`.

When the process writes a file called NAME for the N-th time, the moment the temporary file
is complete and about to be fsynced, it is truncated to half its bytes and the process kills
itself with SIGKILL: what a kill in the middle of writing leaves. Only the test suite uses this;
the package has no fault hooks.
"""

import os
import signal
import sys

from metastress.cli import main


def cut_write(name: str, nth: int) -> None:
    fsync = os.fsync
    seen = 0

    def fsync_or_die(fd: int) -> None:
        nonlocal seen
        path = os.readlink(f"/proc/self/fd/{fd}")
        target = os.path.basename(path)
        if target.startswith(f".{name}.") and target.endswith(".tmp"):
            seen += 1
            if seen == nth:
                os.truncate(path, os.path.getsize(path) // 2)  # fd is open read-only
                os.kill(os.getpid(), signal.SIGKILL)
        fsync(fd)

    os.fsync = fsync_or_die


if __name__ == "__main__":
    cut_write(sys.argv[1], int(sys.argv[2]))
    main(sys.argv[3:])

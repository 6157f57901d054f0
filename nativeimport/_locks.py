"""An exclusive lock on a file, across processes and threads: ``flock`` on a descriptor of its own.

The lock goes with the descriptor: closing it releases the lock, and so does
the kernel when the process dies, so a killed build leaves no stale lock.
Each acquisition opens the file anew, and ``flock`` locks belong to the open
file, so two threads of one process exclude each other as two processes do.
This is what the ``filelock`` package does on Linux (a process running an
older nativeimport locks the same files compatibly), without the ~20 ms its
import costs on every cache miss.
"""

from __future__ import annotations

import fcntl
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

__all__ = ["acquire", "release"]

_FIRST_PAUSE = 0.001  # seconds between attempts while another holds the lock, doubling up to _LONGEST_PAUSE
_LONGEST_PAUSE = 0.05


def acquire(path: str, timeout: float) -> Optional[int]:
    """The descriptor holding ``path``'s lock (the file is created private if missing), or None if
    another holder kept it for ``timeout`` seconds (0: a single attempt). Release with :func:`release`."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + timeout
    pause = _FIRST_PAUSE
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return descriptor
        except BlockingIOError:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.close(descriptor)
                return None
            # flock has no timeout of its own: poll, soon at first (a lock held for a moment), then less often
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, _LONGEST_PAUSE)
        except BaseException:
            os.close(descriptor)
            raise


def release(descriptor: int) -> None:
    """Release a lock :func:`acquire` returned."""
    os.close(descriptor)  # closing the only descriptor of the open file drops its flock

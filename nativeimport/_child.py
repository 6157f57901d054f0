"""Compilers that die with the process that started them, and write only private files.

A compiler outliving an import killed mid-build keeps a core busy past any
timeout (the process that would enforce it is gone). Linux's
``PR_SET_PDEATHSIG`` has the kernel send it SIGKILL when its parent dies.
Only the process started is signalled: one a compiler starts in turn (gcc's
``cc1``, a wrapper script's gcc) ends with its own work, or with its parent if
it asks the same.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any, Optional

__all__ = ["child_setup"]

_PR_SET_PDEATHSIG = 1
_prctl: list[Any] = []  # found once per process: the child must not load a library between fork and exec


def child_setup() -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets SIGKILL when this process dies (Linux),
    and creates its files private (umask 077) whatever ours is."""
    if not _prctl:
        _prctl.append(_find_prctl())
    prctl: Optional[Any] = _prctl[0]
    parent = os.getpid()

    def setup() -> None:  # runs in the child, between fork and exec: no imports, no allocation of note
        os.umask(0o077)
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            if os.getppid() != parent:  # the parent died before the request took effect
                os.kill(os.getpid(), signal.SIGKILL)

    return setup


def _find_prctl() -> Optional[Any]:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # no libc symbol (a static or unusual interpreter): outlives us as before
        return None

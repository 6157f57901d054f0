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

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing (~2 ms) is not imported before a new source's compiler starts
    from collections.abc import Mapping, Sequence
    from typing import Any, Optional

__all__ = ["child_setup", "compiler_started", "how_to_start", "when_a_compiler_starts"]

_PR_SET_PDEATHSIG = 1
_prctl: list[Any] = []  # found once per process: the child must not load a library between fork and exec
_setpriv: list[Optional[str]] = []  # found once per process
# util-linux's, where distributions install it; not looked up on PATH, which is the application's to change
_SETPRIV_PLACES = ("/usr/bin/setpriv", "/bin/setpriv")


def how_to_start(command: Sequence[str], cwd: Optional[str] = None,
                 env: Optional[Mapping[str, str]] = None) -> tuple[list[str], dict[str, Any]]:
    """How to start the compiler ``command`` so that it dies with this process and creates private files:
    the command to give ``subprocess.Popen`` and the keyword arguments to add to the caller's.

    Where util-linux's ``setpriv`` can set the parent-death signal (Linux), ``setpriv --pdeathsig KILL --
    command`` with Popen's own ``umask``: no Python runs in the child, so CPython starts it by vfork, ~0.1 ms
    where the fork ``child_setup`` needs costs 1-4 ms, growing with the application's memory (a notebook
    kernel's edit waited ~3.5 ms for it before its compiler started); setpriv's own exec adds ~0.9 ms in the
    child. Otherwise ``preexec_fn=child_setup()``, as before. Unlike :func:`child_setup`, setpriv does not
    check that this process is still alive once the request took effect: a process killed in that
    half-millisecond leaves its compiler to finish (its files are in the build's private folder, which the
    cache removes as abandoned).

    A program that cannot be found raises ``FileNotFoundError`` here, as Popen would itself, rather than
    becoming setpriv's exit status.
    """
    setpriv = _find_setpriv()
    if setpriv is None:
        return list(command), {"preexec_fn": child_setup()}
    if not _runnable(command[0], cwd, env):
        import errno

        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), command[0])
    return [setpriv, "--pdeathsig", "KILL", "--", *command], {"umask": 0o077}


def _find_setpriv() -> Optional[str]:
    if not _setpriv:
        _setpriv.append(next((p for p in _SETPRIV_PLACES if _sets_pdeathsig(p)), None)
                        if sys.platform.startswith("linux") else None)
    return _setpriv[0]


def _sets_pdeathsig(path: str) -> bool:
    """Whether the setpriv at ``path`` takes ``--pdeathsig`` (util-linux 2.33, 2018, and later). Read from
    the program's own bytes (its option table names it) rather than asked: asking is a process, ~1 ms, in
    every importing process, before the compiler it would speed up."""
    try:
        with open(path, "rb") as stream:
            return os.access(path, os.X_OK) and b"pdeathsig" in stream.read(1 << 20)
    except OSError:
        return False


def _runnable(program: str, cwd: Optional[str], env: Optional[Mapping[str, str]]) -> bool:
    """Whether exec would find ``program`` as Popen looks for it (a path with a slash from ``cwd``, else on
    the PATH of ``env``, or of this process)."""
    if os.sep in program:
        return os.access(os.path.join(cwd or "", program), os.X_OK)
    return any(os.access(os.path.join(directory, program), os.X_OK) for directory in os.get_exec_path(env))
_waiting: list[Callable[[], None]] = []  # run by the next compiler_started()


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
    # Through cffi's backend (~1 ms to import, already a dependency) rather than ctypes (~4 ms): this runs
    # before a build's first compiler starts, so its cost is the import's.
    try:
        import _cffi_backend as backend

        integer, unsigned = backend.new_primitive_type("int"), backend.new_primitive_type("unsigned long")
        signature = backend.new_function_type((integer, unsigned, unsigned, unsigned, unsigned), integer, False)
        return backend.load_library(None).load_function(signature, "prctl")
    except (ImportError, OSError, AttributeError, KeyError):  # cffi missing or unusual: ctypes finds it, if any
        pass
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # no libc symbol (a static or unusual interpreter): outlives us as before
        return None


def when_a_compiler_starts(callback: Callable[[], None]) -> Callable[[], bool]:
    """Run ``callback`` (once) as soon as :func:`nativeimport.driver.run_tool` has started a compiler.

    A build starts its Python work for later (imports) then, not before: a thread importing
    while the main thread still prepares the compile takes the GIL from it at every system call
    (~5 ms each time it wants it back), delaying the compiler's start. Returns a function that
    cancels the callback if it has not run, and says whether it ran.
    """
    _waiting.append(callback)

    def cancel() -> bool:
        try:
            _waiting.remove(callback)
        except ValueError:
            return True  # already run
        return False

    return cancel


def compiler_started() -> None:
    """Run the callbacks :func:`when_a_compiler_starts` registered (run_tool calls it once its process runs)."""
    while _waiting:
        try:
            callback = _waiting.pop(0)
        except IndexError:  # another thread took the last one
            return
        callback()

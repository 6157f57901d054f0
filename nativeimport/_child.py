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
import sys

# _signal, not signal: signal imports enum (~1.5 ms), before a new source's compiler starts (see spawn)
from _signal import SIGKILL, SIGPIPE, SIGXFSZ  # type: ignore[import-not-found]  # no stubs

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing (~2 ms) is not imported before a new source's compiler starts
    import subprocess
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, NoReturn, Optional, Protocol

    class Process(Protocol):
        """What a build does with a compiler's process: ``subprocess.Popen`` or :class:`Spawned`."""

        pid: int
        returncode: Optional[int]

        def communicate(self, input: None = None, timeout: Optional[float] = None) -> tuple[bytes, Any]: ...

        def wait(self, timeout: Optional[float] = None) -> int: ...

        def kill(self) -> None: ...

__all__ = ["Spawned", "child_setup", "compiler_started", "find_executable", "how_to_start", "kill_group", "spawn",
           "spawn_detached", "start_compiler", "when_a_compiler_starts"]

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
    if find_executable(command[0], cwd, env) is None:
        import errno

        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), command[0])
    return [setpriv, "--pdeathsig", "KILL", "--", *command], {"umask": 0o077}


def start_compiler(command: Sequence[str], cwd: Optional[str] = None,
                   env: Optional[Mapping[str, str]] = None) -> subprocess.Popen[bytes]:
    """``command`` started by ``subprocess`` as a build runs compilers: as :func:`how_to_start` says, in a
    session of its own (:func:`kill_group` ends it with its children), stdin from /dev/null, stdout and
    stderr into one pipe. Raises what Popen raises (``FileNotFoundError`` for a missing program)."""
    import subprocess

    started, options = how_to_start(command, cwd, env)
    return subprocess.Popen(started, cwd=cwd, env=None if env is None else dict(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, **options)


def kill_group(process: Process) -> None:
    """SIGKILL to a compiler started in a session of its own, and to its children (cc1, as) with it."""
    try:
        os.killpg(process.pid, SIGKILL)
    except ProcessLookupError:
        pass


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


def find_executable(program: str, cwd: Optional[str] = None,
                    env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """``shutil.which(program)`` on POSIX, without importing shutil (with bz2, lzma, fnmatch: ~1.5 ms of a
    new module's import), as exec looks for it: a path with a slash (from ``cwd``) if it is an executable
    file, else the first one on the PATH of ``env``, or of this process."""
    if os.name != "posix":
        import shutil

        return shutil.which(program, path=None if env is None else env.get("PATH"))
    if os.sep in program:
        return program if _executable_file(os.path.join(cwd or "", program)) else None
    for directory in os.get_exec_path(env):
        candidate = os.path.join(directory, program)
        if _executable_file(candidate):
            return candidate
    return None


def _executable_file(path: str) -> bool:
    return os.access(path, os.F_OK | os.X_OK) and not os.path.isdir(path)


def spawn(command: Sequence[str], cwd: str) -> Optional[Spawned]:
    """Start ``command`` in ``cwd`` as :func:`nativeimport.driver.run_tool` starts compilers (its own session,
    stdin from /dev/null, stdout and stderr into one pipe, SIGKILL when this process dies, none of this
    process's descriptors) without importing ``subprocess``; None where that cannot be done here (no
    ``posix_spawn``, no setpriv that takes ``--pdeathsig``, no ``/proc/self/fd``, the program not found,
    this process's standard descriptors closed): the caller then uses ``subprocess``.

    For the compiler a new source's import starts first (``_early``): ``subprocess`` and what it imports
    (threading, signal with enum, locale, selectors: ~5 ms) would delay it, and a build that adopts this
    process needs none of them. posix_spawn starts the child as vfork does. It cannot change directory:
    when ``cwd`` is not this process's, ``/bin/sh`` does it before setpriv (one exec more, ~0.8 ms in the
    child). Nor can it set a umask: the files the compiler writes get this process's, in the build's
    private directory, and the cache takes group's and others' permissions from everything it files
    (``_cache._make_private``).
    """
    setpriv = _find_setpriv()
    if setpriv is None or not hasattr(os, "posix_spawn") or not os.path.isdir(cwd):
        return None
    if find_executable(command[0], cwd) is None:
        return None
    argv = [setpriv, "--pdeathsig", "KILL", "--", *command]
    if not _is_working_directory(cwd):
        argv = ["/bin/sh", "-c", 'cd -P -- "$1" && shift && exec "$@"', "sh", cwd, *argv]
    closes = _closing_inheritable()
    if closes is None:
        return None
    reader, writer = os.pipe()  # neither inheritable: the child keeps only the copies made below
    try:
        if min(reader, writer) <= 2:  # a standard descriptor was closed: subprocess handles the shuffle
            raise OSError("standard descriptors closed")
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, writer, 1), (os.POSIX_SPAWN_DUP2, writer, 2), *closes],
            setsid=True, setsigdef=(SIGPIPE, SIGXFSZ))  # ignored here (Python's choice), not in a compiler
    except (OSError, NotImplementedError, TypeError, ValueError):  # ValueError: an environment Popen refuses too
        os.close(reader)
        return None
    finally:
        os.close(writer)
    return Spawned(list(command), pid, reader)


def spawn_detached(argv: list[str], keep: int) -> None:
    """Start ``argv`` (a program's path first) in a session of its own, stdin, stdout and stderr on
    /dev/null, holding the descriptor ``keep`` (a lock it inherits) and none of our others; nothing
    waits for it. Raises OSError if it cannot start.

    Through posix_spawn without importing ``subprocess`` (~5 ms at the end of a new module's import) where
    there is one; its end is collected by a later call, as ``subprocess`` does for a Popen dropped while
    its process runs.
    """
    _collect_detached()
    closes = _closing_inheritable() if hasattr(os, "posix_spawn") and keep > 2 else None
    if closes is None:
        import subprocess

        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         pass_fds=(keep,), start_new_session=True)
        return
    # Any number but keep's own (dup2 onto itself would keep close-on-exec); after the closes, what the child
    # had there was close-on-exec anyway.
    target = 3 if keep != 3 else 4
    actions: list[tuple[Any, ...]] = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    actions += [*closes, (os.POSIX_SPAWN_DUP2, keep, target)]
    try:
        _detached.append(os.posix_spawn(argv[0], argv, os.environ, file_actions=actions, setsid=True,
                                        setsigdef=(SIGPIPE, SIGXFSZ)))
    except (NotImplementedError, TypeError, ValueError) as exc:  # ValueError: an environment Popen refuses too
        raise OSError(str(exc)) from None


_detached: list[int] = []  # started by spawn_detached, not yet collected


def _closing_inheritable() -> Optional[list[tuple[int, int]]]:
    """posix_spawn's actions closing the descriptors above 2 that exec would hand a child (subprocess's
    ``close_fds``; the others are close-on-exec); None where they cannot be listed (no /proc)."""
    try:
        listed = [int(name) for name in os.listdir("/proc/self/fd") if int(name) > 2]
    except (OSError, ValueError):
        return None
    closes = []
    for descriptor in listed:
        try:
            if os.get_inheritable(descriptor):
                closes.append((os.POSIX_SPAWN_CLOSE, descriptor))
        except OSError:  # closed meanwhile, or listdir's own
            pass
    return closes


def _collect_detached() -> None:
    for pid in list(_detached):
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                continue
        except ChildProcessError:
            pass
        _detached.remove(pid)


def _is_working_directory(path: str) -> bool:
    try:
        return os.path.samestat(os.stat(path), os.stat("."))
    except OSError:
        return False


class Spawned:
    """A process :func:`spawn` started: the part of ``subprocess.Popen``'s interface a build uses
    (``pid``, ``returncode``, ``communicate``, ``wait``, ``kill``), with the same meanings: a timeout
    raises ``subprocess.TimeoutExpired``, a signal's end is its negative number."""

    __slots__ = ("_output", "_reader", "args", "pid", "returncode")

    def __init__(self, args: list[str], pid: int, reader: int) -> None:
        self.args = args
        self.pid = pid
        self.returncode: Optional[int] = None
        self._reader: Optional[int] = reader
        self._output = bytearray()

    def communicate(self, input: None = None, timeout: Optional[float] = None) -> tuple[bytes, None]:
        """Everything the process printed, once it ended."""
        import select
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while self._reader is not None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self._timed_out(timeout)
            poller = select.poll()
            poller.register(self._reader, select.POLLIN)
            if poller.poll(None if remaining is None else max(1, int(remaining * 1000) + 1)):
                chunk = os.read(self._reader, 1 << 16)
                if chunk:
                    self._output += chunk
                else:
                    os.close(self._reader)
                    self._reader = None
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return bytes(self._output), None

    def wait(self, timeout: Optional[float] = None) -> int:
        """The exit status, once the process ended."""
        if self.returncode is not None:
            return self.returncode
        try:
            status = self._wait_status(timeout)
        except ChildProcessError:  # reaped by someone else (SIGCHLD ignored): unknown, taken as 0, as Popen does
            self.returncode = 0
            return 0
        self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def _wait_status(self, timeout: Optional[float]) -> int:
        if timeout is None:
            return os.waitpid(self.pid, 0)[1]
        import time

        deadline, pause = time.monotonic() + timeout, 0.0001
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return status
            if time.monotonic() >= deadline:
                self._timed_out(timeout)
            time.sleep(pause)
            pause = min(pause * 2, 0.005)

    def kill(self) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, SIGKILL)
            except ProcessLookupError:
                pass

    def _timed_out(self, timeout: Optional[float]) -> NoReturn:
        import subprocess

        raise subprocess.TimeoutExpired(self.args, timeout or 0.0, output=bytes(self._output))

    def __del__(self) -> None:
        if self._reader is not None:
            os.close(self._reader)
        if self.returncode is None:  # reaped if it has ended (Popen keeps a list for later; none is needed here)
            try:
                os.waitpid(self.pid, os.WNOHANG)
            except OSError:
                pass


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
            prctl(_PR_SET_PDEATHSIG, int(SIGKILL), 0, 0, 0)
            if os.getppid() != parent:  # the parent died before the request took effect
                os.kill(os.getpid(), SIGKILL)

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

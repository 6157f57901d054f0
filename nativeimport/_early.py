"""A new module's compiler started before the build's own modules are imported.

Importing what a build needs (the driver, the cache: ~25 ms at the time) used to
happen before the compiler started. On a miss the loader calls :func:`start`
first: when an earlier build of a source in the same folder with the same
driver ran one compiler command, that command's recipe (its arguments with the
source, the output directory and the library's name as placeholders) is
filled in for this source and started at once, into a private directory of
its own. The build then proceeds as always; when :func:`nativeimport.driver.run_tool`
is about to run exactly that command (same arguments but for the output
directory, same folder, the inherited environment), it adopts the running
process instead (:func:`adopt`) and moves its outputs into the build's output
directory once it ended. Anything else (another command, a content match, an
error) discards it (:func:`discard`): a wrong guess costs the other core's time,
never a wrong build.

The clock mark the build's race check needs (see ``_build._compile_unraced``)
is taken here, before the process starts, with the source's stat: an edit made
after the compiler started is seen as such (:func:`clock_for`).
"""

from __future__ import annotations

import os
import sys
from _thread import allocate_lock, get_ident  # threading imports functools and collections (~2 ms)

from ._child import kill_group, spawn, start_compiler
from ._entry import STAGING_PREFIX, remove_later, scratch_dir, staging_parent
from ._records import content_digest, make_private_dirs, new_private_directory, sha256, snapshot, write_atomically

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Optional

    from ._child import Process
    from ._records import Snapshot

__all__ = ["Speculation", "Watch", "adopt", "built", "clock_after", "clock_for", "discard", "finish", "remember",
           "start", "stop_watching", "watch"]

RECIPES = "early"  # scratch/early/<driver and folder digest>: one recipe per driver and source folder
_SOURCE, _OUTPUT, _LIBRARY = "\x1fsource\x1f", "\x1foutput\x1f", "\x1flibrary\x1f"
_CLOCK = ".clock"


class Speculation:
    """A compiler started for ``source`` into ``directory``, until adopted or discarded."""

    __slots__ = ("adopted_into", "before", "began", "command", "cwd", "directory", "process", "recipe", "root",
                 "source")

    def __init__(self, root: str, source: str, directory: str, command: list[str], cwd: str, began: int,
                 before: Snapshot, process: Process, recipe: list[str]) -> None:
        self.root = root
        self.source = source
        self.directory = directory
        self.command = command
        self.cwd = cwd
        self.began = began
        self.before = before
        self.recipe = recipe  # as read: remember() does not write it again unchanged
        self.process = process
        self.adopted_into: Optional[str] = None  # the build's output directory, once run_tool adopted it


class Watch:
    """One compile of ``source`` into ``output_dir`` (a thread's): the commands run_tool ran for it."""

    __slots__ = ("output_dir", "ran", "source", "speculation")

    def __init__(self, source: str, output_dir: str, speculation: Optional[Speculation]) -> None:
        self.source = source
        self.output_dir = output_dir
        self.speculation = speculation
        self.ran: list[tuple[list[str], Optional[str], bool]] = []  # (command, cwd, inherited environment)


_pending: dict[str, Speculation] = {}  # source -> its speculation (one per import in progress)
_watching: dict[int, Watch] = {}  # thread -> the compile it runs
_lock = allocate_lock()  # adoption and discarding, across threads


def _recipe_path(root: str, driver_name: str, source: str) -> str:
    digest = sha256(f"{driver_name}\0{os.path.dirname(source)}".encode("utf-8", "surrogateescape")).hexdigest()
    return os.path.join(scratch_dir(root, RECIPES), str(digest)[:32])


def start(root: str, driver_name: str, source: str, module_name: str) -> None:
    """Start the compiler an earlier build of this folder ran, filled in for ``source``; nothing if none,
    or if a source with this content was built in this cache before (:func:`built`), or is being compiled
    early by another process: touched, copied or edited back, its build is most likely found by content,
    with no process started."""
    if source in _pending or not sys.platform.startswith("linux") or not os.path.isfile(source):
        return
    seen = _seen_path(root, content_digest(source))
    if os.path.exists(seen):
        return
    try:
        with open(_recipe_path(root, driver_name, source), "rb") as stream:
            recipe = stream.read().decode("utf-8", "surrogateescape").split("\0")
    except OSError:
        return
    if len(recipe) < 2:
        return
    try:  # claimed by one process: others importing this content meanwhile wait for its build, start nothing
        make_private_dirs(os.path.dirname(seen))
        os.close(os.open(seen, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except OSError:
        return
    parent = staging_parent(root)
    try:
        make_private_dirs(parent)
        directory = new_private_directory(parent, f"{STAGING_PREFIX}{os.getpid()}-early-")
    except OSError:
        return
    library = module_name.rpartition(".")[2]

    def fill(text: str) -> str:
        return text.replace(_SOURCE, source).replace(_OUTPUT, directory).replace(_LIBRARY, library)

    cwd, command = fill(recipe[0]), [fill(part) for part in recipe[1:]]
    # The clock mark and the source's stat come before the compiler reads anything.
    mark = os.path.join(directory, _CLOCK)
    try:
        os.close(os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        before = snapshot([source])
        began = clock_after(mark, before[0][4])
        # subprocess imported already (a notebook's kernel, a second import): Popen starts it by vfork too,
        # without spawn's /bin/sh for another directory
        process: Optional[Process] = spawn(command, cwd) if "subprocess" not in sys.modules else None
    except OSError:
        remove_later(directory, root)
        return
    if process is None:  # subprocess: imported first where it was not (~5 ms more before the compiler)
        import subprocess

        try:
            process = start_compiler(command, cwd)
        except (OSError, ValueError, subprocess.SubprocessError):
            remove_later(directory, root)
            return
    _pending[source] = Speculation(root, source, directory, command, cwd, began, before, process, recipe)


# How long the clock may be waited for to pass a source's ctime: a few of the kernel's ticks (1-10 ms),
# which time stamps advance by. A ctime further ahead is another clock's (a file server's): nothing waits.
CLOCK_PATIENCE = 0.05


def clock_after(mark: str, ctime: Optional[int], patience: float = CLOCK_PATIENCE, step: float = 0.0005) -> int:
    """The file system clock's present (``mark`` touched: its ctime in ns), later than ``ctime`` if it can be
    within ``patience`` seconds (looking again every ``step``).

    A source saved just before its import has the ctime a mark taken now
    gets (time stamps move by the kernel's tick): the build's race check
    could not tell it from an edit made while the compiler ran, and would
    compile it again (~a compile's time) where waiting for the next tick
    costs a few milliseconds at most. Gives up after ``patience``: the
    race check then decides, as before.
    """
    import time

    now = os.stat(mark).st_ctime_ns
    deadline = time.monotonic() + patience
    while ctime is not None and now <= ctime and time.monotonic() < deadline:
        time.sleep(step)
        os.utime(mark)
        now = os.stat(mark).st_ctime_ns
    return now


def _seen_path(root: str, digest: str) -> str:
    return os.path.join(root, "scratch", RECIPES, "seen", digest[:32])


def built(root: str, digest: str) -> None:
    """A source with this content (``digest``: the sha256 of its bytes, hex) is being built in this cache (an
    empty file named by the digest), written before it compiles: by the time its folder's recipe exists, a
    process importing it at once sees it."""
    path = _seen_path(root, digest)
    try:
        make_private_dirs(os.path.dirname(path))
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    except OSError:
        pass  # only a later early compile's guess is worse


def clock_for(source: str) -> Optional[tuple[int, Snapshot]]:
    """(clock mark, the source's stat), both taken before the speculative compiler of ``source`` started."""
    speculation = _pending.get(source)
    return None if speculation is None else (speculation.began, speculation.before)


def watch(source: str, output_dir: str) -> None:
    """This thread compiles ``source`` into ``output_dir`` now: run_tool may adopt its speculation."""
    _watching[get_ident()] = Watch(source, output_dir, _pending.get(source))


def stop_watching() -> Optional[Watch]:
    """The compile this thread ran since :func:`watch`."""
    return _watching.pop(get_ident(), None)


def adopt(command: Sequence[str], cwd: Optional[str], env: Optional[Mapping[str, str]]) -> Optional[Speculation]:
    """The speculation running exactly ``command`` (in ``cwd``, with the inherited environment) as the first
    command of this thread's compile, if any: its process is the caller's to wait for, then :func:`finish`."""
    watched = _watching.get(get_ident())
    if watched is None:
        return None
    watched.ran.append((list(command), cwd, env is None))
    speculation = watched.speculation
    if speculation is None or len(watched.ran) > 1 or env is not None or cwd is None:
        return None
    expected = [part.replace(speculation.directory, watched.output_dir) for part in speculation.command]
    if expected != list(command) or os.path.abspath(cwd) != os.path.abspath(speculation.cwd):
        return None
    with _lock:
        if speculation.adopted_into is not None or _pending.get(speculation.source) is not speculation:
            return None
        speculation.adopted_into = watched.output_dir
    return speculation


def finish(speculation: Speculation) -> None:
    """Move what the adopted compiler (ended) wrote where the build expects it."""
    if speculation.adopted_into is None:
        return
    for name in os.listdir(speculation.directory):
        if name != _CLOCK:
            os.replace(os.path.join(speculation.directory, name), os.path.join(speculation.adopted_into, name))


def remember(root: str, driver_name: str, watched: Watch, module_name: str) -> None:
    """After a build: the recipe of its one compiler command, for the next new source in its folder."""
    if len(watched.ran) != 1 or not watched.ran[0][2] or watched.ran[0][1] is None:
        return
    command, cwd, _ = watched.ran[0]
    library = module_name.rpartition(".")[2]

    def template(text: str) -> str:
        return text.replace(watched.output_dir, _OUTPUT).replace(watched.source, _SOURCE)

    if any("\0" in part or "\x1f" in part for part in [cwd or "", *command]):  # our separators
        return
    parts = [template(cwd or "")] + [template(part) for part in command]
    if not any(_OUTPUT in part for part in parts):
        return
    parts = [part.replace(f"lib{library}.", f"lib{_LIBRARY}.") for part in parts]
    if watched.speculation is not None and watched.speculation.recipe == parts:
        return  # the recipe the compiler was started from: unchanged
    try:  # readers see the old recipe or the new one, whole
        write_atomically(_recipe_path(root, driver_name, watched.source),
                         "\0".join(parts).encode("utf-8", "surrogateescape"))
    except OSError:
        pass


def discard(source: str) -> None:
    """End the speculation of ``source``: its process killed unless adopted, its directory removed."""
    with _lock:
        speculation = _pending.pop(source, None)
    if speculation is None:
        return
    if speculation.adopted_into is None:
        kill_group(speculation.process)
        speculation.process.communicate()
    remove_later(speculation.directory, speculation.root)

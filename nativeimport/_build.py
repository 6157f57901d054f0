"""A cache miss: key the source's content, find a matching build or make one.

:func:`check_or_build` hashes, matches the content index, and builds under the
per-key lock; :func:`build_into` is one build (compile, describe, generate the
bindings, write the entry's files) inside a staging directory the cache then
publishes. Only a miss imports this module. Knows the driver API, the
Interface and the binders, not the finder or the module being imported.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from . import _early, _tool_versions
from ._build_settings import Resolved, config_of, resolve, table_digest
from ._cache import Cache, Dependency, digest_file
from ._child import spawn_detached, when_a_compiler_starts
from ._entry import (
    BINDING_FILE,
    BUILD_LOG,
    INTERFACE_FILE,
    LIBRARY_FILE,
    LIGHT_FILE,
    claim_fast_build,
    entry_dir,
    forget_fresh,
    fresh_identity,
    remember_fresh,
    remove_later,
    root_of,
    tool_versions_dir,
)
from ._log import QuietLogger
from ._progress import showing_progress
from ._records import ABSENT, sha256, snapshot
from ._version import __version__
from .driver import BuildRequest, BuildResult, Driver
from .errors import CacheError, NativeImportWarning, SourceError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

    from ._records import Snapshot
    from ._registry import DriverInfo
    from .interface import Interface  # imported while the compiler runs (_LATER_MODULES import it)
    from .settings import Settings

__all__ = ["Built", "WrapperJob", "add_fast_wrapper", "build_into", "check_or_build", "claim_fast_wrapper",
           "dependency_of", "evict", "wrapper_job"]

log = QuietLogger("nativeimport")
PREBUILT_SCRATCH = "fast-pch"  # the fast binder's precompiled header and helpers, under scratch/


class Built:
    """What :func:`build_into` left in the staging directory."""

    def __init__(self, dependencies: list[Dependency], stats: Snapshot, manifest: dict[str, Any]) -> None:
        self.dependencies = dependencies
        self.stats = stats
        self.manifest = manifest


def dependency_of(path: Path, source_dir: Path) -> str:
    """How a dependency is recorded: relative to the source's folder when inside it, so copies match."""
    try:
        return str(path.relative_to(source_dir))
    except ValueError:
        return str(path)


def build_into(staging: Path, *, driver: Driver, cache: Cache, source: Path, source_bytes: bytes,
               module_name: str, timeout: float, fast: bool, resolved: Resolved) -> Built:
    """Build ``source`` with its ``resolved`` settings into ``staging``; raise on any failure (the caller
    discards ``staging``)."""
    started = time.perf_counter()
    compiled: list[bool] = []  # [True] once the compile ended
    # The interface of a C library is read without pyelftools (dwarf, _dwarf_lite); other languages' need it.
    # cffi's C parser only where the source may declare more than scalars (a guess: it only saves time).
    later: tuple[str, ...] = ()
    if driver.name == "c":
        later = _IF_STILL_COMPILING if _may_need_parser(source_bytes) else ()
    else:
        later = _PYELFTOOLS + _IF_STILL_COMPILING
    cancel = when_a_compiler_starts(lambda: _import_in_background(_LATER_MODULES, later, compiled))
    toolchain = driver.toolchain()
    try:
        request, result, dependencies, stats = _compile_unraced(staging, driver, cache, source, source_bytes,
                                                                module_name, timeout, resolved)
    finally:
        compiled.append(True)
        cancel()  # a driver that runs its compiler otherwise: the imports happen where they are needed
    # Imported now, not with this module: the thread importing for later (above) may have them ready.
    from . import _bind_cffi, _cffi_check
    from ._bind_fast import FastBuild, Prebuilt, light_binding

    interface = _checked_interface(driver, request, result)
    interface = _cffi_check.checked(interface)  # types cffi would get wrong: opaque, with reasons
    # This interpreter's fast wrapper compiles while the cffi binding is generated.
    prebuilt = Prebuilt(cache.scratch(PREBUILT_SCRATCH)) if fast else None
    fast_build = FastBuild(staging, interface, module_name, prebuilt) if prebuilt is not None else None
    try:
        binding = _bind_cffi.generate(interface, where=str(source))
    except BaseException:
        if fast_build is not None:
            fast_build.cancel()
        raise
    if fast_build is not None:
        fast_build.finish(timeout)
    if prebuilt is not None:
        prebuilt.build_in_background()

    try:
        os.replace(result.library, staging / LIBRARY_FILE)  # in the build's output directory, in staging
    except OSError:  # a driver's library elsewhere, on another file system
        import shutil

        shutil.move(str(result.library), staging / LIBRARY_FILE)
    remove_later(str(request.output_dir), str(cache.root))  # what else the compiler left
    (staging / BINDING_FILE).write_text(binding, encoding="utf-8")
    (staging / LIGHT_FILE).write_text(light_binding(interface), encoding="utf-8")
    (staging / INTERFACE_FILE).write_text(json.dumps(interface.to_json(), indent=1), encoding="utf-8")
    if result.diagnostics.strip():
        (staging / BUILD_LOG).write_text(result.diagnostics, encoding="utf-8")

    duration = time.perf_counter() - started
    manifest = {
        "module": module_name,
        "source": str(source),
        "language": driver.name,
        "toolchain": {"command": list(toolchain.command), "version": toolchain.version},
        "flags": list(driver.flags()),
        "settings": json.loads(resolved.key_text),
        "search_environment": _search_values(driver),
        "dependencies": [d.path for d in dependencies if d.digest != ABSENT],
        "absent": [d.path for d in dependencies if d.digest == ABSENT],
        "exports": [f.name for f in interface.functions],
        "skipped": {s.name: s.reason for s in interface.skipped},
        "sizes": {p.name: p.stat().st_size for p in staging.iterdir() if p.is_file()},
        "created": time.time(),
        "build_seconds": round(duration, 4),
        "built_by": f"{sys.implementation.name} {sys.version.split()[0]}",
    }
    log.info("built %s from %s with %s in %.2f s", module_name, source.name, toolchain.version or toolchain.path,
             duration)
    if result.diagnostics.strip():
        log.warning("%s: compiler output:\n%s", source, result.diagnostics.rstrip())
    return Built(dependencies, stats, manifest)


BUILD_ATTEMPTS = 3  # builds of one import whose inputs changed while the compiler read them, before giving up


def _compile_unraced(staging: Path, driver: Driver, cache: Cache, source: Path, source_bytes: bytes,
                     module_name: str, timeout: float,
                     resolved: Resolved) -> tuple[BuildRequest, BuildResult, list[Dependency], Snapshot]:
    """Compile, then hash what the compiler read; again if any of it may have changed meanwhile.

    The key is made of the dependencies' content, but the compiler read them
    earlier: an edit in between (a header saved during a slow build, a source
    edited A -> B -> A) would file a library of the old content under the new
    content's key, for every copy of the project. So a clock mark is taken on
    the cache's file system before compiling, and after hashing every input
    must have a ctime older than it: then none changed since the compiler
    started, and what was hashed is what it read. ctime, not mtime: every write
    (and ``touch``) moves it to the present, and nothing can set it back.
    """
    source_dir = _source_dir(source)
    # What read_source read: the manifest of a directory source (cargo's lock file changes the folder).
    watched = source / driver.directory_marker if source.is_dir() and driver.directory_marker else source
    output = staging / "build"
    changed: Snapshot = []
    latest: Optional[int] = None
    known: list[Path] = [watched]  # the inputs known before compiling: the source, then the last attempt's
    for attempt in range(1, BUILD_ATTEMPTS + 1):
        if attempt > 1:
            remove_later(str(output), str(cache.root))
        output.mkdir()
        rows = snapshot(known)
        before = {row[0]: row for row in rows}
        if latest is None:  # a file saved just now: the next tick of the clock, rather than a second compile
            newest = max((row[4] for row in rows if row[4] is not None), default=None)
            began = _clock(staging, after=newest, patience=_early.CLOCK_PATIENCE)
        else:
            began = _clock(staging, after=latest)
        early = _early.clock_for(str(source)) if attempt == 1 else None
        if early is not None:  # a compiler run_tool may adopt started before these: their earlier values count
            began, before = min(began, early[0]), {row[0]: row for row in early[1]}
        request = BuildRequest(source=source, module_name=module_name, output_dir=output, toolchain=driver.toolchain(),
                               scratch_dir=cache.scratch(driver.name), timeout=timeout, settings=resolved.settings)
        _early.watch(str(source), str(output))
        try:
            result = driver.compile(request)
        finally:
            commands = _early.stop_watching()
            _early.discard(str(source))  # not adopted: killed now, not left competing with the build
        if driver.read_source(source) != source_bytes:
            raise SourceError(f"{source} changed while it was being compiled; import it again",
                              name=module_name, path=str(source))
        files = sorted({*result.dependencies, *resolved.settings.sources})
        shadows = _shadows(files, source_dir)
        dependencies = [Dependency(dependency_of(f, source_dir), digest_file(f)) for f in files]
        dependencies += [Dependency(dependency_of(f, source_dir), ABSENT) for f in shadows]
        # The module's table in nativeimport.toml (the file is stat'ed; its table's content is the digest).
        dependencies.append(Dependency(dependency_of(resolved.table, source_dir), table_digest(resolved.table) or ""))
        config = config_of(resolved.table)
        stats = snapshot([*files, *shadows, config])  # after hashing: unchanged since `began`, so also before it
        ended = _clock(staging, after=None)
        absent = {str(f) for f in shadows} | ({str(config)} if not config.exists() else set())
        changed = [row for row in snapshot([watched]) + stats
                   if _may_have_changed(row, began, ended, before.get(row[0]), row[0] in absent)]
        if not changed:  # each row with its content's digest, for NATIVEIMPORT_VERIFY
            (staging / _CLOCK).unlink()
            if commands is not None:  # the next new source in this folder starts this compile early
                _early.remember(str(cache.root), driver.name, commands, module_name)
            # The configuration file is checked by its stat only: its digest is its module's table's, not its own.
            digests = [d.digest for d in dependencies[:-1]] + ["-"]
            return request, result, dependencies, [[*row, digest] for row, digest in zip(stats, digests)]
        latest = max((row[4] for row in changed if row[4] is not None and row[4] <= ended), default=None)
        known = [watched, *files, *shadows, config]
        log.info("%s changed while %s was compiled (attempt %d of %d); building again", changed[0][0], source.name,
                 attempt, BUILD_ATTEMPTS)
    raise SourceError(f"{changed[0][0]} kept changing while {source} was compiled ({BUILD_ATTEMPTS} builds); "
                      "import it again once it is saved", name=module_name, path=str(source))


def _may_have_changed(row: list[Any], began: int, ended: int, before: Optional[list[Any]],
                      expected_absent: bool) -> bool:
    """Whether the file of ``row`` (its stat after hashing) may have changed since the compiler started.

    A ctime later than the build's end is another clock's (a file server's, ahead of ours): it says
    nothing about the build, so such a file counts as unchanged only if its stat before compiling
    (known from the previous attempt) is the same.
    """
    if (row[4] is None) != expected_absent:  # a dependency gone, or a shadowing header appeared
        return True
    if row[4] is None or row[4] < began:
        return False
    return not (row[4] > ended and before == row)


_CLOCK = ".clock"  # in the staging directory, removed before publishing


def _clock(staging: Path, after: Optional[int], patience: float = 2.0) -> int:
    """Now, on the cache's file system clock (a file's ctime, in ns), later than ``after`` if it can be
    within ``patience`` seconds.

    Waiting for the clock to pass the newest input seen changing keeps a
    retry from failing again on the very same edit (a file system with
    one-second timestamps waits up to a second, and only after a race).
    Before the first attempt it passes the inputs' own ctimes (see
    :func:`nativeimport._early.clock_after`).
    """
    mark = staging / _CLOCK
    mark.touch()
    return _early.clock_after(str(mark), after, patience, step=0.0005 if patience < 1 else 0.01)


_HEADER_SUFFIXES = frozenset({".h", ".hh", ".hpp", ".hxx", ".inc", ".inl"})


def _shadows(files: list[Path], source_dir: Path) -> list[Path]:
    """Files whose appearance would change the build: for each header found outside the source's
    folder (through ``-I``, ``CPATH``), the same name beside the source, where ``#include "..."``
    looks first. Headers under /usr are the system's, reached by ``<...>``: not followed.
    What else the compiler searched in vain (``__has_include``, other ``-I`` folders) is not tracked.
    """
    shadows = []
    for path in files:
        if path.suffix not in _HEADER_SUFFIXES or path.parent == source_dir or str(path).startswith("/usr/"):
            continue
        candidate = source_dir / path.name
        if candidate not in files and candidate not in shadows and not os.path.lexists(candidate):
            shadows.append(candidate)
    return shadows


# Imported by the steps after compiling (the binders): what a thread imports while the main thread
# waits for the compiler, instead of before or after it. Ours among them import, besides modules only
# they import (_fast_c), what the build imported before compiling (interface, _entry, _records, _child):
# the main thread never waits on an import the thread waits on.
# The DWARF reader (~3 ms) and the cffi runtime the loader binds with (~0.5 ms) too: both only after it.
_LATER_MODULES = ("nativeimport.dwarf", "nativeimport._cffi_check", "nativeimport._bind_cffi",
                  "nativeimport._bind_fast", "cffi.recompiler", "cffi.commontypes", "nativeimport._cffi_runtime",
                  "mmap")  # _dwarf_lite maps the library
# Imported only while the compiler still runs (each checked before it starts), so they never compete for
# the GIL with a small module's binding, which needs none of them: cffi's C parser (pycparser, ~20 ms),
# for records and callbacks (_bind_cffi._scalar_declarations binds scalars without it).
_IF_STILL_COMPILING = ("cffi.cparser",)
_PYELFTOOLS = ("elftools.elf.elffile", "elftools.dwarf.dwarfinfo")  # ~25 ms, for what _dwarf_lite does not read


# What a C source that binds more than scalars and pointers to them most likely contains: a record, a
# function pointer, a variadic function, FILE, or a header of its own (whose types are unknown here).
_PARSER_SIGNS = (b"struct", b"union", b"(*", b"...", b'#include "', b"FILE")


def _may_need_parser(source: bytes) -> bool:
    """Whether cffi's C parser is worth importing while a C ``source`` compiles (_bind_cffi binds scalars
    without it). A wrong guess costs time only: the parser is imported when needed, after the compile."""
    return any(sign in source for sign in _PARSER_SIGNS)


def _import_in_background(names: tuple[str, ...], while_compiling: tuple[str, ...],
                          compiled: list[bool]) -> None:
    """Start importing ``names`` in a daemon thread, then each of ``while_compiling`` unless ``compiled``
    is not empty (the compile ended) by its turn.

    An import that fails there fails again where the module is used, and is
    reported there. No module imported there may import one the main thread
    is importing meanwhile (see ``_LATER_MODULES``): no import cycle runs
    across threads.
    """
    import importlib

    def work() -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:
                pass
        # The interpreter's first compile() costs ~0.8 ms once (the parser's own start), which the binding
        # of a new module would otherwise pay after the compile: paid here, beside it.
        compile("", "<nativeimport>", "exec", dont_inherit=True)
        for name in while_compiling:
            if compiled:
                return
            try:
                importlib.import_module(name)
            except Exception:
                pass

    import _thread  # not threading (~1 ms to import), nor its start(), which waits for the thread to run

    _thread.start_new_thread(work, ())


def _checked_interface(driver: Driver, request: BuildRequest, result: BuildResult) -> Interface:
    """The driver's Interface, restricted to what the library really exports."""
    if result.interface is None:
        return driver.describe(request, result)
    from elftools.elf.elffile import ELFFile  # only a build reads the symbol table

    from .dwarf import exported_functions
    from .interface import Skipped, replace

    with open(result.library, "rb") as stream:
        exported = exported_functions(ELFFile(stream))
    missing = [f.name for f in result.interface.functions if f.name not in exported]
    interface = result.interface.restricted_to(exported)
    skipped = tuple(Skipped(name, "the library does not export it") for name in missing)
    return replace(interface, skipped=interface.skipped + skipped)  # constants and all kept


KEY_SCHEMA = "nativeimport-key-2"  # 2: interfaces bind handles, unions, callbacks; settings and search paths keyed


def check_or_build(root: str, source_name: str, info: DriverInfo, token: str, settings: Settings,
                   module_name: str, reason: str = "asked to build", definition: Optional[str] = None) -> str:
    """The entry ``source_name`` builds to: a content match, or a new build. ``reason`` says why
    the freshness record did not answer (for the log). ``definition`` names the ``nativeimport.toml``
    table that defines the module when it has no file of its own (``source_name`` is then its primary source).

    Starts no process unless it builds (or asks pkg-config): the toolchain's fingerprint is remembered.
    """
    cache = Cache(Path(root))
    source = Path(source_name)
    _tool_versions.use_directory(tool_versions_dir(root))  # before the driver asks its compiler's version
    try:
        return _check_or_build(cache, source, info, token, settings, module_name, reason, definition, root,
                               source_name)
    finally:
        _early.discard(source_name)  # a content match, an error: the compiler started early is not needed


def _check_or_build(cache: Cache, source: Path, info: DriverInfo, token: str, settings: Settings,
                    module_name: str, reason: str, definition: Optional[str], root: str, source_name: str) -> str:
    driver = info.load()
    source_stats = snapshot([source_name])
    source_bytes = _read_source(driver.read_source, source)
    source_digest = _digest_bytes(source_bytes)  # once: a 9 MB amalgamation takes ~20 ms to hash
    if not source.is_dir():  # its digest, for NATIVEIMPORT_VERIFY (a directory's files are dependencies)
        source_stats[0].append(source_digest)
    if not source_bytes.strip():
        raise SourceError(f"{source} is empty: there is nothing to import")
    log.debug("%s: looking for a build (%s)", source, reason)
    resolved = resolve(source, definition)
    try:
        fingerprint, compiler_stats = cache.fingerprint(token, info)
        # The version too: an entry holds bindings generated by this release, for its runtime.
        source_key = _digest(KEY_SCHEMA, __version__, fingerprint, json.dumps(_search_values(driver)),
                             resolved.key_text, source_bytes)
        key, dep_stats = cache.match(source_key, _source_dir(source))
        if key is None:
            with cache.lock(source_key, settings, what=f"{module_name} ({source})"):
                key, dep_stats = cache.match(source_key, _source_dir(source))
                if key is None:
                    log.debug("building %s (%s): no cached build of this content (source key %s)", source,
                              reason, source_key[:16])
                    key, dep_stats = _publish_build(cache, info, settings, source, source_bytes, source_digest,
                                                    source_key, module_name, resolved)
        else:
            log.debug("%s: changed on disk, but its content matches cached build %s", source, key[:16])
    except OSError as exc:  # a read-only cache, a full disk: nothing was published, say what to do
        raise CacheError(
            f"cannot write the build cache {root}: {exc.strerror or exc}; free some space, make it writable, "
            "or set NATIVEIMPORT_CACHE_DIR to another directory"
        ) from exc
    try:
        remember_fresh(root, fresh_identity(source_name, definition), token,
                       source_stats + compiler_stats + dep_stats, key)
    except OSError:
        pass  # only the next import's shortcut is lost: it hashes again
    return entry_dir(root, key)


def _publish_build(cache: Cache, info: DriverInfo, settings: Settings, source: Path, source_bytes: bytes,
                   source_digest: str, source_key: str, module_name: str, resolved: Resolved) -> tuple[str, Snapshot]:
    driver = info.load()
    what = f"{source.name} with {os.path.basename(driver.toolchain().path)}"
    _early.built(str(cache.root), source_digest)  # its content, when seen again, is not compiled early
    with cache.staging() as staging, showing_progress(what, settings.progress, settings.verbose):
        # In the background (the default) the wrapper is compiled after publishing, by the loader's
        # complete_entry: a new module is imported in the compile's time, not the compile's and the wrapper's.
        fast = sys.implementation.name == "cpython" and settings.binder == "auto" and settings.wrapper == "wait"
        built = build_into(staging, driver=driver, cache=cache, source=source, source_bytes=source_bytes,
                           module_name=module_name, timeout=settings.build_timeout, fast=fast, resolved=resolved)
        key = _digest(source_key, *(f"{d.path}\0{d.digest}" for d in built.dependencies))
        cache.write_manifest(staging, {"key": key, **built.manifest})
        cache.publish(staging, key)
    cache.add_build(source_key, built.dependencies, key)
    _warn_left_out(module_name, source, built.manifest["skipped"])
    return key, built.stats


def _warn_left_out(module_name: str, source: Path, skipped: dict[str, str]) -> None:
    """One warning per build naming what was left out; `nativeimport show` says why for each.

    Once per build, never on a cache hit: a library with hundreds of unbindable
    exports would otherwise print hundreds of lines on every import.
    """
    if not skipped:
        return
    import warnings

    names = sorted(skipped)
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    count = f"{len(names)} export{'s' if len(names) != 1 else ''}"
    warnings.warn(f"{module_name}: {count} left out ({shown}); `nativeimport show {source}` lists each and why",
                  NativeImportWarning, stacklevel=_caller_level())


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the user's code: the first frame outside
    nativeimport and the import machinery."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        filename = frame.f_code.co_filename
        # warnings.warn itself skips the import machinery's frames when it counts levels
        if not ("importlib" in filename and "_bootstrap" in filename):
            if not filename.startswith(package):
                return level
            level += 1
        frame = frame.f_back  # type: ignore[assignment]
    return 1


def add_fast_wrapper(entry: str, module_name: str, settings: Settings) -> None:
    """Build this interpreter's wrapper into an existing entry another interpreter built.

    Added once, in place (its file appears in one rename); when it cannot be
    built, a note in the entry keeps this interpreter from trying again.
    """
    log.debug("%s: adding the fast wrapper for %s to entry %s", module_name, sys.implementation.cache_tag, entry)
    from ._bind_fast import build_fast
    from .interface import Interface

    interface = Interface.from_json(json.loads(Path(entry, INTERFACE_FILE).read_text(encoding="utf-8")))
    scratch = Cache(Path(root_of(entry))).scratch(PREBUILT_SCRATCH)
    build_fast(Path(entry), interface, module_name, settings.build_timeout, scratch)


class WrapperJob:
    """The compile of this interpreter's wrapper into an entry by a detached process, claimed
    (:func:`claim_fast_wrapper`): :meth:`start` it, or :meth:`abandon` it (the claim released)."""

    def __init__(self, entry: str, module_name: str, settings: Settings, claim: Optional[int]) -> None:
        self.entry = entry
        self.module_name = module_name
        self.settings = settings
        self._claim = claim  # the claim's lock, for the process to inherit; None: another process has it

    def start(self) -> None:
        """Start the process; where it cannot start, compile the wrapper here, then release the claim
        (a module bound meanwhile switches to the wrapper then)."""
        if self._claim is None:
            return
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        # In "/": the job holds no directory of the user's (one being unmounted, removed)
        code = (f"import os, sys; os.chdir('/'); sys.path.insert(0, {package_parent!r}); "
                "from nativeimport._build import wrapper_job; wrapper_job(sys.argv[1:])")
        try:
            spawn_detached([sys.executable, "-c", code, self.entry, self.module_name,
                            repr(self.settings.build_timeout)], self._claim)
            log.debug("%s: compiling the fast wrapper in the background into %s", self.module_name, self.entry)
        except OSError as exc:
            log.debug("%s: cannot start the background wrapper compile (%s); compiling it now", self.module_name,
                      exc)
            try:
                add_fast_wrapper(self.entry, self.module_name, self.settings)
            except Exception as error:  # the module is bound (through cffi): it stays so, and the import stands
                log.debug("%s: its wrapper could not be built (%s)", self.module_name, error)
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Release the claim without starting anything (the binding failed)."""
        if self._claim is not None:
            os.close(self._claim)
            self._claim = None


def claim_fast_wrapper(entry: str, module_name: str, settings: Settings) -> Optional[WrapperJob]:
    """Claim the compile of this interpreter's wrapper into ``entry`` by a detached process, to start once
    the module is bound (starting a process takes ~0.5 ms a new module's first call need not wait for);
    None where no process can compile it (the caller compiles it).

    The claim's lock (:func:`nativeimport._entry.claim_fast_build`) is held from now on, so the binding
    sees the compile running; the process inherits it and holds it until it exits, so others neither
    start a second compile nor wait for a dead one. The wrapper appears by one rename
    (:class:`~nativeimport._bind_fast.FastBuild`), a failure leaves the note the retry policy reads:
    exactly as when an import waits for it.
    """
    if not sys.executable or not os.access(sys.executable, os.X_OK):  # embedded: no interpreter to start
        return None
    try:
        claim = claim_fast_build(entry)
    except OSError:  # an entry we cannot write in: compiling here fails (and says so) as before
        return None
    return WrapperJob(entry, module_name, settings, claim)  # a None claim: another process is compiling it


def wrapper_job(arguments: list[str]) -> None:
    """The detached process :func:`claim_fast_wrapper` starts: ``entry module_name timeout``."""
    from ._bind_fast import build_fast
    from .interface import Interface

    entry, module_name, timeout = arguments
    interface = Interface.from_json(json.loads(Path(entry, INTERFACE_FILE).read_text(encoding="utf-8")))
    scratch = Cache(Path(root_of(entry))).scratch(PREBUILT_SCRATCH)
    build_fast(Path(entry), interface, module_name, float(timeout), scratch)


def evict(entry: str, source: str, why: Exception) -> None:
    """Remove an entry that failed to load, and the freshness record pointing at it."""
    log.warning("cache entry %s for %s failed to load (%s); rebuilding", entry, source, why)
    root = root_of(entry)
    Cache(Path(root)).remove(os.path.basename(entry))
    forget_fresh(root, source)


def _search_values(driver: Driver) -> dict[str, str]:
    """The compiler's search environment (``Driver.search_environment``): where it finds headers and libraries."""
    return {name: os.environ.get(name, "") for name in driver.search_environment}


def _read_source(read: Any, source: Path) -> bytes:
    try:
        data: bytes = read(source)
    except IsADirectoryError:
        raise SourceError(f"{source} is a directory, not a source file") from None
    except FileNotFoundError:
        raise SourceError(f"{source} no longer exists") from None
    except OSError as exc:
        raise SourceError(f"cannot read {source}: {exc.strerror}") from None
    return data


def _source_dir(source: Path) -> Path:
    return source if source.is_dir() else source.parent


def _digest_bytes(data: bytes) -> str:
    return str(sha256(data).hexdigest())


def _digest(*parts: object) -> str:
    hasher = sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode("utf-8", "surrogateescape")
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return str(hasher.hexdigest())
